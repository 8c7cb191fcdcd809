import { createReadStream } from "node:fs";
import { readFile, realpath, stat } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { verifyLines, type VerifyResult } from "../recording/chain.js";
import type { DecisionRow, SessionFilter, SessionRow, Store } from "../store/index.js";

/** What a sessions endpoint answers: a JSON body, or a file to stream. */
export type ApiReply = { status: number; body: unknown } | { status: number; file: string; contentType: string };

/** Options of {@link createSessionsApi}. */
export interface SessionsApiOptions {
  readonly store: Store;
  /** The folder recordings are written to (gateway.yaml `recordings`); no file outside it is ever served. */
  readonly recordingsDir: string;
  /**
   * Writes out what this gateway holds back of an open session's recording (its file lags the
   * journal by up to a fraction of a second), so a live session reads complete. Absent offline.
   */
  readonly flush?: (path: string) => Promise<void>;
}

/** The sessions endpoints of the HTTP API, apart from transport and authentication. */
export interface SessionsApi {
  /**
   * Answers a request to a sessions endpoint, or returns undefined when the path is not one (the
   * caller goes on routing). The caller has already authenticated a reviewer.
   */
  route(method: string, path: string, query: URLSearchParams): Promise<ApiReply | undefined>;
}

/** What verifying a session's recording found, as the API answers it. */
export interface SessionVerification {
  readonly ok: boolean;
  readonly records: number;
  /** The recording ends with session_end; false when the gateway stopped mid-session. */
  readonly ended: boolean;
  /** The store kept the recording's count and last hash at the session's end, and they were checked. */
  readonly sealed: boolean;
  /** The first bad record (1-based, one record a line) and why. */
  readonly problem?: { readonly record: number; readonly reason: string };
}

const NDJSON = "application/x-ndjson";
const DECISIONS = ["allow", "deny", "review"] as const;
/** The store's ceiling of list limits. */
const MAX_LIMIT = 10_000;
/** A date, or a date and time with Z or an offset: the instant must not depend on the gateway's time zone. */
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/;

/** A reply that ends the request with an error body like the rest of the API. */
class ReplyError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * The sessions endpoints, for reviewers (the CLI and the web UI use the same ones):
 * - GET /api/v1/sessions[?subject=&connection=&from=&to=&decision=&limit=]: `{ sessions }`, newest first
 * - GET /api/v1/sessions/:id: `{ session, decisions }`
 * - GET /api/v1/sessions/:id/recording: the recording, JSON lines (application/x-ndjson)
 * - GET /api/v1/sessions/:id/verify: {@link SessionVerification}
 *
 * The recording's file is the one the store names, served only if it resolves (symbolic links
 * followed) inside `recordingsDir`.
 */
export function createSessionsApi(options: SessionsApiOptions): SessionsApi {
  const { store } = options;
  const recordingsDir = resolve(options.recordingsDir);

  const sessionOf = async (id: string): Promise<SessionRow> => {
    const row = await store.getSession(id);
    if (row === undefined) throw new ReplyError(404, "not_found", `no session is named \`${id}\``);
    return row;
  };

  /** The recording's file, checked to be a regular file inside the recordings folder. */
  const recordingOf = async (row: SessionRow): Promise<string> => {
    const unavailable = new ReplyError(404, "not_found", `the recording of session \`${row.id}\` is not available on this gateway`);
    if (row.recording === undefined) throw new ReplyError(404, "not_found", `session \`${row.id}\` has no recording`);
    const file = await containedFile(recordingsDir, row.recording.path);
    if (file === undefined) throw unavailable;
    return file;
  };

  const handle = async (method: string, path: string, query: URLSearchParams): Promise<ApiReply | undefined> => {
    const trimmed = path.replace(/\/+$/, "");
    if (trimmed !== "/api/v1/sessions" && !trimmed.startsWith("/api/v1/sessions/")) return undefined;
    const parts = trimmed.slice("/api/v1/sessions".length).split("/").slice(1);
    if (parts.length > 2 || parts.some((part) => part === "")) return undefined;
    const [encoded, leaf] = parts;
    if (leaf !== undefined && leaf !== "recording" && leaf !== "verify") return undefined;
    if (method !== "GET") throw new ReplyError(405, "method_not_allowed", `${method} is not allowed on ${trimmed}: use GET`);
    if (encoded === undefined) {
      const rows = await store.listSessions(listFilter(query));
      return { status: 200, body: { sessions: rows.map(sessionJson) } };
    }
    const row = await sessionOf(decodeId(encoded));
    if (leaf === undefined) {
      const decisions = await store.listDecisions(row.id);
      return { status: 200, body: { session: sessionJson(row), decisions: decisions.map(decisionJson) } };
    }
    const file = await recordingOf(row);
    await options.flush?.(file);
    if (leaf === "recording") return { status: 200, file, contentType: NDJSON };
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch {
      throw new ReplyError(404, "not_found", `the recording of session \`${row.id}\` is not available on this gateway`);
    }
    return { status: 200, body: verifySessionRecording(row, text) };
  };

  return {
    async route(method, path, query) {
      try {
        return await handle(method, path, query);
      } catch (error) {
        if (error instanceof ReplyError) return { status: error.status, body: { error: { code: error.code, message: error.message } } };
        throw error;
      }
    },
  };
}

/**
 * Verifies a session's recording: the hash chain, and when the store sealed the session at a normal
 * end (record count and last hash), that nothing was cut from the end. A recording that stops
 * without session_end and has no seal verifies as ended abruptly (a gateway crash).
 */
