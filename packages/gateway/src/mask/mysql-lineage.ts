import { statementEnd, CompoundError } from "../inspect/mysql/compound.js";
import { dangerousFunctionReason, isBuiltinFunction } from "../inspect/mysql/functions.js";
import { lex, type MysqlServer, type Token } from "../inspect/mysql/lexer.js";
import { mysqlParserLoaded, parseCanonical, render, rewriteForParser, type AstNode } from "../inspect/mysql/parser.js";
import type { CatalogRelation, CatalogSnapshot, Inference, InferenceClause } from "./lineage/index.js";
import { addTo, built, clean, createBuilder, sourceLineage, uncertainLineage, union, weight, type Lineage, type LineageBuilder } from "./lineage/sources.js";

/**
 * Lineage for masking (MySQL, MariaDB): from sqlparser-rs's tree of each statement and a catalog
 * snapshot, which result columns may carry values derived from sensitive columns, and which
 * predicates and orderings let a masked reader infer them. The decisions mirror the PostgreSQL
 * lineage (lineage/): any expression of a sensitive column is sensitive, a sub-query in a value
 * carries its outputs and its predicates, a top-level predicate is an inference finding. Only
 * COUNT(*) (and COUNT of a constant) and EXISTS of an unfiltered sub-query reveal nothing;
 * COUNT(col) is sensitive, as in PostgreSQL: it reveals which rows hold NULL, and with DISTINCT
 * how many values differ. What it cannot follow is uncertain (fail closed).
 */

/** One result column of a statement, after `*` expansion. */
export interface MysqlExposureOutput {
  /** The column's name as the result names it (alias, column name, or "" for an expression). */
  readonly name: string;
  /** The value may carry a sensitive value, or its origin is uncertain: mask it. */
  readonly sensitive: boolean;
  /** The sensitive columns (schema.table.column) it may derive from, sorted; empty when uncertain. */
  readonly sources: readonly string[];
  /** Why its origin cannot be told; empty when it can. */
  readonly uncertain: readonly string[];
}

/** What one statement can expose, from its parse tree: the shape of the PostgreSQL StatementExposure. */
export interface MysqlStatementExposure {
  /** none: no output carries a sensitive value; columns: some do; uncertain: the outputs cannot be told. */
  readonly exposure: "none" | "columns" | "uncertain";
  /**
   * One entry per result column in order (`*` and `t.*` expanded from the catalog). Empty for a
   * statement that is not a query, or whose result columns cannot be listed (exposure uncertain).
   */
  readonly outputs: readonly MysqlExposureOutput[];
  /** Predicates and orderings on sensitive columns (WHERE, JOIN, HAVING, ORDER BY, GROUP BY, windows), sub-queries included. */
  readonly inference: readonly Inference[];
  /** Why, in order found: lowercase sentences, names in backticks. */
  readonly reasons: readonly string[];
  /**
   * Some select list (sub-queries included) expanded `*` or `t.*` from the catalog: the outputs'
   * positions are right only while the catalog is current (a column added or dropped since shifts
   * them). Match them to result columns by position only with that in mind.
   */
  readonly expandsStar: boolean;
}

/** The exposure of every statement of a string, or why it could not be analysed (mask everything). */
export type MysqlExposureAnalysis = { readonly ok: true; readonly statements: readonly MysqlStatementExposure[] } | { readonly ok: false; readonly error: string };

/** How the server reads the text: the session's schema and sql_mode flags. */
export interface MysqlExposureOptions {
  readonly defaultSchema?: string | undefined;
  readonly ansiQuotes?: boolean;
  readonly noBackslashEscapes?: boolean;
  readonly pipesAsConcat?: boolean;
  readonly server?: MysqlServer | undefined;
}

const quote = (name: string): string => `\`${name}\``;
const systemSchemas: ReadonlySet<string> = new Set(["information_schema", "performance_schema", "mysql", "sys"]);
const maxDepth = 500;

class LineageLimitError extends Error {}

interface Column {
  readonly name: string;
  readonly lineage: Lineage;
}

/** A relation in a FROM clause. */
interface Rel {
  /** Names it can be referred to by, as written: its alias, or its name and `schema.name`. */
  readonly refs: readonly string[];
  /** Its columns, or undefined when unknown (a relation the catalog does not know, a table function). */
  readonly columns: readonly Column[] | undefined;
  /** What an unresolved column of it carries: clean for system schemas, uncertain otherwise. */
  readonly unknown: Lineage;
}

interface Level {
  readonly rels: readonly Rel[];
  readonly parent: Level | undefined;
  /** Output aliases, for GROUP BY, HAVING and ORDER BY (MySQL resolves them there). */
  outputs?: readonly Column[];
}

interface Cte {
  readonly columns: readonly Column[] | undefined;
}

type Ctes = ReadonlyMap<string, Cte>;

interface Run {
  readonly relations: RelationIndex;
  readonly schema: string | undefined;
  readonly inference: Map<string, Inference>;
  readonly reasons: Set<string>;
  /** Predicate lineages of the sub-queries being analysed, innermost last. */
  readonly collectors: LineageBuilder[];
  /** Some select list expanded `*` or `t.*`. */
  expandsStar: boolean;
  depth: number;
}

