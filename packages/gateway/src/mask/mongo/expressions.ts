/**
 * Lineage through aggregation expressions: which parts of an expression's value may carry
 * sensitive values. Field paths and variables give the node of what they name; operators that
 * may return one of their arguments as it is (`$ifNull`, `$cond`, `$first`, `$mergeObjects`...)
 * keep the structure of their arguments; every other known operator computes a new value, which
 * is sensitive whole when any argument is (`$concat`, `$toUpper`, `$substr`, `$size`, `$eq`...).
 * An unknown operator, `$function` and `$accumulator` with a sensitive argument are uncertain,
 * and their value is masked whole, keys included.
 * https://www.mongodb.com/docs/manual/reference/operator/aggregation/
 */
import { isDocument } from "../../inspect/mongo/documents.js";
import { collectValues, LineageTooDeepError, maxLineageDepth, touch, uncertain, type Lineage } from "./lineage.js";
import { computed, documentNode, isTainted, subtree, union, whole, type TaintNode, uncertainTaint } from "./taint.js";

/** What an expression can see: the current document, `$$ROOT`, and variables. */
export interface Scope {
  readonly current: TaintNode | undefined;
  readonly root: TaintNode | undefined;
  readonly variables: ReadonlyMap<string, TaintNode | undefined>;
}

/** A scope over a document whose `$$ROOT` is itself. */
export function documentScope(node: TaintNode | undefined, variables: ReadonlyMap<string, TaintNode | undefined> = new Map()): Scope {
  return { current: node, root: node, variables };
}

/** System variables with values that never come from a document. */
const cleanVariables = new Set(["NOW", "CLUSTER_TIME", "REMOVE", "DESCEND", "PRUNE", "KEEP", "SEARCH_META", "USER_ROLES", "SEARCH_SCORE"]);

/** Operators whose value may be (part of) an argument as it is: the arguments' structure is kept. */
const structural = new Set([
  "$arrayElemAt",
  "$concatArrays",
  "$first",
  "$firstN",
  "$last",
  "$lastN",
  "$maxN",
  "$minN",
  "$reverseArray",
  "$slice",
  "$setUnion",
  "$setIntersection",
  "$setDifference",
  "$ifNull",
  "$cond",
  "$switch",
  "$mergeObjects",
  "$max",
  "$min",
  "$top",
  "$bottom",
  "$topN",
  "$bottomN",
  "$zip",
  "$unsetField",
  "$setField",
]);

/** Operators that compute a new value from their arguments. */
const computing = new Set([
  // arithmetic
  "$abs", "$add", "$ceil", "$divide", "$exp", "$floor", "$ln", "$log", "$log10", "$mod", "$multiply", "$pow", "$round", "$sqrt", "$subtract", "$trunc", "$sigmoid",
  // arrays
  "$in", "$indexOfArray", "$isArray", "$range", "$size", "$objectToArray", "$allElementsTrue", "$anyElementTrue", "$setEquals", "$setIsSubset",
  // bitwise, boolean, comparison
  "$bitAnd", "$bitNot", "$bitOr", "$bitXor", "$and", "$not", "$or", "$cmp", "$eq", "$gt", "$gte", "$lt", "$lte", "$ne",
  // data size
  "$binarySize", "$bsonSize",
  // dates
  "$dateAdd", "$dateDiff", "$dateFromParts", "$dateFromString", "$dateSubtract", "$dateToParts", "$dateToString", "$dateTrunc", "$dayOfMonth", "$dayOfWeek", "$dayOfYear", "$hour",
  "$isoDayOfWeek", "$isoWeek", "$isoWeekYear", "$millisecond", "$minute", "$month", "$second", "$toDate", "$week", "$year",
  // strings
  "$concat", "$indexOfBytes", "$indexOfCP", "$ltrim", "$regexFind", "$regexFindAll", "$regexMatch", "$replaceOne", "$replaceAll", "$rtrim", "$split", "$strLenBytes",
  "$strLenCP", "$strcasecmp", "$substr", "$substrBytes", "$substrCP", "$toLower", "$toString", "$trim", "$toUpper",
  // timestamps, trigonometry
  "$tsIncrement", "$tsSecond", "$sin", "$cos", "$tan", "$asin", "$acos", "$atan", "$atan2", "$asinh", "$acosh", "$atanh", "$sinh", "$cosh", "$tanh", "$degreesToRadians", "$radiansToDegrees",
  // types
  "$convert", "$isNumber", "$toBool", "$toDecimal", "$toDouble", "$toInt", "$toLong", "$toObjectId", "$type", "$toUUID", "$toHashedIndexKey",
  // accumulators used as expressions
  "$avg", "$sum", "$stdDevPop", "$stdDevSamp", "$median", "$percentile",
  // window-only helpers that reach expressions through $setWindowFields
  "$covariancePop", "$covarianceSamp", "$derivative", "$integral", "$expMovingAvg", "$linearFill",
]);

