import { ObjectId, serialize, type Document } from "bson";
import { Aggregator, ProcessingMode, Query, update as mingoUpdate } from "mingo";
import type { Options } from "mingo/types";
import { cloneDeep, MingoError, setValue } from "mingo/util";
import { CommandError, fail } from "./errors.js";
import { keyOf } from "./storage.js";

/**
 * Query, update and pipeline semantics, all from mingo. Server-side JavaScript ($where, $function,
 * $accumulator) is refused, as a server started with --noscripting refuses it.
 */

/** Options for every mingo call; `resolve` gives $lookup, $graphLookup and $unionWith their collections. */
export function mingoOptions(resolve?: (name: string) => Document[]): Partial<Options> {
  const options: Partial<Options> = { scriptEnabled: false, processingMode: ProcessingMode.CLONE_OFF };
  return resolve === undefined ? options : { ...options, collectionResolver: resolve };
}

/** Runs `run`, turning mingo's errors into the server's (BadValue with mingo's message). */
export function semantics<T>(run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof CommandError) throw error;
    if (error instanceof MingoError || error instanceof Error) {
      if (/scriptEnabled/.test(error.message)) fail("BadValue", "server-side JavaScript execution is disabled");
      if (/immutable field '_id'/.test(error.message)) fail("ImmutableField", "Performing an update on the path '_id' would modify the immutable field '_id'");
      fail("BadValue", error.message);
    }
    throw error;
  }
}

/** A compiled filter. */
export function compileFilter(filter: Document | undefined): Query {
  if (filter !== undefined && (filter === null || typeof filter !== "object" || Array.isArray(filter))) {
    fail("TypeMismatch", "BSON field 'filter' is the wrong type, expected type 'object'");
  }
  return semantics(() => new Query(filter ?? {}, mingoOptions()));
}

/** Options of {@link select}. */
export interface SelectOptions {
  readonly sort?: Document | undefined;
  readonly skip?: number | undefined;
  readonly limit?: number | undefined;
  readonly projection?: Document | undefined;
}

/** The documents of `documents` that match `filter`, sorted, skipped, limited and projected. */
export function select(documents: readonly Document[], filter: Document | undefined, options: SelectOptions = {}): Document[] {
  const query = compileFilter(filter);
  const skip = options.skip ?? 0;
  const limit = options.limit ?? 0;
  if (skip < 0) fail("BadValue", "skip value must be non-negative");
  if (limit < 0) fail("BadValue", "limit value must be non-negative");
  const selected = semantics(() => {
    const sort = options.sort !== undefined && Object.keys(options.sort).length > 0 ? options.sort : undefined;
    if (sort === undefined) {
      const out: Document[] = [];
      let skipped = 0;
      for (const document of documents) {
        if (!query.test(document)) continue;
        if (skipped < skip) {
          skipped++;
          continue;
        }
        out.push(document);
        if (limit > 0 && out.length >= limit) break;
      }
      return out;
    }
    let cursor = query.find<Document>(documents as Document[]).sort(sort);
    if (skip > 0) cursor = cursor.skip(skip);
    if (limit > 0) cursor = cursor.limit(limit);
    return cursor.all();
  });
  return options.projection === undefined || Object.keys(options.projection).length === 0 ? selected : project(selected, options.projection);
}

/** Applies a find projection to each document, keeping the stored field order as the server does. */
export function project(documents: readonly Document[], projection: Document): Document[] {
  const projected = semantics(() => new Query({}, mingoOptions()).find<Document>(documents as Document[], projection).all());
  return projected.map((document, index) => orderLike(document, documents[index] as Document));
}

/** `document`'s fields in the order of `source`'s, the others after them. */
function orderLike(document: Document, source: Document): Document {
  const out: Document = {};
  for (const key of Object.keys(source)) if (Object.hasOwn(document, key)) out[key] = document[key];
  for (const key of Object.keys(document)) if (!Object.hasOwn(out, key)) out[key] = document[key];
  return out;
}

/** Runs an aggregation pipeline over `documents`, leaving them unchanged. */
export function aggregate(documents: readonly Document[], pipeline: readonly Document[], resolve: (name: string) => Document[]): Document[] {
  // Leading $match stages filter the stored documents without copying them; only what passes is copied.
  let start = 0;
  let input: readonly Document[] = documents;
  while (start < pipeline.length && Object.keys(pipeline[start] as Document)[0] === "$match") {
    const query = compileFilter((pipeline[start] as Document).$match as Document);
    input = semantics(() => input.filter((document) => query.test(document)));
    start++;
  }
  const rest = pipeline.slice(start) as Document[];
  if (rest.length === 0) return [...input];
  return semantics(() => new Aggregator(rest, { ...mingoOptions(resolve), processingMode: ProcessingMode.CLONE_INPUT }).run<Document>(input as Document[]));
}

