import { EJSON, ObjectId, UUID, type Document } from "bson";
import { Query } from "mingo";
import { resolve } from "mingo/util";
import { CommandError, fail } from "./errors.js";

/** An index as listIndexes reports it. Only unique (with sparse and partialFilterExpression) changes behaviour. */
export interface IndexSpec {
  readonly v: number;
  readonly key: Document;
  readonly name: string;
  readonly unique?: boolean;
  readonly sparse?: boolean;
  readonly partialFilterExpression?: Document;
  readonly [option: string]: unknown;
}

const ID_INDEX: IndexSpec = { v: 2, key: { _id: 1 }, name: "_id_" };

/** A unique index's entries: key string to the document that holds it. */
interface UniqueEntries {
  readonly spec: IndexSpec;
  readonly fields: readonly string[];
  readonly filter: Query | undefined;
  readonly entries: Map<string, Document>;
}

/**
 * One collection in memory. Stored documents are never mutated: an update stores a new object in
 * place of the old, so a cursor's batch or a transaction's copy that still holds the old one is
 * unaffected.
 */
export class Collection {
  readonly db: string;
  name: string;
  readonly uuid: UUID;
  options: Document;
  documents: Document[] = [];
  indexes: IndexSpec[] = [ID_INDEX];
  /** Counts writes; a transaction compares it at commit to detect a conflicting write. */
  version = 0;
  #unique: UniqueEntries[] = [uniqueEntries(ID_INDEX)];

  constructor(db: string, name: string, options: Document = {}, uuid: UUID = new UUID()) {
    this.db = db;
    this.name = name;
    this.options = options;
    this.uuid = uuid;
  }

  get namespace(): string {
    return `${this.db}.${this.name}`;
  }

  /** The document whose _id equals `id`. */
  byId(id: unknown): Document | undefined {
    return this.#unique[0]?.entries.get(keyOf([id]));
  }

  /** Adds a document (that has an _id); throws a DuplicateKey CommandError, changing nothing, on a unique index conflict. */
  insert(document: Document): void {
    const keys = this.#keysFor(document, undefined);
    for (const [index, key] of keys) index.entries.set(key, document);
    this.documents.push(document);
    this.version++;
  }

  /** Puts `next` in place of `previous`, checking unique indexes; `at` is previous's position when known. */
  replace(previous: Document, next: Document, at?: number): void {
    const position = at !== undefined && this.documents[at] === previous ? at : this.documents.indexOf(previous);
    if (position === -1) throw new Error("replace: document is not in the collection");
    const keys = this.#keysFor(next, previous);
    this.#unindex(previous);
    for (const [index, key] of keys) index.entries.set(key, next);
    this.documents[position] = next;
    this.version++;
  }

  /** Removes the given documents. */
  remove(documents: ReadonlySet<Document>): void {
    if (documents.size === 0) return;
    for (const document of documents) this.#unindex(document);
    this.documents = this.documents.filter((document) => !documents.has(document));
    this.version++;
  }

  /** Adds an index; a unique one is built first and refused (DuplicateKey) when documents already conflict. */
  addIndex(spec: IndexSpec): void {
    if (spec.unique === true) {
      const index = uniqueEntries(spec);
      for (const document of this.documents) {
        const key = indexKey(index, document);
        if (key === undefined) continue;
        const holder = index.entries.get(key);
        if (holder !== undefined) throw duplicateKey(this, index, document);
        index.entries.set(key, document);
      }
      this.#unique.push(index);
    }
    this.indexes.push(spec);
    this.version++;
  }

  /** Removes the index named `name`. */
  dropIndex(name: string): void {
    this.indexes = this.indexes.filter((index) => index.name !== name);
    this.#unique = this.#unique.filter((index) => index.spec.name !== name);
    this.version++;
  }

  /** A copy with its own document list and indexes, sharing the (immutable) documents. */
  clone(): Collection {
    const copy = new Collection(this.db, this.name, this.options, this.uuid);
    copy.assign(this);
    copy.version = this.version;
    return copy;
  }

  /** Takes the state of `other` (a committed transaction's copy). */
  assign(other: Collection): void {
    this.documents = [...other.documents];
    this.indexes = [...other.indexes];
    this.#unique = other.#unique.map((index) => ({ ...index, entries: new Map(index.entries) }));
    this.options = other.options;
    this.version++;
  }

  /** Unique keys of `document`, checked against every other document than `except`. */
  #keysFor(document: Document, except: Document | undefined): [UniqueEntries, string][] {
    const keys: [UniqueEntries, string][] = [];
    for (const index of this.#unique) {
      const key = indexKey(index, document);
      if (key === undefined) continue;
      const holder = index.entries.get(key);
      if (holder !== undefined && holder !== except) throw duplicateKey(this, index, document);
      keys.push([index, key]);
    }
    return keys;
  }

  #unindex(document: Document): void {
    for (const index of this.#unique) {
      const key = indexKey(index, document);
      if (key !== undefined && index.entries.get(key) === document) index.entries.delete(key);
    }
  }
}

function uniqueEntries(spec: IndexSpec): UniqueEntries {
  const filter = spec.partialFilterExpression === undefined ? undefined : new Query(spec.partialFilterExpression, {});
  return { spec, fields: Object.keys(spec.key), filter, entries: new Map() };
}

/** The key of `document` in a unique index, or undefined when the index does not cover it (sparse, partial). */
function indexKey(index: UniqueEntries, document: Document): string | undefined {
  const values = index.fields.map((field) => resolve(document, field) ?? null);
  if (index.spec.sparse === true && index.fields.every((field) => resolve(document, field) === undefined)) return undefined;
  if (index.filter !== undefined && !index.filter.test(document)) return undefined;
  return keyOf(values);
}

