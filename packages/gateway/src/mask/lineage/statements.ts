import type {
  AlterObjectSchemaStmt,
  AlterTableCmd,
  AlterTableStmt,
  CallStmt,
  ColumnDef,
  Constraint,
  CopyStmt,
  CreateFunctionStmt,
  CreateTableAsStmt,
  DeclareCursorStmt,
  DoStmt,
  ExecuteStmt,
  ExplainStmt,
  FetchStmt,
  PrepareStmt,
  RenameStmt,
  ReturnStmt,
  RuleStmt,
  SelectStmt,
  ViewStmt,
} from "libpg-query";
import { expressionQueries, parse } from "../../inspect/postgres/analyze.js";
import { quote } from "../../inspect/postgres/facts.js";
import { doBlockAsFunction, plpgsqlBody } from "../../inspect/postgres/plpgsql.js";
import { defElemIsTrue, defElems, names, stringNode, unwrap } from "../../inspect/postgres/walk.js";
import { columnSource, resolveRelation } from "./catalog.js";
import { assign, expression, intoOf, query, select, targetOf, type Env, type Output, type Target } from "./query.js";
import { copied, createRun, lookup, take, unresolved, type Level, type Run } from "./scope.js";
import { clean, createBuilder, isTainted, union, type Lineage } from "./sources.js";

type Json = Record<string, unknown>;

/** What a statement gives back, besides what its run recorded. */
export interface StatementOutcome {
  /** Its result's columns, before `*` expansion (empty when it returns no rows). */
  readonly outputs: readonly Output[];
  /** Why the whole statement's exposure is uncertain, whatever its outputs. */
  readonly uncertain: readonly string[];
}

const noRows: StatementOutcome = { outputs: [], uncertain: [] };

/** How many bodies deep (a DO block creating a function...) the analysis follows. */
const maxNesting = 8;

/** The reason given when a body reads sensitive columns. */
export const bodyReadsReason = "reads sensitive columns in a function body";

/** Analyses one statement into `run`. */
export function statement(node: unknown, text: string, run: Run): StatementOutcome {
  const inner = unwrap(node);
  if (inner === undefined) return noRows;
  const [tag, body] = inner;
  switch (tag) {
    case "SelectStmt":
      return selectStatement(body as SelectStmt, run);
    case "InsertStmt":
    case "UpdateStmt":
    case "DeleteStmt":
    case "MergeStmt":
      return { outputs: query(node, undefined, undefined, run).outputs, uncertain: [] };
    case "CopyStmt":
      return copy(body as CopyStmt, run);
    case "CreateTableAsStmt":
      return createTableAs(body as CreateTableAsStmt, run);
    case "ViewStmt":
      return createView(body as ViewStmt, run);
    case "ExplainStmt":
      return explain(body as ExplainStmt, text, run);
    case "PrepareStmt": {
      const prepare = body as PrepareStmt;
      run.reasons.add(`PREPARE ${quote(prepare.name ?? "")}: the exposure of the statement it prepares`);
      return statement(prepare.query, text, run);
    }
    case "DeclareCursorStmt":
      return statement((body as DeclareCursorStmt).query, text, run);
    case "ExecuteStmt":
      return { outputs: [], uncertain: [`EXECUTE of ${quote((body as ExecuteStmt).name ?? "")}: the exposure of the prepared statement applies`] };
    case "FetchStmt": {
      const fetch = body as FetchStmt;
      if (fetch.ismove === true) return noRows;
      return { outputs: [], uncertain: [`FETCH from ${quote(fetch.portalname ?? "")}: the exposure of the cursor's query applies`] };
    }
    case "CallStmt":
      return call(body as CallStmt, run);
    case "DoStmt":
      return doBlock(body as DoStmt, run);
    case "CreateFunctionStmt":
      return createFunction(body as CreateFunctionStmt, text, run);
    case "ReturnStmt":
      expression((body as ReturnStmt).returnval, { level: undefined, ctes: undefined }, run, "value", createBuilder());
      return noRows;
    case "RuleStmt":
      return rule(body as RuleStmt, run);
    case "RenameStmt":
      return renameObject(body as RenameStmt, run);
    case "AlterObjectSchemaStmt":
      return moveObject(body as AlterObjectSchemaStmt, run);
    case "AlterTableStmt":
      return alterTable(body as AlterTableStmt, run);
    default:
      return noRows;
  }
}

