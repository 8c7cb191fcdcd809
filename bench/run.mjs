#!/usr/bin/env node
// Airlock benchmark harness: `pnpm bench` (node bench/run.mjs). See bench/README.md.
//
// In one run, alternating the targets round by round: direct PostgreSQL, pgbouncer (transaction
// pooling), pgpool-II (raw mode), Airlock's native listener and Airlock through `airlock connect`,
// on pgbench -S (simple, extended, prepared), a 1,000,000-row bulk read (SELECT and COPY), 200
// concurrent sessions and the connection setup rate; and MySQL (the machine's MariaDB) directly,
// through Airlock's native listener and through `airlock connect`, on point SELECTs with 8 clients
// and a masked 1,000,000-row read; and MongoDB (the project's stand-in server, packages/mongo-test-server:
// there is no mongod here) directly, through the native listener and through `airlock connect`, on
// point finds by _id with 8 clients and a masked 200,000-document find. Sets up everything it needs by itself.
import { execSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { checkBuilt, createIssuer, probeMasking, ROOT, startAirlock, startConnect, writeToken } from "./lib/airlock.mjs";
import { BENCH_DB, postgresUser, prepareBenchDatabase, serverFacts, startPrivatePostgres } from "./lib/postgres.mjs";
import { startPgbouncer, startPgpool } from "./lib/poolers.mjs";
import { aggregate, renderMarkdown, writeDocs } from "./lib/report.mjs";
import { checkPostgresTools, ensurePoolers, machineInfo } from "./lib/system.mjs";
import { killAllSync, progress, rssBytes, sampleRss, stopAll } from "./lib/util.mjs";
import { AIRLOCK_TARGETS, bulkRead, measure, MONGO_UNMASKED_TARGET, MYSQL_UNMASKED_TARGET, PROTOCOLS, protocolOf, TARGETS, UNMASKED_TARGET, workloads } from "./lib/workloads.mjs";
import { ensureMysqlUser, MYSQL_DB, MYSQL_PORT, MYSQL_USER, mysqlFacts, prepareMysqlBenchDatabase } from "./lib/mysql.mjs";
import { runProfile } from "./lib/profile.mjs";
import { checkMongoBuilt, MONGO_BULK_COLLECTION, MONGO_BULK_DOCUMENTS, MONGO_DB, MONGO_POINT_COLLECTION, MONGO_POINT_DOCUMENTS, MONGO_USER, mongoFacts, startMongoServer } from "./lib/mongo.mjs";

const USAGE = `node bench/run.mjs [options]        (pnpm bench -- [options])

  --duration S       seconds of each pgbench -S run (default 10); the 200-session and
                     connection-rate runs take 0.4 of it (at least 3 s)
  --quick            --duration 3 --rounds 1
  --rounds N         rounds; each round runs every workload on every target, in an order that
                     rotates from round to round (default 2)
  --write-docs       rewrite docs/benchmarks.md with this run
  --no-statement-fsync   skip the extra run with recording.fsync: statement
  --no-stream        skip the 1 GB streaming read (gateway and agent memory)
  --workloads a,b    only these workloads (select-simple, select-extended, select-prepared,
                     bulk-select, bulk-copy, sessions-200, connect-rate on the PostgreSQL
                     targets; mysql-point-select, mysql-bulk-select on the MySQL targets;
                     mongo-point-find, mongo-bulk-find on the MongoDB targets)
  --targets a,b      only these targets (${TARGETS.join(", ")})
  --reinit           rebuild the bench databases (PostgreSQL and MariaDB) even if intact
  --keep             keep the temp dir (configs, logs, recordings)
  --profile          instead of the comparison: run pgbench -S simple through the native listener
                     with node --cpu-prof on the gateway and the agent (and on airlock connect
                     through it), and summarise the profiles (bench/profile-summary.mjs)
  --fsync MODE       recording fsync of the gateway: interval (default) or statement
  --help`;

const { values } = parseArgs({
  // `pnpm bench -- --quick` passes the "--" through: drop it.
  args: process.argv.slice(2).filter((arg, index) => !(index === 0 && arg === "--")),
  options: {
    duration: { type: "string" },
    quick: { type: "boolean", default: false },
    rounds: { type: "string" },
    "write-docs": { type: "boolean", default: false },
    "no-statement-fsync": { type: "boolean", default: false },
    "no-stream": { type: "boolean", default: false },
    workloads: { type: "string" },
    targets: { type: "string" },
    reinit: { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    fsync: { type: "string", default: "interval" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const duration = Number(values.duration ?? (values.quick ? 3 : 10));
const rounds = Number(values.rounds ?? (values.quick ? 1 : 2));
if (!(duration >= 1) || !Number.isInteger(rounds) || rounds < 1) throw new Error("--duration must be >= 1 and --rounds a positive integer");
if (!["interval", "statement"].includes(values.fsync)) throw new Error("--fsync is interval or statement");
const selectedTargets = values.targets ? values.targets.split(",") : TARGETS;
for (const target of selectedTargets) if (!TARGETS.includes(target)) throw new Error(`unknown target ${target}`);
const allWorkloads = workloads(duration);
if (values.workloads) for (const id of values.workloads.split(",")) if (!allWorkloads.some((workload) => workload.id === id)) throw new Error(`unknown workload ${id}`);
// A workload runs on the selected targets of its protocol; one with none of them selected does not run.
const protocolTargets = (workload) => selectedTargets.filter((target) => protocolOf(target) === workload.protocol);
const selectedWorkloads = (values.workloads ? allWorkloads.filter((workload) => values.workloads.split(",").includes(workload.id)) : allWorkloads).filter((workload) => protocolTargets(workload).length > 0);
if (selectedWorkloads.length === 0 && !values.profile) throw new Error("no workload runs on the selected targets (the mysql-* workloads run on the mysql-* targets, the mongo-* workloads on the mongo-* targets, the others on the PostgreSQL targets)");
// What needs setting up: PostgreSQL (and its poolers) only when a PostgreSQL workload runs (or --profile), MariaDB only for a MySQL one.
const needsPostgres = values.profile || selectedWorkloads.some((workload) => workload.protocol === "postgres");
const needsMysql = !values.profile && selectedWorkloads.some((workload) => workload.protocol === "mysql");
// The MongoDB stand-in only when a MongoDB workload runs.
const needsMongo = !values.profile && selectedWorkloads.some((workload) => workload.protocol === "mongodb");

let tmp;
let cleaning = false;
async function cleanup() {
  if (cleaning) return;
  cleaning = true;
  progress("stopping every process the harness started");
  await stopAll();
  if (tmp !== undefined && !values.keep) rmSync(tmp, { recursive: true, force: true });
  else if (tmp !== undefined) progress(`kept ${tmp}`);
}
process.on("exit", killAllSync);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    progress(`${signal}: stopping`);
    cleanup().finally(() => process.exit(130));
  });
}

const passed = process.argv.slice(2).filter((arg, index) => !(index === 0 && arg === "--"));
// --keep changes no figure: left out of the command shown in the report.
const shown = passed.filter((arg) => arg !== "--keep");
const commandLine = `pnpm bench${shown.length > 0 ? ` -- ${shown.join(" ")}` : ""}`;

try {
  await main();
} catch (error) {
  process.stderr.write(`bench: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}

async function main() {
  const startedAt = new Date();
  const loadAtStart = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  // What runs is packages/*/dist: note the commit and the build now, and check at the end that
  // nothing rebuilt it during the run.
  const codeAtStart = gitCommit();
  const distAtStart = newestDist();
  // ---- setup ------------------------------------------------------------------------------
  checkBuilt();
  let binDir;
  let facts;
  let bench;
  if (needsPostgres) {
    binDir = checkPostgresTools();
    ensurePoolers();
    facts = serverFacts(5432);
    progress(`setup: PostgreSQL ${facts.version} on 127.0.0.1:5432 (max_connections ${facts.maxConnections}, ${facts.used} in use)`);
    bench = prepareBenchDatabase(5432, { reinit: values.reinit });
  } else progress("setup: no PostgreSQL workload selected: PostgreSQL, pgbouncer and pgpool-II are not set up");
  let mysqlInfo;
  if (needsMysql) {
    mysqlInfo = mysqlFacts();
    progress(`setup: MariaDB ${mysqlInfo.version} on 127.0.0.1:${MYSQL_PORT} (max_connections ${mysqlInfo.maxConnections}, innodb_buffer_pool_size ${Math.round(mysqlInfo.bufferPoolBytes / 2 ** 20)} MiB)`);
    Object.assign(mysqlInfo, prepareMysqlBenchDatabase({ reinit: values.reinit }));
  }
  if (needsMongo) checkMongoBuilt();
  tmp = mkdtempSync(join(tmpdir(), "airlock-bench-"));
  chmodSync(tmp, 0o755);
  progress(`setup: temp dir ${tmp}`);
  const pgUser = needsPostgres ? postgresUser() : undefined;
  let mysqlPassword;
  let mysqlConnection;
  if (needsMysql) {
    // The agent's account, with a fresh password for this run in the temp dir (the agent's password_file).
    const passwordFile = join(tmp, "mysql-password");
    mysqlPassword = ensureMysqlUser(passwordFile);
    mysqlConnection = { name: "bench_mysql", port: MYSQL_PORT, database: MYSQL_DB, user: MYSQL_USER, passwordFile };
    progress(`setup: MariaDB user ${MYSQL_USER}@127.0.0.1 (SELECT on ${MYSQL_DB}), password in ${passwordFile}`);
  }
  let mongoServer;
  let mongoInfo;
  let mongoConnection;
  if (needsMongo) {
    // The stand-in as its own process, seeded in memory on every run (it keeps nothing on disk);
    // the agent's account gets a fresh password, in the temp dir (the agent's password_file).
    const passwordFile = join(tmp, "mongo-password");
    mongoInfo = await mongoFacts();
    mongoServer = await startMongoServer({ dir: tmp, passwordFile });
    mongoConnection = { name: "bench_mongo", port: mongoServer.port, database: MONGO_DB, collection: MONGO_BULK_COLLECTION, user: MONGO_USER, passwordFile };
    progress(
      `setup: MongoDB stand-in (packages/mongo-test-server, reports ${mongoInfo.serverVersion}; mingo ${mongoInfo.mingo}) on 127.0.0.1:${mongoServer.port} (pid ${mongoServer.handle.pid}), seeded in ${mongoServer.seedSeconds.toFixed(1)} s: ${MONGO_DB}.${MONGO_POINT_COLLECTION} (${MONGO_POINT_DOCUMENTS} documents), ${MONGO_DB}.${MONGO_BULK_COLLECTION} (${MONGO_BULK_DOCUMENTS}); user ${MONGO_USER} (read on ${MONGO_DB}), password in ${passwordFile}`,
    );
  }

  // Direct PostgreSQL and Airlock hold one backend per client: 200 sessions need room for them,
  // for pgpool's 200 cached backends (kept after its run), pgbouncer's pool, and the rest.
  const needsMany = !values.profile && selectedWorkloads.some((workload) => workload.server === "many");
  let manyPort = 5432;
  let manyServer = "the machine's PostgreSQL (127.0.0.1:5432)";
  if (needsMany && facts.maxConnections - facts.reserved - facts.used < 450) {
    const privatePg = await startPrivatePostgres(join(tmp, "pg-many"), binDir, pgUser);
    manyPort = privatePg.port;
    manyServer = `a private PostgreSQL ${facts.version.split(" ")[0]} started by the harness (127.0.0.1:${manyPort}, max_connections 500, otherwise default settings), because 127.0.0.1:5432 has max_connections ${facts.maxConnections}`;
    progress(`setup: the 200-session workload runs on ${manyServer}`);
  }

  const issuer = await createIssuer(join(tmp, "jwks.json"));
  const tokenFile = join(tmp, "token");
  const token = await writeToken(issuer, tokenFile);
  const unmaskedToken = await issuer.mint(4 * 3600, ["bench-unmasked"]);
  const masking = await probeMasking({ dir: join(tmp, "masking-probe"), jwksFile: join(tmp, "jwks.json") });
  progress(`setup: masking ${masking.available ? "is available" : `is not available: ${masking.message}`}`);
  const fsync = values.fsync;

  const backends = needsPostgres ? { bench: 5432, ...(needsMany ? { bench_many: manyPort } : {}) } : {};
  if (values.profile) {
    await runProfile({ tmp, issuer, token, tokenFile, backends: { bench: 5432 }, fsync, masking: masking.available, duration: values.duration === undefined ? 20 : duration, startAirlock, startConnect });
    return;
  }

  let pgbouncer;
  let pgpool;
  let pgpoolMany;
  if (needsPostgres) {
    pgbouncer = await startPgbouncer(join(tmp, "pgbouncer"), pgUser, { [BENCH_DB]: 5432, ...(needsMany ? { [`${BENCH_DB}_many`]: manyPort } : {}) });
    progress(`setup: pgbouncer on 127.0.0.1:${pgbouncer.port}`);
    pgpool = await startPgpool(join(tmp, "pgpool"), pgUser, 5432, 16);
    progress(`setup: pgpool-II on 127.0.0.1:${pgpool.port} (num_init_children 16)`);
    pgpoolMany = needsMany ? await startPgpool(join(tmp, "pgpool-many"), pgUser, manyPort, 220) : undefined;
    if (pgpoolMany) progress(`setup: pgpool-II for 200 sessions on 127.0.0.1:${pgpoolMany.port} (num_init_children 220)`);
  }

  // One gateway and one agent carry every connection: the PostgreSQL ones and the MySQL one.
  let airlock = await startAirlock({ dir: join(tmp, "airlock"), jwksFile: join(tmp, "jwks.json"), backends, fsync, masking: masking.available, mysql: mysqlConnection, mongo: mongoConnection, ...(process.env.AIRLOCK_BENCH_CPU_PROF === undefined ? {} : { cpuProfDir: process.env.AIRLOCK_BENCH_CPU_PROF }) });
  progress(`setup: Airlock gateway (pid ${airlock.gateway.pid}, recording fsync ${fsync}) and agent (pid ${airlock.agent.pid}); native listeners ${JSON.stringify(airlock.listeners)}`);
  let connects = {};
  for (const connection of [...Object.keys(backends), ...(mysqlConnection ? [mysqlConnection.name] : []), ...(mongoConnection ? [mongoConnection.name] : [])]) {
    connects[connection] = await startConnect({ dir: tmp, grpc: airlock.grpc, connection, tokenFile });
    progress(`setup: airlock connect ${connection} on 127.0.0.1:${connects[connection].port} (pid ${connects[connection].handle.pid})`);
  }

  const endpoint = (target, server) => {
    const many = server === "many";
    switch (target) {
      case "direct":
        return { port: many ? manyPort : 5432, user: "postgres", database: BENCH_DB };
      case "pgbouncer":
        return { port: pgbouncer.port, user: "postgres", database: many ? `${BENCH_DB}_many` : BENCH_DB };
      case "pgpool":
        return { port: many ? pgpoolMany.port : pgpool.port, user: "postgres", database: BENCH_DB };
      case "airlock-native":
        return { port: airlock.listeners[many ? "bench_many" : "bench"], user: "bench", database: BENCH_DB, password: token };
      case "airlock-connect":
        return { port: connects[many ? "bench_many" : "bench"].port, user: "bench", database: BENCH_DB };
      case UNMASKED_TARGET:
        return { port: airlock.listeners[many ? "bench_many" : "bench"], user: "bench", database: BENCH_DB, password: unmaskedToken };
      // MySQL: directly as the agent's own account; to Airlock the token goes as the password by
      // mysql_clear_password (loopback), and through `airlock connect` any password does.
      case "mysql-direct":
        return { port: MYSQL_PORT, user: MYSQL_USER, database: MYSQL_DB, password: mysqlPassword };
      case "mysql-airlock-native":
        return { port: airlock.listeners.bench_mysql, user: "bench", database: MYSQL_DB, password: token, clearPassword: true };
      case "mysql-airlock-connect":
        return { port: connects.bench_mysql.port, user: "bench", database: MYSQL_DB, password: "", clearPassword: true };
      case MYSQL_UNMASKED_TARGET:
        return { port: airlock.listeners.bench_mysql, user: "bench", database: MYSQL_DB, password: unmaskedToken, clearPassword: true };
      // MongoDB: directly as the agent's own account (SCRAM, authSource admin); to Airlock's native
      // listener by MONGODB-OIDC with the token; through `airlock connect` with no credentials.
      case "mongo-direct":
        return { port: mongoServer.port, auth: "scram", user: MONGO_USER, password: mongoServer.password };
      case "mongo-airlock-native":
        return { port: airlock.listeners.bench_mongo, auth: "oidc", token };
      case "mongo-airlock-connect":
        return { port: connects.bench_mongo.port, auth: "none" };
      case MONGO_UNMASKED_TARGET:
        return { port: airlock.listeners.bench_mongo, auth: "oidc", token: unmaskedToken };
    }
  };
  const connectOf = (target, server) =>
    target === "airlock-connect" ? (server === "many" ? "bench_many" : "bench") : target === "mysql-airlock-connect" ? "bench_mysql" : target === "mongo-airlock-connect" ? "bench_mongo" : undefined;
  // Servers the harness runs itself, whose CPU and RSS are measured too: the MongoDB stand-in.
  const serverPids = mongoServer ? { mongodb: mongoServer.handle.pid } : {};
  const airlockPids = (target, server) => ({
    gateway: airlock.gateway.pid,
    agent: airlock.agent.pid,
    ...(connectOf(target, server) ? { connect: connects[connectOf(target, server)].handle.pid } : {}),
  });

  // ---- warm-up: a short unrecorded load on every Airlock target (JIT, caches, pools) -------
  // (pgbench -S on the PostgreSQL ones, the point lookups on the MySQL and MongoDB ones)
  const warmups = {
    postgres: { id: "warm-up", protocol: "postgres", kind: "pgbench", server: "main", pgbench: { mode: "simple", clients: 8, threads: 2, duration: 2 } },
    mysql: { id: "warm-up", protocol: "mysql", kind: "point", server: "mysql", point: { clients: 8, duration: 2 } },
    mongodb: { id: "warm-up", protocol: "mongodb", kind: "point", server: "mongo", point: { clients: 8, duration: 2 } },
  };
  const warmupNames = { postgres: "pgbench -S", mysql: "MySQL point lookups", mongodb: "MongoDB point finds" };
  const warmTargets = selectedTargets.filter((name) => AIRLOCK_TARGETS.has(name) && selectedWorkloads.some((workload) => workload.protocol === protocolOf(name)));
  progress(`warm-up: 2 s of ${[...new Set(warmTargets.map(protocolOf))].map((protocol) => warmupNames[protocol]).join(" / ")} on each Airlock target (not recorded)`);
  for (const target of warmTargets) {
    const warmup = warmups[protocolOf(target)];
    const result = await measure({ workload: warmup, target, endpoint: endpoint(target, warmup.server), airlockPids, serverPids, tmp, tag: `warm-up-${target}` });
    if (!result.ok) progress(`warm-up ${target} FAILED: ${result.error}`);
  }

  // ---- rounds ----------------------------------------------------------------------------
  // Each workload on the selected targets of its protocol; extra targets (the unmasked identity)
  // only where masking is on and that protocol's native target runs.
  const targetsOf = (workload) => [...protocolTargets(workload), ...(masking.available && selectedTargets.includes(PROTOCOLS[workload.protocol].native) ? (workload.extraTargets ?? []) : [])];
  const raw = {};
  for (const workload of selectedWorkloads) raw[workload.id] = Object.fromEntries(targetsOf(workload).map((target) => [target, []]));
  const perRun = selectedWorkloads.reduce((sum, workload) => sum + (workload.kind === "pgbench" ? workload.pgbench.duration + 1 : workload.kind === "point" ? workload.point.duration + 1 : workload.kind === "sessions" ? workload.duration + 3 : 3) * targetsOf(workload).length, 0);
  progress(`running ${rounds} round(s) of ${selectedWorkloads.length} workloads on ${selectedTargets.length} targets (about ${perRun * rounds < 120 ? `${perRun * rounds} s` : `${Math.round((perRun * rounds) / 60)} min`})`);
  for (let round = 0; round < rounds; round++) {
    for (const workload of selectedWorkloads) {
      const targets = targetsOf(workload);
      const order = targets.map((_, index) => targets[(index + round) % targets.length]);
      for (const target of order) {
        const result = await measure({ workload, target, endpoint: endpoint(target, workload.server), airlockPids, serverPids, tmp, tag: `${round}-${workload.id}-${target}` });
        result.round = round + 1;
        raw[workload.id][target].push(result);
        progress(`round ${round + 1}/${rounds} ${workload.id.padEnd(18)} ${target.padEnd(29)} ${summary(workload, result)}`);
      }
    }
  }

  // ---- gateway and agent memory while streaming 1 GB ---------------------------------------
  let stream;
  if (!values["no-stream"] && needsPostgres && selectedTargets.includes("airlock-native")) {
    progress("streaming a 1 GB result through the native listener (gateway and agent memory)");
    const pids = { gateway: airlock.gateway.pid, agent: airlock.agent.pid };
    const baseline = { gateway: rssBytes(pids.gateway), agent: rssBytes(pids.agent) };
    const sampler = sampleRss(pids, 100);
    const read = await bulkRead(endpoint("airlock-native", "main"), "select g, repeat('x', 1000) as filler from generate_series(1, 1000000) g");
    const peaks = sampler.stop();
    stream = { ...read, baselineRssBytes: baseline, peakRssBytes: { gateway: peaks.gateway.peak, agent: peaks.agent.peak } };
    progress(`  ${(read.bytes / 1e9).toFixed(2)} GB in ${read.seconds?.toFixed(1)} s; RSS gateway ${mb(baseline.gateway)} -> peak ${mb(peaks.gateway.peak)} MB, agent ${mb(baseline.agent)} -> peak ${mb(peaks.agent.peak)} MB`);
  }

  // ---- one run with recording fsync: statement ---------------------------------------------
  let statementFsync;
  const simple = selectedWorkloads.find((workload) => workload.id === "select-simple");
  if (!values["no-statement-fsync"] && fsync === "interval" && simple) {
    progress("restarting Airlock with recording.fsync: statement for one more pgbench -S simple run per Airlock target");
    for (const connect of Object.values(connects)) await connect.handle.stop();
    await airlock.stop();
    airlock = await startAirlock({ dir: join(tmp, "airlock-statement"), jwksFile: join(tmp, "jwks.json"), backends: { bench: 5432 }, fsync: "statement", masking: masking.available });
    connects = { bench: await startConnect({ dir: tmp, grpc: airlock.grpc, connection: "bench", tokenFile }) };
    statementFsync = {};
    for (const target of ["airlock-native", "airlock-connect"].filter((name) => selectedTargets.includes(name))) {
      const result = await measure({ workload: simple, target, endpoint: endpoint(target, "main"), airlockPids, tmp, tag: `statement-fsync-${target}` });
      statementFsync[target] = result;
      progress(`fsync statement  ${simple.id.padEnd(15)} ${target.padEnd(15)} ${summary(simple, result)}`);
    }
  }

  // ---- report ------------------------------------------------------------------------------
  const finishedAt = new Date();
  const machine = machineInfo(facts?.version ?? "not used in this run");
  if (mysqlInfo) machine.mariadb = mysqlInfo.version;
  if (mongoInfo) machine.mongoStandIn = `packages/mongo-test-server (reports MongoDB ${mongoInfo.serverVersion}, wire version ${mongoInfo.maxWireVersion}; mingo ${mongoInfo.mingo}), driver mongodb ${mongoInfo.driver}`;
  machine.loadAverageAtStart = loadAtStart;
  machine.loadAverageAtEnd = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  const report = aggregate({
    raw,
    workloads: selectedWorkloads,
    targets: selectedTargets,
    meta: {
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      command: commandLine,
      duration,
      rounds,
      fsync,
      machine,
      gitCommit: codeAtStart,
      ...(newestDist() > distAtStart ? { distRebuiltDuringRun: `packages/*/dist was rebuilt during the run (${new Date(newestDist() * 1000).toISOString()}): processes started after that (the fsync: statement restart) ran the newer build` } : {}),
      settings: {
        ...(needsPostgres
          ? {
              postgres: `127.0.0.1:5432, database ${BENCH_DB} (pgbench scale 10; ${bench.bulkTableSize} bench_people)`,
              manyServer,
              pgbouncer: pgbouncer.settings,
              pgpool: pgpool.settings,
              pgpoolMany: pgpoolMany?.settings,
            }
          : {}),
        ...(needsMysql
          ? {
              mysql: `MariaDB ${mysqlInfo.version} on 127.0.0.1:${MYSQL_PORT} (the machine's server and settings: max_connections ${mysqlInfo.maxConnections}, innodb_buffer_pool_size ${Math.round(mysqlInfo.bufferPoolBytes / 2 ** 20)} MiB), database ${MYSQL_DB}: bench_accounts (100,000 rows, ${mysqlInfo.pointTableSize}) and bench_people (1,000,000 rows, ${mysqlInfo.bulkTableSize}), InnoDB; user ${MYSQL_USER}@127.0.0.1 (mysql_native_password, SELECT on ${MYSQL_DB}) for the agent and for mysql-direct`,
            }
          : {}),
        ...(needsMongo
          ? {
              mongodb: `the project's MongoDB stand-in, packages/mongo-test-server (not a real mongod: an in-memory JavaScript server, query semantics from mingo ${mongoInfo.mingo}, a find by _id uses the _id index, any other filter tests every document), run by the harness as its own process on 127.0.0.1:${mongoServer.port}, standalone (no replica set), no compression, seeded on every run through its in-memory API (${mongoServer.seedSeconds.toFixed(1)} s): ${MONGO_DB}.${MONGO_POINT_COLLECTION} (${MONGO_POINT_DOCUMENTS.toLocaleString("en-US")} documents { _id, bid, abalance, filler }) and ${MONGO_DB}.${MONGO_BULK_COLLECTION} (${MONGO_BULK_DOCUMENTS.toLocaleString("en-US")} documents { _id, name, email, card_number, created_at }); user ${MONGO_USER} (authSource admin, SCRAM-SHA-256, read on ${MONGO_DB}) for the agent and for mongo-direct`,
            }
          : {}),
        airlock: `one gateway + one agent as processes (node packages/cli/bin/airlock.js) carrying every connection, local ES256 issuer, policy bench-read (read and export allowed), recording on (fsync ${fsync}, interval 10ms, sample_rows 20), SQLite store, log level info to a file; the agent logs in ${[needsPostgres ? "to PostgreSQL as postgres (trust)" : undefined, needsMysql ? `to MariaDB as ${MYSQL_USER} (mysql_native_password, password_file in the temp dir)` : undefined, needsMongo ? `to the MongoDB stand-in as ${MONGO_USER} (SCRAM-SHA-256, authSource admin, password_file in the temp dir)` : undefined].filter(Boolean).join(" and ")}`,
        client: [
          needsPostgres ? "pgbench from PostgreSQL's packages; bulk reads with bench/lib/bulk-client.mjs (counts DataRow/CopyData messages without decoding them)" : undefined,
          needsMysql ? "MySQL: bench/lib/mysql-client.mjs (its own minimal wire client: mysql_native_password directly, mysql_clear_password with the token to Airlock; COM_QUERY, text protocol; rows counted without decoding them)" : undefined,
          needsMongo
            ? `MongoDB: bench/lib/mongo-client.mjs, the official driver (mongodb ${mongoInfo.driver}; SCRAM directly, MONGODB-OIDC with the token on the native listener, no credentials through airlock connect; point finds with maxPoolSize 8 and 8 concurrent loops; the bulk find with raw: true, so documents are counted as BSON without being deserialized)`
            : undefined,
        ]
          .filter(Boolean)
          .join("; "),
      },
    },
    masking,
    stream,
    statementFsync,
  });
  const markdown = renderMarkdown(report);
  process.stdout.write(`\n${markdown}\n`);
  const resultsDir = join(ROOT, "bench", "results");
  mkdirSync(resultsDir, { recursive: true });
  const jsonFile = join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  progress(`results: ${jsonFile}`);
  if (values["write-docs"]) {
    const docs = resolve(ROOT, "docs", "benchmarks.md");
    writeDocs(docs, report, markdown);
    progress(`docs: rewrote ${docs}`);
  }
}

function summary(workload, result) {
  if (!result.ok) return `FAILED: ${result.error}`;
  const cpu = result.cpuPer ? Object.entries(result.cpuPer).map(([name, value]) => `${name} ${value.toFixed(3)}`).join(" ") : "";
  const rowName = workload.protocol === "mongodb" ? "docs" : "rows";
  if (workload.kind === "bulk") return `${Math.round(result.rowsPerSecond).toLocaleString("en-US")} ${rowName}/s, ${result.mbPerSecond.toFixed(1)} MB/s${cpu ? `; CPU s/1M ${rowName}: ${cpu}` : ""}${result.firstRow ? `; first ${workload.protocol === "mongodb" ? "document" : "row"} ${JSON.stringify(result.firstRow)}` : ""}`;
  return `${result.tps.toFixed(0)} ${workload.unit}, p50 ${result.p50Ms?.toFixed(2)} ms, p99 ${result.p99Ms?.toFixed(2)} ms${result.failed ? `, ${result.failed} failed` : ""}${cpu ? `; CPU s/1k: ${cpu}` : ""}`;
}

function mb(bytes) {
  return (bytes / 2 ** 20).toFixed(0);
}

// mtime (s) of the newest file under packages/<name>/dist.
function newestDist() {
  try {
    return Number(execSync("find packages/*/dist -type f -printf '%T@\\n' 2>/dev/null | sort -n | tail -1", { cwd: ROOT, encoding: "utf8", shell: "/bin/bash" }).trim() || 0);
  } catch {
    return 0;
  }
}

function gitCommit() {
  try {
    const commit = execSync("git rev-parse --short HEAD", { cwd: ROOT, encoding: "utf8" }).trim();
    const changed = execSync("git status --porcelain -- packages", { cwd: ROOT, encoding: "utf8" }).trim() !== "";
    // What ran is dist/: say whether it was built after the last change to the sources.
    const newest = (pattern) => Number(execSync(`find packages/*/${pattern} -type f -printf '%T@\\n' 2>/dev/null | sort -n | tail -1`, { cwd: ROOT, encoding: "utf8", shell: "/bin/bash" }).trim() || 0);
    const dist = newest("dist");
    const src = newest("src");
    const built = new Date(dist * 1000).toISOString();
    if (!changed) return `${commit} (dist/ built ${built})`;
    return `${commit} with uncommitted changes in packages/; the run used dist/ built ${built}${src > dist ? ", older than the newest source change (so: the committed code, if nothing was built since the commit)" : ""}`;
  } catch {
    return "unknown";
  }
}

