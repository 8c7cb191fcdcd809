// The workloads, the targets, and how one (workload, target) measurement is taken.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { runPgbench } from "./pgbench.mjs";
import { cpuSnapshot, runAsync, sampleRss } from "./util.mjs";
import { BENCH_DB, BULK_TABLE, PGBENCH_SCALE } from "./postgres.mjs";
import { MYSQL_POINT_ROWS, MYSQL_POINT_TABLE } from "./mysql.mjs";

export const PG_TARGETS = ["direct", "pgbouncer", "pgpool", "airlock-native", "airlock-connect"];
/** The MySQL targets: the machine's MariaDB directly, and through Airlock's MySQL connection. */
export const MYSQL_TARGETS = ["mysql-direct", "mysql-airlock-native", "mysql-airlock-connect"];
export const TARGETS = [...PG_TARGETS, ...MYSQL_TARGETS];
/** Measured on some workloads only (extraTargets): the native listener as an identity whose policy says `unmasked: true`. */
export const UNMASKED_TARGET = "airlock-native-unmasked";
export const MYSQL_UNMASKED_TARGET = "mysql-airlock-native-unmasked";
export const AIRLOCK_TARGETS = new Set(["airlock-native", "airlock-connect", UNMASKED_TARGET, "mysql-airlock-native", "mysql-airlock-connect", MYSQL_UNMASKED_TARGET]);
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
};
/** Per protocol: the targets, the reference of the ratios, and the native target the extra (unmasked) targets need. */
export const PROTOCOLS = {
  postgres: { targets: PG_TARGETS, direct: "direct", native: "airlock-native" },
  mysql: { targets: MYSQL_TARGETS, direct: "mysql-direct", native: "mysql-airlock-native" },
};
/** The protocol of a target (extra targets included). */
export function protocolOf(target) {
  return target.startsWith("mysql-") ? "mysql" : "postgres";
}

/**
 * protocol: postgres (the PostgreSQL targets) or mysql (the MySQL targets). kind: pgbench | bulk |
 * sessions | point (MySQL point lookups by lib/mysql-client.mjs). server: main (5432), many (the
 * 200-session server) or mysql (3306). unit: what the throughput counts.
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
  ].map((workload) => ({ protocol: "postgres", ...workload }));
}

/**
 * Measures one workload against one target: the figures, plus CPU seconds and peak RSS of the
 * Airlock processes over the run.
 */
export async function measure({ workload, target, endpoint, airlockPids, tmp, tag }) {
  const watched = AIRLOCK_TARGETS.has(target) ? airlockPids(target, workload.server) : {};
  const cpuBefore = cpuSnapshot(watched);
  const rss = sampleRss(watched, 100);
  let result;
  try {
    if (workload.kind === "pgbench") {
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
