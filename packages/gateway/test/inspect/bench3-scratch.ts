import { parseSync } from "libpg-query";
import { loadAnalyzer } from "../../src/inspect/index.js";
import { walkStatement } from "../../src/inspect/postgres/walk.js";
import { createFacts } from "../../src/inspect/postgres/facts.js";
import { compileSafeFunctions } from "../../src/inspect/postgres/functions.js";
await loadAnalyzer();
const short = "SELECT id, name FROM customers WHERE id = $1";
const tree = parseSync(short).stmts![0]!.stmt;
const safe = compileSafeFunctions(undefined);
const nested = { sql() {}, plpgsql() {} };
const n = 300_000;
const t = process.hrtime.bigint();
for (let i = 0; i < n; i++) walkStatement(tree, { facts: createFacts(), safe, nested, statementText: short });
console.log("walk", (Number(process.hrtime.bigint() - t) / 1000 / n).toFixed(2), "µs");
let c = 0;
const t2 = process.hrtime.bigint();
for (let i = 0; i < n; i++) { const f = createFacts(); c += f.classes.size; }
console.log("facts", (Number(process.hrtime.bigint() - t2) / 1000 / n).toFixed(2), "µs", c);
