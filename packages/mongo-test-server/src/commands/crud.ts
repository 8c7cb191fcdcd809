import { Long, type Document } from "bson";
import { resolve as resolvePath } from "mingo/util";
import { ChangeStreamSource, describeUpdate, type ChangeScope, type ChangeStreamOptions } from "../changes.js";
import type { CommandContext, CommandSpec } from "../context.js";
import { ArraySource } from "../cursors.js";
import { fail } from "../errors.js";
import { aggregate, applyUpdate, compileFilter, copy, isOperatorUpdate, isPlainObject, project, sameDocument, select, upsertSeed, withId } from "../query.js";
import { keyOf, type Collection } from "../storage.js";
import { arrayField, collectionName, documentField, integer, writeError } from "./util.js";

/**
 * CRUD and cursor commands.
 * https://www.mongodb.com/docs/manual/reference/command/nav-crud/
 */

function find(context: CommandContext, command: Document): Document {
  const name = collectionName(command, "find");
  const collection = context.store.collection(context.db, name);
  let limit = integer(command, "limit") ?? 0;
  let singleBatch = command.singleBatch === true;
  if (limit < 0) {
    limit = -limit;
    singleBatch = true;
  }
  const batchSize = integer(command, "batchSize");
  if (batchSize !== undefined && batchSize < 0) fail("BadValue", `BSON field 'batchSize' value must be >= 0, actual value '${batchSize}'`);
  const documents =
    collection === undefined
      ? []
      : select(candidates(collection, documentField(command, "filter")), documentField(command, "filter"), {
          sort: documentField(command, "sort"),
          skip: integer(command, "skip"),
          limit,
          projection: documentField(command, "projection"),
        });
  return context.server.cursors.open(`${context.db}.${name}`, new ArraySource(documents), { batchSize, singleBatch, owner: context.owner });
}

async function getMore(context: CommandContext, command: Document): Promise<Document> {
  const id = integer(command, "getMore");
  if (id === undefined) fail("TypeMismatch", "BSON field 'getMore' is the wrong type, expected type 'long'");
  const collection = collectionName(command, "collection");
  const batchSize = integer(command, "batchSize");
  if (batchSize !== undefined && batchSize < 0) fail("BadValue", `BatchSize value must be non-negative, but received: ${batchSize}`);
  return context.server.cursors.getMore(id, `${context.db}.${collection}`, {
    batchSize,
    maxTimeMS: integer(command, "maxTimeMS"),
    owner: context.owner,
    signal: context.connection.signal,
  });
}

function killCursors(context: CommandContext, command: Document): Document {
  const name = collectionName(command, "killCursors");
  const ids = arrayField(command, "cursors").map((id) => (typeof id === "number" ? id : Number(id)));
  return context.server.cursors.kill(`${context.db}.${name}`, ids, context.owner);
}

function insert(context: CommandContext, command: Document): Document {
  const name = collectionName(command, "insert");
  const documents = arrayField(command, "documents");
  const ordered = command.ordered !== false;
  const writeErrors: Document[] = [];
  let n = 0;
  for (const [index, raw] of documents.entries()) {
    try {
      if (!isPlainObject(raw)) fail("TypeMismatch", "BSON field 'insert.documents' contains an element that is not an object");
      const document = withId(raw);
      checkStorable(document);
      const collection = context.store.ensureCollection(context.db, name);
      collection.insert(document);
      n++;
      context.emit({ operationType: "insert", db: context.db, coll: name, documentKey: { _id: document._id }, fullDocument: document });
    } catch (error) {
      writeErrors.push(writeError(index, error));
      if (ordered) break;
    }
  }
  return writeErrors.length === 0 ? { n, ok: 1 } : { n, writeErrors, ok: 1 };
}

/** Refuses documents the server refuses. */
function checkStorable(document: Document): void {
  if (Array.isArray(document._id)) fail("BadValue", "can't use an array for _id");
  if (document._id instanceof RegExp) fail("BadValue", "can't use a regex for _id");
  if (document._id === undefined) fail("BadValue", "_id is required");
}

interface UpdateStatement {
  readonly q: Document;
  readonly u: Document | readonly Document[];
  readonly multi: boolean;
  readonly upsert: boolean;
  readonly arrayFilters: readonly Document[] | undefined;
}

