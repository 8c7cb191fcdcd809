import { beforeAll, describe, expect, it } from "vitest";
import { loadMysqlAnalyzer } from "../../../src/inspect/mysql/analyze.js";
import type { CatalogRelation, CatalogSnapshot } from "../../../src/mask/lineage/index.js";
import { buildMaskCatalog, createMaskCatalogCache } from "../../../src/mask/catalog.js";
import { analyzeMysql } from "../../../src/inspect/mysql/analyze.js";
import { mysqlColumnPolicy } from "../../../src/session/mysql-columns.js";
import type { MysqlCommand } from "../../../src/session/mysql-responses.js";
import type { mysql } from "@airlock/wire";
import { analyzeMysqlExposure, mysqlViewLineage, type MysqlStatementExposure } from "../../../src/mask/mysql-lineage.js";

function relation(schema: string, name: string, kind: CatalogRelation["kind"], columns: readonly string[], sensitive: readonly string[]): CatalogRelation {
  return { oid: 0, schema, name, kind, columns, sensitive: new Set(sensitive) };
}

/** customers with two sensitive columns, orders with none, a view of each kind, a table in another schema. */
const catalog: CatalogSnapshot = {
  relations: [
    relation("shop", "customers", "table", ["id", "name", "email", "ssn"], ["email", "ssn"]),
    relation("shop", "orders", "table", ["id", "customer_id", "total", "note"], []),
    relation("shop", "v_names", "view", ["id", "name"], []),
    relation("shop", "v_contacts", "view", ["id", "email"], ["email"]),
    relation("hr", "people", "table", ["id", "salary"], ["salary"]),
  ],
  searchPath: [],
};

const email = "shop.customers.email";
const ssn = "shop.customers.ssn";

beforeAll(async () => {
  await loadMysqlAnalyzer();
});

function one(sql: string, options: { defaultSchema?: string; ansiQuotes?: boolean } = { defaultSchema: "shop" }): MysqlStatementExposure {
  const result = analyzeMysqlExposure(sql, catalog, options);
  if (!result.ok) throw new Error(result.error);
  const statement = result.statements[0];
  if (statement === undefined) throw new Error("no statement");
  return statement;
}

/** The sensitive flag of each output, `?` for an uncertain one. */
function flags(sql: string): string {
  const statement = one(sql);
  if (statement.outputs.length === 0) return statement.exposure;
  return statement.outputs.map((output) => (output.uncertain.length > 0 ? "?" : output.sensitive ? "S" : "-")).join("");
}

