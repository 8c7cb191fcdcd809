/**
 * Aggregation pipelines, walked stage by stage and into every nested pipeline (`$lookup`,
 * `$unionWith`, `$facet`, `$merge`'s `whenMatched`): which namespaces they read and write, and
 * what they do beyond reading. Server-side JavaScript anywhere is found by scanJavascript.
 * https://www.mongodb.com/docs/manual/reference/operator/aggregation-pipeline/
 */
import { isDocument, isTruthyFlag, type Namespace } from "./documents.js";
import { alwaysTrue } from "./filters.js";
import { addNamespace, flag, maxDepth, NotAnalysableError, quote, quoteNamespace, type MongoWalk } from "./facts.js";

/** Where a pipeline runs: the database its bare collection names resolve in, and its input collection. */
export interface PipelineContext {
  readonly database: string;
  /** Undefined for a database-level pipeline (`aggregate: 1`) or one that starts from `$documents`. */
  readonly collection: string | undefined;
  readonly depth: number;
}

/** Stages that only shape, filter or order the documents flowing through. */
const readingStages: ReadonlySet<string> = new Set([
  "$addFields",
  "$bucket",
  "$bucketAuto",
  "$changeStreamSplitLargeEvent",
  "$count",
  "$densify",
  "$documents",
  "$fill",
  "$geoNear",
  "$group",
  "$limit",
  "$match",
  "$project",
  "$redact",
  "$replaceRoot",
  "$replaceWith",
  "$sample",
  "$search",
  "$searchMeta",
  "$set",
  "$setWindowFields",
  "$skip",
  "$sort",
  "$sortByCount",
  "$unset",
  "$unwind",
  "$vectorSearch",
  "$rankFusion",
  "$scoreFusion",
  "$score",
]);

/** Stages that read statistics or catalog entries of the input collection. */
const statisticsStages: ReadonlySet<string> = new Set([
  "$collStats",
  "$indexStats",
  "$planCacheStats",
  "$listSearchIndexes",
  "$shardedDataDistribution",
  "$listCatalog",
  "$listClusterCatalog",
]);

/** Stages that show other sessions' work or steer the server. */
const adminStages: Readonly<Record<string, string>> = {
  $currentOp: "`$currentOp` shows other sessions' operations",
  $queryStats: "`$queryStats` shows other sessions' query shapes",
  $querySettings: "`$querySettings` reads the cluster's query settings",
  $listSampledQueries: "`$listSampledQueries` shows sampled queries of other sessions",
};

/** Stages after which a pipeline no longer returns every document of its input. */
const boundingStages: ReadonlySet<string> = new Set(["$limit", "$sample", "$group", "$count", "$bucket", "$bucketAuto", "$sortByCount", "$documents", "$collStats", "$indexStats", "$planCacheStats", "$geoNear", "$search", "$searchMeta", "$vectorSearch"]);

/** A namespace named by a stage: a bare collection name, or `{ db, coll }`. */
function stageNamespace(value: unknown, context: PipelineContext, stage: string, field: string): Namespace | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "string") {
    if (value.length === 0) throw new NotAnalysableError(`${quote(stage)} names an empty collection`);
    return { database: context.database, collection: value };
  }
  if (isDocument(value) && typeof value.coll === "string") {
    const database = value.db === undefined ? context.database : value.db;
    if (typeof database !== "string") throw new NotAnalysableError(`${quote(`${stage}.${field}.db`)} must be a string`);
    return { database, collection: value.coll };
  }
  throw new NotAnalysableError(`${quote(`${stage}.${field}`)} must name a collection`);
}

function stageBody(stage: unknown): [string, unknown] {
  if (!isDocument(stage)) throw new NotAnalysableError("a pipeline stage must be a document");
  const keys = Object.keys(stage);
  const name = keys[0];
  if (keys.length !== 1 || name === undefined) throw new NotAnalysableError("a pipeline stage must have exactly one field");
  return [name, stage[name]];
}

/**
 * Walks a pipeline: namespaces, writes, admin stages. An unknown stage makes the command not
 * analysable (deny): the server may know a stage this list does not.
 *
 * @returns whether the pipeline returns every document of its input (no match, limit, grouping)
 */