export function verifySessionRecording(row: SessionRow, text: string): SessionVerification {
  const records = row.recording?.records;
  const lastHash = row.recording?.lastHash;
  const expected = records === undefined || lastHash === undefined ? undefined : { records, lastHash };
  const result: VerifyResult = verifyLines(row.id, text, expected);
  const { ok, problem } = result;
  return {
    ok,
    records: result.records,
    ended: result.ended,
    sealed: expected !== undefined,
    ...(problem === undefined ? {} : { problem: { record: problem.line, reason: problem.reason } }),
  };
}

/**
 * Writes a reply to a Node.js response: JSON with no-store, or the file streamed with its content
 * type. A file that cannot be opened gives a 404 body instead.
 */
export function writeApiReply(response: ServerResponse, reply: ApiReply): void {
  if (response.headersSent) return;
  if (!("file" in reply)) {
    response.writeHead(reply.status, { "content-type": "application/json", "cache-control": "no-store" }).end(`${JSON.stringify(reply.body)}\n`);
    return;
  }
  const stream = createReadStream(reply.file);
  stream.once("open", () => {
    response.writeHead(reply.status, { "content-type": reply.contentType, "cache-control": "no-store", "x-content-type-options": "nosniff" });
    stream.pipe(response);
  });
  stream.once("error", () => {
    if (!response.headersSent) {
      writeApiReply(response, { status: 404, body: { error: { code: "not_found", message: "the recording is not available on this gateway" } } });
    } else {
      response.destroy();
    }
  });
  response.once("close", () => stream.destroy());
}

/** A session as the API shows it. The recording's path stays on the gateway. */
export function sessionJson(row: SessionRow): Record<string, unknown> {
  return {
    id: row.id,
    subject: row.subject,
    issuer: row.issuer,
    groups: row.groups,
    connection: row.connection,
    transport: row.transport,
    clientAddress: row.clientAddress,
    gatewayId: row.gatewayId,
    startedAt: row.startedAt.toISOString(),
    ...(row.endedAt === undefined ? {} : { endedAt: row.endedAt.toISOString() }),
    ...(row.outcome === undefined ? {} : { outcome: row.outcome }),
    statements: row.statements,
    denied: row.denied,
    reviewed: row.reviewed,
    ...(row.recording === undefined
      ? {}
      : {
          recording: {
            ...(row.recording.records === undefined ? {} : { records: row.recording.records }),
            ...(row.recording.lastHash === undefined ? {} : { lastHash: row.recording.lastHash }),
          },
        }),
  };
}

/** A decision as the API shows it. */
export function decisionJson(row: DecisionRow): Record<string, unknown> {
  return {
    id: row.id,
    at: row.at.toISOString(),
    sql: row.sql,
    classes: row.classes,
    effect: row.effect,
    ...(row.rule === undefined ? {} : { rule: row.rule }),
    reasons: row.reasons,
    ...(row.reviewId === undefined ? {} : { reviewId: row.reviewId }),
  };
}

function listFilter(query: URLSearchParams): SessionFilter {
  const known = new Set(["subject", "connection", "from", "to", "decision", "limit"]);
  for (const key of query.keys()) {
    if (!known.has(key)) throw new ReplyError(400, "bad_request", `unknown filter \`${key}\`: expected subject, connection, from, to, decision or limit`);
  }
  const filter: SessionFilter = {};
  const text = (key: string): string | undefined => {
    const value = query.get(key);
    if (value === null) return undefined;
    if (value === "") throw new ReplyError(400, "bad_request", `${key}: expected a value`);
    return value;
  };
  const subject = text("subject");
  if (subject !== undefined) filter.subject = subject;
  const connection = text("connection");
  if (connection !== undefined) filter.connection = connection;
  const from = text("from");
  if (from !== undefined) filter.from = instant("from", from);
  const to = text("to");
  if (to !== undefined) filter.to = instant("to", to);
  const decision = text("decision");
  if (decision !== undefined) {
    const effect = DECISIONS.find((candidate) => candidate === decision);
    if (effect === undefined) throw new ReplyError(400, "bad_request", `decision \`${decision}\` is not one of allow, deny, review`);
    filter.decision = effect;
  }
  const limit = text("limit");
  if (limit !== undefined) {
    const count = /^\d{1,6}$/.test(limit) ? Number(limit) : Number.NaN;
    if (!(count >= 1 && count <= MAX_LIMIT)) throw new ReplyError(400, "bad_request", `limit \`${limit}\` is not an integer from 1 to ${MAX_LIMIT}`);
    filter.limit = count;
  }
  return filter;
}

function instant(key: string, value: string): Date {
  const date = ISO_INSTANT.test(value) ? new Date(value) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) {
    throw new ReplyError(400, "bad_request", `${key} \`${value}\` is not an ISO 8601 date, or date and time with Z or an offset`);
  }
  return date;
}

function decodeId(encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw new ReplyError(400, "bad_request", "the session id is not valid percent-encoding");
  }
}

/** The real path of `path` if it is a regular file inside `dir` (both resolved through symbolic links). */
async function containedFile(dir: string, path: string): Promise<string | undefined> {
  let root: string;
  let file: string;
  try {
    root = await realpath(dir);
    file = await realpath(resolve(path));
    if (!(await stat(file)).isFile()) return undefined;
  } catch {
    return undefined;
  }
  const inside = relative(root, file);
  if (inside === "" || inside === ".." || inside.startsWith(`..${sep}`) || isAbsolute(inside)) return undefined;
  return file;
}
