import type { StatementClass } from "@airlock/policy";

/** A relation a statement touches, as written (schema only when qualified). */
export interface RelationAccess {
  readonly schema?: string;
  readonly name: string;
  readonly access: "read" | "write";
}

/**
 * What the walk of one statement found so far. Mutable while walking; analyze.ts turns it into the
 * frozen StatementAnalysis. Nested statements (PL/pgSQL bodies, PREPARE) get their own Facts and
 * are merged in.
 */
export interface Facts {
  readonly classes: Set<StatementClass>;
  readonly reasons: Set<string>;
  readonly relations: Map<string, RelationAccess>;
  readonly functions: Set<string>;
  /** User functions and operators (not built in, not marked safe) the statement calls. */
  readonly userFunctions: Set<string>;
  unboundedWrite: boolean;
  copiesData: boolean;
  executes: string | undefined;
}

/** Empty facts for a statement about to be walked. */
export function createFacts(): Facts {
  return {
    classes: new Set(),
    reasons: new Set(),
    relations: new Map(),
    functions: new Set(),
    userFunctions: new Set(),
    unboundedWrite: false,
    copiesData: false,
    executes: undefined,
  };
}

/** Records a class with the reason for it. */
export function flag(facts: Facts, statementClass: StatementClass, reason: string): void {
  facts.classes.add(statementClass);
  facts.reasons.add(reason);
}

/** Records a relation once per (schema, name, access). */
export function addRelation(facts: Facts, relation: RelationAccess): void {
  const key = `${relation.schema ?? ""}\u0000${relation.name}\u0000${relation.access}`;
  if (!facts.relations.has(key)) facts.relations.set(key, relation);
}

/** Adds everything `from` found to `into`. */
export function mergeFacts(into: Facts, from: Facts): void {
  for (const value of from.classes) into.classes.add(value);
  for (const value of from.reasons) into.reasons.add(value);
  for (const value of from.relations.values()) addRelation(into, value);
  for (const value of from.functions) into.functions.add(value);
  for (const value of from.userFunctions) into.userFunctions.add(value);
  into.unboundedWrite ||= from.unboundedWrite;
  into.copiesData ||= from.copiesData;
  into.executes ??= from.executes;
}

/** `name` in backticks, for reasons. */
export function quote(name: string): string {
  return `\`${name}\``;
}
