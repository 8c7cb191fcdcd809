import { addRelation, flag, quote, type Facts } from "../postgres/facts.js";
import { unboundedBy } from "./conditions.js";
import { classifyFunction, type SafeFunctions } from "./functions.js";
import type { AstNode } from "./parser.js";

/**
 * Walks sqlparser-rs's tree of a query or data change (SELECT, INSERT, REPLACE, UPDATE, DELETE)
 * into facts: relations read and written, functions called, row locks, unbounded writes and copies.
 */

type Json = Record<string, unknown>;

/** The nesting the walker follows before it gives up (the analysis then fails closed). */
const maxDepth = 2_000;

/** Thrown when a tree is nested deeper than maxDepth. */
export class TreeTooDeepError extends Error {
  constructor() {
    super("statement is nested too deeply to analyse");
    this.name = "TreeTooDeepError";
  }
}

/** Thrown when the parser made something other than a query or data change of the text. */
export class UnexpectedStatementError extends Error {}

/** What a walk needs. */
export interface WalkContext {
  readonly facts: Facts;
  /** Classes and reasons that come from function calls alone (what EXPLAIN may still run). */
  readonly calls: Facts;
  readonly safe: SafeFunctions;
  /** The current schema, which unqualified names resolve to. */
  readonly schema: string | undefined;
}

