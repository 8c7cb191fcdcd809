import type {
  A_Const,
  A_Expr,
  A_Indirection,
  ColumnRef,
  CommonTableExpr,
  DeleteStmt,
  FuncCall,
  GroupingSet,
  InsertStmt,
  JoinExpr,
  List,
  MergeStmt,
  MergeWhenClause,
  MultiAssignRef,
  RangeFunction,
  RangeSubselect,
  RangeTableSample,
  RangeVar,
  ResTarget,
  ReturningClause,
  ReturningOption,
  RowExpr,
  SelectStmt,
  SortBy,
  SubLink,
  UpdateStmt,
  WindowDef,
  WithClause,
} from "libpg-query";
import { quote } from "../../inspect/postgres/facts.js";
import { classifyFunction, classifyOperator, compileSafeFunctions } from "../../inspect/postgres/functions.js";
import { names, stringConst, unwrap } from "../../inspect/postgres/walk.js";
import { columnSource, resolveRelation, type Column, type KnownRelation, type ResolvedRelation } from "./catalog.js";
import {
  copied,
  enter,
  findCte,
  findRte,
  leave,
  lookup,
  predicate,
  rename,
  resolveName,
  take,
  unresolved,
  type CteEntry,
  type CteScope,
  type FromResult,
  type InferenceClause,
  type Level,
  type Rte,
  type Run,
} from "./scope.js";
import { addTo, built, clean, createBuilder, isTainted, sourceLineage, uncertainLineage, union, weight, type Lineage, type LineageBuilder } from "./sources.js";

type Json = Record<string, unknown>;

/**
 * How an expression's sub-queries count: `value` (an output, an assigned or inserted value): their
 * outputs and their predicates, since both shape the value; `predicate` (WHERE, ORDER BY...):
 * their outputs only, their own predicates being findings of their own clauses.
 */
type Mode = "value" | "predicate";

/** Lineage ignores the safe-functions list: a function marked safe to call may still read sensitive tables. */
const noSafeFunctions = compileSafeFunctions(undefined);

/** Where an expression is evaluated. */
export interface Env {
  readonly level: Level | undefined;
  readonly ctes: CteScope | undefined;
  /** The query's named windows (WINDOW w AS ...). */
  readonly windows?: ReadonlyMap<string, Lineage>;
}

/** One item of a target list (or RETURNING list), before `*` expansion. */
export interface Output {
  readonly star: boolean;
  readonly name: string;
  readonly lineage: Lineage;
  /** The columns it expands to (one for a non-star item); undefined when a `*` cannot be expanded. */
  readonly expanded: readonly Column[] | undefined;
}

/** What a query gives whoever reads it. */
export interface QueryInfo {
  readonly outputs: readonly Output[];
  /** The columns after `*` expansion; undefined when some `*` cannot be expanded. */
  readonly columns: readonly Column[] | undefined;
  /** The union of every output. */
  readonly whole: Lineage;
}

const emptyInfo: QueryInfo = { outputs: [], columns: [], whole: clean };

function lineageOf(node: unknown, env: Env, run: Run, mode: Mode): Lineage {
  const builder = createBuilder();
  expression(node, env, run, mode, builder);
  return built(builder);
}

function unionOf(lineages: Iterable<Lineage>): Lineage {
  let result = clean;
  for (const lineage of lineages) result = union(result, lineage);
  return result;
}

/** Records a clause's predicate over `node`. */
function clause(node: unknown, env: Env, run: Run, where: InferenceClause): void {
  if (node === undefined) return;
  predicate(run, lineageOf(node, env, run, "predicate"), where);
}

// Expressions.

/** Adds the lineage of any expression (or list of them) to `into`. */
export function expression(value: unknown, env: Env, run: Run, mode: Mode, into: LineageBuilder): void {
  if (typeof value !== "object" || value === null) return;
  if (Array.isArray(value)) {
    for (const item of value) expression(item, env, run, mode, into);
    return;
  }
  enter(run);
  const inner = unwrap(value);
  if (inner === undefined) {
    const struct = value as Json;
    for (const key in struct) expression(struct[key], env, run, mode, into);
  } else {
    const [tag, body] = inner;
    switch (tag) {
      case "ColumnRef":
        take(run, into, columnRef(body as ColumnRef, env, run));
        break;
      case "SubLink":
        subLink(body as SubLink, env, run, mode, into);
        break;
      case "FuncCall":
        funcCall(body as FuncCall, env, run, mode, into);
        break;
      case "A_Expr":
        operator(body as A_Expr, env, run, mode, into);
        break;
      case "A_Indirection":
        indirection(body as A_Indirection, env, run, mode, into);
        break;
      case "A_Const":
      case "A_Star":
      case "ParamRef":
      case "String":
      case "Integer":
      case "Float":
      case "Boolean":
      case "BitString":
      case "SQLValueFunction":
      case "SetToDefault":
        break;
      case "SelectStmt":
      case "InsertStmt":
      case "UpdateStmt":
      case "DeleteStmt":
      case "MergeStmt":
        take(run, into, query(value, env.level, env.ctes, run).whole);
        break;
      default:
        for (const key in body) expression(body[key], env, run, mode, into);
    }
  }
  leave(run);
}

