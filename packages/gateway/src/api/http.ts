import { matchingPolicies, type PolicyRule } from "@airlock/policy";
import { duration, metricsHandler, type Logger } from "@airlock/runtime";
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Registry } from "prom-client";
import { ApprovalError, type Approvals, type Reviewer } from "../approvals/index.js";
import { IdentityError, type Identity, type IdentityVerifier } from "../identity/index.js";
import type { ReviewRow, Store } from "../store/index.js";
import { createSessionsApi, writeApiReply } from "./sessions.js";

/** A reviewer of gateway.yaml with the digest of their key. */
export interface ReviewerKey extends Reviewer {
  readonly keySha256: string;
}

/** Options of {@link createApiHandler}. */
export interface ApiOptions {
  readonly reviewers: readonly ReviewerKey[];
  readonly approvals: Approvals;
  readonly store: Store;
  /** gateway.yaml `recordings`: the sessions endpoints serve recordings from this folder only. */
  readonly recordingsDir: string;
  /** Writes out what an open session's recording file holds back, before the API reads it. */
  readonly flushRecording?: (path: string) => Promise<void>;
  readonly verifier: IdentityVerifier;
  readonly policies: readonly PolicyRule[];
  readonly connections: ReadonlySet<string>;
  /** Per policy name: the longest grant it allows, in ms. */
  readonly maxGrantMs: ReadonlyMap<string, number>;
  readonly registry: Registry;
  readonly health: () => Record<string, unknown>;
  readonly logger: Logger;
  readonly now: () => Date;
}

/** An HTTP error with a stable code; the body is `{ "error": { "code", "message" } }`. */
class HttpError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const MAX_BODY = 64 * 1024;

/**
 * The gateway's HTTP API (the CLI and the web UI use the same endpoints):
 * - GET /healthz, GET /metrics
 * - reviewers (Authorization: Bearer <reviewer key>): GET /api/v1/reviews[?status=], GET /api/v1/reviews/:id,
 *   POST /api/v1/reviews/:id/approve and /reject with `{ "reason": "..." }`
 * - reviewers: GET /api/v1/sessions[?subject=&connection=&from=&to=&decision=&limit=], GET /api/v1/sessions/:id,
 *   GET /api/v1/sessions/:id/recording (JSON lines), GET /api/v1/sessions/:id/verify
 * - jobs (Authorization: Bearer <OIDC token>): POST /api/v1/access-requests `{ connection, duration, reason }`,
 *   GET /api/v1/access-requests/:id
 */