/** A query's result: its columns (undefined when they cannot be listed) and the union of their lineages. */
interface QueryInfo {
  readonly columns: readonly Column[] | undefined;
  readonly whole: Lineage;
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function tagged(node: unknown): [string, unknown] | undefined {
  if (typeof node === "string") return [node, undefined];
  if (!isObject(node)) return undefined;
  const keys = Object.keys(node);
  if (keys.length !== 1) return undefined;
  const key = keys[0] as string;
  return [key, node[key]];
}

function identValue(part: unknown): string | undefined {
  if (!isObject(part)) return undefined;
  const identifier = isObject(part["Identifier"]) ? part["Identifier"] : part;
  return typeof identifier["value"] === "string" ? identifier["value"] : undefined;
}

function nameParts(name: unknown): string[] {
  if (!Array.isArray(name)) return [];
  return name.map(identValue).filter((part): part is string => part !== undefined);
}

function enter(run: Run): void {
  run.depth += 1;
  if (run.depth > maxDepth) throw new LineageLimitError("statement is nested too deeply to analyse");
}

function record(run: Run, lineage: Lineage, clause: InferenceClause): void {
  for (const column of lineage.sources) {
    const key = `${column}\u0000${clause}`;
    if (!run.inference.has(key)) run.inference.set(key, { column, clause });
  }
  for (const collector of run.collectors) addTo(collector, lineage);
}

function relationColumns(relation: CatalogRelation): Column[] {
  return relation.columns.map((name) => ({
    name,
    lineage: relation.sensitive.has(name) ? sourceLineage(`${relation.schema}.${relation.name}.${name}`) : clean,
  }));
}

/** Relations by `schema.name` as written, and by the same in lowercase (several when names differ only in case). */
interface RelationIndex {
  readonly exact: Map<string, CatalogRelation>;
  readonly lower: Map<string, CatalogRelation[]>;
}

function indexRelations(snapshot: CatalogSnapshot): RelationIndex {
  const exact = new Map<string, CatalogRelation>();
  const lower = new Map<string, CatalogRelation[]>();
  for (const relation of snapshot.relations) {
    exact.set(`${relation.schema}.${relation.name}`, relation);
    const key = `${relation.schema}.${relation.name}`.toLowerCase();
    lower.set(key, [...(lower.get(key) ?? []), relation]);
  }
  return { exact, lower };
}

/** The relation a name means: the one spelled so, or the only one spelled so without case; "ambiguous" when several differ only in case. */
function findRelation(index: RelationIndex, schema: string, name: string): CatalogRelation | "ambiguous" | undefined {
  const exact = index.exact.get(`${schema}.${name}`);
  if (exact !== undefined) return exact;
  const loose = index.lower.get(`${schema}.${name}`.toLowerCase()) ?? [];
  return loose.length > 1 ? "ambiguous" : loose[0];
}

function wholeOf(columns: readonly Column[] | undefined, unknown: Lineage): Lineage {
  if (columns === undefined) return unknown;
  const builder = createBuilder();
  for (const column of columns) addTo(builder, column.lineage);
  return built(builder);
}

// ---- names ----

/** A column reference `parts` (column, rel.column, schema.rel.column) in `level` and its parents. */
function resolveColumn(parts: readonly string[], level: Level | undefined, aliases: boolean): Lineage {
  const written = parts.join(".");
  const first = parts[0];
  // System variables hold settings, not rows.
  if (first !== undefined && first.startsWith("@@")) return clean;
  if (first !== undefined && first.startsWith("@")) return uncertainLineage(`reads user variable ${quote(first)}`);
  const column = (parts.at(-1) ?? "").toLowerCase();
  const qualifier = parts.slice(0, -1).join(".");
  // What may also be meant, whatever an outer level resolves: relations whose columns are not
  // known, and qualifiers that match only without case (aliases are case-sensitive on most servers).
  let pending: Lineage | undefined;
  for (let current = level; current !== undefined; current = current.parent) {
    let found: Lineage | undefined;
    for (const rel of current.rels) {
      const match = qualifierMatch(rel, qualifier);
      if (match === "none") continue;
      if (rel.columns === undefined) {
        pending = union(pending ?? clean, rel.unknown);
        continue;
      }
      const item = rel.columns.find((entry) => entry.name.toLowerCase() === column);
      if (item === undefined) continue;
      if (match === "exact") found = union(found ?? clean, item.lineage);
      else pending = union(pending ?? clean, item.lineage);
    }
    // Aliases of the select list (GROUP BY, HAVING, ORDER BY): ORDER BY prefers them, GROUP BY
    // and HAVING prefer the FROM columns; both count.
    if (aliases && current === level && qualifier === "") {
      const output = current.outputs?.find((entry) => entry.name.toLowerCase() === column);
      if (output !== undefined) found = union(found ?? clean, output.lineage);
    }
    if (found !== undefined) return union(found, pending ?? clean);
  }
  return pending ?? uncertainLineage(`column ${quote(written)} is not found in the catalog`);
}

function qualifierMatch(rel: Rel, qualifier: string): "exact" | "loose" | "none" {
  if (qualifier === "" || rel.refs.includes(qualifier)) return "exact";
  const lower = qualifier.toLowerCase();
  return rel.refs.some((ref) => ref.toLowerCase() === lower) ? "loose" : "none";
}

// ---- expressions ----

/**
 * How sub-queries count: `value` (an output): their outputs and their predicates, both shape the
 * value; `predicate`: their outputs only, their predicates being findings of their own.
 */
type Mode = "value" | "predicate";

interface Env {
  readonly level: Level | undefined;
  readonly ctes: Ctes;
  /** Resolve select-list aliases (GROUP BY, HAVING, ORDER BY). */
  readonly aliases: boolean;
}

const skipKeys: ReadonlySet<string> = new Set(["span", "data_type", "charset", "collation", "format", "quote_style", "leading_field", "last_field", "fractional_seconds_precision"]);

function lineageOf(node: unknown, env: Env, run: Run, mode: Mode): Lineage {
  const builder = createBuilder();
  expression(node, env, run, mode, builder);
  return built(builder);
}

function isQuery(node: Json): boolean {
  return Object.hasOwn(node, "body") && Object.hasOwn(node, "with");
}

function subquery(node: unknown, env: Env, run: Run, mode: Mode, into: LineageBuilder, outputs: boolean): void {
  const collector = createBuilder();
  run.collectors.push(collector);
  let info: QueryInfo;
  try {
    info = query(node, env.level, env.ctes, run);
  } finally {
    run.collectors.pop();
  }
  if (outputs) addTo(into, info.whole);
  if (mode === "value") addTo(into, built(collector));
}

function expression(node: unknown, env: Env, run: Run, mode: Mode, into: LineageBuilder): void {
  if (node === null || typeof node !== "object") return;
  enter(run);
  try {
    if (Array.isArray(node)) {
      for (const item of node) expression(item, env, run, mode, into);
      return;
    }
    const json = node as Json;
    if (isQuery(json)) {
      subquery(json, env, run, mode, into, true);
      return;
    }
    const tag = tagged(json);
    if (tag !== undefined) {
      const [name, body] = tag;
      switch (name) {
        case "Identifier": {
          const value = identValue(body);
          if (value !== undefined) addTo(into, resolveColumn([value], env.level, env.aliases));
          return;
        }
        case "CompoundIdentifier":
          addTo(into, resolveColumn(nameParts(body), env.level, env.aliases));
          return;
        case "Value":
        case "TypedString":
          return;
        case "Function":
          call(body as Json, env, run, mode, into);
          return;
        case "Subquery":
          subquery(body, env, run, mode, into, true);
          return;
        case "Exists":
          subquery((body as Json)["subquery"], env, run, mode, into, false);
          return;
        case "InSubquery": {
          const sub = body as Json;
          expression(sub["expr"], env, run, mode, into);
          subquery(sub["subquery"], env, run, mode, into, true);
          return;
        }
        case "Wildcard":
        case "QualifiedWildcard":
          addTo(into, uncertainLineage("`*` inside an expression"));
          return;
        default:
          break;
      }
    }
    for (const key in json) {
      if (skipKeys.has(key)) continue;
      expression(json[key], env, run, mode, into);
    }
  } finally {
    run.depth -= 1;
  }
}

function call(body: Json, env: Env, run: Run, mode: Mode, into: LineageBuilder): void {
  const parts = nameParts(body["name"]);
  const name = (parts.at(-1) ?? "").toLowerCase();
  const written = parts.join(".");
  if (parts.length !== 1 || !isBuiltinFunction(name)) {
    addTo(into, uncertainLineage(`calls stored function ${quote(written)}`));
  } else if (dangerousFunctionReason(name) !== undefined) {
    addTo(into, uncertainLineage(`calls ${quote(written)}, which reads outside the catalog`));
  }
  const args = body["args"];
  const list = isObject(args) && isObject(args["List"]) ? args["List"] : undefined;
  if (list !== undefined) {
    for (const arg of Array.isArray(list["args"]) ? list["args"] : []) {
      const inner = tagged(arg);
      const value = inner?.[0] === "Unnamed" || inner?.[0] === "ExprNamed" ? inner[1] : arg;
      const unnamed = tagged(value);
      // COUNT(*) reads no column's value.
      if (unnamed?.[0] === "Wildcard" && name === "count") continue;
      if (unnamed?.[0] === "Expr") expression(unnamed[1], env, run, mode, into);
      else if (unnamed?.[0] === "QualifiedWildcard" || unnamed?.[0] === "Wildcard") addTo(into, uncertainLineage(`\`*\` argument of ${quote(written)}`));
      else expression(value, env, run, mode, into);
    }
    for (const clause of Array.isArray(list["clauses"]) ? list["clauses"] : []) {
      const tag = tagged(clause);
      if (tag?.[0] === "OrderBy") {
        const order = lineageOf(tag[1], env, run, "predicate");
        record(run, order, "order_by");
        addTo(into, order);
      } else if (tag?.[0] === "Separator") continue;
      else expression(clause, env, run, mode, into);
    }
  } else if (isObject(args) && Object.hasOwn(args, "Subquery")) {
    subquery(args["Subquery"], env, run, mode, into, true);
  } else if (args !== "None" && args !== undefined && args !== null) {
    addTo(into, uncertainLineage(`arguments of ${quote(written)}`));
  }
  if (body["filter"] !== null && body["filter"] !== undefined) {
    const filter = lineageOf(body["filter"], env, run, "predicate");
    record(run, filter, "where");
    addTo(into, filter);
  }
  const within = body["within_group"];
  if (Array.isArray(within) && within.length > 0) {
    const order = lineageOf(within, env, run, "predicate");
    record(run, order, "order_by");
    addTo(into, order);
  }
  const over = body["over"];
  if (over !== null && over !== undefined) {
    const spec = isObject(over) && isObject(over["WindowSpec"]) ? over["WindowSpec"] : undefined;
    if (spec === undefined) addTo(into, uncertainLineage("a named window"));
    else {
      const window = lineageOf([spec["partition_by"], spec["order_by"], spec["window_frame"]], env, run, "predicate");
      record(run, window, "window");
      addTo(into, window);
    }
  }
}

// ---- queries ----

function query(node: unknown, parent: Level | undefined, outer: Ctes, run: Run): QueryInfo {
  if (!isObject(node)) return { columns: undefined, whole: uncertainLineage("a query of unknown shape") };
  enter(run);
  try {
    const ctes = withClause(node["with"], parent, outer, run);
    const locks = node["locks"];
    if (Array.isArray(locks) && locks.length > 0) run.reasons.add("locks rows");
    const { info, level } = setExpr(node["body"], parent, ctes, run);
    const order = node["order_by"];
    if (isObject(order)) {
      const env: Env = { level, ctes, aliases: true };
      const kind = order["kind"];
      const expressions = isObject(kind) && Array.isArray(kind["Expressions"]) ? kind["Expressions"] : undefined;
      if (expressions === undefined) record(run, info.whole, "order_by");
      else
        for (const item of expressions) {
          const expr = isObject(item) ? item["expr"] : undefined;
          record(run, ordinalOrExpression(expr, info, env, run), "order_by");
        }
    }
    const limit = node["limit_clause"];
    if (limit !== null && limit !== undefined) record(run, lineageOf(limit, { level, ctes, aliases: true }, run, "predicate"), "limit");
    return info;
  } finally {
    run.depth -= 1;
  }
}

/** `ORDER BY 2` / `GROUP BY 2`: the second output; otherwise the expression. */
function ordinalOrExpression(expr: unknown, info: QueryInfo, env: Env, run: Run): Lineage {
  const value = isObject(expr) && isObject(expr["Value"]) ? expr["Value"]["value"] : undefined;
  const number = isObject(value) && Array.isArray(value["Number"]) ? value["Number"][0] : undefined;
  if (typeof number === "string" && /^\d+$/.test(number)) {
    const column = info.columns?.[Number(number) - 1];
    return column?.lineage ?? info.whole;
  }
  return lineageOf(expr, env, run, "predicate");
}

function withClause(node: unknown, parent: Level | undefined, outer: Ctes, run: Run): Ctes {
  if (!isObject(node)) return outer;
  const ctes = new Map(outer);
  const recursive = node["recursive"] === true;
  for (const table of Array.isArray(node["cte_tables"]) ? node["cte_tables"] : []) {
    if (!isObject(table)) continue;
    const alias = isObject(table["alias"]) ? table["alias"] : {};
    const name = identValue(alias["name"]) ?? "";
    const renames = Array.isArray(alias["columns"]) ? alias["columns"].map((item) => identValue(isObject(item) && isObject(item["name"]) ? item["name"] : item) ?? "") : [];
    const rename = (columns: readonly Column[] | undefined): readonly Column[] | undefined =>
      columns === undefined || renames.length === 0 ? columns : renames.length !== columns.length ? undefined : columns.map((column, index) => ({ name: renames[index] ?? column.name, lineage: column.lineage }));
    if (!recursive) {
      ctes.set(name, { columns: rename(query(table["query"], parent, ctes, run).columns) });
      continue;
    }
    // A recursive CTE: start from what its anchor gives, grow until nothing changes.
    ctes.set(name, { columns: undefined });
    const body = isObject(table["query"]) ? table["query"]["body"] : undefined;
    const anchor = isObject(body) && isObject(body["SetOperation"]) ? body["SetOperation"]["left"] : undefined;
    let columns: readonly Column[] | undefined = anchor === undefined ? undefined : rename(setExpr(anchor, parent, ctes, run).info.columns);
    for (let pass = 0; columns !== undefined && pass < 16; pass++) {
      ctes.set(name, { columns });
      const next = rename(query(table["query"], parent, ctes, run).columns);
      if (next === undefined || next.length !== columns.length) {
        columns = undefined;
        break;
      }
      const grown = next.map((column, index) => ({ name: column.name, lineage: union((columns as readonly Column[])[index]?.lineage ?? clean, column.lineage) }));
      const same = grown.every((column, index) => weight(column.lineage) === weight((columns as readonly Column[])[index]?.lineage ?? clean));
      columns = grown;
      if (same) break;
    }
    ctes.set(name, { columns });
  }
  return ctes;
}

function setExpr(node: unknown, parent: Level | undefined, ctes: Ctes, run: Run): { info: QueryInfo; level: Level | undefined } {
  const tag = tagged(node);
  if (tag === undefined) return { info: { columns: undefined, whole: uncertainLineage("a query of unknown shape") }, level: undefined };
  const [name, body] = tag;
  switch (name) {
    case "Select":
      return select(body as Json, parent, ctes, run);
    case "Query":
      return { info: query(body, parent, ctes, run), level: undefined };
    case "SetOperation": {
      const operation = body as Json;
      const left = setExpr(operation["left"], parent, ctes, run).info;
      const right = setExpr(operation["right"], parent, ctes, run).info;
      if (left.columns === undefined || right.columns === undefined || left.columns.length !== right.columns.length) {
        return { info: { columns: undefined, whole: union(union(left.whole, right.whole), uncertainLineage("a set operation whose branches cannot be matched")) }, level: undefined };
      }
      // Column i of the result may come from column i of any branch; names come from the first.
      const rightColumns = right.columns;
      const columns = left.columns.map((column, index) => ({ name: column.name, lineage: union(column.lineage, rightColumns[index]?.lineage ?? clean) }));
      // EXCEPT and INTERSECT compare whole rows: a predicate over both sides.
      if (operation["op"] !== "Union") record(run, union(left.whole, right.whole), "where");
      return { info: { columns, whole: union(left.whole, right.whole) }, level: { rels: [], parent, outputs: columns } };
    }
    case "Values": {
      const rows = isObject(body) && Array.isArray(body["rows"]) ? body["rows"] : [];
      let columns: Column[] | undefined;
      const env: Env = { level: parent, ctes, aliases: false };
      for (const row of rows) {
        const exprs = Array.isArray(row) ? row : isObject(row) && Array.isArray(row["Row"]) ? row["Row"] : isObject(row) && Array.isArray(row["exprs"]) ? row["exprs"] : undefined;
        if (exprs === undefined) return { info: { columns: undefined, whole: uncertainLineage("a VALUES row of unknown shape") }, level: undefined };
        const lineages = exprs.map((expr) => lineageOf(expr, env, run, "value"));
        columns = columns === undefined ? lineages.map((lineage, index) => ({ name: `column_${index}`, lineage })) : columns.map((column, index) => ({ name: column.name, lineage: union(column.lineage, lineages[index] ?? clean) }));
      }
      return { info: { columns: columns ?? [], whole: wholeOf(columns ?? [], clean) }, level: undefined };
    }
    default:
      return { info: { columns: undefined, whole: uncertainLineage(`a ${name} query`) }, level: undefined };
  }
}

function aliasName(alias: unknown): { name: string | undefined; columns: string[] } {
  if (!isObject(alias)) return { name: undefined, columns: [] };
  const columns = Array.isArray(alias["columns"]) ? alias["columns"].map((item) => identValue(isObject(item) && isObject(item["name"]) ? item["name"] : item) ?? "") : [];
  return { name: identValue(alias["name"]), columns };
}

function renamed(columns: readonly Column[] | undefined, names: readonly string[]): readonly Column[] | undefined {
  if (columns === undefined || names.length === 0) return columns;
  if (names.length !== columns.length) return undefined;
  return columns.map((column, index) => ({ name: names[index] ?? column.name, lineage: column.lineage }));
}

/** The relations of one table factor (a nested join gives several). */
function tableFactor(node: unknown, level: Level, ctes: Ctes, run: Run): Rel[] {
  const tag = tagged(node);
  if (tag === undefined) return [{ refs: [], columns: undefined, unknown: uncertainLineage("a table factor of unknown shape") }];
  const [kind, body] = tag;
  const factor = isObject(body) ? body : {};
  const alias = aliasName(factor["alias"]);
  switch (kind) {
    case "Table": {
      const parts = nameParts(factor["name"]);
      const name = parts.at(-1) ?? "";
      const written = parts.join(".");
      const args = factor["args"];
      if (args !== null && args !== undefined) return [{ refs: alias.name === undefined ? [] : [alias.name], columns: undefined, unknown: uncertainLineage(`table function ${quote(written)}`) }];
      const refs = alias.name !== undefined ? [alias.name] : [name, written];
      if (parts.length === 1) {
        const cte = ctes.get(name);
        if (cte !== undefined) return [{ refs, columns: renamed(cte.columns, alias.columns), unknown: uncertainLineage(`columns of ${quote(written)}`) }];
        // A WITH query named so only without case: the server may read either.
        if ([...ctes.keys()].some((key) => key.toLowerCase() === name.toLowerCase())) return [{ refs, columns: undefined, unknown: uncertainLineage(`${quote(written)} names a WITH query only without case`) }];
      }
      const schema = parts.length >= 2 ? parts.at(-2) : run.schema;
      const relation = schema === undefined ? undefined : findRelation(run.relations, schema, name);
      if (relation === "ambiguous") return [{ refs, columns: undefined, unknown: uncertainLineage(`${quote(written)} matches several relations without case`) }];
      if (relation !== undefined) {
        if (alias.name === undefined && parts.length === 1) refs.push(`${relation.schema}.${relation.name}`);
        return [{ refs, columns: renamed(relationColumns(relation), alias.columns), unknown: uncertainLineage(`columns of ${quote(written)}`) }];
      }
      if (schema !== undefined && systemSchemas.has(schema.toLowerCase())) return [{ refs, columns: undefined, unknown: clean }];
      if (parts.length === 1 && (name.toLowerCase() === "dual")) return [{ refs, columns: [], unknown: clean }];
      run.reasons.add(`reads ${quote(written)}, which the catalog does not know`);
      return [{ refs, columns: undefined, unknown: uncertainLineage(`reads ${quote(written)}, which the catalog does not know`) }];
    }
    case "Derived": {
      // LATERAL sees the relations before it.
      const parent = factor["lateral"] === true ? level : level.parent;
      const info = query(factor["subquery"], parent, ctes, run);
      return [{ refs: alias.name === undefined ? [] : [alias.name], columns: renamed(info.columns, alias.columns), unknown: uncertainLineage("columns of a derived table") }];
    }
    case "NestedJoin": {
      const rels = tablesWithJoins([factor["table_with_joins"]], level, ctes, run);
      return rels;
    }
    default:
      return [{ refs: alias.name === undefined ? [] : [alias.name], columns: undefined, unknown: uncertainLineage(`a ${kind} table factor`) }];
  }
}

function columnsNamed(rels: readonly Rel[], name: string): Lineage {
  return resolveColumn([name], { rels, parent: undefined }, false);
}

function tablesWithJoins(items: readonly unknown[], level: Level, ctes: Ctes, run: Run): Rel[] {
  const all: Rel[] = [];
  for (const item of items) {
    if (!isObject(item)) continue;
    const left: Rel[] = tableFactor(item["relation"], { rels: all, parent: level.parent }, ctes, run);
    for (const join of Array.isArray(item["joins"]) ? item["joins"] : []) {
      if (!isObject(join)) continue;
      const right = tableFactor(join["relation"], { rels: [...all, ...left], parent: level.parent }, ctes, run);
      const operator = tagged(join["join_operator"]);
      const constraint = operator?.[1];
      const scope: Level = { rels: [...all, ...left, ...right], parent: level.parent };
      const env: Env = { level: scope, ctes, aliases: false };
      const on = tagged(constraint);
      if (on?.[0] === "On") record(run, lineageOf(on[1], env, run, "predicate"), "join");
      else if (on?.[0] === "Using") {
        for (const column of Array.isArray(on[1]) ? on[1] : []) {
          const parts = Array.isArray(column) ? nameParts(column) : isObject(column) && Array.isArray(column["ObjectName"]) ? nameParts(column["ObjectName"]) : [identValue(column) ?? ""];
          const name = parts.at(-1) ?? "";
          record(run, union(columnsNamed(left, name), columnsNamed(right, name)), "join");
        }
      } else if (on?.[0] === "Natural") {
        for (const rel of right) {
          if (rel.columns === undefined) record(run, wholeOf(undefined, rel.unknown), "join");
          for (const column of rel.columns ?? []) record(run, union(column.lineage, columnsNamed(left, column.name)), "join");
        }
      } else if (constraint !== undefined && on?.[0] !== "None" && constraint !== "None") {
        record(run, lineageOf(constraint, env, run, "predicate"), "join");
      }
      left.push(...right);
    }
    all.push(...left);
  }
  return all;
}

function outputName(expr: unknown): string {
  const tag = tagged(expr);
  if (tag?.[0] === "Identifier") return identValue(tag[1]) ?? "";
  if (tag?.[0] === "CompoundIdentifier") return nameParts(tag[1]).at(-1) ?? "";
  return "";
}

const unsupportedSelect: readonly string[] = ["lateral_views", "connect_by", "cluster_by", "distribute_by", "sort_by"];

function select(body: Json, parent: Level | undefined, ctes: Ctes, run: Run): { info: QueryInfo; level: Level } {
  const level: { rels: Rel[]; parent: Level | undefined; outputs?: readonly Column[] } = { rels: [], parent };
  level.rels = tablesWithJoins(Array.isArray(body["from"]) ? body["from"] : [], level, ctes, run);
  const env: Env = { level, ctes, aliases: false };
  const uncertain: string[] = [];
  for (const key of unsupportedSelect) {
    const value = body[key];
    if (Array.isArray(value) ? value.length > 0 : value !== null && value !== undefined) uncertain.push(`a \`${key}\` clause`);
  }
  if (body["prewhere"] !== null && body["prewhere"] !== undefined) uncertain.push("a PREWHERE clause");
  if (body["into"] !== null && body["into"] !== undefined) run.reasons.add("SELECT ... INTO stores values past masking");
  let columns: Column[] | undefined = [];
  for (const item of Array.isArray(body["projection"]) ? body["projection"] : []) {
    const tag = tagged(item);
    if (tag === undefined) {
      columns = undefined;
      continue;
    }
    const [kind, value] = tag;
    if (kind === "UnnamedExpr") columns?.push({ name: outputName(value), lineage: lineageOf(value, env, run, "value") });
    else if (kind === "ExprWithAlias" && isObject(value)) columns?.push({ name: identValue(value["alias"]) ?? "", lineage: lineageOf(value["expr"], env, run, "value") });
    else if (kind === "Wildcard") {
      run.expandsStar = true;
      for (const rel of level.rels) {
        if (rel.columns === undefined) {
          uncertain.push("`*` over a relation whose columns are not known");
          columns = undefined;
        } else columns?.push(...rel.columns);
      }
    } else if (kind === "QualifiedWildcard" && Array.isArray(value)) {
      run.expandsStar = true;
      const qualifier = nameParts(isObject(value[0]) ? value[0]["ObjectName"] : undefined).join(".");
      const rels = level.rels.filter((rel) => qualifierMatch(rel, qualifier) !== "none");
      if (rels.length === 0) {
        uncertain.push(`\`${qualifier}.*\` names no relation in scope`);
        columns = undefined;
      }
      for (const rel of rels) {
        if (rel.columns === undefined) {
          uncertain.push(`\`${qualifier}.*\` over a relation whose columns are not known`);
          columns = undefined;
        } else columns?.push(...rel.columns);
      }
    } else {
      uncertain.push(`a select item of kind ${quote(kind)}`);
      columns = undefined;
    }
  }
  const distinct = body["distinct"];
  if (isObject(distinct) && Object.hasOwn(distinct, "On")) record(run, lineageOf(distinct["On"], env, run, "predicate"), "distinct_on");
  const outputs = columns ?? [];
  level.outputs = outputs;
  const aliasEnv: Env = { level, ctes, aliases: true };
  if (body["selection"] !== null && body["selection"] !== undefined) record(run, lineageOf(body["selection"], env, run, "predicate"), "where");
  const groupBy = body["group_by"];
  const groups = isObject(groupBy) && Array.isArray(groupBy["Expressions"]) ? groupBy["Expressions"][0] : undefined;
  const info: QueryInfo = { columns, whole: wholeOf(columns, uncertainLineage(uncertain[0] ?? "outputs cannot be listed")) };
  if (Array.isArray(groups)) for (const expr of groups) record(run, ordinalOrExpression(expr, info, aliasEnv, run), "group_by");
  else if (groupBy !== null && groupBy !== undefined && !isObject(groupBy)) record(run, info.whole, "group_by");
  if (body["having"] !== null && body["having"] !== undefined) record(run, lineageOf(body["having"], aliasEnv, run, "predicate"), "having");
  if (body["qualify"] !== null && body["qualify"] !== undefined) record(run, lineageOf(body["qualify"], aliasEnv, run, "predicate"), "where");
  for (const window of Array.isArray(body["named_window"]) ? body["named_window"] : []) record(run, lineageOf(window, env, run, "predicate"), "window");
  if (uncertain.length > 0) {
    const reason = uncertain[0] as string;
    return { info: { columns: undefined, whole: union(info.whole, uncertainLineage(reason)) }, level };
  }
  return { info, level };
}

// ---- statements ----

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

const queryStarts: ReadonlySet<string> = new Set(["SELECT", "WITH", "VALUES", "TABLE"]);

function uncertainStatement(reason: string): MysqlStatementExposure {
  return { exposure: "uncertain", outputs: [], inference: [], reasons: [reason], expandsStar: false };
}

function analyzeTokens(tokens: readonly Token[], pipesAsConcat: boolean, run: Run): MysqlStatementExposure {
  const first = tokens[0];
  const isQueryStart = first !== undefined && ((first.kind === "word" && queryStarts.has(first.upper)) || (first.kind === "op" && first.value === "("));
  if (!isQueryStart) return uncertainStatement(`${first?.upper || first?.value || "an empty statement"} is not a query: its result columns are not analysed`);
  const parsed = parseCanonical(render(rewriteForParser(tokens, pipesAsConcat)));
  if (!parsed.ok) return uncertainStatement(`the statement cannot be parsed: ${parsed.error}`);
  const node = parsed.statements[0];
  const tag = tagged(node);
  if (parsed.statements.length !== 1 || tag?.[0] !== "Query") return uncertainStatement("the statement is not a query");
  const info = query(tag[1], undefined, new Map(), run);
  const inference = [...run.inference.values()];
  if (info.columns === undefined) {
    const reasons = [...info.whole.uncertain, ...run.reasons];
    return { exposure: "uncertain", outputs: [], inference, reasons: reasons.length > 0 ? reasons : ["the result columns cannot be listed"], expandsStar: run.expandsStar };
  }
  const reasons = new Set(run.reasons);
  let uncertain = false;
  let sensitive = false;
  const outputs = info.columns.map((column, index): MysqlExposureOutput => {
    const sources = [...column.lineage.sources].sort();
    const why = [...column.lineage.uncertain].sort();
    for (const reason of why) reasons.add(`output ${index + 1} is uncertain: ${reason}`);
    if (sources.length > 0) reasons.add(`output ${index + 1} derives from ${sources.map(quote).join(", ")}`);
    uncertain ||= why.length > 0;
    sensitive ||= sources.length > 0 || why.length > 0;
    return { name: column.name, sensitive: sources.length > 0 || why.length > 0, sources, uncertain: why };
  });
  if (reasons.size === 0) reasons.add("no output derives from a sensitive column");
  return { exposure: uncertain ? "uncertain" : sensitive ? "columns" : "none", outputs, inference, reasons: [...reasons], expandsStar: run.expandsStar };
}

function setsSqlMode(tokens: readonly Token[]): boolean {
  return tokens[0]?.upper === "SET" && tokens.some((token) => (token.kind === "word" || token.kind === "sysvar" || token.kind === "ident") && /sql_mode$/i.test(token.value));
}

/**
 * Which result columns of each statement in `sql` may carry values derived from sensitive columns,
 * and which predicates infer them, from sqlparser-rs's tree and the catalog snapshot (relation and
 * column names compared without case). Statements are split as the server splits a multi-statement
 * string; `USE` changes the schema of those after it, and every statement after a change of
 * sql_mode is uncertain. Statements that are not queries (SHOW, CALL, EXECUTE...) are uncertain
 * with no outputs: the caller decides from what it knows. Synchronous; await loadMysqlAnalyzer()
 * first. The result is frozen.
 */
export function analyzeMysqlExposure(sql: string, catalog: CatalogSnapshot, options: MysqlExposureOptions = {}): MysqlExposureAnalysis {
  if (typeof sql !== "string") throw new TypeError("analyzeMysqlExposure: `sql` must be a string");
  if (!mysqlParserLoaded()) throw new TypeError("analyzeMysqlExposure: the parser is not loaded: await loadMysqlAnalyzer() first");
  if (typeof catalog !== "object" || catalog === null || !Array.isArray(catalog.relations)) throw new TypeError("analyzeMysqlExposure: `catalog.relations` must be an array");
  const lexed = lex(sql, { ansiQuotes: options.ansiQuotes === true, noBackslashEscapes: options.noBackslashEscapes === true, server: options.server });
  if (!lexed.ok) return deepFreeze({ ok: false, error: lexed.error });
  const relations = indexRelations(catalog);
  const hasSensitive = catalog.relations.some((relation) => relation.sensitive.size > 0);
  const statements: MysqlStatementExposure[] = [];
  let schema = options.defaultSchema;
  let modeChanged = false;
  try {
    const tokens = lexed.tokens;
    let i = 0;
    while (i < tokens.length) {
      if (tokens[i]?.kind === "semicolon") {
        i += 1;
        continue;
      }
      const end = statementEnd(tokens, i);
      const statementTokens = tokens.slice(i, end);
      i = end + 1;
      if (modeChanged) {
        statements.push(uncertainStatement("an earlier statement of the string changes `sql_mode`"));
        continue;
      }
      const run: Run = { relations, schema, inference: new Map(), reasons: new Set(), collectors: [], expandsStar: false, depth: 0 };
      const exposure = analyzeTokens(statementTokens, options.pipesAsConcat === true, run);
      statements.push(!hasSensitive && exposure.outputs.length > 0 ? { ...exposure, exposure: "none", outputs: exposure.outputs.map((output) => ({ ...output, sensitive: false, sources: [], uncertain: [] })), inference: [] } : exposure);
      const head = statementTokens[0];
      const target = statementTokens[1];
      if (head?.upper === "USE" && target !== undefined && (target.kind === "ident" || target.kind === "word")) schema = target.value;
      if (setsSqlMode(statementTokens)) modeChanged = true;
    }
  } catch (error) {
    if (error instanceof LineageLimitError || error instanceof RangeError) return deepFreeze({ ok: false, error: error.message || "statement is nested too deeply to analyse" });
    if (error instanceof CompoundError) return deepFreeze({ ok: false, error: error.message });
    throw error;
  }
  return deepFreeze({ ok: true, statements });
}

/**
 * The view analyser for MySQL: which columns of a view definition (information_schema.VIEWS'
 * VIEW_DEFINITION, names qualified in backticks) derive from sensitive columns (an uncertain
 * output counts as one), or "uncertain" when the result columns cannot be listed (or the parser is
 * not loaded).
 */
export function mysqlViewLineage(definition: string, snapshot: CatalogSnapshot): readonly boolean[] | "uncertain" {
  if (!mysqlParserLoaded()) return "uncertain";
  const result = analyzeMysqlExposure(definition, snapshot);
  const statement = result.ok && result.statements.length === 1 ? result.statements[0] : undefined;
  // An uncertain output is sensitive: the others are told apart.
  if (statement === undefined || statement.outputs.length === 0) return "uncertain";
  return statement.outputs.map((output) => output.sensitive);
}
