/**
 * Whether a WHERE condition bounds an UPDATE or DELETE, evaluated over sqlparser-rs's expression
 * tree with MySQL's rules: a condition holds when its value is a non-zero number (`WHERE 1`,
 * `WHERE '1'`), strings compare and convert as MySQL converts them, `x = x` holds for every row
 * with a value. Only what is certain counts: anything unclear is taken as bounding, except a
 * condition that does not refer to the row at all.
 */

type Json = Record<string, unknown>;

type Value =
  | { readonly kind: "num"; readonly value: number }
  | { readonly kind: "str"; readonly value: string }
  | { readonly kind: "null" };

const NULL: Value = { kind: "null" };
const num = (value: number): Value => ({ kind: "num", value });
const bool = (value: boolean): Value => num(value ? 1 : 0);

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The single `{ Variant: body }` of an enum node. */
function variant(node: unknown): [string, unknown] | undefined {
  if (typeof node === "string") return [node, undefined];
  if (!isObject(node)) return undefined;
  const keys = Object.keys(node);
  if (keys.length !== 1) return undefined;
  const key = keys[0] as string;
  return [key, node[key]];
}

/** MySQL's string to number conversion: the longest numeric prefix, 0 when none. */
function toNumber(value: Value): number | undefined {
  if (value.kind === "num") return value.value;
  if (value.kind === "str") {
    const match = /^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?/.exec(value.value);
    return match === null ? 0 : Number(match[0]);
  }
  return undefined;
}

/** Truth as MySQL's WHERE sees it: true, false, or null (unknown). */
function truth(value: Value): boolean | null {
  if (value.kind === "null") return null;
  return (toNumber(value) ?? 0) !== 0;
}

function compare(a: Value, b: Value): number | undefined {
  if (a.kind === "null" || b.kind === "null") return undefined;
  if (a.kind === "str" && b.kind === "str") {
    // Default collations compare case-insensitively and ignore trailing spaces.
    const left = a.value.toLowerCase().replace(/ +$/, "");
    const right = b.value.toLowerCase().replace(/ +$/, "");
    return left < right ? -1 : left > right ? 1 : 0;
  }
  const left = toNumber(a);
  const right = toNumber(b);
  if (left === undefined || right === undefined) return undefined;
  return left - right;
}

function literal(node: unknown): Value | undefined {
  const inner = variant(node);
  if (inner === undefined) return undefined;
  const [kind, body] = inner;
  switch (kind) {
    case "Number":
      return Array.isArray(body) && typeof body[0] === "string" ? num(Number(body[0])) : undefined;
    case "SingleQuotedString":
    case "DoubleQuotedString":
    case "NationalStringLiteral":
      return typeof body === "string" ? { kind: "str", value: body } : undefined;
    case "Boolean":
      return typeof body === "boolean" ? bool(body) : undefined;
    case "Null":
      return NULL;
    default:
      return undefined;
  }
}

/** Deep equality of two expressions, ignoring source positions. */
function same(left: unknown, right: unknown): boolean {
  if (Array.isArray(left) || Array.isArray(right)) {
    if (!Array.isArray(left) || !Array.isArray(right) || left.length !== right.length) return false;
    return left.every((item, index) => same(item, right[index]));
  }
  if (isObject(left) || isObject(right)) {
    if (!isObject(left) || !isObject(right)) return false;
    const keys = Object.keys(left).filter((key) => key !== "span");
    const other = Object.keys(right).filter((key) => key !== "span");
    if (keys.length !== other.length) return false;
    return keys.every((key) => Object.hasOwn(right, key) && same(left[key], right[key]));
  }
  return left === right;
}

/** True if the expression calls a function or runs a subquery (its two sides might differ). */
function containsCall(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(containsCall);
  if (!isObject(node)) return false;
  if (Object.hasOwn(node, "Function") || Object.hasOwn(node, "Subquery") || Object.hasOwn(node, "Exists")) return true;
  return Object.values(node).some(containsCall);
}