function columnRef(body: ColumnRef, env: Env, run: Run): Lineage {
  const fields = body.fields ?? [];
  const parts = names(fields);
  if (unwrap(fields.at(-1))?.[0] === "A_Star") return starLineage(parts, env, run);
  if (parts.length === 1) return resolveName(env.level, parts[0] ?? "") ?? unresolved(run, parts);
  if (parts.length === 0) return unresolved(run, ["?"]);
  return qualifiedColumn(parts, env.level, run);
}

/** `a.b` (relation a, column b; or column a, field b) and `s.t.c` (schema s, relation t; or relation s, column t, field c). */
function qualifiedColumn(parts: readonly string[], level: Level | undefined, run: Run): Lineage {
  const rest = parts.length > 3 ? parts.slice(parts.length - 3) : parts;
  const [a = "", b = "", c] = rest;
  if (c !== undefined) {
    const byRelation = findRte(level, [a, b]);
    if (byRelation !== undefined) return lookup(byRelation, c) ?? unresolved(run, parts);
  }
  const rte = findRte(level, [a]);
  if (rte !== undefined) return lookup(rte, b) ?? unresolved(run, parts);
  return resolveName(level, a) ?? unresolved(run, parts);
}

/** `*`: every FROM item of the current level; `t.*`: FROM item t. */
function starLineage(qualifier: readonly string[], env: Env, run: Run): Lineage {
  if (qualifier.length === 0) return unionOf((env.level?.rtes ?? []).map((rte) => rte.whole));
  const rte = findRte(env.level, qualifier.slice(-2));
  if (rte !== undefined) return rte.whole;
  return (qualifier.length === 1 ? resolveName(env.level, qualifier[0] ?? "") : undefined) ?? unresolved(run, qualifier, true);
}

/** The columns `*` or `t.*` expands to, when known. */
function starColumns(qualifier: readonly string[], env: Env): readonly Column[] | undefined {
  if (qualifier.length > 0) return findRte(env.level, qualifier.slice(-2))?.columns;
  const columns: Column[] = [];
  for (const item of env.level?.items ?? []) {
    if (item.columns === undefined) return undefined;
    columns.push(...item.columns);
  }
  return columns;
}

function subLink(body: SubLink, env: Env, run: Run, mode: Mode, into: LineageBuilder): void {
  const tested = createBuilder();
  expression(body.testexpr, env, run, mode, tested);
  const collector = createBuilder();
  run.collectors.push(collector);
  let info: QueryInfo;
  try {
    info = query(body.subselect, env.level, env.ctes, run);
  } finally {
    run.collectors.pop();
  }
  if (body.subLinkType !== "EXISTS_SUBLINK") addTo(tested, info.whole);
  const operatorName = names(body.operName);
  if (operatorName.length > 0) userOperator(operatorName, built(tested), run, into);
  addTo(into, tested);
  if (mode === "value") take(run, into, built(collector));
}

/** A window's PARTITION BY and ORDER BY, with the named window it refines. */
function windowLineage(window: WindowDef, env: Env, run: Run): Lineage {
  const builder = createBuilder();
  expression(window.partitionClause, env, run, "predicate", builder);
  expression(window.orderClause, env, run, "predicate", builder);
  expression(window.startOffset, env, run, "predicate", builder);
  expression(window.endOffset, env, run, "predicate", builder);
  for (const name of [window.refname, window.name]) {
    const named = name === undefined ? undefined : env.windows?.get(name);
    if (named !== undefined) addTo(builder, named);
  }
  const lineage = built(builder);
  predicate(run, lineage, "window");
  return lineage;
}

function funcCall(body: FuncCall, env: Env, run: Run, mode: Mode, into: LineageBuilder): void {
  const parts = names(body.funcname);
  const args = createBuilder();
  expression(body.args, env, run, mode, args);
  if (body.agg_order !== undefined) {
    const order = lineageOf(body.agg_order, env, run, "predicate");
    predicate(run, order, "order_by");
    addTo(args, order);
  }
  if (body.agg_filter !== undefined) {
    const filter = lineageOf(body.agg_filter, env, run, "predicate");
    predicate(run, filter, "where");
    addTo(args, filter);
  }
  if (body.over !== undefined) addTo(args, windowLineage(body.over, env, run));
  const lineage = built(args);
  const verdict = classifyFunction(parts, { count: body.args?.length ?? 0, firstString: stringConst(body.args?.[0]) }, noSafeFunctions);
  const written = quote(parts.join("."));
  if (verdict.user || verdict.class === "dangerous" || verdict.class === "export") {
    // Not take(): the call itself reads nothing the body analysis should count as data.
    addTo(into, uncertainLineage(verdict.user ? `calls user function ${written}` : verdict.reason));
    run.writes = true;
    if (isTainted(lineage)) copied(run, `passes values derived from sensitive columns to ${written}`);
  } else if (verdict.class !== "read" || parts.at(-1) === "set_config") {
    // Sequences, large objects, notifications, settings: values stored there are read back unmasked.
    run.writes = true;
    if (isTainted(lineage)) copied(run, `${written} stores values derived from sensitive columns`);
  }
  addTo(into, lineage);
}

function userOperator(parts: readonly string[], operands: Lineage, run: Run, into: LineageBuilder): void {
  const verdict = classifyOperator(parts, noSafeFunctions);
  if (!verdict.user) return;
  addTo(into, uncertainLineage(verdict.reason));
  run.writes = true;
  if (isTainted(operands)) copied(run, `passes values derived from sensitive columns to operator ${quote(parts.join("."))}`);
}

