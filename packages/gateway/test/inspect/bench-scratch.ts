import { parseSync, fingerprintSync } from "libpg-query";
import { analyzePostgres, loadAnalyzer } from "../../src/inspect/index.js";
await loadAnalyzer();
const short = "SELECT id, name FROM customers WHERE id = $1";
const join = "SELECT c.id, c.name, sum(o.total) AS spent FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.status = 'paid' AND c.email LIKE '%@example.com' GROUP BY c.id, c.name HAVING sum(o.total) > 100 ORDER BY spent DESC LIMIT 20";
function time(label: string, fn: () => unknown, n = 10_000) {
  for (let i = 0; i < 1000; i++) fn();
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  const us = Number(process.hrtime.bigint() - t) / 1000 / n;
  console.log(label.padEnd(30), us.toFixed(1), "µs");
}
time("parseSync short", () => parseSync(short));
time("fingerprint short", () => fingerprintSync(short));
time("analyze short", () => analyzePostgres(short));
time("parseSync join", () => parseSync(join));
time("fingerprint join", () => fingerprintSync(join));
time("analyze join", () => analyzePostgres(join));