describe("analyzeMysqlExposure: outputs", () => {
  const cases: readonly (readonly [string, string])[] = [
    ["SELECT id, name FROM customers", "--"],
    ["SELECT email FROM customers", "S"],
    ["SELECT id, email AS e, ssn s FROM customers", "-SS"],
    ["SELECT c.email FROM customers c", "S"],
    ["SELECT customers.ssn FROM customers", "S"],
    ["SELECT shop.customers.ssn FROM shop.customers", "S"],
    ["SELECT `email` FROM `shop`.`customers`", "S"],
    ["SELECT EMAIL FROM CUSTOMERS", "S"],
    ["SELECT * FROM customers", "--SS"],
    ["SELECT c.* FROM customers c", "--SS"],
    ["SELECT o.*, c.name FROM orders o JOIN customers c ON c.id = o.customer_id", "-----"],
    ["SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id", "------SS"],
    ["SELECT COUNT(*) FROM customers", "-"],
    ["SELECT COUNT(1) FROM customers", "-"],
    ["SELECT COUNT(email) FROM customers", "S"],
    ["SELECT COUNT(DISTINCT ssn) FROM customers", "S"],
    ["SELECT UPPER(name) FROM customers", "-"],
    ["SELECT UPPER(email) FROM customers", "S"],
    ["SELECT LENGTH(ssn) FROM customers", "S"],
    ["SELECT SUBSTRING(ssn, 1, 3) FROM customers", "S"],
    ["SELECT CONCAT(name, ' ', email) FROM customers", "S"],
    ["SELECT CONCAT_WS(',', name, id) FROM customers", "-"],
    ["SELECT COALESCE(email, 'none') FROM customers", "S"],
    ["SELECT IFNULL(name, ssn) FROM customers", "S"],
    ["SELECT IF(id > 1, email, NULL) FROM customers", "S"],
    ["SELECT IF(ssn LIKE '1%', 'a', 'b') FROM customers", "S"],
    ["SELECT CASE WHEN id = 1 THEN name ELSE ssn END FROM customers", "S"],
    ["SELECT CASE WHEN id = 1 THEN name ELSE 'x' END FROM customers", "-"],
    ["SELECT CAST(ssn AS CHAR) FROM customers", "S"],
    ["SELECT CONVERT(email, CHAR) FROM customers", "S"],
    ["SELECT CONVERT(email USING utf8mb4) FROM customers", "S"],
    ["SELECT JSON_OBJECT('e', email) FROM customers", "S"],
    ["SELECT JSON_OBJECT('n', name) FROM customers", "-"],
    ["SELECT JSON_ARRAYAGG(ssn) FROM customers", "S"],
    ["SELECT GROUP_CONCAT(email SEPARATOR ';') FROM customers", "S"],
    ["SELECT GROUP_CONCAT(name ORDER BY ssn) FROM customers", "S"],
    ["SELECT MAX(total), SUM(total), AVG(total) FROM orders", "---"],
    ["SELECT MIN(email) FROM customers", "S"],
    ["SELECT HEX(email), MD5(ssn), SHA2(ssn, 256) FROM customers", "SSS"],
    ["SELECT email = 'a@b.c' FROM customers", "S"],
    ["SELECT id + 1, total * 2 FROM orders", "--"],
    ["SELECT 1, 'x', NULL, NOW()", "----"],
    ["SELECT id FROM customers WHERE ssn = '1'", "-"],
    ["SELECT (SELECT MAX(total) FROM orders) FROM customers", "-"],
    ["SELECT (SELECT email FROM customers LIMIT 1)", "S"],
    ["SELECT (SELECT COUNT(*) FROM customers WHERE ssn = '1')", "S"],
    ["SELECT (SELECT o.total FROM orders o WHERE o.customer_id = c.id LIMIT 1) FROM customers c", "-"],
    ["SELECT (SELECT c.email) FROM customers c", "S"],
    ["SELECT EXISTS (SELECT 1 FROM customers)", "-"],
    ["SELECT EXISTS (SELECT 1 FROM customers WHERE ssn = '1')", "S"],
    ["SELECT id IN (SELECT customer_id FROM orders) FROM customers", "-"],
    ["SELECT name IN (SELECT email FROM customers) FROM customers", "S"],
    ["SELECT d.e FROM (SELECT email AS e FROM customers) AS d", "S"],
    ["SELECT d.n FROM (SELECT name AS n, email AS e FROM customers) AS d", "-"],
    ["SELECT * FROM (SELECT name, ssn FROM customers) d", "-S"],
    ["SELECT x, y FROM (SELECT name, ssn FROM customers) AS d (x, y)", "-S"],
    ["WITH c AS (SELECT email FROM customers) SELECT email FROM c", "S"],
    ["WITH c AS (SELECT name FROM customers) SELECT * FROM c", "-"],
    ["WITH c (a, b) AS (SELECT name, ssn FROM customers) SELECT b, a FROM c", "S-"],
    ["WITH a AS (SELECT email FROM customers), b AS (SELECT email AS x FROM a) SELECT x FROM b", "S"],
    ["WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT n FROM r", "-"],
    ["WITH RECURSIVE r (n, e) AS (SELECT 1, '' UNION ALL SELECT n + 1, email FROM r JOIN customers ON id = n WHERE n < 5) SELECT n, e FROM r", "-S"],
    ["SELECT name FROM customers UNION SELECT email FROM customers", "S"],
    ["SELECT name, id FROM customers UNION ALL SELECT note, total FROM orders", "--"],
    ["SELECT id, name FROM customers UNION SELECT id, ssn FROM customers UNION SELECT 1, 'x'", "-S"],
    ["(SELECT name FROM customers) UNION (SELECT note FROM orders)", "-"],
    ["SELECT id FROM customers EXCEPT SELECT customer_id FROM orders", "-"],
    ["SELECT name FROM v_names", "-"],
    ["SELECT * FROM v_contacts", "-S"],
    ["SELECT UPPER(email) FROM v_contacts", "S"],
    ["SELECT salary FROM hr.people", "S"],
    ["SELECT p.id FROM hr.people p", "-"],
    ["SELECT @v", "?"],
    ["SELECT @@version, @@session.sql_mode", "--"],
    ["SELECT a FROM nowhere", "?"],
    ["SELECT my_function(name) FROM customers", "?"],
    ["SELECT shop.fn(1)", "?"],
    ["SELECT LOAD_FILE('/etc/passwd')", "?"],
    ["SELECT id FROM customers ORDER BY 1", "-"],
    ["SELECT ROW_NUMBER() OVER (ORDER BY ssn) FROM customers", "S"],
    ["SELECT SUM(total) OVER (PARTITION BY customer_id) FROM orders", "-"],
    ["VALUES ROW(1, 'a')", "uncertain"],
    ["SELECT DISTINCT name FROM customers", "-"],
    ["SELECT name FROM customers FOR UPDATE", "-"],
    ["SELECT missing FROM customers", "?"],
    // A name a relation of unknown columns may hold, or an outer sensitive column: both count.
    ["SELECT (SELECT ssn FROM information_schema.tables LIMIT 1) FROM customers", "S"],
    ["SELECT (SELECT table_name FROM information_schema.tables LIMIT 1) FROM customers", "-"],
    // Aliases and WITH names are case-sensitive on most servers: a match only without case is not trusted alone.
    ["SELECT (SELECT C.note FROM orders c LIMIT 1) FROM (SELECT ssn AS note FROM customers) AS C", "S"],
    ["WITH Customers AS (SELECT 'a' AS ssn) SELECT UPPER(ssn) FROM customers", "?"],
    ["WITH customers AS (SELECT 'a' AS ssn) SELECT UPPER(ssn) FROM customers", "-"],
  ];
  it.each(cases)("%s → %s", (sql, expected) => {
    expect(flags(sql)).toBe(expected);
  });

  it("names sources and uncertainty", () => {
    const statement = one("SELECT CONCAT(email, ssn) AS x, @v FROM customers");
    expect(statement.exposure).toBe("uncertain");
    expect(statement.outputs[0]).toEqual({ name: "x", sensitive: true, sources: [email, ssn], uncertain: [] });
    expect(statement.outputs[1]?.uncertain).toEqual(["reads user variable `@v`"]);
  });

  it("is uncertain with no outputs for `*` over an unknown relation", () => {
    const statement = one("SELECT * FROM nowhere");
    expect(statement.exposure).toBe("uncertain");
    expect(statement.outputs).toEqual([]);
  });

  it("expands `*` over information_schema as unknown but reads no sensitive column there", () => {
    expect(one("SELECT * FROM information_schema.tables").outputs).toEqual([]);
    expect(flags("SELECT UPPER(table_name) FROM information_schema.tables")).toBe("-");
  });

  it("says when a select list expanded `*`", () => {
    expect(one("SELECT * FROM orders").expandsStar).toBe(true);
    expect(one("SELECT d.id FROM (SELECT o.* FROM orders o) d").expandsStar).toBe(true);
    expect(one("SELECT id, UPPER(note) FROM orders").expandsStar).toBe(false);
  });

  it("reports none, columns or uncertain", () => {
    expect(one("SELECT id FROM customers").exposure).toBe("none");
    expect(one("SELECT email FROM customers").exposure).toBe("columns");
    expect(one("SELECT @x").exposure).toBe("uncertain");
  });

  it("treats statements that are not queries as uncertain with no outputs", () => {
    for (const sql of ["SHOW TABLES", "CALL p()", "EXECUTE s", "INSERT INTO orders (id) VALUES (1)"]) {
      const statement = one(sql);
      expect(statement.exposure).toBe("uncertain");
      expect(statement.outputs).toEqual([]);
    }
  });

  it("gives one result per statement of a multi-statement string, following USE", () => {
    const result = analyzeMysqlExposure("SELECT id FROM customers; USE hr; SELECT salary, id FROM people", catalog, { defaultSchema: "shop" });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.statements.map((statement) => statement.exposure)).toEqual(["none", "uncertain", "columns"]);
    expect(result.statements[2]?.outputs.map((output) => output.sensitive)).toEqual([true, false]);
  });

  it("is uncertain after a change of sql_mode in the same string", () => {
    const result = analyzeMysqlExposure("SET sql_mode = 'ANSI_QUOTES'; SELECT id FROM customers", catalog, { defaultSchema: "shop" });
    expect(result.ok && result.statements[1]?.exposure).toBe("uncertain");
  });

  it("lexes with the session's ANSI_QUOTES", () => {
    expect(one('SELECT CONCAT("ssn") FROM customers', { defaultSchema: "shop", ansiQuotes: true }).outputs[0]?.sensitive).toBe(true);
    expect(one('SELECT CONCAT("ssn") FROM customers', { defaultSchema: "shop" }).outputs[0]?.sensitive).toBe(false);
  });

  it("resolves unqualified names without a default schema as unknown", () => {
    expect(one("SELECT UPPER(name) FROM customers", {}).exposure).toBe("uncertain");
  });

  it("does not trust a relation name that matches several relations without case", () => {
    const cased: CatalogSnapshot = { relations: [...catalog.relations, relation("shop", "Customers", "table", ["id", "ssn"], [])], searchPath: [] };
    const read = (sql: string) => {
      const result = analyzeMysqlExposure(sql, cased, { defaultSchema: "shop" });
      return result.ok ? result.statements[0]?.outputs.map((output) => (output.uncertain.length > 0 ? "?" : output.sensitive ? "S" : "-")).join("") : "failed";
    };
    expect(read("SELECT UPPER(ssn) FROM Customers")).toBe("-");
    expect(read("SELECT UPPER(ssn) FROM customers")).toBe("S");
    expect(read("SELECT UPPER(ssn) FROM CUSTOMERS")).toBe("?");
  });

  it("marks nothing when no column is sensitive", () => {
    const none: CatalogSnapshot = { relations: catalog.relations.map((entry) => ({ ...entry, sensitive: new Set<string>() })), searchPath: [] };
    const result = analyzeMysqlExposure("SELECT email FROM customers WHERE ssn = 1", none, { defaultSchema: "shop" });
    expect(result.ok && result.statements[0]).toMatchObject({ exposure: "none", inference: [] });
  });

  it("fails on text it cannot lex", () => {
    expect(analyzeMysqlExposure("SELECT 'unterminated", catalog, {}).ok).toBe(false);
  });

  it("fails closed on deep nesting", () => {
    const deep = `SELECT ${"(".repeat(600)}email${")".repeat(600)} FROM customers`;
    const result = analyzeMysqlExposure(deep, catalog, { defaultSchema: "shop" });
    expect(result.ok ? result.statements[0]?.exposure : "failed").not.toBe("none");
  });

  it("rejects a non-string", () => {
    expect(() => analyzeMysqlExposure(1 as unknown as string, catalog)).toThrow(TypeError);
  });
});

