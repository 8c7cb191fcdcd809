import { TreeTooDeepError } from "../../inspect/postgres/walk.js";
import type { Column, IndexedCatalog } from "./catalog.js";
import { addTo, built, clean, createBuilder, sourceLineage, uncertainLineage, type Lineage, type LineageBuilder } from "./sources.js";

/** Clauses whose predicates or orderings let a masked reader infer values. */
export type InferenceClause = "where" | "join" | "having" | "order_by" | "group_by" | "distinct_on" | "window" | "limit";

/** One inference finding. */
export interface Inference {
  readonly column: string;
  readonly clause: InferenceClause;
}

/** The state of one statement's analysis. */
export interface Run {
  readonly catalog: IndexedCatalog;
  /**
   * Inside a function body or DO block: an unresolved bare name is a variable or parameter (its
   * value came from a statement the body analysis sees, or from the caller), not an error.
   */
  readonly body: boolean;
  /** How many bodies deep this run is. */
  readonly nesting: number;
  readonly inference: Map<string, Inference>;
  readonly reasons: Set<string>;
  /** Predicate lineage of the sub-queries being analysed, innermost last. */
  readonly collectors: LineageBuilder[];
  /** Every sensitive column referenced anywhere. */
  readonly touched: Set<string>;
  /** Value catalogs read. */
  readonly valueCatalogs: Set<string>;
  /** A sensitive or uncertain value is written somewhere masking does not see. */
  copies: boolean;
  /** The statement writes something (a table, a setting, a large object, a notification, a user function). */
  writes: boolean;
  /** Some column reference or call has an uncertain origin. */
  sawUncertain: boolean;
  depth: number;
  /** Work left before the analysis gives up (recursive WITH queries nested in each other). */
  budget: number;
}

/** Options of createRun. */
export interface RunOptions {
  readonly body: boolean;
  readonly nesting: number;
  /** Share another run's inference findings (EXPLAIN reports those of the explained statement). */
  readonly inference?: Map<string, Inference>;
}

const maxDepth = 1_000;

/** Thrown when an analysis needs more work than a statement can reasonably need. */
export class LineageBudgetError extends Error {
  constructor() {
    super("statement is too complex to analyse");
    this.name = "LineageBudgetError";
  }
}

/** A fresh run over `catalog`. */
export function createRun(catalog: IndexedCatalog, options: RunOptions): Run {
  return {
    catalog,
    body: options.body,
    nesting: options.nesting,
    inference: options.inference ?? new Map(),
    reasons: new Set(),
    collectors: [],
    touched: new Set(),
    valueCatalogs: new Set(),
    copies: false,
    writes: false,
    sawUncertain: false,
    depth: 0,
    budget: 2_000_000,
  };
}

/** Counts one level of nesting (and one unit of work); pair with leave(). */
export function enter(run: Run): void {
  run.depth += 1;
  run.budget -= 1;
  if (run.depth > maxDepth) throw new TreeTooDeepError();
  if (run.budget < 0) throw new LineageBudgetError();
}

/** Ends a level entered with enter(). */
export function leave(run: Run): void {
  run.depth -= 1;
}

/** Adds a leaf lineage (a column, a whole row, a call) to `into`, noting what it touched. */
export function take(run: Run, into: LineageBuilder, lineage: Lineage): void {
  if (lineage.sources.size === 0 && lineage.uncertain.size === 0) return;
  addTo(into, lineage);
  for (const source of lineage.sources) run.touched.add(source);
  if (lineage.uncertain.size > 0) run.sawUncertain = true;
}

/** Records a predicate (or ordering) over `lineage` in `clause`. */
export function predicate(run: Run, lineage: Lineage, clause: InferenceClause): void {
  for (const column of lineage.sources) {
    const key = `${column}\u0000${clause}`;
    if (!run.inference.has(key)) run.inference.set(key, { column, clause });
  }
  for (const collector of run.collectors) addTo(collector, lineage);
}

/** Records that a sensitive or uncertain value is copied past masking, and why. */
export function copied(run: Run, reason: string): void {
  run.copies = true;
  run.reasons.add(reason);
}

/** A FROM item in scope (range table entry). */
export interface Rte {
  /** The name it is referenced by (its alias, or the relation's name); undefined when it has none. */
  readonly name: string | undefined;
  /** The catalog relation's schema and name, for `schema.table.column` references. */
  readonly schema?: string;
  readonly relname?: string;
  /** Its columns in order; undefined when they are not known (then every name may be one). */
  readonly columns: readonly Column[] | undefined;
  /** The lineage of any column, when the columns are not known. */
  readonly any: Lineage;
  /** What a whole-row reference carries. */
  readonly whole: Lineage;
  /** A table or catalog relation: it has system columns (ctid, xmin...). */
  readonly system?: boolean;
  /** A value catalog: each column is its own sensitive source. */
  readonly values?: string;
}

/** What a FROM item gives its query level. */
export interface FromResult {
  /** The names it brings into scope. */
  readonly rtes: readonly Rte[];
  /** The columns `*` expands to, in order; undefined when not known. */
  readonly columns: readonly Column[] | undefined;
  readonly whole: Lineage;
}