const betweenKinds: ReadonlySet<string> = new Set(["AEXPR_BETWEEN", "AEXPR_NOT_BETWEEN", "AEXPR_BETWEEN_SYM", "AEXPR_NOT_BETWEEN_SYM"]);

function operator(body: A_Expr, env: Env, run: Run, mode: Mode, into: LineageBuilder): void {
  const operands = createBuilder();
  expression(body.lexpr, env, run, mode, operands);
  expression(body.rexpr, env, run, mode, operands);
  if (body.kind === undefined || !betweenKinds.has(body.kind)) {
    const parts = names(body.name);
    if (parts.length > 0) userOperator(parts, built(operands), run, into);
  }
  addTo(into, operands);
}

/** True when some relation in scope has (or may have) a column `name`. */
function hasColumn(level: Level | undefined, name: string): boolean {
  for (let current = level; current !== undefined; current = current.parent) {
    for (const rte of current.rtes) if (rte.columns === undefined || lookup(rte, name) !== undefined) return true;
  }
  return false;
}

/** `(c).email` is column email of FROM item c, when c is nothing else. */
function indirection(body: A_Indirection, env: Env, run: Run, mode: Mode, into: LineageBuilder): void {
  const arg = unwrap(body.arg);
  const first = unwrap(body.indirection?.[0]);
  if (arg?.[0] === "ColumnRef" && first?.[0] === "String") {
    const fields = (arg[1] as ColumnRef).fields ?? [];
    const parts = names(fields);
    const name = parts[0];
    const field = first[1]["sval"];
    if (fields.length === 1 && name !== undefined && typeof field === "string" && !hasColumn(env.level, name)) {
      const rte = findRte(env.level, [name]);
      if (rte?.columns !== undefined) {
        take(run, into, lookup(rte, field) ?? unresolved(run, [name, field]));
        expression(body.indirection?.slice(1), env, run, mode, into);
        return;
      }
    }
  }
  expression(body.arg, env, run, mode, into);
  expression(body.indirection, env, run, mode, into);
}

/** The name PostgreSQL gives an unnamed output (FigureColname), or `?column?`. */
function figureName(node: unknown): string {
  const inner = unwrap(node);
  if (inner === undefined) return "?column?";
  const [tag, body] = inner;
  switch (tag) {
    case "ColumnRef": {
      const fields = (body as ColumnRef).fields ?? [];
      const last = unwrap(fields.at(-1));
      return last?.[0] === "String" && typeof last[1]["sval"] === "string" ? last[1]["sval"] : "?column?";
    }
    case "A_Indirection": {
      const last = unwrap((body as A_Indirection).indirection?.at(-1));
      if (last?.[0] === "String" && typeof last[1]["sval"] === "string") return last[1]["sval"];
      return figureName((body as A_Indirection).arg);
    }
    case "FuncCall":
      return names((body as FuncCall).funcname).at(-1) ?? "?column?";
    case "TypeCast": {
      const name = figureName(body["arg"]);
      if (name !== "?column?") return name;
      const typeName = body["typeName"];
      return typeof typeName === "object" && typeName !== null ? (names((typeName as Json)["names"]).at(-1) ?? name) : name;
    }
    case "CollateClause":
      return figureName(body["arg"]);
    case "SubLink": {
      const sub = body as SubLink;
      if (sub.subLinkType === "EXISTS_SUBLINK") return "exists";
      if (sub.subLinkType === "ARRAY_SUBLINK") return "array";
      if (sub.subLinkType !== "EXPR_SUBLINK") return "?column?";
      const select = unwrap(sub.subselect)?.[1] as SelectStmt | undefined;
      const target = unwrap(select?.targetList?.[0])?.[1] as ResTarget | undefined;
      return target?.name ?? figureName(target?.val);
    }
    case "CaseExpr":
      return "case";
    case "A_ArrayExpr":
      return "array";
    case "RowExpr":
      return "row";
    case "CoalesceExpr":
      return "coalesce";
    case "MinMaxExpr":
      return body["op"] === "IS_GREATEST" ? "greatest" : "least";
    case "GroupingFunc":
      return "grouping";
    case "A_Expr":
      return (body as A_Expr).kind === "AEXPR_NULLIF" ? "nullif" : "?column?";
    default:
      return "?column?";
  }
}

// Queries.

/** The lineage of a query (SELECT, VALUES, set operation, or a data-modifying statement's RETURNING). */
export function query(node: unknown, outer: Level | undefined, ctes: CteScope | undefined, run: Run): QueryInfo {
  const inner = unwrap(node);
  switch (inner?.[0]) {
    case "SelectStmt":
      return select(inner[1] as SelectStmt, outer, ctes, run);
    case "InsertStmt":
    case "UpdateStmt":
    case "DeleteStmt":
    case "MergeStmt":
      return modify(inner[0], inner[1], outer, ctes, run);
    default: {
      const whole = uncertainLineage(`cannot follow the rows of ${quote(inner?.[0] ?? "a statement")}`);
      return { outputs: [{ star: true, name: "*", lineage: whole, expanded: undefined }], columns: undefined, whole };
    }
  }
}

/** The INTO clause of a SELECT (for a set operation, its first branch carries it). */
export function intoOf(stmt: SelectStmt): SelectStmt["intoClause"] {
  return stmt.intoClause ?? (stmt.larg === undefined ? undefined : intoOf(stmt.larg));
}

