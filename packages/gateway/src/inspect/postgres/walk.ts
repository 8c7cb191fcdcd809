import type { StatementClass } from "@airlock/policy";
import type { Node } from "libpg-query";
import { unboundedBy } from "./conditions.js";
import { addRelation, createFacts, flag, mergeFacts, quote, type Facts } from "./facts.js";
import { classifyFunction, classifyOperator, type CallArguments, type CallVerdict, type SafeFunctions } from "./functions.js";
import { doBlockAsFunction } from "./plpgsql.js";
import { classifySetting, schemaBeforeCatalog, splitSearchPath } from "./settings.js";

type KeysOfUnion<T> = T extends unknown ? keyof T : never;
/** Every node type of the parse tree, as libpg_query writes it: `{ "SelectStmt": { ... } }`. */
export type NodeTag = KeysOfUnion<Node>;
type NodeOf<K extends NodeTag> = Extract<Node, Record<K, unknown>>[K];
type Json = Record<string, unknown>;

/** What a statement's walk asks of analyze.ts: nested SQL text to analyse into the same facts. */
export interface NestedAnalyzer {
  /** Analyses SQL text (one or more statements) found inside a statement, into `facts`. */
  sql(text: string, facts: Facts, where: string): void;
  /** Analyses a CREATE FUNCTION ... LANGUAGE plpgsql statement's body, into `facts`. */
  plpgsql(createFunctionSql: string, facts: Facts, where: string): void;
}

/** What the top-level statement says about the session besides its classes. */
export interface SessionEffects {
  prepared?: { readonly name: string; readonly kind: string; readonly facts: Facts };
  cursor?: string;
  transaction?: TransactionKind;
}

/** Which transaction control statement a TransactionStmt is. */
export type TransactionKind =
  | "begin"
  | "commit"
  | "rollback"
  | "savepoint"
  | "release"
  | "rollback_to"
  | "prepare"
  | "commit_prepared"
  | "rollback_prepared";

/** The nesting the walker follows before it gives up (fail closed: the analysis fails). */
const maxDepth = 2_000;

/** Thrown when a tree is nested deeper than maxDepth. */
export class TreeTooDeepError extends Error {
  constructor() {
    super("statement is nested too deeply to analyse");
    this.name = "TreeTooDeepError";
  }
}

