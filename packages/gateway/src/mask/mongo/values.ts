/**
 * Masked BSON values that keep their BSON type, so a driver or an ODM that expects a number, a
 * date or an ObjectId still gets one, following what the PostgreSQL value layer does for typed
 * columns: strings get the style's text; numbers become 0 (a keyed integer for `pseudonym`);
 * dates 2000-01-01; ObjectIds and UUIDs all zeros (keyed for `pseudonym`); booleans false;
 * binaries empty; the `null` style is BSON null for every type.
 */
import { Binary, BSONRegExp, BSONSymbol, Code, DBRef, Decimal128, Double, EJSON, Int32, Long, ObjectId, Timestamp } from "bson";
import type { Detectors } from "../detectors.js";
import { maskText, pseudonymDigest, pseudonymToken, REDACTED_TEXT } from "../styles.js";
import { isDocument } from "../../inspect/mongo/documents.js";
import { child, collapse, isTainted, type Taint, type TaintNode } from "./taint.js";

/** Counters the session turns into metrics (the PostgreSQL masker's MaskEvents). */
export interface MongoMaskEvents {
  masked(label: string): void;
  detected(detector: string): void;
  uncertain(): void;
}

/** What masking a value needs besides the value. */
export interface ValueContext {
  readonly key: Uint8Array | undefined;
  readonly detectors: Detectors | undefined;
  readonly events: MongoMaskEvents;
}

const MASKED_DATE = Date.UTC(2000, 0, 1);
const NIL_OBJECT_ID = "000000000000000000000000";

function bsonType(value: object): string | undefined {
  const type = (value as { _bsontype?: unknown })._bsontype;
  return typeof type === "string" ? type : undefined;
}

function digestOf(ctx: ValueContext, text: string | Uint8Array): Buffer {
  return pseudonymDigest(ctx.key as Uint8Array, typeof text === "string" ? Buffer.from(text, "utf8") : text);
}

/** A non-negative integer below `bound` from the HMAC of a value's canonical text. */
function keyedInteger(ctx: ValueContext, canonical: string, bound: bigint): bigint {
  return digestOf(ctx, canonical).readBigUInt64BE(0) % bound;
}

function textOf(value: string, taint: Taint, ctx: ValueContext): string {
  if (taint.style === "pseudonym" && ctx.key === undefined) return REDACTED_TEXT;
  const options = { style: taint.style, ...(taint.keep === undefined ? {} : { keep: taint.keep }), ...(ctx.key === undefined ? {} : { key: ctx.key }) };
  return maskText(value, options) ?? REDACTED_TEXT;
}

/** The canonical text of a number, equal for equal values whatever their BSON type. */
function numberText(value: number | bigint): string {
  return typeof value === "bigint" ? value.toString() : Number.isInteger(value) ? BigInt(value).toString() : String(value);
}

/**
 * Masks one scalar value (or a whole document or array, leaf by leaf, keys kept) under a taint,
 * keeping its BSON type. An opaque taint replaces documents and arrays whole (their keys may be
 * values), by the style's text of their Extended JSON.
 */
export function maskWhole(value: unknown, taint: Taint, ctx: ValueContext): unknown {
  if (value === null || value === undefined) return value;
  if (taint.style === "null") return null;
  if (Array.isArray(value)) {
    if (taint.opaque) return opaqueText(value, taint, ctx);
    return value.map((item) => maskWhole(item, taint, ctx));
  }
  if (isDocument(value)) {
    if (taint.opaque) return opaqueText(value, taint, ctx);
    const out: Record<string, unknown> = {};
    for (const key in value) out[key] = maskWhole(value[key], taint, ctx);
    return out;
  }
  return maskScalar(value, taint, ctx);
}

function opaqueText(value: unknown, taint: Taint, ctx: ValueContext): string {
  const canonical = EJSON.stringify(value, { relaxed: false });
  return textOf(canonical, taint.style === "partial" ? { ...taint, style: "redact" } : taint, ctx);
}

