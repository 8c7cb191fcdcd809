import type { Action, ConnectionDecision, ConnectionRequest, PolicyRule, StatementDecision, StatementRequest } from "./types.js";
import { windowRemaining } from "./window.js";

/** A policy that applies now, and until when it does (undefined: no end of its own). */
interface Applicable {
  readonly policy: PolicyRule;
  readonly endsAt: number | undefined;
}

/**
 * The policies that apply now: they bind one of the principal's groups to the connection, `now` is
 * inside one of their windows (if they have any), and a jit policy also needs an active grant.
 */
function applicable(request: ConnectionRequest): Applicable[] {
  const groups = new Set(request.principal.groups);
  const now = request.now.getTime();
  const out: Applicable[] = [];
  for (const policy of request.policies) {
    if (!policy.connections.includes(request.connection) || !policy.groups.some((group) => groups.has(group))) continue;
    let endsAt: number | undefined;
    if (policy.windows !== undefined && policy.windows.length > 0) {
      const open = policy.windows.map((window) => windowRemaining(window, request.now)).filter((left): left is number => left !== undefined);
      if (open.length === 0) continue;
      endsAt = now + Math.max(...open);
    }
    if (policy.access === "jit") {
      const grants = (request.grants ?? []).filter((grant) => grant.connection === request.connection && grant.expiresAt.getTime() > now);
      if (grants.length === 0) continue;
      const grantEnd = Math.max(...grants.map((grant) => grant.expiresAt.getTime()));
      endsAt = endsAt === undefined ? grantEnd : Math.min(endsAt, grantEnd);
    }
    out.push({ policy, endsAt });
  }
  return out;
}

/** The policies that apply to the principal on the connection now. */
export function matchingPolicies(request: ConnectionRequest): PolicyRule[] {
  return applicable(request).map((entry) => entry.policy);
}

/** Decides whether a session may start. Default deny: no matching policy, no session. */
export function decideConnection(request: ConnectionRequest): ConnectionDecision {
  const found = applicable(request);
  const matched = found.map((entry) => entry.policy);
  if (matched.length === 0) {
    const groups = request.principal.groups.length === 0 ? "no groups" : `groups ${request.principal.groups.map((g) => `\`${g}\``).join(", ")}`;
    return {
      effect: "deny",
      rules: [],
      reasons: [`no policy grants ${groups} access to connection \`${request.connection}\``],
      unmasked: false,
    };
  }
  // The session may last as long as the longest-lasting policy that lets it in, each bounded by its
  // own max_session, window and grant.
  const ends = found.map(({ policy, endsAt }) => {
    const bySession = policy.maxSessionMs === undefined ? undefined : request.now.getTime() + policy.maxSessionMs;
    if (bySession === undefined) return endsAt;
    return endsAt === undefined ? bySession : Math.min(bySession, endsAt);
  });
  const sessionEnd = ends.some((end) => end === undefined) ? undefined : Math.max(...(ends as number[]));
  const decision: ConnectionDecision = {
    effect: "allow",
    rules: matched.map((policy) => policy.name),
    reasons: matched.map((policy) => `policy \`${policy.name}\` grants access to connection \`${request.connection}\``),
    unmasked: matched.some((policy) => policy.unmasked === true),
  };
  const rowLimits = matched.flatMap((policy) => (policy.maxRows === undefined ? [] : [policy.maxRows]));
  const limited = rowLimits.length === 0 ? decision : { ...decision, maxRows: Math.min(...rowLimits) };
  return sessionEnd === undefined ? limited : { ...limited, sessionEndsAt: new Date(sessionEnd) };
}

const STRICTNESS: Readonly<Record<Action, number>> = { allow: 0, review: 1, deny: 2 };

/**
 * Decides on a statement from the classes its analysis found. For each class, the most permissive
 * matching policy gives the action (policies grant); across classes, the strictest action wins, so
 * a string of several statements gets the strictest decision of its parts. Deny wins over review,
 * review over allow; no matching policy or no class at all is a deny.
 */
export function decideStatement(request: StatementRequest): StatementDecision {
  const matched = matchingPolicies(request);
  if (matched.length === 0) return { effect: "deny", reasons: [`no policy grants access to connection \`${request.connection}\` now`] };
  if (request.classes.length === 0) return { effect: "deny", reasons: ["the statement has no class: nothing to allow"] };
  const asked: { label: string; actionOf: (policy: PolicyRule) => Action }[] = [...new Set(request.classes)].map((statementClass) => ({
    label: statementClass,
    actionOf: (policy: PolicyRule) => policy.actions[statementClass],
  }));
  if (request.unboundedWrite === true) asked.push({ label: "unbounded write", actionOf: (policy) => policy.unboundedWrite ?? "deny" });
  let decided: { action: Action; policy: PolicyRule; label: string } | undefined;
  for (const { label, actionOf } of asked) {
    let best: { action: Action; policy: PolicyRule } | undefined;
    for (const policy of matched) {
      const action = actionOf(policy);
      if (best === undefined || STRICTNESS[action] < STRICTNESS[best.action]) best = { action, policy };
    }
    if (best !== undefined && (decided === undefined || STRICTNESS[best.action] > STRICTNESS[decided.action])) decided = { ...best, label };
  }
  if (decided === undefined) return { effect: "deny", reasons: ["no policy decided"] };
  const rowLimits = matched.flatMap((policy) => (policy.maxRows === undefined ? [] : [policy.maxRows]));
  const review = decided.action === "review";
  return {
    effect: decided.action,
    rule: decided.policy.name,
    reasons: [`${decided.label}: ${decided.action} by policy \`${decided.policy.name}\``],
    ...(rowLimits.length === 0 ? {} : { maxRows: Math.min(...rowLimits) }),
    ...(review && decided.policy.reviewers !== undefined ? { reviewers: decided.policy.reviewers } : {}),
    ...(review && decided.policy.reviewTimeoutMs !== undefined ? { reviewTimeoutMs: decided.policy.reviewTimeoutMs } : {}),
    ...(review ? { approvals: decided.policy.approvals ?? 1 } : {}),
  };
}
