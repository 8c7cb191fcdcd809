import type { StatementClass, StatementDecision } from "@airlock/policy";
import { backend, frontend, pg, type PgMessage } from "@airlock/wire";
import { randomBytes } from "node:crypto";
import type { Analysis, StatementAnalysis } from "../inspect/index.js";

/** What the gate decided about one statement, for logs, metrics, the store and the recording. */
export interface StatementEvent {
  readonly sql: string;
  /** CREATE TABLE AS, SELECT INTO, INSERT ... SELECT, COPY (query) TO: data copied past the result stream. */
  readonly copiesData?: boolean;
  readonly protocol: "simple" | "extended";
  readonly classes: readonly StatementClass[];
  readonly decision: StatementDecision;
  /** Set when the statement could not be parsed. */
  readonly parseError?: string;
}

/** What happens to a client message. */
export type GateResult =
  | { readonly kind: "forward"; readonly bytes: Buffer }
  /** Held for review: resolves with what to forward once decided (the message, or a substitute). */
  | { readonly kind: "hold"; readonly release: Promise<Buffer> };

/** How a held statement ended. */
export type ReviewOutcome = { readonly approved: true } | { readonly approved: false; readonly message: string };

/** What the gate needs from the session. */
export interface StatementGateDeps {
  analyze(sql: string): Analysis;
  decide(classes: readonly StatementClass[], unboundedWrite: boolean): StatementDecision;
  /** Holds a statement for review; the session tells the client where to approve it. */
  review(event: StatementEvent): Promise<ReviewOutcome>;
  onDecision(event: StatementEvent): void;
  /** A stricter decision from masking (inference, copying sensitive data), or undefined. */
  guard?(sql: string, decision: StatementDecision): StatementDecision | undefined;
}

interface Substitution {
  /** Sync points (Sync, Query) sent before the substituted message: its ReadyForQuery is number epoch + 1. */
  readonly epoch: number;
  readonly sqlstate: string;
  readonly message: string;
  readonly detail?: string;
}

/**
 * Decides on every statement a PostgreSQL client sends, simple or extended, before it reaches the
 * database. A refused message is not dropped: it is replaced by one the database is sure to reject
 * (a syntax error carrying a unique token), so the database itself produces the ErrorResponse,
 * skips to Sync and sends ReadyForQuery in exactly the order the protocol requires, even deep in a
 * pipeline; on the way back that ErrorResponse is rewritten into the gateway's own.
 */
export class PostgresStatementGate {
  readonly #deps: StatementGateDeps;
  /** SQL-level PREPARE name -> its analysis (EXECUTE is judged by what it runs). */
  readonly #prepared = new Map<string, StatementAnalysis>();
  readonly #substitutions = new Map<string, Substitution>();
  /** The messages the gate made up: their answer is the gateway's own error, nothing to mask. */
  readonly #substitutes = new WeakSet<Buffer>();
  /** Sync points sent to the database, and ReadyForQuery messages received back. */
  #sent = 0;
  #ready = 0;

  constructor(deps: StatementGateDeps) {
    this.#deps = deps;
  }

  /** Judges one client message. Only Query and Parse carry statements; the rest pass. */
  onMessage(message: PgMessage): GateResult {
    if (message.code === frontend.Query) {
      const result = this.#judge(pg.decodeQuery(message.bytes), "simple", message.bytes, (token) => pg.encodeQuery(token));
      this.#sent++;
      return result;
    }
    if (message.code === frontend.Parse) {
      const parse = pg.decodeParse(message.bytes);
      return this.#judge(parse.query, "extended", message.bytes, (token) => encodeParse(parse.name, token));
    }
    if (message.code === frontend.Sync) this.#sent++;
    return { kind: "forward", bytes: message.bytes };
  }

  /** True for a message the gate put in place of a refused one. */
  isSubstitute(bytes: Buffer): boolean {
    return this.#substitutes.has(bytes);
  }

  /** True while some refused message's answer is still to come back. */
  get rewriting(): boolean {
    return this.#substitutions.size > 0;
  }

