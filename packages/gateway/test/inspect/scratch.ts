import { analyzePostgres, loadAnalyzer } from "../../src/inspect/index.js";
await loadAnalyzer();
const qs = process.argv.slice(2);
for (const q of qs) {
  const a = analyzePostgres(q);
  console.log(q, "\n  =>", JSON.stringify(a, null, 0));
}
