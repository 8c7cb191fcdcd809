import { decideConnection, type ConnectionDecision, type Grant } from "@airlock/policy";
import type { SessionRequest } from "@airlock/proto";
import type { Logger } from "@airlock/runtime";
import { randomUUID } from "node:crypto";
import type { Identity } from "../identity/index.js";
import type { AgentCall } from "../link/agent-hub.js";
import type { MaskCatalog } from "../mask/index.js";
import type { SessionRecording } from "../recording/index.js";
import { redactSecrets } from "../recording/secrets.js";
import type { ConnectionMasking, GatewayServices, SessionTarget } from "./context.js";
import type { ReviewOutcome, StatementEvent } from "./postgres-statements.js";

/**
 * What every protocol's session does the same way around its relay: admitting an identity
 * (grants, connection policy, the masking catalog, the recording's start), recording and counting
 * statement decisions, holding statements for review, and the bookkeeping of the end.
 */

/** Who and where a session is, for the shared steps. */
export interface SessionScope {
  readonly id: string;
  readonly services: GatewayServices;
  readonly target: SessionTarget;
  readonly logger: Logger;
}

/** A session let in: what the connection policy said and what the session keeps. */
export interface Admitted {
  readonly ok: true;
  readonly decision: ConnectionDecision;
  readonly grants: Grant[];
  /** Present when the identity is masked on a connection that masks. */
  readonly masking?: { readonly config: ConnectionMasking; readonly catalog: MaskCatalog };
  /** Absent only when recording failed and the connection does not fail closed. */
  readonly recording?: SessionRecording;
}

/** Why a session was refused before it reached the database; `message` is for the client. */
export interface Refused {
  readonly ok: false;
  readonly reason: "policy_denied" | "masking_unavailable" | "recording_failed";
  readonly message: string;
}

/**
 * Admits an identity to the session's connection: active grants, the connection-level decision,
 * the masking catalog (read through the agent; unreadable means refused), the recording opened
 * and its session_start durable (unless recording may fail open).
 */
export async function admitSession(scope: SessionScope, identity: Identity): Promise<Admitted | Refused> {
  const { services, target, logger } = scope;
  const connection = target.connection.name;
  const grants = (await services.store.activeGrants(identity.subject, connection, services.now())).map((grant) => ({ connection: grant.connection, expiresAt: grant.expiresAt }));
  const decision = decideConnection({ principal: identity, connection, now: services.now(), policies: services.policies, grants });
  if (decision.effect === "deny") {
    logger.warn({ reasons: decision.reasons }, "session refused by policy");
    return { ok: false, reason: "policy_denied", message: `access to connection \`${connection}\` is not granted to this identity` };
  }
  let masking: Admitted["masking"];
  const config = services.masking.get(connection);
  if (config !== undefined && !decision.unmasked) {
    try {
      masking = { config, catalog: await config.catalog.get() };
    } catch (error) {
      logger.error({ err: (error as Error).message }, "cannot read the catalog masking needs");
      return { ok: false, reason: "masking_unavailable", message: `connection \`${connection}\` is unavailable: masking cannot read its catalog` };
    }
  }
  let recording: SessionRecording | undefined;
  try {
    recording = await services.recorder.open(scope.id, services.now());
    await recording.append({
      type: "session_start",
      session: scope.id,
      gateway: services.gatewayId,
      connection,
      protocol: target.connection.protocol,
      transport: target.transport.kind,
      client: target.transport.remoteAddress,
      identity: { subject: identity.subject, issuer: identity.issuer, issuerUrl: identity.issuerUrl, groups: identity.groups, claims: recordedClaims(identity.claims) },
      rules: decision.rules,
    });
  } catch (error) {
    logger.error({ err: (error as Error).message }, "cannot record the session");
    if (services.recording.failClosed) return { ok: false, reason: "recording_failed", message: "the session cannot be recorded, so it is refused" };
    recording = undefined;
  }
  return { ok: true, decision, grants, ...(masking === undefined ? {} : { masking }), ...(recording === undefined ? {} : { recording }) };
}

