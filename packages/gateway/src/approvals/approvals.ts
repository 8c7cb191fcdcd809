import type { Logger } from "@airlock/runtime";
import { randomUUID } from "node:crypto";
import type { GatewayMetrics } from "../metrics/metrics.js";
import type { ReviewAction, ReviewRow, Store } from "../store/index.js";

/** A reviewer of gateway.yaml. */
export interface Reviewer {
  readonly name: string;
  readonly groups: readonly string[];
  /** OIDC subjects that are this same person. */
  readonly subjects: readonly string[];
}

/** Why a reviewer's action was refused. */
export type ApprovalErrorCode = "not_found" | "not_pending" | "self_approval" | "not_a_reviewer" | "already_acted";

/** A reviewer's action that cannot be taken; the message is fit for the reviewer. */
export class ApprovalError extends Error {
  readonly code: ApprovalErrorCode;

  constructor(code: ApprovalErrorCode, message: string) {
    super(message);
    this.name = "ApprovalError";
    this.code = code;
  }
}

/** What a held statement or an access request asks for. */
export interface ReviewRequest {
  readonly kind: "statement" | "access";
  readonly sessionId: string;
  readonly subject: string;
  readonly connection: string;
  readonly sql: string;
  readonly classes: readonly string[];
  readonly rule: string;
  readonly reasons: readonly string[];
  readonly reviewerGroups: readonly string[];
  readonly approvalsRequired: number;
  readonly timeoutMs: number;
  readonly durationMs?: number;
  readonly reason?: string;
}

/** A review in flight: its row as created, and how it ends. */
export interface PendingReview {
  readonly review: ReviewRow;
  readonly outcome: Promise<ReviewRow>;
  /** Ends the review as cancelled (the client went away). */
  cancel(): void;
}

/** Options of {@link createApprovals}. */
export interface ApprovalsOptions {
  readonly store: Store;
  readonly reviewers: readonly Reviewer[];
  readonly gatewayId: string;
  readonly webhookUrl?: string;
  readonly publicUrl?: string;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  readonly now: () => Date;
  readonly fetch?: typeof fetch;
}

/** Reviews: held statements and access requests, approved or rejected by reviewers. */
export interface Approvals {
  request(request: ReviewRequest): Promise<PendingReview>;
  /** A reviewer approves or rejects; the store decides atomically, whichever gateway it reaches. */
  act(reviewer: Reviewer, id: string, action: "approve" | "reject", reason: string): Promise<ReviewRow>;
  /** Where a reviewer acts on a review, for notices and webhooks. */
  describe(id: string): string;
  close(): void;
}

