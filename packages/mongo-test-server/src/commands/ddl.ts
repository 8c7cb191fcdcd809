import type { Document } from "bson";
import type { CommandContext, CommandSpec } from "../context.js";
import { ArraySource } from "../cursors.js";
import { fail } from "../errors.js";
import { isPlainObject, select } from "../query.js";
import { Collection, checkNamespace, keyOf, shellValue, type IndexSpec } from "../storage.js";
import { arrayField, collectionName, commandOptions, documentField, integer } from "./util.js";

/**
 * Databases, collections and indexes.
 * https://www.mongodb.com/docs/manual/reference/command/nav-administration/
 */

function create(context: CommandContext, command: Document): Document {
  const name = collectionName(command, "create");
  if (command.viewOn !== undefined) fail("CommandNotSupported", "views are not supported by the stand-in");
  checkNamespace(context.db, name);
  if (context.transaction !== undefined) {
    if (context.store.collection(context.db, name) !== undefined) fail("NamespaceExists", `Collection ${context.db}.${name} already exists.`);
    context.store.ensureCollection(context.db, name).options = commandOptions(command, "create");
  } else {
    context.server.storage.createCollection(context.db, name, commandOptions(command, "create"));
  }
  context.emit({ operationType: "create", db: context.db, coll: name });
  return { ok: 1 };
}

function drop(context: CommandContext, command: Document): Document {
  const name = collectionName(command, "drop");
  const dropped = context.server.storage.dropCollection(context.db, name);
  // Since MongoDB 7.0 dropping a collection that does not exist succeeds.
  if (dropped === undefined) return { ok: 1 };
  context.emit({ operationType: "drop", db: context.db, coll: name });
  return { nIndexesWas: dropped.indexes.length, ns: dropped.namespace, ok: 1 };
}

function dropDatabase(context: CommandContext): Document {
  const database = context.server.storage.databases.get(context.db);
  if (database !== undefined) {
    for (const name of [...database.collections.keys()]) {
      context.server.storage.dropCollection(context.db, name);
      context.emit({ operationType: "drop", db: context.db, coll: name });
    }
    context.server.storage.databases.delete(context.db);
    context.emit({ operationType: "dropDatabase", db: context.db });
  }
  return { dropped: context.db, ok: 1 };
}

function createIndexes(context: CommandContext, command: Document): Document {
  const name = collectionName(command, "createIndexes");
  const requested = arrayField(command, "indexes");
  if (requested.length === 0) fail("BadValue", "Must specify at least one index to create");
  let collection = context.store.collection(context.db, name);
  const created = collection === undefined;
  collection ??= context.store.ensureCollection(context.db, name);
  const before = collection.indexes.length;
  for (const raw of requested) {
    if (!isPlainObject(raw)) fail("TypeMismatch", "The field 'indexes' must be an array of objects");
    const key = documentField(raw, "key");
    if (key === undefined || Object.keys(key).length === 0) fail("BadValue", "Index key pattern must be a non-empty object");
    const indexName = raw.name;
    if (typeof indexName !== "string" || indexName === "") fail("BadValue", "The index name must be a non-empty string");
    const { key: _key, name: _name, v: _v, ...options } = raw;
    const spec: IndexSpec = { v: 2, key, name: indexName, ...options };
    const sameName = collection.indexes.find((index) => index.name === indexName);
    if (sameName !== undefined) {
      if (keyOf([sameName.key]) === keyOf([key]) && Boolean(sameName.unique) === Boolean(spec.unique)) continue;
      fail("IndexKeySpecsConflict", `An existing index has the same name as the requested index. Requested index: ${shellValue(spec)}, existing index: ${shellValue(sameName)}`);
    }
    const sameKey = collection.indexes.find((index) => keyOf([index.key]) === keyOf([key]));
    if (sameKey !== undefined) fail("IndexOptionsConflict", `Index already exists with a different name: ${sameKey.name}`);
    collection.addIndex(spec);
    context.emit({ operationType: "createIndexes", db: context.db, coll: name });
  }
  const reply: Document = { numIndexesBefore: before, numIndexesAfter: collection.indexes.length, createdCollectionAutomatically: created };
  if (before === collection.indexes.length) reply.note = "all indexes already exist";
  reply.ok = 1;
  return reply;
}

