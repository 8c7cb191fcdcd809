import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import { z } from "zod";

/** A configuration file could not be read or is invalid; `problems` lists every one, by key path. */
export class ConfigError extends Error {
  readonly code = "invalid_config";
  readonly problems: readonly string[];

  constructor(file: string, problems: readonly string[], options?: { cause?: unknown }) {
    super(`${file}: ${problems.length === 1 ? problems[0] : `${problems.length} problems:\n  ${problems.join("\n  ")}`}`, options);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/**
 * Reads a YAML file and validates it against a zod schema. Every problem is reported at once, each
 * with its dotted key path and what was expected; the result is deeply frozen.
 */
export function loadYamlConfig<S extends z.ZodType>(file: string, schema: S): z.output<S> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (cause) {
    throw new ConfigError(file, [`cannot read the file: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`], { cause });
  }
  return parseYamlConfig(file, text, schema);
}

/** Like {@link loadYamlConfig}, from text already read. */
export function parseYamlConfig<S extends z.ZodType>(file: string, text: string, schema: S): z.output<S> {
  const document = parseDocument(text, { uniqueKeys: true });
  if (document.errors.length > 0) throw new ConfigError(file, document.errors.map((error) => `yaml: ${(error.message.split("\n")[0] ?? "").replace(/:$/, "")}`));
  return validateConfig(file, document.toJS() ?? {}, schema);
}

/** Validates a plain value against a schema, reporting problems as {@link loadYamlConfig} does. */
export function validateConfig<S extends z.ZodType>(file: string, value: unknown, schema: S): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ConfigError(file, result.error.issues.map(formatIssue));
  return deepFreeze(result.data);
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String).join(".") || "(top level)";
  if (issue.code === "unrecognized_keys") {
    const prefix = issue.path.length > 0 ? `${path}.` : "";
    return `${issue.keys.map((key) => `${prefix}${key}`).join(", ")}: unknown key${issue.keys.length > 1 ? "s" : ""}`;
  }
  return `${path}: ${issue.message}`;
}

/** Freezes a value and everything it holds. */
export function deepFreeze<T>(value: T): T {
  // Buffers cannot be frozen (and their bytes are not configuration to protect).
  if (value !== null && typeof value === "object" && !ArrayBuffer.isView(value) && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration written as `500ms`, `30s`, `15m`, `1h` or `7d`; parsed to milliseconds. */
export const duration = z
  .string()
  .regex(DURATION, "expected a duration such as 30s, 15m or 1h")
  .transform((text) => {
    const [, amount, unit] = DURATION.exec(text) ?? [];
    return Math.round(Number(amount) * (UNIT_MS[unit ?? "s"] ?? 1000));
  });

/** host:port, with the port a number in 0..65535 ([::1]:5432 for IPv6). */
export const hostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "expected host:port");

/** Splits a host:port written as {@link hostPort} accepts. */
export function splitHostPort(address: string): { host: string; port: number } {
  const index = address.lastIndexOf(":");
  const host = address.slice(0, index).replace(/^\[(.*)\]$/, "$1");
  return { host, port: Number(address.slice(index + 1)) };
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "::ffff:127.0.0.1" || /^(::ffff:)?127\./.test(host);
}
