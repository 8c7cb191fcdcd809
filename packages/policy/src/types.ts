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
}

/** A statement to decide on: the classes its analysis found (a multi-statement string has several). */
export interface StatementRequest extends ConnectionRequest {
  readonly classes: readonly StatementClass[];
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
}
