import { run } from "../../src/index.js";

/** What one in-process run of the command line printed, and its exit status. */
export interface CliResult {
  readonly status: number;
  readonly out: string;
  readonly err: string;
}

/** Runs `airlock <args>` in this process with the given environment, collecting its output. */
export async function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  let out = "";
  let err = "";
  const status = await run(args, env, { out: (line) => (out += `${line}\n`), err: (line) => (err += `${line}\n`), untilSignal: () => new Promise(() => undefined) });
  return { status, out, err };
}