/** Stores the session's start (and its recording's path); decisions and the end wait for it. */
export function storeSessionStart(scope: SessionScope, identity: Identity, recordingPath: string | undefined): Promise<unknown> {
  const { services, target } = scope;
  const stored = services.store
    .startSession({
      id: scope.id,
      subject: identity.subject,
      issuer: identity.issuer,
      groups: [...identity.groups],
      connection: target.connection.name,
      transport: target.transport.kind,
      clientAddress: target.transport.remoteAddress,
      gatewayId: services.gatewayId,
      startedAt: services.now(),
    })
    .then(() => (recordingPath === undefined ? undefined : services.store.setSessionRecording(scope.id, recordingPath)));
  stored.catch((error: unknown) => scope.logger.error({ err: String(error) }, "cannot record the session start"));
  return stored;
}

/** A statement's decision: into the recording, the audit log, the metrics, the log (unless allowed) and the store. */
export function recordStatementDecision(scope: SessionScope, identity: Identity | undefined, recording: SessionRecording | undefined, storedStart: Promise<unknown>, statement: StatementEvent): void {
  const { services } = scope;
  const connection = scope.target.connection.name;
  // A password in the text (CREATE ROLE ... PASSWORD, IDENTIFIED BY, createUser's pwd) is never kept.
  const event = { ...statement, sql: redactSecrets(statement.sql) };
  recording?.note({
    type: "statement",
    protocol: event.protocol,
    sql: event.sql,
    classes: event.classes,
    effect: event.decision.effect,
    ...(event.decision.rule === undefined ? {} : { rule: event.decision.rule }),
    reasons: event.decision.reasons,
    ...(event.copiesData === true ? { copiesData: true } : {}),
  });
  services.audit({
    time: services.now().toISOString(),
    type: "decision",
    session: scope.id,
    gateway: services.gatewayId,
    subject: identity?.subject,
    issuer: identity?.issuer,
    groups: identity?.groups,
    connection,
    effect: event.decision.effect,
    rule: event.decision.rule,
    classes: event.classes,
    reasons: event.decision.reasons,
    sql: event.sql,
  });
  for (const statementClass of event.classes.length === 0 ? ["unparsed"] : event.classes) {
    services.metrics.statements.inc({ connection, class: statementClass, decision: event.decision.effect });
  }
  if (event.decision.effect !== "allow") {
    scope.logger.info({ effect: event.decision.effect, rule: event.decision.rule, classes: event.classes, reasons: event.decision.reasons }, "statement decision");
  }
  services.decisions.add(
    {
      id: randomUUID(),
      sessionId: scope.id,
      at: services.now(),
      sql: event.sql,
      classes: [...event.classes],
      effect: event.decision.effect,
      ...(event.decision.rule === undefined ? {} : { rule: event.decision.rule }),
      reasons: [...event.decision.reasons],
    },
    storedStart,
  );
}

/** A held statement: the review, the client told how to approve it, and the outcome recorded. */
export async function reviewStatement(
  scope: SessionScope,
  identity: Identity,
  event: StatementEvent,
  hooks: { readonly onPending: (cancel: () => void) => void; readonly notify: (text: string, detail: string) => void; readonly recording: SessionRecording | undefined },
): Promise<ReviewOutcome> {
  const { services, logger } = scope;
  const decision = event.decision;
  const pending = await services.approvals.request({
    kind: "statement",
    sessionId: scope.id,
    subject: identity.subject,
    connection: scope.target.connection.name,
    sql: redactSecrets(event.sql),
    classes: event.classes,
    rule: decision.rule ?? "",
    reasons: decision.reasons,
    reviewerGroups: decision.reviewers ?? [],
    approvalsRequired: decision.approvals ?? 1,
    timeoutMs: decision.reviewTimeoutMs ?? 600_000,
  });
  const id = pending.review.id;
  hooks.onPending(() => pending.cancel());
  logger.info({ review: id, rule: decision.rule }, "statement held for review");
  hooks.notify(`airlock: statement held for review ${id}: approve with ${services.approvals.describe(id)}`, decision.reasons.join("; "));
  const row = await pending.outcome;
  logger.info({ review: id, status: row.status }, "review ended");
  hooks.recording?.note({ type: "review", review: id, status: row.status, actions: row.actions.map((action) => ({ ...action, at: action.at.toISOString() })) });
  if (row.status === "approved") return { approved: true };
  const last = row.actions.filter((action) => action.action === "reject").at(-1);
  const why = row.status === "rejected" ? `rejected by ${last?.reviewer ?? "a reviewer"}${last?.reason ? `: ${last.reason}` : ""}` : row.status === "expired" ? "no reviewer decided in time" : row.status;
  return { approved: false, message: `statement not approved (review ${id}): ${why}` };
}

