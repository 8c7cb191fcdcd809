/** One client session through the gateway, as the sessions index keeps it. */
export interface SessionRow {
  id: string;
  /** The identity's `sub`. */
  subject: string;
  /** The identity's `iss`. */
  issuer: string;
  groups: string[];
  /** The connection name of gateway.yaml. */
  connection: string;
  /** `native`: a gateway listener with the token as password; `tunnel`: `airlock connect`. */
  transport: "native" | "tunnel";
  clientAddress: string;
  /** The gateway that held the session. */
  gatewayId: string;
  startedAt: Date;
  endedAt?: Date;
  /** How the session ended, e.g. `client_closed`, or {@link ABANDONED_OUTCOME}. */
  outcome?: string;
  /** Decisions recorded for the session. */
  statements: number;
  /** Decisions recorded with effect `deny`. */
  denied: number;
  /** Decisions recorded with effect `review`. */
  reviewed: number;
  /** The session's recording, once {@link Store.setSessionRecording} named its file. */
  recording?: SessionRecordingRow;
}

/** Where a session's recording is and, after a normal end, how it ends. */
export interface SessionRecordingRow {
  /** The recording's file (JSON lines), as the gateway wrote it. */
  path: string;
  /** Records written, kept at the session's end: a recording with fewer lines was cut. */
  records?: number;
  /** The hash of the last record, kept at the session's end. */
  lastHash?: string;
}

/** What {@link Store.startSession} takes: the session as it starts. */
export type SessionStartRow = Omit<SessionRow, "endedAt" | "outcome" | "statements" | "denied" | "reviewed" | "recording">;

/** The count and last hash of a finished recording, kept by {@link Store.endSession}. */
export interface RecordingSeal {
  records: number;
  lastHash: string;
}

/** The policy decision on one client statement. */
export interface DecisionRow {
  id: string;
  sessionId: string;
  at: Date;
  sql: string;
  /** Statement classes: read, write, ddl, admin, export, dangerous. */
  classes: string[];
  effect: "allow" | "deny" | "review";
  /** The deciding rule, if any (no rule: default deny). */
  rule?: string;
  reasons: string[];
  /** The review that held the statement, when the effect is `review`. */
  reviewId?: string;
}

/** Where a review stands; every status but `pending` is final. */
export type ReviewStatus = "pending" | "approved" | "rejected" | "expired" | "cancelled";

/** One reviewer's answer to a review. */
export interface ReviewAction {
  reviewer: string;
  action: "approve" | "reject";
  reason: string;
  at: Date;
}

/** An approval request: a held statement (`statement`) or a request for just-in-time access (`access`). */
export interface ReviewRow {
  id: string;
  sessionId: string;
  subject: string;
  connection: string;
  /** The held statement; for access requests, a description of the request. */
  sql: string;
  classes: string[];
  rule: string;
  reasons: string[];
  /** Groups whose reviewers may act on it. */
  reviewerGroups: string[];
  /** Distinct approving reviewers needed; at least 1. */
  approvalsRequired: number;
  status: ReviewStatus;
  createdAt: Date;
  expiresAt: Date;
  decidedAt?: Date;
  /** Reviewers' actions, in the order they were applied. */
  actions: ReviewAction[];
  /** The gateway that holds the statement. */
  gatewayId: string;
  kind: "statement" | "access";
  /** Access requests: how long the grant should last. */
  durationMs?: number;
  /** Access requests: the requester's reason. */
  reason?: string;
}

/** Just-in-time access to a connection, granted by an approved access review. */
export interface GrantRow {
  id: string;
  subject: string;
  connection: string;
  /** The approved access review; one grant per review. */
  reviewId: string;
  grantedAt: Date;
  expiresAt: Date;
  revokedAt?: Date;
}

/** Which sessions {@link Store.listSessions} returns; every given field must match. */
export interface SessionFilter {
  subject?: string;
  connection?: string;
  /** Sessions started at or after this instant. */
  from?: Date;
  /** Sessions started strictly before this instant. */
  to?: Date;
  /** Sessions with at least one decision of this effect. */
  decision?: "allow" | "deny" | "review";
  /** At most this many, newest first; default 100. */
  limit?: number;
}

/**
 * Something changed: re-read the review or grant. Events are hints: a listener may see one twice,
 * and with PostgreSQL a change made elsewhere while the listening connection was down is replayed
 * when it comes back.
 */
export type StoreEvent = { type: "review"; id: string } | { type: "grant"; id: string };

/**
 * Why a store operation failed.
 *
 * - `not_found`: the session, review or grant named does not exist.
 * - `conflict`: the id already exists, the review is no longer pending, or the reviewer already acted.
 * - `migration_failed`: a schema migration failed, or the schema is newer than this gateway.
 * - `unavailable`: the database could not be reached or failed, or the store is closed.
 * - `invalid_url`: the store URL is neither `sqlite:PATH` nor `postgres://...`.
 */
export type StoreErrorCode = "not_found" | "conflict" | "migration_failed" | "unavailable" | "invalid_url";

