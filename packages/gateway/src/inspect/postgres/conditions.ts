/**
 * Static evaluation of WHERE conditions over the raw parse tree, to tell an unbounded UPDATE or
 * DELETE: one whose condition is always true (`true`, `1 = 1`, `'a' = 'a'`, `x = x`, `... OR true`)
 * or does not depend on the row at all (then it is true for every row or for none).
 */

/** A constant's value, or undefined when it cannot be known without running the query. */
type Value =
  | { readonly kind: "bool"; readonly value: boolean }
  | { readonly kind: "num"; readonly value: number }
  | { readonly kind: "str"; readonly value: string }
  | { readonly kind: "null" };

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The node type and body of a wrapped node `{ Type: body }`. */
function unwrap(node: unknown): [string, Json] | undefined {
  if (!isObject(node)) return undefined;
  const keys = Object.keys(node);
  const tag = keys[0];
  if (keys.length !== 1 || tag === undefined) return undefined;
  const body = node[tag];
  return isObject(body) ? [tag, body] : undefined;
}

function strings(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((item) => {
    const inner = unwrap(item);
    return inner?.[0] === "String" && typeof inner[1]["sval"] === "string" ? [inner[1]["sval"]] : [];
  });
}

const TRUE: Value = { kind: "bool", value: true };
const FALSE: Value = { kind: "bool", value: false };
const NULL: Value = { kind: "null" };

function bool(value: boolean): Value {
  return value ? TRUE : FALSE;
}

/** boolin's spellings: t, true, y, yes, on, 1 and f, false, n, no, off, 0, or unique prefixes. */
function parseBool(text: string): boolean | undefined {
  const word = text.trim().toLowerCase();
  if (word.length === 0) return undefined;
  const matches = (full: string, min: number): boolean => word.length >= min && full.startsWith(word);
  if (matches("true", 1) || matches("yes", 1) || matches("on", 2) || word === "1") return true;
  if (matches("false", 1) || matches("no", 1) || matches("off", 2) || word === "0") return false;
  return undefined;
}

function constValue(body: Json): Value | undefined {
  if (body["isnull"] === true) return NULL;
  const ival = body["ival"];
  if (isObject(ival)) return { kind: "num", value: typeof ival["ival"] === "number" ? ival["ival"] : 0 };
  const fval = body["fval"];
  if (isObject(fval)) {
    const parsed = Number(fval["fval"]);
    return Number.isFinite(parsed) ? { kind: "num", value: parsed } : undefined;
  }
  const boolval = body["boolval"];
  if (isObject(boolval)) return bool(boolval["boolval"] === true);
  const sval = body["sval"];
  if (isObject(sval)) return { kind: "str", value: typeof sval["sval"] === "string" ? sval["sval"] : "" };
  return undefined;
}

const numericTypes: ReadonlySet<string> = new Set([
  "int2", "int4", "int8", "integer", "smallint", "bigint", "numeric", "decimal", "float4", "float8", "real",
]);
const textTypes: ReadonlySet<string> = new Set(["text", "varchar", "bpchar", "name", "char"]);

function cast(value: Value, typeName: string): Value | undefined {
  if (value.kind === "null") return NULL;
  if (typeName === "bool" || typeName === "boolean") {
    if (value.kind === "bool") return value;
    if (value.kind === "num") return Number.isInteger(value.value) ? bool(value.value !== 0) : undefined;
    const parsed = parseBool(value.value);
    return parsed === undefined ? undefined : bool(parsed);
  }
  if (numericTypes.has(typeName)) {
    if (value.kind === "num") return value;
    if (value.kind === "str") {
      const parsed = Number(value.value.trim());
      return value.value.trim().length > 0 && Number.isFinite(parsed) ? { kind: "num", value: parsed } : undefined;
    }
    return undefined;
  }
  if (textTypes.has(typeName)) {
    if (value.kind === "str") return value;
    if (value.kind === "num") return { kind: "str", value: String(value.value) };
    return undefined;
  }
  return undefined;
}

