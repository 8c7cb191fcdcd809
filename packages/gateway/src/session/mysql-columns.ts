import type { StatementClass } from "@airlock/policy";
import type { mysql } from "@airlock/wire";
import type { MaskCatalog, SensitiveColumn } from "../mask/index.js";
import type { RelationAccess } from "../inspect/index.js";
import { isBuiltinFunction } from "../inspect/mysql/functions.js";
import type { Inference } from "../mask/lineage/index.js";
import { analyzeMysqlExposure, type MysqlExposureOptions, type MysqlExposureOutput } from "../mask/mysql-lineage.js";
import type { Admitted } from "./common.js";
import type { MysqlCommand } from "./mysql-responses.js";

/** What masking does with a column of a result set. */
export type MysqlColumnPolicy = { readonly style: SensitiveColumn["style"]; readonly keep?: number; readonly label: string } | "detect" | "uncertain" | "clear";

/**
 * What lineage needs of one statement that runs (an EXECUTE replaced by the statement it runs,
 * when the session knows it): the relations, the functions and procedures it calls, whether it
 * copies data or stores values in variables.
 */
export interface LineageStatement {
  /** The statement's text, which lineage parses for the columns of its result. */
  readonly text?: string;
  readonly kind?: string;
  /** USE: the schema of the statements after it. */
  readonly useSchema?: string;
  readonly classes?: readonly StatementClass[];
  readonly relations: readonly RelationAccess[];
  readonly functions?: readonly string[];
  /** EXECUTE of a statement the session does not know: what it runs is unknown. */
  readonly executes?: string;
  readonly copiesData?: boolean;
  readonly assignsVariables?: true;
}

/** The part of a statement's analysis column decisions need: the statements that run. */
export interface ReadRelations {
  readonly statements: readonly LineageStatement[];
}

/** Why masking refuses a statement of a masked identity: it carries sensitive values past masking. */
export const COPIES_SENSITIVE = "the statement copies sensitive columns past masking";
export const DIAGNOSTICS_SENSITIVE = "the diagnostics area holds messages about masked columns: GET DIAGNOSTICS would copy them into variables";

/**
 * Decides each result column's masking from its column definition, which names the physical schema,
 * table and column for a plain column (MySQL sends `org_table` and `org_name`):
 * - a declared sensitive column of a table: its style;
 * - a column of a view derived from a sensitive one (the catalog analysed the view): redacted;
 * - a column with no physical origin (an expression), or from a relation the catalog does not know:
 *   the lineage of the statement that produced the result (result i of a multi-statement string is
 *   statement i; an EXECUTE is the statement it runs) says whether it derives from a sensitive
 *   column (redacted) or not (the detectors);
 * - such a column whose lineage is uncertain (or cannot be matched to the result), while the
 *   statement reads a relation holding sensitive columns (or one the catalog does not know):
 *   uncertain, so masked (fail closed);
 * - anything else: the content detectors.
 * Only for identities that are masked: the others get no masker at all.
 */
