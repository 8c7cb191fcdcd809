import { decideConnection, decideStatement, type ConnectionDecision, type StatementClass, type StatementDecision } from "@airlock/policy";
import type { GatewayConfig } from "./config/schema.js";
import { policyRules } from "./gateway.js";
import { groupsFromClaims } from "./identity/index.js";
import { analyzePostgres, type Analysis } from "./inspect/index.js";

/** What `airlock policy explain` is asked. */
export interface ExplainInput {
  /** Claims of a token (iss picks the issuer); groups come from them as the gateway would compute them. */
  readonly claims?: Readonly<Record<string, unknown>>;
  /** Groups given directly (added to those of the claims). */
  readonly groups?: readonly string[];
  readonly connection: string;
  readonly sql: string;
  readonly now: Date;
}

/** The decision, and everything that led to it. */
export interface Explanation {
  readonly subject: string;
  readonly groups: readonly string[];
  readonly connection: ConnectionDecision;
  readonly analysis: Analysis;
  readonly classes: readonly StatementClass[];
  readonly unboundedWrite: boolean;
  /** The statement's decision; a connection the identity may not use denies every statement. */
  readonly decision: StatementDecision;
}

/** Explains the decision on a statement for an identity, offline, from gateway.yaml alone. */
export function explain(config: GatewayConfig, input: ExplainInput): Explanation {
  if (!config.connections.some((connection) => connection.name === input.connection)) throw new TypeError(`no connection is named \`${input.connection}\``);
  const claims = input.claims ?? {};
  const issuer = config.identity.issuers.find((candidate) => candidate.issuer === claims.iss) ?? (claims.iss === undefined ? config.identity.issuers[0] : undefined);
  if (issuer === undefined) throw new TypeError(`issuer \`${String(claims.iss)}\` is not trusted by this configuration`);
  const rules = config.identity.group_rules.filter((rule) => rule.issuer === issuer.name);
  const groups = [...new Set([...groupsFromClaims(issuer.groups_claim, rules, claims), ...(input.groups ?? [])])].sort();
  const principal = { subject: typeof claims.sub === "string" ? claims.sub : "(unknown)", groups };
  const policies = policyRules(config);
  const connection = decideConnection({ principal, connection: input.connection, now: input.now, policies });
  const safeFunctions = config.connections.find((candidate) => candidate.name === input.connection)?.safe_functions.map((name) => name.toLowerCase()) ?? [];
  const analysis = analyzePostgres(input.sql, { safeFunctions });
  const classes = analysis.ok ? [...new Set(analysis.statements.flatMap((statement) => statement.classes))].sort() : [];
  const unboundedWrite = analysis.ok && analysis.statements.some((statement) => statement.unboundedWrite);
  let decision: StatementDecision;
  if (!analysis.ok) decision = { effect: "deny", reasons: [`the statement cannot be parsed: ${analysis.error}`] };
  else if (connection.effect === "deny") decision = { effect: "deny", reasons: connection.reasons };
  else decision = decideStatement({ principal, connection: input.connection, now: input.now, policies, classes, unboundedWrite });
  return { subject: principal.subject, groups, connection, analysis, classes, unboundedWrite, decision };
}