/** Compares two known values the way the server would after coercing an unknown literal. */
function compare(left: Value, right: Value): number | undefined {
  if (left.kind === "null" || right.kind === "null") return undefined;
  if (left.kind === "num" && right.kind === "num") return Math.sign(left.value - right.value);
  if (left.kind === "num" && right.kind === "str") return compareWith(left, cast(right, "numeric"));
  if (left.kind === "str" && right.kind === "num") return compareWith(cast(left, "numeric"), right);
  if (left.kind === "str" && right.kind === "str") return left.value === right.value ? 0 : left.value < right.value ? -1 : 1;
  if (left.kind === "bool" || right.kind === "bool") {
    const a = left.kind === "bool" ? left : cast(left, "bool");
    const b = right.kind === "bool" ? right : cast(right, "bool");
    if (a?.kind !== "bool" || b?.kind !== "bool") return undefined;
    return Number(a.value) - Number(b.value);
  }
  return undefined;
}

function compareWith(left: Value | undefined, right: Value | undefined): number | undefined {
  return left === undefined || right === undefined ? undefined : compare(left, right);
}

const comparisons: Readonly<Record<string, (order: number) => boolean>> = {
  "=": (order) => order === 0,
  "<>": (order) => order !== 0,
  "!=": (order) => order !== 0,
  "<": (order) => order < 0,
  ">": (order) => order > 0,
  "<=": (order) => order <= 0,
  ">=": (order) => order >= 0,
};

/** Operators that hold between an expression and itself (for non-null values). */
const reflexive: ReadonlySet<string> = new Set(["=", "<=", ">="]);

/** Deep equality of two expressions, ignoring token locations. */
function sameExpression(left: unknown, right: unknown): boolean {
  if (Array.isArray(left) || Array.isArray(right)) {
    if (!Array.isArray(left) || !Array.isArray(right) || left.length !== right.length) return false;
    return left.every((item, index) => sameExpression(item, right[index]));
  }
  if (isObject(left) || isObject(right)) {
    if (!isObject(left) || !isObject(right)) return false;
    const keys = Object.keys(left).filter((key) => !key.endsWith("location"));
    const otherKeys = Object.keys(right).filter((key) => !key.endsWith("location"));
    if (keys.length !== otherKeys.length) return false;
    return keys.every((key) => Object.hasOwn(right, key) && sameExpression(left[key], right[key]));
  }
  return left === right;
}

/** A LIKE pattern matched against a text, with `%`, `_` and backslash escapes. */
function like(text: string, pattern: string, insensitive: boolean): boolean {
  const t = insensitive ? text.toLowerCase() : text;
  const p = insensitive ? pattern.toLowerCase() : pattern;
  const memo = new Map<string, boolean>();
  const match = (ti: number, pi: number): boolean => {
    const key = `${ti}:${pi}`;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let result: boolean;
    if (pi === p.length) result = ti === t.length;
    else if (p[pi] === "%") result = match(ti, pi + 1) || (ti < t.length && match(ti + 1, pi));
    else if (ti === t.length) result = false;
    else if (p[pi] === "_") result = match(ti + 1, pi + 1);
    else if (p[pi] === "\\" && pi + 1 < p.length) result = t[ti] === p[pi + 1] && match(ti + 1, pi + 2);
    else result = t[ti] === p[pi] && match(ti + 1, pi + 1);
    memo.set(key, result);
    return result;
  };
  return match(0, 0);
}

