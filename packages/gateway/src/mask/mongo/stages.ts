/**
 * Lineage through aggregation pipelines and find projections: from the node of the input
 * documents (a collection's declared fields, a view's pipeline), the node of the documents each
 * stage outputs. Renames and computed fields carry their sources' sensitivity; grouping keys and
 * accumulators too; `$lookup` brings the foreign collection's sensitive fields under `as`; a stage
 * lineage cannot follow makes every output value sensitive (fail closed).
 * https://www.mongodb.com/docs/manual/reference/operator/aggregation-pipeline/
 */
import { isDocument, isTruthyFlag, numberOf } from "../../inspect/mongo/documents.js";
import { documentScope, expressionNode, type Scope } from "./expressions.js";
import { walkFilter, walkSort } from "./filters.js";
import { copies, inClause, LineageTooDeepError, maxLineageDepth, touch, uncertain, type Lineage } from "./lineage.js";
import { computed, coveredBy, documentNode, isTainted, removePath, setPath, splitPath, subtree, uncertainTaint, union, whole, type TaintNode } from "./taint.js";

type Variables = Scope["variables"];

/** How many views deep a view may be defined over views before lineage gives up. */
const maxViewDepth = 16;

/**
 * The node of a namespace's documents: its declared fields, or for a view its pipeline over the
 * view's source. `*` stands for every collection (of a database, or of every database).
 * Collections that hold other collections' documents (`local`'s oplog, `system.profile`) are
 * uncertain whole when anything is sensitive.
 */
export function namespaceNode(lineage: Lineage, database: string, collection: string, views = 0): TaintNode | undefined {
  const catalog = lineage.catalog;
  if (!catalog.anySensitive) return undefined;
  if (database === "*" || collection === "*") {
    let out: TaintNode | undefined;
    for (const [namespace, node] of catalog.collections) if (database === "*" || namespace.startsWith(`${database}.`)) out = union(out, node);
    for (const [namespace, view] of catalog.views) if (database === "*" || namespace.startsWith(`${database}.`)) out = union(out, namespaceNode(lineage, view.database, view.name, views + 1));
    return out;
  }
  if (database === "local" || collection === "system.profile") return unknownNode(lineage, `\`${database}.${collection}\` holds documents or commands of other collections`);
  if (collection.startsWith("system.buckets.")) {
    // A time-series collection's buckets hold its fields under control.min, control.max and data.
    const base = collection.slice("system.buckets.".length);
    return isTainted(namespaceNode(lineage, database, base, views + 1)) ? unknownNode(lineage, `\`${database}.${collection}\` holds the buckets of \`${database}.${base}\``) : undefined;
  }
  const declared = catalog.collections.get(`${database}.${collection}`);
  const view = catalog.views.get(`${database}.${collection}`);
  if (view !== undefined) {
    if (views >= maxViewDepth) return unknownNode(lineage, `views nested more than ${maxViewDepth} deep`);
    const source = namespaceNode(lineage, database, view.viewOn, views + 1);
    // A view's own filters are not the reader's inference: its definition is fixed.
    const inner = { ...lineage, inference: new Map(), clauses: [], touched: new Set<string>() };
    const node = pipelineNode(view.pipeline, source, { database, collection: view.viewOn, views: views + 1 }, inner);
    for (const reason of inner.uncertain) lineage.uncertain.add(reason);
    return union(node, declared);
  }
  return declared;
}

/** What lineage cannot follow: every value sensitive, when anything is sensitive at all. */
export function unknownNode(lineage: Lineage, reason?: string): TaintNode | undefined {
  if (!lineage.catalog.anySensitive) return undefined;
  if (reason !== undefined) uncertain(lineage, reason);
  return whole(uncertainTaint(false));
}

/** Where a pipeline runs. */
export interface PipelineContext {
  readonly database: string;
  readonly collection: string | undefined;
  /** How many views deep this pipeline is. */
  readonly views?: number;
  readonly variables?: Variables;
}

/** The node of the documents a pipeline outputs, from the node of its input documents. */
export function pipelineNode(pipeline: unknown, input: TaintNode | undefined, context: PipelineContext, lineage: Lineage): TaintNode | undefined {
  if (!Array.isArray(pipeline)) return unknownNode(lineage, "a pipeline that is not an array");
  if (lineage.depth > maxLineageDepth) throw new LineageTooDeepError();
  lineage.depth++;
  try {
    let node = input;
    for (const stage of pipeline) node = stageNode(stage, node, context, lineage);
    return node;
  } finally {
    lineage.depth--;
  }
}

