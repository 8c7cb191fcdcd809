// The machine: Debian packages the harness needs (installed by itself), versions, hardware.
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { progress, run } from "./util.mjs";

const PGBOUNCER = "/usr/sbin/pgbouncer";
const PGPOOL = "/usr/sbin/pgpool";

/** Binaries the harness needs that PostgreSQL's own packages provide. */
export function checkPostgresTools() {
  const missing = ["psql", "pgbench"].filter((tool) => run("sh", ["-c", `command -v ${tool}`], { allowFail: true }).status !== 0);
  if (missing.length > 0) throw new Error(`missing ${missing.join(", ")}: install postgresql-client (the harness needs psql and pgbench)`);
  const bin = postgresBinDir();
  if (bin === undefined) throw new Error("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (initdb, postgres)");
  return bin;
}

/** /usr/lib/postgresql/<major>/bin of the newest installed server. */
export function postgresBinDir() {
  const listed = run("sh", ["-c", "ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1"], { allowFail: true }).stdout.trim();
  return listed !== "" && existsSync(`${listed}/initdb`) ? listed : undefined;
}

/**
 * Installs pgbouncer and pgpool2 from Debian's packages if they are missing (idempotent). Their
 * system services are kept from starting during the install (policy-rc.d), since the harness runs
 * its own instances in a temp dir.
 */
export function ensurePoolers() {
  const missing = [];
  if (!existsSync(PGBOUNCER)) missing.push("pgbouncer");
  if (!existsSync(PGPOOL)) missing.push("pgpool2");
  if (missing.length === 0) {
    progress(`setup: pgbouncer and pgpool2 already installed`);
    return;
  }
  if (process.getuid?.() !== 0) throw new Error(`${missing.join(" and ")} missing and not root: run \`apt-get install -y ${missing.join(" ")}\` first`);
  const policy = "/usr/sbin/policy-rc.d";
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, "#!/bin/sh\n# written by airlock bench for the duration of an apt-get install\nexit 101\n", { mode: 0o755 });
  try {
    progress(`setup: apt-get install -y ${missing.join(" ")} (this takes a minute the first time)`);
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    const first = run("apt-get", ["install", "-y", "--no-install-recommends", ...missing], { env, allowFail: true });
    if (first.status !== 0) {
      progress("setup: apt-get install failed; running apt-get update and trying again");
      run("apt-get", ["update"], { env, stdio: ["ignore", "ignore", "inherit"] });
      run("apt-get", ["install", "-y", "--no-install-recommends", ...missing], { env });
    }
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
  for (const [binary, name] of [
    [PGBOUNCER, "pgbouncer"],
    [PGPOOL, "pgpool2"],
  ]) {
    if (!existsSync(binary)) throw new Error(`${name} is still missing after apt-get install (${binary})`);
  }
  progress("setup: pgbouncer and pgpool2 installed");
}

export const binaries = { pgbouncer: PGBOUNCER, pgpool: PGPOOL };

/** What the run happened on. */
export function machineInfo(serverVersion) {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? "unknown";
  const first = (command, args) => {
    const result = run(command, args, { allowFail: true });
    return `${result.stdout}${result.stderr}`.trim().split("\n")[0] ?? "";
  };
  return {
    nproc: Number(run("nproc", []).stdout.trim()),
    cpuModel: model,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: first("uname", ["-sr"]),
    os: /PRETTY_NAME="([^"]+)"/.exec(safeRead("/etc/os-release"))?.[1] ?? "unknown",
    postgres: serverVersion,
    pgbench: first("pgbench", ["--version"]),
    pgbouncer: first(PGBOUNCER, ["--version"]),
    pgpool: first(PGPOOL, ["--version"]),
    node: process.version,
    loadAverageAtStart: safeRead("/proc/loadavg").split(" ").slice(0, 3).join(" "),
  };
}

function safeRead(file) {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}
