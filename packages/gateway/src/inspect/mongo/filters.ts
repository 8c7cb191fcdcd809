/**
 * Static evaluation of MongoDB query filters, to tell an unbounded update or delete: one whose
 * filter matches every document (`{}`, `{$expr: true}`, `{_id: {$exists: true}}`, `{$or: [{}, ...]}`)
 * or does not depend on the document at all (`{$expr: {$eq: [1, 1]}}`: then it matches every
 * document or none), mirroring what the PostgreSQL analyser calls an always-true WHERE.
 *
 * It answers true only when it can tell; a filter it cannot see through is bounded. That is the
 * safe side for this question only because every write is already `write`: an unrecognised
 * sweeping filter is still a write, just not an unbounded one.
 * https://www.mongodb.com/docs/manual/reference/operator/query/
 */
import { isDocument, isTruthyFlag, numberOf } from "./documents.js";

/** Top-level operators that do not filter at all. */
const neutral = new Set(["$comment"]);

/** True when the filter matches every document (or, for a document-independent `$expr`, every one or none). */
export function alwaysTrue(filter: unknown): boolean {
  if (filter === undefined || filter === null) return true;
  if (!isDocument(filter)) return false;
  for (const key in filter) {
    const value = filter[key];
    if (neutral.has(key)) continue;
    switch (key) {
      case "$alwaysTrue":
        continue;
      case "$and":
        if (!Array.isArray(value) || value.length === 0 || !value.every(alwaysTrue)) return false;
        continue;
      case "$or":
        if (!Array.isArray(value) || !value.some(alwaysTrue)) return false;
        continue;
      case "$nor":
        if (!Array.isArray(value) || value.length === 0 || !value.every(alwaysFalse)) return false;
        continue;
      case "$expr":
        if (!expressionIgnoresDocument(value) && !expressionAlwaysTrue(value)) return false;
        continue;
      case "$jsonSchema":
        if (!trivialSchema(value)) return false;
        continue;
      case "$where":
        if (!javascriptIgnoresDocument(value)) return false;
        continue;
      default:
        if (key.startsWith("$")) return false;
        if (!fieldAlwaysTrue(key, value)) return false;
    }
  }
  return true;
}

/** True when the filter matches no document. */
export function alwaysFalse(filter: unknown): boolean {
  if (!isDocument(filter)) return false;
  for (const key in filter) {
    const value = filter[key];
    if (key === "$alwaysFalse") return true;
    if (key === "$and" && Array.isArray(value) && value.some(alwaysFalse)) return true;
    if (key === "$or" && Array.isArray(value) && value.length > 0 && value.every(alwaysFalse)) return true;
    if (key === "$nor" && Array.isArray(value) && value.some(alwaysTrue)) return true;
    if (key === "$expr" && constantValue(value) === false) return true;
    if (!key.startsWith("$") && fieldAlwaysFalse(key, value)) return true;
  }
  return false;
}

function isOperatorObject(value: unknown): value is Record<string, unknown> {
  if (!isDocument(value)) return false;
  let any = false;
  for (const key in value) {
    if (!key.startsWith("$")) return false;
    any = true;
  }
  return any;
}

/** Regular expressions that match every string: `//`, `/.*​/`, `/^/`... (like `LIKE '%'`). */
const matchAllPatterns = new Set(["", ".*", "^", "^.*", ".*$", "^.*$", "(?:)", "[\\s\\S]*", "^[\\s\\S]*$"]);

function patternOf(value: unknown): string | undefined {
  if (value instanceof RegExp) return value.source === "(?:)" ? "" : value.source;
  if (typeof value === "string") return value;
  if (typeof value === "object" && value !== null && (value as { _bsontype?: unknown })._bsontype === "BSONRegExp") return String((value as { pattern: unknown }).pattern);
  return undefined;
}

function isBsonType(value: unknown, type: string): boolean {
  return typeof value === "object" && value !== null && (value as { _bsontype?: unknown })._bsontype === type;
}