function updateStatement(raw: unknown): UpdateStatement {
  if (!isPlainObject(raw)) fail("TypeMismatch", "BSON field 'update.updates' contains an element that is not an object");
  const q = documentField(raw, "q");
  const u = raw.u;
  if (q === undefined) fail("NoSuchKey", "BSON field 'update.updates.q' is missing but a required field");
  if (u === undefined || u === null || typeof u !== "object") fail("NoSuchKey", "BSON field 'update.updates.u' is missing but a required field");
  const arrayFilters = raw.arrayFilters === undefined ? undefined : (raw.arrayFilters as Document[]);
  const statement = { q, u: u as Document | Document[], multi: raw.multi === true, upsert: raw.upsert === true, arrayFilters };
  if (statement.multi && !Array.isArray(u) && !isOperatorUpdate(u as Document)) fail("FailedToParse", "multi update is not supported for replacement-style update");
  return statement;
}

function update(context: CommandContext, command: Document): Document {
  const name = collectionName(command, "update");
  const updates = arrayField(command, "updates");
  const ordered = command.ordered !== false;
  const writeErrors: Document[] = [];
  const upserted: Document[] = [];
  let n = 0;
  let nModified = 0;
  for (const [index, raw] of updates.entries()) {
    try {
      const statement = updateStatement(raw);
      const result = runUpdate(context, name, statement);
      n += result.matched;
      nModified += result.modified;
      if (result.upserted !== undefined) {
        n++;
        upserted.push({ index, _id: result.upserted._id });
      }
    } catch (error) {
      writeErrors.push(writeError(index, error));
      if (ordered) break;
    }
  }
  const reply: Document = { n, nModified };
  if (upserted.length > 0) reply.upserted = upserted;
  if (writeErrors.length > 0) reply.writeErrors = writeErrors;
  reply.ok = 1;
  return reply;
}

/** Runs one update statement; returns what it matched, modified and inserted. */
function runUpdate(context: CommandContext, name: string, statement: UpdateStatement): { matched: number; modified: number; upserted: Document | undefined } {
  const collection = context.store.collection(context.db, name);
  const query = compileFilter(statement.q);
  const matches: [Document, number][] = [];
  if (collection !== undefined) {
    for (const [position, document] of collection.documents.entries()) {
      if (!query.test(document)) continue;
      matches.push([document, position]);
      if (!statement.multi) break;
    }
  }
  if (matches.length === 0) {
    if (!statement.upsert) return { matched: 0, modified: 0, upserted: undefined };
    const inserted = upsert(context, name, statement.q, statement.u, statement.arrayFilters);
    return { matched: 0, modified: 0, upserted: inserted };
  }
  let modified = 0;
  for (const [previous, position] of matches) {
    const next = applyUpdate(previous, statement.u, { arrayFilters: statement.arrayFilters, filter: statement.q });
    if (sameDocument(previous, next)) continue;
    (collection as Collection).replace(previous, next, position);
    modified++;
    emitUpdate(context, name, previous, next, statement.u);
  }
  return { matched: matches.length, modified, upserted: undefined };
}

/** Inserts the document an upsert makes from its filter and update. */
function upsert(context: CommandContext, name: string, filter: Document, change: Document | readonly Document[], arrayFilters: readonly Document[] | undefined): Document {
  const replacement = !Array.isArray(change) && !isOperatorUpdate(change as Document);
  const seed = upsertSeed(filter);
  const start = replacement ? (seed._id === undefined ? {} : { _id: seed._id }) : seed;
  const document = withId(applyUpdate(start, change, { arrayFilters, filter, inserting: true }));
  checkStorable(document);
  context.store.ensureCollection(context.db, name).insert(document);
  context.emit({ operationType: "insert", db: context.db, coll: name, documentKey: { _id: document._id }, fullDocument: document });
  return document;
}

function emitUpdate(context: CommandContext, name: string, previous: Document, next: Document, change: Document | readonly Document[]): void {
  const replaced = !Array.isArray(change) && !isOperatorUpdate(change as Document);
  if (replaced) {
    context.emit({ operationType: "replace", db: context.db, coll: name, documentKey: { _id: next._id }, fullDocument: next });
    return;
  }
  const updateDescription = describeUpdate(previous, next, (a, b) => keyOf([a]) === keyOf([b]));
  context.emit({ operationType: "update", db: context.db, coll: name, documentKey: { _id: next._id }, updateDescription });
}