  /** Rewrites the database's answer to a substituted message into the gateway's error. */
  rewriteBackend(message: Buffer): Buffer {
    if (this.#substitutions.size === 0 || message[0] !== backend.ErrorResponse) return message;
    const fields = pg.decodeErrorFields(message);
    const text = fields.M ?? "";
    for (const [token, substitution] of this.#substitutions) {
      if (!text.includes(token)) continue;
      this.#substitutions.delete(token);
      return pg.encodeErrorResponse(substitution.sqlstate, substitution.message, substitution.detail === undefined ? {} : { detail: substitution.detail });
    }
    return message;
  }

  /**
   * Forgets substitutions whose sync point has passed without their error: the database skipped
   * them after an earlier error in the same pipeline, as it would have skipped the original.
   */
  onReadyForQuery(): void {
    this.#ready++;
    for (const [token, substitution] of this.#substitutions) if (substitution.epoch < this.#ready) this.#substitutions.delete(token);
  }

  #judge(sql: string, protocol: "simple" | "extended", original: Buffer, substitute: (token: string) => Buffer): GateResult {
    const analysis = this.#deps.analyze(sql);
    if (!analysis.ok) {
      const decision: StatementDecision = { effect: "deny", reasons: [`the statement cannot be parsed: ${analysis.error}`] };
      this.#deps.onDecision({ sql, protocol, classes: [], decision, parseError: analysis.error });
      return { kind: "forward", bytes: this.#substitute(substitute, { sqlstate: "42601", message: analysis.error }) };
    }
    let unbounded = false;
    const classes = new Set<StatementClass>();
    for (const statement of analysis.statements) {
      const effective = statement.executes === undefined ? statement : this.#prepared.get(statement.executes);
      if (effective === undefined) {
        // EXECUTE of a name this session never prepared through the gateway: fail closed.
        classes.add("write");
        continue;
      }
      for (const statementClass of effective.classes) classes.add(statementClass);
      if (effective.unboundedWrite) unbounded = true;
    }
    // An empty query (only comments or whitespace) runs nothing.
    if (analysis.statements.length === 0) classes.add("read");
    const sorted = [...classes].sort();
    const decided = this.#deps.decide(sorted, unbounded);
    const decision = decided.effect === "deny" ? decided : (this.#deps.guard?.(sql, decided) ?? decided);
    const copiesData = analysis.statements.some((statement) => statement.copiesData);
    const event: StatementEvent = { sql, protocol, classes: sorted, decision, ...(copiesData ? { copiesData } : {}) };
    this.#deps.onDecision(event);
    const remember = () => {
      for (const statement of analysis.statements) if (statement.prepares !== undefined) this.#prepared.set(statement.prepares.name, statement.prepares.statement);
    };
    switch (decision.effect) {
      case "allow":
        remember();
        return { kind: "forward", bytes: original };
      case "deny":
        return { kind: "forward", bytes: this.#substitute(substitute, denial(decision)) };
      case "review":
        return {
          kind: "hold",
          release: this.#deps.review(event).then((outcome) => {
            if (outcome.approved) {
              remember();
              return original;
            }
            return this.#substitute(substitute, { sqlstate: "42501", message: outcome.message });
          }),
        };
    }
  }

  #substitute(substitute: (token: string) => Buffer, substitution: Omit<Substitution, "epoch">): Buffer {
    const token = `airlock_refused_${randomBytes(8).toString("hex")}`;
    this.#substitutions.set(token, { ...substitution, epoch: this.#sent });
    const bytes = substitute(token);
    this.#substitutes.add(bytes);
    return bytes;
  }
}

function denial(decision: StatementDecision): Omit<Substitution, "epoch"> {
  const rule = decision.rule === undefined ? "" : ` by policy \`${decision.rule}\``;
  return { sqlstate: "42501", message: `statement denied${rule}`, detail: decision.reasons.join("; ") };
}

/** A Parse of `query` under `name`, with no parameter types. */
function encodeParse(name: string, query: string): Buffer {
  return pg.encodeMessage(frontend.Parse, Buffer.from(`${name}\0${query}\0`), Buffer.from([0, 0]));
}
