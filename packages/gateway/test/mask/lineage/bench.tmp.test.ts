import { beforeAll, it } from "vitest";
import { analyzePostgres, loadAnalyzer } from "../../../src/inspect/index.js";
import { analyzeExposure } from "../../../src/mask/lineage/index.js";
import { fixtureCatalog } from "./fixture.js";
import { parseSync } from "libpg-query";
beforeAll(async () => { await loadAnalyzer(); });
const cases: Record<string, string> = {
  simple: "SELECT id, name FROM customers WHERE id = $1",
  join: "SELECT o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.status = 'paid' ORDER BY o.total DESC LIMIT 10",
  cte: "WITH x AS (SELECT customer_id, sum(total) AS s FROM orders GROUP BY customer_id) SELECT c.name, x.s, (SELECT count(*) FROM orders o WHERE o.customer_id = c.id) FROM customers c JOIN x ON x.customer_id = c.id WHERE EXISTS (SELECT 1 FROM orders WHERE status = 'x')",
  recursive: "WITH RECURSIVE r(n, e) AS (SELECT 1, ''::text UNION ALL SELECT n + 1, (SELECT email FROM customers LIMIT 1) FROM r WHERE n < 3) SELECT e FROM r",
  insertSelect: "INSERT INTO audit (note) SELECT lower(email) FROM customers WHERE card_number LIKE '4%'",
  doBlock: "DO $$ DECLARE v text; BEGIN SELECT email INTO v FROM customers LIMIT 1; INSERT INTO audit(note) VALUES (v); END $$",
};
it("times", () => {
  for (const [name, sql] of Object.entries(cases)) {
    const n = 2000;
    for (let i = 0; i < 1000; i++) { analyzeExposure(sql, fixtureCatalog); parseSync(sql); analyzePostgres(sql); }
    let t = performance.now();
    for (let i = 0; i < n; i++) analyzeExposure(sql, fixtureCatalog);
    const lineage = (performance.now() - t) / n * 1000;
    t = performance.now();
    for (let i = 0; i < n; i++) parseSync(sql);
    const parse = (performance.now() - t) / n * 1000;
    t = performance.now();
    for (let i = 0; i < n; i++) analyzePostgres(sql);
    const analyzer = (performance.now() - t) / n * 1000;
    console.log(`${name}: analyzeExposure ${lineage.toFixed(1)} µs (parseSync alone ${parse.toFixed(1)} µs; analyzePostgres ${analyzer.toFixed(1)} µs)`);
  }
  const wide = "SELECT " + Array.from({ length: 500 }, (_, i) => `lower(name) || ${i}`).join(", ") + " FROM customers";
  const deep = "SELECT " + "(".repeat(900) + "email" + ")".repeat(900) + " FROM customers";
  const unions = Array.from({ length: 300 }, () => "SELECT email FROM customers").join(" UNION ");
  const nestedRec = "WITH RECURSIVE a(x) AS (SELECT 1 UNION ALL SELECT x FROM a, (WITH RECURSIVE b(y) AS (SELECT 1 UNION ALL SELECT y FROM b, (WITH RECURSIVE c(z) AS (SELECT 1 UNION ALL SELECT z FROM c) SELECT * FROM c) cc) SELECT * FROM b) bb) SELECT * FROM a";
  for (const [name, sql] of Object.entries({ wide, deep, unions, nestedRec, deeper: "SELECT " + "(".repeat(5000) + "1" + ")".repeat(5000) })) {
    const t = performance.now();
    const r = analyzeExposure(sql, fixtureCatalog);
    console.log(name, sql.length, "chars", (performance.now() - t).toFixed(1), "ms", r.ok ? r.statements[0]?.exposure : r.error);
  }
});
