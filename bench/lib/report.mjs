// Aggregation of the rounds, the Markdown table, the issue's targets, and docs/benchmarks.md.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { AIRLOCK_TARGETS, PROTOCOLS, TARGET_LABELS } from "./workloads.mjs";
import { median, percentile } from "./util.mjs";

const MiB = 2 ** 20;
const RSS_LIMIT_MIB = 300;
const STREAM_GROWTH_LIMIT_MIB = 100;

/**
 * Medians over rounds (pooled latency percentiles), ratios to direct (direct PostgreSQL, direct
 * MariaDB for the MySQL workloads, the stand-in directly for the MongoDB ones) and to pgbouncer
 * (PostgreSQL only), the targets.
 */
export function aggregate({ raw, workloads, targets, meta, masking, stream, statementFsync }) {
  const out = { meta, masking, workloads: [], stream, statementFsync: undefined, targets: [] };
  for (const workload of workloads) {
    const protocol = workload.protocol ?? "postgres";
    const entry = { id: workload.id, protocol, title: workload.title, unit: workload.unit, kind: workload.kind, server: workload.server, targets: {} };
    const here = Object.keys(raw[workload.id]);
    for (const target of here) entry.targets[target] = summarise(workload, raw[workload.id][target]);
    // MySQL and MongoDB: ratios to their own direct target (direct MariaDB, the MongoDB stand-in directly).
    const references = protocol === "postgres" ? [["direct", "vsDirect"], ["pgbouncer", "vsPgbouncer"]] : [[PROTOCOLS[protocol].direct, "vsDirect"]];
    for (const target of here) {
      const figure = entry.targets[target];
      for (const [reference, key] of references) {
        const base = entry.targets[reference];
        if (figure.throughput !== undefined && base?.throughput) figure[key] = figure.throughput / base.throughput;
        if (figure.p50Ms !== undefined && base?.p50Ms) figure[`p50${key.slice(2)}`] = figure.p50Ms / base.p50Ms;
        if (figure.p99Ms !== undefined && base?.p99Ms) figure[`p99${key.slice(2)}`] = figure.p99Ms / base.p99Ms;
      }
    }
    out.workloads.push(entry);
  }
  if (statementFsync !== undefined) {
    out.statementFsync = {};
    const simple = out.workloads.find((workload) => workload.id === "select-simple");
    for (const [target, result] of Object.entries(statementFsync)) {
      const figure = summarise({ kind: "pgbench" }, [result]);
      if (figure.throughput !== undefined) {
        if (simple?.targets.direct?.throughput) figure.vsDirect = figure.throughput / simple.targets.direct.throughput;
        if (simple?.targets.pgbouncer?.throughput) figure.vsPgbouncer = figure.throughput / simple.targets.pgbouncer.throughput;
        if (simple?.targets.pgpool?.throughput) figure.vsPgpool = figure.throughput / simple.targets.pgpool.throughput;
        if (simple?.targets[target]?.throughput) figure.vsInterval = figure.throughput / simple.targets[target].throughput;
      }
      out.statementFsync[target] = figure;
    }
  }
  out.targets = checkTargets(out);
  return out;
}