function fieldAlwaysTrue(field: string, condition: unknown): boolean {
  const pattern = condition instanceof RegExp || isBsonType(condition, "BSONRegExp") ? patternOf(condition) : undefined;
  if (pattern !== undefined) return matchAllPatterns.has(pattern);
  if (!isOperatorObject(condition)) return false;
  for (const op in condition) {
    const argument = condition[op];
    switch (op) {
      case "$exists":
        // Every document has an `_id`.
        if (!(field === "_id" && isTruthyFlag(argument))) return false;
        continue;
      case "$nin":
        if (!(Array.isArray(argument) && argument.length === 0)) return false;
        continue;
      case "$not":
        if (!(isOperatorObject(argument) && fieldAlwaysFalse(field, argument))) return false;
        continue;
      case "$gte":
      case "$gt":
        if (!(field === "_id" && isBsonType(argument, "MinKey") && op === "$gte")) return false;
        continue;
      case "$lte":
      case "$lt":
        if (!(field === "_id" && isBsonType(argument, "MaxKey") && op === "$lte")) return false;
        continue;
      case "$regex": {
        const text = patternOf(argument);
        if (text === undefined || !matchAllPatterns.has(text)) return false;
        continue;
      }
      case "$options":
        continue;
      default:
        return false;
    }
  }
  return true;
}

function fieldAlwaysFalse(field: string, condition: unknown): boolean {
  if (!isOperatorObject(condition)) return false;
  for (const op in condition) {
    const argument = condition[op];
    if (op === "$in" && Array.isArray(argument) && argument.length === 0) return true;
    if (op === "$exists" && field === "_id" && !isTruthyFlag(argument)) return true;
    if (op === "$not" && isOperatorObject(argument) && fieldAlwaysTrue(field, argument)) return true;
  }
  return false;
}

/** A `$jsonSchema` that every document satisfies: no keyword but `bsonType`/`type` object and annotations. */
function trivialSchema(schema: unknown): boolean {
  if (!isDocument(schema)) return false;
  for (const key in schema) {
    const value = schema[key];
    if (key === "title" || key === "description") continue;
    if ((key === "bsonType" || key === "type") && value === "object") continue;
    return false;
  }
  return true;
}

/** `$where` code that never mentions the document (`this`, `obj`): true for all or none. */
function javascriptIgnoresDocument(code: unknown): boolean {
  let text: string | undefined;
  if (typeof code === "string") text = code;
  else if (isBsonType(code, "Code")) text = String((code as { code: unknown }).code);
  if (text === undefined) return false;
  return !/\bthis\b|\bobj\b|\barguments\b/.test(text);
}

const systemVariables = new Set(["$$ROOT", "$$CURRENT"]);

/**
 * True when an aggregation expression reads no field of the document: no `$field` path and no
 * `$$ROOT`/`$$CURRENT` (user and other system variables are the same for every document).
 */
export function expressionIgnoresDocument(expression: unknown, depth = 0): boolean {
  if (depth > 200) return false;
  if (typeof expression === "string") {
    if (!expression.startsWith("$")) return true;
    if (!expression.startsWith("$$")) return false;
    const variable = expression.split(".")[0] ?? "";
    return !systemVariables.has(variable);
  }
  if (Array.isArray(expression)) return expression.every((item) => expressionIgnoresDocument(item, depth + 1));
  if (!isDocument(expression)) return true;
  for (const key in expression) {
    if (key === "$literal") continue;
    if (!expressionIgnoresDocument(expression[key], depth + 1)) return false;
  }
  return true;
}

/** `$expr` forms that are true for every document: `$eq` of a field path with itself, `$or` with one of them. */
function expressionAlwaysTrue(expression: unknown): boolean {
  if (constantValue(expression) === true) return true;
  if (!isDocument(expression)) return false;
  const keys = Object.keys(expression);
  if (keys.length !== 1) return false;
  const op = keys[0] as string;
  const args = expression[op];
  if (!Array.isArray(args)) return false;
  if ((op === "$eq" || op === "$gte" || op === "$lte") && args.length === 2) {
    return typeof args[0] === "string" && args[0].startsWith("$") && args[0] === args[1];
  }
  if (op === "$or") return args.some(expressionAlwaysTrue);
  if (op === "$and") return args.length > 0 && args.every(expressionAlwaysTrue);
  return false;
}

/** The truth of a constant expression (a literal or `$literal`), or undefined when it is not one. */
function constantValue(expression: unknown): boolean | undefined {
  if (expression === null || expression === undefined) return false;
  if (typeof expression === "boolean") return expression;
  const number = numberOf(expression);
  if (number !== undefined) return number !== 0;
  if (typeof expression === "string") return expression.startsWith("$") ? undefined : true;
  if (isDocument(expression) && Object.keys(expression).length === 1 && "$literal" in expression) {
    const inner = expression.$literal;
    if (inner === null || inner === undefined || inner === false) return false;
    const value = numberOf(inner);
    return value === undefined ? true : value !== 0;
  }
  return undefined;
}