interface Walk extends WalkContext {
  /** Table factors a statement writes. */
  readonly targets: Set<object>;
  /** Names of WITH queries in scope. */
  scope: ReadonlySet<string>;
  depth: number;
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The text of an identifier part (`{ Identifier: { value } }` or `{ value }`). */
function partValue(part: unknown): string | undefined {
  if (!isObject(part)) return undefined;
  const identifier = isObject(part["Identifier"]) ? part["Identifier"] : part;
  return typeof identifier["value"] === "string" ? identifier["value"] : undefined;
}

/** The parts of an object name as written. */
export function nameParts(name: unknown): string[] {
  if (!Array.isArray(name)) return [];
  return name.map(partValue).filter((part): part is string => part !== undefined);
}

/** `schema.name` or `name` of a table factor, for reasons. */
function tableLabel(table: Json): string {
  return nameParts(table["name"]).join(".");
}

/** Records a relation: qualified as written, or with the current schema when the name is bare. */
function relation(walk: Walk, parts: readonly string[], access: "read" | "write"): void {
  const name = parts.at(-1);
  if (name === undefined) return;
  const schema = parts.length >= 2 ? parts.at(-2) : walk.schema;
  addRelation(walk.facts, schema === undefined ? { name, access } : { schema, name, access });
}

/** True if the subtree reads stored data: a table or a column. */
export function readsData(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(readsData);
  if (!isObject(node)) return false;
  if (isObject(node["Table"]) && Array.isArray(node["Table"]["name"])) return true;
  const identifier = node["Identifier"];
  if (isObject(identifier) && typeof identifier["value"] === "string" && !identifier["value"].startsWith("@")) return true;
  if (Array.isArray(node["CompoundIdentifier"])) return true;
  return Object.entries(node).some(([key, value]) => key !== "name" && key !== "alias" && readsData(value));
}

function walkValue(walk: Walk, value: unknown): void {
  if (typeof value !== "object" || value === null) return;
  walk.depth += 1;
  if (walk.depth > maxDepth) throw new TreeTooDeepError();
  if (Array.isArray(value)) {
    for (const item of value) walkValue(walk, item);
  } else {
    visit(walk, value as Json);
  }
  walk.depth -= 1;
}

function walkFields(walk: Walk, body: Json, skip?: ReadonlySet<string>): void {
  for (const key in body) {
    if (skip?.has(key) === true) continue;
    walkValue(walk, body[key]);
  }
}

const functionSkip: ReadonlySet<string> = new Set(["name"]);
const lockLabels: Readonly<Record<string, string>> = { Update: "FOR UPDATE", Share: "FOR SHARE" };

function visit(walk: Walk, node: Json): void {
  // A query (a statement, a subquery, a CTE body): WITH names are in scope inside it.
  if (Object.hasOwn(node, "body") && (Object.hasOwn(node, "locks") || Object.hasOwn(node, "with"))) {
    visitQuery(walk, node);
    return;
  }
  for (const key in node) {
    const value = node[key];
    if (!isObject(value)) {
      walkValue(walk, value);
      continue;
    }
    // A data change as a query body (`WITH ... DELETE`) is wrapped twice: `{ Delete: { Delete: {...} } }`.
    const twice = value[key];
    const body: Json = (key === "Insert" || key === "Update" || key === "Delete") && isObject(twice) && Object.keys(value).length === 1 ? twice : value;
    switch (key) {
      case "Table":
        if (Array.isArray(body["name"])) {
          const parts = nameParts(body["name"]);
          const access = walk.targets.has(body) ? "write" : "read";
          // `FROM DUAL` names no table.
          const dual = parts.length === 1 && parts[0]?.toLowerCase() === "dual";
          if (!dual && (access === "write" || parts.length > 1 || !walk.scope.has(parts[0] ?? ""))) relation(walk, parts, access);
          walkFields(walk, body, functionSkip);
          continue;
        }
        break;
      case "Function":
        if (Array.isArray(body["name"])) {
          call(walk, nameParts(body["name"]));
          walkFields(walk, body, functionSkip);
          continue;
        }
        break;
      case "Insert":
        visitInsert(walk, body);
        continue;
      case "Update":
        visitUpdate(walk, body);
        continue;
      case "Delete":
        visitDelete(walk, body);
        continue;
      case "Merge":
        flag(walk.facts, "write", "MERGE");
        break;
      default:
        break;
    }
    walkValue(walk, body);
  }
}

function call(walk: Walk, parts: readonly string[]): void {
  if (parts.length === 0) return;
  const written = parts.map((part) => part.toLowerCase()).join(".");
  const verdict = classifyFunction(parts, walk.safe, walk.schema);
  walk.facts.functions.add(written);
  walk.calls.functions.add(written);
  if (verdict.user) {
    walk.facts.userFunctions.add(written);
    walk.calls.userFunctions.add(written);
  }
  if (verdict.class !== "read") {
    flag(walk.facts, verdict.class, verdict.reason);
    flag(walk.calls, verdict.class, verdict.reason);
  }
}

function visitQuery(walk: Walk, query: Json): void {
  const saved = walk.scope;
  const withClause = query["with"];
  if (isObject(withClause) && Array.isArray(withClause["cte_tables"])) {
    const scope = new Set(walk.scope);
    for (const cte of withClause["cte_tables"]) {
      const alias = isObject(cte) ? cte["alias"] : undefined;
      const name = isObject(alias) ? partValue(alias["name"]) : undefined;
      if (name !== undefined) scope.add(name);
    }
    walk.scope = scope;
  }
  const locks = query["locks"];
  if (Array.isArray(locks)) {
    for (const lock of locks) {
      const type = isObject(lock) ? String(lock["lock_type"]) : "Update";
      flag(walk.facts, "write", `SELECT ${lockLabels[type] ?? "FOR UPDATE"} locks rows`);
    }
  }
  walkFields(walk, query);
  walk.scope = saved;
}

/** The table factors of a FROM item (a table with its joins). */
function factors(tableWithJoins: unknown): Json[] {
  const list: Json[] = [];
  const add = (relationNode: unknown): void => {
    if (isObject(relationNode) && isObject(relationNode["Table"])) list.push(relationNode["Table"]);
  };
  if (!isObject(tableWithJoins)) return list;
  add(tableWithJoins["relation"]);
  if (Array.isArray(tableWithJoins["joins"])) {
    for (const join of tableWithJoins["joins"]) if (isObject(join)) add(join["relation"]);
  }
  return list;
}

function aliasOf(table: Json): string | undefined {
  const alias = table["alias"];
  return isObject(alias) ? partValue(alias["name"]) : undefined;
}

/** The factor a qualifier names (its alias, or its table name when it has none). */
function factorNamed(list: readonly Json[], qualifier: string): Json | undefined {
  const lower = qualifier.toLowerCase();
  return (
    list.find((table) => aliasOf(table)?.toLowerCase() === lower) ??
    list.find((table) => aliasOf(table) === undefined && nameParts(table["name"]).at(-1)?.toLowerCase() === lower)
  );
}

function unbounded(walk: Walk, verb: string, label: string, where: unknown): void {
  const how = unboundedBy(where);
  if (how === undefined) return;
  walk.facts.unboundedWrite = true;
  walk.facts.reasons.add(`${verb} ${how} on ${quote(label)}`);
}

function visitInsert(walk: Walk, body: Json): void {
  const verb = body["replace_into"] === true ? "REPLACE" : "INSERT";
  const table = body["table"];
  const parts = isObject(table) ? nameParts(table["TableName"]) : [];
  relation(walk, parts, "write");
  flag(walk.facts, "write", `${verb} into ${quote(parts.join("."))}`);
  if (body["source"] != null && readsData(body["source"])) walk.facts.copiesData = true;
  walkFields(walk, body, new Set(["table"]));
}

function visitUpdate(walk: Walk, body: Json): void {
  const list = factors(body["table"]);
  const assignments = Array.isArray(body["assignments"]) ? body["assignments"] : [];
  const written = new Set<Json>();
  if (list.length === 1 && list[0] !== undefined) written.add(list[0]);
  else {
    for (const assignment of assignments) {
      const target = isObject(assignment) && isObject(assignment["target"]) ? nameParts(assignment["target"]["ColumnName"]) : [];
      const qualifier = target.length >= 2 ? target.at(-2) : undefined;
      const factor = qualifier === undefined ? undefined : factorNamed(list, qualifier);
      if (factor === undefined) {
        for (const table of list) written.add(table);
        break;
      }
      written.add(factor);
    }
  }
  for (const table of written) {
    walk.targets.add(table);
    flag(walk.facts, "write", `UPDATE of ${quote(tableLabel(table))}`);
    unbounded(walk, "UPDATE", tableLabel(table), body["selection"]);
  }
  if (written.size === 0) flag(walk.facts, "write", "UPDATE");
  const values = assignments.map((assignment) => (isObject(assignment) ? assignment["value"] : undefined));
  if (readsData(values) || list.length > 1 || body["from"] != null) walk.facts.copiesData = true;
  walkFields(walk, body);
}

function visitDelete(walk: Walk, body: Json): void {
  const from = body["from"];
  const fromItems = isObject(from) ? (Object.values(from)[0] as unknown) : undefined;
  const fromFactors = (Array.isArray(fromItems) ? fromItems : []).flatMap(factors);
  const usingFactors = (Array.isArray(body["using"]) ? body["using"] : []).flatMap(factors);
  const named = Array.isArray(body["tables"]) ? body["tables"].map(nameParts) : [];
  const written = new Set<Json>();
  const skip = new Set(["tables"]);
  if (named.length === 0 && usingFactors.length > 0) {
    // DELETE FROM a USING t AS a JOIN ...: the FROM list names tables (or aliases) of USING.
    skip.add("from");
    for (const table of fromFactors) {
      const parts = nameParts(table["name"]);
      const factor = factorNamed(usingFactors, parts.at(-1) ?? "");
      if (factor !== undefined) written.add(factor);
      else {
        relation(walk, parts, "write");
        flag(walk.facts, "write", `DELETE from ${quote(parts.join("."))}`);
      }
    }
  } else if (named.length === 0) {
    for (const table of fromFactors) written.add(table);
  } else {
    const all = [...fromFactors, ...usingFactors];
    for (const parts of named) {
      const factor = factorNamed(all, parts.at(-1) ?? "");
      if (factor === undefined) {
        relation(walk, parts, "write");
        flag(walk.facts, "write", `DELETE from ${quote(parts.join("."))}`);
        unbounded(walk, "DELETE", parts.join("."), body["selection"]);
      } else written.add(factor);
    }
  }
  for (const table of written) {
    walk.targets.add(table);
    flag(walk.facts, "write", `DELETE from ${quote(tableLabel(table))}`);
    unbounded(walk, "DELETE", tableLabel(table), body["selection"]);
  }
  walkFields(walk, body, skip);
}

/** Walks one parsed statement (or expression query) into the context's facts. */
export function walkAst(statement: AstNode, context: WalkContext): void {
  const root = Object.keys(statement);
  if (root.length !== 1 || !["Query", "Insert", "Update", "Delete"].includes(root[0] ?? "")) {
    throw new UnexpectedStatementError(`unexpected statement \`${root[0] ?? "?"}\``);
  }
  const walk: Walk = {
    facts: context.facts,
    calls: context.calls,
    safe: context.safe,
    schema: context.schema,
    targets: new Set(),
    scope: new Set(),
    depth: 0,
  };
  walkValue(walk, statement);
}