function summarise(workload, results) {
  const ok = results.filter((result) => result.ok);
  const figure = { ok: ok.length > 0, rounds: results.length, okRounds: ok.length, errors: results.filter((result) => !result.ok).map((result) => `round ${result.round}: ${result.error}`) };
  const warnings = results.filter((result) => result.warning).map((result) => result.warning);
  if (warnings.length > 0) figure.warnings = warnings;
  if (workload.kind === "bulk") {
    figure.throughput = median(ok.map((result) => result.rowsPerSecond));
    figure.mbPerSecond = median(ok.map((result) => result.mbPerSecond));
    figure.rows = ok[0]?.rows;
    figure.bytes = ok[0]?.bytes;
    figure.firstRowMs = median(ok.map((result) => result.firstRowMs));
    // The MySQL client decodes the first row: it shows whether the masked columns came masked.
    if (ok[0]?.firstRow !== undefined) figure.firstRow = ok[0].firstRow;
  } else {
    figure.throughput = median(ok.map((result) => result.tps));
    figure.transactions = ok.reduce((sum, result) => sum + (result.transactions ?? 0), 0);
    figure.failed = results.reduce((sum, result) => sum + (result.failed ?? 0), 0);
    const pooled = pool(ok.map((result) => result.latenciesUs).filter(Boolean));
    if (pooled.length > 0) {
      figure.p50Ms = percentile(pooled, 50) / 1000;
      figure.p99Ms = percentile(pooled, 99) / 1000;
    } else {
      // The sessions client reports its own percentiles per round: their medians.
      figure.p50Ms = median(ok.map((result) => result.p50Ms));
      figure.p99Ms = median(ok.map((result) => result.p99Ms));
    }
    if (workload.kind === "sessions") figure.openSeconds = median(ok.map((result) => result.openSeconds));
    figure.averageConnectionMs = median(ok.map((result) => result.averageConnectionMs));
    figure.initialConnectionMs = median(ok.map((result) => result.initialConnectionMs));
  }
  const processes = new Set(ok.flatMap((result) => Object.keys(result.cpuPer ?? {})));
  if (processes.size > 0) {
    figure.cpuPer = {};
    figure.cpuPerUnit = workload.kind === "bulk" ? "CPU s per 1,000,000 rows" : workload.id === "connect-rate" ? "CPU s per 1,000 sessions" : "CPU s per 1,000 statements";
    figure.peakRssBytes = {};
    for (const name of processes) {
      figure.cpuPer[name] = median(ok.map((result) => result.cpuPer?.[name]));
      figure.peakRssBytes[name] = Math.max(...results.map((result) => result.peakRssBytes?.[name] ?? 0));
    }
  }
  // The MySQL load client's own CPU, in the same unit (it runs on the same cores).
  const clientCpu = median(ok.map((result) => result.clientCpuPer));
  if (clientCpu !== undefined) figure.clientCpuPer = clientCpu;
  figure.perRound = results.map((result) => ({
    round: result.round,
    ok: result.ok,
    ...(workload.kind === "bulk" ? { rowsPerSecond: result.rowsPerSecond, mbPerSecond: result.mbPerSecond } : { tps: result.tps, p50Ms: result.p50Ms, p99Ms: result.p99Ms, transactions: result.transactions, failed: result.failed }),
    ...(result.cpuSeconds && Object.keys(result.cpuSeconds).length > 0 ? { cpuSeconds: result.cpuSeconds } : {}),
    ...(result.error ? { error: result.error } : {}),
  }));
  return figure;
}

function pool(arrays) {
  const length = arrays.reduce((sum, array) => sum + array.length, 0);
  const all = new Float64Array(length);
  let offset = 0;
  for (const array of arrays) {
    all.set(array, offset);
    offset += array.length;
  }
  return all.sort();
}