/** Creates the approvals service over the store. */
export function createApprovals(options: ApprovalsOptions): Approvals {
  const { store, logger, metrics } = options;
  const waiting = new Map<string, (row: ReviewRow) => void>();
  const unsubscribe = store.subscribe((event) => {
    if (event.type !== "review" || !waiting.has(event.id)) return;
    store.getReview(event.id).then(
      (row) => {
        if (row !== undefined && row.status !== "pending") waiting.get(event.id)?.(row);
      },
      (error: unknown) => logger.warn({ review: event.id, err: String(error) }, "cannot read a review after its event"),
    );
  });
  const post = options.fetch ?? fetch;
  const where = (id: string) =>
    `\`airlock reviews approve ${id}\`${options.publicUrl === undefined ? "" : ` (--api ${options.publicUrl})`} or POST ${options.publicUrl ?? ""}/api/v1/reviews/${id}/approve`;

  const announce = (row: ReviewRow) => {
    if (options.webhookUrl === undefined) return;
    const what = row.kind === "access" ? `access to \`${row.connection}\` for ${Math.round((row.durationMs ?? 0) / 60_000)} min` : `\`${truncate(row.sql, 400)}\` on \`${row.connection}\``;
    const text = `Airlock review ${row.id}: ${row.subject} asks for ${what} (${row.reasons.join("; ")}${row.reason === undefined ? "" : `; reason: ${row.reason}`}). Approve with ${where(row.id)}; expires ${row.expiresAt.toISOString()}.`;
    post(options.webhookUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ text, review: { id: row.id, kind: row.kind, subject: row.subject, connection: row.connection, reviewers: row.reviewerGroups } }) })
      .then((response) => {
        if (!response.ok) logger.warn({ review: row.id, status: response.status }, "the review webhook answered with an error");
      })
      .catch((error: unknown) => logger.warn({ review: row.id, err: String(error) }, "the review webhook failed"));
  };

  return {
    async request(request) {
      const createdAt = options.now();
      const review = await store.createReview({
        id: randomUUID(),
        kind: request.kind,
        sessionId: request.sessionId,
        subject: request.subject,
        connection: request.connection,
        sql: request.sql,
        classes: [...request.classes],
        rule: request.rule,
        reasons: [...request.reasons],
        reviewerGroups: [...request.reviewerGroups],
        approvalsRequired: request.approvalsRequired,
        createdAt,
        expiresAt: new Date(createdAt.getTime() + request.timeoutMs),
        gatewayId: options.gatewayId,
        ...(request.durationMs === undefined ? {} : { durationMs: request.durationMs }),
        ...(request.reason === undefined ? {} : { reason: request.reason }),
      });
      metrics.reviewsPending.inc();
      logger.info({ review: review.id, kind: review.kind, rule: review.rule }, "review requested");
      announce(review);
      let timer: NodeJS.Timeout | undefined;
      const outcome = new Promise<ReviewRow>((resolve) => {
        const finish = (row: ReviewRow) => {
          if (!waiting.has(review.id)) return;
          waiting.delete(review.id);
          if (timer !== undefined) clearTimeout(timer);
          metrics.reviewsPending.dec();
          metrics.reviewWaitSeconds.observe({ outcome: row.status }, (options.now().getTime() - createdAt.getTime()) / 1000);
          resolve(row);
        };
        waiting.set(review.id, finish);
        timer = setTimeout(() => {
          store.closeReview(review.id, "expired", options.now()).then(
            (row) => row !== undefined && finish(row),
            (error: unknown) => logger.error({ review: review.id, err: String(error) }, "cannot expire a review"),
          );
        }, request.timeoutMs);
        timer.unref();
      });
      return {
        review,
        outcome,
        cancel() {
          if (!waiting.has(review.id)) return;
          store.closeReview(review.id, "cancelled", options.now()).then(
            (row) => row !== undefined && waiting.get(review.id)?.(row),
            (error: unknown) => logger.warn({ review: review.id, err: String(error) }, "cannot cancel a review"),
          );
        },
      };
    },

    async act(reviewer, id, action, reason) {
      const review = await store.getReview(id);
      if (review === undefined) throw new ApprovalError("not_found", `no review is named \`${id}\``);
      if (review.status !== "pending") throw new ApprovalError("not_pending", `review \`${id}\` is already ${review.status}`);
      if (reviewer.name === review.subject || reviewer.subjects.includes(review.subject)) {
        throw new ApprovalError("self_approval", `review \`${id}\` is your own request: someone else must decide it`);
      }
      if (review.reviewerGroups.length > 0 && !reviewer.groups.some((group) => review.reviewerGroups.includes(group))) {
        throw new ApprovalError("not_a_reviewer", `review \`${id}\` needs a reviewer of ${review.reviewerGroups.map((group) => `\`${group}\``).join(", ")}`);
      }
      const entry: ReviewAction = { reviewer: reviewer.name, action, reason, at: options.now() };
      try {
        const row = await store.addReviewAction(id, entry);
        logger.info({ review: id, reviewer: reviewer.name, action, status: row.status }, "review action");
        if (row.kind === "access" && row.status === "approved") {
          // The grant is made where the approval lands, so it exists whichever gateway took the request.
          const grantedAt = options.now();
          await store.createGrant({
            id: randomUUID(),
            subject: row.subject,
            connection: row.connection,
            reviewId: row.id,
            grantedAt,
            expiresAt: new Date(grantedAt.getTime() + (row.durationMs ?? 0)),
          });
        }
        return row;
      } catch (error) {
        if ((error as { code?: string }).code === "conflict") throw new ApprovalError("already_acted", `review \`${id}\` is no longer pending, or you already acted on it`);
        throw error;
      }
    },

    describe: where,

    close() {
      unsubscribe();
      waiting.clear();
    },
  };
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