function scopeOf(node: TaintNode | undefined, context: PipelineContext): Scope {
  return documentScope(node, context.variables ?? new Map());
}

/** A namespace named by a stage: a bare name in the pipeline's database, or `{db, coll}`. */
function namespaceOf(value: unknown, context: PipelineContext): { database: string; collection: string } | undefined {
  if (typeof value === "string") return { database: context.database, collection: value };
  if (isDocument(value) && typeof value.coll === "string") return { database: typeof value.db === "string" ? value.db : context.database, collection: value.coll };
  return undefined;
}

function isExcluded(value: unknown): boolean {
  return value === false || numberOf(value) === 0;
}

function isIncluded(value: unknown): boolean {
  return value === true || (numberOf(value) !== undefined && numberOf(value) !== 0);
}

type Entry = { readonly path: string[]; readonly kind: "include" | "exclude" | "expression" | "neutral"; readonly value: unknown };

function projectionEntries(spec: Record<string, unknown>, prefix: string[], find: boolean, out: Entry[]): Entry[] {
  for (const key in spec) {
    const value = spec[key];
    const path = [...prefix, ...splitPath(key)];
    if (isExcluded(value)) out.push({ path, kind: "exclude", value });
    else if (isIncluded(value)) out.push({ path, kind: "include", value });
    else if (isDocument(value)) {
      const keys = Object.keys(value);
      const first = keys[0];
      if (first !== undefined && first.startsWith("$")) {
        if (find && first === "$elemMatch") out.push({ path, kind: "include", value });
        else if (find && first === "$slice") out.push({ path, kind: "neutral", value });
        else if (first === "$meta") out.push({ path, kind: "neutral", value: undefined });
        else out.push({ path, kind: "expression", value });
      } else if (first === undefined) out.push({ path, kind: "expression", value });
      else projectionEntries(value, path, find, out);
    } else out.push({ path, kind: "expression", value });
  }
  return out;
}

/**
 * A projection (`$project`, or find's `projection`): inclusion keeps only the named fields (and
 * `_id`), computed fields carry their expressions' nodes; exclusion removes fields. A find
 * projection with only `$slice` or `$meta` keeps every field.
 */
export function projectionNode(spec: unknown, node: TaintNode | undefined, scope: Scope, lineage: Lineage, find: boolean): TaintNode | undefined {
  if (!isDocument(spec) || Object.keys(spec).length === 0) return node;
  const entries = projectionEntries(spec, [], find, []);
  const inclusion = entries.some((entry) => entry.kind === "include" || entry.kind === "expression");
  if (!inclusion) {
    let out = node;
    for (const entry of entries) {
      if (entry.kind === "exclude") out = removePath(out, entry.path);
      else if (entry.kind === "neutral" && entry.value === undefined) out = setPath(out, entry.path, undefined);
    }
    return out;
  }
  let out: TaintNode | undefined;
  if (!entries.some((entry) => entry.path.length === 1 && entry.path[0] === "_id")) out = setPath(out, ["_id"], subtree(node, ["_id"]));
  for (const entry of entries) {
    if (entry.kind === "exclude") continue;
    if (entry.kind === "include" || (entry.kind === "neutral" && entry.value !== undefined)) out = setPath(out, entry.path, union(subtree(out, entry.path), subtree(node, entry.path)));
    else if (entry.kind === "expression") out = setPath(out, entry.path, expressionNode(entry.value, scope, lineage));
  }
  return out;
}

/** Accumulators that return one of their inputs (or an array of them) as they are. */
const keepingAccumulators = new Set(["$push", "$addToSet", "$first", "$last", "$max", "$min", "$mergeObjects", "$locf"]);
/** Accumulators and window functions that only count or rank. */
const countingAccumulators = new Set(["$count", "$rank", "$denseRank", "$documentNumber"]);

/** The node of an accumulator's (or window function's) value. */
function accumulatorNode(spec: unknown, scope: Scope, lineage: Lineage): TaintNode | undefined {
  if (!isDocument(spec)) return expressionNode(spec, scope, lineage);
  const op = Object.keys(spec).find((key) => key.startsWith("$"));
  if (op === undefined) return expressionNode(spec, scope, lineage);
  const argument = spec[op];
  if (countingAccumulators.has(op)) return undefined;
  if (keepingAccumulators.has(op)) return expressionNode(argument, scope, lineage);
  switch (op) {
    case "$firstN":
    case "$lastN":
    case "$maxN":
    case "$minN":
      return isDocument(argument) ? union(expressionNode(argument.input, scope, lineage), computed(expressionNode(argument.n, scope, lineage))) : expressionNode(argument, scope, lineage);
    case "$top":
    case "$bottom":
    case "$topN":
    case "$bottomN":
      if (!isDocument(argument)) return expressionNode(argument, scope, lineage);
      walkSort(argument.sortBy, scope.current, lineage);
      return union(expressionNode(argument.output, scope, lineage), computed(expressionNode(argument.n, scope, lineage)));
    case "$shift":
      return isDocument(argument) ? union(expressionNode(argument.output, scope, lineage), expressionNode(argument.default, scope, lineage)) : expressionNode(argument, scope, lineage);
    default:
      return expressionNode({ [op]: argument }, scope, lineage);
  }
}