describe("analyzeMysqlExposure: inference", () => {
  const cases: readonly (readonly [string, readonly string[]])[] = [
    ["SELECT id FROM customers WHERE ssn = '123'", [`${ssn} where`]],
    ["SELECT id FROM customers WHERE name = 'x'", []],
    ["SELECT id FROM customers WHERE UPPER(email) LIKE 'A%'", [`${email} where`]],
    ["SELECT o.id FROM orders o JOIN customers c ON c.email = o.note", [`${email} join`]],
    ["SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id", []],
    ["SELECT o.id FROM orders o JOIN customers c USING (id)", []],
    ["SELECT id FROM customers ORDER BY ssn", [`${ssn} order_by`]],
    ["SELECT ssn AS s FROM customers ORDER BY s", [`${ssn} order_by`]],
    ["SELECT id, email FROM customers ORDER BY 2 DESC", [`${email} order_by`]],
    ["SELECT COUNT(*) FROM customers GROUP BY email", [`${email} group_by`]],
    ["SELECT LEFT(ssn, 3) AS p, COUNT(*) FROM customers GROUP BY p", [`${ssn} group_by`]],
    ["SELECT name FROM customers GROUP BY name HAVING MAX(ssn) > '5'", [`${ssn} having`]],
    ["SELECT id FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE ssn LIKE '9%')", [`${ssn} where`]],
    ["SELECT id FROM orders WHERE EXISTS (SELECT 1 FROM customers c WHERE c.email = orders.note)", [`${email} where`]],
    ["SELECT RANK() OVER (PARTITION BY email ORDER BY id) FROM customers", [`${email} window`]],
    ["SELECT COUNT(*) FROM (SELECT id FROM customers WHERE ssn > '5') d", [`${ssn} where`]],
    ["WITH c AS (SELECT id FROM customers ORDER BY email LIMIT 1) SELECT id FROM c", [`${email} order_by`]],
    ["SELECT name FROM customers UNION SELECT note FROM orders ORDER BY 1", []],
    ["SELECT id FROM v_contacts WHERE email = 'x'", ["shop.v_contacts.email where"]],
    ["SELECT id FROM customers WHERE id = 1 ORDER BY name", []],
    // ORDER BY prefers a select alias to a column of the same name: both count.
    ["SELECT ssn AS name FROM customers ORDER BY name", [`${ssn} order_by`]],
    ["SELECT id FROM customers LIMIT 1", []],
  ];
  it.each(cases)("%s", (sql, expected) => {
    expect(one(sql).inference.map((entry) => `${entry.column} ${entry.clause}`).sort()).toEqual([...expected].sort());
  });
});