/** The lineage of a SelectStmt body. */
export function select(stmt: SelectStmt, outer: Level | undefined, ctes: CteScope | undefined, run: Run): QueryInfo {
  enter(run);
  const scope = stmt.withClause === undefined ? ctes : withQueries(stmt.withClause, outer, ctes, run);
  let info: QueryInfo;
  if (stmt.op !== undefined && stmt.op !== "SETOP_NONE") {
    const left = select(stmt.larg ?? {}, outer, scope, run);
    const right = select(stmt.rarg ?? {}, outer, scope, run);
    info = combine(left, right);
    orderings(stmt, { level: { rtes: [], items: [], parent: outer }, ctes: scope }, info, run);
  } else if (stmt.valuesLists !== undefined) {
    const env: Env = { level: { rtes: [], items: [], parent: outer }, ctes: scope };
    info = values(stmt.valuesLists, env, run);
    orderings(stmt, env, info, run);
  } else {
    info = plainSelect(stmt, outer, scope, run);
  }
  leave(run);
  return info;
}

function plainSelect(stmt: SelectStmt, outer: Level | undefined, ctes: CteScope | undefined, run: Run): QueryInfo {
  const level: Level = { rtes: [], items: [], parent: outer };
  for (const item of stmt.fromClause ?? []) {
    const result = fromItem(item, level, outer, ctes, run);
    level.rtes.push(...result.rtes);
    level.items.push(result);
  }
  const windows = new Map<string, Lineage>();
  for (const item of stmt.windowClause ?? []) {
    const window = unwrap(item)?.[1] as WindowDef | undefined;
    if (window === undefined) continue;
    const lineage = windowLineage(window, { level, ctes, windows }, run);
    if (window.name !== undefined) windows.set(window.name, lineage);
  }
  const env: Env = { level, ctes, windows };
  const outputs: Output[] = [];
  for (const item of stmt.targetList ?? []) {
    const target = unwrap(item)?.[1] as ResTarget | undefined;
    if (target !== undefined) outputs.push(output(target, env, run));
  }
  const info = infoOf(outputs);
  clause(stmt.whereClause, env, run, "where");
  for (const item of stmt.groupClause ?? []) predicate(run, sortKey(item, env, info, run), "group_by");
  clause(stmt.havingClause, env, run, "having");
  orderings(stmt, env, info, run);
  return info;
}

/** ORDER BY, DISTINCT ON, LIMIT and OFFSET, which may name outputs by name or position. */
function orderings(stmt: SelectStmt, env: Env, info: QueryInfo, run: Run): void {
  for (const item of stmt.sortClause ?? []) predicate(run, sortKey(item, env, info, run), "order_by");
  for (const item of stmt.distinctClause ?? []) predicate(run, sortKey(item, env, info, run), "distinct_on");
  clause(stmt.limitCount, env, run, "limit");
  clause(stmt.limitOffset, env, run, "limit");
}

function infoOf(outputs: readonly Output[]): QueryInfo {
  let columns: Column[] | undefined = [];
  for (const item of outputs) {
    if (item.expanded === undefined) columns = undefined;
    else columns?.push(...item.expanded);
  }
  return { outputs, columns, whole: unionOf(outputs.map((item) => item.lineage)) };
}

/** One target list item. */
export function output(target: ResTarget, env: Env, run: Run): Output {
  const value = unwrap(target.val);
  if (value?.[0] === "ColumnRef") {
    const fields = (value[1] as ColumnRef).fields ?? [];
    if (unwrap(fields.at(-1))?.[0] === "A_Star") {
      const qualifier = names(fields);
      const builder = createBuilder();
      take(run, builder, starLineage(qualifier, env, run));
      return { star: true, name: "*", lineage: built(builder), expanded: starColumns(qualifier, env) };
    }
  }
  const lineage = lineageOf(target.val, env, run, "value");
  const name = target.name ?? figureName(target.val);
  return { star: false, name, lineage, expanded: [{ name, lineage }] };
}

/**
 * A GROUP BY, ORDER BY or DISTINCT ON item: an output by name (and the input column of that
 * name, whichever the server picks) or by position, or an expression over the inputs.
 */
function sortKey(node: unknown, env: Env, info: QueryInfo, run: Run): Lineage {
  const inner = unwrap(node);
  if (inner?.[0] === "SortBy") return sortKey((inner[1] as SortBy).node, env, info, run);
  if (inner?.[0] === "GroupingSet") return unionOf(((inner[1] as GroupingSet).content ?? []).map((item) => sortKey(item, env, info, run)));
  if (inner?.[0] === "ColumnRef") {
    const fields = (inner[1] as ColumnRef).fields ?? [];
    const name = names(fields)[0];
    if (fields.length === 1 && name !== undefined) {
      const byOutput = info.outputs.filter((item) => !item.star && item.name === name);
      if (byOutput.length > 0) {
        const builder = createBuilder();
        for (const item of byOutput) take(run, builder, item.lineage);
        const input = resolveName(env.level, name);
        if (input !== undefined) take(run, builder, input);
        return built(builder);
      }
    }
  }
  if (inner?.[0] === "A_Const") {
    const ival = (inner[1] as A_Const).ival;
    if (ival !== undefined) {
      const position = ival.ival ?? 0;
      return info.columns?.[position - 1]?.lineage ?? info.whole;
    }
  }
  return lineageOf(node, env, run, "predicate");
}