export function mysqlColumnPolicy(
  masking: NonNullable<Admitted["masking"]>,
  statementOf: (command: MysqlCommand) => ReadRelations | undefined,
  defaultSchema: () => string | undefined,
  lexOptions: () => Omit<MysqlExposureOptions, "defaultSchema"> = () => ({}),
): {
  decide(column: mysql.ColumnDefinition41, command: MysqlCommand, index?: number, resultIndex?: number): MysqlColumnPolicy;
  readsSensitive(command: MysqlCommand): boolean;
  guard(statement: ReadRelations, diagnosticsSensitive: boolean): string | undefined;
  inference(statement: ReadRelations): { readonly action: "allow" | "review" | "deny"; readonly columns: readonly string[]; readonly reason: string } | undefined;
} {
  const detect = masking.config.detectors === undefined ? "clear" : "detect";
  const reads = (command: MysqlCommand) => readsSensitive(statementOf(command)?.statements, indexCatalog(masking.catalog), defaultSchema(), "any");
  return {
    decide(column, command, index, resultIndex) {
      const tables = indexCatalog(masking.catalog);
      if (column.orgTable !== "" && column.orgName !== "") {
        const relation = tables.get(`${column.schema.toLowerCase()}.${column.orgTable.toLowerCase()}`);
        if (relation !== undefined) {
          const declared = relation.styles.get(column.orgName) ?? findCaseInsensitive(relation.styles, column.orgName);
          if (declared !== undefined) return { style: declared.style, ...(declared.keep === undefined ? {} : { keep: declared.keep }), label: `${relation.schema}.${relation.name}.${declared.column}` };
          if (relation.sensitive.has(column.orgName)) return { style: "redact", label: `${relation.schema}.${relation.name}.${column.orgName}` };
          return detect;
        }
      }
      const output = index === undefined || resultIndex === undefined ? undefined : lineageOutput(statementOf(command)?.statements, resultIndex, index, column, masking.catalog, { ...lexOptions(), defaultSchema: defaultSchema() });
      if (output !== undefined && output.uncertain.length === 0) return output.sources.length > 0 ? { style: "redact", label: output.sources.join(", ") } : detect;
      return reads(command) ? "uncertain" : detect;
    },
    readsSensitive: reads,
    /**
     * Masking's say on a statement before it runs: masking only sees what comes back, so a
     * statement that carries sensitive values anywhere else is refused, since a later statement
     * would read them unmasked:
     * - into tables: a copy (INSERT/REPLACE ... SELECT, UPDATE from columns...) that touches a
     *   relation with sensitive columns, or a write that reads one (a subquery in VALUES, SET or
     *   ON DUPLICATE KEY UPDATE, a stored function);
     * - into variables: `:=`, SET, `INTO @var`, CALL with OUT parameters, reading one;
     * - GET DIAGNOSTICS into variables while the diagnostics area holds messages of a statement that
     *   read sensitive columns (SHOW WARNINGS withholds them; GET DIAGNOSTICS would copy them).
     * Relations are judged whole (a copy of `customers.id` is refused too): fail closed.
     */
    guard(statement, diagnosticsSensitive) {
      const tables = indexCatalog(masking.catalog);
      const schema = defaultSchema();
      for (const one of statement.statements) {
        const copies = one.copiesData === true || one.assignsVariables === true;
        if (copies && readsSensitive([one], tables, schema, "any")) return COPIES_SENSITIVE;
        // A locking read (FOR UPDATE) is a write of no relation: it copies nothing.
        const writes = one.relations.some((relation) => relation.access === "write") || (runsUnseenCode(one) && one.classes?.some((value) => value !== "read") === true);
        if (writes && readsSensitive([one], tables, schema, "read")) return COPIES_SENSITIVE;
        if (one.kind === "GET DIAGNOSTICS" && one.assignsVariables === true && diagnosticsSensitive) return DIAGNOSTICS_SENSITIVE;
      }
      return undefined;
    },
    /**
     * Predicates and orderings on sensitive columns in the statements that run (WHERE, JOIN,
     * HAVING, ORDER BY, GROUP BY, windows, in sub-queries too), from lineage, with the connection's
     * `masking.inference` action: as PostgreSQL's. Undefined when there are none.
     */
    inference(statement) {
      const columns = inferenceOf(statement.statements, masking.catalog, { ...lexOptions(), defaultSchema: defaultSchema() });
      if (columns.length === 0) return undefined;
      return { action: masking.config.inference, columns, reason: `predicates on sensitive columns can reveal their values: ${columns.join(", ")}` };
    },
  };
}

type Relation = MaskCatalog["byOid"] extends ReadonlyMap<number, infer R> ? R : never;

/** Relations by lowercase `schema.name` (MySQL has no OIDs; every relation's is 0). */
const indexes = new WeakMap<MaskCatalog, Map<string, Relation>>();

function indexCatalog(catalog: MaskCatalog): Map<string, Relation> {
  let index = indexes.get(catalog);
  if (index === undefined) {
    index = new Map();
    for (const relation of catalog.snapshot.relations as readonly Relation[]) index.set(`${relation.schema.toLowerCase()}.${relation.name.toLowerCase()}`, relation);
    indexes.set(catalog, index);
  }
  return index;
}

function findCaseInsensitive(styles: ReadonlyMap<string, SensitiveColumn>, name: string): SensitiveColumn | undefined {
  const lower = name.toLowerCase();
  for (const [key, value] of styles) if (key.toLowerCase() === lower) return value;
  return undefined;
}

/**
 * Whether statements read a relation with sensitive columns, or one the catalog does not know, or
 * run code whose reads the gateway cannot see (a stored function or procedure, a compound
 * statement, an EXECUTE of an unknown statement): fail closed. `access` "read" skips the relations
 * a statement only writes (the target of an INSERT is not read).
 */
function readsSensitive(statements: readonly LineageStatement[] | undefined, tables: Map<string, Relation>, defaultSchema: string | undefined, access: "any" | "read"): boolean {
  if (statements === undefined) return true;
  for (const statement of statements) {
    if (runsUnseenCode(statement)) return true;
    for (const relation of statement.relations) {
      if (access === "read" && relation.access !== "read") continue;
      const name = relation.name.toLowerCase();
      const schema = relation.schema?.toLowerCase() ?? defaultSchema?.toLowerCase();
      const candidates = schema === undefined ? [...tables.values()].filter((entry) => entry.name.toLowerCase() === name) : [tables.get(`${schema}.${name}`)].filter((entry) => entry !== undefined);
      // information_schema and other system schemas are not in the catalog and hold no declared data.
      if (candidates.length === 0 && !SYSTEM_SCHEMAS.has(schema ?? "")) return true;
      if (candidates.some((entry) => entry.sensitive.size > 0)) return true;
    }
  }
  return false;
}

/** Code whose reads no analysis sees: stored functions and procedures, compound statements, EXECUTE of an unknown statement. */
function runsUnseenCode(statement: LineageStatement): boolean {
  if (statement.executes !== undefined || statement.kind === "CALL" || statement.kind === "compound statement") return true;
  return statement.functions?.some((name) => name.includes(".") || !isBuiltinFunction(name)) === true;
}

