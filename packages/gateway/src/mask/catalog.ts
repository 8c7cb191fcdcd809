import type { CatalogRelation as WireRelation } from "@airlock/proto";
import { analyzeExposure, type CatalogRelation, type CatalogSnapshot } from "./lineage/index.js";
import { mysqlViewLineage } from "./mysql-lineage.js";

/** A sensitive column of gateway.yaml and how to mask it. */
export interface SensitiveColumn {
  readonly schema: string;
  readonly table: string;
  readonly column: string;
  readonly style: "redact" | "partial" | "null" | "pseudonym";
  readonly keep?: number;
}

/** What masking knows of a connection's database. */
export interface MaskCatalog {
  readonly snapshot: CatalogSnapshot;
  /** Relation by OID (what RowDescription names). */
  readonly byOid: ReadonlyMap<number, CatalogRelation & { readonly styles: ReadonlyMap<string, SensitiveColumn>; readonly definition: string }>;
  /** Any sensitive column at all: without one, nothing is masked but by the detectors. */
  readonly anySensitive: boolean;
}

/**
 * Analyses a view's definition against the catalog as known so far: for each output of the view
 * (in order) whether it may carry a sensitive value; "uncertain" when the definition cannot be
 * followed (every column of the view is then sensitive: fail closed); "none" when no output can
 * carry one though the outputs cannot be listed.
 */
export type ViewAnalyser = (definition: string, snapshot: CatalogSnapshot) => readonly boolean[] | "uncertain" | "none";

/** The PostgreSQL view analyser: pg_get_viewdef's text through the PostgreSQL lineage. */
export const postgresViewLineage: ViewAnalyser = (definition, snapshot) => {
  const result = analyzeExposure(definition, snapshot);
  const statement = result.ok ? result.statements[0] : undefined;
  if (statement === undefined || statement.exposure === "uncertain" || statement.outputs.some((output) => output.star)) return statement?.exposure === "none" ? "none" : "uncertain";
  return statement.outputs.map((output) => output.sensitive);
};

const KINDS: Readonly<Record<string, CatalogRelation["kind"]>> = { r: "table", p: "table", v: "view", m: "matview", f: "foreign" };

/**
 * Builds the catalog masking works from: the declared sensitive columns of tables, and for views and
 * materialized views every column whose definition derives from one (their definitions are analysed
 * like queries, views over views included; a definition that cannot be analysed makes every column
 * of the view sensitive: fail closed). `viewLineage` reads the definitions: PostgreSQL's by default,
 * mysqlViewLineage (mask/mysql-lineage.ts) for MySQL and MariaDB.
 */
export function buildMaskCatalog(relations: readonly WireRelation[], declared: readonly SensitiveColumn[], viewLineage: ViewAnalyser = postgresViewLineage): MaskCatalog {
  const styles = new Map<string, Map<string, SensitiveColumn>>();
  for (const column of declared) {
    const key = `${column.schema}.${column.table}`;
    styles.set(key, (styles.get(key) ?? new Map()).set(column.column, column));
  }
  const entries = relations.map((relation) => {
    const declaredHere = styles.get(`${relation.schema}.${relation.name}`) ?? new Map<string, SensitiveColumn>();
    return {
      oid: relation.oid,
      schema: relation.schema,
      name: relation.name,
      kind: KINDS[relation.kind] ?? "other",
      columns: [...relation.columns],
      sensitive: new Set([...declaredHere.keys()].filter((name) => relation.columns.includes(name))),
      styles: declaredHere as ReadonlyMap<string, SensitiveColumn>,
      definition: relation.definition,
    };
  });
  const snapshot = (): CatalogSnapshot => ({ relations: entries, searchPath: ["public"] });
  // Views over views: repeat until nothing changes (bounded by the number of views).
  const views = entries.filter((entry) => entry.kind === "view" || entry.kind === "matview");
  for (let pass = 0; pass <= views.length; pass++) {
    let changed = false;
    for (const view of views) {
      const before = view.sensitive.size;
      const outputs = viewLineage(view.definition, snapshot());
      if (outputs === "uncertain") {
        for (const column of view.columns) if (column !== "") view.sensitive.add(column);
      } else if (outputs !== "none") {
        outputs.forEach((sensitive, index) => {
          const column = view.columns[index];
          if (sensitive && column !== undefined && column !== "") view.sensitive.add(column);
        });
      }
      if (view.sensitive.size !== before) changed = true;
    }
    if (!changed) break;
  }
  return {
    snapshot: snapshot(),
    byOid: new Map(entries.map((entry) => [entry.oid, entry])),
    anySensitive: entries.some((entry) => entry.sensitive.size > 0),
  };
}

/** Keeps a connection's mask catalog fresh: read through the agent, cached, refreshed after DDL. */
export interface MaskCatalogCache {
  get(): Promise<MaskCatalog>;
  /** After a schema change: the next get() reads the catalog again. */
  invalidate(): void;
}

/**
 * Creates the cache; `read` asks the agent; `viewLineage` reads view definitions (see
 * buildMaskCatalog): an analyser, or `"mysql"` for the MySQL one.
 */
export function createMaskCatalogCache(
  read: () => Promise<readonly WireRelation[]>,
  declared: readonly SensitiveColumn[],
  ttlMs: number,
  now: () => number = Date.now,
  viewLineage: ViewAnalyser | "mysql" = postgresViewLineage,
): MaskCatalogCache {
  const analyser = viewLineage === "mysql" ? mysqlViewLineage : viewLineage;
  let current: { at: number; catalog: Promise<MaskCatalog> } | undefined;
  return {
    get() {
      if (current === undefined || now() - current.at > ttlMs) {
        const catalog = read().then((relations) => buildMaskCatalog(relations, declared, analyser));
        current = { at: now(), catalog };
        // A failed read is not cached: the next session tries again (and this one fails closed).
        catalog.catch(() => {
          if (current?.catalog === catalog) current = undefined;
        });
      }
      return current.catalog;
    },
    invalidate() {
      current = undefined;
    },
  };
}
