// The workloads, the targets, and how one (workload, target) measurement is taken.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { runPgbench } from "./pgbench.mjs";
import { cpuSnapshot, runAsync, sampleRss } from "./util.mjs";
import { BENCH_DB, BULK_TABLE, PGBENCH_SCALE } from "./postgres.mjs";
import { MYSQL_POINT_ROWS, MYSQL_POINT_TABLE } from "./mysql.mjs";
import { MONGO_BULK_BATCH, MONGO_BULK_COLLECTION, MONGO_BULK_DOCUMENTS, MONGO_DB, MONGO_POINT_COLLECTION, MONGO_POINT_DOCUMENTS } from "./mongo.mjs";

export const PG_TARGETS = ["direct", "pgbouncer", "pgpool", "airlock-native", "airlock-connect"];
/** The MySQL targets: the machine's MariaDB directly, and through Airlock's MySQL connection. */
export const MYSQL_TARGETS = ["mysql-direct", "mysql-airlock-native", "mysql-airlock-connect"];
/** The MongoDB targets: the project's stand-in server directly (there is no mongod here), and through Airlock's MongoDB connection. */
export const MONGO_TARGETS = ["mongo-direct", "mongo-airlock-native", "mongo-airlock-connect"];
export const TARGETS = [...PG_TARGETS, ...MYSQL_TARGETS, ...MONGO_TARGETS];
/** Measured on some workloads only (extraTargets): the native listener as an identity whose policy says `unmasked: true`. */
export const UNMASKED_TARGET = "airlock-native-unmasked";
export const MYSQL_UNMASKED_TARGET = "mysql-airlock-native-unmasked";
export const MONGO_UNMASKED_TARGET = "mongo-airlock-native-unmasked";
export const AIRLOCK_TARGETS = new Set([
  "airlock-native",
  "airlock-connect",
  UNMASKED_TARGET,
  "mysql-airlock-native",
  "mysql-airlock-connect",
  MYSQL_UNMASKED_TARGET,
  "mongo-airlock-native",
  "mongo-airlock-connect",
  MONGO_UNMASKED_TARGET,
]);
export const TARGET_LABELS = {
  direct: "direct PostgreSQL",
  pgbouncer: "pgbouncer (transaction)",
  pgpool: "pgpool-II (raw)",
  "airlock-native": "Airlock native listener",
  "airlock-connect": "Airlock via airlock connect",
  [UNMASKED_TARGET]: "Airlock native, unmasked identity",
  "mysql-direct": "direct MariaDB",
  "mysql-airlock-native": "Airlock native listener (MySQL)",
  "mysql-airlock-connect": "Airlock via airlock connect (MySQL)",
  [MYSQL_UNMASKED_TARGET]: "Airlock native (MySQL), unmasked identity",
  "mongo-direct": "direct MongoDB stand-in",
  "mongo-airlock-native": "Airlock native listener (MongoDB)",
  "mongo-airlock-connect": "Airlock via airlock connect (MongoDB)",
  [MONGO_UNMASKED_TARGET]: "Airlock native (MongoDB), unmasked identity",
};
/** Per protocol: the targets, the reference of the ratios, and the native target the extra (unmasked) targets need. */
export const PROTOCOLS = {
  postgres: { targets: PG_TARGETS, direct: "direct", native: "airlock-native" },
  mysql: { targets: MYSQL_TARGETS, direct: "mysql-direct", native: "mysql-airlock-native" },
  mongodb: { targets: MONGO_TARGETS, direct: "mongo-direct", native: "mongo-airlock-native" },
};
/** The protocol of a target (extra targets included). */
export function protocolOf(target) {
  return target.startsWith("mysql-") ? "mysql" : target.startsWith("mongo-") ? "mongodb" : "postgres";
}

/**
 * protocol: postgres (the PostgreSQL targets), mysql (the MySQL targets) or mongodb (the MongoDB
 * targets). kind: pgbench | bulk | sessions | point (point lookups by lib/mysql-client.mjs or
 * lib/mongo-client.mjs). server: main (5432), many (the 200-session server), mysql (3306) or mongo
 * (the stand-in). unit: what the throughput counts.
 */
