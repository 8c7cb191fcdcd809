import type { Document } from "bson";
import { CommandError, fail } from "../errors.js";

/** The collection named by a command's first field (`{ find: "orders" }`). */
export function collectionName(command: Document, field: string): string {
  const value = command[field];
  if (typeof value !== "string") fail("InvalidNamespace", `collection name has invalid type ${bsonTypeName(value)}`);
  if (value === "") fail("InvalidNamespace", "Invalid namespace specified");
  return value;
}

/** An optional integer field; TypeMismatch when it is something else. */
export function integer(command: Document, field: string): number | undefined {
  const value = command[field];
  if (value === undefined || value === null) return undefined;
  const number = typeof value === "number" ? value : typeof value === "bigint" ? Number(value) : typeof (value as { toNumber?: unknown }).toNumber === "function" ? (value as { toNumber(): number }).toNumber() : Number.NaN;
  if (!Number.isFinite(number)) fail("TypeMismatch", `BSON field '${field}' is the wrong type '${bsonTypeName(value)}', expected types '[long, int, decimal, double]'`);
  return Math.trunc(number);
}

/** An optional document field; TypeMismatch when it is something else. */
export function documentField(command: Document, field: string): Document | undefined {
  const value = command[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) fail("TypeMismatch", `BSON field '${field}' is the wrong type '${bsonTypeName(value)}', expected type 'object'`);
  return value as Document;
}

/** A required array field. */
export function arrayField(command: Document, field: string): unknown[] {
  const value = command[field];
  if (!Array.isArray(value)) fail(value === undefined ? "NoSuchKey" : "TypeMismatch", `BSON field '${field}' is ${value === undefined ? "missing but a required field" : `the wrong type '${bsonTypeName(value)}', expected type 'array'`}`);
  return value;
}

/** The BSON type name of a deserialized value, as errors name it. */
export function bsonTypeName(value: unknown): string {
  if (value === undefined) return "missing";
  if (value === null) return "null";
  if (typeof value === "string") return "string";
  if (typeof value === "number") return Number.isInteger(value) ? "int" : "double";
  if (typeof value === "boolean") return "bool";
  if (Array.isArray(value)) return "array";
  if (value instanceof Date) return "date";
  const bsontype = (value as { _bsontype?: string })._bsontype;
  return bsontype === undefined ? "object" : bsontype.toLowerCase();
}

/** Fields every command may carry that are not options of the command itself. */
const GENERIC_FIELDS = new Set([
  "$db",
  "lsid",
  "txnNumber",
  "autocommit",
  "startTransaction",
  "$clusterTime",
  "$readPreference",
  "readConcern",
  "writeConcern",
  "comment",
  "maxTimeMS",
  "apiVersion",
  "apiStrict",
  "apiDeprecationErrors",
]);

/** A command's own options: every field but its name and the generic ones. */
export function commandOptions(command: Document, name: string): Document {
  const out: Document = {};
  for (const [key, value] of Object.entries(command)) if (key !== name && !GENERIC_FIELDS.has(key)) out[key] = value;
  return out;
}

/** A write error entry for writeErrors. */
export function writeError(index: number, error: unknown): Document {
  const failure = error instanceof CommandError ? error : new CommandError("InternalError", error instanceof Error ? error.message : String(error));
  const { errorLabels: _labels, ...extra } = failure.extra;
  return { index, code: failure.code, errmsg: failure.message, ...extra };
}