/** The targets of the benchmark issue, each MET, MISSED or NOT MEASURABLE with the figures. */
function checkTargets(report) {
  const find = (id) => report.workloads.find((workload) => workload.id === id);
  const simple = find("select-simple");
  const checks = [];
  const fmt = (value) => (value === undefined ? "n/a" : value.toFixed(2));
  if (simple) {
    const native = simple.targets["airlock-native"];
    const pgpool = simple.targets.pgpool;
    const pgbouncer = simple.targets.pgbouncer;
    if (native && pgpool && pgbouncer) {
      const vsPgpool = native.throughput / pgpool.throughput;
      const vsPgbouncer = native.throughput / pgbouncer.throughput;
      checks.push({
        target: "pgbench -S, 8 clients, simple protocol, native listener: at least pgpool-II's throughput and at least 0.6 of pgbouncer's",
        measured: `${fmtTps(native.throughput)} tps = ${fmt(vsPgpool)} of pgpool-II (${fmtTps(pgpool.throughput)}), ${fmt(vsPgbouncer)} of pgbouncer (${fmtTps(pgbouncer.throughput)})`,
        verdict: vsPgpool >= 1 && vsPgbouncer >= 0.6 ? "MET" : "MISSED",
        ratios: { vsPgpool, vsPgbouncer },
      });
    }
    const tunnel = simple.targets["airlock-connect"];
    if (tunnel && pgbouncer) {
      const vsPgbouncer = tunnel.throughput / pgbouncer.throughput;
      checks.push({
        target: "the same through `airlock connect`: at least 0.45 of pgbouncer's",
        measured: `${fmtTps(tunnel.throughput)} tps = ${fmt(vsPgbouncer)} of pgbouncer`,
        verdict: vsPgbouncer >= 0.45 ? "MET" : "MISSED",
        ratios: { vsPgbouncer },
      });
    }
  }
  const bulk = find("bulk-select");
  if (bulk) {
    const native = bulk.targets["airlock-native"];
    const tunnel = bulk.targets["airlock-connect"];
    const unmasked = [native && `native ${fmt(native.vsDirect)}`, tunnel && `connect ${fmt(tunnel.vsDirect)}`].filter(Boolean).join(", ");
    if (report.masking?.available) {
      const worst = Math.min(...[native?.vsDirect, tunnel?.vsDirect].filter((value) => value !== undefined));
      const plain = bulk.targets["airlock-native-unmasked"];
      checks.push({
        target: "masked bulk read: at least 0.7 of the direct rows/s",
        measured: `email and card_number masked (partial, keep 4): ${unmasked} of direct rows/s${plain?.vsDirect === undefined ? "" : `; the same read by an unmasked identity: native ${fmt(plain.vsDirect)}`}`,
        verdict: worst >= 0.7 ? "MET" : "MISSED",
        ratios: { worst },
      });
    } else {
      checks.push({
        target: "masked bulk read: at least 0.7 of the direct rows/s",
        measured: `masking is not built (a gateway configured to mask refuses to start); the same read unmasked: ${unmasked} of direct rows/s`,
        verdict: "NOT MEASURABLE",
        ratios: { unmaskedNative: native?.vsDirect, unmaskedConnect: tunnel?.vsDirect },
      });
    }
  }
  const many = find("sessions-200");
  if (many) {
    const peaks = {};
    for (const target of ["airlock-native", "airlock-connect"]) {
      for (const [name, bytes] of Object.entries(many.targets[target]?.peakRssBytes ?? {})) {
        if (name === "connect") continue;
        peaks[name] = Math.max(peaks[name] ?? 0, bytes);
      }
    }
    if (Object.keys(peaks).length > 0) {
      const worst = Math.max(...Object.values(peaks));
      checks.push({
        target: `gateway and agent RSS under ${RSS_LIMIT_MIB} MB with 200 sessions`,
        measured: `peak gateway ${(peaks.gateway / MiB).toFixed(0)} MiB, agent ${(peaks.agent / MiB).toFixed(0)} MiB (200 sessions, native and connect)`,
        verdict: worst < RSS_LIMIT_MIB * MiB ? "MET" : "MISSED",
      });
    }
  }
  if (report.stream?.ok) {
    const growth = {
      gateway: (report.stream.peakRssBytes.gateway - report.stream.baselineRssBytes.gateway) / MiB,
      agent: (report.stream.peakRssBytes.agent - report.stream.baselineRssBytes.agent) / MiB,
    };
    checks.push({
      target: `gateway and agent RSS flat while streaming a 1 GB result (growth under ${STREAM_GROWTH_LIMIT_MIB} MiB, as packages/cli/test/e2e/memory.test.ts)`,
      measured: `${(report.stream.bytes / 1e9).toFixed(2)} GB at ${report.stream.mbPerSecond.toFixed(0)} MB/s: gateway +${growth.gateway.toFixed(0)} MiB (peak ${(report.stream.peakRssBytes.gateway / MiB).toFixed(0)}), agent +${growth.agent.toFixed(0)} MiB (peak ${(report.stream.peakRssBytes.agent / MiB).toFixed(0)})`,
      verdict: growth.gateway < STREAM_GROWTH_LIMIT_MIB && growth.agent < STREAM_GROWTH_LIMIT_MIB ? "MET" : "MISSED",
    });
  } else if (report.stream) {
    checks.push({ target: "gateway and agent RSS flat while streaming a 1 GB result", measured: `the read failed: ${report.stream.error}`, verdict: "MISSED" });
  }
  return checks;
}

// ---- Markdown --------------------------------------------------------------------------------

function fmtTps(value) {
  if (value === undefined) return "n/a";
  return value >= 100 ? Math.round(value).toLocaleString("en-US") : value.toFixed(1);
}
const fmtMs = (value) => (value === undefined ? "n/a" : value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2));
const fmtRatio = (value) => (value === undefined ? "" : value.toFixed(2));
const fmtCpu = (value) => (value === undefined ? "" : value >= 1 ? value.toFixed(2) : value.toFixed(3));
const fmtMiB = (bytes) => (bytes === undefined || bytes === 0 ? "" : `${(bytes / MiB).toFixed(0)}`);