function values(lists: readonly unknown[], env: Env, run: Run): QueryInfo {
  const builders: LineageBuilder[] = [];
  for (const row of lists) {
    const items = (unwrap(row)?.[1] as List | undefined)?.items ?? [];
    items.forEach((item, index) => {
      const builder = builders[index] ?? createBuilder();
      builders[index] = builder;
      expression(item, env, run, "value", builder);
    });
  }
  const outputs = builders.map((builder, index): Output => {
    const name = `column${index + 1}`;
    const lineage = built(builder);
    return { star: false, name, lineage, expanded: [{ name, lineage }] };
  });
  return infoOf(outputs);
}

/** UNION, INTERSECT, EXCEPT: an output is sensitive if it is in either branch, by position. */
function combine(left: QueryInfo, right: QueryInfo): QueryInfo {
  const rightColumns = right.columns;
  let position: number | undefined = 0;
  const outputs = left.outputs.map((item): Output => {
    const width = item.expanded?.length;
    if (position === undefined || width === undefined || rightColumns === undefined) {
      position = undefined;
      const lineage = union(item.lineage, right.whole);
      return { ...item, lineage, expanded: item.expanded?.map((column) => ({ name: column.name, lineage: union(column.lineage, right.whole) })) };
    }
    const start = position;
    position += width;
    const expanded = (item.expanded ?? []).map((column, offset) => ({
      name: column.name,
      lineage: union(column.lineage, rightColumns[start + offset]?.lineage ?? clean),
    }));
    return { ...item, lineage: unionOf([item.lineage, ...expanded.map((column) => column.lineage)]), expanded };
  });
  return infoOf(outputs);
}

// WITH queries.

function sameEntry(a: CteEntry | undefined, b: CteEntry): boolean {
  if (a === undefined || weight(a.whole) !== weight(b.whole)) return false;
  if (a.columns === undefined || b.columns === undefined) return a.columns === b.columns;
  if (a.columns.length !== b.columns.length) return false;
  return a.columns.every((column, index) => weight(column.lineage) === weight(b.columns?.[index]?.lineage ?? clean));
}

function columnsNamed(columns: readonly Column[] | undefined, whole: Lineage, wanted: readonly string[]): Lineage {
  if (columns === undefined) return whole;
  return unionOf(columns.filter((column) => wanted.includes(column.name)).map((column) => column.lineage));
}

function cteEntry(cte: CommonTableExpr, info: QueryInfo): CteEntry {
  const columns = rename(info.columns, names(cte.aliascolnames));
  const extra: Column[] = [];
  const search = cte.search_clause;
  if (search?.search_seq_column !== undefined) {
    extra.push({ name: search.search_seq_column, lineage: columnsNamed(columns, info.whole, names(search.search_col_list)) });
  }
  const cycle = cte.cycle_clause;
  if (cycle !== undefined) {
    const lineage = columnsNamed(columns, info.whole, names(cycle.cycle_col_list));
    if (cycle.cycle_mark_column !== undefined) extra.push({ name: cycle.cycle_mark_column, lineage });
    if (cycle.cycle_path_column !== undefined) extra.push({ name: cycle.cycle_path_column, lineage });
  }
  if (extra.length === 0) return { columns, whole: info.whole };
  return { columns: columns === undefined ? undefined : [...columns, ...extra], whole: unionOf([info.whole, ...extra.map((column) => column.lineage)]) };
}

/** The most rounds a recursive WITH takes to settle before it is taken as uncertain. */
const maxRounds = 16;

function withQueries(clause: WithClause, outer: Level | undefined, ctes: CteScope | undefined, run: Run): CteScope {
  const scope: CteScope = { entries: new Map(), parent: ctes };
  const list = (clause.ctes ?? []).flatMap((item) => {
    const cte = unwrap(item)?.[1] as CommonTableExpr | undefined;
    return cte === undefined ? [] : [cte];
  });
  if (clause.recursive !== true) {
    for (const cte of list) scope.entries.set(cte.ctename ?? "", cteEntry(cte, query(cte.ctequery, outer, scope, run)));
    return scope;
  }
  // WITH RECURSIVE: any query may read any other and itself. Start from nothing and analyse
  // again until no lineage grows (lineage only grows, so this ends).
  for (const cte of list) scope.entries.set(cte.ctename ?? "", { columns: undefined, whole: clean });
  for (let round = 0; ; round += 1) {
    let changed = false;
    for (const cte of list) {
      const name = cte.ctename ?? "";
      const entry = cteEntry(cte, query(cte.ctequery, outer, scope, run));
      if (!sameEntry(scope.entries.get(name), entry)) {
        changed = true;
        scope.entries.set(name, entry);
      }
    }
    if (!changed) break;
    if (round === maxRounds) {
      for (const cte of list) {
        const name = cte.ctename ?? "";
        scope.entries.set(name, { columns: undefined, whole: uncertainLineage(`recursive WITH query ${quote(name)} does not settle`) });
      }
      break;
    }
  }
  return scope;
}

// FROM items.

