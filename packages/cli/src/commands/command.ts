/** What a command may do to the outside world: print, and wait for Ctrl-C. */
export interface CommandIO {
  out(line: string): void;
  err(line: string): void;
  /** Resolves on SIGINT or SIGTERM. */
  untilSignal(): Promise<void>;
}

/** One subcommand of `airlock`. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  run(argv: string[], env: Readonly<Record<string, string | undefined>>, io: CommandIO): Promise<number>;
}

/** Wrong arguments: printed with a pointer to --help. */
export class UsageError extends Error {
  readonly code = "usage";
}
