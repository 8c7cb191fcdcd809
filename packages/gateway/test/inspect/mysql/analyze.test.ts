import { beforeAll, describe, expect, it } from "vitest";
import {
  analyzeMysql,
  createMysqlAnalysisCache,
  createMysqlSessionState,
  isSafeClientCharset,
  loadMysqlAnalyzer,
  parseServerVersion,
  type MysqlAnalysis,
  type MysqlAnalyzeOptions,
  type MysqlStatementAnalysis,
} from "../../../src/inspect/index.js";

const server = { flavor: "mariadb", version: 101106 } as const;

beforeAll(async () => {
  await loadMysqlAnalyzer();
});

function ok(analysis: MysqlAnalysis): Extract<MysqlAnalysis, { ok: true }> {
  if (!analysis.ok) throw new Error(`expected an analysis, got error: ${analysis.error}`);
  return analysis;
}

function analyze(sql: string, options: MysqlAnalyzeOptions = {}): Extract<MysqlAnalysis, { ok: true }> {
  return ok(analyzeMysql(sql, { server, ...options }));
}

function only(sql: string, options: MysqlAnalyzeOptions = {}): MysqlStatementAnalysis {
  const statements = analyze(sql, options).statements;
  expect(statements).toHaveLength(1);
  return statements[0]!;
}

