import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { analyzeMysql, loadMysqlAnalyzer, parseServerVersion, type MysqlServer } from "../../../src/inspect/index.js";
import { sqlModeFlags } from "../../../src/inspect/mysql/settings.js";
import { mysqlCorpus, mysqlCorpusDatabase, mysqlCorpusSetup, mysqlCorpusTeardown, type MysqlCorpusEntry } from "./corpus.js";

// The corpus against the real MariaDB, directly: every entry a read-only group must be able to run
// does run, and the server splits each string into as many statements as the analyser does. A
// database of its own, so an end-to-end suite can use the corpus's at the same time.

const DATABASE = `${mysqlCorpusDatabase}_direct`;
const rename = (sql: string): string => sql.replaceAll(mysqlCorpusDatabase, DATABASE);
const CONNECTION = { host: "127.0.0.1", port: 3306, user: "root", multipleStatements: true } as const;

let server: MysqlServer | undefined;

beforeAll(async () => {
  await loadMysqlAnalyzer();
  const admin = await mysql.createConnection(CONNECTION);
  try {
    const [rows] = await admin.query("SELECT VERSION() AS version");
    server = parseServerVersion(String((rows as { version: string }[])[0]?.version));
    for (const statement of mysqlCorpusSetup) await admin.query(rename(statement));
  } finally {
    await admin.end();
  }
});

afterAll(async () => {
  const admin = await mysql.createConnection(CONNECTION);
  try {
    for (const statement of mysqlCorpusTeardown) await admin.query(rename(statement));
  } finally {
    await admin.end();
  }
});

/** Runs an entry on a fresh connection; returns how many statements' results came back. */
async function run(entry: MysqlCorpusEntry): Promise<number> {
  const connection = await mysql.createConnection({ ...CONNECTION, database: DATABASE });
  try {
    if (entry.sqlMode !== undefined) await connection.query("SET SESSION sql_mode = ?", [entry.sqlMode]);
    const [results] = await connection.query(rename(entry.sql));
    // A multi-statement string gives one result per statement, each an array or an OK packet.
    const multiple = Array.isArray(results) && results.length > 0 && results.every((result) => Array.isArray(result) || (typeof result === "object" && result !== null && "affectedRows" in result));
    const analysis = analyzeMysql(entry.sql, { server: server ?? { flavor: "mariadb", version: 101100 }, ...sqlModeFlags(entry.sqlMode ?? "") });
    const expected = analysis.ok ? analysis.statements.length + analysis.emptyStatements : -1;
    return multiple && expected > 1 ? results.length : 1;
  } finally {
    await connection.end();
  }
}

describe("MySQL corpus on MariaDB", () => {
  it("reads the server's version", () => {
    expect(server?.flavor).toBe("mariadb");
  });

  const runnable = mysqlCorpus.filter((entry) => entry.readOnly === "runs" || entry.noOp === true);
  it.each(runnable.map((entry) => [`${entry.sqlMode === undefined ? "" : `[${entry.sqlMode}] `}${entry.sql}`, entry] as const))("%s", async (_name, entry) => {
    const analysis = analyzeMysql(entry.sql, { server: server ?? { flavor: "mariadb", version: 101100 }, ...sqlModeFlags(entry.sqlMode ?? "") });
    if (!analysis.ok) throw new Error(analysis.error);
    const results = await run(entry);
    expect(results).toBe(analysis.statements.length + analysis.emptyStatements);
  });
});
