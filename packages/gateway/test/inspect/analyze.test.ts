import { statementClasses } from "@airlock/policy";
import { beforeAll, describe, expect, it } from "vitest";
import { analyzePostgres, createAnalysisCache, loadAnalyzer, type Analysis, type StatementAnalysis } from "../../src/inspect/index.js";
import { createFacts } from "../../src/inspect/postgres/facts.js";
import { compileSafeFunctions } from "../../src/inspect/postgres/functions.js";
import { walkStatement } from "../../src/inspect/postgres/walk.js";
import { corpus } from "./corpus.js";

beforeAll(async () => {
  await loadAnalyzer();
});

function ok(analysis: Analysis): Extract<Analysis, { ok: true }> {
  if (!analysis.ok) throw new Error(`expected an analysis, got error: ${analysis.error}`);
  return analysis;
}

function only(sql: string, options?: Parameters<typeof analyzePostgres>[1]): StatementAnalysis {
  const statements = ok(analyzePostgres(sql, options)).statements;
  expect(statements).toHaveLength(1);
  return statements[0]!;
}

describe("corpus", () => {
  it("is large and covers every class, with benign look-alikes", () => {
    expect(corpus.length).toBeGreaterThanOrEqual(170);
    expect(corpus.filter((entry) => entry.benign === true).length).toBeGreaterThanOrEqual(45);
    for (const statementClass of statementClasses) {
      expect(corpus.some((entry) => entry.classes.includes(statementClass)), statementClass).toBe(true);
    }
    expect(new Set(corpus.map((entry) => entry.sql)).size).toBe(corpus.length);
    for (const entry of corpus) expect([...entry.classes].sort()).toEqual(entry.classes);
    for (const entry of corpus.filter((e) => e.benign === true)) expect(entry.classes).toEqual(["read"]);
  });

  it.each(corpus.map((entry) => [entry.sql, entry] as const))("%s", (_sql, entry) => {
    const analysis = ok(analyzePostgres(entry.sql));
    const reasons = analysis.statements.flatMap((statement) => statement.reasons);
    expect(analysis.classes, reasons.join("; ")).toEqual(entry.classes);
    expect(analysis.statements.some((statement) => statement.unboundedWrite), reasons.join("; ")).toBe(entry.unbounded ?? false);
    for (const statement of analysis.statements) {
      expect(statement.classes.length).toBeGreaterThan(0);
      expect(statement.reasons.length).toBeGreaterThan(0);
    }
  });
});

