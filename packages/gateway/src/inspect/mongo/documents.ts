/**
 * Helpers over decoded BSON (what the `bson` package's deserialize returns, with or without
 * promoted values): telling plain documents from BSON scalars, and reading namespaces.
 */

/** A decoded BSON document: a plain object whose field order is the document's. */
export type BsonDocument = Record<string, unknown>;

/**
 * True for a plain (sub)document: an object that is not an array, a Date, a RegExp, a Buffer or
 * typed array, nor a `bson` class instance (ObjectId, Long, Binary, Decimal128...), which all
 * carry `_bsontype`.
 */
export function isDocument(value: unknown): value is BsonDocument {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  if (value instanceof Date || value instanceof RegExp || ArrayBuffer.isView(value)) return false;
  return !("_bsontype" in value);
}

/** The command name: the first field of the command document, as the server reads it. */
export function commandNameOf(command: BsonDocument): string | undefined {
  for (const key in command) return key;
  return undefined;
}

/** A namespace: a database and a collection (`*` for every collection of the database). */
export interface Namespace {
  readonly database: string;
  readonly collection: string;
}

/** `db.collection` of a namespace. */
export function namespaceText(namespace: Namespace): string {
  return `${namespace.database}.${namespace.collection}`;
}

/**
 * Splits a full namespace `db.collection` at its first dot (database names cannot contain a dot,
 * collection names can).
 */
export function splitNamespace(text: string): Namespace | undefined {
  const dot = text.indexOf(".");
  if (dot <= 0 || dot === text.length - 1) return undefined;
  return { database: text.slice(0, dot), collection: text.slice(dot + 1) };
}

/** True when a value is a truthy BSON boolean-ish: true, or a non-zero number. */
export function isTruthyFlag(value: unknown): boolean {
  if (value === true) return true;
  if (typeof value === "number") return value !== 0;
  if (typeof value === "bigint") return value !== 0n;
  if (typeof value === "object" && value !== null && "_bsontype" in value) {
    const type = (value as { _bsontype: unknown })._bsontype;
    if (type === "Int32" || type === "Double" || type === "Long") return Number((value as { valueOf(): unknown }).valueOf()) !== 0;
  }
  return false;
}

/** The numeric value of a JS number or a bson Int32/Double/Long, or undefined. */
export function numberOf(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  if (typeof value === "object" && value !== null && "_bsontype" in value) {
    const type = (value as { _bsontype: unknown })._bsontype;
    if (type === "Int32" || type === "Double") return Number((value as { valueOf(): unknown }).valueOf());
    if (type === "Long") return (value as unknown as { toNumber(): number }).toNumber();
  }
  return undefined;
}