/** An RTE for a resolved catalog name. */
export function catalogRte(resolved: ResolvedRelation, alias: string, aliases: readonly string[], run: Run): Rte {
  switch (resolved.kind) {
    case "known": {
      const { relation, columns, whole } = resolved.known;
      return { name: alias, schema: relation.schema, relname: relation.name, columns: rename(columns, aliases), any: clean, whole, system: true };
    }
    case "system":
      return { name: alias, schema: resolved.schema, relname: resolved.name, columns: undefined, any: clean, whole: clean, system: true };
    case "values":
      run.valueCatalogs.add(resolved.name);
      return {
        name: alias,
        schema: "pg_catalog",
        relname: resolved.name,
        columns: undefined,
        any: clean,
        whole: sourceLineage(`pg_catalog.${resolved.name}.*`),
        values: resolved.name,
      };
    case "unknown": {
      const lineage = uncertainLineage(`relation ${quote(resolved.written)} is not in the catalog`);
      return { name: alias, columns: undefined, any: lineage, whole: lineage };
    }
  }
}

function relationRte(rangeVar: RangeVar, ctes: CteScope | undefined, run: Run): Rte {
  const name = rangeVar.relname ?? "";
  const alias = rangeVar.alias?.aliasname ?? name;
  const aliases = names(rangeVar.alias?.colnames);
  if (rangeVar.schemaname === undefined) {
    const cte = findCte(ctes, name);
    if (cte !== undefined) return { name: alias, columns: rename(cte.columns, aliases), any: cte.whole, whole: cte.whole };
  }
  return catalogRte(resolveRelation(run.catalog, rangeVar.schemaname, name), alias, aliases, run);
}

function opaqueItem(name: string | undefined, lineage: Lineage): FromResult {
  return { rtes: [{ name, columns: undefined, any: lineage, whole: lineage }], columns: undefined, whole: lineage };
}

/** The level a LATERAL item sees: the items before it, inside the enclosing query's level. */
function lateralLevel(level: Level, outer: Level | undefined): Level {
  return { rtes: [...level.rtes], items: [], parent: outer };
}

/** One FROM item; `level` holds the items before it (for LATERAL), `outer` the enclosing query. */
function fromItem(node: unknown, level: Level, outer: Level | undefined, ctes: CteScope | undefined, run: Run): FromResult {
  const inner = unwrap(node);
  if (inner === undefined) return { rtes: [], columns: [], whole: clean };
  enter(run);
  const [tag, body] = inner;
  let result: FromResult;
  switch (tag) {
    case "RangeVar": {
      const rte = relationRte(body as RangeVar, ctes, run);
      result = { rtes: [rte], columns: rte.columns, whole: rte.whole };
      break;
    }
    case "RangeSubselect": {
      const sub = body as RangeSubselect;
      const info = query(sub.subquery, sub.lateral === true ? lateralLevel(level, outer) : outer, ctes, run);
      const columns = rename(info.columns, names(sub.alias?.colnames));
      result = { rtes: [{ name: sub.alias?.aliasname, columns, any: info.whole, whole: info.whole }], columns, whole: info.whole };
      break;
    }
    case "JoinExpr":
      result = join(body as JoinExpr, level, outer, ctes, run);
      break;
    case "RangeFunction": {
      // Functions in FROM see the items before them, LATERAL or not.
      const range = body as RangeFunction;
      const env: Env = { level: lateralLevel(level, outer), ctes };
      const builder = createBuilder();
      let first: string | undefined;
      for (const item of range.functions ?? []) {
        const call = (unwrap(item)?.[1] as List | undefined)?.items?.[0];
        first ??= names((unwrap(call)?.[1] as FuncCall | undefined)?.funcname).at(-1);
        expression(call, env, run, "value", builder);
      }
      result = opaqueItem(range.alias?.aliasname ?? first, built(builder));
      break;
    }
    case "RangeTableSample": {
      // The sampling percentage and seed decide which rows come back: predicates.
      const sample = body as RangeTableSample;
      result = fromItem(sample.relation, level, outer, ctes, run);
      clause(sample.args, { level: outer, ctes }, run, "where");
      clause(sample.repeatable, { level: outer, ctes }, run, "where");
      break;
    }
    case "RangeTableFunc":
    case "JsonTable": {
      const alias = body["alias"] as { aliasname?: string } | undefined;
      const env: Env = { level: lateralLevel(level, outer), ctes };
      const builder = createBuilder();
      for (const key in body) if (key !== "alias") expression(body[key], env, run, "value", builder);
      result = opaqueItem(alias?.aliasname, built(builder));
      break;
    }
    default:
      result = opaqueItem(undefined, uncertainLineage(`cannot follow FROM item ${quote(tag)}`));
  }
  leave(run);
  return result;
}

function columnLineage(item: FromResult, name: string): Lineage {
  if (item.columns === undefined) return item.whole;
  return unionOf(item.columns.filter((column) => column.name === name).map((column) => column.lineage));
}

