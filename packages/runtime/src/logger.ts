import { pino, type Logger, type DestinationStream } from "pino";

export type { Logger } from "pino";

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  readonly name: string;
  readonly level?: string;
  readonly destination?: DestinationStream;
}

/** A JSON-lines log file, appended to; flushed on exit. */
export function logFile(path: string): DestinationStream & { flushSync(): void } {
  return pino.destination({ dest: path, append: true, sync: false, mkdir: true });
}

/**
 * The process's root logger: JSON lines, children carry session, connection, agent and principal.
 * Paths that could carry secrets are redacted even if a caller passes them by mistake.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? "info",
      redact: {
        paths: ["password", "*.password", "token", "*.token", "key", "*.key", "authorization", "*.authorization", "secret", "*.secret"],
        censor: "[redacted]",
      },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ dest: 2, sync: false }),
  );
}
