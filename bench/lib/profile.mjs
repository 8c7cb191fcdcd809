// `node bench/run.mjs --profile`: pgbench -S simple through the native listener, then through
// `airlock connect`, then the 1,000,000-row read through the native listener, each with fresh
// processes under node --cpu-prof (gateway, agent, airlock connect); then the summaries of the
// profiles (bench/profile-summary.mjs).
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderSummary, summarizeProfile } from "../profile-summary.mjs";
import { runPgbench } from "./pgbench.mjs";
import { BENCH_DB, BULK_TABLE } from "./postgres.mjs";
import { bulkRead } from "./workloads.mjs";
import { progress, waitFor } from "./util.mjs";
import { ROOT } from "./airlock.mjs";

export async function runProfile({ tmp, token, tokenFile, backends, fsync, duration, masking, startAirlock, startConnect }) {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const outDir = join(ROOT, "bench", "results", `profile-${stamp}`);
  mkdirSync(outDir, { recursive: true });
  const sections = [];
  const summaries = {};
  for (const via of ["native", "connect", "bulk", "sessions"]) {
    const profDir = join(tmp, `cpuprof-${via}`);
    mkdirSync(profDir, { recursive: true });
    const airlock = await startAirlock({ dir: join(tmp, `airlock-prof-${via}`), jwksFile: join(tmp, "jwks.json"), backends: { bench: backends.bench }, fsync, cpuProfDir: profDir, masking });
    let connect;
    let port = airlock.listeners.bench;
    if (via === "connect") {
      connect = await startConnect({ dir: tmp, grpc: airlock.grpc, connection: "bench", tokenFile, cpuProfDir: profDir });
      port = connect.port;
    }
    let result;
    let what;
    if (via === "bulk") {
      // Three reads of the 1,000,000-row table through the native listener.
      progress(`profile: 3 x select * from ${BULK_TABLE} through the native listener, node --cpu-prof on gateway and agent`);
      const reads = [];
      for (let index = 0; index < 3; index++) reads.push(await bulkRead({ port, user: "bench", database: BENCH_DB, password: token }, `select * from ${BULK_TABLE}`));
      const ok = reads.every((read) => read.ok);
      result = { ok, rowsPerSecond: ok ? reads.reduce((sum, read) => sum + read.rowsPerSecond, 0) / reads.length : undefined, error: reads.find((read) => !read.ok)?.error };
      what = `3 x select * from ${BULK_TABLE} (1,000,000 rows, ${masking ? "email and card_number masked" : "unmasked"}) through the native listener (${ok ? `${Math.round(result.rowsPerSecond).toLocaleString("en-US")} rows/s` : "failed"})`;
      progress(`profile: ${ok ? `${Math.round(result.rowsPerSecond)} rows/s` : `FAILED ${result.error}`}`);
    } else if (via === "sessions") {
      progress(`profile: pgbench -S -C -c 8 -j 2 -T ${duration} through the native listener (a new session per statement), node --cpu-prof on gateway and agent`);
      result = await runPgbench({ port, mode: "simple", clients: 8, threads: 2, duration, connect: true, user: "bench", database: BENCH_DB, password: token, logDir: join(tmp, "pgbench-prof-sessions") });
      progress(`profile: ${result.ok ? `${result.tps.toFixed(1)} sessions/s` : `FAILED ${result.error}`}`);
      what = `pgbench -S -C (a new session per statement) through the native listener (${result.ok ? `${result.tps.toFixed(1)} sessions/s` : "failed"}, fsync ${fsync})`;
    } else {
      progress(`profile: pgbench -S -M simple -c 8 -j 2 -T ${duration} through ${via === "native" ? "the native listener" : "airlock connect"} (fsync ${fsync}), node --cpu-prof on ${via === "native" ? "gateway and agent" : "gateway, agent and connect"}`);
      result = await runPgbench({ port, mode: "simple", clients: 8, threads: 2, duration, user: "bench", database: BENCH_DB, password: via === "native" ? token : undefined, logDir: join(tmp, `pgbench-prof-${via}`) });
      progress(`profile: ${result.ok ? `${result.tps.toFixed(0)} tps, p50 ${result.p50Ms.toFixed(2)} ms` : `FAILED ${result.error}`}`);
      what = `pgbench -S simple through ${via === "native" ? "the native listener" : "airlock connect"} (${result.ok ? `${result.tps.toFixed(0)} tps` : "failed"}, fsync ${fsync})`;
    }
    if (connect) await connect.handle.stop(30_000);
    await airlock.agent.stop(30_000);
    await airlock.gateway.stop(30_000);
    const names = via === "connect" ? ["gateway", "agent", "connect-bench"] : ["gateway", "agent"];
    await waitFor("the .cpuprofile files", () => names.every((name) => existsSync(join(profDir, `${name}.cpuprofile`))), 20_000).catch(() => undefined);
    for (const name of names) {
      const file = join(profDir, `${name}.cpuprofile`);
      if (!existsSync(file)) {
        sections.push(`#### ${name} (${via}): no profile was written (the process did not exit cleanly); files: ${readdirSync(profDir).join(", ")}`);
        continue;
      }
      const kept = join(outDir, `${name}-${via}.cpuprofile`);
      copyFileSync(file, kept);
      const summary = summarizeProfile(kept, { top: 30 });
      summaries[`${name}-${via}`] = { ...summary, tps: result.tps, rowsPerSecond: result.rowsPerSecond };
      sections.push(renderSummary(summary, `${name === "connect-bench" ? "airlock connect" : name}, ${what}`, 15));
    }
  }
  const markdown = sections.join("\n\n");
  writeFileSync(join(outDir, "summary.md"), `${markdown}\n`);
  writeFileSync(join(outDir, "summary.json"), `${JSON.stringify(summaries, null, 2)}\n`);
  process.stdout.write(`\n${markdown}\n`);
  progress(`profile: profiles and summaries in ${outDir}`);
}