function groupNode(spec: unknown, node: TaintNode | undefined, context: PipelineContext, lineage: Lineage): TaintNode | undefined {
  if (!isDocument(spec)) return unknownNode(lineage, "a stage this analysis cannot read");
  const scope = scopeOf(node, context);
  const id = inClause(lineage, "group_by", () => expressionNode(spec._id, scope, lineage));
  const fields: [string, TaintNode | undefined][] = [["_id", id]];
  for (const key in spec) if (key !== "_id") fields.push([key, accumulatorNode(spec[key], scope, lineage)]);
  return documentNode(fields);
}

function bucketNode(name: string, spec: unknown, node: TaintNode | undefined, context: PipelineContext, lineage: Lineage): TaintNode | undefined {
  if (!isDocument(spec)) return unknownNode(lineage, "a stage this analysis cannot read");
  const scope = scopeOf(node, context);
  // The bucket a document falls in tells about the grouped value: its bounds are masked too.
  const groupBy = computed(inClause(lineage, "group_by", () => expressionNode(spec.groupBy, scope, lineage)));
  const fields: [string, TaintNode | undefined][] = [["_id", name === "$bucketAuto" ? documentNode([["min", groupBy], ["max", groupBy]]) : groupBy]];
  if (isDocument(spec.output)) for (const key in spec.output) fields.push([key, accumulatorNode(spec.output[key], scope, lineage)]);
  return documentNode(fields);
}

function addFieldsNode(spec: unknown, node: TaintNode | undefined, context: PipelineContext, lineage: Lineage): TaintNode | undefined {
  if (!isDocument(spec)) return unknownNode(lineage, "a stage this analysis cannot read");
  const scope = scopeOf(node, context);
  // Every expression sees the input document, not the fields added before it.
  const values = Object.keys(spec).map((key) => {
    const value = spec[key];
    const path = splitPath(key);
    const literal = isDocument(value) && Object.keys(value).length > 0 && !Object.keys(value).some((field) => field.startsWith("$"));
    const computedNode = expressionNode(value, scope, lineage);
    // An embedded document adds its fields to the existing one.
    return { path, node: literal ? union(subtree(node, path), computedNode) : computedNode };
  });
  let out = node;
  for (const value of values) out = setPath(out, value.path, value.node);
  return out;
}

function lookupNode(spec: unknown, node: TaintNode | undefined, context: PipelineContext, lineage: Lineage): TaintNode | undefined {
  if (!isDocument(spec) || typeof spec.as !== "string") return unknownNode(lineage, "a stage this analysis cannot read");
  const from = namespaceOf(spec.from, context);
  const foreign = from === undefined ? undefined : namespaceNode(lineage, from.database, from.collection, context.views ?? 0);
  if (typeof spec.localField === "string" || typeof spec.foreignField === "string") {
    inClause(lineage, "join", () => {
      if (typeof spec.localField === "string") touch(lineage, subtree(node, splitPath(spec.localField)));
      if (typeof spec.foreignField === "string") touch(lineage, subtree(foreign, splitPath(spec.foreignField)));
    });
  }
  let joined = foreign;
  if (spec.pipeline !== undefined) {
    const scope = scopeOf(node, context);
    const variables = new Map(context.variables ?? []);
    if (isDocument(spec.let)) for (const name in spec.let) variables.set(name, expressionNode(spec.let[name], scope, lineage));
    joined = pipelineNode(spec.pipeline, foreign, { database: from?.database ?? context.database, collection: from?.collection, views: context.views ?? 0, variables }, lineage);
  }
  return setPath(node, splitPath(spec.as), joined);
}

