import type { Document } from "bson";
import { maskStyles, type MaskStyle } from "../styles.js";
import { setPath, splitPath, union, type Taint, type TaintNode } from "./taint.js";

/** A declared sensitive field of a MongoDB connection and how to mask it. */
export interface MongoSensitiveField {
  readonly database: string;
  readonly collection: string;
  /** A dotted path inside the documents (`email`, `address.street`); arrays on the way apply to each element (`cards.number`). */
  readonly path: string;
  readonly style: MaskStyle;
  readonly keep?: number;
}

/** A view of the database (what `listCollections` reports as `type: "view"`): masking follows its pipeline. */
export interface MongoView {
  readonly database: string;
  readonly name: string;
  readonly viewOn: string;
  readonly pipeline: readonly Document[];
}

/** What masking knows of a MongoDB connection: the sensitive fields by namespace, and the views. */
export interface MongoMaskCatalog {
  /** The node of each namespace's documents (`db.collection`), for namespaces with sensitive fields. */
  readonly collections: ReadonlyMap<string, TaintNode>;
  readonly views: ReadonlyMap<string, MongoView>;
  /** Any sensitive field at all: without one, nothing is masked but by the detectors. */
  readonly anySensitive: boolean;
}

/**
 * Splits `database.collection.path` (gateway.yaml's `column` for a mongodb connection): the
 * database up to the first dot, the collection up to the second, the rest is the field path. A
 * collection whose name has a dot cannot be named this way; declare it as an object.
 *
 * @throws TypeError when there are fewer than three parts
 */
export function parseMongoField(spec: string): { database: string; collection: string; path: string } {
  const parts = spec.split(".");
  if (parts.length < 3 || parts.some((part) => part.length === 0)) throw new TypeError(`spec: expected \`database.collection.field\`, got \`${spec}\``);
  return { database: parts[0] as string, collection: parts[1] as string, path: parts.slice(2).join(".") };
}

/**
 * The views among a `listCollections` reply's documents (`type: "view"`, `options.viewOn` and
 * `options.pipeline`), for {@link buildMongoMaskCatalog}. The session reads them through the agent
 * for every database it masks, and again after a plan's `refreshViews`.
 */
export function viewsFromListCollections(database: string, documents: readonly Document[]): MongoView[] {
  const out: MongoView[] = [];
  for (const document of documents) {
    const options = document.options as Document | undefined;
    if (document.type !== "view" || typeof document.name !== "string" || typeof options?.viewOn !== "string") continue;
    out.push({ database, name: document.name, viewOn: options.viewOn, pipeline: Array.isArray(options.pipeline) ? (options.pipeline as Document[]) : [] });
  }
  return out;
}

/**
 * Builds the masking catalog from the declared fields and the database's views. The views must
 * be all of them: a view masking does not know is read as a collection without sensitive fields.
 *
 * @throws TypeError on an unknown style or an empty path
 */
export function buildMongoMaskCatalog(fields: readonly MongoSensitiveField[], views: readonly MongoView[] = []): MongoMaskCatalog {
  const collections = new Map<string, TaintNode>();
  for (const field of fields) {
    if (!(maskStyles as readonly string[]).includes(field.style)) throw new TypeError(`fields: unknown mask style \`${String(field.style)}\``);
    const path = splitPath(field.path);
    if (path.length === 0 || path.some((part) => part.length === 0)) throw new TypeError(`fields: empty path in \`${field.database}.${field.collection}\``);
    const namespace = `${field.database}.${field.collection}`;
    const label = `${namespace}.${path.join(".")}`;
    const taint: { -readonly [K in keyof Taint]: Taint[K] } = { sources: new Set([label]), style: field.style, opaque: false, uncertain: false };
    if (field.keep !== undefined) taint.keep = field.keep;
    const node = setPath(undefined, path, { taint });
    collections.set(namespace, union(collections.get(namespace), node) as TaintNode);
  }
  return {
    collections,
    views: new Map(views.map((view) => [`${view.database}.${view.name}`, view])),
    anySensitive: collections.size > 0,
  };
}