/** One query level: its FROM items, inside the levels of the queries it is nested in. */
export interface Level {
  readonly rtes: Rte[];
  readonly items: FromResult[];
  readonly parent: Level | undefined;
}

/** A WITH query in scope. */
export interface CteEntry {
  readonly columns: readonly Column[] | undefined;
  readonly whole: Lineage;
}

/** The WITH queries in scope, innermost first. */
export interface CteScope {
  readonly entries: Map<string, CteEntry>;
  readonly parent: CteScope | undefined;
}

/** Finds a WITH query by name, innermost first. */
export function findCte(scope: CteScope | undefined, name: string): CteEntry | undefined {
  for (let current = scope; current !== undefined; current = current.parent) {
    const entry = current.entries.get(name);
    if (entry !== undefined) return entry;
  }
  return undefined;
}

const systemColumns: ReadonlySet<string> = new Set(["ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"]);

/** A column of an RTE: undefined when the RTE's columns are known and `name` is not one of them. */
export function lookup(rte: Rte, name: string): Lineage | undefined {
  if (rte.values !== undefined) return sourceLineage(`pg_catalog.${rte.values}.${name}`);
  if (rte.columns === undefined) return rte.any;
  let found: Lineage | undefined;
  let builder: LineageBuilder | undefined;
  for (const column of rte.columns) {
    if (column.name !== name) continue;
    if (found === undefined) found = column.lineage;
    else {
      builder ??= createBuilder();
      addTo(builder, found);
      addTo(builder, column.lineage);
    }
  }
  if (builder !== undefined) return built(builder);
  if (found !== undefined) return found;
  return rte.system === true && systemColumns.has(name) ? clean : undefined;
}

/** Renames the first columns to `aliases` (an alias's column list). */
export function rename(columns: readonly Column[] | undefined, aliases: readonly string[]): readonly Column[] | undefined {
  if (columns === undefined || aliases.length === 0) return columns;
  return columns.map((column, index) => {
    const alias = aliases[index];
    return alias === undefined ? column : { name: alias, lineage: column.lineage };
  });
}

/**
 * An unqualified name: every column of that name in every level in scope (ambiguity resolves
 * toward sensitive), and whole-row references of FROM items of that name. A FROM item whose
 * columns are not known counts at every level up to the first one where a known column matched
 * (beyond it, the server never looks). Undefined when nothing matched.
 */
export function resolveName(level: Level | undefined, name: string): Lineage | undefined {
  const builder = createBuilder();
  let matched = false;
  let opaqueMayMatch = true;
  for (let current = level; current !== undefined; current = current.parent) {
    let knownHere = false;
    for (const rte of current.rtes) {
      if (rte.columns !== undefined) {
        const lineage = lookup(rte, name);
        if (lineage !== undefined) {
          addTo(builder, lineage);
          matched = true;
          knownHere = true;
        }
      }
      if (rte.name === name) {
        addTo(builder, rte.whole);
        matched = true;
      }
    }
    if (opaqueMayMatch && !knownHere) {
      for (const rte of current.rtes) {
        if (rte.columns !== undefined) continue;
        const lineage = lookup(rte, name);
        if (lineage !== undefined) addTo(builder, lineage);
        matched = true;
      }
    }
    if (knownHere) opaqueMayMatch = false;
  }
  return matched ? built(builder) : undefined;
}

/** A FROM item by reference name (one part) or by schema and relation (two parts), innermost first. */
export function findRte(level: Level | undefined, qualifier: readonly string[]): Rte | undefined {
  const relname = qualifier.at(-1);
  const schema = qualifier.length >= 2 ? qualifier.at(-2) : undefined;
  for (let current = level; current !== undefined; current = current.parent) {
    for (const rte of current.rtes) {
      if (schema === undefined ? rte.name === relname : rte.schema === schema && rte.relname === relname) return rte;
    }
  }
  return undefined;
}

/**
 * The lineage of a reference nothing in scope resolves (`star`: a `x.*` reference). Outside a
 * body the server would reject it, unless the snapshot is stale: uncertain. In a body, a bare
 * name is a variable or parameter (what it holds was read by a statement the body analysis sees,
 * or passed by the caller), except a trigger's NEW and OLD; a qualified name is a field of NEW,
 * OLD or a record variable, whose relation the body does not name: it derives from every
 * sensitive column of that name in the catalog; a whole row of one is uncertain.
 */
export function unresolved(run: Run, parts: readonly string[], star = false): Lineage {
  const written = star ? [...parts, "*"].join(".") : parts.join(".");
  if (!run.body) return uncertainLineage(`\`${written}\` is not a column of any relation in scope`);
  const first = parts[0];
  if (star || (parts.length === 1 && (first === "new" || first === "old"))) {
    return uncertainLineage(`\`${written}\` is a row whose relation the body does not name`);
  }
  const column = parts.at(-1);
  if (parts.length < 2 || column === undefined) return clean;
  const sources = run.catalog.sensitiveNamed(column);
  return sources.length === 0 ? clean : { sources: new Set(sources), uncertain: clean.uncertain };
}