export function walkPipeline(walk: MongoWalk, pipeline: unknown, context: PipelineContext): boolean {
  if (context.depth > maxDepth) throw new NotAnalysableError("command is nested too deeply to analyse");
  if (!Array.isArray(pipeline)) throw new NotAnalysableError("`pipeline` must be an array");
  let unbounded = true;
  for (const stage of pipeline) {
    const [name, body] = stageBody(stage);
    const inner = { ...context, depth: context.depth + 1 };
    if (boundingStages.has(name)) unbounded = false;
    if (name === "$match" && !alwaysTrue(body)) unbounded = false;
    if (readingStages.has(name)) continue;
    if (statisticsStages.has(name)) continue;
    const adminReason = adminStages[name];
    if (adminReason !== undefined) {
      flag(walk, "admin", adminReason);
      continue;
    }
    switch (name) {
      case "$lookup":
      case "$graphLookup": {
        if (!isDocument(body)) throw new NotAnalysableError(`${quote(name)} must be a document`);
        const from = stageNamespace(body.from, context, name, "from");
        if (from !== undefined) {
          addNamespace(walk, from, "read", name);
          flag(walk, "read", `${quote(name)} reads ${quoteNamespace(from)}`);
        } else if (name === "$graphLookup") throw new NotAnalysableError("`$graphLookup` must name `from`");
        if (body.pipeline !== undefined) {
          walkPipeline(walk, body.pipeline, { database: from?.database ?? context.database, collection: from?.collection, depth: inner.depth });
        }
        break;
      }
      case "$unionWith": {
        const spec = typeof body === "string" ? { coll: body } : body;
        if (!isDocument(spec)) throw new NotAnalysableError("`$unionWith` must name a collection or be a document");
        const from = spec.coll === undefined ? undefined : stageNamespace(spec.db === undefined ? spec.coll : { db: spec.db, coll: spec.coll }, context, name, "coll");
        if (from !== undefined) {
          addNamespace(walk, from, "read", name);
          flag(walk, "read", `\`$unionWith\` reads ${quoteNamespace(from)}`);
        }
        if (spec.pipeline !== undefined) walkPipeline(walk, spec.pipeline, { database: from?.database ?? context.database, collection: from?.collection, depth: inner.depth });
        break;
      }
      case "$facet": {
        if (!isDocument(body)) throw new NotAnalysableError("`$facet` must be a document");
        for (const facet in body) walkPipeline(walk, body[facet], inner);
        break;
      }
      case "$out": {
        const target = stageNamespace(body, context, name, "db");
        if (target === undefined) throw new NotAnalysableError("`$out` must name a collection");
        addNamespace(walk, target, "write", name);
        flag(walk, "write", `\`$out\` replaces ${quoteNamespace(target)} with the pipeline's documents`);
        walk.facts.copiesData = true;
        // $out discards every document the target held: as sweeping as a DELETE without WHERE.
        walk.facts.unboundedWrite = true;
        break;
      }
      case "$merge": {
        const spec = typeof body === "string" ? { into: body } : body;
        if (!isDocument(spec)) throw new NotAnalysableError("`$merge` must name a collection or be a document");
        const target = stageNamespace(spec.into, context, name, "into");
        if (target === undefined) throw new NotAnalysableError("`$merge` must name `into`");
        addNamespace(walk, target, "write", name);
        flag(walk, "write", `\`$merge\` writes the pipeline's documents into ${quoteNamespace(target)}`);
        walk.facts.copiesData = true;
        if (Array.isArray(spec.whenMatched)) walkPipeline(walk, spec.whenMatched, { database: target.database, collection: target.collection, depth: inner.depth });
        break;
      }
      case "$changeStream": {
        const spec = isDocument(body) ? body : {};
        if (isTruthyFlag(spec.allChangesForCluster)) {
          addNamespace(walk, { database: "*", collection: "*" }, "read", name);
        } else {
          addNamespace(walk, { database: context.database, collection: context.collection ?? "*" }, "read", name);
        }
        flag(walk, "read", context.collection === undefined ? `\`$changeStream\` follows database ${quote(context.database)}` : "`$changeStream` follows changes");
        unbounded = false;
        break;
      }
      case "$listSessions":
      case "$listLocalSessions": {
        if (isDocument(body) && isTruthyFlag(body.allUsers)) flag(walk, "admin", `${quote(name)} lists every user's sessions`);
        else flag(walk, "read", `${quote(name)} lists the user's own sessions`);
        break;
      }
      default:
        throw new NotAnalysableError(`unknown aggregation stage ${quote(name)}`);
    }
  }
  return unbounded;
}

/** Operators that run JavaScript on the server. */
const javascriptOperators: Readonly<Record<string, string>> = {
  $where: "`$where` runs server-side JavaScript",
  $function: "`$function` runs server-side JavaScript",
  $accumulator: "`$accumulator` runs server-side JavaScript",
};

/**
 * Finds server-side JavaScript operators anywhere in a value (filters, expressions, pipelines,
 * update documents), by field name. Data the command stores (insert documents) is not passed here.
 */
export function scanJavascript(walk: MongoWalk, value: unknown, depth = 0): void {
  if (depth > maxDepth) throw new NotAnalysableError("command is nested too deeply to analyse");
  if (Array.isArray(value)) {
    for (const item of value) scanJavascript(walk, item, depth + 1);
    return;
  }
  if (!isDocument(value)) return;
  for (const key in value) {
    const reason = javascriptOperators[key];
    if (reason !== undefined) {
      walk.facts.functions.add(key);
      flag(walk, "dangerous", reason);
    }
    scanJavascript(walk, value[key], depth + 1);
  }
}
