import { parseSync } from "libpg-query";
import { analyzePostgres, loadAnalyzer } from "../../src/inspect/index.js";
import { walkStatement } from "../../src/inspect/postgres/walk.js";
import { createFacts } from "../../src/inspect/postgres/facts.js";
import { compileSafeFunctions } from "../../src/inspect/postgres/functions.js";
await loadAnalyzer();
const short = "SELECT id, name FROM customers WHERE id = $1";
const tree = parseSync(short).stmts![0]!.stmt;
const safe = compileSafeFunctions(undefined);
const nested = { sql() {}, plpgsql() {} };
function time(label: string, fn: () => unknown, n = 50_000) {
  for (let i = 0; i < 5000; i++) fn();
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  console.log(label.padEnd(30), (Number(process.hrtime.bigint() - t) / 1000 / n).toFixed(2), "µs");
}
time("walk short", () => walkStatement(tree, { facts: createFacts(), safe, nested, statementText: short }));
time("parseSync short", () => parseSync(short));
time("analyze short", () => analyzePostgres(short));