/** Whether `update` is an operator update ($set...), as opposed to a replacement or a pipeline. */
export function isOperatorUpdate(update: Document): boolean {
  const keys = Object.keys(update);
  const operators = keys.filter((key) => key.startsWith("$"));
  if (operators.length > 0 && operators.length !== keys.length) {
    const plain = keys.find((key) => !key.startsWith("$")) ?? "";
    fail("FailedToParse", `Unknown modifier: ${plain}. Expected a valid update modifier or pipeline-style update specified as an array`);
  }
  return operators.length > 0;
}

/** Options of {@link applyUpdate}. */
export interface ApplyUpdateOptions {
  readonly arrayFilters?: readonly Document[] | undefined;
  /** The filter that selected the document, for the positional `$` operator. */
  readonly filter?: Document | undefined;
  /** The document is being inserted by an upsert: $setOnInsert applies and _id may be set. */
  readonly inserting?: boolean;
}

/** The document after `update` (operators, replacement or pipeline); `document` itself is left as it was. */
export function applyUpdate(document: Document, update: Document | readonly Document[], options: ApplyUpdateOptions = {}): Document {
  let next: Document;
  if (Array.isArray(update)) {
    const pipeline = update as readonly Document[];
    next = semantics(() => new Aggregator(pipeline as Document[], { ...mingoOptions(), processingMode: ProcessingMode.CLONE_INPUT }).run<Document>([document])[0] ?? {});
  } else if (isOperatorUpdate(update as Document)) {
    const { $setOnInsert, ...operators } = update as Document;
    if (options.inserting === true && $setOnInsert !== undefined) operators.$set = { ...(operators.$set as Document | undefined), ...($setOnInsert as Document) };
    next = cloneDeep(document) as Document;
    // mingo refuses every $set of _id; the server allows setting the value it has, or any on an upsert's insert.
    if (isPlainObject(operators.$set) && Object.hasOwn(operators.$set, "_id")) {
      const { _id, ...rest } = operators.$set;
      if (document._id === undefined) next._id = cloneDeep(_id);
      else if (keyOf([_id]) !== keyOf([document._id])) fail("ImmutableField", "Performing an update on the path '_id' would modify the immutable field '_id'");
      operators.$set = rest;
    }
    if (Object.keys(operators).length > 0) {
      semantics(() => mingoUpdate(next, operators, options.arrayFilters as Document[] | undefined, options.filter, { cloneMode: "deep" }));
    }
  } else {
    const replacement = update as Document;
    for (const key of Object.keys(replacement)) {
      if (key.startsWith("$")) fail("BadValue", `The dollar ($) prefixed field '${key}' in '${key}' is not allowed in the context of an update's replacement document.`);
    }
    next = { ...(document._id === undefined ? {} : { _id: document._id }), ...replacement };
  }
  // An upsert's new document may take any _id; an existing document keeps its own.
  if (document._id !== undefined && (next._id === undefined || keyOf([next._id]) !== keyOf([document._id]))) {
    fail("ImmutableField", "Performing an update on the path '_id' would modify the immutable field '_id'");
  }
  return idFirst(next);
}

/** The document an upsert starts from: the equality conditions of its filter. */
export function upsertSeed(filter: Document | undefined): Document {
  const seed: Document = {};
  const visit = (conditions: Document): void => {
    for (const [key, value] of Object.entries(conditions)) {
      if (key === "$and" && Array.isArray(value)) {
        for (const part of value) visit(part as Document);
        continue;
      }
      if (key.startsWith("$")) continue;
      if (isPlainObject(value) && Object.keys(value).some((name) => name.startsWith("$"))) {
        if (Object.hasOwn(value, "$eq")) setValue(seed, key, cloneDeep(value.$eq));
        continue;
      }
      setValue(seed, key, cloneDeep(value));
    }
  };
  if (filter !== undefined) visit(filter);
  return seed;
}

/** The document with `_id` as its first field, given one (ObjectId) when it has none. */
export function withId(document: Document): Document {
  return document._id === undefined ? { _id: new ObjectId(), ...document } : idFirst(document);
}

function idFirst(document: Document): Document {
  const keys = Object.keys(document);
  if (keys[0] === "_id" || !Object.hasOwn(document, "_id")) return document;
  const { _id, ...rest } = document;
  return { _id, ...rest };
}

/** Whether two documents have the same BSON bytes (an update that changed nothing is not counted as modified). */
export function sameDocument(a: Document, b: Document): boolean {
  return Buffer.from(serialize(a, { ignoreUndefined: true })).equals(serialize(b, { ignoreUndefined: true }));
}

/** Whether a value is a plain document (not an array, a BSON value or a Date). */
export function isPlainObject(value: unknown): value is Document {
  return value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype;
}

/** Copies a value deeply (BSON wrapper objects are shared: they are not mutated). */
export function copy<T>(value: T): T {
  return cloneDeep(value) as T;
}