function join(body: JoinExpr, level: Level, outer: Level | undefined, ctes: CteScope | undefined, run: Run): FromResult {
  const left = fromItem(body.larg, level, outer, ctes, run);
  const right = fromItem(body.rarg, { rtes: [...level.rtes, ...left.rtes], items: [], parent: outer }, outer, ctes, run);
  const joined: Level = { rtes: [...level.rtes, ...left.rtes, ...right.rtes], items: [], parent: outer };
  clause(body.quals, { level: joined, ctes }, run, "join");
  const whole = union(left.whole, right.whole);
  let using = names(body.usingClause);
  if (body.isNatural === true) {
    const rightColumns = right.columns;
    if (left.columns === undefined || rightColumns === undefined) predicate(run, whole, "join");
    else using = left.columns.filter((column) => rightColumns.some((other) => other.name === column.name)).map((column) => column.name);
  }
  const merged = using.map((name) => ({ name, lineage: union(columnLineage(left, name), columnLineage(right, name)) }));
  for (const column of merged) predicate(run, column.lineage, "join");
  const columns =
    left.columns === undefined || right.columns === undefined
      ? undefined
      : [...merged, ...left.columns.filter((column) => !using.includes(column.name)), ...right.columns.filter((column) => !using.includes(column.name))];
  if (body.alias !== undefined) {
    const renamed = rename(columns, names(body.alias.colnames));
    return { rtes: [{ name: body.alias.aliasname, columns: renamed, any: whole, whole }], columns: renamed, whole };
  }
  const rtes = [...left.rtes, ...right.rtes];
  if (body.join_using_alias !== undefined) {
    const mergedWhole = unionOf(merged.map((column) => column.lineage));
    rtes.push({ name: body.join_using_alias.aliasname, columns: merged, any: mergedWhole, whole: mergedWhole });
  }
  return { rtes, columns, whole };
}

// Data-modifying statements.

/** The relation a statement writes. */
export interface Target {
  readonly rte: Rte;
  readonly known: KnownRelation | undefined;
  readonly written: string;
}

/** Resolves the relation a statement writes (never a WITH query). */
export function targetOf(rangeVar: RangeVar | undefined, run: Run): Target {
  const name = rangeVar?.relname ?? "";
  const schema = rangeVar?.schemaname;
  const resolved = resolveRelation(run.catalog, schema, name);
  const rte = catalogRte(resolved, rangeVar?.alias?.aliasname ?? name, [], run);
  return { rte, known: resolved.kind === "known" ? resolved.known : undefined, written: schema === undefined ? name : `${schema}.${name}` };
}

/**
 * A value written into `column` of the target (undefined: some column). Writing a sensitive value
 * anywhere but the very column it came from copies it past masking: into another table, another
 * column (whose mask style may show more of it), a new table.
 */
export function assign(target: Target, column: string | undefined, lineage: Lineage, run: Run): void {
  if (!isTainted(lineage)) return;
  const relation = target.known?.relation;
  const own = relation !== undefined && column !== undefined && relation.sensitive.has(column) ? columnSource(relation, column) : undefined;
  if (own !== undefined && lineage.uncertain.size === 0 && [...lineage.sources].every((source) => source === own)) return;
  const where = quote(column === undefined ? target.written : `${target.written}.${column}`);
  const what = lineage.sources.size > 0 ? [...lineage.sources].sort().map(quote).join(", ") : "values of uncertain origin";
  copied(run, `writes ${what} into ${where}`);
}

function modify(tag: string, body: Json, outer: Level | undefined, ctes: CteScope | undefined, run: Run): QueryInfo {
  enter(run);
  run.writes = true;
  const withClause = body["withClause"] as WithClause | undefined;
  const scope = withClause === undefined ? ctes : withQueries(withClause, outer, ctes, run);
  let info: QueryInfo;
  switch (tag) {
    case "InsertStmt":
      info = insert(body as InsertStmt, outer, scope, run);
      break;
    case "UpdateStmt":
      info = update(body as UpdateStmt, outer, scope, run);
      break;
    case "DeleteStmt":
      info = remove(body as DeleteStmt, outer, scope, run);
      break;
    default:
      info = merge(body as MergeStmt, outer, scope, run);
  }
  leave(run);
  return info;
}

function targetItem(target: Target): FromResult {
  return { rtes: [target.rte], columns: target.rte.columns, whole: target.rte.whole };
}

function resTargets(list: readonly unknown[] | undefined): ResTarget[] {
  return (list ?? []).flatMap((item) => {
    const target = unwrap(item)?.[1] as ResTarget | undefined;
    return target === undefined ? [] : [target];
  });
}

function insert(body: InsertStmt, outer: Level | undefined, ctes: CteScope | undefined, run: Run): QueryInfo {
  const target = targetOf(body.relation, run);
  const listed = resTargets(body.cols).map((item) => item.name ?? "");
  const columns = listed.length > 0 ? listed : target.known?.relation.columns;
  const inserted = new Map<string, Lineage>();
  let source: QueryInfo = emptyInfo;
  if (body.selectStmt !== undefined) {
    source = query(body.selectStmt, outer, ctes, run);
    if (columns === undefined) assign(target, undefined, source.whole, run);
    else {
      columns.forEach((name, index) => {
        const lineage = source.columns === undefined ? source.whole : (source.columns[index]?.lineage ?? clean);
        inserted.set(name, union(inserted.get(name) ?? clean, lineage));
        assign(target, name, lineage, run);
      });
    }
  }
  const conflict = body.onConflictClause;
  if (conflict !== undefined) {
    const known = target.known;
    const excluded: Rte =
      known === undefined
        ? { name: "excluded", columns: undefined, any: source.whole, whole: source.whole }
        : {
            name: "excluded",
            columns: known.columns.map((column) => ({ name: column.name, lineage: inserted.get(column.name) ?? clean })),
            any: clean,
            whole: source.whole,
            system: true,
          };
    const level: Level = { rtes: [target.rte, excluded], items: [targetItem(target)], parent: outer };
    assignments(conflict.targetList, target, { level, ctes }, run);
    clause(conflict.whereClause, { level, ctes }, run, "where");
  }
  return returning(body.returningClause, target, { rtes: [target.rte], items: [targetItem(target)], parent: outer }, ctes, run);
}