/** Operators whose value never comes from the document. */
const constant = new Set(["$literal", "$rand", "$meta", "$sampleRate", "$createObjectId"]);

/** The node of an expression's value in a scope. */
export function expressionNode(expression: unknown, scope: Scope, lineage: Lineage): TaintNode | undefined {
  if (lineage.depth > maxLineageDepth) throw new LineageTooDeepError();
  lineage.depth++;
  try {
    return evaluate(expression, scope, lineage);
  } finally {
    lineage.depth--;
  }
}

function evaluate(expression: unknown, scope: Scope, lineage: Lineage): TaintNode | undefined {
  if (typeof expression === "string") return fieldPath(expression, scope, lineage);
  if (Array.isArray(expression)) {
    let out: TaintNode | undefined;
    for (const item of expression) out = union(out, expressionNode(item, scope, lineage));
    return out;
  }
  if (!isDocument(expression)) return undefined;
  const keys = Object.keys(expression);
  const op = keys[0];
  if (op === undefined) return undefined;
  if (!op.startsWith("$")) {
    // An object literal: a document with these fields.
    return documentNode(keys.map((key) => [key, expressionNode(expression[key], scope, lineage)] as const));
  }
  return operator(op, expression[op], scope, lineage);
}

/** `$a.b`, `$$var.a.b`, `$$ROOT`, `$$CURRENT`; any other string is a literal. */
function fieldPath(text: string, scope: Scope, lineage: Lineage): TaintNode | undefined {
  if (!text.startsWith("$")) return undefined;
  let node: TaintNode | undefined;
  if (text.startsWith("$$")) {
    const [name = "", ...rest] = text.slice(2).split(".");
    let base: TaintNode | undefined;
    if (name === "ROOT") base = scope.root;
    else if (name === "CURRENT") base = scope.current;
    else if (scope.variables.has(name)) base = scope.variables.get(name);
    else if (cleanVariables.has(name)) return undefined;
    else {
      uncertain(lineage, `unknown variable \`$$${name}\``);
      base = whole(uncertainTaint());
    }
    node = subtree(base, rest);
  } else node = subtree(scope.current, text.slice(1).split("."));
  touch(lineage, node);
  return node;
}

function operator(op: string, args: unknown, scope: Scope, lineage: Lineage): TaintNode | undefined {
  if (constant.has(op)) return undefined;
  switch (op) {
    case "$let":
      return letNode(args, scope, lineage);
    case "$map":
      return mapNode(args, scope, lineage);
    case "$filter":
      return filterNode(args, scope, lineage);
    case "$reduce":
      return reduceNode(args, scope, lineage);
    case "$sortArray":
      return isDocument(args) ? union(expressionNode(args.input, scope, lineage), computed(expressionNode(args.sortBy, scope, lineage))) : computed(expressionNode(args, scope, lineage));
    case "$getField":
      return getFieldNode(args, scope, lineage);
    case "$arrayToObject": {
      // Values become keys: mask the result whole, keys included.
      const node = expressionNode(args, scope, lineage);
      return isTainted(node) ? whole({ ...uncertainTaint(true), uncertain: false, sources: new Set(sourcesOfNode(node)) }) : undefined;
    }
    case "$function":
    case "$accumulator": {
      const node = expressionNode(isDocument(args) ? (op === "$function" ? args.args : args) : args, scope, lineage);
      if (!isTainted(node)) return undefined;
      uncertain(lineage, `\`${op}\` computes from sensitive fields in JavaScript`);
      return whole(uncertainTaint(true));
    }
    default:
      break;
  }
  const node = argumentsNode(args, scope, lineage);
  if (structural.has(op)) return node;
  if (computing.has(op)) return computed(node);
  if (!isTainted(node)) return undefined;
  uncertain(lineage, `unknown operator \`${op}\` over sensitive fields`);
  return whole(uncertainTaint(true));
}