describe("mysqlViewLineage", () => {
  it("flags the columns of a view definition as the server stores it", () => {
    expect(mysqlViewLineage("select `c`.`id` AS `id`,`c`.`email` AS `email` from `shop`.`customers` `c`", catalog)).toEqual([false, true]);
    expect(mysqlViewLineage("select count(0) AS `n`,upper(`shop`.`customers`.`name`) AS `u` from `shop`.`customers`", catalog)).toEqual([false, false]);
  });

  it("follows views over views", () => {
    expect(mysqlViewLineage("select `v`.`email` AS `e`,`v`.`id` AS `id` from `shop`.`v_contacts` `v`", catalog)).toEqual([true, false]);
  });

  it("is uncertain for what it cannot follow", () => {
    expect(mysqlViewLineage("select `x`.`a` AS `a`,`c`.`id` AS `id` from `shop`.`nowhere` `x` join `shop`.`customers` `c`", catalog)).toEqual([true, false]);
    expect(mysqlViewLineage("select `x`.* from `shop`.`nowhere` `x`", catalog)).toBe("uncertain");
    expect(mysqlViewLineage("not sql at all", catalog)).toBe("uncertain");
  });
});

describe("buildMaskCatalog with the MySQL view analyser", () => {
  const table = (name: string, columns: string[]) => ({ oid: 0, schema: "shop", name, kind: "r", columns, definition: "" });
  const view = (name: string, columns: string[], definition: string) => ({ oid: 0, schema: "shop", name, kind: "v", columns, definition });
  const declared = [{ schema: "shop", table: "customers", column: "ssn", style: "redact" as const }];
  const relations = [
    table("customers", ["id", "name", "ssn"]),
    view("v1", ["id", "s", "n"], "select `shop`.`customers`.`id` AS `id`,upper(`shop`.`customers`.`ssn`) AS `s`,count(0) AS `n` from `shop`.`customers` group by `shop`.`customers`.`id`"),
    view("v2", ["x", "id"], "select concat(`v`.`s`,'!') AS `x`,`v`.`id` AS `id` from `shop`.`v1` `v`"),
    view("v3", ["a"], "select `w`.`a` AS `a` from `shop`.`nowhere` `w`"),
    view("v4", ["id", "name"], "select 'unparsable"),
  ];

  it("flags only the view columns derived from sensitive ones, views over views too", () => {
    const built = buildMaskCatalog(relations, declared, mysqlViewLineage);
    const sensitiveOf = (name: string) => [...(built.snapshot.relations.find((relation) => relation.name === name)?.sensitive ?? [])].sort();
    expect(sensitiveOf("v1")).toEqual(["s"]);
    expect(sensitiveOf("v2")).toEqual(["x"]);
    expect(sensitiveOf("v3")).toEqual(["a"]);
    expect(sensitiveOf("v4")).toEqual(["id", "name"]);
  });

  it("is what createMaskCatalogCache builds for `mysql`", async () => {
    const cache = createMaskCatalogCache(async () => relations, declared, 60_000, Date.now, "mysql");
    const built = await cache.get();
    expect([...(built.snapshot.relations.find((relation) => relation.name === "v1")?.sensitive ?? [])]).toEqual(["s"]);
  });
});