function evalOperator(op: string, left: unknown, right: unknown): Value | undefined {
  const compareOp = comparisons[op];
  if (compareOp !== undefined) {
    if (reflexive.has(op) && sameExpression(left, right) && !containsCall(left)) return TRUE;
    const a = evaluate(left);
    const b = evaluate(right);
    if (a === undefined || b === undefined) return undefined;
    if (a.kind === "null" || b.kind === "null") return NULL;
    const order = compare(a, b);
    return order === undefined ? undefined : bool(compareOp(order));
  }
  const a = evaluate(left);
  const b = evaluate(right);
  if (a?.kind === "null" || b?.kind === "null") return NULL;
  if (a?.kind === "num" && b?.kind === "num") {
    if (op === "+") return { kind: "num", value: a.value + b.value };
    if (op === "-") return { kind: "num", value: a.value - b.value };
    if (op === "*") return { kind: "num", value: a.value * b.value };
  }
  if (op === "-" && left === undefined && b?.kind === "num") return { kind: "num", value: -b.value };
  if (op === "||" && a?.kind === "str" && b?.kind === "str") return { kind: "str", value: a.value + b.value };
  return undefined;
}

/** True if the expression calls a function (its value might differ between the two sides). */
function containsCall(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(containsCall);
  if (!isObject(node)) return false;
  if (Object.hasOwn(node, "FuncCall") || Object.hasOwn(node, "SubLink")) return true;
  return Object.values(node).some(containsCall);
}

function evalExpr(body: Json): Value | undefined {
  const kind = body["kind"];
  const op = strings(body["name"]).at(-1) ?? "";
  const left = body["lexpr"];
  const right = body["rexpr"];
  switch (kind) {
    case "AEXPR_OP":
      return evalOperator(op, left, right);
    case "AEXPR_NOT_DISTINCT":
    case "AEXPR_DISTINCT": {
      const distinctWanted = kind === "AEXPR_DISTINCT";
      if (sameExpression(left, right) && !containsCall(left)) return bool(!distinctWanted);
      const a = evaluate(left);
      const b = evaluate(right);
      if (a === undefined || b === undefined) return undefined;
      const same = a.kind === "null" || b.kind === "null" ? a.kind === b.kind : compare(a, b) === 0;
      return bool(same !== distinctWanted);
    }
    case "AEXPR_IN": {
      const items = unwrap(right)?.[0] === "List" ? (unwrap(right)?.[1]["items"] as unknown[] | undefined) ?? [] : [];
      const results = items.map((item) => evalOperator(op === "<>" ? "=" : op, left, item));
      const anyTrue = results.some((result) => result?.kind === "bool" && result.value);
      const allFalse = results.every((result) => result?.kind === "bool" && !result.value);
      if (op === "<>") return anyTrue ? FALSE : allFalse ? TRUE : undefined;
      return anyTrue ? TRUE : allFalse ? FALSE : undefined;
    }
    case "AEXPR_LIKE":
    case "AEXPR_ILIKE": {
      const pattern = evaluate(right);
      if (pattern?.kind !== "str") return undefined;
      const negated = op.startsWith("!");
      const insensitive = kind === "AEXPR_ILIKE";
      // A pattern of only `%` matches every non-null text: treat it as always true.
      if (!negated && pattern.value.length > 0 && [...pattern.value].every((char) => char === "%")) return TRUE;
      const text = evaluate(left);
      if (text?.kind !== "str") return undefined;
      return bool(like(text.value, pattern.value, insensitive) !== negated);
    }
    case "AEXPR_BETWEEN":
    case "AEXPR_NOT_BETWEEN": {
      const bounds = unwrap(right)?.[0] === "List" ? (unwrap(right)?.[1]["items"] as unknown[] | undefined) ?? [] : [];
      const low = evaluate(bounds[0]);
      const high = evaluate(bounds[1]);
      const value = evaluate(left);
      if (value === undefined || low === undefined || high === undefined) return undefined;
      const aboveLow = compare(value, low);
      const belowHigh = compare(value, high);
      if (aboveLow === undefined || belowHigh === undefined) return undefined;
      const inside = aboveLow >= 0 && belowHigh <= 0;
      return bool(kind === "AEXPR_BETWEEN" ? inside : !inside);
    }
    default:
      return undefined;
  }
}