function maskScalar(value: unknown, taint: Taint, ctx: ValueContext): unknown {
  const pseudonym = taint.style === "pseudonym" && ctx.key !== undefined;
  switch (typeof value) {
    case "string":
      return textOf(value, taint, ctx);
    case "number":
      if (pseudonym && Number.isInteger(value)) return Number(keyedInteger(ctx, numberText(value), 2n ** 31n));
      return 0;
    case "bigint":
      return pseudonym ? keyedInteger(ctx, numberText(value), 2n ** 63n) : 0n;
    case "boolean":
      return false;
    case "object":
      break;
    default:
      return null;
  }
  const object = value as object;
  if (object instanceof Date) return new Date(MASKED_DATE);
  if (object instanceof RegExp) return new RegExp(escapeRegExp(textOf(object.source, taint, ctx)));
  if (ArrayBuffer.isView(object)) return pseudonym ? Buffer.from(pseudonymToken(digestOf(ctx, new Uint8Array(object.buffer, object.byteOffset, object.byteLength))), "ascii") : Buffer.alloc(0);
  switch (bsonType(object)) {
    case "Int32": {
      const n = (object as Int32).value;
      return new Int32(pseudonym ? Number(keyedInteger(ctx, numberText(n), 2n ** 31n)) : 0);
    }
    case "Double": {
      const n = (object as Double).value;
      return new Double(pseudonym && Number.isInteger(n) ? Number(keyedInteger(ctx, numberText(n), 2n ** 31n)) : 0);
    }
    case "Long":
      return pseudonym ? Long.fromBigInt(keyedInteger(ctx, (object as Long).toString(), 2n ** 63n)) : Long.fromNumber(0);
    case "Decimal128":
      return Decimal128.fromString(pseudonym ? keyedInteger(ctx, (object as Decimal128).toString(), 10n ** 15n).toString() : "0");
    case "ObjectId":
      return pseudonym ? new ObjectId(digestOf(ctx, (object as ObjectId).toHexString()).subarray(0, 12)) : new ObjectId(NIL_OBJECT_ID);
    case "Binary": {
      const binary = object as Binary;
      if (binary.sub_type === Binary.SUBTYPE_UUID) {
        if (!pseudonym) return new Binary(new Uint8Array(16), Binary.SUBTYPE_UUID);
        const bytes = Buffer.from(digestOf(ctx, binary.buffer.subarray(0, binary.position)).subarray(0, 16));
        bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x80; // version 8: custom (RFC 9562)
        bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
        return new Binary(bytes, Binary.SUBTYPE_UUID);
      }
      const bytes = pseudonym ? Buffer.from(pseudonymToken(digestOf(ctx, binary.buffer.subarray(0, binary.position))), "ascii") : new Uint8Array(0);
      return new Binary(bytes, binary.sub_type);
    }
    case "Timestamp":
      return new Timestamp({ t: 0, i: 0 });
    case "BSONRegExp": {
      const regexp = object as BSONRegExp;
      return new BSONRegExp(escapeRegExp(textOf(regexp.pattern, taint, ctx)), regexp.options);
    }
    case "Code":
      return new Code(textOf(String((object as Code).code), taint, ctx));
    case "BSONSymbol":
      return new BSONSymbol(textOf((object as BSONSymbol).value, taint, ctx));
    case "DBRef": {
      const ref = object as DBRef;
      return new DBRef(ref.collection, maskScalar(ref.oid, taint, ctx) as ObjectId, ref.db);
    }
    case "MinKey":
    case "MaxKey":
      return object;
    default:
      // Any other object: its Extended JSON, masked as text.
      return textOf(EJSON.stringify(object, { relaxed: false }), taint, ctx);
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Masks a value as a node says: whole under a taint; field by field in a document; element by
 * element in an array (arrays are transparent). Values the node leaves clean still go through
 * the content detectors.
 */
export function maskWithNode(value: unknown, node: TaintNode | undefined, ctx: ValueContext, label?: (taint: Taint) => void): unknown {
  if (node === undefined || !isTainted(node)) return detect(value, ctx);
  if (node.taint !== undefined) {
    if (value === null || value === undefined) return value;
    label?.(node.taint);
    return maskWhole(value, node.taint, ctx);
  }
  if (Array.isArray(value)) return value.map((item) => maskWithNode(item, node, ctx, label));
  if (isDocument(value)) {
    const out: Record<string, unknown> = {};
    for (const key in value) {
      const field = child(node, key);
      out[isTainted(field) ? key : detectKey(key, out, ctx)] = maskWithNode(value[key], field, ctx, label);
    }
    return out;
  }
  // A scalar where lineage expected a document (`address` a string, `address.street` declared): fail closed.
  const taint = collapse(node);
  if (taint === undefined || value === null || value === undefined) return detect(value, ctx);
  label?.(taint);
  return maskWhole(value, taint, ctx);
}

/**
 * Masks a document that must stay a document (a cursor batch element, a findAndModify value):
 * under a taint whose keys may carry values, its keys are replaced too (`[masked]`,
 * `[masked] (2)`...) rather than the whole document by a string.
 */
export function maskDocument(value: unknown, node: TaintNode | undefined, ctx: ValueContext, label?: (taint: Taint) => void): unknown {
  const taint = node?.taint;
  if (taint === undefined || !taint.opaque || !isDocument(value)) return maskWithNode(value, node, ctx, label);
  label?.(taint);
  const out: Record<string, unknown> = {};
  let n = 1;
  for (const key in value) {
    out[n === 1 ? REDACTED_TEXT : `${REDACTED_TEXT} (${n})`] = maskWhole(value[key], taint, ctx);
    n++;
  }
  return out;
}

/** The content detectors over every string in a value (keys included); the same value when nothing is found. */
export function detect(value: unknown, ctx: ValueContext): unknown {
  if (ctx.detectors === undefined) return value;
  if (typeof value === "string") return detectText(value, ctx) ?? value;
  if (Array.isArray(value)) {
    let changed = false;
    const out = value.map((item) => {
      const next = detect(item, ctx);
      if (next !== item) changed = true;
      return next;
    });
    return changed ? out : value;
  }
  if (isDocument(value)) {
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const key in value) {
      const item = value[key];
      const next = detect(item, ctx);
      const name = detectKey(key, out, ctx);
      if (next !== item || name !== key) changed = true;
      out[name] = next;
    }
    return changed ? out : value;
  }
  if (typeof value === "object" && value !== null) {
    const type = bsonType(value);
    if (type === "Code") {
      const text = detectText(String((value as Code).code), ctx);
      return text === undefined ? value : new Code(text);
    }
    if (type === "BSONSymbol") {
      const text = detectText((value as BSONSymbol).value, ctx);
      return text === undefined ? value : new BSONSymbol(text);
    }
  }
  return value;
}

/** The text with every detector hit replaced; undefined when nothing was found. */
export function detectText(text: string, ctx: ValueContext): string | undefined {
  const detectors = ctx.detectors;
  if (detectors === undefined || text.length === 0) return undefined;
  const result = detectors.redact(text, (hit) => `[masked:${hit.detector}]`);
  if (result.hits.length === 0) return undefined;
  for (const hit of result.hits) ctx.events.detected(hit.detector);
  return result.text;
}

/** A key through the detectors, made unique among the keys already written. */
function detectKey(key: string, written: Record<string, unknown>, ctx: ValueContext): string {
  const text = detectText(key, ctx);
  if (text === undefined) return key;
  let name = text;
  for (let n = 2; Object.prototype.hasOwnProperty.call(written, name); n++) name = `${text} (${n})`;
  return name;
}