function graphLookupNode(spec: unknown, node: TaintNode | undefined, context: PipelineContext, lineage: Lineage): TaintNode | undefined {
  if (!isDocument(spec) || typeof spec.as !== "string") return unknownNode(lineage, "a stage this analysis cannot read");
  const from = namespaceOf(spec.from, context);
  const foreign = from === undefined ? undefined : namespaceNode(lineage, from.database, from.collection, context.views ?? 0);
  inClause(lineage, "join", () => {
    expressionNode(spec.startWith, scopeOf(node, context), lineage);
    if (typeof spec.connectFromField === "string") touch(lineage, subtree(foreign, splitPath(spec.connectFromField)));
    if (typeof spec.connectToField === "string") touch(lineage, subtree(foreign, splitPath(spec.connectToField)));
  });
  walkFilter(spec.restrictSearchWithMatch, foreign, lineage);
  let elements = foreign;
  if (typeof spec.depthField === "string") elements = setPath(elements, splitPath(spec.depthField), undefined);
  return setPath(node, splitPath(spec.as), elements);
}

function unionWithNode(spec: unknown, node: TaintNode | undefined, context: PipelineContext, lineage: Lineage): TaintNode | undefined {
  const body = typeof spec === "string" ? { coll: spec } : spec;
  if (!isDocument(body)) return unknownNode(lineage, "a stage this analysis cannot read");
  const from = body.coll === undefined ? undefined : namespaceOf(body.db === undefined ? body.coll : { db: body.db, coll: body.coll }, context);
  let other = from === undefined ? undefined : namespaceNode(lineage, from.database, from.collection, context.views ?? 0);
  if (body.pipeline !== undefined) other = pipelineNode(body.pipeline, other, { database: from?.database ?? context.database, collection: from?.collection, views: context.views ?? 0 }, lineage);
  return union(node, other);
}

/** The node of a change event of the given namespace (`*` for every collection). */
export function changeEventNode(lineage: Lineage, database: string, collection: string): TaintNode | undefined {
  const documents = namespaceNode(lineage, database, collection);
  if (!isTainted(documents)) return undefined;
  return documentNode([
    // The resume token encodes the document key.
    ["_id", computed(subtree(documents, ["_id"]))],
    ["fullDocument", documents],
    ["fullDocumentBeforeChange", documents],
    ["documentKey", documents],
    ["updateDescription", documentNode([["updatedFields", { paths: documents as TaintNode }]])],
  ]);
}

