import { beforeAll, it } from "vitest";
import { loadAnalyzer } from "../../../src/inspect/index.js";
import { parse } from "../../../src/inspect/postgres/analyze.js";
import { analyzeExposure } from "../../../src/mask/lineage/index.js";
import { fixtureCatalog } from "./fixture.js";
import { parseSync } from "libpg-query";
beforeAll(async () => { await loadAnalyzer(); });
it("prof", () => {
  const sql = "SELECT id, name FROM customers WHERE id = $1";
  const time = (label: string, f: () => unknown) => { for (let i = 0; i < 3000; i++) f(); const t = performance.now(); for (let i = 0; i < 5000; i++) f(); console.log(label, ((performance.now() - t) / 5000 * 1000).toFixed(1), "µs"); };
  for (let k = 0; k < 2; k++) {
    time("parseSync", () => parseSync(sql));
    time("parse", () => parse(sql));
    time("analyzeExposure", () => analyzeExposure(sql, fixtureCatalog));
  }
});