const comparisons: Readonly<Record<string, (order: number) => boolean>> = {
  Eq: (order) => order === 0,
  NotEq: (order) => order !== 0,
  Lt: (order) => order < 0,
  Gt: (order) => order > 0,
  LtEq: (order) => order <= 0,
  GtEq: (order) => order >= 0,
};
const reflexive: ReadonlySet<string> = new Set(["Eq", "LtEq", "GtEq", "Spaceship"]);

function binary(op: string, left: unknown, right: unknown): Value | undefined {
  const compareOp = comparisons[op];
  if (compareOp !== undefined || op === "Spaceship") {
    if (reflexive.has(op) && same(left, right) && !containsCall(left)) return bool(true);
    const a = evaluate(left);
    const b = evaluate(right);
    if (a === undefined || b === undefined) return undefined;
    if (op === "Spaceship") {
      if (a.kind === "null" || b.kind === "null") return bool(a.kind === b.kind);
      const order = compare(a, b);
      return order === undefined ? undefined : bool(order === 0);
    }
    if (a.kind === "null" || b.kind === "null") return NULL;
    const order = compare(a, b);
    return order === undefined || compareOp === undefined ? undefined : bool(compareOp(order));
  }
  if (op === "And" || op === "Or" || op === "Xor") {
    const a = evaluate(left);
    const b = evaluate(right);
    const ta = a === undefined ? undefined : truth(a);
    const tb = b === undefined ? undefined : truth(b);
    if (op === "And") {
      if (ta === false || tb === false) return bool(false);
      if (ta === true && tb === true) return bool(true);
      if (ta === undefined || tb === undefined) return undefined;
      return NULL;
    }
    if (op === "Or") {
      if (ta === true || tb === true) return bool(true);
      if (ta === false && tb === false) return bool(false);
      if (ta === undefined || tb === undefined) return undefined;
      return NULL;
    }
    if (ta === undefined || tb === undefined) return undefined;
    if (ta === null || tb === null) return NULL;
    return bool(ta !== tb);
  }
  const a = evaluate(left);
  const b = evaluate(right);
  if (a === undefined || b === undefined) return undefined;
  if (a.kind === "null" || b.kind === "null") return NULL;
  const x = toNumber(a);
  const y = toNumber(b);
  if (x === undefined || y === undefined) return undefined;
  switch (op) {
    case "Plus":
      return num(x + y);
    case "Minus":
      return num(x - y);
    case "Multiply":
      return num(x * y);
    case "Divide":
      return y === 0 ? NULL : num(x / y);
    case "Modulo":
      return y === 0 ? NULL : num(x % y);
    default:
      return undefined;
  }
}