function remove(context: CommandContext, command: Document): Document {
  const name = collectionName(command, "delete");
  const deletes = arrayField(command, "deletes");
  const ordered = command.ordered !== false;
  const writeErrors: Document[] = [];
  let n = 0;
  for (const [index, raw] of deletes.entries()) {
    try {
      if (!isPlainObject(raw)) fail("TypeMismatch", "BSON field 'delete.deletes' contains an element that is not an object");
      const filter = documentField(raw, "q");
      if (filter === undefined) fail("NoSuchKey", "BSON field 'delete.deletes.q' is missing but a required field");
      const limit = integer(raw, "limit");
      if (limit !== 0 && limit !== 1) fail("FailedToParse", `The limit field in delete objects must be 0 or 1. Got ${limit ?? "nothing"}`);
      const collection = context.store.collection(context.db, name);
      if (collection === undefined) continue;
      const matched = select(collection.documents, filter, { limit });
      collection.remove(new Set(matched));
      n += matched.length;
      for (const document of matched) context.emit({ operationType: "delete", db: context.db, coll: name, documentKey: { _id: document._id } });
    } catch (error) {
      writeErrors.push(writeError(index, error));
      if (ordered) break;
    }
  }
  return writeErrors.length === 0 ? { n, ok: 1 } : { n, writeErrors, ok: 1 };
}

function findAndModify(context: CommandContext, command: Document): Document {
  const field = Object.hasOwn(command, "findAndModify") ? "findAndModify" : "findandmodify";
  const name = collectionName(command, field);
  const query = documentField(command, "query");
  const sort = documentField(command, "sort");
  const fields = documentField(command, "fields");
  const change = command.update as Document | Document[] | undefined;
  const removing = command.remove === true;
  const returnNew = command.new === true;
  if (removing && change !== undefined) fail("FailedToParse", "Cannot specify both an update and remove=true");
  if (!removing && change === undefined) fail("FailedToParse", "Either an update or remove=true must be specified");
  if (removing && command.upsert === true) fail("FailedToParse", "Cannot specify both upsert=true and remove=true");
  if (removing && returnNew) fail("FailedToParse", "Cannot specify both new=true and remove=true; 'remove' always returns the deleted document");
  const shown = (document: Document | undefined): Document | null => {
    if (document === undefined) return null;
    return fields === undefined || Object.keys(fields).length === 0 ? document : (project([document], fields)[0] ?? null);
  };
  const collection = context.store.collection(context.db, name);
  const target = collection === undefined ? undefined : select(collection.documents, query, { sort, limit: 1 })[0];
  if (removing) {
    if (target !== undefined) {
      (collection as Collection).remove(new Set([target]));
      context.emit({ operationType: "delete", db: context.db, coll: name, documentKey: { _id: target._id } });
    }
    return { lastErrorObject: { n: target === undefined ? 0 : 1 }, value: shown(target), ok: 1 };
  }
  const arrayFilters = command.arrayFilters as Document[] | undefined;
  if (target !== undefined) {
    const next = applyUpdate(target, change as Document, { arrayFilters, filter: query });
    if (!sameDocument(target, next)) {
      (collection as Collection).replace(target, next);
      emitUpdate(context, name, target, next, change as Document);
    }
    return { lastErrorObject: { n: 1, updatedExisting: true }, value: shown(returnNew ? next : target), ok: 1 };
  }
  if (command.upsert === true) {
    const inserted = upsert(context, name, query ?? {}, change as Document, arrayFilters);
    return { lastErrorObject: { n: 1, updatedExisting: false, upserted: inserted._id }, value: returnNew ? shown(inserted) : null, ok: 1 };
  }
  return { lastErrorObject: { n: 0, updatedExisting: false }, value: null, ok: 1 };
}

/** The stage name of a pipeline stage. */
function stageName(stage: unknown): string {
  if (!isPlainObject(stage)) fail("TypeMismatch", "Each element of the 'pipeline' array must be an object");
  const keys = Object.keys(stage);
  if (keys.length !== 1) fail("BadValue", "A pipeline stage specification object must contain exactly one field.");
  return keys[0] as string;
}