export function workloads(duration) {
  const short = Math.max(3, Math.round(duration * 0.4));
  return [
    { id: "select-simple", title: "pgbench -S, 8 clients, simple protocol", kind: "pgbench", server: "main", pgbench: { mode: "simple", clients: 8, threads: 2, duration }, unit: "tps" },
    { id: "select-extended", title: "pgbench -S, 8 clients, extended protocol (-M extended)", kind: "pgbench", server: "main", pgbench: { mode: "extended", clients: 8, threads: 2, duration }, unit: "tps" },
    { id: "select-prepared", title: "pgbench -S, 8 clients, prepared (-M prepared)", kind: "pgbench", server: "main", pgbench: { mode: "prepared", clients: 8, threads: 2, duration }, unit: "tps" },
    { id: "bulk-select", title: `bulk read: select * from ${BULK_TABLE} (1,000,000 rows, 5 columns), simple protocol`, kind: "bulk", server: "main", sql: `select * from ${BULK_TABLE}`, unit: "rows/s", extraTargets: [UNMASKED_TARGET] },
    { id: "bulk-copy", title: `bulk read: copy (select * from ${BULK_TABLE}) to stdout`, kind: "bulk", server: "main", sql: `copy (select * from ${BULK_TABLE}) to stdout`, unit: "rows/s" },
    { id: "sessions-200", title: "200 concurrent sessions, each running pgbench -S's statement in the simple protocol (bench/lib/sessions-client.mjs)", kind: "sessions", server: "many", sessions: 200, duration: short, unit: "tps" },
    { id: "connect-rate", title: "connection setup: pgbench -S -C -c 8 -j 2 (a new session per statement)", kind: "pgbench", server: "main", pgbench: { mode: "simple", clients: 8, threads: 2, duration: short, connect: true }, unit: "sessions/s" },
    {
      id: "mysql-point-select",
      protocol: "mysql",
      title: `MySQL point SELECTs by primary key, 8 clients (SELECT abalance FROM ${MYSQL_POINT_TABLE} WHERE aid = <random>, ${MYSQL_POINT_ROWS.toLocaleString("en-US")} rows; COM_QUERY, bench/lib/mysql-client.mjs)`,
      kind: "point",
      server: "mysql",
      point: { clients: 8, duration },
      unit: "statements/s",
    },
    {
      id: "mysql-bulk-select",
      protocol: "mysql",
      title: `MySQL bulk read: select * from ${BULK_TABLE} (1,000,000 rows, 5 columns, email and card_number masked through Airlock), text protocol, streamed`,
      kind: "bulk",
      server: "mysql",
      sql: `select * from ${BULK_TABLE}`,
      unit: "rows/s",
      extraTargets: [MYSQL_UNMASKED_TARGET],
    },
    {
      id: "mongo-point-find",
      protocol: "mongodb",
      title: `MongoDB point finds by _id, 8 clients (findOne({ _id: <random> }) on ${MONGO_DB}.${MONGO_POINT_COLLECTION}, ${MONGO_POINT_DOCUMENTS.toLocaleString("en-US")} documents; the official driver, maxPoolSize 8, 8 concurrent loops, bench/lib/mongo-client.mjs)`,
      kind: "point",
      server: "mongo",
      point: { clients: 8, duration },
      unit: "finds/s",
    },
    {
      id: "mongo-bulk-find",
      protocol: "mongodb",
      title: `MongoDB bulk find: find({}) on ${MONGO_DB}.${MONGO_BULK_COLLECTION} (${MONGO_BULK_DOCUMENTS.toLocaleString("en-US")} documents of 5 fields, email and card_number masked through Airlock), batchSize ${MONGO_BULK_BATCH}, documents counted as raw BSON`,
      kind: "bulk",
      server: "mongo",
      collection: MONGO_BULK_COLLECTION,
      batchSize: MONGO_BULK_BATCH,
      unit: "docs/s",
      extraTargets: [MONGO_UNMASKED_TARGET],
    },
  ].map((workload) => ({ protocol: "postgres", ...workload }));
}

/**
 * Measures one workload against one target: the figures, plus CPU seconds and peak RSS of the
 * Airlock processes over the run.
 */
