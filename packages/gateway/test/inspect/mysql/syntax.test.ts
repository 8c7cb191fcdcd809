import { beforeAll, describe, expect, it } from "vitest";
import { analyzeMysql, loadMysqlAnalyzer } from "../../../src/inspect/index.js";
import { mysqlSyntax } from "./syntax.js";

beforeAll(async () => {
  await loadMysqlAnalyzer();
});

/** Not MySQL (`COMMENT ON`), or syntax the analyser refuses (MariaDB's system-versioned tables). */
const refused = new Set(["COMMENT ON TABLE orders IS 'x'", "SELECT * FROM orders FOR SYSTEM_TIME AS OF TIMESTAMP '2020-01-01 00:00:00'"]);

describe("MySQL and MariaDB syntax", () => {
  it("has the statements the parsers were measured on", () => {
    expect(mysqlSyntax.length).toBe(339);
  });

  it.each(mysqlSyntax.map(([feature, sql]) => [`${feature}: ${sql}`, sql] as const))("%s", (_name, sql) => {
    const analysis = analyzeMysql(sql, { server: { flavor: "mariadb", version: 101100 } });
    expect(analysis.ok, analysis.ok ? "" : analysis.error).toBe(!refused.has(sql));
  });
});