describe("analyzePostgres", () => {
  it("analyses each statement of a multi-statement string and unions the classes", () => {
    const analysis = ok(analyzePostgres("SELECT 1; DELETE FROM audit WHERE id = 1; GRANT SELECT ON orders TO PUBLIC"));
    expect(analysis.statements.map((statement) => statement.kind)).toEqual(["SelectStmt", "DeleteStmt", "GrantStmt"]);
    expect(analysis.statements.map((statement) => statement.text)).toEqual([
      "SELECT 1",
      "DELETE FROM audit WHERE id = 1",
      "GRANT SELECT ON orders TO PUBLIC",
    ]);
    expect(analysis.statements.map((statement) => statement.classes)).toEqual([["read"], ["write"], ["admin"]]);
    expect(analysis.classes).toEqual(["admin", "read", "write"]);
  });

  it("slices statement texts by bytes, so text after multi-byte characters stays whole", () => {
    const analysis = ok(analyzePostgres("SELECT 'héllo → wörld'; DELETE FROM audit WHERE note = 'ü'"));
    expect(analysis.statements.map((statement) => statement.text)).toEqual(["SELECT 'héllo → wörld'", "DELETE FROM audit WHERE note = 'ü'"]);
  });

  it("gives reasons in lowercase sentences with names in backticks", () => {
    expect(only("DELETE FROM audit").reasons).toEqual(["DELETE from `audit`", "DELETE without WHERE on `audit`"]);
    expect(only("UPDATE orders SET total = 0 WHERE 1 = 1").reasons).toContain("UPDATE with an always-true WHERE on `orders`");
    expect(only("SELECT pg_read_file('/etc/passwd')").reasons).toEqual(["calls `pg_read_file`: it reads a server file"]);
    expect(only("DO $$ BEGIN EXECUTE 'SELECT 1'; END $$").reasons).toContain("dynamic SQL (EXECUTE) in a DO block");
    expect(only("SELECT touch()").reasons).toEqual(["calls user function `touch`"]);
    expect(only("SET ROLE postgres").reasons).toEqual(["SET `role` changes the session's role"]);
    expect(only("SELECT 1").reasons).toEqual(["SELECT only reads"]);
    expect(only("CREATE TABLE t1 (id int)").reasons).toEqual(["CREATE TABLE `t1`"]);
    expect(only("WITH gone AS (DELETE FROM audit WHERE id = 1 RETURNING id) SELECT * FROM gone").reasons).toContain(
      "data-modifying WITH query `gone`",
    );
  });

  it("lists relations with read or write access, without WITH query names", () => {
    expect(only("INSERT INTO public.audit(note) SELECT name FROM customers c JOIN orders o ON o.customer_id = c.id").relations).toEqual([
      { name: "customers", access: "read" },
      { name: "orders", access: "read" },
      { schema: "public", name: "audit", access: "write" },
    ]);
    expect(only("WITH x AS (SELECT * FROM orders) SELECT * FROM x").relations).toEqual([{ name: "orders", access: "read" }]);
    expect(only("TRUNCATE audit, orders").relations).toEqual([
      { name: "audit", access: "write" },
      { name: "orders", access: "write" },
    ]);
    expect(only("COPY audit FROM STDIN").relations).toEqual([{ name: "audit", access: "write" }]);
    expect(only("COPY audit TO STDOUT").relations).toEqual([{ name: "audit", access: "read" }]);
    expect(only("SELECT * INTO audit_copy FROM audit").relations).toEqual([
      { name: "audit", access: "read" },
      { name: "audit_copy", access: "write" },
    ]);
    expect(only("UPDATE orders SET total = (SELECT max(total) FROM orders) WHERE id = 1").relations).toEqual([
      { name: "orders", access: "read" },
      { name: "orders", access: "write" },
    ]);
    expect(only("DROP TABLE IF EXISTS public.a, b").relations).toEqual([
      { name: "b", access: "write" },
      { schema: "public", name: "a", access: "write" },
    ]);
  });

  it("lists the functions called, as written, sorted", () => {
    expect(only("SELECT lower(name), pg_catalog.upper(email), public.touch(), count(*) FROM customers").functions).toEqual([
      "count",
      "lower",
      "pg_catalog.upper",
      "public.touch",
    ]);
    expect(only("SELECT * FROM orders WHERE total > (SELECT avg(total) FROM orders WHERE status = lower('X'))").functions).toEqual(["avg", "lower"]);
  });

  it("marks copies of data past the result stream", () => {
    expect(only("CREATE TABLE IF NOT EXISTS c2 AS SELECT * FROM customers").copiesData).toBe(true);
    expect(only("SELECT * INTO c3 FROM customers").copiesData).toBe(true);
    expect(only("INSERT INTO audit(note) SELECT email FROM customers").copiesData).toBe(true);
    expect(only("COPY (SELECT email FROM customers) TO STDOUT").copiesData).toBe(true);
    expect(only("UPDATE customers SET name = email WHERE id = 1").copiesData).toBe(true);
    expect(only("INSERT INTO audit(note) VALUES ('x')").copiesData).toBe(false);
    expect(only("COPY customers TO STDOUT").copiesData).toBe(false);
    expect(only("SELECT email FROM customers").copiesData).toBe(false);
    expect(only("UPDATE orders SET status = 'x' WHERE id = 1").copiesData).toBe(false);
  });

  it("reports PREPARE with the prepared statement's own analysis", () => {
    const prepared = only("PREPARE del (int) AS DELETE FROM audit WHERE id = $1");
    expect(prepared.kind).toBe("PrepareStmt");
    expect(prepared.classes).toEqual(["write"]);
    expect(prepared.prepares?.name).toBe("del");
    expect(prepared.prepares?.statement.kind).toBe("DeleteStmt");
    expect(prepared.prepares?.statement.text).toBe("DELETE FROM audit WHERE id = $1");
    expect(prepared.prepares?.statement.classes).toEqual(["write"]);
    expect(prepared.prepares?.statement.relations).toEqual([{ name: "audit", access: "write" }]);
    expect(only("PREPARE r AS SELECT 1 AS x").prepares?.statement.classes).toEqual(["read"]);
  });

  it("reports EXECUTE as a write to resolve, with the prepared statement's name", () => {
    const executed = only("EXECUTE del(1)");
    expect(executed.executes).toBe("del");
    expect(executed.classes).toEqual(["write"]);
    expect(only("EXECUTE p(pg_read_file('/etc/passwd'))").classes).toEqual(["dangerous", "write"]);
    expect(only("CREATE TABLE IF NOT EXISTS x AS EXECUTE p").executes).toBe("p");
    expect(only("SELECT 1").executes).toBeUndefined();
  });

  it("reports DECLARE CURSOR's name and classifies its query", () => {
    const declared = only("DECLARE c2 CURSOR WITH HOLD FOR SELECT * FROM orders");
    expect(declared.declaresCursor).toBe("c2");
    expect(declared.classes).toEqual(["read"]);
    expect(only("DECLARE c3 CURSOR FOR SELECT * FROM orders FOR UPDATE").classes).toEqual(["write"]);
    expect(only("DECLARE c4 CURSOR FOR SELECT pg_read_file('x')").classes).toEqual(["dangerous"]);
  });

  it("reports transaction control", () => {
    const analysis = ok(
      analyzePostgres(
        "BEGIN; START TRANSACTION; SAVEPOINT a; RELEASE SAVEPOINT a; ROLLBACK TO a; COMMIT; ROLLBACK; PREPARE TRANSACTION 'g'; COMMIT PREPARED 'g'; ROLLBACK PREPARED 'g'; END; ABORT",
      ),
    );
    expect(analysis.statements.map((statement) => statement.transaction)).toEqual([
      "begin",
      "begin",
      "savepoint",
      "release",
      "rollback_to",
      "commit",
      "rollback",
      "prepare",
      "commit_prepared",
      "rollback_prepared",
      "commit",
      "rollback",
    ]);
    expect(analysis.classes).toEqual(["read"]);
    expect(only("SELECT 1").transaction).toBeUndefined();
  });

  it("takes functions marked safe in configuration as reads", () => {
    expect(only("SELECT touch()").classes).toEqual(["write"]);
    const options = { safeFunctions: ["touch"] };
    expect(only("SELECT touch()", options).classes).toEqual(["read"]);
    expect(only("SELECT public.touch()", options).classes).toEqual(["read"]);
    expect(only("CALL touch()", options).classes).toEqual(["read"]);
    const qualified = { safeFunctions: ["public.touch"] };
    expect(only("SELECT public.touch()", qualified).classes).toEqual(["read"]);
    expect(only("SELECT touch()", qualified).classes).toEqual(["read"]);
    expect(only("SELECT other.touch()", qualified).classes).toEqual(["write"]);
    // The dangerous list wins over configuration.
    expect(only("SELECT dblink('x', 'y')", { safeFunctions: ["dblink"] }).classes).toEqual(["dangerous"]);
  });

  it("treats operators that are not built in as user functions", () => {
    expect(only("SELECT 1 OPERATOR(pg_catalog.+) 2").classes).toEqual(["read"]);
    expect(only("SELECT 1 OPERATOR(public.===) 2").classes).toEqual(["write"]);
    expect(only("SELECT name <%> 'x' FROM customers").classes).toEqual(["write"]);
    expect(only("SELECT name <%> 'x' FROM customers", { safeFunctions: ["<%>"] }).classes).toEqual(["read"]);
  });

  it("analyses SQL inside PL/pgSQL wherever it sits", () => {
    const body = (code: string): StatementAnalysis => only(`DO $$ DECLARE x int; r record; BEGIN ${code} END $$`);
    expect(body("x := touch();").classes).toEqual(["write"]);
    expect(body("IF touch() > 0 THEN NULL; END IF;").classes).toEqual(["write"]);
    expect(body("WHILE x < touch() LOOP x := x + 1; END LOOP;").classes).toEqual(["write"]);
    expect(body("FOR r IN SELECT * FROM orders FOR UPDATE LOOP NULL; END LOOP;").classes).toEqual(["write"]);
    expect(body("RETURN;").classes).toEqual(["read"]);
    expect(body("ASSERT (SELECT nextval('seq1')) > 0;").classes).toEqual(["write"]);
    expect(body("BEGIN NULL; EXCEPTION WHEN others THEN DELETE FROM audit WHERE id = 0; END;").classes).toEqual(["write"]);
    const notCursor = body("OPEN r FOR EXECUTE 'SELECT 1';");
    expect(notCursor.classes).toEqual(["dangerous"]);
    expect(notCursor.reasons.some((reason) => reason.startsWith("could not parse the PL/pgSQL of a DO block: "))).toBe(true);
    const cursor = only("DO $$ DECLARE c refcursor; BEGIN OPEN c FOR EXECUTE 'SELECT 1'; END $$");
    expect(cursor.reasons).toContain("dynamic SQL (OPEN ... FOR EXECUTE) in a DO block");
    const declared = only("DO $$ DECLARE c CURSOR FOR SELECT touch(); BEGIN OPEN c; END $$");
    expect(declared.classes).toEqual(["write"]);
    const func = only(
      "CREATE OR REPLACE FUNCTION f_set() RETURNS SETOF int LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY EXECUTE 'SELECT 1'; END $$",
    );
    expect(func.classes).toEqual(["dangerous", "ddl"]);
    expect(func.reasons).toContain("dynamic SQL (RETURN QUERY EXECUTE) in function `f_set`");
  });

  it("fails closed on a PL/pgSQL body it cannot parse", () => {
    const broken = only("DO $$ BEGIN x := 1; END $$");
    expect(broken.classes).toEqual(["dangerous"]);
    expect(broken.reasons).toEqual(["DO block", "could not parse the PL/pgSQL of a DO block: `x` is not a known variable"]);
  });

  it("refuses what does not parse", () => {
    expect(analyzePostgres("selec 1")).toEqual({ ok: false, error: "syntax error at or near `selec`" });
    expect(analyzePostgres("SELECT 1; DELETE FROM")).toEqual({ ok: false, error: "syntax error at end of input" });
    expect(analyzePostgres("SELECT 1\u0000; DROP TABLE customers")).toEqual({ ok: false, error: "statement contains a NUL character" });
    const deep = ok(analyzePostgres(`SELECT ${"1 + ".repeat(200)}1`));
    expect(deep.classes).toEqual(["read"]);
    const tooDeep = analyzePostgres(`SELECT ${"1 + ".repeat(5000)}1`);
    expect(tooDeep).toEqual({ ok: false, error: "statement is nested too deeply to analyse" });
  });

  it("fails closed on a function body it cannot parse", () => {
    const analysis = only("CREATE OR REPLACE FUNCTION f_sql2() RETURNS int LANGUAGE sql AS 'SELEC 1'");
    expect(analysis.classes).toEqual(["dangerous", "ddl"]);
    expect(analysis.reasons).toContain("could not parse SQL in function `f_sql2`: syntax error at or near `SELEC`");
  });

  it("fails closed on statement types it does not know", () => {
    // No parser output has such a node today; a newer libpg_query could.
    const facts = createFacts();
    const nested = { sql: () => undefined, plpgsql: () => undefined };
    walkStatement({ AlterQuantumStmt: { relation: { relname: "orders" } } }, { facts, safe: compileSafeFunctions(undefined), nested, statementText: "" });
    expect([...facts.classes]).toEqual(["dangerous"]);
    expect([...facts.reasons]).toEqual(["unrecognised statement `AlterQuantumStmt`"]);
    const inner = createFacts();
    walkStatement({ SelectStmt: { fromClause: [{ FancyStmt: {} }] } }, { facts: inner, safe: compileSafeFunctions(undefined), nested, statementText: "" });
    expect([...inner.reasons]).toEqual(["unrecognised statement `FancyStmt`"]);
  });

  it("throws a TypeError for a non-string", () => {
    expect(() => analyzePostgres(42 as unknown as string)).toThrow(TypeError);
  });

  it("gives equal fingerprints for statements differing only in constants", () => {
    const a = ok(analyzePostgres("SELECT * FROM orders WHERE id = 1 AND status = 'paid'"));
    const b = ok(analyzePostgres("select * from orders where id = 42 and status = 'new'"));
    const c = ok(analyzePostgres("SELECT * FROM orders WHERE customer_id = 1"));
    expect(a.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(a.fingerprint).toBe(b.fingerprint);
    expect(a.fingerprint).not.toBe(c.fingerprint);
  });

  it("returns frozen results", () => {
    const analysis = ok(analyzePostgres("SELECT 1"));
    expect(Object.isFrozen(analysis)).toBe(true);
    expect(Object.isFrozen(analysis.statements[0])).toBe(true);
    expect(Object.isFrozen(analysis.statements[0]?.classes)).toBe(true);
  });
});

describe("createAnalysisCache", () => {
  it("returns the same object for the same text, and keeps options apart", () => {
    const cache = createAnalysisCache({ max: 2 });
    const first = cache.analyze("SELECT touch()");
    expect(cache.analyze("SELECT touch()")).toBe(first);
    const options = { safeFunctions: ["touch"] };
    const safe = cache.analyze("SELECT touch()", options);
    expect(safe).not.toBe(first);
    expect(ok(safe).classes).toEqual(["read"]);
    expect(cache.analyze("SELECT touch()", options)).toBe(safe);
    expect(cache.size).toBe(2);
  });

  it("evicts the least recently used entry", () => {
    const cache = createAnalysisCache({ max: 2 });
    const a = cache.analyze("SELECT 1");
    const b = cache.analyze("SELECT 2");
    expect(cache.analyze("SELECT 1")).toBe(a);
    cache.analyze("SELECT 3");
    expect(cache.size).toBe(2);
    expect(cache.analyze("SELECT 1")).toBe(a);
    expect(cache.analyze("SELECT 2")).not.toBe(b);
  });

  it("caches errors too, but not texts over the length limit", () => {
    const cache = createAnalysisCache({ maxTextLength: 20 });
    const error = cache.analyze("selec 1");
    expect(error.ok).toBe(false);
    expect(cache.analyze("selec 1")).toBe(error);
    const long = "SELECT 1 AS a_rather_long_alias";
    expect(cache.analyze(long)).not.toBe(cache.analyze(long));
  });

  it("rejects a bad size", () => {
    expect(() => createAnalysisCache({ max: 0 })).toThrow(TypeError);
  });
});