interface Walk {
  facts: Facts;
  readonly safe: SafeFunctions;
  readonly nested: NestedAnalyzer;
  /** The text of the statement being walked (PL/pgSQL bodies are parsed from it). */
  readonly statementText: string;
  readonly effects: SessionEffects;
  /** RangeVar bodies that a statement writes (DML targets, INTO, DDL targets). */
  readonly writeTargets: Set<object>;
  /** Names of the WITH queries in scope: a RangeVar naming one is not a relation. */
  scope: ReadonlySet<string>;
  depth: number;
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The tag of a wrapped node `{ Tag: { ... } }`, or undefined for a plain struct. Struct fields
 * start in lowercase, node tags in uppercase.
 */
function nodeTag(node: Json): string | undefined {
  let tag: string | undefined;
  for (const key in node) {
    if (tag !== undefined) return undefined;
    tag = key;
  }
  if (tag === undefined) return undefined;
  const first = tag.charCodeAt(0);
  if (first < 65 || first > 90) return undefined;
  const body = node[tag];
  return typeof body === "object" && body !== null && !Array.isArray(body) ? tag : undefined;
}

/** The tag and body of a wrapped node. */
export function unwrap(node: unknown): [string, Json] | undefined {
  if (!isObject(node)) return undefined;
  const tag = nodeTag(node);
  return tag === undefined ? undefined : [tag, node[tag] as Json];
}

/** The svals of a list of String nodes (names as the parser wrote them). */
export function names(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  const out: string[] = [];
  for (const item of list) {
    const inner = unwrap(item);
    if (inner?.[0] === "String" && typeof inner[1]["sval"] === "string") out.push(inner[1]["sval"]);
  }
  return out;
}

/** A string constant (optionally cast) as written, or undefined for anything else. */
export function stringConst(node: unknown): string | undefined {
  let inner = unwrap(node);
  if (inner?.[0] === "TypeCast") inner = unwrap(inner[1]["arg"]);
  if (inner?.[0] !== "A_Const") return undefined;
  const sval = inner[1]["sval"];
  if (!isObject(sval)) return undefined;
  return typeof sval["sval"] === "string" ? sval["sval"] : "";
}

/** A DefElem's boolean argument as defGetBoolean reads it; anything unclear counts as true. */
export function defElemIsTrue(arg: unknown): boolean {
  const inner = unwrap(arg);
  if (inner === undefined) return true;
  const [tag, body] = inner;
  if (tag === "Boolean") return body["boolval"] === true;
  if (tag === "Integer") return body["ival"] !== undefined && body["ival"] !== 0;
  if (tag === "String" && typeof body["sval"] === "string") {
    const word = body["sval"].toLowerCase();
    return !(word === "false" || word === "off" || word === "0" || word === "no");
  }
  return true;
}

/** The DefElems of an option list, by name. */
export function defElems(list: unknown): { name: string; arg: unknown }[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((item) => {
    const inner = unwrap(item);
    const name = inner?.[1]["defname"];
    return inner?.[0] === "DefElem" && typeof name === "string" ? [{ name, arg: inner[1]["arg"] }] : [];
  });
}

/** The text of a String node (a DefElem's argument such as a language name or a body). */
export function stringNode(node: unknown): string | undefined {
  const inner = unwrap(node);
  return inner?.[0] === "String" && typeof inner[1]["sval"] === "string" ? inner[1]["sval"] : undefined;
}

function relationName(rangeVar: unknown): string {
  const body = unwrap(rangeVar)?.[1] ?? (isObject(rangeVar) ? rangeVar : undefined);
  if (body === undefined || typeof body["relname"] !== "string") return "?";
  return typeof body["schemaname"] === "string" ? `${body["schemaname"]}.${body["relname"]}` : body["relname"];
}

/** Marks a RangeVar (wrapped or not) as a relation the statement writes. */
function target(walk: Walk, rangeVar: unknown): void {
  const body = unwrap(rangeVar)?.[1] ?? rangeVar;
  if (isObject(body)) walk.writeTargets.add(body);
}

/** True if the subtree reads stored data: a relation or a column. */
function readsData(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(readsData);
  if (!isObject(node)) return false;
  if (typeof node["relname"] === "string" || Object.hasOwn(node, "ColumnRef") || Object.hasOwn(node, "RangeVar")) return true;
  return Object.values(node).some(readsData);
}

function objectLabel(objectType: unknown): string {
  const labels: Readonly<Record<string, string>> = {
    OBJECT_MATVIEW: "MATERIALIZED VIEW",
    OBJECT_FDW: "FOREIGN DATA WRAPPER",
    OBJECT_FOREIGN_SERVER: "SERVER",
    OBJECT_TSCONFIGURATION: "TEXT SEARCH CONFIGURATION",
    OBJECT_TSDICTIONARY: "TEXT SEARCH DICTIONARY",
    OBJECT_TSPARSER: "TEXT SEARCH PARSER",
    OBJECT_TSTEMPLATE: "TEXT SEARCH TEMPLATE",
    OBJECT_STATISTIC_EXT: "STATISTICS",
    OBJECT_TABCONSTRAINT: "CONSTRAINT",
    OBJECT_DOMCONSTRAINT: "CONSTRAINT",
    OBJECT_LARGEOBJECT: "LARGE OBJECT",
  };
  if (typeof objectType !== "string") return "OBJECT";
  return labels[objectType] ?? objectType.replace("OBJECT_", "").replaceAll("_", " ");
}

/** Object types whose creation, change or removal is administration rather than schema change. */
const adminObjectTypes: ReadonlySet<string> = new Set([
  "OBJECT_ROLE",
  "OBJECT_DATABASE",
  "OBJECT_TABLESPACE",
  "OBJECT_PUBLICATION",
  "OBJECT_PUBLICATION_NAMESPACE",
  "OBJECT_PUBLICATION_REL",
  "OBJECT_SUBSCRIPTION",
  "OBJECT_FDW",
  "OBJECT_FOREIGN_SERVER",
  "OBJECT_USER_MAPPING",
  "OBJECT_EVENT_TRIGGER",
  "OBJECT_LANGUAGE",
  "OBJECT_ACCESS_METHOD",
  "OBJECT_PARAMETER_ACL",
]);

/** DROP, RENAME and the like: admin for admin objects, ddl and admin for policies, ddl otherwise. */
function objectChange(walk: Walk, objectType: unknown, verb: string): void {
  const label = `${verb} ${objectLabel(objectType)}`;
  if (typeof objectType === "string" && adminObjectTypes.has(objectType)) flag(walk.facts, "admin", label);
  else if (objectType === "OBJECT_POLICY") {
    flag(walk.facts, "ddl", label);
    flag(walk.facts, "admin", `${label} changes row level security`);
  } else flag(walk.facts, "ddl", label);
}

const relationObjectTypes: ReadonlySet<string> = new Set([
  "OBJECT_TABLE",
  "OBJECT_VIEW",
  "OBJECT_MATVIEW",
  "OBJECT_FOREIGN_TABLE",
  "OBJECT_SEQUENCE",
  "OBJECT_INDEX",
]);

function recordCall(walk: Walk, written: string, verdict: CallVerdict): void {
  walk.facts.functions.add(written);
  if (verdict.user) walk.facts.userFunctions.add(written);
  if (verdict.class !== "read") flag(walk.facts, verdict.class, verdict.reason);
}

/** set_config(name, value, is_local): as SET when the name is a constant, dangerous otherwise. */
function setConfig(walk: Walk, written: string, args: readonly unknown[]): void {
  const name = stringConst(args[0]);
  if (name === undefined) {
    flag(walk.facts, "dangerous", `calls ${quote(written)} with a setting name that is not a constant`);
    return;
  }
  const verdict = classifySetting(name, "set_config");
  flag(walk.facts, verdict.class, verdict.reason);
  const value = stringConst(args[1]);
  if (name.toLowerCase() === "search_path") {
    const first = value === undefined ? undefined : schemaBeforeCatalog(splitSearchPath(value));
    if (value === undefined) flag(walk.facts, "write", "set_config of `search_path` to a value that is not a constant");
    else if (first !== undefined) flag(walk.facts, "write", `search_path puts ${quote(first)} before \`pg_catalog\`: built-in names may reach user functions`);
  }
}

function callArguments(args: unknown): CallArguments {
  const list = Array.isArray(args) ? args : [];
  return { count: list.length, firstString: stringConst(list[0]) };
}

function withScope(walk: Walk, withClause: unknown): ReadonlySet<string> {
  if (!isObject(withClause) || !Array.isArray(withClause["ctes"])) return walk.scope;
  const scope = new Set(walk.scope);
  for (const cte of withClause["ctes"]) {
    const body = unwrap(cte)?.[1];
    if (body !== undefined && typeof body["ctename"] === "string") scope.add(body["ctename"]);
  }
  return scope;
}

/** Walks every value of `body` except the `skip` keys, with the WITH scope of `body` if any. */
function walkChildren(walk: Walk, body: Json, skip?: ReadonlySet<string>): void {
  const saved = walk.scope;
  if (body["withClause"] !== undefined) walk.scope = withScope(walk, body["withClause"]);
  for (const key in body) {
    if (skip?.has(key) === true) continue;
    walkValue(walk, body[key]);
  }
  walk.scope = saved;
}

/** Walks any JSON value of the tree. */
function walkValue(walk: Walk, value: unknown): void {
  if (typeof value !== "object" || value === null) return;
  walk.depth += 1;
  if (walk.depth > maxDepth) throw new TreeTooDeepError();
  if (Array.isArray(value)) {
    for (const item of value) walkValue(walk, item);
  } else {
    const tag = nodeTag(value as Json);
    if (tag === undefined) visitStruct(walk, value as Json);
    else visitNode(walk, tag, (value as Json)[tag] as Json);
  }
  walk.depth -= 1;
}

/** An unwrapped struct: a RangeVar is known by its relname, anything else is walked through. */
function visitStruct(walk: Walk, body: Json): void {
  if (typeof body["relname"] === "string") {
    visitRangeVar(walk, body);
    return;
  }
  walkChildren(walk, body);
}

function visitRangeVar(walk: Walk, body: Json): void {
  const name = body["relname"] as string;
  const schema = typeof body["schemaname"] === "string" ? body["schemaname"] : undefined;
  // A written relation is always a table, even when a WITH query has the same name.
  const access = walk.writeTargets.has(body) ? "write" : "read";
  if (schema !== undefined || access === "write" || !walk.scope.has(name)) {
    addRelation(walk.facts, schema === undefined ? { name, access } : { schema, name, access });
  }
}

/** A handler returns true when it walked the node's children itself. */
type Handler<K extends NodeTag> = (walk: Walk, body: NodeOf<K> & Json) => boolean | void;
type Handlers = { readonly [K in NodeTag]?: Handler<K> };

/** A statement that only has a class. */
function plain(statementClass: StatementClass, label: string): (walk: Walk) => void {
  return (walk) => {
    flag(walk.facts, statementClass, label);
  };
}
const ddl = (label: string) => plain("ddl", label);
const admin = (label: string) => plain("admin", label);
const read = (label: string) => plain("read", label);

const lockStrength: Readonly<Record<string, string>> = {
  LCS_FORKEYSHARE: "FOR KEY SHARE",
  LCS_FORSHARE: "FOR SHARE",
  LCS_FORNOKEYUPDATE: "FOR NO KEY UPDATE",
  LCS_FORUPDATE: "FOR UPDATE",
};

function visitSelect(walk: Walk, body: Json): void {
  const saved = walk.scope;
  if (body["withClause"] !== undefined) walk.scope = withScope(walk, body["withClause"]);
  if (Array.isArray(body["lockingClause"])) {
    for (const clause of body["lockingClause"]) {
      const strength = unwrap(clause)?.[1]["strength"];
      flag(walk.facts, "write", `SELECT ${lockStrength[String(strength)] ?? "FOR UPDATE"} locks rows`);
    }
  }
  const into = body["intoClause"];
  if (isObject(into)) {
    target(walk, into["rel"]);
    flag(walk.facts, "ddl", `SELECT INTO creates table ${quote(relationName(into["rel"]))}`);
    flag(walk.facts, "write", `SELECT INTO copies rows into ${quote(relationName(into["rel"]))}`);
    walk.facts.copiesData = true;
  }
  for (const side of ["larg", "rarg"]) {
    const branch = body[side];
    if (isObject(branch)) {
      walk.depth += 1;
      if (walk.depth > maxDepth) throw new TreeTooDeepError();
      visitSelect(walk, branch);
      walk.depth -= 1;
    }
  }
  for (const key in body) {
    if (key === "larg" || key === "rarg") continue;
    walkValue(walk, body[key]);
  }
  walk.scope = saved;
}

function unbounded(walk: Walk, verb: string, relation: unknown, where: unknown): void {
  const how = unboundedBy(where);
  if (how === undefined) return;
  walk.facts.unboundedWrite = true;
  walk.facts.reasons.add(`${verb} ${how} on ${quote(relationName(relation))}`);
}

const explainSkip: ReadonlySet<string> = new Set(["query"]);
const functionSkip: ReadonlySet<string> = new Set(["funcname"]);

const handlers: Handlers = {
  // Expressions and references.
  FuncCall: (walk, body) => {
    const parts = names(body.funcname);
    const written = parts.join(".");
    const args = Array.isArray(body.args) ? body.args : [];
    const name = parts.at(-1);
    if (name === "set_config" && (parts.length === 1 || parts[0] === "pg_catalog")) {
      walk.facts.functions.add(written);
      setConfig(walk, written, args);
    } else {
      recordCall(walk, written, classifyFunction(parts, callArguments(args), walk.safe));
    }
    walkChildren(walk, body, functionSkip);
    return true;
  },
  A_Expr: (walk, body) => {
    const kind = body.kind;
    if (kind !== "AEXPR_BETWEEN" && kind !== "AEXPR_NOT_BETWEEN" && kind !== "AEXPR_BETWEEN_SYM" && kind !== "AEXPR_NOT_BETWEEN_SYM") {
      const parts = names(body.name);
      if (parts.length > 0) {
        const verdict = classifyOperator(parts, walk.safe);
        if (verdict.user) walk.facts.userFunctions.add(parts.join("."));
        if (verdict.class !== "read") flag(walk.facts, verdict.class, verdict.reason);
      }
    }
  },
  RangeTableSample: (walk, body) => {
    const parts = names(body.method);
    if (parts.length > 0) recordCall(walk, parts.join("."), classifyFunction(parts, callArguments(body.args), walk.safe));
  },
  RangeVar: (walk, body) => {
    visitRangeVar(walk, body);
    return true;
  },
  CommonTableExpr: (walk, body) => {
    const inner = unwrap(body.ctequery)?.[0];
    if (inner === "InsertStmt" || inner === "UpdateStmt" || inner === "DeleteStmt" || inner === "MergeStmt") {
      flag(walk.facts, "write", `data-modifying WITH query ${quote(String(body.ctename))}`);
    }
  },

  // Queries and data changes.
  SelectStmt: (walk, body) => {
    visitSelect(walk, body);
    return true;
  },
  InsertStmt: (walk, body) => {
    target(walk, body.relation);
    flag(walk.facts, "write", `INSERT into ${quote(relationName(body.relation))}`);
    if (body.selectStmt !== undefined && readsData(body.selectStmt)) walk.facts.copiesData = true;
  },
  UpdateStmt: (walk, body) => {
    target(walk, body.relation);
    flag(walk.facts, "write", `UPDATE of ${quote(relationName(body.relation))}`);
    unbounded(walk, "UPDATE", body.relation, body.whereClause);
    if (readsData(body.targetList) || readsData(body.fromClause)) walk.facts.copiesData = true;
  },
  DeleteStmt: (walk, body) => {
    target(walk, body.relation);
    flag(walk.facts, "write", `DELETE from ${quote(relationName(body.relation))}`);
    unbounded(walk, "DELETE", body.relation, body.whereClause);
  },
  MergeStmt: (walk, body) => {
    target(walk, body.relation);
    flag(walk.facts, "write", `MERGE into ${quote(relationName(body.relation))}`);
    if (readsData(body.sourceRelation)) walk.facts.copiesData = true;
    const how = unboundedBy(body.joinCondition);
    const clauses = Array.isArray(body.mergeWhenClauses) ? body.mergeWhenClauses : [];
    const sweeping = clauses.some((clause) => {
      const when = unwrap(clause)?.[1];
      return (
        when !== undefined &&
        when["matchKind"] !== "MERGE_WHEN_NOT_MATCHED_BY_TARGET" &&
        (when["commandType"] === "CMD_UPDATE" || when["commandType"] === "CMD_DELETE") &&
        (when["condition"] === undefined || unboundedBy(when["condition"]) !== undefined)
      );
    });
    if (how !== undefined && body.joinCondition !== undefined && sweeping) {
      walk.facts.unboundedWrite = true;
      walk.facts.reasons.add(`MERGE ${how.replace("WHERE", "join condition")} on ${quote(relationName(body.relation))}`);
    }
  },
  TruncateStmt: (walk, body) => {
    for (const relation of body.relations ?? []) {
      target(walk, relation);
      walk.facts.reasons.add(`TRUNCATE of ${quote(relationName(relation))}`);
    }
    walk.facts.classes.add("write");
    walk.facts.unboundedWrite = true;
  },
  CopyStmt: (walk, body) => {
    const direction = body.is_from === true ? "FROM" : "TO";
    const what = body.relation !== undefined ? quote(relationName(body.relation)) : "a query";
    if (body.is_from === true && body.relation !== undefined) target(walk, body.relation);
    if (body.is_program === true) flag(walk.facts, "dangerous", `COPY ${direction} PROGRAM runs a server program`);
    else if (body.filename !== undefined) flag(walk.facts, "dangerous", `COPY ${direction} a server file`);
    if (body.is_from === true) flag(walk.facts, "write", `COPY ${what} FROM ${body.filename === undefined ? "STDIN" : "outside"}`);
    else {
      flag(walk.facts, "export", `COPY ${what} TO ${body.filename === undefined ? "STDOUT" : "outside"}`);
      if (body.query !== undefined) walk.facts.copiesData = true;
    }
  },
  ExplainStmt: (walk, body) => {
    const analyze = defElems(body.options).some((option) => option.name === "analyze" && defElemIsTrue(option.arg));
    if (analyze) {
      walk.facts.reasons.add("EXPLAIN ANALYZE runs the statement");
      return false;
    }
    // Without ANALYZE nothing runs, but planning may call user functions declared immutable.
    const outer = walk.facts;
    const inner = createFacts();
    walk.facts = inner;
    walkValue(walk, body.query);
    walk.facts = outer;
    for (const relation of inner.relations.values()) {
      addRelation(outer, relation.schema === undefined ? { name: relation.name, access: "read" } : { schema: relation.schema, name: relation.name, access: "read" });
    }
    for (const name of inner.functions) outer.functions.add(name);
    for (const name of inner.userFunctions) {
      outer.userFunctions.add(name);
      flag(outer, "write", `EXPLAIN may run user function ${quote(name)} while planning`);
    }
    flag(outer, "read", "EXPLAIN without ANALYZE does not run the statement");
    walkChildren(walk, body, explainSkip);
    return true;
  },
  PrepareStmt: (walk, body) => {
    const outer = walk.facts;
    const inner = createFacts();
    walk.facts = inner;
    walkValue(walk, body.query);
    walk.facts = outer;
    mergeFacts(outer, inner);
    const kind = unwrap(body.query)?.[0] ?? "unknown";
    walk.effects.prepared = { name: String(body.name ?? ""), kind, facts: inner };
    return true;
  },
  ExecuteStmt: (walk, body) => {
    const name = String(body.name ?? "");
    walk.facts.executes ??= name;
    flag(walk.facts, "write", `EXECUTE of prepared statement ${quote(name)}: taken as a write until resolved`);
  },
  DeclareCursorStmt: (walk, body) => {
    if (typeof body.portalname === "string") walk.effects.cursor = body.portalname;
    flag(walk.facts, "read", `DECLARE CURSOR ${quote(String(body.portalname))}`);
  },
  FetchStmt: (walk, body) => {
    flag(walk.facts, "read", body.ismove === true ? "MOVE in a cursor" : "FETCH from a cursor");
  },
  ClosePortalStmt: read("CLOSE of a cursor"),
  CallStmt: (walk, body) => {
    const call = body.funccall;
    if (call !== undefined) {
      const parts = names(call.funcname);
      const verdict = classifyFunction(parts, callArguments(call.args), walk.safe);
      const written = parts.join(".");
      walk.facts.functions.add(written);
      if (verdict.user) walk.facts.userFunctions.add(written);
      if (verdict.class === "read") flag(walk.facts, "read", `CALL of ${quote(written)}, marked safe`);
      else flag(walk.facts, verdict.class, verdict.user ? `CALL of procedure ${quote(written)}` : verdict.reason);
      walkChildren(walk, call as Json, functionSkip);
    }
    walkValue(walk, body.outargs);
    return true;
  },
  DoStmt: (walk, body) => {
    const options = defElems(body.args);
    const language = options.find((option) => option.name === "language");
    const languageName = language === undefined ? "plpgsql" : (stringNode(language.arg) ?? "");
    const source = stringNode(options.find((option) => option.name === "as")?.arg) ?? "";
    if (languageName.toLowerCase() !== "plpgsql") {
      flag(walk.facts, "dangerous", `DO block in language ${quote(languageName)}`);
      return true;
    }
    flag(walk.facts, "read", "DO block");
    walk.nested.plpgsql(doBlockAsFunction(source), walk.facts, "a DO block");
    return true;
  },

  // Session and transaction control.
  TransactionStmt: (walk, body) => {
    const kinds: Readonly<Record<string, TransactionKind>> = {
      TRANS_STMT_BEGIN: "begin",
      TRANS_STMT_START: "begin",
      TRANS_STMT_COMMIT: "commit",
      TRANS_STMT_ROLLBACK: "rollback",
      TRANS_STMT_SAVEPOINT: "savepoint",
      TRANS_STMT_RELEASE: "release",
      TRANS_STMT_ROLLBACK_TO: "rollback_to",
      TRANS_STMT_PREPARE: "prepare",
      TRANS_STMT_COMMIT_PREPARED: "commit_prepared",
      TRANS_STMT_ROLLBACK_PREPARED: "rollback_prepared",
    };
    const kind = kinds[String(body.kind)];
    if (kind !== undefined) walk.effects.transaction ??= kind;
    flag(walk.facts, "read", `transaction control (${kind ?? "unknown"})`);
  },
  VariableSetStmt: (walk, body) => {
    if (body.kind === "VAR_RESET_ALL") {
      flag(walk.facts, "read", "RESET ALL");
      return;
    }
    const name = typeof body.name === "string" ? body.name : "";
    const verb = body.kind === "VAR_RESET" ? "RESET" : "SET";
    const verdict = classifySetting(name, verb);
    flag(walk.facts, verdict.class, verdict.reason);
    if (name.toLowerCase() === "search_path" && body.kind === "VAR_SET_VALUE") {
      const schemas = (body.args ?? []).map((arg) => stringConst(arg) ?? "");
      const first = schemaBeforeCatalog(schemas);
      if (first !== undefined) flag(walk.facts, "write", `search_path puts ${quote(first)} before \`pg_catalog\`: built-in names may reach user functions`);
    }
  },
  VariableShowStmt: read("SHOW"),
  DiscardStmt: (walk, body) => {
    if (body.target === "DISCARD_ALL") flag(walk.facts, "dangerous", "DISCARD ALL resets the session authorization");
    else flag(walk.facts, "read", "DISCARD");
  },
  DeallocateStmt: read("DEALLOCATE"),
  ListenStmt: read("LISTEN"),
  UnlistenStmt: read("UNLISTEN"),
  ConstraintsSetStmt: read("SET CONSTRAINTS"),
  NotifyStmt: (walk, body) => {
    flag(walk.facts, "write", `NOTIFY on channel ${quote(String(body.conditionname))}`);
  },
  LockStmt: (walk, body) => {
    for (const relation of body.relations ?? []) target(walk, relation);
    flag(walk.facts, "write", "LOCK of tables");
  },
  LoadStmt: (walk, body) => {
    flag(walk.facts, "dangerous", `LOAD of shared library ${quote(String(body.filename))}`);
  },
  AlterSystemStmt: (walk) => {
    flag(walk.facts, "dangerous", "ALTER SYSTEM changes the server configuration");
  },

  // Schema changes.
  CreateStmt: (walk, body) => {
    target(walk, body.relation);
    flag(walk.facts, "ddl", `CREATE TABLE ${quote(relationName(body.relation))}`);
  },
  CreateTableAsStmt: (walk, body) => {
    const into = body.into;
    const label = body.objtype === "OBJECT_MATVIEW" ? "CREATE MATERIALIZED VIEW" : "CREATE TABLE AS";
    const name = quote(relationName(into?.rel));
    if (into?.rel !== undefined) target(walk, into.rel);
    flag(walk.facts, "ddl", `${label} ${name}`);
    if (into?.skipData !== true) {
      flag(walk.facts, "write", `${label} copies rows into ${name}`);
      walk.facts.copiesData = true;
    }
  },
  ViewStmt: (walk, body) => {
    target(walk, body.view);
    flag(walk.facts, "ddl", `CREATE VIEW ${quote(relationName(body.view))}`);
  },
  IndexStmt: (walk, body) => {
    target(walk, body.relation);
    flag(walk.facts, "ddl", `CREATE INDEX on ${quote(relationName(body.relation))}`);
  },
  AlterTableStmt: (walk, body) => {
    target(walk, body.relation);
    const what = `ALTER ${objectLabel(body.objtype)} ${quote(relationName(body.relation))}`;
    for (const cmd of body.cmds ?? []) {
      const subtype = unwrap(cmd)?.[1]["subtype"];
      if (subtype === "AT_ChangeOwner") flag(walk.facts, "admin", `${what} OWNER TO`);
      else if (
        subtype === "AT_EnableRowSecurity" ||
        subtype === "AT_DisableRowSecurity" ||
        subtype === "AT_ForceRowSecurity" ||
        subtype === "AT_NoForceRowSecurity"
      ) {
        flag(walk.facts, "ddl", what);
        flag(walk.facts, "admin", `${what} changes row level security`);
      } else flag(walk.facts, "ddl", what);
    }
    if (body.objtype === "OBJECT_FOREIGN_TABLE") foreignFileOptions(walk, body.cmds);
  },
  CreateForeignTableStmt: (walk, body) => {
    target(walk, body.base?.relation);
    flag(walk.facts, "ddl", `CREATE FOREIGN TABLE ${quote(relationName(body.base?.relation))}`);
    foreignFileOptions(walk, body.options);
  },
  DropStmt: (walk, body) => {
    if (typeof body.removeType !== "string" || !relationObjectTypes.has(body.removeType)) {
      objectChange(walk, body.removeType, "DROP");
      return;
    }
    for (const object of body.objects ?? []) {
      const parts = names(unwrap(object)?.[1]["items"]);
      const name = parts.at(-1);
      const schema = parts.length > 1 ? parts.at(-2) : undefined;
      if (name === undefined) continue;
      addRelation(walk.facts, schema === undefined ? { name, access: "write" } : { schema, name, access: "write" });
      flag(walk.facts, "ddl", `DROP ${objectLabel(body.removeType)} ${quote(parts.join("."))}`);
    }
  },
  RenameStmt: (walk, body) => {
    if (body.relation !== undefined) target(walk, body.relation);
    objectChange(walk, body.renameType, "RENAME");
  },
  AlterObjectSchemaStmt: (walk, body) => {
    if (body.relation !== undefined) target(walk, body.relation);
    objectChange(walk, body.objectType, "ALTER ... SET SCHEMA of");
  },
  AlterOwnerStmt: (walk, body) => {
    if (body.relation !== undefined) target(walk, body.relation);
    flag(walk.facts, "admin", `ALTER ${objectLabel(body.objectType)} OWNER TO`);
  },
  CreateSchemaStmt: (walk, body) => {
    flag(walk.facts, "ddl", `CREATE SCHEMA ${quote(String(body.schemaname ?? ""))}`);
    if (body.authrole !== undefined) flag(walk.facts, "admin", "CREATE SCHEMA AUTHORIZATION gives the schema to a role");
  },
  CreateFunctionStmt: (walk, body) => {
    createFunction(walk, body);
    return true;
  },
  AlterFunctionStmt: (walk, body) => {
    flag(walk.facts, "ddl", `ALTER ${objectLabel(body.objtype)}`);
    if (defElems(body.actions).some((option) => option.name === "security" && defElemIsTrue(option.arg))) {
      flag(walk.facts, "admin", "SECURITY DEFINER runs the function with its owner's rights");
    }
  },
  CreateTrigStmt: (walk, body) => {
    target(walk, body.relation);
    flag(walk.facts, "ddl", `CREATE TRIGGER ${quote(String(body.trigname ?? ""))}`);
  },
  RuleStmt: (walk, body) => {
    target(walk, body.relation);
    flag(walk.facts, "ddl", `CREATE RULE ${quote(String(body.rulename ?? ""))}`);
  },
  CreatePolicyStmt: (walk, body) => {
    target(walk, body.table);
    flag(walk.facts, "ddl", "CREATE POLICY");
    flag(walk.facts, "admin", "CREATE POLICY changes row level security");
  },
  AlterPolicyStmt: (walk, body) => {
    target(walk, body.table);
    flag(walk.facts, "ddl", "ALTER POLICY");
    flag(walk.facts, "admin", "ALTER POLICY changes row level security");
  },
  RefreshMatViewStmt: (walk, body) => {
    target(walk, body.relation);
    flag(walk.facts, "write", `REFRESH MATERIALIZED VIEW ${quote(relationName(body.relation))}`);
    walk.facts.copiesData = true;
  },
  CommentStmt: (walk, body) => {
    flag(walk.facts, "ddl", `COMMENT ON ${objectLabel(body.objtype)}`);
  },
  CreateSeqStmt: (walk, body) => {
    target(walk, body.sequence);
    flag(walk.facts, "ddl", "CREATE SEQUENCE");
  },
  AlterSeqStmt: (walk, body) => {
    target(walk, body.sequence);
    flag(walk.facts, "ddl", "ALTER SEQUENCE");
  },
  DefineStmt: (walk, body) => {
    flag(walk.facts, "ddl", `CREATE ${objectLabel(body.kind)}`);
  },
  CompositeTypeStmt: ddl("CREATE TYPE"),
  CreateEnumStmt: ddl("CREATE TYPE AS ENUM"),
  CreateRangeStmt: ddl("CREATE TYPE AS RANGE"),
  AlterEnumStmt: ddl("ALTER TYPE"),
  AlterTypeStmt: ddl("ALTER TYPE"),
  CreateDomainStmt: ddl("CREATE DOMAIN"),
  AlterDomainStmt: ddl("ALTER DOMAIN"),
  AlterOperatorStmt: ddl("ALTER OPERATOR"),
  CreateOpClassStmt: ddl("CREATE OPERATOR CLASS"),
  CreateOpFamilyStmt: ddl("CREATE OPERATOR FAMILY"),
  AlterOpFamilyStmt: ddl("ALTER OPERATOR FAMILY"),
  CreateStatsStmt: ddl("CREATE STATISTICS"),
  AlterStatsStmt: ddl("ALTER STATISTICS"),
  AlterCollationStmt: ddl("ALTER COLLATION"),
  AlterTSDictionaryStmt: ddl("ALTER TEXT SEARCH DICTIONARY"),
  AlterTSConfigurationStmt: ddl("ALTER TEXT SEARCH CONFIGURATION"),
  CreateCastStmt: ddl("CREATE CAST"),
  CreateConversionStmt: ddl("CREATE CONVERSION"),
  CreateTransformStmt: ddl("CREATE TRANSFORM"),
  AlterObjectDependsStmt: ddl("ALTER ... DEPENDS ON EXTENSION"),
  AlterExtensionContentsStmt: ddl("ALTER EXTENSION ADD/DROP"),
  ImportForeignSchemaStmt: ddl("IMPORT FOREIGN SCHEMA"),
  CreateEventTrigStmt: (walk) => {
    flag(walk.facts, "ddl", "CREATE EVENT TRIGGER");
    flag(walk.facts, "admin", "CREATE EVENT TRIGGER runs a function on every DDL command");
  },
  AlterEventTrigStmt: (walk) => {
    flag(walk.facts, "ddl", "ALTER EVENT TRIGGER");
    flag(walk.facts, "admin", "ALTER EVENT TRIGGER changes a database-wide trigger");
  },
  CreateAmStmt: (walk) => {
    flag(walk.facts, "ddl", "CREATE ACCESS METHOD");
    flag(walk.facts, "admin", "CREATE ACCESS METHOD needs a superuser");
  },
  CreateExtensionStmt: (walk, body) => {
    flag(walk.facts, "dangerous", `CREATE EXTENSION ${quote(String(body.extname ?? ""))} runs the extension's scripts`);
  },
  AlterExtensionStmt: (walk, body) => {
    flag(walk.facts, "dangerous", `ALTER EXTENSION ${quote(String(body.extname ?? ""))} runs the extension's update scripts`);
  },
  CreatePLangStmt: (walk, body) => {
    flag(walk.facts, "dangerous", `CREATE LANGUAGE ${quote(String(body.plname ?? ""))}`);
  },

  // Administration.
  GrantStmt: (walk, body) => {
    flag(walk.facts, "admin", `${body.is_grant === true ? "GRANT" : "REVOKE"} of privileges`);
  },
  GrantRoleStmt: (walk, body) => {
    flag(walk.facts, "admin", `${body.is_grant === true ? "GRANT" : "REVOKE"} of role membership`);
  },
  AlterDefaultPrivilegesStmt: admin("ALTER DEFAULT PRIVILEGES"),
  CreateRoleStmt: admin("CREATE ROLE"),
  AlterRoleStmt: admin("ALTER ROLE"),
  AlterRoleSetStmt: admin("ALTER ROLE ... SET"),
  DropRoleStmt: admin("DROP ROLE"),
  DropOwnedStmt: admin("DROP OWNED"),
  ReassignOwnedStmt: admin("REASSIGN OWNED"),
  VacuumStmt: (walk, body) => {
    flag(walk.facts, "admin", body.is_vacuumcmd === true ? "VACUUM" : "ANALYZE");
  },
  ClusterStmt: admin("CLUSTER"),
  ReindexStmt: admin("REINDEX"),
  CheckPointStmt: admin("CHECKPOINT"),
  CreatedbStmt: admin("CREATE DATABASE"),
  AlterDatabaseStmt: admin("ALTER DATABASE"),
  AlterDatabaseSetStmt: admin("ALTER DATABASE ... SET"),
  AlterDatabaseRefreshCollStmt: admin("ALTER DATABASE ... REFRESH COLLATION VERSION"),
  DropdbStmt: admin("DROP DATABASE"),
  CreateTableSpaceStmt: admin("CREATE TABLESPACE"),
  DropTableSpaceStmt: admin("DROP TABLESPACE"),
  AlterTableSpaceOptionsStmt: admin("ALTER TABLESPACE"),
  AlterTableMoveAllStmt: admin("ALTER TABLE ALL IN TABLESPACE"),
  CreatePublicationStmt: admin("CREATE PUBLICATION"),
  AlterPublicationStmt: admin("ALTER PUBLICATION"),
  CreateSubscriptionStmt: admin("CREATE SUBSCRIPTION"),
  AlterSubscriptionStmt: admin("ALTER SUBSCRIPTION"),
  DropSubscriptionStmt: admin("DROP SUBSCRIPTION"),
  CreateFdwStmt: admin("CREATE FOREIGN DATA WRAPPER"),
  AlterFdwStmt: admin("ALTER FOREIGN DATA WRAPPER"),
  CreateForeignServerStmt: admin("CREATE SERVER"),
  AlterForeignServerStmt: admin("ALTER SERVER"),
  CreateUserMappingStmt: admin("CREATE USER MAPPING"),
  AlterUserMappingStmt: admin("ALTER USER MAPPING"),
  DropUserMappingStmt: admin("DROP USER MAPPING"),
  SecLabelStmt: admin("SECURITY LABEL"),

  // Parts of other statements: no class of their own.
  ReplicaIdentityStmt: () => undefined,
  SetOperationStmt: () => undefined,
  ReturnStmt: () => undefined,
  PLAssignStmt: () => undefined,
};

/** Options of a foreign table that make file_fdw read a server file or run a program. */
function foreignFileOptions(walk: Walk, node: unknown): void {
  const found = new Set<string>();
  const search = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(search);
    else if (isObject(value)) {
      const inner = unwrap(value);
      if (inner?.[0] === "DefElem" && (inner[1]["defname"] === "program" || inner[1]["defname"] === "filename")) found.add(inner[1]["defname"]);
      Object.values(value).forEach(search);
    }
  };
  search(node);
  for (const option of [...found].sort()) {
    flag(walk.facts, "dangerous", option === "program" ? "foreign table runs a server program" : "foreign table reads a server file");
  }
}