function runAggregate(context: CommandContext, command: Document): Document {
  const target = command.aggregate;
  if (typeof target !== "string" && target !== 1) fail("InvalidNamespace", "Invalid aggregate namespace: collection name must be a string or 1");
  const pipeline = arrayField(command, "pipeline") as Document[];
  const stages = pipeline.map(stageName);
  if (command.explain === true) return explainReply(context, command, `${context.db}.${String(target)}`, aggregateDocuments(context, target, pipeline).length);
  const cursorOptions = documentField(command, "cursor");
  if (cursorOptions === undefined) fail("FailedToParse", "The 'cursor' option is required, except for aggregate with the explain argument");
  const batchSize = integer(cursorOptions, "batchSize");
  if (stages[0] === "$changeStream") return changeStream(context, target, pipeline, batchSize);
  if (stages.slice(1).includes("$changeStream")) fail("BadValue", "$changeStream is only valid as the first stage in a pipeline");
  const last = stages[stages.length - 1];
  if (last === "$out" || last === "$merge") {
    const results = aggregateDocuments(context, target, pipeline.slice(0, -1));
    const stage = pipeline[pipeline.length - 1] as Document;
    if (last === "$out") writeOut(context, stage.$out, results);
    else writeMerge(context, stage.$merge, results);
    return { cursor: { firstBatch: [], id: Long.fromNumber(0), ns: `${context.db}.${String(target)}` }, ok: 1 };
  }
  for (const stage of stages.slice(0, -1)) if (stage === "$out" || stage === "$merge") fail("BadValue", `${stage} can only be the final stage in the pipeline`);
  const results = aggregateDocuments(context, target, pipeline);
  const namespace = target === 1 ? `${context.db}.$cmd.aggregate` : `${context.db}.${target}`;
  return context.server.cursors.open(namespace, new ArraySource(results), { batchSize, owner: context.owner });
}

/** Runs a pipeline (without $out/$merge) over a collection, or over $documents for `aggregate: 1`. */
function aggregateDocuments(context: CommandContext, target: unknown, pipeline: Document[]): Document[] {
  const resolve = (name: string): Document[] => {
    context.authorize("read", context.db);
    return [...(context.store.collection(context.db, name)?.documents ?? [])];
  };
  for (const stage of pipeline) {
    const name = stageName(stage);
    if (name === "$unionWith" || name === "$lookup" || name === "$graphLookup") {
      const spec = stage[name] as unknown;
      const from = typeof spec === "string" ? spec : (spec as Document | undefined)?.from ?? (spec as Document | undefined)?.coll;
      if (isPlainObject(from)) fail("BadValue", `${name} from another database is not supported by the stand-in`);
    }
  }
  if (target === 1) {
    const first = pipeline[0];
    if (first === undefined || stageName(first) !== "$documents") fail("InvalidNamespace", "{aggregate: 1} is not valid for the stand-in except with a $documents stage");
    const documents = first.$documents;
    if (!Array.isArray(documents)) fail("TypeMismatch", "$documents must be an array of objects");
    return aggregate(documents as Document[], pipeline.slice(1), resolve);
  }
  const collection = context.store.collection(context.db, target as string);
  return aggregate(collection?.documents ?? [], pipeline, resolve);
}

/** The target of $out or $merge's `into`: a name in this database or { db, coll }. */
function outputTarget(context: CommandContext, spec: unknown, stage: string): { db: string; coll: string } {
  if (typeof spec === "string") return { db: context.db, coll: spec };
  if (isPlainObject(spec) && typeof spec.coll === "string") return { db: typeof spec.db === "string" ? spec.db : context.db, coll: spec.coll };
  return fail("BadValue", `${stage} requires a collection name or { db, coll }`);
}

function writeOut(context: CommandContext, spec: unknown, results: readonly Document[]): void {
  const target = outputTarget(context, spec, "$out");
  context.authorize("write", target.db);
  const collection = context.store.ensureCollection(target.db, target.coll);
  const next = collection.clone();
  next.remove(new Set(next.documents));
  for (const document of results) next.insert(withId(document));
  collection.assign(next);
}