/** The union of an operator's arguments; literals next to sensitive arguments are known values. */
function argumentsNode(args: unknown, scope: Scope, lineage: Lineage): TaintNode | undefined {
  const list = Array.isArray(args) ? args : isDocument(args) ? Object.values(args) : [args];
  let out: TaintNode | undefined;
  for (const item of list) out = union(out, expressionNode(item, scope, lineage));
  if (isTainted(out)) for (const item of list) if (!isDocument(item) && !Array.isArray(item)) collectValues(lineage, item);
  return out;
}

function sourcesOfNode(node: TaintNode | undefined): string[] {
  const out: string[] = [];
  const walk = (current: TaintNode | undefined): void => {
    if (current === undefined) return;
    for (const taint of [current.taint, current.other]) if (taint !== undefined) out.push(...taint.sources);
    if (current.paths !== undefined) walk(current.paths);
    for (const value of current.children?.values() ?? []) walk(value);
  };
  walk(node);
  return out;
}

function withVariables(scope: Scope, variables: Iterable<readonly [string, TaintNode | undefined]>): Scope {
  const next = new Map(scope.variables);
  for (const [name, node] of variables) next.set(name, node);
  return { ...scope, variables: next };
}

function letNode(args: unknown, scope: Scope, lineage: Lineage): TaintNode | undefined {
  if (!isDocument(args)) return argumentsNode(args, scope, lineage);
  const vars = isDocument(args.vars) ? args.vars : {};
  const bound = Object.keys(vars).map((name) => [name, expressionNode(vars[name], scope, lineage)] as const);
  return expressionNode(args.in, withVariables(scope, bound), lineage);
}

function mapNode(args: unknown, scope: Scope, lineage: Lineage): TaintNode | undefined {
  if (!isDocument(args)) return argumentsNode(args, scope, lineage);
  const input = expressionNode(args.input, scope, lineage);
  const name = typeof args.as === "string" ? args.as : "this";
  return expressionNode(args.in, withVariables(scope, [[name, input]]), lineage);
}

function filterNode(args: unknown, scope: Scope, lineage: Lineage): TaintNode | undefined {
  if (!isDocument(args)) return argumentsNode(args, scope, lineage);
  const input = expressionNode(args.input, scope, lineage);
  const name = typeof args.as === "string" ? args.as : "this";
  // Which elements are kept tells about the condition's fields.
  const condition = expressionNode(args.cond, withVariables(scope, [[name, input]]), lineage);
  return union(union(input, computed(condition)), computed(expressionNode(args.limit, scope, lineage)));
}

function reduceNode(args: unknown, scope: Scope, lineage: Lineage): TaintNode | undefined {
  if (!isDocument(args)) return argumentsNode(args, scope, lineage);
  const input = expressionNode(args.input, scope, lineage);
  const initial = expressionNode(args.initialValue, scope, lineage);
  // $$value accumulates over the elements: it may hold anything of the input or the initial value.
  const value = union(initial, computed(input));
  const result = expressionNode(args.in, withVariables(scope, [["this", input], ["value", value]]), lineage);
  return union(union(initial, result), computed(expressionNode(args.in, withVariables(scope, [["this", input], ["value", union(value, computed(result))]]), lineage)));
}

function getFieldNode(args: unknown, scope: Scope, lineage: Lineage): TaintNode | undefined {
  const field = isDocument(args) ? args.field : args;
  const input = isDocument(args) && "input" in args ? expressionNode(args.input, scope, lineage) : scope.current;
  if (typeof field === "string" && !field.startsWith("$")) {
    // $getField reads a field named exactly `field` (dots included): both readings are kept.
    const node = union(subtree(input, [field]), subtree(input, field.split(".")));
    touch(lineage, node);
    return node;
  }
  const name = expressionNode(field, scope, lineage);
  touch(lineage, input);
  return union(computed(input), computed(name));
}