function evalBool(body: Json): Value | undefined {
  const args = Array.isArray(body["args"]) ? (body["args"] as unknown[]) : [];
  const values = args.map(evaluate);
  const truth = values.map((value) => (value === undefined ? undefined : value.kind === "null" ? null : value.kind === "bool" ? value.value : undefined));
  switch (body["boolop"]) {
    case "AND_EXPR":
      if (truth.some((value) => value === false)) return FALSE;
      return truth.every((value) => value === true) ? TRUE : undefined;
    case "OR_EXPR":
      if (truth.some((value) => value === true)) return TRUE;
      return truth.every((value) => value === false) ? FALSE : undefined;
    case "NOT_EXPR": {
      const only = truth[0];
      return only === true ? FALSE : only === false ? TRUE : only === null ? NULL : undefined;
    }
    default:
      return undefined;
  }
}

/** The value of an expression when it is a constant this evaluator understands. */
function evaluate(node: unknown): Value | undefined {
  const inner = unwrap(node);
  if (inner === undefined) return undefined;
  const [tag, body] = inner;
  switch (tag) {
    case "A_Const":
      return constValue(body);
    case "TypeCast": {
      const value = evaluate(body["arg"]);
      const typeName = isObject(body["typeName"]) ? strings(body["typeName"]["names"]).at(-1) : undefined;
      return value === undefined || typeName === undefined ? undefined : cast(value, typeName);
    }
    case "A_Expr":
      return evalExpr(body);
    case "BoolExpr":
      return evalBool(body);
    case "NullTest": {
      const value = evaluate(body["arg"]);
      if (value === undefined) return undefined;
      const isNull = value.kind === "null";
      return bool(body["nulltesttype"] === "IS_NULL" ? isNull : !isNull);
    }
    case "BooleanTest": {
      const value = evaluate(body["arg"]);
      const truth = value?.kind === "bool" ? value.value : value?.kind === "null" ? null : undefined;
      if (truth === undefined) return undefined;
      switch (body["booltesttype"]) {
        case "IS_TRUE":
          return bool(truth === true);
        case "IS_NOT_TRUE":
          return bool(truth !== true);
        case "IS_FALSE":
          return bool(truth === false);
        case "IS_NOT_FALSE":
          return bool(truth !== false);
        case "IS_UNKNOWN":
          return bool(truth === null);
        case "IS_NOT_UNKNOWN":
          return bool(truth !== null);
        default:
          return undefined;
      }
    }
    case "CoalesceExpr": {
      const args = Array.isArray(body["args"]) ? (body["args"] as unknown[]) : [];
      for (const arg of args) {
        const value = evaluate(arg);
        if (value === undefined) return undefined;
        if (value.kind !== "null") return value;
      }
      return NULL;
    }
    case "SubLink": {
      // EXISTS (SELECT ... ) over no table and with no condition returns a row: true.
      if (body["subLinkType"] !== "EXISTS_SUBLINK") return undefined;
      const select = unwrap(body["subselect"]);
      if (select?.[0] !== "SelectStmt") return undefined;
      const query = select[1];
      const plain = ["fromClause", "whereClause", "havingClause", "limitCount", "limitOffset", "groupClause", "larg"].every(
        (key) => query[key] === undefined,
      );
      return plain ? TRUE : undefined;
    }
    default:
      return undefined;
  }
}

/** True if the condition refers to the row: a column, a whole-row reference or `CURRENT OF`. */
function dependsOnRow(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(dependsOnRow);
  if (!isObject(node)) return false;
  if (Object.hasOwn(node, "ColumnRef") || Object.hasOwn(node, "CurrentOfExpr")) return true;
  return Object.values(node).some(dependsOnRow);
}

/** How a WHERE condition bounds a write: undefined when it bounds it, otherwise why it does not. */
export function unboundedBy(where: unknown): string | undefined {
  if (where === undefined) return "without WHERE";
  const value = evaluate(where);
  if (value?.kind === "bool" && value.value) return "with an always-true WHERE";
  if (value?.kind === "bool" || value?.kind === "null") return undefined;
  if (!dependsOnRow(where)) return "with a WHERE that does not depend on the row";
  return undefined;
}
