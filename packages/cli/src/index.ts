/** The `airlock` command line. */
import { ConfigError } from "@airlock/runtime";
import { agentCommand, gatewayCommand } from "./commands/processes.js";
import { connectCommand } from "./commands/connect.js";
import { demoCommand } from "./commands/demo.js";
import { accessCommand } from "./commands/access.js";
import { policyCommand } from "./commands/policy.js";
import { reviewsCommand } from "./commands/reviews.js";
import { replayCommand } from "./commands/replay.js";
import { sessionsCommand } from "./commands/sessions.js";
import { ApiError } from "./commands/api-client.js";
import { UsageError, type Command, type CommandIO } from "./commands/command.js";

export { startConnect, ConnectError, type ConnectHandle, type ConnectOptions } from "./connect/connect.js";
export { findTokenSource, TokenSourceError, type TokenSource } from "./connect/token-source.js";

const COMMANDS: readonly Command[] = [gatewayCommand, agentCommand, connectCommand, reviewsCommand, sessionsCommand, replayCommand, accessCommand, policyCommand, demoCommand];

function help(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length));
  return `airlock: a database access gateway for AI agents and CI jobs

Usage: airlock <command> [options]   (airlock <command> --help for a command's options)

Commands:
${COMMANDS.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`).join("\n")}
  help${" ".repeat(Math.max(0, width - 4))}  print this help`;
}

/** Runs the command line; returns the exit status. Errors are one line on stderr. */
export async function run(argv: string[], env: Readonly<Record<string, string | undefined>>, io: CommandIO = processIO()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    const topic = name === "help" ? COMMANDS.find((command) => command.name === rest[0]) : undefined;
    io.out(topic?.usage ?? help());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (command === undefined) {
    io.err(`airlock: unknown command \`${name}\`: run \`airlock help\``);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    io.out(command.usage);
    return 0;
  }
  try {
    return await command.run(rest, env, io);
  } catch (error) {
    if (error instanceof UsageError || (error as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS")) {
      io.err(`airlock ${name}: ${(error as Error).message}: see \`airlock ${name} --help\``);
      return 2;
    }
    if (error instanceof ApiError) {
      io.err(`airlock ${name}: ${error.message}${error.status === 0 ? "" : ` (HTTP ${error.status}, ${error.code})`}`);
      return 1;
    }
    if (error instanceof ConfigError) {
      io.err(`airlock ${name}: invalid configuration: ${error.message}`);
      return 1;
    }
    io.err(`airlock ${name}: ${(error as Error).message ?? String(error)}`);
    return 1;
  }
}

function processIO(): CommandIO {
  return {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    untilSignal: () =>
      new Promise((resolve) => {
        process.once("SIGINT", () => resolve());
        process.once("SIGTERM", () => resolve());
      }),
  };
}
