import { clean, sourceLineage, type Lineage } from "./sources.js";

/** A relation of the database as the catalog snapshot describes it. */
export interface CatalogRelation {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  readonly kind: "table" | "view" | "matview" | "foreign" | "other";
  /** Column names by attnum - 1. */
  readonly columns: readonly string[];
  /**
   * Names of the sensitive columns: declared ones for tables; for views and materialized views,
   * every column whose definition depends on a sensitive base column.
   */
  readonly sensitive: ReadonlySet<string>;
}

/** What lineage needs to know of the database: its relations and the session's search_path. */
export interface CatalogSnapshot {
  readonly relations: readonly CatalogRelation[];
  /** Schemas in search order as current_schemas(false) gives them; default `["public"]`. */
  readonly searchPath: readonly string[];
}

/**
 * Names of catalogs that hold sample values of columns (most common values, histograms, MCV
 * lists of extended statistics): reading them exposes data.
 */
export const valueCatalogs: ReadonlySet<string> = new Set([
  "pg_stats",
  "pg_statistic",
  "pg_stats_ext",
  "pg_stats_ext_exprs",
  "pg_statistic_ext_data",
]);

/** One column of a relation in scope, with its lineage. */
export interface Column {
  readonly name: string;
  readonly lineage: Lineage;
}

/** A catalog relation with its columns' lineages computed once. */
export interface KnownRelation {
  readonly relation: CatalogRelation;
  readonly columns: readonly Column[];
  /** The union of the columns' lineages: what a whole-row reference carries. */
  readonly whole: Lineage;
}

/** A snapshot indexed for name resolution. */
export interface IndexedCatalog {
  /** True when some column is sensitive; when none is, nothing can be exposed. */
  readonly hasSensitive: boolean;
  /** Schemas searched for an unqualified name: pg_catalog first unless the path places it. */
  readonly path: readonly string[];
  /** Every sensitive column, sorted. */
  readonly sensitiveColumns: readonly string[];
  relation(schema: string, name: string): KnownRelation | undefined;
  /** True when a relation of `schema` has a sensitive column. */
  sensitiveInSchema(schema: string): boolean;
  /** Every sensitive column named `column`, whatever its relation. */
  sensitiveNamed(column: string): readonly string[];
}

/** How a relation name resolves. */
export type ResolvedRelation =
  | { readonly kind: "known"; readonly known: KnownRelation }
  /** A catalog relation the snapshot does not list (pg_class, information_schema.tables): no column data. */
  | { readonly kind: "system"; readonly schema: string; readonly name: string }
  /** One of valueCatalogs. */
  | { readonly kind: "values"; readonly name: string }
  | { readonly kind: "unknown"; readonly written: string };

/** The schema.table.column name of a column. */
export function columnSource(relation: CatalogRelation, column: string): string {
  return `${relation.schema}.${relation.name}.${column}`;
}

const indexes = new WeakMap<CatalogSnapshot, IndexedCatalog>();

function checkSnapshot(snapshot: CatalogSnapshot): void {
  if (typeof snapshot !== "object" || snapshot === null || !Array.isArray(snapshot.relations)) {
    throw new TypeError("analyzeExposure: `catalog.relations` must be an array");
  }
  if (snapshot.searchPath !== undefined && !Array.isArray(snapshot.searchPath)) {
    throw new TypeError("analyzeExposure: `catalog.searchPath` must be an array of schema names");
  }
  for (const relation of snapshot.relations) {
    if (typeof relation.schema !== "string" || typeof relation.name !== "string" || !Array.isArray(relation.columns)) {
      throw new TypeError("analyzeExposure: every `catalog.relations` entry needs `schema`, `name` and `columns`");
    }
    if (typeof relation.sensitive?.has !== "function") {
      throw new TypeError(`analyzeExposure: \`catalog.relations\` entry \`${relation.schema}.${relation.name}\` needs a \`sensitive\` set`);
    }
  }
}

function knownRelation(relation: CatalogRelation): KnownRelation {
  const sources = new Set<string>();
  const columns = relation.columns.map((name) => {
    if (!relation.sensitive.has(name)) return { name, lineage: clean };
    const source = columnSource(relation, name);
    sources.add(source);
    return { name, lineage: sourceLineage(source) };
  });
  // A sensitive name missing from `columns` still counts for whole-row references (fail closed).
  for (const name of relation.sensitive) sources.add(columnSource(relation, name));
  return { relation, columns, whole: sources.size === 0 ? clean : { sources, uncertain: clean.uncertain } };
}

/** Indexes a snapshot once (by identity): keep the snapshot object while it is current. */
export function indexCatalog(snapshot: CatalogSnapshot): IndexedCatalog {
  const cached = indexes.get(snapshot);
  if (cached !== undefined) return cached;
  checkSnapshot(snapshot);
  const byName = new Map<string, KnownRelation>();
  const sensitiveSchemas = new Set<string>();
  const sensitiveColumns: string[] = [];
  const byColumn = new Map<string, string[]>();
  for (const relation of snapshot.relations) {
    byName.set(`${relation.schema}\u0000${relation.name}`, knownRelation(relation));
    if (relation.sensitive.size > 0) sensitiveSchemas.add(relation.schema);
    for (const column of relation.sensitive) {
      const source = columnSource(relation, column);
      sensitiveColumns.push(source);
      const list = byColumn.get(column) ?? [];
      list.push(source);
      byColumn.set(column, list);
    }
  }
  const searchPath = (snapshot.searchPath ?? ["public"]).filter((schema) => typeof schema === "string" && schema !== "$user");
  const index: IndexedCatalog = {
    hasSensitive: sensitiveColumns.length > 0,
    path: searchPath.includes("pg_catalog") ? searchPath : ["pg_catalog", ...searchPath],
    sensitiveColumns: sensitiveColumns.sort(),
    relation: (schema, name) => byName.get(`${schema}\u0000${name}`),
    sensitiveInSchema: (schema) => sensitiveSchemas.has(schema),
    sensitiveNamed: (column) => byColumn.get(column) ?? [],
  };
  indexes.set(snapshot, index);
  return index;
}

const systemSchemas: ReadonlySet<string> = new Set(["pg_catalog", "information_schema"]);

/**
 * Resolves a relation name as the server would: a qualified name in its schema; an unqualified
 * one through the search path, pg_catalog first unless the path places it elsewhere. A `pg_`
 * name found nowhere in the snapshot is taken as a catalog relation the snapshot leaves out.
 * Temporary tables (pg_temp, searched before everything) are not in the snapshot: the caller
 * learns of them from the CREATE that copied data into them.
 */
export function resolveRelation(catalog: IndexedCatalog, schema: string | undefined, name: string): ResolvedRelation {
  if (schema !== undefined) {
    if (schema === "pg_catalog" && valueCatalogs.has(name)) return { kind: "values", name };
    const known = catalog.relation(schema, name);
    if (known !== undefined) return { kind: "known", known };
    if (systemSchemas.has(schema)) return { kind: "system", schema, name };
    return { kind: "unknown", written: `${schema}.${name}` };
  }
  for (const candidate of catalog.path) {
    if (candidate === "pg_catalog" && valueCatalogs.has(name)) return { kind: "values", name };
    const known = catalog.relation(candidate, name);
    if (known !== undefined) return { kind: "known", known };
  }
  if (name.startsWith("pg_")) return { kind: "system", schema: "pg_catalog", name };
  return { kind: "unknown", written: name };
}
