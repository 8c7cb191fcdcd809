import { analyzerLoaded, parse } from "../../inspect/postgres/analyze.js";
import { quote } from "../../inspect/postgres/facts.js";
import { TreeTooDeepError } from "../../inspect/postgres/walk.js";
import { indexCatalog, type CatalogSnapshot, type IndexedCatalog } from "./catalog.js";
import { createRun, LineageBudgetError, type Inference, type Run } from "./scope.js";
import { statement, type StatementOutcome } from "./statements.js";

export { valueCatalogs, type CatalogRelation, type CatalogSnapshot } from "./catalog.js";
export type { Inference, InferenceClause } from "./scope.js";

/** One output of a statement's result: a target list item, before `*` expansion. */
export interface ExposureOutput {
  /** `*` or `t.*`: the caller maps it to RowDescription columns by table OID and column number. */
  readonly star: boolean;
  /** The value may carry a sensitive value, or its origin is uncertain: mask it. */
  readonly sensitive: boolean;
  /**
   * The sensitive columns (schema.table.column) it may derive from, sorted; for a view or
   * materialized view, its own column as the catalog names it. Empty for an uncertain output.
   * A value catalog's columns are `pg_catalog.<catalog>.<column>` (`.*` for the whole row).
   */
  readonly sources: readonly string[];
}

/** What one statement can expose of sensitive columns, from its parse tree. */
export interface StatementExposure {
  /**
   * none: no output can carry a sensitive value; columns: some can (see outputs); uncertain:
   * cannot tell, mask every output that is not a plain column of a known relation.
   */
  readonly exposure: "none" | "columns" | "uncertain";
  /**
   * For the statement's top-level result (SELECT, VALUES, TABLE, RETURNING, COPY ... TO STDOUT,
   * the query of DECLARE CURSOR and PREPARE; EXPLAIN's plan): one entry per target list item in
   * order, before `*` expansion. Empty for statements that return no rows, and for EXECUTE, FETCH
   * and CALL, whose exposure is "uncertain" until the caller substitutes what it knows.
   */
  readonly outputs: readonly ExposureOutput[];
  /**
   * Predicates and orderings that let a masked reader learn sensitive values, deduplicated:
   * WHERE, JOIN ON/USING/NATURAL, HAVING, ORDER BY, GROUP BY, DISTINCT ON, window PARTITION BY and
   * ORDER BY, LIMIT/OFFSET ("limit"), in sub-queries too; an aggregate's FILTER counts as
   * "where" and its ORDER BY as "order_by".
   */
  readonly inference: readonly Inference[];
  /**
   * Sensitive (or uncertain) values would be written somewhere masking no longer sees: CREATE
   * TABLE AS, SELECT INTO, CREATE MATERIALIZED VIEW, INSERT ... SELECT, UPDATE ... SET from other
   * columns, MERGE, COPY ... TO a file or program, values passed to user functions or stored in
   * settings, sequences, large objects or notifications, renames of sensitive columns or their
   * relations, DO blocks and functions that read sensitive columns and write.
   */
  readonly copiesSensitive: boolean;
  /** Why, in order found: lowercase sentences, names in backticks. */
  readonly reasons: readonly string[];
}

/** The exposure of every statement of a string, or why the string could not be analysed (mask everything). */
export type ExposureAnalysis = { readonly ok: true; readonly statements: readonly StatementExposure[] } | { readonly ok: false; readonly error: string };

function noneAtAll(outcome: StatementOutcome): StatementExposure {
  return {
    exposure: "none",
    outputs: outcome.outputs.map((item) => ({ star: item.star, sensitive: false, sources: [] })),
    inference: [],
    copiesSensitive: false,
    reasons: ["no column of the catalog is sensitive"],
  };
}

function exposureOf(outcome: StatementOutcome, run: Run, catalog: IndexedCatalog): StatementExposure {
  if (!catalog.hasSensitive) return noneAtAll(outcome);
  const reasons = new Set<string>();
  const valueSources = [...run.valueCatalogs].sort().map((name) => `pg_catalog.${name}.*`);
  for (const name of [...run.valueCatalogs].sort()) reasons.add(`reads ${quote(`pg_catalog.${name}`)}, which holds sample values of columns`);
  for (const reason of outcome.uncertain) reasons.add(reason);
  let uncertain = outcome.uncertain.length > 0;
  let sensitive = false;
  const outputs = outcome.outputs.map((item, index): ExposureOutput => {
    let sources = [...item.lineage.sources].sort();
    const isUncertain = item.lineage.uncertain.size > 0;
    if (valueSources.length > 0 && sources.length === 0 && !isUncertain) sources = valueSources;
    for (const reason of [...item.lineage.uncertain].sort()) reasons.add(`output ${index + 1} is uncertain: ${reason}`);
    if (sources.length > 0) reasons.add(`output ${index + 1} derives from ${sources.map(quote).join(", ")}`);
    uncertain ||= isUncertain;
    const isSensitive = isUncertain || sources.length > 0;
    sensitive ||= isSensitive;
    return { star: item.star, sensitive: isSensitive, sources };
  });
  for (const reason of run.reasons) reasons.add(reason);
  if (reasons.size === 0) reasons.add(outputs.length === 0 ? "returns no rows derived from a sensitive column" : "no output derives from a sensitive column");
  return {
    exposure: uncertain ? "uncertain" : sensitive ? "columns" : "none",
    outputs,
    inference: [...run.inference.values()],
    copiesSensitive: run.copies,
    reasons: [...reasons],
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/**
 * Which outputs of each statement in `sql` may carry values derived from sensitive columns,
 * which predicates infer them, and which statements copy them past masking, from PostgreSQL's
 * own parse tree and the catalog snapshot. Fails closed: what it cannot follow is uncertain.
 * Synchronous; await loadAnalyzer() (inspect) once first. The result is frozen.
 */
export function analyzeExposure(sql: string, catalog: CatalogSnapshot): ExposureAnalysis {
  if (typeof sql !== "string") throw new TypeError("analyzeExposure: `sql` must be a string");
  if (!analyzerLoaded()) throw new TypeError("analyzeExposure: the parser is not loaded: await loadAnalyzer() first");
  const index = indexCatalog(catalog);
  const parsed = parse(sql);
  if (!parsed.ok) return deepFreeze({ ok: false, error: parsed.error });
  const statements: StatementExposure[] = [];
  try {
    for (const item of parsed.statements) {
      const run = createRun(index, { body: false, nesting: 0 });
      statements.push(exposureOf(statement(item.node, item.text, run), run, index));
    }
  } catch (error) {
    if (error instanceof TreeTooDeepError || error instanceof RangeError) return deepFreeze({ ok: false, error: "statement is nested too deeply to analyse" });
    if (error instanceof LineageBudgetError) return deepFreeze({ ok: false, error: error.message });
    throw error;
  }
  return deepFreeze({ ok: true, statements });
}