function dropIndexes(context: CommandContext, command: Document): Document {
  const field = Object.hasOwn(command, "dropIndexes") ? "dropIndexes" : "deleteIndexes";
  const name = collectionName(command, field);
  const collection = context.store.collection(context.db, name);
  if (collection === undefined) fail("NamespaceNotFound", `ns not found ${context.db}.${name}`);
  const was = collection.indexes.length;
  const index = command.index;
  let names: string[];
  if (index === "*") names = collection.indexes.filter((spec) => spec.name !== "_id_").map((spec) => spec.name);
  else if (typeof index === "string") names = [index];
  else if (Array.isArray(index)) names = index.map(String);
  else if (isPlainObject(index)) {
    const found = collection.indexes.find((spec) => keyOf([spec.key]) === keyOf([index]));
    if (found === undefined) fail("IndexNotFound", `can't find index with key: ${shellValue(index)}`);
    names = [found.name];
  } else fail("TypeMismatch", "BSON field 'dropIndexes.index' must be a string, an object or an array of strings");
  for (const indexName of names) {
    if (indexName === "_id_") fail("InvalidOptions", "cannot drop _id index");
    if (!collection.indexes.some((spec) => spec.name === indexName)) fail("IndexNotFound", `index not found with name [${indexName}]`);
  }
  for (const indexName of names) collection.dropIndex(indexName);
  if (names.length > 0) context.emit({ operationType: "dropIndexes", db: context.db, coll: name });
  return { nIndexesWas: was, ok: 1 };
}

function splitNamespace(value: unknown, field: string): { db: string; coll: string } {
  if (typeof value !== "string") fail("TypeMismatch", `BSON field '${field}' is the wrong type, expected type 'string'`);
  const dot = value.indexOf(".");
  if (dot <= 0 || dot === value.length - 1) fail("InvalidNamespace", `Invalid namespace specified '${value}'`);
  return { db: value.slice(0, dot), coll: value.slice(dot + 1) };
}

function renameCollection(context: CommandContext, command: Document): Document {
  if (context.db !== "admin") fail("Unauthorized", "renameCollection may only be run against the admin database.");
  const from = splitNamespace(command.renameCollection, "renameCollection");
  const to = splitNamespace(command.to, "to");
  context.authorize("ddl", from.db);
  context.authorize("ddl", to.db);
  checkNamespace(to.db, to.coll);
  const storage = context.server.storage;
  const source = storage.collection(from.db, from.coll);
  if (source === undefined) fail("NamespaceNotFound", `Source collection ${from.db}.${from.coll} does not exist`);
  if (from.db === to.db && from.coll === to.coll) fail("IllegalOperation", "Can't rename a collection to itself");
  if (storage.collection(to.db, to.coll) !== undefined) {
    if (command.dropTarget !== true) fail("NamespaceExists", "target namespace exists");
    storage.dropCollection(to.db, to.coll);
  }
  storage.dropCollection(from.db, from.coll);
  const moved = new Collection(to.db, to.coll, source.options);
  moved.assign(source);
  storage.adopt(moved);
  context.emit({ operationType: "rename", db: from.db, coll: from.coll, to: { db: to.db, coll: to.coll } });
  return { ok: 1 };
}

function collMod(context: CommandContext, command: Document): Document {
  const name = collectionName(command, "collMod");
  const collection = context.store.collection(context.db, name);
  if (collection === undefined) fail("NamespaceNotFound", `ns does not exist: ${context.db}.${name}`);
  collection.options = { ...collection.options, ...commandOptions(command, "collMod") };
  return { ok: 1 };
}

