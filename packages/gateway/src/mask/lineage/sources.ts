/**
 * Lineage of one value: the sensitive columns it may derive from, and why it is uncertain when the
 * parse tree cannot tell (a user function, a relation the catalog does not know). Lineages only
 * grow: every operation is a union, so fixpoints over recursive queries terminate.
 */
export interface Lineage {
  /** Sensitive columns (schema.table.column) the value may derive from. */
  readonly sources: ReadonlySet<string>;
  /** Why the value's origin cannot be told; empty when it can. */
  readonly uncertain: ReadonlySet<string>;
}

/** A mutable lineage, filled while walking an expression. */
export interface LineageBuilder {
  readonly sources: Set<string>;
  readonly uncertain: Set<string>;
}

const noStrings: ReadonlySet<string> = new Set();

/** The lineage of a value that derives from no sensitive column. */
export const clean: Lineage = Object.freeze({ sources: noStrings, uncertain: noStrings });

/** The lineage of a sensitive column. */
export function sourceLineage(source: string): Lineage {
  return { sources: new Set([source]), uncertain: noStrings };
}

/** The lineage of a value whose origin cannot be told, and why. */
export function uncertainLineage(reason: string): Lineage {
  return { sources: noStrings, uncertain: new Set([reason]) };
}

/** True when the value may carry a sensitive value or its origin is uncertain. */
export function isTainted(lineage: Lineage): boolean {
  return lineage.sources.size > 0 || lineage.uncertain.size > 0;
}

/** The union of two lineages, sharing either side when the other adds nothing. */
export function union(a: Lineage, b: Lineage): Lineage {
  if (!isTainted(b) || a === b) return a;
  if (!isTainted(a)) return b;
  const builder = createBuilder();
  addTo(builder, a);
  addTo(builder, b);
  return built(builder);
}

/** An empty builder. */
export function createBuilder(): LineageBuilder {
  return { sources: new Set(), uncertain: new Set() };
}

/** Adds `lineage` to `builder`. */
export function addTo(builder: LineageBuilder, lineage: Lineage): void {
  for (const source of lineage.sources) builder.sources.add(source);
  for (const reason of lineage.uncertain) builder.uncertain.add(reason);
}

/** The builder's lineage (the builder must not be changed afterwards). */
export function built(builder: LineageBuilder): Lineage {
  return builder.sources.size === 0 && builder.uncertain.size === 0 ? clean : builder;
}

/** How much a lineage holds: equal weights of a growing lineage mean it stopped growing. */
export function weight(lineage: Lineage): number {
  return lineage.sources.size + lineage.uncertain.size;
}