function writeMerge(context: CommandContext, spec: unknown, results: readonly Document[]): void {
  const options = typeof spec === "string" ? { into: spec } : isPlainObject(spec) ? spec : fail("BadValue", "$merge requires a collection name or an object");
  const target = outputTarget(context, options.into, "$merge");
  context.authorize("write", target.db);
  const on = options.on === undefined ? ["_id"] : Array.isArray(options.on) ? (options.on as string[]) : [options.on as string];
  const whenMatched = options.whenMatched ?? "merge";
  const whenNotMatched = options.whenNotMatched ?? "insert";
  if (typeof whenMatched !== "string") fail("BadValue", "$merge with a whenMatched pipeline is not supported by the stand-in");
  const collection = context.store.ensureCollection(target.db, target.coll);
  const next = collection.clone();
  for (const result of results) {
    const key = keyOf(on.map((field) => resolvePath(result, field) ?? null));
    const existing = next.documents.find((document) => keyOf(on.map((field) => resolvePath(document, field) ?? null)) === key);
    if (existing === undefined) {
      if (whenNotMatched === "discard") continue;
      if (whenNotMatched === "fail") fail("BadValue", "$merge could not find a matching document in the target collection for at least one document in the source collection");
      next.insert(withId(result));
      continue;
    }
    if (whenMatched === "keepExisting") continue;
    if (whenMatched === "fail") fail("DuplicateKey", `E11000 duplicate key error collection: ${next.namespace} index: _id_`);
    const merged = whenMatched === "replace" ? { ...result, _id: existing._id } : { ...existing, ...result, _id: existing._id };
    next.replace(existing, withId(merged));
  }
  collection.assign(next);
}

function changeStream(context: CommandContext, target: unknown, pipeline: Document[], batchSize: number | undefined): Document {
  if (context.server.settings.replicaSet === undefined) fail("Location40573", "The $changeStream stage is only supported on replica sets");
  const options = (pipeline[0]?.$changeStream ?? {}) as Document;
  if (!isPlainObject(options)) fail("TypeMismatch", "$changeStream must take a nested object");
  let scope: ChangeScope;
  if (target === 1) scope = context.db === "admin" && options.allChangesForCluster === true ? {} : { db: context.db };
  else scope = { db: context.db, coll: target as string };
  const rest = pipeline.slice(1);
  for (const stage of rest) {
    const name = stageName(stage);
    if (!["$match", "$project", "$addFields", "$set", "$unset", "$replaceRoot", "$replaceWith", "$redact"].includes(name)) {
      fail("BadValue", `${name} is not permitted in a $changeStream pipeline`);
    }
  }
  const source = new ChangeStreamSource(context.server.changes, scope, options as ChangeStreamOptions, rest, () => context.server.storage);
  const namespace = target === 1 ? `${context.db}.$cmd.aggregate` : `${context.db}.${target as string}`;
  // A change stream's cursor stays open while empty: it is tailable.
  return context.server.cursors.open(namespace, source, { batchSize: batchSize ?? 101, owner: context.owner });
}

function count(context: CommandContext, command: Document): Document {
  const name = collectionName(command, "count");
  const collection = context.store.collection(context.db, name);
  if (collection === undefined) return { n: 0, ok: 1 };
  const limit = Math.abs(integer(command, "limit") ?? 0);
  const n = select(collection.documents, documentField(command, "query"), { skip: integer(command, "skip"), limit }).length;
  return { n, ok: 1 };
}

function distinct(context: CommandContext, command: Document): Document {
  const name = collectionName(command, "distinct");
  const key = command.key;
  if (typeof key !== "string") fail("TypeMismatch", "BSON field 'distinct.key' is the wrong type, expected type 'string'");
  const collection = context.store.collection(context.db, name);
  const seen = new Set<string>();
  const values: unknown[] = [];
  const add = (value: unknown): void => {
    if (value === undefined) return;
    const id = keyOf([value]);
    if (seen.has(id)) return;
    seen.add(id);
    values.push(value);
  };
  for (const document of select(collection?.documents ?? [], documentField(command, "query"))) {
    const value = resolvePath(document, key) as unknown;
    if (Array.isArray(value)) for (const element of value) add(element);
    else add(value);
  }
  return { values: copy(values), ok: 1 };
}