/** A string that is equal for equal BSON values (1 and 1.0 alike, as the server compares them). */
export function keyOf(values: readonly unknown[]): string {
  if (values.length === 1) {
    const [value] = values;
    if (typeof value === "string") return `s${value}`;
    if (typeof value === "number") return `n${value}`;
    if (value instanceof ObjectId) return `o${value.toHexString()}`;
  }
  return `e${EJSON.stringify(values as Document[], { relaxed: true })}`;
}

function duplicateKey(collection: Collection, index: UniqueEntries, document: Document): CommandError {
  const keyValue: Document = {};
  for (const field of index.fields) keyValue[field] = resolve(document, field) ?? null;
  const shown = index.fields.map((field) => `${field}: ${shellValue(keyValue[field])}`).join(", ");
  return new CommandError("DuplicateKey", `E11000 duplicate key error collection: ${collection.namespace} index: ${index.spec.name} dup key: { ${shown} }`, {
    keyPattern: index.spec.key,
    keyValue,
  });
}

/** A value as the server's messages print it (mongo shell style). */
export function shellValue(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (value instanceof ObjectId) return `ObjectId('${value.toHexString()}')`;
  if (value instanceof Date) return `new Date(${value.getTime()})`;
  return EJSON.stringify(value as Document, { relaxed: true });
}

/** A database: its collections by name. */
export class Database {
  readonly name: string;
  readonly collections = new Map<string, Collection>();

  constructor(name: string) {
    this.name = name;
  }
}

/** Where commands read and write: the server's storage, or a transaction's view of it. */
export interface Store {
  collection(db: string, name: string): Collection | undefined;
  /** The collection, created (implicitly, as inserts do) when it does not exist. */
  ensureCollection(db: string, name: string): Collection;
}

/** Every database of the server, in memory. */
export class Storage implements Store {
  readonly databases = new Map<string, Database>();

  collection(db: string, name: string): Collection | undefined {
    return this.databases.get(db)?.collections.get(name);
  }

  ensureCollection(db: string, name: string): Collection {
    return this.collection(db, name) ?? this.createCollection(db, name);
  }

  /** Creates a collection; NamespaceExists when there is one. */
  createCollection(db: string, name: string, options: Document = {}): Collection {
    checkNamespace(db, name);
    let database = this.databases.get(db);
    if (database === undefined) {
      database = new Database(db);
      this.databases.set(db, database);
    }
    if (database.collections.has(name)) fail("NamespaceExists", `Collection ${db}.${name} already exists.`);
    const collection = new Collection(db, name, options);
    database.collections.set(name, collection);
    return collection;
  }

  /** Adds a collection made elsewhere (a transaction's), or NamespaceExists. */
  adopt(collection: Collection): void {
    if (this.collection(collection.db, collection.name) !== undefined) fail("NamespaceExists", `Collection ${collection.namespace} already exists.`);
    let database = this.databases.get(collection.db);
    if (database === undefined) {
      database = new Database(collection.db);
      this.databases.set(collection.db, database);
    }
    database.collections.set(collection.name, collection);
  }

  /** Drops a collection; its database goes when it was the last. Returns the dropped collection. */
  dropCollection(db: string, name: string): Collection | undefined {
    const database = this.databases.get(db);
    const collection = database?.collections.get(name);
    if (database === undefined || collection === undefined) return undefined;
    database.collections.delete(name);
    if (database.collections.size === 0) this.databases.delete(db);
    return collection;
  }
}

/** Refuses names MongoDB refuses. https://www.mongodb.com/docs/manual/reference/limits/#naming-restrictions */
export function checkNamespace(db: string, collection: string): void {
  if (db === "" || /[/\\. "$\0]/.test(db)) fail("InvalidNamespace", `Invalid database name: '${db}'`);
  if (collection === "" || collection.includes("\0") || collection.startsWith("$") || collection.startsWith(".")) {
    fail("InvalidNamespace", `Invalid namespace specified '${db}.${collection}'`);
  }
}

/** A transaction's view: collections are copied on first use, and written back together at commit. */
export class TransactionStore implements Store {
  readonly #base: Storage;
  readonly #copies = new Map<string, { copy: Collection; base: Collection | undefined; baseVersion: number; copyVersion: number }>();

  constructor(base: Storage) {
    this.#base = base;
  }

  collection(db: string, name: string): Collection | undefined {
    const namespace = `${db}.${name}`;
    const held = this.#copies.get(namespace);
    if (held !== undefined) return held.copy;
    const base = this.#base.collection(db, name);
    if (base === undefined) return undefined;
    const copy = base.clone();
    this.#copies.set(namespace, { copy, base, baseVersion: base.version, copyVersion: copy.version });
    return copy;
  }

  ensureCollection(db: string, name: string): Collection {
    const existing = this.collection(db, name);
    if (existing !== undefined) return existing;
    checkNamespace(db, name);
    const copy = new Collection(db, name);
    this.#copies.set(`${db}.${name}`, { copy, base: undefined, baseVersion: 0, copyVersion: -1 });
    return copy;
  }

  /** Writes every changed collection back, or changes nothing and throws WriteConflict when another write got there first. */
  commit(): void {
    const changed = [...this.#copies.values()].filter((held) => held.copy.version !== held.copyVersion);
    for (const held of changed) {
      const current = this.#base.collection(held.copy.db, held.copy.name);
      if (current !== held.base || (current !== undefined && current.version !== held.baseVersion)) {
        fail("WriteConflict", "Write conflict during plan execution and yielding is disabled. :: Please retry your operation or multi-document transaction.", {
          errorLabels: ["TransientTransactionError"],
        });
      }
    }
    for (const held of changed) {
      if (held.base === undefined) this.#base.adopt(held.copy);
      else held.base.assign(held.copy);
    }
  }
}