/** The tables of a report. */
export function renderMarkdown(report) {
  const lines = [];
  const postgresWorkloads = report.workloads.filter((workload) => (workload.protocol ?? "postgres") === "postgres");
  const mysqlWorkloads = report.workloads.filter((workload) => workload.protocol === "mysql");
  if (postgresWorkloads.length > 0 || report.statementFsync || report.stream) renderPostgres(lines, { ...report, workloads: postgresWorkloads });
  if (mysqlWorkloads.length > 0) {
    if (lines.length > 0) lines.push("");
    renderMysql(lines, { ...report, workloads: mysqlWorkloads });
  }
  const mongoWorkloads = report.workloads.filter((workload) => workload.protocol === "mongodb");
  if (mongoWorkloads.length > 0) {
    if (lines.length > 0) lines.push("");
    renderMongo(lines, { ...report, workloads: mongoWorkloads });
  }
  lines.push("", "### Targets of the benchmark issue", "");
  if (report.targets.length === 0) lines.push("None of the workloads the targets name ran in this run (they are PostgreSQL's: pgbench -S simple, bulk-select, sessions-200, the 1 GB stream).");
  else {
    lines.push("| Target | Measured | Verdict |", "|---|---|---|");
    for (const check of report.targets) lines.push(`| ${check.target} | ${escape(check.measured)} | **${check.verdict}** |`);
  }
  return lines.join("\n");
}

/** "MariaDB 10.11" (or "MySQL 8.0") from the server's version string. */
function mysqlServerName(version) {
  if (version === undefined) return "MariaDB";
  const [major, minor] = String(version).split(/[.-]/);
  return `${/mariadb/i.test(version) ? "MariaDB" : "MySQL"} ${major}.${minor}`;
}

