import { beforeAll, it } from "vitest";
import { loadAnalyzer } from "../../../src/inspect/index.js";
import { analyzeExposure } from "../../../src/mask/lineage/index.js";
import { fixtureCatalog } from "./fixture.js";
import { readFileSync } from "node:fs";
beforeAll(async () => { await loadAnalyzer(); });
it("prints", () => {
  const lines = readFileSync("/tmp/q.sql", "utf8").split("\n").filter((l) => l.trim() !== "");
  for (const sql of lines) {
    const r = analyzeExposure(sql, fixtureCatalog);
    if (!r.ok) { console.log(sql, "=> ERROR", r.error); continue; }
    for (const s of r.statements) console.log(sql, "\n   =>", s.exposure, JSON.stringify(s.outputs.map(o => (o.star ? "*" : "") + (o.sensitive ? "S" : "-") + (o.sources.length ? "[" + o.sources.join(",") + "]" : ""))), "inf", JSON.stringify(s.inference.map(i => i.clause + ":" + i.column)), "copies", s.copiesSensitive, "\n      ", s.reasons.join(" | "));
  }
});