/**
 * Runs `send` (a message on to the database) once everything the session recorded so far is
 * durable; if the recording cannot be written, `fail` ends the session when recording fails
 * closed, else the message goes anyway.
 */
export function sendAfterRecording(scope: SessionScope, recording: SessionRecording | undefined, send: () => void, fail: () => void): void {
  if (recording === undefined) {
    send();
    return;
  }
  recording.sync().then(send, () => (scope.services.recording.failClosed ? fail() : send()));
}

/** The end of a session: metrics, the log, the recording's session_end, and the store's end row. */
export function endSessionBookkeeping(
  scope: SessionScope,
  end: { readonly outcome: string; readonly counted: boolean; readonly stored: boolean; readonly storedStart: Promise<unknown>; readonly recording: SessionRecording | undefined; readonly statements: number; readonly openedAt: number },
): void {
  const { services, target, logger } = scope;
  const connection = target.connection.name;
  if (end.counted) {
    services.metrics.sessionsActive.dec({ connection, transport: target.transport.kind });
    services.metrics.sessions.inc({ connection, transport: target.transport.kind, outcome: end.outcome });
    logger.info({ outcome: end.outcome }, "session ended");
  }
  const finished =
    end.recording === undefined
      ? Promise.resolve(undefined)
      : end.recording.finish({ type: "session_end", outcome: end.outcome, statements: end.statements, ms: Math.round(performance.now() - end.openedAt) }).catch((error: unknown) => {
          logger.error({ err: String(error) }, "cannot finish the recording");
          return undefined;
        });
  if (!end.stored) return;
  finished
    .then(async (sealed) => {
      // The counters the end row closes over include every decision of the session.
      await end.storedStart.catch(() => undefined);
      await services.decisions.flush();
      await services.store.endSession(scope.id, services.now(), end.outcome, sealed);
    })
    .catch((error: unknown) => logger.error({ err: String(error) }, "cannot record the session end"));
}

/** Claims kept in the recording: who and where from, never the token itself. */
const RECORDED_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "repository", "repository_owner", "ref", "ref_type", "environment", "workflow", "job_workflow_ref", "run_id", "actor", "project_path", "ref_protected", "pipeline_id", "namespace_path", "user_login", "email", "groups"];

export function recordedClaims(claims: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of RECORDED_CLAIMS) if (claims[key] !== undefined) out[key] = claims[key];
  return out;
}

/** The agent's first message on a session's call (the greeting, what its login settled, or why it could not open); the call is left paused. */
export function firstAgentMessage(call: AgentCall): Promise<SessionRequest | undefined> {
  return new Promise((resolve) => {
    const cleanup = () => {
      call.off("data", onData);
      call.off("end", onEnd);
      call.off("error", onEnd);
    };
    const onData = (message: SessionRequest) => {
      cleanup();
      call.pause();
      resolve(message);
    };
    const onEnd = () => {
      cleanup();
      resolve(undefined);
    };
    call.on("data", onData);
    call.once("end", onEnd);
    call.once("error", onEnd);
    call.resume();
  });
}
