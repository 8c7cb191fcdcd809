// pgbench runs and their figures: tps from pgbench's summary, p50/p99 from its own latency log (-l).
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { percentile, runAsync } from "./util.mjs";

/**
 * Runs `pgbench -n -S` against 127.0.0.1:port. Options: mode (simple|extended|prepared), clients,
 * threads, duration (s), connect (-C: a new connection per transaction), user, password, database,
 * logDir (where -l writes, --log-prefix).
 */
export async function runPgbench(options) {
  const { port, mode = "simple", clients = 8, threads = 2, duration, connect = false, user = "postgres", password, database, logDir } = options;
  rmSync(logDir, { recursive: true, force: true });
  mkdirSync(logDir, { recursive: true });
  const args = ["-n", "-S", "-M", mode, "-c", String(clients), "-j", String(threads), "-T", String(duration), "-l", "--log-prefix", join(logDir, "pgbench_log"), "-h", "127.0.0.1", "-p", String(port), "-U", user];
  if (connect) args.push("-C");
  args.push(database);
  const env = { ...process.env, PGSSLMODE: "disable", PGCONNECT_TIMEOUT: "30" };
  if (password !== undefined) env.PGPASSWORD = password;
  else delete env.PGPASSWORD;
  const started = performance.now();
  const result = await runAsync("pgbench", args, { env, cwd: logDir });
  const wallSeconds = (performance.now() - started) / 1000;
  const out = result.stdout;
  const number = (pattern) => {
    const found = pattern.exec(out)?.[1];
    return found === undefined ? undefined : Number(found);
  };
  const transactions = number(/number of transactions actually processed: (\d+)/);
  const failed = number(/number of failed transactions: (\d+)/) ?? 0;
  const tps = number(/tps = ([\d.]+)/);
  const latencies = readLatencies(logDir);
  const aborted = /aborted|error|fatal/i.test(result.stderr) ? result.stderr.trim().split("\n").filter((line) => /aborted|error|fatal/i.test(line)).slice(0, 3).join(" | ") : undefined;
  const ok = result.code === 0 && tps !== undefined && transactions !== undefined && transactions > 0;
  const figures = {
    ok,
    command: `pgbench ${args.join(" ")}`,
    exitCode: result.code,
    tps,
    transactions,
    failed,
    latencyAvgMs: number(/latency average = ([\d.]+) ms/),
    initialConnectionMs: number(/initial connection time = ([\d.]+) ms/),
    averageConnectionMs: number(/average connection time = ([\d.]+) ms/),
    p50Ms: latencies.length > 0 ? percentile(latencies, 50) / 1000 : undefined,
    p99Ms: latencies.length > 0 ? percentile(latencies, 99) / 1000 : undefined,
    loggedTransactions: latencies.length,
    wallSeconds,
    ...(ok ? {} : { error: (aborted ?? result.stderr.trim().split("\n").slice(-3).join(" | ")) || `exit ${result.code}` }),
    ...(ok && aborted ? { warning: aborted } : {}),
  };
  // Keep the raw latencies for pooled percentiles across rounds, in microseconds.
  Object.defineProperty(figures, "latenciesUs", { value: latencies, enumerable: false });
  rmSync(logDir, { recursive: true, force: true });
  return figures;
}

/** Every logged transaction's latency in microseconds, sorted (pgbench -l: client, txn, time_us, ...). */
function readLatencies(dir) {
  const values = [];
  for (const name of readdirSync(dir)) {
    if (!name.startsWith("pgbench_log")) continue;
    const text = readFileSync(join(dir, name), "latin1");
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf("\n", start);
      if (end === -1) end = text.length;
      // Third field: the transaction's elapsed time in microseconds ("failed"/"skipped" otherwise).
      const a = text.indexOf(" ", start);
      const b = a === -1 ? -1 : text.indexOf(" ", a + 1);
      const c = b === -1 ? -1 : text.indexOf(" ", b + 1);
      if (c !== -1 && c < end) {
        const value = Number(text.slice(b + 1, c));
        if (Number.isFinite(value)) values.push(value);
      }
      start = end + 1;
    }
  }
  return Float64Array.from(values).sort();
}
