import {
  StoreError,
  type DecisionRow,
  type GrantRow,
  type ReviewAction,
  type ReviewRow,
  type ReviewStatus,
  type RecordingSeal,
  type SessionFilter,
  type SessionStartRow,
  type StoreEvent,
  type StoreLogger,
} from "./types.js";

/** The default and the ceiling of list limits. */
export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 10_000;
/** The largest record count a session's end can keep. */
const MAX_RECORDS = 2 ** 31 - 1;

const REVIEW_STATUSES: readonly ReviewStatus[] = ["pending", "approved", "rejected", "expired", "cancelled"];

/** Throws a TypeError naming `name` unless `value` is a valid Date. */
export function checkDate(value: unknown, name: string): asserts value is Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new TypeError(`${name} must be a valid Date`);
}

/** Throws a TypeError naming `name` unless `value` is a non-empty string. */
export function checkId(value: unknown, name: string): asserts value is string {
  if (typeof value !== "string" || value === "") throw new TypeError(`${name} must be a non-empty string`);
}

/** Throws a TypeError naming `name` unless `value` is a string. */
export function checkString(value: unknown, name: string): asserts value is string {
  if (typeof value !== "string") throw new TypeError(`${name} must be a string`);
}

/** Throws a TypeError naming `name` unless `value` is an array of strings. */
export function checkStrings(value: unknown, name: string): asserts value is string[] {
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) throw new TypeError(`${name} must be an array of strings`);
}

/** Throws a TypeError naming `name` unless `value` is one of `allowed`. */
export function checkOneOf<T extends string>(value: unknown, allowed: readonly T[], name: string): asserts value is T {
  if (!allowed.includes(value as T)) throw new TypeError(`${name} must be one of ${allowed.map((item) => `\`${item}\``).join(", ")}`);
}

/** The limit of a list call: the default when absent, a TypeError when not an integer in 1..MAX_LIMIT. */
export function listLimit(limit: number | undefined, name: string): number {
  if (limit === undefined) return DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new TypeError(`${name} must be an integer from 1 to ${MAX_LIMIT}`);
  return limit;
}

/** Checks the arguments of startSession. */
export function checkSessionStart(row: SessionStartRow): void {
  checkId(row.id, "row.id");
  checkString(row.subject, "row.subject");
  checkString(row.issuer, "row.issuer");
  checkStrings(row.groups, "row.groups");
  checkString(row.connection, "row.connection");
  checkOneOf(row.transport, ["native", "tunnel"], "row.transport");
  checkString(row.clientAddress, "row.clientAddress");
  checkString(row.gatewayId, "row.gatewayId");
  checkDate(row.startedAt, "row.startedAt");
}

/** Checks the optional recording seal of endSession. */
export function checkRecordingSeal(recording: RecordingSeal | undefined): void {
  if (recording === undefined) return;
  if (typeof recording !== "object" || recording === null) throw new TypeError("recording must be an object");
  // Both backends keep it in a 32-bit integer column.
  if (!Number.isInteger(recording.records) || recording.records < 0 || recording.records > MAX_RECORDS) {
    throw new TypeError(`recording.records must be an integer from 0 to ${MAX_RECORDS}`);
  }
  checkId(recording.lastHash, "recording.lastHash");
}

/** Checks the arguments of listSessions. */
export function checkSessionFilter(filter: SessionFilter): number {
  if (filter.subject !== undefined) checkString(filter.subject, "filter.subject");
  if (filter.connection !== undefined) checkString(filter.connection, "filter.connection");
  if (filter.from !== undefined) checkDate(filter.from, "filter.from");
  if (filter.to !== undefined) checkDate(filter.to, "filter.to");
  if (filter.decision !== undefined) checkOneOf(filter.decision, ["allow", "deny", "review"], "filter.decision");
  return listLimit(filter.limit, "filter.limit");
}

/** Checks the arguments of recordDecision. */
export function checkDecision(row: DecisionRow): void {
  checkId(row.id, "row.id");
  checkId(row.sessionId, "row.sessionId");
  checkDate(row.at, "row.at");
  checkString(row.sql, "row.sql");
  checkStrings(row.classes, "row.classes");
  checkOneOf(row.effect, ["allow", "deny", "review"], "row.effect");
  if (row.rule !== undefined) checkString(row.rule, "row.rule");
  checkStrings(row.reasons, "row.reasons");
  if (row.reviewId !== undefined) checkString(row.reviewId, "row.reviewId");
}

/** Checks the arguments of createReview. */
export function checkReview(row: Omit<ReviewRow, "status" | "actions" | "decidedAt">): void {
  checkId(row.id, "row.id");
  checkString(row.sessionId, "row.sessionId");
  checkString(row.subject, "row.subject");
  checkString(row.connection, "row.connection");
  checkString(row.sql, "row.sql");
  checkStrings(row.classes, "row.classes");
  checkString(row.rule, "row.rule");
  checkStrings(row.reasons, "row.reasons");
  checkStrings(row.reviewerGroups, "row.reviewerGroups");
  if (!Number.isInteger(row.approvalsRequired) || row.approvalsRequired < 1) throw new TypeError("row.approvalsRequired must be an integer of at least 1");
  checkDate(row.createdAt, "row.createdAt");
  checkDate(row.expiresAt, "row.expiresAt");
  checkString(row.gatewayId, "row.gatewayId");
  checkOneOf(row.kind, ["statement", "access"], "row.kind");
  if (row.durationMs !== undefined && (!Number.isSafeInteger(row.durationMs) || row.durationMs < 0)) {
    throw new TypeError("row.durationMs must be a non-negative integer");
  }
  if (row.reason !== undefined) checkString(row.reason, "row.reason");
}

/** Checks the arguments of addReviewAction. */
export function checkReviewAction(id: string, action: ReviewAction): void {
  checkId(id, "id");
  checkId(action.reviewer, "action.reviewer");
  checkOneOf(action.action, ["approve", "reject"], "action.action");
  checkString(action.reason, "action.reason");
  checkDate(action.at, "action.at");
}

/** Checks the status filter of listReviews. */
export function checkReviewStatus(status: unknown, name: string): asserts status is ReviewStatus {
  checkOneOf(status, REVIEW_STATUSES, name);
}

/** Checks the arguments of createGrant. */
export function checkGrant(row: Omit<GrantRow, "revokedAt">): void {
  checkId(row.id, "row.id");
  checkString(row.subject, "row.subject");
  checkString(row.connection, "row.connection");
  checkId(row.reviewId, "row.reviewId");
  checkDate(row.grantedAt, "row.grantedAt");
  checkDate(row.expiresAt, "row.expiresAt");
}

/**
 * What a reviewer's action does to a review: the status it leaves and whether that decides it.
 * Throws `conflict` when the review is no longer pending, has expired at the action's time, or the
 * reviewer already acted. Both backends call it inside the transaction that holds the review.
 */
export function applyReviewAction(review: ReviewRow, action: ReviewAction): { status: ReviewStatus; decidedAt?: Date } {
  if (review.status !== "pending") throw new StoreError("conflict", `review \`${review.id}\` is already ${review.status}`);
  if (action.at.getTime() >= review.expiresAt.getTime()) {
    throw new StoreError("conflict", `review \`${review.id}\` expired at ${review.expiresAt.toISOString()}`);
  }
  if (review.actions.some((previous) => previous.reviewer === action.reviewer)) {
    throw new StoreError("conflict", `reviewer \`${action.reviewer}\` already acted on review \`${review.id}\``);
  }
  if (action.action === "reject") return { status: "rejected", decidedAt: action.at };
  const approvers = new Set(review.actions.filter((previous) => previous.action === "approve").map((previous) => previous.reviewer));
  approvers.add(action.reviewer);
  return approvers.size >= review.approvalsRequired ? { status: "approved", decidedAt: action.at } : { status: "pending" };
}

