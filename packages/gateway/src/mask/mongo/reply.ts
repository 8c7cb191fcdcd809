/**
 * Masking of one reply as a plan says: the documents of cursor batches and findAndModify values,
 * distinct values, upserted ids, explain output, and error messages (withheld when the command
 * reads sensitive fields, scrubbed of the command's known values and by the detectors otherwise).
 * Every other string of the reply goes through the content detectors.
 */
import { isDocument, type BsonDocument } from "../../inspect/mongo/documents.js";
import { REDACTED_TEXT } from "../styles.js";
import type { MongoMaskPlan } from "./plan.js";
import { child, collapse, isTainted, splitPath, subtree, type Taint, type TaintNode } from "./taint.js";
import { detect, detectText, maskDocument, maskWhole, maskWithNode, type ValueContext } from "./values.js";

/** What replaces an error message that may echo a sensitive value. */
export const WITHHELD_MESSAGE = "the command touches masked fields: the database's message is withheld";

/** Masks a reply; `node` is the node of the documents of a cursor reply (resolved for getMore). */
export function maskReplyDocument(plan: MongoMaskPlan, reply: BsonDocument, node: TaintNode | undefined, ctx: ValueContext): BsonDocument {
  const label = (taint: Taint): void => {
    const sources = [...taint.sources];
    ctx.events.masked(sources.length === 0 ? "(uncertain)" : sources.join(", "));
  };
  const out: BsonDocument = {};
  for (const key in reply) {
    const value = reply[key];
    switch (key) {
      case "cursor":
        out[key] = isDocument(value) ? maskCursor(plan, value, node, ctx, label) : detect(value, ctx);
        continue;
      case "value":
        out[key] = plan.reply.kind === "value" ? maskDocument(value, plan.reply.node, ctx, label) : detect(value, ctx);
        continue;
      case "lastErrorObject":
        out[key] = plan.reply.kind === "value" && isDocument(value) ? maskUpserted(value, plan.reply.id, ctx, label) : detect(value, ctx);
        continue;
      case "values":
        out[key] = plan.reply.kind === "values" ? maskWithNode(value, plan.reply.node, ctx, label) : detect(value, ctx);
        continue;
      case "upserted": {
        const id = plan.reply.kind === "write" ? plan.reply.id : undefined;
        out[key] = plan.reply.kind === "write" && Array.isArray(value) ? value.map((item) => (isDocument(item) ? maskUpserted(item, id, ctx, label) : item)) : detect(value, ctx);
        continue;
      }
      case "errmsg":
      case "$err":
        out[key] = typeof value === "string" ? scrubMessage(value, plan, ctx) : value;
        continue;
      case "errInfo":
        out[key] = plan.withholdErrors || plan.sensitiveNamespace ? {} : scrubValue(value, plan, ctx);
        continue;
      case "keyValue":
        out[key] = maskKeyValue(value, plan, node, ctx, label);
        continue;
      case "writeErrors":
        out[key] = Array.isArray(value) ? value.map((item) => (isDocument(item) ? maskReplyDocument(plan, item, node, ctx) : item)) : value;
        continue;
      case "writeConcernError":
        out[key] = isDocument(value) ? maskReplyDocument(plan, value, node, ctx) : value;
        continue;
      default:
        break;
    }
    if (plan.reply.kind === "field" && key === plan.reply.field) {
      const fieldNode = plan.reply.node;
      out[key] = Array.isArray(value) ? value.map((item) => maskDocument(item, fieldNode, ctx, label)) : maskDocument(value, fieldNode, ctx, label);
      continue;
    }
    if (plan.reply.kind === "explain") {
      out[key] = scrubExplain(value, plan.reply.fields, plan, ctx, 0);
      continue;
    }
    out[key] = detect(value, ctx);
  }
  return out;
}

function maskCursor(plan: MongoMaskPlan, cursor: BsonDocument, node: TaintNode | undefined, ctx: ValueContext, label: (taint: Taint) => void): BsonDocument {
  const out: BsonDocument = {};
  // bulkWrite's cursor holds one result per operation, errors included.
  const results = plan.command === "bulkWrite";
  for (const key in cursor) {
    const value = cursor[key];
    if (key === "firstBatch" || key === "nextBatch") {
      out[key] = Array.isArray(value) ? value.map((document) => (results && isDocument(document) ? maskResult(plan, document, node, ctx, label) : maskDocument(document, node, ctx, label))) : value;
    } else if (key === "id") out[key] = value;
    else if (key === "postBatchResumeToken") out[key] = maskWithNode(value, child(node, "_id"), ctx, label);
    else out[key] = detect(value, ctx);
  }
  return out;
}

