/** Classes a statement or command is sorted into. */
export const statementClasses = ["read", "write", "ddl", "admin", "export", "dangerous"] as const;
export type StatementClass = (typeof statementClasses)[number];

/** What a policy says to do with a class of statement. */
export type Action = "allow" | "deny" | "review";

/** One policy of gateway.yaml, in the library's own terms (durations in milliseconds). */
export interface PolicyRule {
  readonly name: string;
  readonly groups: readonly string[];
  readonly connections: readonly string[];
  readonly actions: Readonly<Record<StatementClass, Action>>;
  readonly maxRows?: number;
  readonly maxSessionMs?: number;
  readonly unmasked?: boolean;
  readonly reviewers?: readonly string[];
  readonly reviewTimeoutMs?: number;
  /** Approvals a review needs (default 1). */
  readonly approvals?: number;
  /** What to do with UPDATE/DELETE without a real WHERE, and TRUNCATE (default deny). */
  readonly unboundedWrite?: Action;
  /** standing: the groups are enough; jit: the principal also needs an approved, unexpired grant. */
  readonly access?: "standing" | "jit";
  /** When the policy applies; none means always. */
  readonly windows?: readonly AccessWindow[];
}

/** Days and hours in which a policy applies, in a time zone (IANA name, default UTC). */
export interface AccessWindow {
  readonly days: readonly Weekday[];
  /** HH:MM, inclusive. */
  readonly from: string;
  /** HH:MM, exclusive; may be earlier than `from` for a window past midnight. */
  readonly to: string;
  readonly timezone?: string;
}

export type Weekday = "mon" | "tue" | "wed" | "thu" | "fri" | "sat" | "sun";

/** A just-in-time grant the principal holds. */
export interface Grant {
  readonly connection: string;
  readonly expiresAt: Date;
}

/** Who is asking: a verified identity. */
export interface Principal {
  readonly subject: string;
  readonly groups: readonly string[];
}

/** Everything a decision depends on; `now` is given, never read from a clock. */
export interface ConnectionRequest {
  readonly principal: Principal;
  readonly connection: string;
  readonly now: Date;
  readonly policies: readonly PolicyRule[];
  /** Active just-in-time grants of the principal. */
  readonly grants?: readonly Grant[];
}

/** May this principal open a session on this connection, and under which limits. */
export interface ConnectionDecision {
  readonly effect: "allow" | "deny";
  /** The policies that matched (empty when denied by default). */
  readonly rules: readonly string[];
  readonly reasons: readonly string[];
  /** The session must end by this time (the shortest max_session of the matching policies). */
  readonly sessionEndsAt?: Date;
  /** True only if a matching policy says these groups see real values. */
  readonly unmasked: boolean;
  /** Strictest row limit per statement of the matching policies. */
  readonly maxRows?: number;
}

/** A statement to decide on: the classes its analysis found (a multi-statement string has several). */
export interface StatementRequest extends ConnectionRequest {
  readonly classes: readonly StatementClass[];
  /** The analysis found an UPDATE/DELETE without a real WHERE, or a TRUNCATE. */
  readonly unboundedWrite?: boolean;
}

/** The decision on a statement, with the rule that made it. */
export interface StatementDecision {
  readonly effect: Action;
  /** The policy that decided; undefined when no policy matched (default deny). */
  readonly rule?: string;
  readonly reasons: readonly string[];
  /** Strictest row limit of the matching policies. */
  readonly maxRows?: number;
  /** Reviewer groups, when the effect is review. */
  readonly reviewers?: readonly string[];
  readonly reviewTimeoutMs?: number;
  /** Approvals needed, when the effect is review. */
  readonly approvals?: number;
}