function selectStatement(stmt: SelectStmt, run: Run): StatementOutcome {
  const info = select(stmt, undefined, undefined, run);
  const into = intoOf(stmt);
  if (into === undefined) return { outputs: info.outputs, uncertain: [] };
  run.writes = true;
  const written = into.rel?.schemaname === undefined ? (into.rel?.relname ?? "") : `${into.rel.schemaname}.${into.rel.relname ?? ""}`;
  if (isTainted(info.whole)) copied(run, `SELECT INTO copies ${describe(info.whole)} into ${quote(written)}`);
  return noRows;
}

function describe(lineage: Lineage): string {
  return lineage.sources.size > 0 ? [...lineage.sources].sort().map(quote).join(", ") : "values of uncertain origin";
}

function copy(stmt: CopyStmt, run: Run): StatementOutcome {
  if (stmt.is_from === true) {
    run.writes = true;
    return noRows;
  }
  let outputs: readonly Output[];
  if (stmt.query !== undefined) outputs = query(stmt.query, undefined, undefined, run).outputs;
  else {
    const target = targetOf(stmt.relation, run);
    const columns = names(stmt.attlist);
    const builder = createBuilder();
    if (columns.length === 0) {
      take(run, builder, target.rte.whole);
      outputs = [{ star: true, name: "*", lineage: target.rte.whole, expanded: target.rte.columns }];
    } else {
      outputs = columns.map((name) => {
        const lineage = lookup(target.rte, name) ?? unresolved(run, [name]);
        take(run, builder, lineage);
        return { star: false, name, lineage, expanded: [{ name, lineage }] };
      });
    }
  }
  if (stmt.filename === undefined && stmt.is_program !== true) return { outputs, uncertain: [] };
  // To a server file or program: the rows go where masking never sees them.
  run.writes = true;
  const all = outputs.reduce((lineage, item) => union(lineage, item.lineage), clean);
  if (isTainted(all)) copied(run, `COPY TO ${stmt.is_program === true ? "PROGRAM" : "a server file"} writes ${describe(all)}`);
  return noRows;
}

function relationText(rel: { schemaname?: string; relname?: string } | undefined): string {
  return rel?.schemaname === undefined ? (rel?.relname ?? "") : `${rel.schemaname}.${rel.relname ?? ""}`;
}

function createTableAs(stmt: CreateTableAsStmt, run: Run): StatementOutcome {
  const info = query(stmt.query, undefined, undefined, run);
  if (stmt.into?.skipData === true) return noRows;
  run.writes = true;
  const label = stmt.objtype === "OBJECT_MATVIEW" ? "CREATE MATERIALIZED VIEW" : "CREATE TABLE AS";
  if (isTainted(info.whole)) copied(run, `${label} copies ${describe(info.whole)} into ${quote(relationText(stmt.into?.rel))}`);
  return noRows;
}

/**
 * A view copies nothing: reading it later resolves through the catalog, which follows its
 * dependencies on base columns. It cannot follow what a user function or an unknown relation
 * gives the view, so such a view launders values: taken as a copy.
 */
function createView(stmt: ViewStmt, run: Run): StatementOutcome {
  const info = query(stmt.query, undefined, undefined, run);
  if (info.whole.uncertain.size > 0) {
    copied(run, `view ${quote(relationText(stmt.view))} derives from what the catalog cannot follow: ${[...info.whole.uncertain].sort().join("; ")}`);
  }
  return noRows;
}

/** EXPLAIN returns a plan, not rows; its predicates still infer (row counts and estimates), and ANALYZE runs it. */
function explain(stmt: ExplainStmt, text: string, run: Run): StatementOutcome {
  const analyze = defElems(stmt.options).some((option) => option.name === "analyze" && defElemIsTrue(option.arg));
  const scratch = createRun(run.catalog, { body: run.body, nesting: run.nesting, inference: run.inference });
  statement(stmt.query, text, scratch);
  if (analyze) {
    run.writes ||= scratch.writes;
    if (scratch.copies) {
      run.copies = true;
      for (const reason of scratch.reasons) run.reasons.add(reason);
    }
  }
  return { outputs: [{ star: false, name: "QUERY PLAN", lineage: clean, expanded: undefined }], uncertain: [] };
}

/** CALL: a procedure may return OUT arguments read from anywhere. */
function call(stmt: CallStmt, run: Run): StatementOutcome {
  const builder = createBuilder();
  if (stmt.funccall !== undefined) expression({ FuncCall: stmt.funccall }, { level: undefined, ctes: undefined }, run, "value", builder);
  return { outputs: [], uncertain: [...builder.uncertain].sort() };
}

