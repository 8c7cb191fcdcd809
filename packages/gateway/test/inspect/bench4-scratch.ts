import { loadAnalyzer } from "../../src/inspect/index.js";
import { walkStatement } from "../../src/inspect/postgres/walk.js";
import { createFacts } from "../../src/inspect/postgres/facts.js";
import { compileSafeFunctions } from "../../src/inspect/postgres/functions.js";
await loadAnalyzer();
const safe = compileSafeFunctions(undefined);
const nested = { sql() {}, plpgsql() {} };
const n = 300_000;
for (const tree of [{ SelectStmt: {} }, { SelectStmt: { op: "SETOP_NONE" } }, { SelectStmt: { targetList: [{ ResTarget: { val: { A_Const: { ival: { ival: 1 } } } } }] } }, { SelectStmt: { fromClause: [{ RangeVar: { relname: "x" } }] } }]) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) walkStatement(tree, { facts: createFacts(), safe, nested, statementText: "" });
  console.log(JSON.stringify(tree), (Number(process.hrtime.bigint() - t) / 1000 / n).toFixed(2), "µs");
}
