/**
 * The shape of a command: the command with its values replaced by `?`, for the analysis text and
 * the fingerprint. Field names, operators, field paths (`$email`) and names of collections and
 * databases stay; every other value goes, so neither carries data the client sent.
 */
import { createHash } from "node:crypto";
import { isDocument, type BsonDocument } from "./documents.js";

/** Generic command arguments: session and transport details, not what the command does. */
export const genericArguments: ReadonlySet<string> = new Set([
  "lsid",
  "txnNumber",
  "autocommit",
  "startTransaction",
  "$clusterTime",
  "signature",
  "$readPreference",
  "readConcern",
  "writeConcern",
  "maxTimeMS",
  "comment",
  "apiVersion",
  "apiStrict",
  "apiDeprecationErrors",
  "$client",
  "$configServerState",
  "$replData",
  "$gleStats",
  "$oplogQueryData",
  "$queryOptions",
  "mayBypassWriteBlocking",
  "readOnly",
]);

/** Top-level fields whose string values are names (collections, databases, fields), not data. */
const commandNameFields: ReadonlySet<string> = new Set(["$db", "to", "collection", "toCollection", "viewOn", "key", "verbosity"]);

/** Fields of a stage's specification whose string values are names. */
const stageNameFields: ReadonlySet<string> = new Set([
  "from",
  "coll",
  "db",
  "as",
  "localField",
  "foreignField",
  "connectFromField",
  "connectToField",
  "depthField",
  "into",
  "path",
  "includeArrayIndex",
  "distanceField",
  "includeLocs",
]);

/** Stages whose specification may be a bare name. */
const namedStages: ReadonlySet<string> = new Set(["$out", "$unionWith", "$count"]);

const maxDepth = 120;

function redact(value: unknown, depth: number): unknown {
  if (depth > maxDepth) return "…";
  if (typeof value === "string") return value.startsWith("$") ? value : "?";
  if (Array.isArray(value)) return collapse(value.map((item) => redact(item, depth + 1)));
  if (isDocument(value)) {
    const out: Record<string, unknown> = {};
    for (const field in value) out[field] = redact(value[field], depth + 1);
    return out;
  }
  return "?";
}

/** Runs of equal shapes (documents of an insert, values of `$in`) collapse to one. */
function collapse(items: unknown[]): unknown[] {
  const out: unknown[] = [];
  let last: string | undefined;
  for (const item of items) {
    const text = JSON.stringify(item);
    if (text !== last) out.push(item);
    last = text;
  }
  return out;
}

function redactPipeline(pipeline: unknown, depth: number): unknown {
  if (!Array.isArray(pipeline)) return redact(pipeline, depth);
  return pipeline.map((stage) => {
    if (!isDocument(stage)) return redact(stage, depth + 1);
    const out: Record<string, unknown> = {};
    for (const name in stage) {
      const body = stage[name];
      if (typeof body === "string" && namedStages.has(name)) out[name] = body;
      else if (name === "$facet" && isDocument(body)) {
        const facets: Record<string, unknown> = {};
        for (const facet in body) facets[facet] = redactPipeline(body[facet], depth + 2);
        out[name] = facets;
      } else if (isDocument(body)) {
        const spec: Record<string, unknown> = {};
        for (const field in body) {
          const value = body[field];
          if (field === "pipeline") spec[field] = redactPipeline(value, depth + 2);
          else if (stageNameFields.has(field) && (typeof value === "string" || isDocument(value))) spec[field] = typeof value === "string" ? value : namesOnly(value);
          else spec[field] = redact(value, depth + 2);
        }
        out[name] = spec;
      } else out[name] = redact(body, depth + 1);
    }
    return out;
  });
}

/** `{db, coll}` as written; anything else redacted. */
function namesOnly(value: BsonDocument): BsonDocument {
  const out: BsonDocument = {};
  for (const field in value) out[field] = (field === "db" || field === "coll") && typeof value[field] === "string" ? value[field] : "?";
  return out;
}

/** The command's shape: generic arguments dropped, values replaced by `?`, names kept. */
export function commandShape(command: BsonDocument): BsonDocument {
  const out: BsonDocument = {};
  let first = true;
  for (const field in command) {
    const value = command[field];
    if (first) {
      first = false;
      if (isDocument(value)) out[field] = field === "explain" ? commandShape(value) : redact(value, 1);
      else out[field] = typeof value === "string" || value === 1 ? value : "?";
      continue;
    }
    if (genericArguments.has(field)) continue;
    if (field === "pipeline") out[field] = redactPipeline(value, 1);
    else if (field === "nsInfo" && Array.isArray(value)) out[field] = value.map((item) => (isDocument(item) && typeof item.ns === "string" ? { ns: item.ns } : "?"));
    else if (commandNameFields.has(field) && typeof value === "string") out[field] = value;
    else out[field] = redact(value, 1);
  }
  return out;
}

/** How long the analysis text may get before it is cut. */
const maxText = 300;

/** The analysis text: the shape as JSON, cut to {@link maxText} characters. */
export function shapeText(shape: BsonDocument): string {
  const text = JSON.stringify(shape);
  return text.length <= maxText ? text : `${text.slice(0, maxText - 1)}…`;
}

/** 16 hex digits of the SHA-256 of the shape: equal for commands that differ only in values. */
export function shapeFingerprint(shape: BsonDocument): string {
  return createHash("sha256").update(JSON.stringify(shape)).digest("hex").slice(0, 16);
}