function rule(stmt: RuleStmt, run: Run): StatementOutcome {
  const target = targetOf(stmt.relation, run);
  const level: Level = { rtes: [{ ...target.rte, name: "new" }, { ...target.rte, name: "old" }], items: [], parent: undefined };
  for (const action of stmt.actions ?? []) {
    const tag = unwrap(action)?.[0];
    if (tag === "SelectStmt" || tag === "InsertStmt" || tag === "UpdateStmt" || tag === "DeleteStmt") query(action, level, undefined, run);
  }
  return noRows;
}

const relationTypes: ReadonlySet<string> = new Set(["OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW", "OBJECT_FOREIGN_TABLE"]);

/** Renaming what masking names (schema.table.column) moves its values out of masking's sight. */
function renameObject(stmt: RenameStmt, run: Run): StatementOutcome {
  const type = stmt.renameType ?? "";
  if (type === "OBJECT_SCHEMA") {
    if (stmt.subname !== undefined && run.catalog.sensitiveInSchema(stmt.subname)) {
      copied(run, `renames schema ${quote(stmt.subname)}, which holds sensitive columns`);
    }
    return noRows;
  }
  if (type !== "OBJECT_COLUMN" && !relationTypes.has(type)) return noRows;
  const resolved = resolveRelation(run.catalog, stmt.relation?.schemaname, stmt.relation?.relname ?? "");
  if (resolved.kind !== "known") return noRows;
  const relation = resolved.known.relation;
  if (type === "OBJECT_COLUMN") {
    if (stmt.subname !== undefined && relation.sensitive.has(stmt.subname)) {
      copied(run, `renames sensitive column ${quote(columnSource(relation, stmt.subname))}`);
    }
  } else if (relation.sensitive.size > 0) copied(run, `renames ${quote(`${relation.schema}.${relation.name}`)}, which has sensitive columns`);
  return noRows;
}

function moveObject(stmt: AlterObjectSchemaStmt, run: Run): StatementOutcome {
  if (!relationTypes.has(stmt.objectType ?? "")) return noRows;
  const resolved = resolveRelation(run.catalog, stmt.relation?.schemaname, stmt.relation?.relname ?? "");
  if (resolved.kind === "known" && resolved.known.relation.sensitive.size > 0) {
    const relation = resolved.known.relation;
    copied(run, `moves ${quote(`${relation.schema}.${relation.name}`)}, which has sensitive columns, to schema ${quote(stmt.newschema ?? "")}`);
  }
  return noRows;
}

/** ALTER COLUMN ... TYPE ... USING, generated columns, SET EXPRESSION: values computed from other columns. */
function alterTable(stmt: AlterTableStmt, run: Run): StatementOutcome {
  const target: Target = targetOf(stmt.relation, run);
  const env: Env = { level: { rtes: [target.rte], items: [], parent: undefined }, ctes: undefined };
  const lineageOf = (node: unknown): Lineage => {
    const builder = createBuilder();
    expression(node, env, run, "value", builder);
    return builder.sources.size === 0 && builder.uncertain.size === 0 ? clean : builder;
  };
  for (const item of stmt.cmds ?? []) {
    const cmd = unwrap(item)?.[1] as AlterTableCmd | undefined;
    if (cmd === undefined) continue;
    const def = unwrap(cmd.def);
    if (cmd.subtype === "AT_AlterColumnType" && def?.[0] === "ColumnDef") {
      assign(target, cmd.name, lineageOf((def[1] as ColumnDef).raw_default), run);
    } else if (cmd.subtype === "AT_AddColumn" && def?.[0] === "ColumnDef") {
      const column = def[1] as ColumnDef;
      for (const constraint of column.constraints ?? []) {
        const body = unwrap(constraint)?.[1] as Constraint | undefined;
        if (body?.contype === "CONSTR_GENERATED") assign(target, column.colname, lineageOf(body.raw_expr), run);
      }
    } else if (cmd.subtype === "AT_SetExpression") {
      assign(target, cmd.name, lineageOf(cmd.def), run);
    }
  }
  return noRows;
}

// Bodies: DO blocks and functions.

/** The SQL a body runs, or why it cannot be told. */
type BodySql = { readonly ok: true; readonly statements: readonly { readonly node: unknown; readonly text: string }[] } | { readonly ok: false; readonly reason: string };

function sqlTexts(texts: readonly string[], where: string): BodySql {
  const statements: { node: unknown; text: string }[] = [];
  for (const text of texts) {
    const parsed = parse(text);
    if (!parsed.ok) return { ok: false, reason: `cannot parse SQL in ${where}: ${parsed.error}` };
    statements.push(...parsed.statements);
  }
  return { ok: true, statements };
}

