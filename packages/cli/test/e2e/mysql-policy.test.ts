import { createHash, randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { verifyLines } from "../../../gateway/src/recording/index.js";
import { mysqlCorpus, mysqlCorpusDatabase, mysqlCorpusSetup, mysqlCorpusTeardown, type MysqlCorpusEntry } from "../../../gateway/test/inspect/mysql/corpus.js";
import { cli } from "../support/cli.js";
import { E2E_DATABASE, E2E_ROLE } from "../support/global-setup.js";
import { startHarness, type Harness } from "../support/harness.js";

// Issue 8's proof for a read-only group on MySQL: every statement of the analyser's corpus goes
// through the gateway as a group that may only read; every read runs, every write, DDL, grant,
// setting and server-file statement gets the gateway's refusal, and the server itself shows that
// nothing changed. The agent logs in as an account that may do everything (as root), so a statement
// the gateway let through by mistake would change what is checked here, not fail on privileges.

const ROOT = { host: "127.0.0.1", port: 3306, user: "root", multipleStatements: true } as const;
/** The agent's account for this file: every privilege, with the e2e password (the harness's agent environment holds it). */
const SUPERUSER = "airlock_e2e_corpus_svc";
/** A user the corpus's GRANT, REVOKE, ALTER/RENAME/DROP USER and SET PASSWORD name: it exists, so any of them would show. */
const TARGET_USER = "'airlock_corpus_u'@'%'";

/** Files the corpus's INTO OUTFILE / DUMPFILE, LOAD XML and general_log_file name. */
const corpusFiles = [...new Set(mysqlCorpus.flatMap((entry) => [...entry.sql.matchAll(/'(\/(?:tmp|var)\/[^']+)'/g)].map((match) => match[1] as string)))].filter(
  (file) => !file.startsWith("/etc/"),
);

let root: mysql.Connection;
let harness: Harness;
/** The server's max_connections before this file raised it, so the corpus's `SET GLOBAL max_connections = 151` would show. */
let maxConnections: number | undefined;
/** The server's init_connect, put back after the last test sets it (directly, as root). */
let initConnect: string | undefined;

/** Rows of a root query, as plain JSON-able values. */
async function rows(sql: string): Promise<Record<string, unknown>[]> {
  const [result] = await root.query({ sql, rowsAsArray: false });
  return JSON.parse(JSON.stringify(result, (_key, value: unknown) => (typeof value === "bigint" ? String(value) : value))) as Record<string, unknown>[];
}

/**
 * What a read-only group must not be able to change, read as root on the server itself: every
 * table's rows and checksum, the definitions of tables, views, routines, triggers, events and
 * sequences, the databases, the users and grants the corpus names, the global variables, plugins,
 * loadable functions, replication sources, and the files the corpus names.
 */
async function serverSnapshot(): Promise<Record<string, unknown>> {
  const snapshot: Record<string, unknown> = {};
  // The corpus's database and its scratch database (the direct corpus test's `_direct` one may change meanwhile).
  const corpusSchemas = `table_schema IN ('${mysqlCorpusDatabase}', '${mysqlCorpusDatabase}_scratch')`;
  snapshot.databases = await rows(`SELECT schema_name, default_character_set_name, default_collation_name FROM information_schema.schemata WHERE ${corpusSchemas.replace("table_schema", "schema_name")} ORDER BY schema_name`);
  const tables = await rows(
    `SELECT table_schema, table_name, table_type, engine, create_time, auto_increment, table_collation, create_options FROM information_schema.tables WHERE ${corpusSchemas} ORDER BY table_schema, table_name`,
  );
  snapshot.tables = tables;
  for (const table of tables) {
    const name = `\`${String(table.table_schema)}\`.\`${String(table.table_name)}\``;
    const kind = String(table.table_type);
    snapshot[`create ${name}`] = await rows(kind === "VIEW" ? `SHOW CREATE VIEW ${name}` : `SHOW CREATE TABLE ${name}`);
    if (kind === "VIEW") continue;
    snapshot[`rows ${name}`] = await rows(`SELECT * FROM ${name}`);
    if (kind === "BASE TABLE") snapshot[`checksum ${name}`] = await rows(`CHECKSUM TABLE ${name} EXTENDED`);
  }
  snapshot.indexes = await rows(`SELECT table_schema, table_name, index_name, column_name, seq_in_index, index_type FROM information_schema.statistics WHERE ${corpusSchemas} ORDER BY 1, 2, 3, 5`);
  snapshot.views = await rows(`SELECT table_schema, table_name, view_definition, security_type FROM information_schema.views WHERE ${corpusSchemas} ORDER BY 1, 2`);
  snapshot.routines = await rows(
    `SELECT routine_schema, routine_name, routine_type, routine_definition, created, last_altered FROM information_schema.routines WHERE ${corpusSchemas.replace("table_schema", "routine_schema")} ORDER BY 1, 2, 3`,
  );
  snapshot.triggers = await rows(`SELECT trigger_schema, trigger_name, action_statement FROM information_schema.triggers WHERE ${corpusSchemas.replace("table_schema", "trigger_schema")} ORDER BY 1, 2`);
  snapshot.events = await rows("SELECT event_schema, event_name, event_definition, status FROM information_schema.events ORDER BY 1, 2");
  // Users and roles the corpus names, and the agent's own account.
  const users = await rows(`SELECT user AS name, host AS host, is_role AS role FROM mysql.user WHERE user LIKE 'airlock\\_corpus%' OR user IN ('root', '${SUPERUSER}') ORDER BY user, host`);
  snapshot.users = users;
  for (const { name, host, role } of users) {
    const grants = await rows(`SHOW GRANTS FOR '${String(name)}'${role === "Y" ? "" : `@'${String(host)}'`}`);
    snapshot[`grants ${String(name)}@${String(host)}`] = grants.flatMap((row) => Object.values(row));
  }
  snapshot.rolesMapping = await rows("SELECT * FROM mysql.roles_mapping WHERE user LIKE 'airlock\\_corpus%' OR role LIKE 'airlock\\_corpus%' ORDER BY 1, 2, 3");
  snapshot.dbGrants = await rows(`SELECT * FROM mysql.db WHERE user LIKE 'airlock\\_corpus%' OR ${corpusSchemas.replace("table_schema", "db")} ORDER BY host, db, user`);
  snapshot.tableGrants = await rows(`SELECT host, db, user, table_name, table_priv, column_priv FROM mysql.tables_priv WHERE user LIKE 'airlock\\_corpus%' OR ${corpusSchemas.replace("table_schema", "db")} ORDER BY 1, 2, 3, 4`);
  snapshot.globals = Object.fromEntries((await rows("SHOW GLOBAL VARIABLES")).map((row) => [row.Variable_name, row.Value]).filter(([name]) => !VOLATILE_GLOBALS.has(String(name))));
  snapshot.plugins = await rows("SELECT plugin_name, plugin_status, plugin_library FROM information_schema.plugins ORDER BY 1");
  snapshot.functions = await rows("SELECT * FROM mysql.func ORDER BY name");
  snapshot.servers = await rows("SELECT * FROM mysql.servers ORDER BY server_name");
  snapshot.replication = (await rows("SHOW ALL SLAVES STATUS")).map((row) => [row.Connection_name, row.Master_Host, row.Slave_IO_Running, row.Slave_SQL_Running]);
  snapshot.files = Object.fromEntries(corpusFiles.map((file) => [file, existsSync(file)]));
  snapshot.filesSeenByServer = await rows(`SELECT ${corpusFiles.map((file) => `LOAD_FILE('${file}') IS NOT NULL AS \`${file}\``).join(", ")}`);
  snapshot.tmpFiles = readdirSync("/tmp").filter((name) => name.startsWith("airlock_corpus") || name.startsWith("airlock-corpus"));
  return snapshot;
}

/** Global variables the server changes by itself. */
const VOLATILE_GLOBALS = new Set(["gtid_binlog_pos", "gtid_binlog_state", "gtid_current_pos", "gtid_slave_pos", "timestamp", "last_insert_id"]);

beforeAll(async () => {
  root = await mysql.createConnection(ROOT);
  for (const file of corpusFiles) rmSync(file, { force: true });
  await root.query(`DROP USER IF EXISTS ${TARGET_USER}, 'airlock_corpus_u'@'localhost', 'airlock_corpus_v'@'%', ${SUPERUSER}; DROP ROLE IF EXISTS airlock_corpus_r`);
  for (const statement of mysqlCorpusSetup) await root.query(statement);
  await root.query(`CREATE USER ${TARGET_USER} IDENTIFIED BY 'airlock-corpus-target'; GRANT INSERT ON ${mysqlCorpusDatabase}.orders TO ${TARGET_USER}`);
  await root.query(`CREATE USER ${SUPERUSER}@'%' IDENTIFIED BY ?; GRANT ALL PRIVILEGES ON *.* TO ${SUPERUSER}@'%' WITH GRANT OPTION`, [inject("dbPassword")]);
  const globals = (await rows("SELECT @@GLOBAL.max_connections AS n, @@GLOBAL.init_connect AS i"))[0];
  maxConnections = Number(globals?.n);
  initConnect = String(globals?.i ?? "");
  await root.query(`SET GLOBAL max_connections = ${maxConnections === 151 ? 160 : maxConnections}`);
  harness = await startHarness({
    protocol: "mysql",
    database: mysqlCorpusDatabase,
    policies: `policies:
  - name: read-only
    groups: [feature-test]
    connections: [orders]
    actions: { read: allow }`,
  });
  // The harness's agent logs in as the e2e role; this file's logs in as the superuser.
  const agentYaml = join(harness.dir, "agent.yaml");
  writeFileSync(agentYaml, readFileSync(agentYaml, "utf8").replace(`user: ${E2E_ROLE},`, `user: ${SUPERUSER},`));
  harness.killAgent();
  await harness.startAgent();
}, 60_000);

afterAll(async () => {
  await harness?.close();
  if (root === undefined) return;
  for (const statement of mysqlCorpusTeardown) await root.query(statement);
  if (maxConnections !== undefined) await root.query(`SET GLOBAL max_connections = ${maxConnections}`);
  if (initConnect !== undefined) await root.query("SET GLOBAL init_connect = ?", [initConnect]);
  await root.query(`DROP USER IF EXISTS ${TARGET_USER}, 'airlock_corpus_u'@'localhost', 'airlock_corpus_v'@'%', ${SUPERUSER}; DROP ROLE IF EXISTS airlock_corpus_r`);
  for (const file of corpusFiles) rmSync(file, { force: true });
  await root.end();
});

/** Where a client connects, and the password it gives (the token, or anything through `airlock connect`). */
interface Path {
  host: string;
  port: number;
  password: string;
}

interface Outcome {
  readonly entry: MysqlCorpusEntry;
  readonly error?: { errno?: number; message: string };
  /** The connection ended with the error. */
  readonly fatal?: boolean;
}

/** A client connection for corpus entries. */
function openClient(path: Path): Promise<mysql.Connection> {
  return mysql.createConnection({ host: path.host, port: path.port, user: "ci", password: path.password, database: mysqlCorpusDatabase, enableCleartextPlugin: true, multipleStatements: true });
}

/**
 * Runs one entry with the entry's sql_mode, as the corpus asks, on a connection just reset
 * (COM_RESET_CONNECTION: variables, prepared statements, handlers, locks, transactions and
 * sql_mode back to a new session's, on the server and in the gateway's view of the session).
 */
async function runEntry(connection: mysql.Connection, entry: MysqlCorpusEntry): Promise<Outcome> {
  await connection.reset();
  await connection.query(`USE ${mysqlCorpusDatabase}`);
  await connection.query(`SET SESSION sql_mode = '${entry.sqlMode ?? ""}'`);
  try {
    await connection.query(entry.sql);
    return { entry };
  } catch (error) {
    const { errno, message, fatal } = error as { errno?: number; message: string; fatal?: boolean };
    return { entry, error: { ...(errno === undefined ? {} : { errno }), message }, ...(fatal === true ? { fatal } : {}) };
  }
}

/** Runs every entry, on a few connections at a time; a connection that ended is replaced. */
async function runCorpus(path: Path): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  let next = 0;
  const worker = async () => {
    let connection = await openClient(path);
    while (next < mysqlCorpus.length) {
      const entry = mysqlCorpus[next++] as MysqlCorpusEntry;
      const outcome = await runEntry(connection, entry);
      outcomes.push(outcome);
      if (outcome.fatal === true) {
        connection.destroy();
        connection = await openClient(path);
      }
    }
    await connection.end();
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return outcomes;
}

const label = (entry: MysqlCorpusEntry) => `${entry.sqlMode === undefined ? "" : `[${entry.sqlMode}] `}${entry.sql}`;
const isGatewayRefusal = (error: Outcome["error"]) => (error?.errno === 1142 || error?.errno === 1227) && error.message.startsWith("airlock: ");

describe("a read-only group on MySQL, through the whole statement corpus", () => {
  const paths: [string, () => Promise<Path>][] = [
    ["native listener", async () => ({ ...harness.native, password: await harness.token() })],
    ["airlock connect", async () => ({ ...(await harness.connect()), password: "" })],
  ];

  it.each(paths)("through the %s: runs every read, refuses everything else, and the server shows no change", { timeout: 120_000 }, async (_name, open) => {
    const path = await open();
    // The database session is the superuser's: what the gateway lets through, the server would run.
    const probe = await openClient(path);
    expect((await probe.query("SELECT CURRENT_USER() AS u"))[0]).toEqual([{ u: `${SUPERUSER}@%` }]);
    await probe.end();
    const before = await serverSnapshot();
    const outcomes = await runCorpus(path);
    const after = await serverSnapshot();

    const runs = outcomes.filter((outcome) => outcome.entry.readOnly === "runs");
    const refused = outcomes.filter((outcome) => outcome.entry.readOnly === "refused");
    expect(runs.length + refused.length).toBe(mysqlCorpus.length);
    // Every read runs: none refused by the gateway, and none failed on the server either.
    expect(runs.filter((outcome) => outcome.error !== undefined).map((outcome) => `${label(outcome.entry)} -> ${outcome.error?.errno}: ${outcome.error?.message}`)).toEqual([]);
    // Every other statement gets the gateway's refusal, never the server's own error.
    expect(refused.filter((outcome) => !isGatewayRefusal(outcome.error)).map((outcome) => `${label(outcome.entry)} -> ${outcome.error === undefined ? "ran" : `${outcome.error.errno}: ${outcome.error.message}`}`)).toEqual([]);
    expect(after).toEqual(before);
  });

  // Last: it changes the fixture, directly as root, to show the check above would see each kind of change.
  it("sees each kind of change the refused statements would make, when they run directly", { timeout: 60_000 }, async () => {
    const probes: [string, string][] = [
      ["INSERT INTO audit (note) VALUES ('x')", "rows `airlock_mysql_corpus`.`audit`"],
      ["UPDATE LOW_PRIORITY IGNORE orders SET status = 'x' WHERE id = 2", "checksum `airlock_mysql_corpus`.`orders`"],
      ["SELECT NEXTVAL(seq1)", "rows `airlock_mysql_corpus`.`seq1`"],
      ["CREATE INDEX k_status ON orders (status)", "indexes"],
      ["CREATE OR REPLACE VIEW v_orders AS SELECT id, total FROM orders", "views"],
      ["CREATE OR REPLACE PROCEDURE p1() SELECT 1", "routines"],
      ["CREATE OR REPLACE TRIGGER trg BEFORE INSERT ON orders FOR EACH ROW SET NEW.status = 'new'", "triggers"],
      ["CREATE EVENT IF NOT EXISTS ev ON SCHEDULE EVERY 1 HOUR DO DELETE FROM audit", "events"],
      ["CREATE DATABASE IF NOT EXISTS airlock_mysql_corpus_scratch", "databases"],
      ["GRANT SELECT ON airlock_mysql_corpus.* TO 'airlock_corpus_u'@'%'", "grants airlock_corpus_u@%"],
      ["ALTER USER 'airlock_corpus_u'@'%' IDENTIFIED BY 'new'", "grants airlock_corpus_u@%"],
      ["CREATE ROLE IF NOT EXISTS airlock_corpus_r", "users"],
      ["SET GLOBAL max_connections = 151", "globals"],
      ["SET GLOBAL init_connect = 'DELETE FROM audit'", "globals"],
      ["SELECT * FROM customers INTO OUTFILE '/tmp/airlock_corpus_out.csv'", "files"],
    ];
    const admin = await mysql.createConnection({ ...ROOT, database: mysqlCorpusDatabase });
    try {
      let before = await serverSnapshot();
      for (const [sql, key] of probes) {
        expect(mysqlCorpus.some((entry) => entry.sql === sql && entry.readOnly === "refused"), sql).toBe(true);
        await admin.query(sql);
        const after = await serverSnapshot();
        expect(after[key], sql).not.toEqual(before[key]);
        before = after;
        // Not left for other sessions on this server.
        if (sql.startsWith("SET GLOBAL init_connect")) await admin.query("SET GLOBAL init_connect = ?", [initConnect ?? ""]);
      }
    } finally {
      await admin.end();
    }
  });
});

// ---- review holds and the recording -----------------------------------------------------------------

describe("a MySQL write held for review, and the session's recording", () => {
  const aliceKey = randomBytes(24).toString("base64url");
  const secret = `SecretQ${randomBytes(8).toString("hex")}`;
  let reviewed: Harness;
  const api = () => `http://${reviewed.gateway.httpAddress}`;

  beforeAll(async () => {
    await root.query(`USE ${E2E_DATABASE};
      DROP TABLE IF EXISTS mysql_reviewed, mysql_recorded_people;
      CREATE TABLE mysql_reviewed (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(50));
      CREATE TABLE mysql_recorded_people (id INT PRIMARY KEY, name VARCHAR(20), email VARCHAR(100));
      INSERT INTO mysql_recorded_people VALUES (1, 'Ann', '${secret}')`);
    reviewed = await startHarness({
      protocol: "mysql",
      connectionExtra: `    masking:
      columns: [ { column: ${E2E_DATABASE}.mysql_recorded_people.email, style: redact } ]`,
      policies: `policies:
  - name: ci-writes-reviewed
    groups: [feature-test]
    connections: [orders]
    actions: { read: allow, write: review }
    reviewers: [dba]
    review_timeout: 20s`,
      extra: `reviewers:
  - { name: alice, key_sha256: ${createHash("sha256").update(aliceKey).digest("hex")}, groups: [dba] }`,
    });
  }, 60_000);
  afterAll(async () => {
    await reviewed?.close();
    await root?.query(`DROP TABLE IF EXISTS ${E2E_DATABASE}.mysql_reviewed, ${E2E_DATABASE}.mysql_recorded_people`);
  });

  async function session(): Promise<mysql.Connection> {
    return mysql.createConnection({ ...reviewed.native, user: "ci", password: await reviewed.token(), database: E2E_DATABASE, enableCleartextPlugin: true });
  }

  /** The pending review of `sql`, as a reviewer lists it with the CLI (MySQL has no notices to name it). */
  async function pendingReview(sql: string): Promise<string> {
    for (;;) {
      const listed = await cli(["reviews", "list", "--api", api(), "--json"], { AIRLOCK_REVIEWER_KEY: aliceKey });
      expect(listed.status).toBe(0);
      const review = (JSON.parse(listed.out) as { id: string; sql: string; status: string }[]).find((entry) => entry.sql === sql && entry.status === "pending");
      if (review !== undefined) return review.id;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  const rowsOf = async (note: string) => ((await root.query(`SELECT COUNT(*) AS n FROM ${E2E_DATABASE}.mysql_reviewed WHERE note = ?`, [note]))[0] as { n: number }[])[0]?.n;

  it("holds an INSERT (text and binary protocol) until a reviewer approves it, while other sessions go on", async () => {
    const held = await session();
    const other = await session();
    try {
      const sql = "INSERT INTO mysql_reviewed (note) VALUES ('approved')";
      let settled = false;
      const insert = held.query<mysql.ResultSetHeader>(sql).finally(() => (settled = true));
      const id = await pendingReview(sql);
      // Another session is served while this one waits (nobody approves until after it answers).
      expect((await other.query("SELECT COUNT(*) AS n FROM mysql_reviewed"))[0]).toEqual([{ n: 0 }]);
      expect(settled).toBe(false);
      expect(await rowsOf("approved")).toBe(0);
      const approved = await cli(["reviews", "approve", id, "--api", api(), "--reason", "looks fine"], { AIRLOCK_REVIEWER_KEY: aliceKey });
      expect(approved).toMatchObject({ status: 0, out: `review ${id}: approved\n` });
      expect((await insert)[0]).toMatchObject({ affectedRows: 1 });
      expect(await rowsOf("approved")).toBe(1);

      // A prepared statement's EXECUTE is held the same way (preparing it runs nothing).
      const prepared = "INSERT INTO mysql_reviewed (note) VALUES (?)";
      const execute = held.execute<mysql.ResultSetHeader>(prepared, ["binary"]);
      const executeId = await pendingReview(prepared);
      expect(await rowsOf("binary")).toBe(0);
      expect((await cli(["reviews", "approve", executeId, "--api", api()], { AIRLOCK_REVIEWER_KEY: aliceKey })).status).toBe(0);
      expect((await execute)[0]).toMatchObject({ affectedRows: 1 });
      expect(await rowsOf("binary")).toBe(1);
    } finally {
      await held.end();
      await other.end();
    }
  });

  it("answers a rejection with ERR 1142 and the reason, runs nothing, and the session goes on", async () => {
    const held = await session();
    try {
      const sql = "INSERT INTO mysql_reviewed (note) VALUES ('rejected')";
      const insert = held.query(sql).then(
        () => undefined,
        (error: { errno?: number; sqlState?: string; message: string }) => error,
      );
      const id = await pendingReview(sql);
      expect((await cli(["reviews", "reject", id, "--api", api(), "--reason", "not on a friday"], { AIRLOCK_REVIEWER_KEY: aliceKey })).status).toBe(0);
      expect(await insert).toMatchObject({ errno: 1142, sqlState: "42000", message: `airlock: statement not approved (review ${id}): rejected by alice: not on a friday` });
      expect(await rowsOf("rejected")).toBe(0);
      expect((await held.query("SELECT 6 * 7 AS answer"))[0]).toEqual([{ answer: 42 }]);
    } finally {
      await held.end();
    }
  });

  it("records the statements, decisions, reviews and results as the client saw them (masked), in a chain that verifies", async () => {
    const sessionsBefore = new Set((await reviewed.gateway.store.listSessions({ limit: 1000 })).map((entry) => entry.id));
    const client = await session();
    const select = "SELECT id, name, email FROM mysql_recorded_people ORDER BY id";
    const [text] = await client.query<mysql.RowDataPacket[]>(select);
    const [binary] = await client.execute<mysql.RowDataPacket[]>("SELECT id, name, email FROM mysql_recorded_people WHERE id = ?", [1]);
    expect(text).toEqual([{ id: 1, name: "Ann", email: "[masked]" }]);
    expect(binary).toEqual(text);
    await expect(client.query("DROP TABLE mysql_recorded_people")).rejects.toMatchObject({ errno: 1142 });
    await expect(client.query("SELECT * FROM no_such_table")).rejects.toMatchObject({ errno: 1146 });
    const insert = "INSERT INTO mysql_reviewed (note) VALUES ('recorded')";
    const inserted = client.query(insert);
    const review = await pendingReview(insert);
    expect((await cli(["reviews", "approve", review, "--api", api()], { AIRLOCK_REVIEWER_KEY: aliceKey })).status).toBe(0);
    await inserted;
    await client.end();

    const id = (await reviewed.gateway.store.listSessions({ limit: 1000 })).find((entry) => !sessionsBefore.has(entry.id))?.id ?? "";
    for (let i = 0; i < 100 && (await reviewed.gateway.store.getSession(id))?.endedAt === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    const ended = await reviewed.gateway.store.getSession(id);
    const file = readdirSync(join(reviewed.dir, "recordings"), { recursive: true }).map(String).find((name) => name.endsWith(`${id}.jsonl`));
    expect(file).toBeDefined();
    const recording = readFileSync(join(reviewed.dir, "recordings", file ?? ""), "utf8");
    expect(verifyLines(id, recording, { records: ended?.recording?.records ?? -1, lastHash: ended?.recording?.lastHash ?? "" })).toMatchObject({ ok: true, ended: true });
    const lines = recording.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ type: "session_start", connection: "orders", protocol: "mysql", identity: { groups: ["feature-test"] } });
    const statements = lines.filter((line) => line.type === "statement");
    expect(statements.map((line) => [line.sql, line.effect])).toEqual([
      [select, "allow"],
      // COM_STMT_PREPARE, then COM_STMT_EXECUTE: each is judged.
      ["SELECT id, name, email FROM mysql_recorded_people WHERE id = ?", "allow"],
      ["SELECT id, name, email FROM mysql_recorded_people WHERE id = ?", "allow"],
      ["DROP TABLE mysql_recorded_people", "deny"],
      ["SELECT * FROM no_such_table", "allow"],
      [insert, "review"],
    ]);
    expect(statements[3]).toMatchObject({ classes: ["ddl"], rule: "ci-writes-reviewed", reasons: ["ddl: deny by policy `ci-writes-reviewed`"] });
    // Each statement, then what the client got for it.
    const kinds = lines.map((line) => (line.type === "statement" ? `statement:${String(line.effect)}` : line.type));
    expect(kinds).toEqual([
      "session_start",
      "statement:allow", "result", // SELECT, text rows
      "statement:allow", "result", // COM_STMT_PREPARE
      "statement:allow", "result", // COM_STMT_EXECUTE, binary rows
      "statement:deny", "result", // the gateway's ERR 1142
      "statement:allow", "result", // the server's ERR 1146
      "statement:review", "review", "result", // held, approved, run
      "session_end",
    ]);
    const results = lines.filter((line) => line.type === "result");
    expect(results[0]).toMatchObject({ columns: ["id", "name", "email"], rows: [["1", "Ann", "[masked]"]], rowCount: 1 });
    expect(results[1]).toMatchObject({ columns: ["id", "name", "email"], tag: expect.stringMatching(/^prepared statement \d+$/), params: 1 });
    expect(results[2]).toMatchObject({ columns: ["id", "name", "email"], rows: [["1", "Ann", "[masked]"]], rowCount: 1 });
    expect(results[3]).toMatchObject({ error: { code: "1142", sqlState: "42000", message: "airlock: statement denied by policy `ci-writes-reviewed`: ddl: deny by policy `ci-writes-reviewed`" } });
    expect(results[4]).toMatchObject({ error: { code: "1146", sqlState: "42S02" } });
    expect(results[5]).toMatchObject({ tag: "OK", affectedRows: 1 });
    expect(lines.find((line) => line.type === "review")).toMatchObject({ review, status: "approved", actions: [expect.objectContaining({ reviewer: "alice", action: "approve" })] });
    expect(lines.at(-1)).toMatchObject({ type: "session_end", outcome: "client_closed", statements: 6 });
    expect(recording).not.toContain(secret);
  });
});