/** One bulkWrite result: its upserted id by the lineage, its error like a write error. */
function maskResult(plan: MongoMaskPlan, result: BsonDocument, node: TaintNode | undefined, ctx: ValueContext, label: (taint: Taint) => void): unknown {
  const errors: BsonDocument = {};
  const rest: BsonDocument = {};
  for (const key in result) {
    if (key === "errmsg" || key === "errInfo" || key === "keyValue") errors[key] = result[key];
    else rest[key] = result[key];
  }
  const masked = maskDocument(rest, node, ctx, label) as BsonDocument;
  const scrubbed = maskReplyDocument({ ...plan, reply: { kind: "plain" } }, errors, undefined, ctx);
  const out: BsonDocument = {};
  for (const key in result) out[key] = key in scrubbed ? scrubbed[key] : masked[key];
  return out;
}

function maskUpserted(document: BsonDocument, id: TaintNode | undefined, ctx: ValueContext, label: (taint: Taint) => void): BsonDocument {
  const out: BsonDocument = {};
  for (const key in document) {
    const value = document[key];
    if (key === "_id") out[key] = maskWithNode(value, id, ctx, label);
    else if (key === "upserted") out[key] = maskWithNode(value, id, ctx, label);
    else out[key] = detect(value, ctx);
  }
  return out;
}

/** A duplicate key error's `keyValue`: its keys are the index's dotted paths. */
function maskKeyValue(value: unknown, plan: MongoMaskPlan, node: TaintNode | undefined, ctx: ValueContext, label: (taint: Taint) => void): unknown {
  if (!isDocument(value)) return detect(value, ctx);
  const reply = plan.reply;
  const known = reply.kind === "explain" || reply.kind === "write" ? reply.fields : reply.kind === "value" ? reply.node : reply.kind === "cursor" || reply.kind === "getMore" ? node : undefined;
  const out: BsonDocument = {};
  for (const key in value) {
    const field = subtree(known, splitPath(key));
    // Without the namespace's fields (a bulkWrite result), a sensitive namespace masks every key value.
    const taint = collapse(field) ?? (plan.sensitiveNamespace && !isTainted(known) ? { sources: new Set<string>(), style: "redact" as const, opaque: false, uncertain: true } : undefined);
    if (taint !== undefined) label(taint);
    out[key] = taint === undefined ? detect(value[key], ctx) : maskWhole(value[key], taint, ctx);
  }
  return out;
}

/** An error message: withheld when the command reads sensitive fields, else scrubbed. */
function scrubMessage(message: string, plan: MongoMaskPlan, ctx: ValueContext): string {
  if (plan.withholdErrors) return WITHHELD_MESSAGE;
  const known = replaceKnown(message, plan.knownValues);
  return detectText(known, ctx) ?? known;
}

function replaceKnown(text: string, known: readonly string[]): string {
  let out = text;
  for (const value of known) if (out.includes(value)) out = out.split(value).join(REDACTED_TEXT);
  return out;
}

function scrubValue(value: unknown, plan: MongoMaskPlan, ctx: ValueContext, depth = 0): unknown {
  if (depth > 100) return REDACTED_TEXT;
  if (typeof value === "string") {
    const known = replaceKnown(value, plan.knownValues);
    return detectText(known, ctx) ?? known;
  }
  if (Array.isArray(value)) return value.map((item) => scrubValue(item, plan, ctx, depth + 1));
  if (isDocument(value)) {
    const out: BsonDocument = {};
    for (const key in value) out[key] = scrubValue(value[key], plan, ctx, depth + 1);
    return out;
  }
  return value;
}

/**
 * Explain output: the parsed query, index bounds and the echoed command name the fields they
 * constrain, with the values the command gave. A field named by a sensitive path gets its value
 * masked whole; every string loses the command's known values and goes through the detectors.
 */
function scrubExplain(value: unknown, fields: TaintNode | undefined, plan: MongoMaskPlan, ctx: ValueContext, depth: number): unknown {
  if (depth > 100) return REDACTED_TEXT;
  if (typeof value === "string") {
    const known = replaceKnown(value, plan.knownValues);
    return detectText(known, ctx) ?? known;
  }
  if (Array.isArray(value)) return value.map((item) => scrubExplain(item, fields, plan, ctx, depth + 1));
  if (!isDocument(value)) return value;
  const out: BsonDocument = {};
  for (const key in value) {
    const field = key.startsWith("$") ? undefined : subtree(fields, splitPath(key));
    const taint = collapse(field);
    if (taint !== undefined) {
      ctx.events.masked([...taint.sources].join(", ") || "(uncertain)");
      out[key] = maskWhole(value[key], { ...taint, opaque: false }, ctx);
    } else out[key] = scrubExplain(value[key], fields, plan, ctx, depth + 1);
  }
  return out;
}