const trustedBodyLanguages: ReadonlySet<string> = new Set(["sql", "plpgsql"]);

function createFunction(walk: Walk, body: NodeOf<"CreateFunctionStmt"> & Json): void {
  const name = names(body.funcname).join(".");
  const what = `${body.is_procedure === true ? "procedure" : "function"} ${quote(name)}`;
  const options = defElems(body.options);
  // Without LANGUAGE the server requires a BEGIN ATOMIC or RETURN body, which is SQL.
  const language = (stringNode(options.find((option) => option.name === "language")?.arg) ?? "sql").toLowerCase();
  flag(walk.facts, "ddl", `CREATE ${body.is_procedure === true ? "PROCEDURE" : "FUNCTION"} ${quote(name)}`);
  if (options.some((option) => option.name === "security" && defElemIsTrue(option.arg))) {
    flag(walk.facts, "admin", `SECURITY DEFINER ${what} runs with its owner's rights`);
  }
  // Parameters' defaults, SET options and the like are walked as any expression would be.
  walkChildren(walk, body, new Set(["funcname", "sql_body", "options"]));
  for (const option of options) if (option.name !== "as") walkValue(walk, option.arg);
  if (!trustedBodyLanguages.has(language)) {
    flag(walk.facts, "dangerous", `${what} in language ${quote(language)}`);
    return;
  }
  if (body.sql_body !== undefined) {
    walkValue(walk, body.sql_body);
    return;
  }
  const source = names(unwrap(options.find((option) => option.name === "as")?.arg)?.[1]["items"])[0];
  if (source === undefined) return;
  if (language === "sql") walk.nested.sql(source, walk.facts, what);
  else walk.nested.plpgsql(walk.statementText, walk.facts, what);
}

