// The databases: the bench database on the machine's PostgreSQL (5432), and, for the 200-session
// workload when 5432 cannot take 200 more connections, a private PostgreSQL in the temp dir.
import { chownSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, progress, run, runAsync, startProcess, waitFor } from "./util.mjs";

export const BENCH_DB = "airlock_bench";
export const BULK_TABLE = "bench_people";
export const BULK_ROWS = 1_000_000;
export const PGBENCH_SCALE = 10;

const PGENV = { ...process.env, PGSSLMODE: "disable", PGCONNECT_TIMEOUT: "10" };

/** psql -Atc against a server as postgres; returns trimmed stdout. */
export function psql(port, database, sql, options = {}) {
  return run("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", database, "-Atc", sql], {
    env: PGENV,
    allowFail: options.allowFail,
  }).stdout.trim();
}

/** Facts about a server: version, max_connections, connections in use. */
export function serverFacts(port) {
  const [version, maxConnections, reserved, used] = psql(
    port,
    "postgres",
    "select current_setting('server_version'), current_setting('max_connections'), current_setting('superuser_reserved_connections'), (select count(*) from pg_stat_activity where backend_type = 'client backend')",
  ).split("|");
  return { version, maxConnections: Number(maxConnections), reserved: Number(reserved), used: Number(used) };
}

/**
 * The bench database: pgbench -i -s 10 and a 1,000,000-row table of five columns (email and
 * card_number are the ones a masking policy would cover). Kept between runs when intact, since
 * no workload writes to it; `reinit` rebuilds it.
 */
export function prepareBenchDatabase(port, { reinit = false } = {}) {
  const exists = psql(port, "postgres", `select 1 from pg_database where datname = '${BENCH_DB}'`) === "1";
  if (!exists) {
    progress(`setup: creating database ${BENCH_DB} on 127.0.0.1:${port}`);
    psql(port, "postgres", `create database ${BENCH_DB}`);
  }
  const count = (sql) => Number(psql(port, BENCH_DB, sql, { allowFail: true }) || -1);
  const pgbenchIntact = !reinit && count("select count(*) from pgbench_branches") === PGBENCH_SCALE && count("select count(*) from pgbench_accounts") === PGBENCH_SCALE * 100_000;
  if (pgbenchIntact) progress(`setup: pgbench tables of scale ${PGBENCH_SCALE} already in ${BENCH_DB}`);
  else {
    progress(`setup: pgbench -i -s ${PGBENCH_SCALE} ${BENCH_DB} (directly on 127.0.0.1:${port})`);
    run("pgbench", ["-i", "-q", "-s", String(PGBENCH_SCALE), "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", BENCH_DB], { env: PGENV });
  }
  const bulkIntact = !reinit && count(`select count(*) from ${BULK_TABLE}`) === BULK_ROWS;
  if (bulkIntact) progress(`setup: ${BULK_TABLE} (${BULK_ROWS} rows) already in ${BENCH_DB}`);
  else {
    progress(`setup: creating ${BULK_TABLE} with ${BULK_ROWS} rows of five columns`);
    psql(
      port,
      BENCH_DB,
      `drop table if exists ${BULK_TABLE};
       create table ${BULK_TABLE} (id bigint primary key, name text not null, email text not null, card_number text not null, created_at timestamptz not null);
       insert into ${BULK_TABLE}
         select i, 'Person ' || i, 'person' || i || '@example.com',
                '4111 ' || lpad((i % 10000)::text, 4, '0') || ' ' || lpad(((i * 7) % 10000)::text, 4, '0') || ' ' || lpad(((i * 13) % 10000)::text, 4, '0'),
                timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second'
         from generate_series(1, ${BULK_ROWS}) i;`,
    );
    psql(port, BENCH_DB, `vacuum (freeze, analyze) ${BULK_TABLE}`);
  }
  const size = psql(port, BENCH_DB, `select pg_size_pretty(pg_total_relation_size('${BULK_TABLE}'))`);
  return { bulkTableSize: size };
}

/**
 * A private PostgreSQL (same binaries) in `dir`, on a free port, with max_connections 500, for the
 * 200-session workload. Runs as the postgres user; the harness stops it.
 */
export async function startPrivatePostgres(dir, binDir, postgresUser) {
  const data = join(dir, "data");
  mkdirSync(dir, { recursive: true });
  chownSync(dir, postgresUser.uid, postgresUser.gid);
  progress(`setup: initdb of a private PostgreSQL for the 200-session workload (${dir})`);
  run(`${binDir}/initdb`, ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C"], {
    uid: postgresUser.uid,
    gid: postgresUser.gid,
    cwd: dir,
  });
  const port = await freePort();
  const server = startProcess(
    "postgres (private)",
    `${binDir}/postgres`,
    ["-D", data, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=500", "-c", "logging_collector=off", "-c", "log_min_messages=warning"],
    { logFile: join(dir, "postgres.log"), uid: postgresUser.uid, gid: postgresUser.gid, cwd: dir },
  );
  await waitFor("the private PostgreSQL", () => psql(port, "postgres", "select 1", { allowFail: true }) === "1", 30_000, server);
  psql(port, "postgres", `create database ${BENCH_DB}`);
  progress(`setup: pgbench -i -s ${PGBENCH_SCALE} on the private PostgreSQL (127.0.0.1:${port})`);
  const init = await runAsync("pgbench", ["-i", "-q", "-s", String(PGBENCH_SCALE), "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", BENCH_DB], { env: PGENV });
  if (init.code !== 0) throw new Error(`pgbench -i on the private PostgreSQL failed: ${init.stderr.slice(-1000)}`);
  // The table the masking policy names, empty: the same gateway config serves both servers.
  psql(port, BENCH_DB, `create table ${BULK_TABLE} (id bigint primary key, name text not null, email text not null, card_number text not null, created_at timestamptz not null)`);
  return { port, server };
}

/** uid/gid of the postgres system user (poolers refuse to run as root). */
export function postgresUser() {
  const uid = Number(run("id", ["-u", "postgres"]).stdout.trim());
  const gid = Number(run("id", ["-g", "postgres"]).stdout.trim());
  return { uid, gid };
}

/** Writes a file owned by the postgres user. */
export function writeOwned(file, text, user, mode = 0o600) {
  writeFileSync(file, text, { mode });
  chownSync(file, user.uid, user.gid);
}
