import type { Action, ConnectionDecision, ConnectionRequest, PolicyRule, StatementDecision, StatementRequest } from "./types.js";

/** The policies that bind one of the principal's groups to the connection. */
export function matchingPolicies(request: ConnectionRequest): PolicyRule[] {
  const groups = new Set(request.principal.groups);
  return request.policies.filter((policy) => policy.connections.includes(request.connection) && policy.groups.some((group) => groups.has(group)));
}

/** Decides whether a session may start. Default deny: no matching policy, no session. */
export function decideConnection(request: ConnectionRequest): ConnectionDecision {
  const matched = matchingPolicies(request);
  if (matched.length === 0) {
    const groups = request.principal.groups.length === 0 ? "no groups" : `groups ${request.principal.groups.map((g) => `\`${g}\``).join(", ")}`;
    return {
      effect: "deny",
      rules: [],
      reasons: [`no policy grants ${groups} access to connection \`${request.connection}\``],
      unmasked: false,
    };
  }
  const limits = matched.flatMap((policy) => (policy.maxSessionMs === undefined ? [] : [policy.maxSessionMs]));
  const decision: ConnectionDecision = {
    effect: "allow",
    rules: matched.map((policy) => policy.name),
    reasons: matched.map((policy) => `policy \`${policy.name}\` grants access to connection \`${request.connection}\``),
    unmasked: matched.some((policy) => policy.unmasked === true),
  };
  return limits.length === 0 ? decision : { ...decision, sessionEndsAt: new Date(request.now.getTime() + Math.min(...limits)) };
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
  if (matched.length === 0) return { effect: "deny", reasons: [`no policy grants access to connection \`${request.connection}\``] };
  if (request.classes.length === 0) return { effect: "deny", reasons: ["the statement has no class: nothing to allow"] };
  let decided: { action: Action; policy: PolicyRule; statementClass: string } | undefined;
  for (const statementClass of new Set(request.classes)) {
    let best: { action: Action; policy: PolicyRule } | undefined;
    for (const policy of matched) {
      const action = policy.actions[statementClass];
      if (best === undefined || STRICTNESS[action] < STRICTNESS[best.action]) best = { action, policy };
    }
    if (best !== undefined && (decided === undefined || STRICTNESS[best.action] > STRICTNESS[decided.action])) {
      decided = { ...best, statementClass };
    }
  }
  if (decided === undefined) return { effect: "deny", reasons: ["no policy decided"] };
  const rowLimits = matched.flatMap((policy) => (policy.maxRows === undefined ? [] : [policy.maxRows]));
  const reasons = [`${decided.statementClass}: ${decided.action} by policy \`${decided.policy.name}\``];
  return {
    effect: decided.action,
    rule: decided.policy.name,
    reasons,
    ...(rowLimits.length === 0 ? {} : { maxRows: Math.min(...rowLimits) }),
    ...(decided.action === "review" && decided.policy.reviewers !== undefined ? { reviewers: decided.policy.reviewers } : {}),
    ...(decided.action === "review" && decided.policy.reviewTimeoutMs !== undefined ? { reviewTimeoutMs: decided.policy.reviewTimeoutMs } : {}),
  };
}