function visitNode(walk: Walk, tag: string, body: Json): void {
  const handler = (handlers as Readonly<Record<string, Handler<NodeTag> | undefined>>)[tag];
  if (handler === undefined) {
    if (tag.endsWith("Stmt")) flag(walk.facts, "dangerous", `unrecognised statement ${quote(tag)}`);
    walkChildren(walk, body);
    return;
  }
  if (handler(walk, body as NodeOf<NodeTag> & Json) !== true) walkChildren(walk, body);
}

/** Statement tags this walker knows how to classify at the top level. */
function isKnownStatement(tag: string): boolean {
  return Object.hasOwn(handlers, tag) && tag.endsWith("Stmt") && tag !== "ReplicaIdentityStmt" && tag !== "SetOperationStmt";
}

/**
 * Walks one parsed statement (`{ "SelectStmt": { ... } }`) into `facts`: its own class, and
 * everything found anywhere inside it (calls, relations, sub-queries, WITH queries, locking).
 */
export function walkStatement(
  statement: unknown,
  context: { readonly facts: Facts; readonly safe: SafeFunctions; readonly nested: NestedAnalyzer; readonly statementText: string },
): SessionEffects {
  const effects: SessionEffects = {};
  // No object spread here: it is the hot path, and spreading costs more than the whole walk.
  const walk: Walk = {
    facts: context.facts,
    safe: context.safe,
    nested: context.nested,
    statementText: context.statementText,
    effects,
    writeTargets: new Set(),
    scope: new Set(),
    depth: 0,
  };
  const inner = unwrap(statement);
  if (inner === undefined) {
    flag(context.facts, "dangerous", "unrecognised statement");
    return effects;
  }
  if (!isKnownStatement(inner[0])) flag(context.facts, "dangerous", `unrecognised statement ${quote(inner[0])}`);
  walkValue(walk, statement);
  return effects;
}