/** A minimal explain: the plan is always a collection scan; executionStats counts what the command would return. */
function explain(context: CommandContext, command: Document): Document {
  const inner = documentField(command, "explain");
  if (inner === undefined) fail("NoSuchKey", "BSON field 'explain.explain' is missing but a required field");
  const name = Object.keys(inner)[0] ?? "";
  const target = inner[name] as unknown;
  const namespace = `${context.db}.${String(target)}`;
  const collection = typeof target === "string" ? context.store.collection(context.db, target) : undefined;
  const documents = collection?.documents ?? [];
  let returned: number;
  switch (name) {
    case "find":
      returned = select(documents, documentField(inner, "filter"), { sort: documentField(inner, "sort"), skip: integer(inner, "skip"), limit: integer(inner, "limit") }).length;
      break;
    case "aggregate":
      returned = aggregateDocuments(context, target, (arrayField(inner, "pipeline") as Document[]).filter((stage) => !["$out", "$merge"].includes(stageName(stage)))).length;
      break;
    case "count":
    case "distinct":
      returned = select(documents, documentField(inner, "query")).length;
      break;
    case "findAndModify":
    case "findandmodify":
      returned = Math.min(1, select(documents, documentField(inner, "query")).length);
      break;
    case "update":
    case "delete": {
      const statements = arrayField(inner, name === "update" ? "updates" : "deletes") as Document[];
      returned = statements.reduce((sum, statement) => sum + select(documents, documentField(statement, "q")).length, 0);
      break;
    }
    default:
      fail("CommandNotFound", `Explain failed due to unknown command: ${name}`);
  }
  return explainReply(context, inner, namespace, returned, command.verbosity as string | undefined);
}

function explainReply(context: CommandContext, command: Document, namespace: string, returned: number, verbosity = "allPlansExecution"): Document {
  const filter = (command.filter ?? command.query ?? {}) as Document;
  const reply: Document = {
    explainVersion: "1",
    queryPlanner: {
      namespace,
      indexFilterSet: false,
      parsedQuery: filter,
      winningPlan: { stage: "COLLSCAN", filter, direction: "forward" },
      rejectedPlans: [],
    },
  };
  if (verbosity !== "queryPlanner") {
    reply.executionStats = { executionSuccess: true, nReturned: returned, executionTimeMillis: 0, totalKeysExamined: 0, totalDocsExamined: returned };
  }
  const { $db: _db, lsid: _lsid, $clusterTime: _time, ...shown } = command;
  reply.command = shown;
  reply.serverInfo = { host: context.server.settings.host, port: context.server.settings.port, version: "7.0.14", gitVersion: "stand-in" };
  reply.ok = 1;
  return reply;
}

/**
 * The MongoDB 8.0 bulkWrite command (wire version 25): ops and nsInfo arrive as OP_MSG document
 * sequences. Answered only when the server reports maxWireVersion 25 or more.
 * https://www.mongodb.com/docs/manual/reference/command/bulkWrite/
 */