function plpgsqlSql(createFunctionSql: string, where: string): BodySql {
  const body = plpgsqlBody(createFunctionSql);
  if (!body.ok) return { ok: false, reason: `cannot parse the PL/pgSQL of ${where}` };
  if (body.dynamic.length > 0) return { ok: false, reason: `${where} runs dynamic SQL (${body.dynamic.join(", ")})` };
  const texts: string[] = [];
  for (const expression of body.expressions) {
    const queries = expressionQueries(expression);
    if (queries === undefined) return { ok: false, reason: `cannot read a PL/pgSQL expression in ${where}` };
    texts.push(...queries);
  }
  return sqlTexts(texts, where);
}

/** What a body does with sensitive values. */
interface BodyVerdict {
  readonly reads: boolean;
  readonly copies: boolean;
}

/**
 * Analyses a body's statements in a run of their own. It reads sensitive columns when any of
 * its statements references one, a value catalog, or something of uncertain origin; it copies
 * them when a statement copies, or when it reads them and writes anywhere (variables carry values
 * from one statement to the next, so a read and a write need not be in the same statement).
 * A body that cannot be analysed reads and copies (fail closed).
 */
function analyzeBody(sql: BodySql, where: string, run: Run, keepInference: boolean): BodyVerdict {
  if (!sql.ok || run.nesting >= maxNesting) {
    const reason = sql.ok ? `${where} nests too deeply to analyse` : sql.reason;
    copied(run, reason);
    return { reads: true, copies: true };
  }
  const inner = createRun(run.catalog, keepInference ? { body: true, nesting: run.nesting + 1, inference: run.inference } : { body: true, nesting: run.nesting + 1 });
  for (const item of sql.statements) statement(item.node, item.text, inner);
  const reads = inner.touched.size > 0 || inner.valueCatalogs.size > 0 || inner.sawUncertain;
  if (inner.copies) for (const reason of inner.reasons) copied(run, `${where}: ${reason}`);
  if (reads && inner.writes && !inner.copies) copied(run, `${where} reads sensitive columns and writes`);
  if (reads) run.reasons.add(bodyReadsReason);
  return { reads, copies: inner.copies || (reads && inner.writes) };
}

function doBlock(stmt: DoStmt, run: Run): StatementOutcome {
  const options = defElems(stmt.args);
  const language = (stringNode(options.find((option) => option.name === "language")?.arg) ?? "plpgsql").toLowerCase();
  const source = stringNode(options.find((option) => option.name === "as")?.arg) ?? "";
  const sql: BodySql = language === "plpgsql" ? plpgsqlSql(doBlockAsFunction(source), "a DO block") : { ok: false, reason: `DO block in language ${quote(language)} cannot be analysed` };
  // The block runs now: its predicates infer now, and RAISE can print what it reads.
  const verdict = analyzeBody(sql, "a DO block", run, true);
  return { outputs: [], uncertain: verdict.reads ? [bodyReadsReason] : [] };
}

function createFunction(stmt: CreateFunctionStmt, text: string, run: Run): StatementOutcome {
  const name = names(stmt.funcname).join(".");
  const where = `${stmt.is_procedure === true ? "procedure" : "function"} ${quote(name)}`;
  const options = defElems(stmt.options);
  const language = (stringNode(options.find((option) => option.name === "language")?.arg) ?? "sql").toLowerCase();
  let sql: BodySql;
  if (stmt.sql_body !== undefined) {
    // BEGIN ATOMIC ... END is a list of statement lists; RETURN expr is a ReturnStmt.
    const statements: { node: unknown; text: string }[] = [];
    const collect = (node: unknown): void => {
      const inner = unwrap(node);
      if (inner?.[0] === "List") for (const item of (inner[1]["items"] as unknown[] | undefined) ?? []) collect(item);
      else if (inner !== undefined) statements.push({ node, text: "" });
    };
    collect(stmt.sql_body);
    sql = { ok: true, statements };
  } else if (language === "sql") {
    const asArg = unwrap(options.find((option) => option.name === "as")?.arg);
    const source = names(asArg?.[0] === "List" ? (asArg[1] as Json)["items"] : undefined)[0] ?? stringNode(options.find((option) => option.name === "as")?.arg) ?? "";
    sql = sqlTexts([source], where);
  } else if (language === "plpgsql") sql = plpgsqlSql(text, where);
  else sql = { ok: false, reason: `${where} in language ${quote(language)} cannot be analysed` };
  // Creating the function runs nothing: its reads matter through what it writes when called.
  analyzeBody(sql, where, run, false);
  return noRows;
}