export async function measure({ workload, target, endpoint, airlockPids, serverPids, tmp, tag }) {
  // The MongoDB stand-in is a process of the harness's own: its CPU and RSS are watched too ("server").
  const watched = { ...(AIRLOCK_TARGETS.has(target) ? airlockPids(target, workload.server) : {}), ...(workload.protocol === "mongodb" && serverPids?.mongodb !== undefined ? { server: serverPids.mongodb } : {}) };
  const cpuBefore = cpuSnapshot(watched);
  const rss = sampleRss(watched, 100);
  let result;
  try {
    if (workload.protocol === "mongodb") {
      result =
        workload.kind === "point"
          ? await mongoPoint(endpoint, workload.point.clients, workload.point.duration, join(tmp, `latencies-${tag}.f64`))
          : await mongoBulkRead(endpoint, workload.collection, workload.batchSize);
    } else if (workload.kind === "pgbench") {
      result = await runPgbench({ ...workload.pgbench, port: endpoint.port, user: endpoint.user, password: endpoint.password, database: endpoint.database, logDir: join(tmp, "pgbench-logs", tag) });
    } else if (workload.kind === "sessions") {
      result = await manySessions(endpoint, workload.sessions, workload.duration);
    } else if (workload.kind === "point") {
      result = await mysqlPoint(endpoint, workload.point.clients, workload.point.duration, join(tmp, `latencies-${tag}.f64`));
    } else if (workload.protocol === "mysql") {
      result = await mysqlBulkRead(endpoint, workload.sql);
    } else {
      result = await bulkRead(endpoint, workload.sql);
    }
  } finally {
    result ??= { ok: false, error: "measurement failed" };
    const cpuAfter = cpuSnapshot(watched);
    const peaks = rss.stop();
    result.cpuSeconds = {};
    result.peakRssBytes = {};
    for (const name of Object.keys(watched)) {
      result.cpuSeconds[name] = Math.round((cpuAfter[name] - cpuBefore[name]) * 1000) / 1000;
      result.peakRssBytes[name] = peaks[name].peak;
    }
  }
  if (!result.ok && target === "pgbouncer" && workload.pgbench?.mode === "prepared" && /prepared statement/.test(result.error ?? "")) {
    result.error = `not supported: pgbouncer 1.18 in transaction pooling keeps no protocol-level prepared statements (${result.error.split(" | ")[0]})`;
  }
  const work = workload.kind === "bulk" ? result.rows : result.transactions;
  if (work > 0) {
    // CPU seconds per 1,000 statements (per 1,000 sessions for connect-rate; per 1,000,000 rows for bulk reads).
    const per = workload.kind === "bulk" ? 1_000_000 : 1_000;
    result.cpuPer = {};
    for (const [name, seconds] of Object.entries(result.cpuSeconds)) result.cpuPer[name] = (seconds / work) * per;
    // The MySQL load generator reports its own CPU: shown beside the others (it shares the 2 cores).
    if (result.clientCpuSeconds !== undefined) result.clientCpuPer = (result.clientCpuSeconds / work) * per;
  }
  return result;
}

/** Environment of lib/mongo-client.mjs for an endpoint: the account (scram) or the token (oidc). */
function mongoEnv(endpoint) {
  const env = { ...process.env };
  for (const name of ["BENCH_MONGO_USER", "BENCH_MONGO_PASSWORD", "BENCH_MONGO_TOKEN"]) delete env[name];
  if (endpoint.auth === "scram") Object.assign(env, { BENCH_MONGO_USER: endpoint.user, BENCH_MONGO_PASSWORD: endpoint.password });
  if (endpoint.auth === "oidc") env.BENCH_MONGO_TOKEN = endpoint.token;
  return env;
}

/** MongoDB point finds by _id for `seconds` with `clients` concurrent loops (lib/mongo-client.mjs point, in its own process). */
export async function mongoPoint(endpoint, clients, seconds, latencyFile) {
  const output = await runAsync(
    process.execPath,
    [join(import.meta.dirname, "mongo-client.mjs"), "point", String(endpoint.port), endpoint.auth, MONGO_DB, MONGO_POINT_COLLECTION, String(clients), String(seconds), String(MONGO_POINT_DOCUMENTS), latencyFile],
    { env: mongoEnv(endpoint) },
  );
  if (output.code !== 0) {
    rmSync(latencyFile, { force: true });
    return { ok: false, error: output.stderr.trim().slice(-500) || `exit ${output.code}` };
  }
  const figures = JSON.parse(output.stdout.trim().split("\n").pop());
  const bytes = readFileSync(latencyFile);
  rmSync(latencyFile, { force: true });
  const latencies = new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)).sort();
  const result = { ok: figures.transactions > 0, ...figures };
  // Pooled over the rounds by the report (microseconds, sorted).
  Object.defineProperty(result, "latenciesUs", { value: latencies, enumerable: false });
  return result;
}

/** The MongoDB bulk find (lib/mongo-client.mjs bulk, in its own process): documents and their BSON bytes. */
export async function mongoBulkRead(endpoint, collection, batchSize) {
  const output = await runAsync(process.execPath, [join(import.meta.dirname, "mongo-client.mjs"), "bulk", String(endpoint.port), endpoint.auth, MONGO_DB, collection, String(batchSize)], { env: mongoEnv(endpoint) });
  if (output.code !== 0) return { ok: false, error: output.stderr.trim().slice(-500) || `exit ${output.code}` };
  const { rows, bytes, seconds, firstRowMs, firstRow, clientCpuSeconds } = JSON.parse(output.stdout.trim().split("\n").pop());
  return { ok: rows === MONGO_BULK_DOCUMENTS, ...(rows === MONGO_BULK_DOCUMENTS ? {} : { error: `${rows} documents, not ${MONGO_BULK_DOCUMENTS}` }), rows, bytes, seconds, firstRowMs, firstRow, clientCpuSeconds, rowsPerSecond: rows / seconds, mbPerSecond: bytes / 1e6 / seconds };
}