function listDatabases(context: CommandContext, command: Document): Document {
  const { storage, users, settings } = context.server;
  const user = context.connection.user;
  let databases = [...storage.databases.values()]
    .filter((database) => !settings.requireAuth || user === undefined || users.allows(user, "cluster", "admin") || users.allows(user, "read", database.name))
    .map((database) => {
      let objects = 0;
      for (const collection of database.collections.values()) objects += collection.documents.length;
      return { name: database.name, sizeOnDisk: 4096 + objects * 128, empty: objects === 0 };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
  const filter = documentField(command, "filter");
  if (filter !== undefined) databases = select(databases, filter) as typeof databases;
  if (command.nameOnly === true) return { databases: databases.map(({ name }) => ({ name })), ok: 1 };
  const totalSize = databases.reduce((sum, database) => sum + database.sizeOnDisk, 0);
  return { databases, totalSize, totalSizeMb: Math.floor(totalSize / (1024 * 1024)), ok: 1 };
}

function listCollections(context: CommandContext, command: Document): Document {
  const database = context.server.storage.databases.get(context.db);
  const collections = [...(database?.collections.values() ?? [])].sort((a, b) => a.name.localeCompare(b.name));
  let infos: Document[] = collections.map((collection) => ({
    name: collection.name,
    type: "collection",
    options: collection.options,
    info: { readOnly: false, uuid: collection.uuid },
    idIndex: { v: 2, key: { _id: 1 }, name: "_id_" },
  }));
  const filter = documentField(command, "filter");
  if (filter !== undefined) infos = select(infos, filter);
  if (command.nameOnly === true) infos = infos.map((info) => ({ name: info.name, type: info.type }));
  const batchSize = integer(documentField(command, "cursor") ?? {}, "batchSize");
  return context.server.cursors.open(`${context.db}.$cmd.listCollections`, new ArraySource(infos), { batchSize, owner: context.owner });
}

function listIndexes(context: CommandContext, command: Document): Document {
  const name = collectionName(command, "listIndexes");
  const collection = context.store.collection(context.db, name);
  if (collection === undefined) fail("NamespaceNotFound", `ns does not exist: ${context.db}.${name}`);
  const batchSize = integer(documentField(command, "cursor") ?? {}, "batchSize");
  return context.server.cursors.open(`${context.db}.${name}`, new ArraySource(collection.indexes.map((index) => ({ ...index }))), { batchSize, owner: context.owner });
}

function dbStats(context: CommandContext): Document {
  const database = context.server.storage.databases.get(context.db);
  const collections = [...(database?.collections.values() ?? [])];
  const objects = collections.reduce((sum, collection) => sum + collection.documents.length, 0);
  const indexes = collections.reduce((sum, collection) => sum + collection.indexes.length, 0);
  const dataSize = objects * 128;
  return {
    db: context.db,
    collections: collections.length,
    views: 0,
    objects,
    avgObjSize: objects === 0 ? 0 : 128,
    dataSize,
    storageSize: dataSize,
    indexes,
    indexSize: indexes * 4096,
    totalSize: dataSize + indexes * 4096,
    scaleFactor: 1,
    ok: 1,
  };
}

/** Database, collection and index commands by name. */
export const ddlCommands: Record<string, CommandSpec> = {
  create: { run: create, privilege: "ddl" },
  drop: { run: drop, privilege: "ddl" },
  dropDatabase: { run: dropDatabase, privilege: "ddl" },
  createIndexes: { run: createIndexes, privilege: "ddl" },
  dropIndexes: { run: dropIndexes, privilege: "ddl" },
  deleteIndexes: { run: dropIndexes, privilege: "ddl" },
  renameCollection: { run: renameCollection, privilege: "authenticated" },
  collMod: { run: collMod, privilege: "ddl" },
  listDatabases: { run: listDatabases, privilege: "authenticated" },
  listCollections: { run: listCollections, privilege: "read" },
  listIndexes: { run: listIndexes, privilege: "read" },
  dbStats: { run: dbStats, privilege: "read" },
};