/** A LIKE pattern matched against a text, case-insensitively, with `%`, `_` and backslash escapes. */
function like(text: string, pattern: string): boolean {
  const t = text.toLowerCase();
  const p = pattern.toLowerCase();
  const memo = new Map<number, boolean>();
  const match = (ti: number, pi: number): boolean => {
    const key = ti * (p.length + 1) + pi;
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

/** The value of an expression when it is a constant this evaluator understands. */
function evaluate(node: unknown): Value | undefined {
  const inner = variant(node);
  if (inner === undefined) return undefined;
  const [kind, body] = inner;
  const fields = isObject(body) ? body : {};
  switch (kind) {
    case "Value":
      return literal(isObject(body) ? body["value"] : undefined);
    case "Nested":
      return evaluate(body);
    case "BinaryOp":
      return binary(String(fields["op"]), fields["left"], fields["right"]);
    case "UnaryOp": {
      const value = evaluate(fields["expr"]);
      if (value === undefined) return undefined;
      if (value.kind === "null") return NULL;
      const x = toNumber(value);
      if (x === undefined) return undefined;
      if (fields["op"] === "Not") return bool(x === 0);
      if (fields["op"] === "Minus") return num(-x);
      if (fields["op"] === "Plus") return num(x);
      return undefined;
    }
    case "IsTrue":
    case "IsNotTrue":
    case "IsFalse":
    case "IsNotFalse":
    case "IsNull":
    case "IsNotNull": {
      const value = evaluate(body);
      if (value === undefined) return undefined;
      const t = truth(value);
      switch (kind) {
        case "IsTrue":
          return bool(t === true);
        case "IsNotTrue":
          return bool(t !== true);
        case "IsFalse":
          return bool(t === false);
        case "IsNotFalse":
          return bool(t !== false);
        case "IsNull":
          return bool(t === null);
        default:
          return bool(t !== null);
      }
    }
    case "InList": {
      const list = Array.isArray(fields["list"]) ? fields["list"] : [];
      const results = list.map((item) => binary("Eq", fields["expr"], item));
      const anyTrue = results.some((result) => result !== undefined && truth(result) === true);
      const allFalse = results.every((result) => result !== undefined && truth(result) === false);
      const negated = fields["negated"] === true;
      if (anyTrue) return bool(!negated);
      if (allFalse) return bool(negated);
      return undefined;
    }
    case "Between": {
      const value = evaluate(fields["expr"]);
      const low = evaluate(fields["low"]);
      const high = evaluate(fields["high"]);
      if (value === undefined || low === undefined || high === undefined) return undefined;
      const a = compare(value, low);
      const b = compare(value, high);
      if (a === undefined || b === undefined) return undefined;
      const inside = a >= 0 && b <= 0;
      return bool(fields["negated"] === true ? !inside : inside);
    }
    case "Like": {
      const pattern = evaluate(fields["pattern"]);
      if (pattern?.kind !== "str") return undefined;
      const negated = fields["negated"] === true;
      // A pattern of only `%` matches every non-null value.
      if (!negated && pattern.value.length > 0 && [...pattern.value].every((char) => char === "%")) return bool(true);
      const text = evaluate(fields["expr"]);
      if (text === undefined || text.kind === "null") return text;
      const subject = text.kind === "str" ? text.value : String(text.value);
      return bool(like(subject, pattern.value) !== negated);
    }
    case "Exists": {
      // EXISTS (SELECT ... ) over no table and with no condition returns a row.
      const query = fields["subquery"];
      if (!isObject(query) || fields["negated"] === true) return undefined;
      const select = variant(query["body"]);
      if (select?.[0] !== "Select" || !isObject(select[1])) return undefined;
      const from = select[1]["from"];
      const plain = Array.isArray(from) && from.length === 0 && select[1]["selection"] == null && select[1]["having"] == null && query["limit_clause"] == null;
      return plain ? bool(true) : undefined;
    }
    default:
      return undefined;
  }
}

/** True if the condition refers to a column (a name that is not a `@variable`), subqueries included. */
function dependsOnRow(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(dependsOnRow);
  if (!isObject(node)) return false;
  const identifier = node["Identifier"];
  if (isObject(identifier) && typeof identifier["value"] === "string" && !identifier["value"].startsWith("@")) return true;
  const compound = node["CompoundIdentifier"];
  if (Array.isArray(compound)) {
    const first = compound[0];
    return !(isObject(first) && typeof first["value"] === "string" && first["value"].startsWith("@"));
  }
  // Names of functions, tables and aliases are not columns.
  return Object.entries(node).some(([key, value]) => key !== "name" && key !== "alias" && dependsOnRow(value));
}

/** How a WHERE condition bounds a write: undefined when it bounds it, otherwise why it does not. */
export function unboundedBy(where: unknown): string | undefined {
  if (where === undefined || where === null) return "without WHERE";
  const value = evaluate(where);
  if (value !== undefined && truth(value) === true) return "with an always-true WHERE";
  if (value !== undefined) return undefined;
  if (!dependsOnRow(where)) return "with a WHERE that does not depend on the row";
  return undefined;
}