/** Validates a NOTIFY payload; undefined when it is not a store event. */
export function parseEvent(payload: string | undefined): StoreEvent | undefined {
  if (payload === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const { type, id } = value as { type?: unknown; id?: unknown };
  if ((type !== "review" && type !== "grant") || typeof id !== "string" || id === "") return undefined;
  return { type, id };
}

/** The subscribers of one store instance. */
export interface Subscribers {
  subscribe(listener: (event: StoreEvent) => void): () => void;
  emit(event: StoreEvent): void;
  clear(): void;
}

/** Subscribers whose exceptions are logged, never thrown into the store operation that emitted. */
export function createSubscribers(logger: StoreLogger | undefined): Subscribers {
  const listeners = new Set<(event: StoreEvent) => void>();
  return {
    subscribe(listener) {
      if (typeof listener !== "function") throw new TypeError("listener must be a function");
      // A wrapper, so subscribing the same function twice gives two independent subscriptions.
      const entry = (event: StoreEvent): void => listener(event);
      listeners.add(entry);
      return () => {
        listeners.delete(entry);
      };
    },
    emit(event) {
      for (const listener of [...listeners]) {
        try {
          listener(event);
        } catch (error) {
          logger?.warn({ event, error: error instanceof Error ? error.message : String(error) }, "store event listener threw");
        }
      }
    },
    clear() {
      listeners.clear();
    },
  };
}

/** A fresh copy of the action, so callers never share Date objects with the store. */
export function copyAction(action: ReviewAction): ReviewAction {
  return { reviewer: action.reviewer, action: action.action, reason: action.reason, at: new Date(action.at.getTime()) };
}
