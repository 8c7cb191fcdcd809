import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { createInterface } from "node:readline";

const CLI = resolve(import.meta.dirname, "../../src/bin.ts");

/** A process of the `airlock` command line, run from source. */
export interface AirlockProcess {
  readonly child: ChildProcess;
  /** Resolves with the first JSON log line whose msg is `message`. */
  waitForLog(message: string): Promise<Record<string, unknown>>;
  /** Resident set size now, in bytes (from /proc). */
  rss(): number;
  stop(): Promise<void>;
}

/** Starts `airlock <args>` as its own process, its JSON logs on stderr. */
export function startAirlock(args: string[], env: Record<string, string>): AirlockProcess {
  const child = spawn(process.execPath, ["--conditions=@airlock/source", "--import", "tsx", CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const lines: Record<string, unknown>[] = [];
  const waiters: { message: string; resolve: (line: Record<string, unknown>) => void }[] = [];
  createInterface({ input: child.stderr! }).on("line", (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      line = { msg: text };
    }
    lines.push(line);
    for (const waiter of waiters.filter((candidate) => candidate.message === line.msg)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(line);
    }
  });
  return {
    child,
    waitForLog(message) {
      const found = lines.find((line) => line.msg === message);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolveLine, reject) => {
        waiters.push({ message, resolve: resolveLine });
        child.once("exit", (code) => reject(new Error(`airlock ${args[0]} exited with ${code} before logging \`${message}\`: ${JSON.stringify(lines.slice(-3))}`)));
      });
    },
    rss() {
      const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
      const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
      return Number(kb) * 1024;
    },
    stop() {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
      return new Promise((resolveStop) => {
        child.once("exit", () => resolveStop());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 5_000).unref();
      });
    },
  };
}