function bulkWrite(context: CommandContext, command: Document): Document {
  if (context.server.settings.maxWireVersion < 25) fail("CommandNotFound", "no such command: 'bulkWrite'");
  if (context.db !== "admin") fail("Unauthorized", "The bulkWrite command can only be run against the admin database");
  const ops = arrayField(command, "ops");
  const namespaces = arrayField(command, "nsInfo").map((info) => {
    const ns = isPlainObject(info) ? info.ns : undefined;
    if (typeof ns !== "string" || !ns.includes(".")) fail("InvalidNamespace", "nsInfo entries need an ns of the form db.collection");
    const dot = ns.indexOf(".");
    return { db: ns.slice(0, dot), coll: ns.slice(dot + 1) };
  });
  const ordered = command.ordered !== false;
  const errorsOnly = command.errorsOnly === true;
  const results: Document[] = [];
  const totals = { nErrors: 0, nInserted: 0, nMatched: 0, nModified: 0, nUpserted: 0, nDeleted: 0 };
  for (const [idx, raw] of ops.entries()) {
    try {
      if (!isPlainObject(raw)) fail("TypeMismatch", "bulkWrite ops must be objects");
      const kind = (["insert", "update", "delete"] as const).find((name) => Object.hasOwn(raw, name));
      if (kind === undefined) fail("FailedToParse", "Unrecognized bulkWrite operation");
      const target = namespaces[integer(raw, kind) ?? -1];
      if (target === undefined) fail("BadValue", "bulkWrite op references a namespace index outside nsInfo");
      context.authorize("write", target.db);
      const scoped: CommandContext = { ...context, db: target.db };
      if (kind === "insert") {
        const document = withId(documentField(raw, "document") ?? fail("NoSuchKey", "BSON field 'document' is missing but a required field"));
        checkStorable(document);
        scoped.store.ensureCollection(target.db, target.coll).insert(document);
        scoped.emit({ operationType: "insert", db: target.db, coll: target.coll, documentKey: { _id: document._id }, fullDocument: document });
        totals.nInserted++;
        if (!errorsOnly) results.push({ ok: 1, idx, n: 1 });
      } else if (kind === "update") {
        const statement = updateStatement({ q: raw.filter, u: raw.updateMods, multi: raw.multi, upsert: raw.upsert, arrayFilters: raw.arrayFilters });
        const result = runUpdate(scoped, target.coll, statement);
        totals.nMatched += result.matched;
        totals.nModified += result.modified;
        if (result.upserted !== undefined) totals.nUpserted++;
        if (!errorsOnly) {
          const entry: Document = { ok: 1, idx, n: result.matched + (result.upserted === undefined ? 0 : 1), nModified: result.modified };
          if (result.upserted !== undefined) entry.upserted = { _id: result.upserted._id };
          results.push(entry);
        }
      } else {
        const filter = documentField(raw, "filter") ?? {};
        const collection = scoped.store.collection(target.db, target.coll);
        const matched = collection === undefined ? [] : select(collection.documents, filter, { limit: raw.multi === true ? 0 : 1 });
        collection?.remove(new Set(matched));
        for (const document of matched) scoped.emit({ operationType: "delete", db: target.db, coll: target.coll, documentKey: { _id: document._id } });
        totals.nDeleted += matched.length;
        if (!errorsOnly) results.push({ ok: 1, idx, n: matched.length });
      }
    } catch (error) {
      totals.nErrors++;
      const { index: _index, ...entry } = writeError(idx, error);
      results.push({ ok: 0, idx, ...entry });
      if (ordered) break;
    }
  }
  return { cursor: { id: Long.fromNumber(0), firstBatch: results, ns: "admin.$cmd.bulkWrite" }, ...totals, ok: 1 };
}

/** CRUD, cursor and aggregation commands by name. */
export const crudCommands: Record<string, CommandSpec> = {
  find: { run: find, privilege: "read" },
  getMore: { run: getMore, privilege: "read" },
  killCursors: { run: killCursors, privilege: "read" },
  insert: { run: insert, privilege: "write" },
  update: { run: update, privilege: "write" },
  delete: { run: remove, privilege: "write" },
  findAndModify: { run: findAndModify, privilege: "write" },
  findandmodify: { run: findAndModify, privilege: "write" },
  aggregate: { run: runAggregate, privilege: "read" },
  count: { run: count, privilege: "read" },
  distinct: { run: distinct, privilege: "read" },
  explain: { run: explain, privilege: "read" },
  bulkWrite: { run: bulkWrite, privilege: "authenticated" },
};

/**
 * The documents a filter can match: by the _id index when the filter is `{ _id: <value> }` with a
 * plain value (as a real server's IDHACK plan), every document otherwise. The filter still runs
 * over them, so the semantics are mingo's either way.
 */
function candidates(collection: { readonly documents: readonly Document[]; byId(id: unknown): Document | undefined }, filter: Document | undefined): readonly Document[] {
  if (filter === undefined) return collection.documents;
  const keys = Object.keys(filter);
  const id = filter._id;
  if (keys.length !== 1 || keys[0] !== "_id" || id === null || (typeof id === "object" && !isPlainId(id))) return collection.documents;
  const found = collection.byId(id);
  return found === undefined ? [] : [found];
}

/** BSON values that are ids, not operator documents or regular expressions. */
function isPlainId(value: object): boolean {
  const type = (value as { _bsontype?: unknown })._bsontype;
  return type === "ObjectId" || type === "UUID" || type === "Binary" || type === "Long" || type === "Decimal128" || type === "Int32" || type === "Double" || value instanceof Date;
}