describe("mysqlColumnPolicy with lineage", () => {
  const tables = [
    { oid: 0, schema: "shop", name: "customers", kind: "r", columns: ["id", "name", "email", "ssn"], definition: "" },
    { oid: 0, schema: "shop", name: "orders", kind: "r", columns: ["id", "customer_id", "total", "note"], definition: "" },
  ];
  const maskCatalog = buildMaskCatalog(tables, [
    { schema: "shop", table: "customers", column: "email", style: "partial", keep: 4 },
    { schema: "shop", table: "customers", column: "ssn", style: "redact" },
  ]);
  const command = { id: 1 } as MysqlCommand;
  const expression = (name: string): mysql.ColumnDefinition41 => ({ schema: "", table: "", orgTable: "", name, orgName: "" }) as mysql.ColumnDefinition41;

  function policy(sql: string, inference: "allow" | "review" | "deny" = "deny", options: { ansiQuotes?: boolean } = {}) {
    const analysis = analyzeMysql(sql, { defaultSchema: "shop", ...options });
    if (!analysis.ok) throw new Error(analysis.error);
    const masking = { config: { inference, detectors: undefined }, catalog: maskCatalog } as unknown as Parameters<typeof mysqlColumnPolicy>[0];
    return { columns: mysqlColumnPolicy(masking, () => ({ statements: analysis.statements }), () => "shop", () => options), statements: analysis.statements };
  }

  it("lets expressions that derive from no sensitive column through, and redacts those that do", () => {
    const { columns } = policy("SELECT COUNT(*), UPPER(name), LOWER(ssn) AS l FROM customers");
    expect(columns.decide(expression("COUNT(*)"), command, 0, 0)).toBe("clear");
    expect(columns.decide(expression("UPPER(name)"), command, 1, 0)).toBe("clear");
    expect(columns.decide(expression("l"), command, 2, 0)).toEqual({ style: "redact", label: "shop.customers.ssn" });
  });

  it("matches result i of a multi-statement string to statement i", () => {
    const { columns } = policy("SELECT UPPER(email) FROM customers; SELECT UPPER(name) FROM customers");
    expect(columns.decide(expression("UPPER(email)"), command, 0, 0)).toEqual({ style: "redact", label: "shop.customers.email" });
    expect(columns.decide(expression("UPPER(name)"), command, 0, 1)).toBe("clear");
  });

  it("falls back to uncertain when lineage is uncertain or cannot be matched", () => {
    expect(policy("SELECT @v, UPPER(name) FROM customers").columns.decide(expression("@v"), command, 0, 0)).toBe("uncertain");
    // After a CALL, results no longer match statements one to one.
    expect(policy("CALL p(); SELECT UPPER(name) FROM customers").columns.decide(expression("UPPER(name)"), command, 0, 1)).toBe("uncertain");
    // A column named otherwise than the output it should be.
    expect(policy("SELECT UPPER(name) AS u FROM customers").columns.decide(expression("x"), command, 0, 0)).toBe("uncertain");
    // No result index: the old rule.
    expect(policy("SELECT UPPER(name) FROM customers").columns.decide(expression("UPPER(name)"), command)).toBe("uncertain");
  });

  it("does not trust positions after a `*` expanded from the catalog (it may be stale)", () => {
    expect(policy("SELECT *, UPPER(name) AS u FROM customers").columns.decide(expression("u"), command, 4, 0)).toBe("uncertain");
  });

  it("reads a text both ways when the quotes it holds depend on ANSI_QUOTES", () => {
    expect(policy('SELECT CONCAT("ssn") AS c FROM customers').columns.decide(expression("c"), command, 0, 0)).toEqual({ style: "redact", label: "shop.customers.ssn" });
    expect(policy('SELECT CONCAT("x") AS c FROM customers').columns.decide(expression("c"), command, 0, 0)).toBe("uncertain");
  });

  it("reports inference findings with the connection's action", () => {
    const { columns, statements } = policy("SELECT id FROM customers WHERE ssn = '1' ORDER BY email", "review");
    expect(columns.inference({ statements })).toEqual({
      action: "review",
      columns: ["shop.customers.ssn (where)", "shop.customers.email (order by)"],
      reason: "predicates on sensitive columns can reveal their values: shop.customers.ssn (where), shop.customers.email (order by)",
    });
    const clean = policy("SELECT id FROM customers WHERE name = 'x'");
    expect(clean.columns.inference({ statements: clean.statements })).toBeUndefined();
  });

  it("follows USE between statements for inference", () => {
    const { columns, statements } = policy("USE other; SELECT id FROM customers WHERE ssn = '1'");
    expect(columns.inference({ statements })).toBeUndefined();
    const back = policy("USE shop; SELECT id FROM customers WHERE ssn = '1'");
    expect(back.columns.inference({ statements: back.statements })?.columns).toEqual(["shop.customers.ssn (where)"]);
  });
});
