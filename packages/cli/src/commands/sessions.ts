import { parseArgs } from "node:util";
import { UsageError, type Command } from "./command.js";
import { SOURCE_OPTIONS, SOURCE_USAGE, sessionPath, withSessionSource } from "./session-source.js";

/** A session as the sessions API shows it. */
export interface SessionJson {
  id: string;
  subject: string;
  issuer: string;
  groups: string[];
  connection: string;
  transport: string;
  clientAddress: string;
  gatewayId: string;
  startedAt: string;
  endedAt?: string;
  outcome?: string;
  statements: number;
  denied: number;
  reviewed: number;
  recording?: { records?: number; lastHash?: string };
}

/** What `GET /api/v1/sessions/:id/verify` answers. */
interface VerificationJson {
  ok: boolean;
  records: number;
  ended: boolean;
  sealed: boolean;
  problem?: { record: number; reason: string };
}

const DECISIONS = ["allow", "deny", "review"];

/** A duration for people: 850ms, 12.3s, 4m05s, 2h03m. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)}s`;
  const seconds = Math.floor(ms / 1_000);
  if (seconds < 3_600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`;
  return `${Math.floor(seconds / 3_600)}h${String(Math.floor((seconds % 3_600) / 60)).padStart(2, "0")}m`;
}

/** `n things`, singular for one. */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** An instant given on the command line: ISO 8601; without an offset it is the local time. */
function cliInstant(flag: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const date = /^\d{4}-\d{2}-\d{2}/.test(value) ? new Date(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00` : value) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) throw new UsageError(`${flag} \`${value}\` is not an ISO 8601 time such as 2030-01-02 or 2030-01-02T15:04:05Z`);
  return date.toISOString();
}

function table(sessions: SessionJson[]): string[] {
  const rows = sessions.map((session) => {
    const started = `${session.startedAt.slice(0, 19)}Z`;
    const duration = session.endedAt === undefined ? "-" : formatDuration(Date.parse(session.endedAt) - Date.parse(session.startedAt));
    const statements = `${session.statements}${session.denied + session.reviewed === 0 ? "" : ` (${session.denied} denied, ${session.reviewed} reviewed)`}`;
    return [session.id, started, duration, session.outcome ?? "open", session.connection, statements, session.subject];
  });
  const header = ["SESSION", "STARTED", "DURATION", "OUTCOME", "CONNECTION", "STATEMENTS", "SUBJECT"];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

export const sessionsCommand: Command = {
  name: "sessions",
  summary: "list recorded sessions, or verify that a session's recording is intact",
  usage: `airlock sessions list [--subject S] [--connection C] [--from TIME] [--to TIME]
                      [--decision allow|deny|review] [--limit N] [--json]
airlock sessions verify <session> [--json]

list prints sessions newest first: --subject and --connection match exactly, --from and --to bound
the start time (ISO 8601, e.g. 2030-01-02 or 2030-01-02T15:04:05Z; without an offset, local time),
--decision keeps sessions with at least one decision of that effect, --limit (default 100, at most
10000) caps how many.

verify checks the recording's hash chain and, for a session that ended normally, the record count
and last hash the store kept: a changed, removed, reordered or cut record fails. It exits 0 when the
recording is intact (a recording without session_end ended abruptly: the gateway stopped), and 1
naming the first bad record otherwise.

${SOURCE_USAGE}

Options:
  --api URL             the gateway's HTTP API (or AIRLOCK_API)
  --key-file FILE       the reviewer key (or AIRLOCK_REVIEWER_KEY)
  --config FILE         read gateway.yaml's store and recordings folder instead of the API
  --json                print JSON for scripts`,
  async run(argv, env, io) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        ...SOURCE_OPTIONS,
        subject: { type: "string" },
        connection: { type: "string" },
        from: { type: "string" },
        to: { type: "string" },
        decision: { type: "string" },
        limit: { type: "string" },
        json: { type: "boolean", default: false },
      },
    });
    const [action, id, ...rest] = positionals;
    if (rest.length > 0) throw new UsageError(`unexpected argument \`${rest[0]}\``);
    switch (action) {
      case "list": {
        if (id !== undefined) throw new UsageError(`unexpected argument \`${id}\``);
        const query = new URLSearchParams();
        if (values.subject !== undefined) query.set("subject", values.subject);
        if (values.connection !== undefined) query.set("connection", values.connection);
        const from = cliInstant("--from", values.from);
        if (from !== undefined) query.set("from", from);
        const to = cliInstant("--to", values.to);
        if (to !== undefined) query.set("to", to);
        if (values.decision !== undefined) {
          if (!DECISIONS.includes(values.decision)) throw new UsageError(`--decision \`${values.decision}\` is not one of allow, deny, review`);
          query.set("decision", values.decision);
        }
        if (values.limit !== undefined) {
          const limit = /^\d+$/.test(values.limit) ? Number(values.limit) : Number.NaN;
          if (!(limit >= 1 && limit <= 10_000)) throw new UsageError(`--limit \`${values.limit}\` is not an integer from 1 to 10000`);
          query.set("limit", String(limit));
        }
        const sessions = await withSessionSource(values, env, async (source) => (await source.json("/api/v1/sessions", query)).sessions as SessionJson[]);
        if (values.json) io.out(JSON.stringify(sessions));
        else if (sessions.length === 0) io.out("no sessions");
        else for (const line of table(sessions)) io.out(line);
        return 0;
      }
      case "verify": {
        if (id === undefined) throw new UsageError("expected the id of the session to verify");
        for (const flag of ["subject", "connection", "from", "to", "decision", "limit"] as const) {
          if (values[flag] !== undefined) throw new UsageError(`--${flag} is for \`sessions list\``);
        }
        const result = await withSessionSource(values, env, async (source) => (await source.json(sessionPath(id, "verify"))) as unknown as VerificationJson);
        if (values.json) {
          io.out(JSON.stringify(result));
          return result.ok ? 0 : 1;
        }
        if (!result.ok) {
          const problem = result.problem ?? { record: result.records + 1, reason: "the recording does not verify" };
          io.err(`airlock sessions: the recording of session \`${id}\` is not intact: record ${problem.record}: ${problem.reason}`);
          return 1;
        }
        io.out(`ok: ${count(result.records, "record")}, ${result.ended ? "ended normally" : "ended abruptly (no session_end)"}`);
        return 0;
      }
      default:
        throw new UsageError(action === undefined ? "expected list or verify" : `unknown action \`${action}\``);
    }
  },
};