export function createApiHandler(options: ApiOptions): (request: IncomingMessage, response: ServerResponse) => void {
  const serveMetrics = metricsHandler(options.registry);
  const keys = options.reviewers.map((reviewer) => ({ reviewer, digest: Buffer.from(reviewer.keySha256, "hex") }));
  const sessions = createSessionsApi({ store: options.store, recordingsDir: options.recordingsDir, ...(options.flushRecording === undefined ? {} : { flush: options.flushRecording }) });

  const reviewerOf = (request: IncomingMessage): Reviewer => {
    const key = bearer(request);
    const digest = createHash("sha256").update(key).digest();
    const found = keys.find((entry) => entry.digest.length === digest.length && timingSafeEqual(entry.digest, digest));
    if (found === undefined) throw new HttpError(401, "unauthenticated", "the reviewer key was refused");
    return found.reviewer;
  };

  const identityOf = async (request: IncomingMessage): Promise<Identity> => {
    try {
      return await options.verifier.verify(bearer(request));
    } catch (error) {
      if (error instanceof IdentityError) {
        options.logger.warn({ reason: error.code, err: error.message }, "api token refused");
        throw new HttpError(401, "unauthenticated", "the token was refused");
      }
      throw error;
    }
  };

  const route = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? "/", "http://gateway");
    const path = url.pathname.replace(/\/+$/, "");
    const method = request.method ?? "GET";
    if (path === "/healthz" && method === "GET") return send(response, 200, { status: "ok", ...options.health() });
    let match: RegExpExecArray | null;
    if (path === "/api/v1/reviews" && method === "GET") {
      reviewerOf(request);
      const status = url.searchParams.get("status");
      if (status !== null && !["pending", "approved", "rejected", "expired", "cancelled"].includes(status)) {
        throw new HttpError(400, "bad_request", `status \`${status}\` is not one of pending, approved, rejected, expired, cancelled`);
      }
      const rows = await options.store.listReviews({ ...(status === null ? {} : { status: status as ReviewRow["status"] }), limit: 500 });
      return send(response, 200, { reviews: rows.map(reviewJson) });
    }
    if ((match = /^\/api\/v1\/reviews\/([^/]+)$/.exec(path)) !== null && method === "GET") {
      reviewerOf(request);
      const row = await options.store.getReview(decodeURIComponent(match[1] ?? ""));
      if (row === undefined) throw new HttpError(404, "not_found", "no such review");
      return send(response, 200, { review: reviewJson(row) });
    }
    if ((match = /^\/api\/v1\/reviews\/([^/]+)\/(approve|reject)$/.exec(path)) !== null && method === "POST") {
      const reviewer = reviewerOf(request);
      const body = await readJson(request);
      const reason = typeof body.reason === "string" ? body.reason.trim() : "";
      const action = match[2] as "approve" | "reject";
      if (action === "reject" && reason === "") throw new HttpError(400, "bad_request", "a rejection needs a reason");
      try {
        const row = await options.approvals.act(reviewer, decodeURIComponent(match[1] ?? ""), action, reason);
        return send(response, 200, { review: reviewJson(row) });
      } catch (error) {
        if (error instanceof ApprovalError) {
          const status = { not_found: 404, not_pending: 409, already_acted: 409, self_approval: 403, not_a_reviewer: 403 }[error.code];
          throw new HttpError(status, error.code, error.message);
        }
        throw error;
      }
    }
    if (path === "/api/v1/access-requests" && method === "POST") {
      const identity = await identityOf(request);
      const body = await readJson(request);
      return send(response, 201, await requestAccess(identity, body));
    }
    if ((match = /^\/api\/v1\/access-requests\/([^/]+)$/.exec(path)) !== null && method === "GET") {
      const identity = await identityOf(request);
      const row = await options.store.getReview(decodeURIComponent(match[1] ?? ""));
      if (row === undefined || row.kind !== "access" || row.subject !== identity.subject) throw new HttpError(404, "not_found", "no such access request");
      return send(response, 200, { request: reviewJson(row) });
    }
    if (path === "/api/v1/sessions" || path.startsWith("/api/v1/sessions/")) {
      // Authenticated before routing, so an unknown session and a missing key look the same to strangers.
      reviewerOf(request);
      const reply = await sessions.route(method, path, url.searchParams);
      if (reply !== undefined) return writeApiReply(response, reply);
    }
    if (path.startsWith("/api/")) throw new HttpError(404, "not_found", `no endpoint ${method} ${path}`);
    throw new HttpError(404, "not_found", "not found");
  };

  const requestAccess = async (identity: Identity, body: Record<string, unknown>) => {
    const connection = typeof body.connection === "string" ? body.connection : "";
    const reason = typeof body.reason === "string" ? body.reason.trim() : "";
    if (!options.connections.has(connection)) throw new HttpError(404, "not_found", `no connection is named \`${connection}\``);
    if (reason === "") throw new HttpError(400, "bad_request", "an access request needs a reason");
    const parsed = duration.safeParse(body.duration);
    if (!parsed.success) throw new HttpError(400, "bad_request", "duration: expected a duration such as 15m or 1h");
    // The jit policies this identity would get with a grant.
    const grant = [{ connection, expiresAt: new Date(options.now().getTime() + parsed.data) }];
    const policies = matchingPolicies({ principal: identity, connection, now: options.now(), policies: options.policies, grants: grant }).filter((policy) => policy.access === "jit");
    if (policies.length === 0) throw new HttpError(403, "forbidden", `no just-in-time policy covers this identity on connection \`${connection}\``);
    const longest = Math.max(...policies.map((policy) => options.maxGrantMs.get(policy.name) ?? 3_600_000));
    if (parsed.data > longest) throw new HttpError(400, "bad_request", `duration: at most ${Math.round(longest / 60_000)}m may be asked for`);
    const pending = await options.approvals.request({
      kind: "access",
      sessionId: "",
      subject: identity.subject,
      connection,
      sql: "",
      classes: [],
      rule: policies.map((policy) => policy.name).join(","),
      reasons: [`just-in-time access to \`${connection}\` under ${policies.map((policy) => `\`${policy.name}\``).join(", ")}`],
      reviewerGroups: [...new Set(policies.flatMap((policy) => policy.reviewers ?? []))],
      approvalsRequired: Math.max(...policies.map((policy) => policy.approvals ?? 1)),
      timeoutMs: Math.min(...policies.map((policy) => policy.reviewTimeoutMs ?? 600_000)),
      durationMs: parsed.data,
      reason,
    });
    return { request: reviewJson(pending.review), approve: options.approvals.describe(pending.review.id) };
  };

  return (request, response) => {
    if (serveMetrics(request, response)) return;
    route(request, response).catch((error: unknown) => {
      if (error instanceof HttpError) {
        send(response, error.status, { error: { code: error.code, message: error.message } });
        return;
      }
      options.logger.error({ err: error instanceof Error ? error.stack : String(error), path: request.url?.split("?")[0] }, "api request failed");
      send(response, 500, { error: { code: "internal", message: "internal error" } });
    });
  };
}

function bearer(request: IncomingMessage): string {
  const header = request.headers.authorization ?? "";
  if (!header.startsWith("Bearer ")) throw new HttpError(401, "unauthenticated", "send Authorization: Bearer <key or token>");
  return header.slice("Bearer ".length).trim();
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, "too_large", `the body is over ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  try {
    const value = JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
    if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error("not an object");
    return value as Record<string, unknown>;
  } catch {
    throw new HttpError(400, "bad_request", "the body is not a JSON object");
  }
}

function send(response: ServerResponse, status: number, body: unknown): void {
  if (response.headersSent) return;
  response.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" }).end(`${JSON.stringify(body)}\n`);
}

/** A review as the API shows it. */
export function reviewJson(row: ReviewRow): Record<string, unknown> {
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    subject: row.subject,
    connection: row.connection,
    sql: row.sql,
    classes: row.classes,
    rule: row.rule,
    reasons: row.reasons,
    reviewers: row.reviewerGroups,
    approvalsRequired: row.approvalsRequired,
    actions: row.actions.map((action) => ({ ...action, at: action.at.toISOString() })),
    createdAt: row.createdAt.toISOString(),
    expiresAt: row.expiresAt.toISOString(),
    ...(row.decidedAt === undefined ? {} : { decidedAt: row.decidedAt.toISOString() }),
    ...(row.durationMs === undefined ? {} : { durationMs: row.durationMs }),
    ...(row.reason === undefined ? {} : { reason: row.reason }),
  };
}