/** SET assignments: each value is written into its column. */
function assignments(list: readonly unknown[] | undefined, target: Target, env: Env, run: Run): void {
  const sources = new Map<object, { readonly columns: readonly Column[] | undefined; readonly whole: Lineage }>();
  for (const item of resTargets(list)) {
    let lineage: Lineage;
    const value = unwrap(item.val);
    if (value?.[0] === "MultiAssignRef") {
      // SET (a, b) = (SELECT ...) or = ROW(...): the server pulls column colno out of the source.
      const multi = value[1] as MultiAssignRef;
      const index = (multi.colno ?? 1) - 1;
      const row = unwrap(multi.source);
      if (row?.[0] === "RowExpr") lineage = lineageOf((row[1] as RowExpr).args?.[index], env, run, "value");
      else {
        const key = (multi.source ?? {}) as object;
        let source = sources.get(key);
        if (source === undefined) {
          source = multiSource(multi.source, env, run);
          sources.set(key, source);
        }
        lineage = source.columns?.[index]?.lineage ?? source.whole;
      }
    } else lineage = lineageOf(item.val, env, run, "value");
    assign(target, item.name, lineage, run);
  }
}

/** The source of a multiple-column assignment: a sub-query's columns (each with the sub-query's predicates), or one value. */
function multiSource(node: unknown, env: Env, run: Run): { readonly columns: readonly Column[] | undefined; readonly whole: Lineage } {
  const link = unwrap(node);
  if (link?.[0] !== "SubLink") return { columns: undefined, whole: lineageOf(node, env, run, "value") };
  const collector = createBuilder();
  run.collectors.push(collector);
  let info: QueryInfo;
  try {
    info = query((link[1] as SubLink).subselect, env.level, env.ctes, run);
  } finally {
    run.collectors.pop();
  }
  const predicates = built(collector);
  return {
    columns: info.columns?.map((column) => ({ name: column.name, lineage: union(column.lineage, predicates) })),
    whole: union(info.whole, predicates),
  };
}

function fromList(list: readonly unknown[] | undefined, level: Level, outer: Level | undefined, ctes: CteScope | undefined, run: Run): void {
  for (const item of list ?? []) {
    const result = fromItem(item, level, outer, ctes, run);
    level.rtes.push(...result.rtes);
    level.items.push(result);
  }
}

function update(body: UpdateStmt, outer: Level | undefined, ctes: CteScope | undefined, run: Run): QueryInfo {
  const target = targetOf(body.relation, run);
  const level: Level = { rtes: [target.rte], items: [targetItem(target)], parent: outer };
  fromList(body.fromClause, level, outer, ctes, run);
  const env: Env = { level, ctes };
  assignments(body.targetList, target, env, run);
  clause(body.whereClause, env, run, "where");
  return returning(body.returningClause, target, level, ctes, run);
}

function remove(body: DeleteStmt, outer: Level | undefined, ctes: CteScope | undefined, run: Run): QueryInfo {
  const target = targetOf(body.relation, run);
  const level: Level = { rtes: [target.rte], items: [targetItem(target)], parent: outer };
  fromList(body.usingClause, level, outer, ctes, run);
  clause(body.whereClause, { level, ctes }, run, "where");
  return returning(body.returningClause, target, level, ctes, run);
}

function merge(body: MergeStmt, outer: Level | undefined, ctes: CteScope | undefined, run: Run): QueryInfo {
  const target = targetOf(body.relation, run);
  const level: Level = { rtes: [target.rte], items: [targetItem(target)], parent: outer };
  fromList(body.sourceRelation === undefined ? [] : [body.sourceRelation], level, outer, ctes, run);
  const env: Env = { level, ctes };
  clause(body.joinCondition, env, run, "join");
  for (const item of body.mergeWhenClauses ?? []) {
    const when = unwrap(item)?.[1] as MergeWhenClause | undefined;
    if (when === undefined) continue;
    clause(when.condition, env, run, "where");
    if (when.commandType === "CMD_UPDATE") assignments(when.targetList, target, env, run);
    else if (when.commandType === "CMD_INSERT") {
      const listed = resTargets(when.targetList).map((column) => column.name ?? "");
      const columns = listed.length > 0 ? listed : target.known?.relation.columns;
      (when.values ?? []).forEach((value, index) => assign(target, columns?.[index], lineageOf(value, env, run, "value"), run));
    }
  }
  return returning(body.returningClause, target, level, ctes, run);
}

/** RETURNING: outputs over the target (also as OLD and NEW) and the statement's other FROM items. */
function returning(clause: ReturningClause | undefined, target: Target, level: Level, ctes: CteScope | undefined, run: Run): QueryInfo {
  const exprs = clause?.exprs;
  if (exprs === undefined || exprs.length === 0) return emptyInfo;
  let oldName = "old";
  let newName = "new";
  for (const item of clause?.options ?? []) {
    const option = unwrap(item)?.[1] as ReturningOption | undefined;
    if (option?.value === undefined) continue;
    if (option.option === "RETURNING_OPTION_OLD") oldName = option.value;
    else newName = option.value;
  }
  const rtes = [...level.rtes, { ...target.rte, name: oldName }, { ...target.rte, name: newName }];
  const env: Env = { level: { rtes, items: level.items, parent: level.parent }, ctes };
  return infoOf(resTargets(exprs).map((item) => output(item, env, run)));
}