/** Environment of lib/mysql-client.mjs for an endpoint: the password, and mysql_clear_password towards Airlock. */
function mysqlEnv(endpoint) {
  const env = { ...process.env, BENCH_MYSQL_PASSWORD: endpoint.password ?? "" };
  if (endpoint.clearPassword) env.BENCH_MYSQL_AUTH = "clear";
  else delete env.BENCH_MYSQL_AUTH;
  return env;
}

/** MySQL point lookups for `seconds` on `clients` connections (lib/mysql-client.mjs point, in its own process). */
export async function mysqlPoint(endpoint, clients, seconds, latencyFile) {
  const output = await runAsync(process.execPath, [join(import.meta.dirname, "mysql-client.mjs"), "point", String(endpoint.port), endpoint.user, endpoint.database, String(clients), String(seconds), String(MYSQL_POINT_ROWS), latencyFile], { env: mysqlEnv(endpoint) });
  if (output.code !== 0) {
    rmSync(latencyFile, { force: true });
    return { ok: false, error: output.stderr.trim().slice(-500) || `exit ${output.code}` };
  }
  const figures = JSON.parse(output.stdout.trim().split("\n").pop());
  const bytes = readFileSync(latencyFile);
  rmSync(latencyFile, { force: true });
  const latencies = new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)).sort();
  const result = { ok: figures.transactions > 0, ...figures };
  // Pooled over the rounds by the report, like pgbench's latency logs (microseconds, sorted).
  Object.defineProperty(result, "latenciesUs", { value: latencies, enumerable: false });
  return result;
}

/** The MySQL bulk read (lib/mysql-client.mjs bulk, in its own process): rows and bytes of the row packets. */
export async function mysqlBulkRead(endpoint, sql) {
  const output = await runAsync(process.execPath, [join(import.meta.dirname, "mysql-client.mjs"), "bulk", String(endpoint.port), endpoint.user, endpoint.database, sql], { env: mysqlEnv(endpoint) });
  if (output.code !== 0) return { ok: false, error: output.stderr.trim().slice(-500) || `exit ${output.code}` };
  const { rows, bytes, seconds, firstRowMs, firstRow, clientCpuSeconds } = JSON.parse(output.stdout.trim().split("\n").pop());
  return { ok: rows > 0, rows, bytes, seconds, firstRowMs, firstRow, clientCpuSeconds, rowsPerSecond: rows / seconds, mbPerSecond: bytes / 1e6 / seconds };
}

/** The bulk read through the minimal wire client (bulk-client.mjs), in its own process. */
export async function bulkRead(endpoint, sql) {
  const env = { ...process.env };
  if (endpoint.password !== undefined) env.PGPASSWORD = endpoint.password;
  else delete env.PGPASSWORD;
  const output = await runAsync(process.execPath, [join(import.meta.dirname, "bulk-client.mjs"), String(endpoint.port), endpoint.user, endpoint.database, sql], { env });
  if (output.code !== 0) return { ok: false, error: output.stderr.trim().slice(-500) || `exit ${output.code}` };
  const { rows, bytes, seconds, firstRowMs } = JSON.parse(output.stdout.trim().split("\n").pop());
  return { ok: rows > 0, rows, bytes, seconds, firstRowMs, rowsPerSecond: rows / seconds, mbPerSecond: bytes / 1e6 / seconds };
}

/**
 * Opens `sessions` sessions at once, then runs short statements on all of them for `seconds`
 * (bench/lib/sessions-client.mjs, in its own process).
 */
export async function manySessions(endpoint, sessions, seconds) {
  const env = { ...process.env };
  if (endpoint.password !== undefined) env.PGPASSWORD = endpoint.password;
  else delete env.PGPASSWORD;
  const output = await runAsync(process.execPath, [join(import.meta.dirname, "sessions-client.mjs"), String(endpoint.port), endpoint.user, endpoint.database, String(sessions), String(seconds), String(PGBENCH_SCALE)], { env });
  if (output.code !== 0) return { ok: false, error: output.stderr.trim().slice(-500) || `exit ${output.code}` };
  const figures = JSON.parse(output.stdout.trim().split("\n").pop());
  return { ok: figures.transactions > 0, ...figures };
}

void BENCH_DB;