describe("analyzeMysql", () => {
  it("analyses each statement of a multi-statement string and unions the classes", () => {
    const analysis = analyze("SELECT 1; DELETE FROM audit WHERE id = 1; GRANT SELECT ON db.* TO u");
    expect(analysis.statements.map((statement) => statement.kind)).toEqual(["SELECT", "DELETE", "GRANT"]);
    expect(analysis.statements.map((statement) => statement.text)).toEqual(["SELECT 1", "DELETE FROM audit WHERE id = 1", "GRANT SELECT ON db.* TO u"]);
    expect(analysis.statements.map((statement) => statement.classes)).toEqual([["read"], ["write"], ["admin"]]);
    expect(analysis.classes).toEqual(["admin", "read", "write"]);
  });

  it("keeps texts whole after multi-byte characters and reads statements hidden in executable comments", () => {
    const analysis = analyze("SELECT 'héllo → wörld'; /*!50000 DELETE FROM audit WHERE note = 'ü' */");
    expect(analysis.statements.map((statement) => statement.text)).toEqual(["SELECT 'héllo → wörld'", "DELETE FROM audit WHERE note = 'ü' */"]);
    expect(analysis.classes).toEqual(["read", "write"]);
  });

  it("keeps a stored program's body in one statement", () => {
    const analysis = analyze(
      "CREATE PROCEDURE p(IN a INT) BEGIN DECLARE c CURSOR FOR SELECT id FROM orders; DECLARE CONTINUE HANDLER FOR NOT FOUND SET @done = 1; IF a > 0 THEN LOOP LEAVE; END LOOP; ELSEIF a < 0 THEN WHILE a < 0 DO SET a = a + 1; END WHILE; ELSE REPEAT SET a = a - 1; UNTIL a < 0 END REPEAT; END IF; CASE a WHEN 1 THEN SELECT 1; ELSE BEGIN END; END CASE; END; CALL p(1)",
    );
    expect(analysis.statements.map((statement) => statement.kind)).toEqual(["CREATE PROCEDURE", "CALL"]);
    expect(analysis.statements[0]?.relations).toEqual([{ name: "orders", access: "read" }]);
    expect(analysis.statements[0]?.classes).toEqual(["ddl"]);
  });

  it("classifies what a stored program's body does, expressions and handlers included", () => {
    expect(only("CREATE FUNCTION f() RETURNS INT RETURN touch()").classes).toEqual(["ddl", "write"]);
    expect(only("CREATE PROCEDURE p() BEGIN IF touch() THEN SELECT 1; END IF; END").classes).toEqual(["ddl", "write"]);
    expect(only("CREATE PROCEDURE p() BEGIN DECLARE EXIT HANDLER FOR SQLEXCEPTION DELETE FROM audit; SELECT 1; END").unboundedWrite).toBe(true);
    expect(only("CREATE PROCEDURE p() BEGIN DECLARE x INT DEFAULT LOAD_FILE('/etc/passwd'); END").classes).toEqual(["dangerous", "ddl"]);
    const trigger = only("CREATE TRIGGER t BEFORE INSERT ON db.orders FOR EACH ROW SET NEW.status = 'new'");
    expect(trigger.relations).toEqual([{ schema: "db", name: "orders", access: "write" }]);
    expect(only("CREATE DEFINER = 'root'@'%' PROCEDURE p() SELECT 1").classes).toEqual(["admin", "ddl"]);
    expect(only("CREATE DEFINER = CURRENT_USER PROCEDURE p() SELECT 1").classes).toEqual(["ddl"]);
    const broken = only("CREATE PROCEDURE p() BEGIN SELEC 1; END");
    expect(broken.classes).toEqual(["dangerous", "ddl"]);
    expect(broken.reasons.some((reason) => reason.startsWith("could not parse SQL in procedure `p`"))).toBe(true);
  });

  it("reports relations with their schema, and resolves unqualified ones in the current schema", () => {
    expect(only("SELECT * FROM a JOIN db2.b ON TRUE").relations).toEqual([
      { name: "a", access: "read" },
      { schema: "db2", name: "b", access: "read" },
    ]);
    expect(only("SELECT * FROM a JOIN db2.b ON TRUE", { defaultSchema: "shop" }).relations).toEqual([
      { schema: "db2", name: "b", access: "read" },
      { schema: "shop", name: "a", access: "read" },
    ]);
    const analysis = analyze("SELECT * FROM a; USE other; DELETE FROM a WHERE id = 1", { defaultSchema: "shop" });
    expect(analysis.statements.map((statement) => statement.relations)).toEqual([[{ schema: "shop", name: "a", access: "read" }], [], [{ schema: "other", name: "a", access: "write" }]]);
    expect(analysis.statements[1]?.useSchema).toBe("other");
    expect(only("WITH x AS (SELECT 1) SELECT * FROM x", { defaultSchema: "shop" }).relations).toEqual([]);
  });

  it("lists the functions called, in lowercase, sorted", () => {
    expect(only("SELECT LOWER(name), db.Touch(), COUNT(*) FROM customers").functions).toEqual(["count", "db.touch", "lower"]);
  });

  it("takes stored functions and procedures marked safe as reads, the dangerous list first", () => {
    expect(only("SELECT touch()").classes).toEqual(["write"]);
    expect(only("SELECT touch()", { safeFunctions: ["touch"] }).classes).toEqual(["read"]);
    expect(only("SELECT shop.touch()", { safeFunctions: ["touch"] }).classes).toEqual(["read"]);
    expect(only("SELECT touch()", { safeFunctions: ["shop.touch"], defaultSchema: "shop" }).classes).toEqual(["read"]);
    expect(only("SELECT touch()", { safeFunctions: ["shop.touch"], defaultSchema: "other" }).classes).toEqual(["write"]);
    expect(only("SELECT other.touch()", { safeFunctions: ["shop.touch"] }).classes).toEqual(["write"]);
    expect(only("CALL report()", { safeFunctions: ["REPORT"] }).classes).toEqual(["read"]);
    expect(only("SELECT load_file('x')", { safeFunctions: ["load_file"] }).classes).toEqual(["dangerous"]);
    expect(only("CALL sys.execute_prepared_stmt('DROP TABLE t')", { safeFunctions: ["execute_prepared_stmt"] }).classes).toEqual(["dangerous"]);
  });

  it("marks copies of data past the result stream", () => {
    expect(only("INSERT INTO audit (note) SELECT email FROM customers").copiesData).toBe(true);
    expect(only("CREATE TABLE c2 AS SELECT * FROM customers").copiesData).toBe(true);
    expect(only("SELECT email INTO @e FROM customers LIMIT 1").copiesData).toBe(true);
    expect(only("UPDATE orders o JOIN customers c ON c.id = o.customer_id SET o.status = 'x' WHERE o.id = 1").copiesData).toBe(true);
    expect(only("INSERT INTO audit (note) VALUES ('x')").copiesData).toBe(false);
    expect(only("UPDATE orders SET status = 'x' WHERE id = 1").copiesData).toBe(false);
    expect(only("SELECT email FROM customers").copiesData).toBe(false);
  });

  it("reports PREPARE with the prepared statement's own analysis", () => {
    const prepared = only("PREPARE del FROM 'DELETE FROM audit WHERE id = ?'");
    expect(prepared.kind).toBe("PREPARE");
    expect(prepared.classes).toEqual(["write"]);
    expect(prepared.prepares?.name).toBe("del");
    expect(prepared.prepares?.statement).toMatchObject({ kind: "DELETE", text: "DELETE FROM audit WHERE id = ?", classes: ["write"] });
    expect(only("PREPARE r FROM _utf8mb4'SELECT ' 'id FROM t'").prepares?.statement.relations).toEqual([{ name: "t", access: "read" }]);
    expect(only("PREPARE r FROM 'SELECT 1; SELECT 2'").classes).toEqual(["dangerous"]);
    expect(only("PREPARE r FROM @sql").classes).toEqual(["dangerous"]);
    expect(only("PREPARE r FROM 'SET sql_mode = ''ANSI_QUOTES'''").classes).toEqual(["dangerous"]);
    expect(only("PREPARE r FROM 'SELEC 1'").reasons.some((reason) => reason.startsWith("could not parse the SQL of prepared statement `r`"))).toBe(true);
  });

  it("reports EXECUTE as a write to resolve, and DEALLOCATE", () => {
    const executed = only("EXECUTE del USING @id");
    expect(executed.executes).toBe("del");
    expect(executed.classes).toEqual(["write"]);
    expect(only("EXECUTE del USING LOAD_FILE('/etc/passwd')").classes).toEqual(["dangerous", "write"]);
    expect(only("EXECUTE IMMEDIATE 'SELECT 1'").classes).toEqual(["read"]);
    expect(only("EXECUTE IMMEDIATE 'DELETE FROM audit'").unboundedWrite).toBe(true);
    expect(only("EXECUTE IMMEDIATE @q").classes).toEqual(["dangerous"]);
    expect(only("DEALLOCATE PREPARE del").deallocates).toBe("del");
    expect(only("DROP PREPARE del").deallocates).toBe("del");
  });

  it("reports transaction control", () => {
    const analysis = analyze(
      "BEGIN; START TRANSACTION; SAVEPOINT a; RELEASE SAVEPOINT a; ROLLBACK TO a; ROLLBACK WORK TO SAVEPOINT a; COMMIT; ROLLBACK; XA START 'x'; XA END 'x'; XA PREPARE 'x'; XA COMMIT 'x'; XA ROLLBACK 'x'; XA COMMIT 'y' ONE PHASE",
    );
    expect(analysis.statements.map((statement) => statement.transaction)).toEqual([
      "begin",
      "begin",
      "savepoint",
      "release",
      "rollback_to",
      "rollback_to",
      "commit",
      "rollback",
      "begin",
      undefined,
      "prepare",
      "commit_prepared",
      "rollback_prepared",
      "commit",
    ]);
    expect(analysis.classes).toEqual(["read"]);
  });

  it("reports a literal change of sql_mode, and lexes what follows in the same string with it", () => {
    expect(only("SET SESSION sql_mode = 'ansi_quotes, strict_trans_tables'").sqlMode).toEqual({
      mode: "ANSI_QUOTES,STRICT_TRANS_TABLES",
      ansiQuotes: true,
      noBackslashEscapes: false,
      pipesAsConcat: false,
    });
    expect(only("SET @@sql_mode := TRADITIONAL").sqlMode?.mode).toBe("TRADITIONAL");
    expect(only("SET sql_mode = 'ANSI'").sqlMode).toMatchObject({ ansiQuotes: true, pipesAsConcat: true });
    expect(only("SET @@local.sql_mode = DEFAULT", { globalSqlMode: "NO_BACKSLASH_ESCAPES" }).sqlMode).toMatchObject({ mode: "NO_BACKSLASH_ESCAPES", noBackslashEscapes: true });
    expect(only("SET sql_mode = ''").sqlMode?.mode).toBe("");
    expect(only("SET GLOBAL sql_mode = 'ANSI_QUOTES'").sqlMode).toBeUndefined();
    expect(only("SET STATEMENT sql_mode = 'ANSI_QUOTES' FOR SELECT 1").sqlMode).toBeUndefined();
    expect(only("BEGIN NOT ATOMIC SET sql_mode = 'ANSI_QUOTES'; END").classes).toEqual(["dangerous"]);
    expect(only("CREATE PROCEDURE p() SET sql_mode = 'ANSI_QUOTES'").sqlMode).toBeUndefined();
    const switched = analyze("SET sql_mode = 'ANSI_QUOTES'; SELECT \"delete\" FROM t; SET sql_mode = DEFAULT; SELECT \"x\"", { globalSqlMode: "" });
    expect(switched.statements[1]?.relations).toEqual([{ name: "t", access: "read" }]);
    expect(switched.statements.map((statement) => statement.text)).toEqual(["SET sql_mode = 'ANSI_QUOTES'", 'SELECT "delete" FROM t', "SET sql_mode = DEFAULT", 'SELECT "x"']);
    const pipes = analyze("SET sql_mode = 'PIPES_AS_CONCAT'; DELETE FROM t WHERE id = 5 || 1");
    expect(pipes.statements[1]?.unboundedWrite).toBe(false);
    expect(only("DELETE FROM t WHERE id = 5 || 1").unboundedWrite).toBe(true);
  });

  it("refuses statements after a change of sql_mode it cannot know", () => {
    expect(only("SET sql_mode = @m").classes).toEqual(["dangerous"]);
    expect(analyzeMysql("SET sql_mode = @m; SELECT 1", { server })).toEqual({
      ok: false,
      error: "statements after a change of `sql_mode` to a value that is not a literal cannot be lexed as the server will",
    });
    expect(only("SET sql_mode = 4").classes).toEqual(["dangerous"]);
    expect(only("SET sql_mode = 'NO_SUCH_MODE'").classes).toEqual(["dangerous"]);
  });

  it("reports HANDLER statements for the session to track", () => {
    expect(only("HANDLER db.orders OPEN AS h").handler).toEqual({ action: "open", name: "h", table: { schema: "db", name: "orders" } });
    expect(only("HANDLER orders OPEN", { defaultSchema: "shop" }).handler).toEqual({ action: "open", name: "orders", table: { schema: "shop", name: "orders" } });
    expect(only("HANDLER h READ idx NEXT WHERE touch() > 0").classes).toEqual(["write"]);
    expect(only("HANDLER h CLOSE").handler).toEqual({ action: "close", name: "h" });
  });

  it("counts the comment-only pieces the server answers with an OK of their own", () => {
    expect(analyze("SELECT 1").emptyStatements).toBe(0);
    expect(analyze("SELECT 1; ").emptyStatements).toBe(0);
    expect(analyze("SELECT 1; -- c").emptyStatements).toBe(1);
    expect(analyze("SELECT 1; /* c */ ; SELECT 2").emptyStatements).toBe(1);
    const onlyComment = analyze("-- nothing but a comment");
    expect(onlyComment.statements).toEqual([]);
    expect(onlyComment.classes).toEqual(["read"]);
    expect(onlyComment.emptyStatements).toBe(1);
  });

  it("keeps dangerous calls under EXPLAIN, and takes stored functions as run while planning", () => {
    expect(only("EXPLAIN DELETE FROM audit").classes).toEqual(["read"]);
    expect(only("EXPLAIN DELETE FROM audit").unboundedWrite).toBe(false);
    expect(only("EXPLAIN SELECT LOAD_FILE('/etc/passwd')").classes).toEqual(["dangerous"]);
    expect(only("EXPLAIN SELECT touch()").reasons).toContain("EXPLAIN may run stored function `touch` while planning");
    expect(only("EXPLAIN ANALYZE DELETE FROM audit").unboundedWrite).toBe(true);
  });

  it("gives reasons in lowercase sentences with names in backticks", () => {
    expect(only("DELETE FROM audit").reasons).toEqual(["DELETE from `audit`", "DELETE without WHERE on `audit`"]);
    expect(only("UPDATE orders SET total = 0 WHERE 1 = 1").reasons).toContain("UPDATE with an always-true WHERE on `orders`");
    expect(only("SELECT LOAD_FILE('/etc/passwd')").reasons).toEqual(["calls `load_file`: it reads a server file"]);
    expect(only("SELECT touch()").reasons).toEqual(["calls stored function `touch`"]);
    expect(only("SELECT 1").reasons).toEqual(["SELECT only reads"]);
    expect(only("PREPARE s FROM @q").reasons).toEqual(["PREPARE `s` FROM a variable or expression: dynamic SQL the gateway cannot see"]);
  });

  it("refuses what does not parse or is not a statement the server knows", () => {
    expect(analyzeMysql("selec 1", { server })).toEqual({ ok: false, error: "unrecognised statement `selec`" });
    expect(analyzeMysql("DELIMITER //", { server }).ok).toBe(false);
    expect(analyzeMysql("SELECT 1; DELETE FROM", { server }).ok).toBe(false);
    expect(analyzeMysql("SELECT * FROM t WHERE", { server }).ok).toBe(false);
    expect(analyzeMysql("CREATE PROCEDURE p() BEGIN SELECT 1;", { server }).ok).toBe(false);
    expect(analyzeMysql("SELECT a INTO b FROM t", { server }).ok).toBe(false);
    expect(analyzeMysql(`SELECT ${"(".repeat(200)}1${")".repeat(200)}`, { server }).ok).toBe(false);
  });

  it("throws a TypeError for a non-string", () => {
    expect(() => analyzeMysql(42 as unknown as string)).toThrow(TypeError);
  });

  it("gives equal fingerprints for statements differing only in constants, case and comments", () => {
    const a = analyze("SELECT * FROM orders WHERE id = 1 AND status IN ('paid', 'new')");
    const b = analyze("select * /* x */ from orders where id = 42 and status in ('x')");
    const c = analyze("SELECT * FROM orders WHERE customer_id = 1");
    expect(a.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(a.fingerprint).toBe(b.fingerprint);
    expect(a.fingerprint).not.toBe(c.fingerprint);
  });

  it("returns frozen results", () => {
    const analysis = analyze("SELECT 1");
    expect(Object.isFrozen(analysis)).toBe(true);
    expect(Object.isFrozen(analysis.statements[0])).toBe(true);
    expect(Object.isFrozen(analysis.statements[0]?.classes)).toBe(true);
  });
});

describe("createMysqlAnalysisCache", () => {
  it("returns the same object for the same text and state, and keeps states apart", () => {
    const cache = createMysqlAnalysisCache({ max: 10 });
    const first = cache.analyze('SELECT "x"', { server });
    expect(cache.analyze('SELECT "x"', { server })).toBe(first);
    const ansi = cache.analyze('SELECT "x"', { server, ansiQuotes: true });
    expect(ansi).not.toBe(first);
    const safe = ["touch"];
    expect(ok(cache.analyze("SELECT touch()", { server, safeFunctions: safe })).classes).toEqual(["read"]);
    expect(ok(cache.analyze("SELECT touch()", { server })).classes).toEqual(["write"]);
    expect(cache.size).toBe(4);
  });

  it("evicts the least recently used entry and does not keep long texts", () => {
    const cache = createMysqlAnalysisCache({ max: 2, maxTextLength: 20 });
    const a = cache.analyze("SELECT 1");
    const b = cache.analyze("SELECT 2");
    expect(cache.analyze("SELECT 1")).toBe(a);
    cache.analyze("SELECT 3");
    expect(cache.analyze("SELECT 1")).toBe(a);
    expect(cache.analyze("SELECT 2")).not.toBe(b);
    const long = "SELECT 1 AS a_rather_long_alias";
    expect(cache.analyze(long)).not.toBe(cache.analyze(long));
    expect(() => createMysqlAnalysisCache({ max: 0 })).toThrow(TypeError);
  });
});

describe("createMysqlSessionState", () => {
  it("follows USE, COM_INIT_DB and sql_mode, keeping the options object while nothing changes", () => {
    const session = createMysqlSessionState({ server, schema: "shop", sqlMode: "STRICT_TRANS_TABLES" });
    const initial = session.options;
    expect(initial).toMatchObject({ defaultSchema: "shop", ansiQuotes: false, server });
    session.applyStatement(only("SELECT 1"));
    expect(session.options).toBe(initial);
    session.applyStatement(only("USE other"));
    expect(session.schema).toBe("other");
    session.applyStatement(only("SET sql_mode = 'ANSI'"));
    expect(session.options).toMatchObject({ defaultSchema: "other", ansiQuotes: true, pipesAsConcat: true });
    expect(ok(analyzeMysql('SELECT "x" FROM t', session.options)).statements[0]?.relations).toEqual([{ schema: "other", name: "t", access: "read" }]);
    session.applyStatement(only("SET sql_mode = DEFAULT", session.options));
    expect(session.sqlMode).toBe("STRICT_TRANS_TABLES");
    session.initDb("third");
    expect(session.options.defaultSchema).toBe("third");
    expect(() => createMysqlSessionState({ sqlMode: "ORACLE" })).toThrow(TypeError);
  });

  it("tracks handlers and resets", () => {
    const session = createMysqlSessionState({ server, schema: "shop", sqlMode: "ANSI_QUOTES" });
    session.applyStatement(only("HANDLER orders OPEN AS h", { defaultSchema: "shop" }));
    expect(session.handlerTable("H")).toEqual({ schema: "shop", name: "orders" });
    session.applyStatement(only("SET sql_mode = ''"));
    expect(session.options.ansiQuotes).toBe(false);
    session.reset();
    expect(session.options.ansiQuotes).toBe(true);
    expect(session.handlerTable("h")).toBeUndefined();
  });
});

describe("parseServerVersion and isSafeClientCharset", () => {
  it("reads handshake versions", () => {
    expect(parseServerVersion("5.5.5-10.11.6-MariaDB-0+deb12u1")).toEqual({ flavor: "mariadb", version: 101106 });
    expect(parseServerVersion("10.11.19-MariaDB-0+deb12u1")).toEqual({ flavor: "mariadb", version: 101119 });
    expect(parseServerVersion("8.0.36")).toEqual({ flavor: "mysql", version: 80036 });
    expect(parseServerVersion("8.4.0-commercial")).toEqual({ flavor: "mysql", version: 80400 });
    expect(parseServerVersion("garbage")).toBeUndefined();
  });

  it("refuses client character sets that can hide a backslash or a quote in a multi-byte character", () => {
    expect(isSafeClientCharset("utf8mb4")).toBe(true);
    expect(isSafeClientCharset("latin1")).toBe(true);
    expect(isSafeClientCharset("GBK")).toBe(false);
    expect(isSafeClientCharset("sjis")).toBe(false);
    expect(only("SET NAMES big5").classes).toEqual(["dangerous"]);
    expect(only("SET character_set_client = 'cp932'").classes).toEqual(["dangerous"]);
    expect(only("SET character_set_client = @x").classes).toEqual(["dangerous"]);
  });
});