function writeTarget(name: string, target: { database: string; collection: string } | undefined, node: TaintNode | undefined, lineage: Lineage): void {
  if (!isTainted(node)) return;
  const targetNode = target === undefined ? undefined : namespaceNode(lineage, target.database, target.collection);
  if (!coveredBy(node, targetNode)) copies(lineage, `\`${name}\` writes sensitive fields into ${target === undefined ? "a collection" : `\`${target.database}.${target.collection}\``}`);
}

/** Stages whose output is statistics or catalog entries, not documents. */
const statisticsStages = new Set(["$collStats", "$indexStats", "$listSessions", "$listLocalSessions", "$listSearchIndexes", "$shardedDataDistribution", "$listCatalog", "$listClusterCatalog"]);
/** Stages whose output may hold other sessions' commands or values of any field. */
const opaqueStages = new Set(["$planCacheStats", "$currentOp", "$queryStats", "$listSampledQueries", "$querySettings", "$searchMeta"]);

function stageNode(stage: unknown, node: TaintNode | undefined, context: PipelineContext, lineage: Lineage): TaintNode | undefined {
  if (!isDocument(stage)) return unknownNode(lineage, "a pipeline stage that is not a document");
  const name = Object.keys(stage)[0] ?? "";
  const spec = stage[name];
  const scope = scopeOf(node, context);
  switch (name) {
    case "$match":
      walkFilter(spec, node, lineage, "where", context.variables);
      return node;
    case "$project":
      return projectionNode(spec, node, scope, lineage, false);
    case "$addFields":
    case "$set":
      return addFieldsNode(spec, node, context, lineage);
    case "$unset": {
      let out = node;
      for (const field of Array.isArray(spec) ? spec : [spec]) if (typeof field === "string") out = removePath(out, splitPath(field));
      return out;
    }
    case "$replaceRoot":
      return expressionNode(isDocument(spec) ? spec.newRoot : spec, scope, lineage);
    case "$replaceWith":
      return expressionNode(spec, scope, lineage);
    case "$group":
      return groupNode(spec, node, context, lineage);
    case "$bucket":
    case "$bucketAuto":
      return bucketNode(name, spec, node, context, lineage);
    case "$sortByCount":
      return documentNode([["_id", inClause(lineage, "group_by", () => expressionNode(spec, scope, lineage))]]);
    case "$count":
      return undefined;
    case "$sort":
      walkSort(spec, node, lineage);
      return node;
    case "$limit":
    case "$skip":
    case "$sample":
    case "$densify":
    case "$changeStreamSplitLargeEvent":
      return node;
    case "$unwind": {
      const index = isDocument(spec) ? spec.includeArrayIndex : undefined;
      return typeof index === "string" ? setPath(node, splitPath(index), undefined) : node;
    }
    case "$lookup":
      return lookupNode(spec, node, context, lineage);
    case "$graphLookup":
      return graphLookupNode(spec, node, context, lineage);
    case "$unionWith":
      return unionWithNode(spec, node, context, lineage);
    case "$facet": {
      if (!isDocument(spec)) return unknownNode(lineage, "a stage this analysis cannot read");
      return documentNode(Object.keys(spec).map((facet) => [facet, pipelineNode(spec[facet], node, context, lineage)] as const));
    }
    case "$redact":
      inClause(lineage, "where", () => expressionNode(spec, scope, lineage));
      return node;
    case "$setWindowFields": {
      if (!isDocument(spec)) return unknownNode(lineage, "a stage this analysis cannot read");
      inClause(lineage, "window", () => {
        expressionNode(spec.partitionBy, scope, lineage);
        if (isDocument(spec.sortBy)) for (const key in spec.sortBy) touch(lineage, subtree(node, splitPath(key)));
      });
      let out = node;
      if (isDocument(spec.output)) for (const key in spec.output) out = setPath(out, splitPath(key), accumulatorNode(spec.output[key], scope, lineage));
      return out;
    }
    case "$fill": {
      if (!isDocument(spec)) return unknownNode(lineage, "a stage this analysis cannot read");
      let out = node;
      if (isDocument(spec.output)) {
        for (const key in spec.output) {
          const fill = spec.output[key];
          // Filled by method (locf, linear), a field takes values of the same field: its node stays.
          if (isDocument(fill) && "value" in fill) out = setPath(out, splitPath(key), union(subtree(node, splitPath(key)), expressionNode(fill.value, scope, lineage)));
        }
      }
      return out;
    }
    case "$geoNear": {
      if (!isDocument(spec)) return unknownNode(lineage, "a stage this analysis cannot read");
      walkFilter(spec.query, node, lineage);
      // The distance tells about the location field: masked with it (with the whole document when it is not named).
      const location = computed(typeof spec.key === "string" ? subtree(node, splitPath(spec.key)) : node);
      let out = node;
      if (typeof spec.distanceField === "string") out = setPath(out, splitPath(spec.distanceField), location);
      if (typeof spec.includeLocs === "string") out = setPath(out, splitPath(spec.includeLocs), typeof spec.key === "string" ? subtree(node, splitPath(spec.key)) : location);
      return out;
    }
    case "$documents":
      return expressionNode(spec, scope, lineage);
    case "$search":
    case "$vectorSearch":
    case "$rankFusion":
    case "$scoreFusion":
    case "$score":
      // Search may match on any field.
      inClause(lineage, "where", () => touch(lineage, node));
      return node;
    case "$out": {
      const target = typeof spec === "string" ? { database: context.database, collection: spec } : namespaceOf(spec, context);
      writeTarget("$out", target, node, lineage);
      return undefined;
    }
    case "$merge": {
      const body = typeof spec === "string" ? { into: spec } : spec;
      const target = isDocument(body) ? namespaceOf(body.into, context) : undefined;
      writeTarget("$merge", target, node, lineage);
      if (isDocument(body) && Array.isArray(body.whenMatched) && target !== undefined) {
        // whenMatched updates the target's documents, with the pipeline's document as `$$new`.
        const existing = namespaceNode(lineage, target.database, target.collection);
        const variables = new Map(context.variables ?? []);
        variables.set("new", node);
        if (isDocument(body.let)) for (const name in body.let) variables.set(name, expressionNode(body.let[name], scope, lineage));
        const merged = pipelineNode(body.whenMatched, existing, { database: target.database, collection: target.collection, variables }, lineage);
        writeTarget("$merge", target, merged, lineage);
      }
      return undefined;
    }
    case "$changeStream": {
      const all = isDocument(spec) && isTruthyFlag(spec.allChangesForCluster);
      return changeEventNode(lineage, all ? "*" : context.database, all ? "*" : (context.collection ?? "*"));
    }
    default:
      if (statisticsStages.has(name)) return undefined;
      if (opaqueStages.has(name)) return unknownNode(lineage, `\`${name}\` may show values of any field`);
      return unknownNode(lineage, `unknown stage \`${name}\``);
  }
}
