// Small helpers shared by the benchmark harness: logging, child processes, free ports, /proc.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

export { sleep };

const started = Date.now();

/** A progress line on stderr, with the seconds since the harness started. */
export function progress(text) {
  const seconds = ((Date.now() - started) / 1000).toFixed(0).padStart(4);
  process.stderr.write(`[bench ${seconds}s] ${text}\n`);
}

/** Runs a command to completion; throws with its output when it fails (unless `allowFail`). */
export function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: "utf8", maxBuffer: 256 << 20, ...options });
  if (result.error) throw result.error;
  if (result.status !== 0 && !options.allowFail) {
    throw new Error(`${command} ${args.join(" ")} exited with ${result.status}: ${(result.stderr || result.stdout || "").trim().slice(-2000)}`);
  }
  return result;
}

/** Runs a command asynchronously; resolves with { code, stdout, stderr }. */
export function runAsync(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (text) => (stdout += text));
    child.stderr?.setEncoding("utf8").on("data", (text) => (stderr += text));
    child.once("error", reject);
    child.once("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
}

/** Every process the harness started, to stop them all (by pid) however the run ends. */
const children = new Set();

/**
 * Starts a long-running process whose stdout/stderr go to `logFile`; registered for cleanup.
 * Returns { child, pid, logFile, stop() }.
 */
export function startProcess(name, command, args, options = {}) {
  const fd = openSync(options.logFile, "a");
  const child = spawn(command, args, {
    env: options.env ?? process.env,
    cwd: options.cwd,
    uid: options.uid,
    gid: options.gid,
    stdio: ["ignore", options.pipeStdout ? "pipe" : fd, fd],
  });
  closeSync(fd);
  const handle = {
    name,
    child,
    pid: child.pid,
    logFile: options.logFile,
    exited: false,
    stop: (timeoutMs = 10_000) => stopChild(handle, timeoutMs),
  };
  child.once("exit", () => {
    handle.exited = true;
    children.delete(handle);
  });
  children.add(handle);
  return handle;
}

function stopChild(handle, timeoutMs) {
  if (handle.exited) return Promise.resolve();
  return new Promise((resolve) => {
    const killer = setTimeout(() => {
      try {
        process.kill(handle.pid, "SIGKILL");
      } catch {}
    }, timeoutMs);
    handle.child.once("exit", () => {
      clearTimeout(killer);
      resolve();
    });
    try {
      process.kill(handle.pid, "SIGTERM");
    } catch {
      clearTimeout(killer);
      resolve();
    }
  });
}

/** Stops every process still registered (SIGTERM, then SIGKILL). */
export async function stopAll() {
  await Promise.all([...children].map((handle) => handle.stop(8_000)));
}

/** Synchronous last resort at exit: SIGKILL whatever is left. */
export function killAllSync() {
  for (const handle of children) {
    try {
      process.kill(handle.pid, "SIGKILL");
    } catch {}
  }
}

/** Waits until `predicate()` is truthy (polled), or throws after `timeoutMs` with `what`. */
export async function waitFor(what, predicate, timeoutMs = 30_000, handle = undefined) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (handle?.exited) throw new Error(`${handle.name} exited while waiting for ${what}; see ${handle.logFile}:\n${tail(handle.logFile)}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${handle ? `; see ${handle.logFile}:\n${tail(handle.logFile)}` : ""}`);
    await sleep(100);
  }
}

/** The last lines of a file, for error messages. */
export function tail(file, lines = 15) {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** The first JSON log line of a process log whose `msg` is `message`. */
export function findLogLine(file, message) {
  if (!existsSync(file)) return undefined;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.includes(message)) continue;
    try {
      const parsed = JSON.parse(line);
      if (parsed.msg === message) return parsed;
    } catch {}
  }
  return undefined;
}

/** A TCP port on 127.0.0.1 that is free right now. */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** True once something accepts TCP connections on 127.0.0.1:port. */
export async function portOpen(port) {
  const { connect } = await import("node:net");
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

// ---- /proc ---------------------------------------------------------------------------------

const CLK_TCK = Number(run("getconf", ["CLK_TCK"]).stdout.trim()) || 100;

/** User + system CPU seconds of a process so far (from /proc/<pid>/stat), or undefined if gone. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // After the comm: state is field 3, utime field 14, stime field 15 (1-based in proc(5)).
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Resident set size in bytes (VmRSS of /proc/<pid>/status), or undefined if gone. */
export function rssBytes(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

/**
 * Samples VmRSS of named processes every `everyMs` (100 ms): peak and last per name.
 * Returns { stop() -> { name: { peak, first, last, samples } } }.
 */
export function sampleRss(processes, everyMs = 100) {
  const stats = {};
  for (const [name, pid] of Object.entries(processes)) stats[name] = { pid, peak: 0, first: rssBytes(pid) ?? 0, last: 0, samples: 0 };
  const tick = () => {
    for (const entry of Object.values(stats)) {
      const rss = rssBytes(entry.pid);
      if (rss === undefined) continue;
      entry.samples++;
      entry.last = rss;
      if (rss > entry.peak) entry.peak = rss;
    }
  };
  tick();
  const timer = setInterval(tick, everyMs);
  return {
    stop() {
      clearInterval(timer);
      tick();
      const out = {};
      for (const [name, entry] of Object.entries(stats)) out[name] = { peak: entry.peak, first: entry.first, last: entry.last, samples: entry.samples };
      return out;
    },
  };
}

/** CPU seconds of several processes now: { name: seconds }. */
export function cpuSnapshot(processes) {
  const out = {};
  for (const [name, pid] of Object.entries(processes)) out[name] = cpuSeconds(pid) ?? 0;
  return out;
}

/** Percentile (0..100) of a sorted Float64Array, nearest-rank. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return undefined;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** Median of numbers (undefined-free). */
export function median(values) {
  const list = values.filter((value) => typeof value === "number" && Number.isFinite(value)).sort((a, b) => a - b);
  if (list.length === 0) return undefined;
  const middle = Math.floor(list.length / 2);
  return list.length % 2 === 1 ? list[middle] : (list[middle - 1] + list[middle]) / 2;
}