/** The MySQL section: the MySQL workloads on direct MariaDB and on Airlock, ratios to direct. */
function renderMysql(lines, report) {
  const server = mysqlServerName(report.meta?.machine?.mariadb);
  lines.push(`### MySQL (${server})`, "");
  lines.push(
    `The same gateway and agent processes also carry a MySQL connection (\`protocol: mysql\`) to the machine's ${server} (${report.meta?.machine?.mariadb ?? "version unknown"}), with the same identity, policy and recording${report.masking?.available ? ", and masking (email and card_number of bench_people, partial, keep 4: the Airlock targets read as a masked identity; the unmasked identity is the same read by a policy with `unmasked: true`)" : " (masking is off: a gateway configured to mask does not start with this build)"}. Load: bench/lib/mysql-client.mjs (COM_QUERY, text protocol; 8 connections each running one point SELECT after another, and one streamed read of 1,000,000 rows whose rows are counted, not decoded). Medians over the rounds; p50/p99 of every statement's own timing, pooled over the rounds. Ratios: the target's figure over direct MariaDB's in the same run (throughput; and latency for the p50/p99 ratios, where higher is slower).`,
    "",
  );
  lines.push("| Workload | Target | Throughput | MB/s | p50 ms | p99 ms | vs direct | p50 vs direct | p99 vs direct |");
  lines.push("|---|---|---:|---:|---:|---:|---:|---:|---:|");
  const direct = PROTOCOLS.mysql.direct;
  for (const workload of report.workloads) {
    for (const [target, figure] of Object.entries(workload.targets)) {
      const name = AIRLOCK_TARGETS.has(target) ? `**${TARGET_LABELS[target]}**` : TARGET_LABELS[target];
      if (!figure.ok) {
        lines.push(`| ${workload.id} | ${name} | failed: ${escape(figure.errors[0] ?? "no result")} | | | | | | |`);
        continue;
      }
      const bulk = workload.kind === "bulk";
      const partial = figure.okRounds < figure.rounds ? ` (${figure.okRounds}/${figure.rounds} rounds)` : "";
      lines.push(
        `| ${workload.id} | ${name} | ${fmtTps(figure.throughput)} ${workload.unit}${partial} | ${figure.mbPerSecond === undefined ? "" : figure.mbPerSecond.toFixed(1)} | ${bulk ? "" : fmtMs(figure.p50Ms)} | ${bulk ? "" : fmtMs(figure.p99Ms)} | ${target === direct ? "1" : fmtRatio(figure.vsDirect)} | ${bulk ? "" : target === direct ? "1" : fmtRatio(figure.p50Direct)} | ${bulk ? "" : target === direct ? "1" : fmtRatio(figure.p99Direct)} |`,
      );
    }
  }
  lines.push("", `#### CPU and memory (MySQL)`, "");
  lines.push(
    "CPU: utime+stime of each process over the run divided by the statements run (millions of rows for the bulk read), median over the rounds; \"load client\" is bench/lib/mysql-client.mjs itself (it shares the 2 cores with the server and the proxy). Peak RSS: VmRSS sampled every 100 ms, highest over the rounds, in MiB.",
    "",
  );
  lines.push("| Workload | Target | CPU unit | gateway CPU | agent CPU | connect CPU | load client CPU | gateway peak RSS | agent peak RSS | connect peak RSS |");
  lines.push("|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const workload of report.workloads) {
    for (const [target, figure] of Object.entries(workload.targets)) {
      if (!figure.ok) continue;
      const unit = workload.kind === "bulk" ? "s / 1,000,000 rows" : "s / 1,000 statements";
      lines.push(
        `| ${workload.id} | ${TARGET_LABELS[target]} | ${unit} | ${fmtCpu(figure.cpuPer?.gateway)} | ${fmtCpu(figure.cpuPer?.agent)} | ${fmtCpu(figure.cpuPer?.connect)} | ${fmtCpu(figure.clientCpuPer)} | ${fmtMiB(figure.peakRssBytes?.gateway)} | ${fmtMiB(figure.peakRssBytes?.agent)} | ${fmtMiB(figure.peakRssBytes?.connect)} |`,
      );
    }
  }
  const bulk = report.workloads.find((workload) => workload.kind === "bulk");
  const rows = bulk ? Object.entries(bulk.targets).filter(([, figure]) => figure.firstRow) : [];
  if (rows.length > 0) {
    lines.push("", `The first row of ${bulk.id} as each target returned it (masking at work: email and card_number):`, "");
    lines.push("| Target | id | name | email | card_number | created_at |", "|---|---|---|---|---|---|");
    for (const [target, figure] of rows) lines.push(`| ${TARGET_LABELS[target]} | ${figure.firstRow.map((value) => `\`${escape(value ?? "NULL")}\``).join(" | ")} |`);
  }
}

/** The MongoDB section: the MongoDB workloads on the stand-in directly and through Airlock, ratios to direct. */
function renderMongo(lines, report) {
  lines.push("### MongoDB (the project's stand-in server)", "");
  lines.push(
    `**The direct figures are the stand-in's, not a real mongod's.** There is no MongoDB server on this machine (none in Debian, and nothing here may download one), so mongo-direct is packages/mongo-test-server, the project's test fixture: an in-process JavaScript server (Node.js, one thread) that keeps the data in memory and takes its query semantics from mingo, with no indexes but the _id one (a find by _id looks the document up; anything else tests every document). It is far slower than mongod, above all for the point finds, so a large part of each operation's time is the server's, the same on every target: the ratios below show Airlock's overhead against a slow server, and would be lower against a real mongod (Airlock's own cost per operation would be a larger share of a much shorter operation). On 2 cores the gateway's, the agent's and the load client's CPU is also taken from the stand-in's, which lowers the Airlock targets' throughput further. What does not depend on the server's speed is the gateway's and agent's CPU per operation (the next table).`,
    "",
    `The same gateway and agent processes also carry a MongoDB connection (\`protocol: mongodb\`) to the stand-in, with the same identity, policy and recording${report.masking?.available ? ", and masking (email and card_number of airlock_bench.bench_people, partial, keep 4: the Airlock targets read as a masked identity; the unmasked identity is the same read by a policy with `unmasked: true`)" : " (masking is off: a gateway configured to mask does not start with this build)"}. The agent logs in to the stand-in by SCRAM-SHA-256 (authSource admin), and mongo-direct as the same account; the native listener takes the token by MONGODB-OIDC, \`airlock connect\` no credentials. Load: bench/lib/mongo-client.mjs, the official driver: 8 concurrent loops of findOne({ _id: <random> }) on one client with maxPoolSize 8 (the 8 connections opened and logged in before the clock starts), and one find({}) of 200,000 documents with batchSize 1000 whose documents are taken as raw BSON (raw: true) and counted, not deserialized (MB/s: the documents' BSON bytes). Medians over the rounds; p50/p99 of every operation's own timing, pooled over the rounds. Ratios: the target's figure over the stand-in's directly in the same run (throughput; and latency for the p50/p99 ratios, where higher is slower).`,
    "",
  );
  lines.push("| Workload | Target | Throughput | MB/s | p50 ms | p99 ms | vs direct | p50 vs direct | p99 vs direct |");
  lines.push("|---|---|---:|---:|---:|---:|---:|---:|---:|");
  const direct = PROTOCOLS.mongodb.direct;
  for (const workload of report.workloads) {
    for (const [target, figure] of Object.entries(workload.targets)) {
      const name = AIRLOCK_TARGETS.has(target) ? `**${TARGET_LABELS[target]}**` : TARGET_LABELS[target];
      if (!figure.ok) {
        lines.push(`| ${workload.id} | ${name} | failed: ${escape(figure.errors[0] ?? "no result")} | | | | | | |`);
        continue;
      }
      const bulk = workload.kind === "bulk";
      const partial = figure.okRounds < figure.rounds ? ` (${figure.okRounds}/${figure.rounds} rounds)` : "";
      const count = bulk ? "" : ` (${figure.transactions.toLocaleString("en-US")} finds)`;
      lines.push(
        `| ${workload.id} | ${name} | ${fmtTps(figure.throughput)} ${workload.unit}${count}${partial} | ${figure.mbPerSecond === undefined ? "" : figure.mbPerSecond.toFixed(1)} | ${bulk ? "" : fmtMs(figure.p50Ms)} | ${bulk ? "" : fmtMs(figure.p99Ms)} | ${target === direct ? "1" : fmtRatio(figure.vsDirect)} | ${bulk ? "" : target === direct ? "1" : fmtRatio(figure.p50Direct)} | ${bulk ? "" : target === direct ? "1" : fmtRatio(figure.p99Direct)} |`,
      );
    }
  }
  lines.push("", "#### CPU and memory (MongoDB)", "");
  lines.push(
    'CPU: utime+stime of each process over the run divided by the operations run (finds; millions of documents for the bulk find), median over the rounds; "stand-in" is the MongoDB stand-in\'s process (the server, on every target), "load client" is bench/lib/mongo-client.mjs with the driver (they share the 2 cores with the gateway and the agent). Peak RSS: VmRSS sampled every 100 ms, highest over the rounds, in MiB (the stand-in holds the 300,000 documents in memory).',
    "",
  );
  lines.push("| Workload | Target | CPU unit | gateway CPU | agent CPU | connect CPU | stand-in CPU | load client CPU | gateway peak RSS | agent peak RSS | connect peak RSS | stand-in peak RSS |");
  lines.push("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const workload of report.workloads) {
    for (const [target, figure] of Object.entries(workload.targets)) {
      if (!figure.ok) continue;
      const unit = workload.kind === "bulk" ? "s / 1,000,000 documents" : "s / 1,000 finds";
      lines.push(
        `| ${workload.id} | ${TARGET_LABELS[target]} | ${unit} | ${fmtCpu(figure.cpuPer?.gateway)} | ${fmtCpu(figure.cpuPer?.agent)} | ${fmtCpu(figure.cpuPer?.connect)} | ${fmtCpu(figure.cpuPer?.server)} | ${fmtCpu(figure.clientCpuPer)} | ${fmtMiB(figure.peakRssBytes?.gateway)} | ${fmtMiB(figure.peakRssBytes?.agent)} | ${fmtMiB(figure.peakRssBytes?.connect)} | ${fmtMiB(figure.peakRssBytes?.server)} |`,
      );
    }
  }
  const bulk = report.workloads.find((workload) => workload.kind === "bulk");
  const documents = bulk ? Object.entries(bulk.targets).filter(([, figure]) => figure.firstRow) : [];
  if (documents.length > 0) {
    const fields = ["_id", "name", "email", "card_number", "created_at"];
    lines.push("", `The first document of ${bulk.id} as each target returned it (masking at work: email and card_number):`, "");
    lines.push(`| Target | ${fields.join(" | ")} |`, `|---|${fields.map(() => "---").join("|")}|`);
    for (const [target, figure] of documents) lines.push(`| ${TARGET_LABELS[target]} | ${fields.map((field) => `\`${escape(figure.firstRow[field] ?? "(absent)")}\``).join(" | ")} |`);
  }
}

/** The PostgreSQL sections. */
function renderPostgres(lines, report) {
  lines.push("### Throughput and latency", "");
  lines.push("Medians over the rounds; p50/p99 from pgbench's own latency log (-l), pooled over the rounds (sessions-200: the sessions client's own per-statement timings, median over the rounds). Ratios: the target's throughput over direct PostgreSQL's and over pgbouncer's in the same run.", "");
  lines.push("| Workload | Target | Throughput | MB/s | p50 ms | p99 ms | vs direct | vs pgbouncer |");
  lines.push("|---|---|---:|---:|---:|---:|---:|---:|");
  for (const workload of report.workloads) {
    for (const [target, figure] of Object.entries(workload.targets)) {
      const name = AIRLOCK_TARGETS.has(target) ? `**${TARGET_LABELS[target]}**` : TARGET_LABELS[target];
      if (!figure.ok) {
        lines.push(`| ${workload.id} | ${name} | failed: ${escape(figure.errors[0] ?? "no result")} | | | | | |`);
        continue;
      }
      const throughput = `${fmtTps(figure.throughput)} ${workload.unit}`;
      const failed = figure.failed ? ` (${figure.failed} failed)` : "";
      const partial = `${figure.okRounds < figure.rounds ? ` (${figure.okRounds}/${figure.rounds} rounds)` : ""}${figure.openSeconds === undefined ? "" : ` (all 200 open in ${figure.openSeconds.toFixed(1)} s)`}`;
      lines.push(
        `| ${workload.id} | ${name} | ${throughput}${failed}${partial} | ${figure.mbPerSecond === undefined ? "" : figure.mbPerSecond.toFixed(0)} | ${workload.kind === "bulk" ? "" : fmtMs(figure.p50Ms)} | ${workload.kind === "bulk" ? "" : fmtMs(figure.p99Ms)} | ${target === "direct" ? "1" : fmtRatio(figure.vsDirect)} | ${target === "pgbouncer" ? "1" : fmtRatio(figure.vsPgbouncer)} |`,
      );
    }
  }
  lines.push("");
  lines.push("### Airlock processes: CPU and memory", "");
  lines.push("CPU: utime+stime deltas of each process over the run (from /proc/<pid>/stat) divided by the statements run (sessions for connect-rate, millions of rows for the bulk reads); median over the rounds. Peak RSS: VmRSS sampled every 100 ms, highest over the rounds, in MiB.", "");
  lines.push("| Workload | Target | CPU unit | gateway CPU | agent CPU | connect CPU | gateway peak RSS | agent peak RSS | connect peak RSS |");
  lines.push("|---|---|---|---:|---:|---:|---:|---:|---:|");
  for (const workload of report.workloads) {
    for (const [target, figure] of Object.entries(workload.targets)) {
      if (!AIRLOCK_TARGETS.has(target) || !figure.cpuPer) continue;
      const unit = figure.cpuPerUnit.replace("CPU s per ", "s / ");
      lines.push(
        `| ${workload.id} | ${TARGET_LABELS[target]} | ${unit} | ${fmtCpu(figure.cpuPer.gateway)} | ${fmtCpu(figure.cpuPer.agent)} | ${fmtCpu(figure.cpuPer.connect)} | ${fmtMiB(figure.peakRssBytes.gateway)} | ${fmtMiB(figure.peakRssBytes.agent)} | ${fmtMiB(figure.peakRssBytes.connect)} |`,
      );
    }
  }
  if (report.statementFsync) {
    lines.push("", "### Recording with `fsync: statement`", "");
    lines.push("The main figures run with `recording.fsync: interval` (10 ms bound). One more pgbench -S simple run per Airlock target with `fsync: statement` (every statement's record fdatasync'ed before it reaches the database):", "");
    lines.push("| Target | tps | p50 ms | p99 ms | vs direct | vs pgbouncer | vs pgpool-II | vs the same with fsync interval | gateway CPU s/1k | agent CPU s/1k |");
    lines.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (const [target, figure] of Object.entries(report.statementFsync)) {
      if (!figure.ok) {
        lines.push(`| ${TARGET_LABELS[target]} | failed: ${escape(figure.errors[0] ?? "")} | | | | | | | | |`);
        continue;
      }
      lines.push(
        `| ${TARGET_LABELS[target]} | ${fmtTps(figure.throughput)} | ${fmtMs(figure.p50Ms)} | ${fmtMs(figure.p99Ms)} | ${fmtRatio(figure.vsDirect)} | ${fmtRatio(figure.vsPgbouncer)} | ${fmtRatio(figure.vsPgpool)} | ${fmtRatio(figure.vsInterval)} | ${fmtCpu(figure.cpuPer?.gateway)} | ${fmtCpu(figure.cpuPer?.agent)} |`,
      );
    }
  }
}

function escape(text) {
  return String(text).replaceAll("|", "\\|").replaceAll("\n", " ");
}

// ---- docs/benchmarks.md ------------------------------------------------------------------------

const KEEP_START = "<!-- bench:profile:start -->";
const KEEP_END = "<!-- bench:profile:end -->";

/** Rewrites docs/benchmarks.md; the "Where the time goes" section (between markers) is kept. */
export function writeDocs(file, report, markdown) {
  let kept = `${KEEP_START}\n## Where the time goes\n\nNot profiled yet: run \`node bench/run.mjs --profile\`.\n${KEEP_END}`;
  if (existsSync(file)) {
    const text = readFileSync(file, "utf8");
    const start = text.indexOf(KEEP_START);
    const end = text.indexOf(KEEP_END);
    if (start !== -1 && end > start) kept = text.slice(start, end + KEEP_END.length);
  }
  const { meta } = report;
  const machine = meta.machine;
  const settings = meta.settings;
  const date = meta.startedAt.slice(0, 10);
  const text = `# Benchmarks

The cost of the gateway against a direct connection and other proxies, measured side by side on
one machine in one run, the targets alternating round by round. Generated by
\`node bench/run.mjs --write-docs\` (the tables and the sections above "Where the time goes";
that section is written by hand from \`node bench/run.mjs --profile\`). See also
[bench/README.md](../bench/README.md).

## How to reproduce

\`\`\`sh
./scripts/bootstrap.sh          # or: pnpm install && pnpm build
${meta.command.replace("pnpm bench --", "pnpm bench --")}${meta.command.includes("--write-docs") ? "" : "   # add -- --write-docs to rewrite this file"}
\`\`\`

Needs PostgreSQL on 127.0.0.1:5432 (user \`postgres\`, trust on loopback), \`psql\` and \`pgbench\`,
and for the MySQL rows MariaDB (or MySQL) on 127.0.0.1:3306 (user \`root\`, no password) with the
\`mariadb\` client (the MongoDB rows need nothing more: the harness runs the project's stand-in,
packages/mongo-test-server, itself); the harness installs pgbouncer and pgpool2 from Debian's packages when they are
missing (as root), creates the \`airlock_bench\` databases (and the MariaDB user the agent logs in
as), and starts and stops everything else itself.
\`pnpm bench -- --quick\` is a 3-second, one-round run; \`--help\` lists the options.

## This run

- Date: ${meta.startedAt} to ${meta.finishedAt} (${date}); code: commit ${meta.gitCommit}${meta.distRebuiltDuringRun ? `. Note: ${meta.distRebuiltDuringRun}` : ""}
- Command: \`${meta.command}\` (${meta.rounds} round${meta.rounds === 1 ? "" : "s"}, pgbench -S runs of ${meta.duration} s, the 200-session and connection-rate runs of ${Math.max(3, Math.round(meta.duration * 0.4))} s)
- Machine: ${machine.nproc} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB memory, ${machine.os}, ${machine.kernel}
- Versions: PostgreSQL ${machine.postgres}; ${machine.pgbouncer}; ${machine.pgpool}; ${machine.pgbench};${machine.mariadb ? ` MariaDB ${machine.mariadb};` : ""}${machine.mongoStandIn ? ` MongoDB: no mongod, the stand-in ${machine.mongoStandIn};` : ""} Node.js ${machine.node}
- Load average at start ${machine.loadAverageAtStart}, at end ${machine.loadAverageAtEnd} (the machine is shared: other work on it moves the figures; the alternation spreads it over the targets)

### Setup

${[
  settings.postgres === undefined
    ? undefined
    : `- Direct: \`${settings.postgres}\`.
- pgbouncer: pool_mode ${settings.pgbouncer.pool_mode}, max_client_conn ${settings.pgbouncer.max_client_conn}, default_pool_size ${settings.pgbouncer.default_pool_size}, auth trust.
- pgpool-II: ${settings.pgpool.mode} mode, one backend, num_init_children ${settings.pgpool.num_init_children}${settings.pgpoolMany ? ` (${settings.pgpoolMany.num_init_children} for the 200-session workload: every client needs a pgpool child)` : ""}, max_pool ${settings.pgpool.max_pool}, connection_cache ${settings.pgpool.connection_cache}, no load balancing, no health or replication checks.`,
  settings.mysql === undefined ? undefined : `- MySQL direct: ${settings.mysql}.`,
  settings.mongodb === undefined ? undefined : `- MongoDB direct: ${settings.mongodb}.`,
  `- Airlock: ${settings.airlock}. The native listener gets the token as the password (PGPASSWORD; for MySQL by mysql_clear_password, from loopback; for MongoDB by MONGODB-OIDC); \`airlock connect\` runs as its own process per connection with \`--token-file\`. Masking: ${report.masking?.available ? `on for every connection: email and card_number of bench_people declared sensitive (style partial, keep 4; no content detectors)${settings.mysql === undefined ? "" : " (for MySQL as airlock_bench.bench_people.<column>)"}${settings.mongodb === undefined ? "" : " (for MongoDB the fields airlock_bench.bench_people.email and .card_number of the 200,000-document collection)"}. The Airlock targets read as an identity that is masked; "Airlock native, unmasked identity" is the same read by an identity whose policy says \`unmasked: true\`, to show what masking itself costs` : `not built yet (${report.masking?.message ?? "unknown"}), so it is off`}.`,
  settings.manyServer === undefined ? undefined : `- 200 concurrent sessions: run on ${settings.manyServer}.`,
  `- Clients: ${settings.client}.${settings.postgres === undefined ? "" : " Every PostgreSQL client uses sslmode=disable."}`,
]
  .filter(Boolean)
  .join("\n")}

## Results

${markdown}

${kept}
`;
  writeFileSync(file, text);
}