/** The one error type of the state store. Messages never contain a connection password. */
export class StoreError extends Error {
  /** Why the operation failed. */
  readonly code: StoreErrorCode;

  /**
   * @param code - why the operation failed
   * @param message - lowercase, no trailing period, user input in backticks, never a password
   * @param options - the underlying error, if any
   */
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreError";
    this.code = code;
  }
}

/** Where a store reports trouble it recovers from by itself (a pino logger fits). */
export interface StoreLogger {
  warn(obj: object, msg: string): void;
  info?(obj: object, msg: string): void;
}

/** Options of {@link openStore}. */
export interface StoreOptions {
  logger?: StoreLogger;
}

/**
 * The gateway's state: the sessions index, statement decisions, reviews with reviewers' actions and
 * just-in-time access grants. Every method rejects with a {@link StoreError}, or a TypeError naming the
 * argument when it is misused.
 */
export interface Store {
  readonly kind: "sqlite" | "postgres";
  /** Adds a session; `conflict` if the id exists. */
  startSession(row: SessionStartRow): Promise<void>;
  /** Names the file of a session's recording (replacing an earlier one); `not_found` if there is no such session. */
  setSessionRecording(id: string, path: string): Promise<void>;
  /**
   * Ends a session; `not_found` if there is none. Ending an ended session changes nothing: the first
   * end stays. `recording` (the recorder's count and last hash at session_end) is kept with the end,
   * so verification can tell a recording whose last records were cut.
   */
  endSession(id: string, endedAt: Date, outcome: string, recording?: RecordingSeal): Promise<void>;
  /**
   * Marks sessions of this gatewayId that have no end as ended abruptly (at start, after a crash), with
   * outcome {@link ABANDONED_OUTCOME}. Returns how many.
   */
  endAbandonedSessions(gatewayId: string, at: Date): Promise<number>;
  getSession(id: string): Promise<SessionRow | undefined>;
  /** Sessions matching every field of the filter, newest first. */
  listSessions(filter?: SessionFilter): Promise<SessionRow[]>;
  /** Records a decision and bumps the session's counters; `not_found` without the session, `conflict` if the id exists. */
  recordDecision(row: DecisionRow): Promise<void>;
  /** Records decisions (of any sessions) in one transaction: all or none, errors as recordDecision. */
  recordDecisions(rows: readonly DecisionRow[]): Promise<void>;
  /** The session's decisions, in time order. */
  listDecisions(sessionId: string): Promise<DecisionRow[]>;
  /** Adds a pending review; `conflict` if the id exists. Emits an event. */
  createReview(row: Omit<ReviewRow, "status" | "actions" | "decidedAt">): Promise<ReviewRow>;
  getReview(id: string): Promise<ReviewRow | undefined>;
  /** Reviews, newest first; default limit 100. */
  listReviews(filter?: { status?: ReviewStatus; limit?: number }): Promise<ReviewRow[]>;
  /**
   * Adds a reviewer's action atomically (a transaction, SELECT ... FOR UPDATE on PostgreSQL): throws
   * StoreError("not_found") if no such review, StoreError("conflict") if it is no longer pending, has
   * expired at `action.at`, or this reviewer already acted. A reject decides it at once (status
   * rejected); approvals decide it when the count of distinct approving reviewers reaches
   * approvalsRequired. Returns the updated row. Emits an event.
   */
  addReviewAction(id: string, action: ReviewAction): Promise<ReviewRow>;
  /**
   * Ends a pending review as expired or cancelled; returns the row as it is then, unchanged if it was
   * already decided, or undefined if there is no such review. Emits an event when it changes the review.
   */
  closeReview(id: string, status: "expired" | "cancelled", at: Date): Promise<ReviewRow | undefined>;
  /** Adds a grant; `not_found` without the review, `conflict` if the id or a grant for that review exists. Emits an event. */
  createGrant(row: Omit<GrantRow, "revokedAt">): Promise<GrantRow>;
  /** Grants of subject on connection, granted at or before `now`, expiring after it, not revoked; the longest-lasting first. */
  activeGrants(subject: string, connection: string, now: Date): Promise<GrantRow[]>;
  getGrant(id: string): Promise<GrantRow | undefined>;
  /** Revokes a grant; `not_found` if there is none. Revoking twice keeps the first time. Emits an event when it changes the grant. */
  revokeGrant(id: string, at: Date): Promise<void>;
  /** Deletes ended sessions (and their decisions) that ended before `before`. Returns the number of sessions deleted. */
  pruneSessions(before: Date): Promise<number>;
  /**
   * Calls `listener` on every change to a review or grant: this instance's own, before the changing
   * method resolves, and (PostgreSQL) those of every other store on the same database. Returns the
   * unsubscribe function.
   */
  subscribe(listener: (event: StoreEvent) => void): () => void;
  /** Closes connections; later calls fail with `unavailable`. Safe to call twice. */
  close(): Promise<void>;
}

/** The outcome {@link Store.endAbandonedSessions} gives sessions a crashed gateway left open. */
export const ABANDONED_OUTCOME = "abandoned";
