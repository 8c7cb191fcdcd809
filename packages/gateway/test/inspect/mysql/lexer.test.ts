import { describe, expect, it } from "vitest";
import { lex, type LexOptions, type MysqlServer, type Token } from "../../../src/inspect/mysql/lexer.js";

const mariadb: MysqlServer = { flavor: "mariadb", version: 101106 };
const mysql8: MysqlServer = { flavor: "mysql", version: 80036 };
const base: LexOptions = { ansiQuotes: false, noBackslashEscapes: false, server: mariadb };

function tokens(sql: string, options: Partial<LexOptions> = {}): Token[] {
  const lexed = lex(sql, { ...base, ...options });
  if (!lexed.ok) throw new Error(lexed.error);
  return [...lexed.tokens];
}

const values = (sql: string, options: Partial<LexOptions> = {}): string[] => tokens(sql, options).map((token) => token.value);

describe("lex", () => {
  it("runs executable comments as code and skips the others, as MariaDB does", () => {
    expect(values("SELECT 1 /*! + 2 */")).toEqual(["SELECT", "1", "+", "2"]);
    expect(values("SELECT 1 /*!50699 + 2 */")).toEqual(["SELECT", "1", "+", "2"]);
    expect(values("SELECT 1 /*!50700 + 2 */"), "MariaDB ignores MySQL 5.7+ versions").toEqual(["SELECT", "1"]);
    expect(values("SELECT 1 /*!99999 + 2 */")).toEqual(["SELECT", "1"]);
    expect(values("SELECT 1 /*!100000 + 2 */")).toEqual(["SELECT", "1", "+", "2"]);
    expect(values("SELECT 1 /*!101107 + 2 */")).toEqual(["SELECT", "1"]);
    expect(values("SELECT 1 /*M!50700 + 2 */"), "its own comments count whatever the version").toEqual(["SELECT", "1", "+", "2"]);
    expect(values("SELECT 1 /*M! + 2 */")).toEqual(["SELECT", "1", "+", "2"]);
    expect(values("SELECT 1 /*M!999999 + 2 */")).toEqual(["SELECT", "1"]);
  });

  it("follows MySQL's rules when the server is MySQL", () => {
    expect(values("SELECT 1 /*!80000 + 2 */", { server: mysql8 })).toEqual(["SELECT", "1", "+", "2"]);
    expect(values("SELECT 1 /*!90000 + 2 */", { server: mysql8 })).toEqual(["SELECT", "1"]);
    expect(values("SELECT 1 /*M!100100 + 2 */", { server: mysql8 }), "MySQL reads /*M! as a comment").toEqual(["SELECT", "1"]);
    expect(values("/*!100100 x */", { server: mysql8 }), "MySQL reads five digits; the sixth is code").toEqual(["0", "x"]);
  });

  it("refuses comments whose fate depends on a server it does not know", () => {
    const unknown = { server: undefined };
    expect(values("SELECT 1 /*!40101 + 2 */", unknown)).toEqual(["SELECT", "1", "+", "2"]);
    expect(values("SELECT 1 /*! + 2 */", unknown)).toEqual(["SELECT", "1", "+", "2"]);
    for (const sql of ["SELECT 1 /*!50700 + 2 */", "SELECT 1 /*!100100 + 2 */", "SELECT 1 /*M! + 2 */", "SELECT 1 /*M!100100 + 2 */"]) {
      const lexed = lex(sql, { ...base, server: undefined });
      expect(lexed.ok, sql).toBe(false);
    }
    expect(lex("SELECT 1 /*!50700 + 2 */", { ...base, server: undefined })).toEqual({
      ok: false,
      error: "executable comment `/*!50700` runs or not depending on the server version, which is not known",
    });
  });

  it("ends a skipped versioned comment where the server does", () => {
    expect(values("SELECT 1 /*!99999 /* x */ + 2 */ + 3"), "one nested comment is allowed").toEqual(["SELECT", "1", "+", "3"]);
    expect(values("SELECT 1 /*!99999 '*/ + 5 -- ' */"), "quotes do not count").toEqual(["SELECT", "1", "+", "5"]);
    expect(values("SELECT 1 /*!50000 '*/' */"), "in a running comment they do").toEqual(["SELECT", "1", "*/"]);
    expect(values("SELECT 1 /* /* x */ + 2"), "plain comments do not nest").toEqual(["SELECT", "1", "+", "2"]);
    expect(values("SELECT 1 /*! # */\n + 2 */")).toEqual(["SELECT", "1", "+", "2"]);
  });

  it("leaves an executable comment at `;`, as the server lexes the next statement afresh", () => {
    expect(values("SELECT 1 /*! ; SELECT 2 */")).toEqual(["SELECT", "1", ";", "SELECT", "2", "*", "/"]);
    expect(tokens("SELECT 1 /*! + 2 */").map((token) => token.inComment)).toEqual([false, false, true, true]);
  });

  it("refuses what the server refuses", () => {
    expect(lex("SELECT 1 /*! + 2", base)).toEqual({ ok: false, error: "unterminated executable comment" });
    expect(lex("SELECT 1 /* x", base)).toEqual({ ok: false, error: "unterminated comment" });
    expect(lex("SELECT 'x", base)).toEqual({ ok: false, error: "unterminated string" });
    expect(lex("SELECT `x", base)).toEqual({ ok: false, error: "unterminated quoted identifier" });
    expect(lex("SELECT 1 /*! /*! 2 */ */", base)).toEqual({ ok: false, error: "executable comment inside an executable comment" });
    expect(lex("SELECT 1\u0000", base)).toEqual({ ok: false, error: "statement contains a NUL character" });
    expect(lex("SELECT X'4'", base)).toEqual({ ok: false, error: "invalid hexadecimal literal" });
  });

  it("reads `#` and `-- ` comments, and `--` without a space as two minus signs", () => {
    expect(values("SELECT 1 # x\n+ 2")).toEqual(["SELECT", "1", "+", "2"]);
    expect(values("SELECT 1 -- x\n+ 2")).toEqual(["SELECT", "1", "+", "2"]);
    expect(values("SELECT 1 --\tx")).toEqual(["SELECT", "1"]);
    expect(values("SELECT 1 --")).toEqual(["SELECT", "1"]);
    expect(values("SELECT 1 --1")).toEqual(["SELECT", "1", "-", "-", "1"]);
    expect(values("SELECT 1 --x")).toEqual(["SELECT", "1", "-", "-", "x"]);
  });

  it("reads optimizer hints as comments, refusing quoted ones where MySQL's hint scanner could end them elsewhere", () => {
    expect(values("SELECT /*+ MAX_EXECUTION_TIME(1) */ 1", { server: mysql8 })).toEqual(["SELECT", "1"]);
    expect(lex("SELECT /*+ QB_NAME(`a*/b`) */ 1", { ...base, server: mysql8 }).ok).toBe(false);
    expect(values("SELECT /*+ QB_NAME(`a`) */ 1"), "MariaDB 10.11 has no hints: a comment").toEqual(["SELECT", "1"]);
  });

  it("decodes strings with backslash escapes unless NO_BACKSLASH_ESCAPES", () => {
    expect(values("SELECT 'it\\'s', 'a''b', 'x\\ny', '\\%'")).toEqual(["SELECT", "it's", ",", "a'b", ",", "x\ny", ",", "\\%"]);
    expect(values("SELECT 'a\\'; x'")).toEqual(["SELECT", "a'; x"]);
    expect(values("SELECT 'a\\'; x", { noBackslashEscapes: true })).toEqual(["SELECT", "a\\", ";", "x"]);
  });

  it("reads double quotes as a string, or as an identifier under ANSI_QUOTES", () => {
    expect(tokens('SELECT "a""b"').map((token) => token.kind)).toEqual(["word", "string"]);
    expect(tokens('SELECT "a""b"', { ansiQuotes: true }).at(-1)).toMatchObject({ kind: "ident", value: 'a"b' });
    expect(tokens('SELECT "x\\"', { ansiQuotes: true }).at(-1)).toMatchObject({ kind: "ident", value: "x\\" });
    expect(tokens("SELECT `a``b`").at(-1)).toMatchObject({ kind: "ident", value: "a`b" });
  });

  it("reads literals, introducers, variables and names", () => {
    expect(tokens("SELECT _utf8mb4'x', _binary 'y', N'z', X'41', 0x41, B'01', 0b1, 1.5e3, .5")).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: "string", value: "x", introducer: "_utf8mb4" }),
        expect.objectContaining({ kind: "string", value: "y", introducer: "_binary" }),
        expect.objectContaining({ kind: "string", value: "z", introducer: "N" }),
        expect.objectContaining({ kind: "hex", value: "41" }),
        expect.objectContaining({ kind: "bit", value: "01" }),
        expect.objectContaining({ kind: "bit", value: "1" }),
        expect.objectContaining({ kind: "number", value: "1.5e3" }),
        expect.objectContaining({ kind: "number", value: ".5" }),
      ]),
    );
    expect(tokens("SELECT @a, @`b c`, @'d', @@global.max_connections, @@SQL_MODE").filter((token) => token.kind.endsWith("var")).map((token) => [token.kind, token.value])).toEqual([
      ["uservar", "a"],
      ["uservar", "b c"],
      ["uservar", "d"],
      ["sysvar", "global.max_connections"],
      ["sysvar", "sql_mode"],
    ]);
    expect(values("SELECT t.1col, 1abc, 0xzz FROM db.t")).toEqual(["SELECT", "t", ".", "1col", ",", "1abc", ",", "0xzz", "FROM", "db", ".", "t"]);
    expect(values("FOR i IN 1..3 DO")).toEqual(["FOR", "i", "IN", "1", "..", "3", "DO"]);
  });

  it("keeps offsets into the original text", () => {
    const [select, value] = tokens("SELECT /*! 'héllo' */");
    expect(select).toMatchObject({ start: 0, end: 6 });
    expect(value).toMatchObject({ start: 11, end: 18, value: "héllo" });
  });
});