const SYSTEM_SCHEMAS = new Set(["information_schema", "performance_schema", "mysql", "sys"]);

/** Statements after which results no longer match statements one to one (a procedure or a block may return several). */
function shiftsResults(statement: LineageStatement): boolean {
  return statement.executes !== undefined || statement.kind === "CALL" || statement.kind === "compound statement";
}

interface CachedLineage {
  readonly catalog: MaskCatalog;
  readonly key: string;
  readonly exposure: TextExposure;
}

/** What lineage makes of one statement's text, over every reading of it. */
interface TextExposure {
  /** Undefined when the result columns cannot be listed, or readings disagree on them. */
  readonly outputs: readonly MysqlExposureOutput[] | undefined;
  readonly inference: readonly Inference[];
}

const lineages = new WeakMap<LineageStatement, CachedLineage>();

function lineageOf(statement: LineageStatement & { readonly text: string }, catalog: MaskCatalog, options: MysqlExposureOptions): TextExposure {
  const key = JSON.stringify([options.defaultSchema ?? null, options.ansiQuotes === true, options.noBackslashEscapes === true, options.pipesAsConcat === true]);
  let cached = lineages.get(statement);
  if (cached === undefined || cached.catalog !== catalog || cached.key !== key) {
    cached = { catalog, key, exposure: exposureOf(statement.text, catalog, options) };
    lineages.set(statement, cached);
  }
  return cached.exposure;
}

/**
 * The lineage of output `index` of result `resultIndex`, when the result can be matched to its
 * statement and the column to the output (same name when the output has one, and no `*` expanded
 * from the catalog before it); undefined otherwise.
 */
function lineageOutput(
  statements: readonly LineageStatement[] | undefined,
  resultIndex: number,
  index: number,
  column: mysql.ColumnDefinition41,
  catalog: MaskCatalog,
  options: MysqlExposureOptions,
): MysqlExposureOutput | undefined {
  if (statements === undefined) return undefined;
  if (statements.slice(0, resultIndex).some(shiftsResults)) return undefined;
  const statement = statements[resultIndex];
  if (statement?.text === undefined || shiftsResults(statement)) return undefined;
  const output = lineageOf(statement as LineageStatement & { readonly text: string }, catalog, options).outputs?.[index];
  if (output === undefined) return undefined;
  if (output.name !== "" && output.name.toLowerCase() !== column.name.toLowerCase()) return undefined;
  return output;
}

/**
 * Lineage of a statement's text. It is lexed with the session's sql_mode, and also with each flag
 * its characters could depend on flipped (a PREPAREd text was lexed with the mode of its time): an
 * output is clean only if every reading says so, and inference findings are those of any reading.
 */
function exposureOf(text: string, catalog: MaskCatalog, options: MysqlExposureOptions): TextExposure {
  let variants: MysqlExposureOptions[] = [options];
  const flip = (flag: "ansiQuotes" | "noBackslashEscapes" | "pipesAsConcat") => (variants = variants.flatMap((variant) => [variant, { ...variant, [flag]: variant[flag] !== true }]));
  if (text.includes('"')) flip("ansiQuotes");
  if (text.includes("\\")) flip("noBackslashEscapes");
  if (text.includes("||")) flip("pipesAsConcat");
  let merged: MysqlExposureOutput[] | undefined;
  let listed = true;
  const inference = new Map<string, Inference>();
  for (const variant of variants) {
    const result = analyzeMysqlExposure(text, catalog.snapshot, variant);
    const statement = result.ok && result.statements.length === 1 ? result.statements[0] : undefined;
    for (const entry of statement?.inference ?? []) inference.set(`${entry.column}\u0000${entry.clause}`, entry);
    // Positions after a `*` expanded from a catalog that may be stale cannot be trusted.
    if (statement === undefined || statement.outputs.length === 0 || statement.expandsStar) listed = false;
    else if (merged === undefined) merged = [...statement.outputs];
    else if (merged.length !== statement.outputs.length) listed = false;
    else
      merged = merged.map((output, i) => {
        const other = statement.outputs[i] as MysqlExposureOutput;
        return {
          name: output.name === other.name ? output.name : "",
          sensitive: output.sensitive || other.sensitive,
          sources: [...new Set([...output.sources, ...other.sources])].sort(),
          uncertain: [...new Set([...output.uncertain, ...other.uncertain])],
        };
      });
  }
  return { outputs: listed ? merged : undefined, inference: [...inference.values()] };
}

/** The inference findings of the statements that run, `column (clause)`, following USE between them. */
function inferenceOf(statements: readonly LineageStatement[], catalog: MaskCatalog, options: MysqlExposureOptions): string[] {
  const found = new Set<string>();
  let schema = options.defaultSchema;
  for (const statement of statements) {
    if (statement.text !== undefined) {
      const exposure = lineageOf(statement as LineageStatement & { readonly text: string }, catalog, { ...options, defaultSchema: schema });
      for (const entry of exposure.inference) found.add(`${entry.column} (${entry.clause.replace("_", " ")})`);
    }
    if (statement.useSchema !== undefined) schema = statement.useSchema;
  }
  return [...found];
}
