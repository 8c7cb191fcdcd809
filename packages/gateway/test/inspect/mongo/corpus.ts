import type { StatementClass } from "@airlock/policy";
import { Binary, Code, Decimal128, Int32, Long, MaxKey, MinKey, ObjectId, Timestamp, type Document } from "bson";

/**
 * Golden corpus of the MongoDB command analyser: each entry's command (as the gateway decodes it,
 * document sequences merged), the classes it must get (sorted), whether it is an unbounded write,
 * and `benign` for look-alikes of something risky that only read.
 *
 * The end-to-end suite can run the same entries through the gateway against the test server for
 * a read-only group: every entry whose classes are `["read"]` must run (the server may still
 * answer an error for commands it does not implement, but the gateway must not refuse them),
 * and no other entry may change anything on the server. Fixture, in database `shop`:
 *
 *   customers: { _id: 1, name: "Ann", email, card: { number, expiry }, cards: [{ number }], address: { street, city }, tags: [] }
 *   orders:    { _id: 10, customer_id: 1, total: 12.5, status: "paid" }
 *   audit:     { _id: 1, note: "x" }
 *
 * Commands that create objects use names no other entry uses, so entries run in any order and
 * more than once.
 */
export interface MongoCorpusEntry {
  /** A short unique label for the test name. */
  readonly label: string;
  readonly command: Document;
  readonly classes: readonly StatementClass[];
  readonly unbounded?: boolean;
  readonly note?: string;
  /** A look-alike of something risky that only reads. */
  readonly benign?: true;
}

export const corpusDatabase = "shop";

/** The command with `$db` last, as drivers send it. */
function c(command: Document, database = corpusDatabase): Document {
  return { ...command, $db: database };
}

const session = { lsid: { id: new Binary(Buffer.alloc(16, 7), 4) }, txnNumber: Long.fromNumber(3) };

export const mongoCorpus: readonly MongoCorpusEntry[] = [
  // ---- read -------------------------------------------------------------------------------------
  { label: "find all", command: c({ find: "customers", filter: {} }), classes: ["read"] },
  { label: "find by id", command: c({ find: "customers", filter: { _id: 1 }, limit: 1, singleBatch: true }), classes: ["read"] },
  { label: "find with projection and sort", command: c({ find: "orders", filter: { total: { $gt: 10 } }, projection: { status: 1 }, sort: { total: -1 }, batchSize: 2 }), classes: ["read"] },
  { label: "find by ObjectId", command: c({ find: "orders", filter: { _id: new ObjectId("64b7f0000000000000000001") } }), classes: ["read"] },
  { label: "find with $in and $regex", command: c({ find: "customers", filter: { name: { $in: ["Ann", "Bob"] }, email: { $regex: "^a", $options: "i" } } }), classes: ["read"] },
  { label: "find with $expr", command: c({ find: "orders", filter: { $expr: { $gt: ["$total", 10] } } }), classes: ["read"] },
  { label: "find with $elemMatch", command: c({ find: "customers", filter: { cards: { $elemMatch: { number: { $exists: true } } } } }), classes: ["read"] },
  { label: "find in a session", command: c({ find: "orders", filter: {}, ...session }), classes: ["read"] },
  { label: "find with a computed projection", command: c({ find: "customers", filter: {}, projection: { upper: { $toUpper: "$name" } } }), classes: ["read"] },
  { label: "find with Decimal128 and Int32", command: c({ find: "orders", filter: { total: { $gte: Decimal128.fromString("1.5"), $lt: new Int32(100) } } }), classes: ["read"] },
  { label: "getMore", command: c({ getMore: Long.fromNumber(123456789), collection: "orders", batchSize: 2 }), classes: ["read"] },
  { label: "killCursors", command: c({ killCursors: "orders", cursors: [Long.fromNumber(123456789)] }), classes: ["read"] },
  { label: "count", command: c({ count: "orders", query: { status: "paid" } }), classes: ["read"] },
  { label: "distinct", command: c({ distinct: "orders", key: "status", query: {} }), classes: ["read"] },
  { label: "aggregate match group", command: c({ aggregate: "orders", pipeline: [{ $match: { status: "paid" } }, { $group: { _id: "$customer_id", total: { $sum: "$total" } } }], cursor: {} }), classes: ["read"] },
  { label: "aggregate lookup", command: c({ aggregate: "orders", pipeline: [{ $lookup: { from: "customers", localField: "customer_id", foreignField: "_id", as: "customer" } }], cursor: { batchSize: 1 } }), classes: ["read"] },
  { label: "aggregate lookup pipeline", command: c({ aggregate: "customers", pipeline: [{ $lookup: { from: "orders", let: { id: "$_id" }, pipeline: [{ $match: { $expr: { $eq: ["$customer_id", "$$id"] } } }], as: "orders" } }], cursor: {} }), classes: ["read"] },
  { label: "aggregate facet", command: c({ aggregate: "orders", pipeline: [{ $facet: { byStatus: [{ $sortByCount: "$status" }], count: [{ $count: "n" }] } }], cursor: {} }), classes: ["read"] },
  { label: "aggregate unionWith", command: c({ aggregate: "orders", pipeline: [{ $unionWith: { coll: "audit", pipeline: [{ $project: { note: 1 } }] } }], cursor: {} }), classes: ["read"] },
  { label: "aggregate graphLookup", command: c({ aggregate: "customers", pipeline: [{ $graphLookup: { from: "customers", startWith: "$_id", connectFromField: "_id", connectToField: "_id", as: "same" } }], cursor: {} }), classes: ["read"] },
  { label: "aggregate documents", command: c({ aggregate: 1, pipeline: [{ $documents: [{ x: 1 }, { x: 2 }] }, { $project: { y: { $add: ["$x", 1] } } }], cursor: {} }), classes: ["read"] },
  { label: "aggregate unwind bucket", command: c({ aggregate: "customers", pipeline: [{ $unwind: "$cards" }, { $bucket: { groupBy: "$_id", boundaries: [0, 10, 100], default: "other" } }], cursor: {} }), classes: ["read"] },
  { label: "aggregate setWindowFields", command: c({ aggregate: "orders", pipeline: [{ $setWindowFields: { partitionBy: "$status", sortBy: { total: 1 }, output: { running: { $sum: "$total", window: { documents: ["unbounded", "current"] } } } } }], cursor: {} }), classes: ["read"] },
  { label: "aggregate explain option", command: c({ aggregate: "orders", pipeline: [{ $out: "orders_copy_explained" }], explain: true }), classes: ["read"], note: "planned, not run" },
  { label: "change stream", command: c({ aggregate: "orders", pipeline: [{ $changeStream: {} }], cursor: {} }), classes: ["read"] },
  { label: "collStats stage", command: c({ aggregate: "orders", pipeline: [{ $collStats: { count: {} } }], cursor: {} }), classes: ["read"] },
  { label: "indexStats stage", command: c({ aggregate: "orders", pipeline: [{ $indexStats: {} }], cursor: {} }), classes: ["read"] },
  { label: "explain find", command: c({ explain: { find: "orders", filter: { status: "paid" } }, verbosity: "executionStats" }), classes: ["read"] },
  { label: "explain update", command: c({ explain: { update: "orders", updates: [{ q: {}, u: { $set: { status: "x" } }, multi: true }] }, verbosity: "executionStats" }), classes: ["read"], note: "the server never applies an explained write" },
  { label: "explain delete", command: c({ explain: { delete: "audit", deletes: [{ q: {}, limit: 0 }] }, verbosity: "queryPlanner" }), classes: ["read"] },
  { label: "explain aggregate out planned", command: c({ explain: { aggregate: "orders", pipeline: [{ $out: "orders_copy_planned" }], cursor: {} }, verbosity: "queryPlanner" }), classes: ["read"] },
  { label: "listCollections", command: c({ listCollections: 1, filter: {}, nameOnly: true, authorizedCollections: true }), classes: ["read"] },
  { label: "listIndexes", command: c({ listIndexes: "customers", cursor: {} }), classes: ["read"] },
  { label: "listDatabases", command: c({ listDatabases: 1, nameOnly: true }, "admin"), classes: ["read"] },
  { label: "dbStats", command: c({ dbStats: 1 }), classes: ["read"] },
  { label: "collStats", command: c({ collStats: "orders" }), classes: ["read"] },
  { label: "hello", command: c({ hello: 1, helloOk: true }, "admin"), classes: ["read"] },
  { label: "isMaster", command: c({ isMaster: 1 }, "admin"), classes: ["read"] },
  { label: "ismaster lowercase", command: c({ ismaster: 1 }, "admin"), classes: ["read"] },
  { label: "ping", command: c({ ping: 1 }, "admin"), classes: ["read"] },
  { label: "buildInfo", command: c({ buildInfo: 1 }, "admin"), classes: ["read"] },
  { label: "connectionStatus", command: c({ connectionStatus: 1 }), classes: ["read"] },
  { label: "serverStatus", command: c({ serverStatus: 1 }, "admin"), classes: ["read"] },
  { label: "getParameter", command: c({ getParameter: 1, featureCompatibilityVersion: 1 }, "admin"), classes: ["read"] },
  { label: "endSessions", command: c({ endSessions: [{ id: new Binary(Buffer.alloc(16, 1), 4) }] }, "admin"), classes: ["read"] },
  { label: "usersInfo", command: c({ usersInfo: 1 }), classes: ["read"] },
  { label: "start transaction", command: c({ find: "orders", filter: {}, ...session, startTransaction: true, autocommit: false }), classes: ["read"] },
  { label: "commitTransaction", command: c({ commitTransaction: 1, ...session, autocommit: false }, "admin"), classes: ["read"] },
  { label: "abortTransaction", command: c({ abortTransaction: 1, ...session, autocommit: false }, "admin"), classes: ["read"] },
  { label: "profile read", command: c({ profile: -1 }), classes: ["read"] },
  { label: "getLog startupWarnings", command: c({ getLog: "startupWarnings" }, "admin"), classes: ["read"], note: "mongosh asks when it connects" },

  // ---- write ------------------------------------------------------------------------------------
  { label: "insert", command: c({ insert: "audit", documents: [{ _id: new ObjectId(), note: "hello", at: new Date(0) }], ordered: true }), classes: ["write"] },
  { label: "insert many", command: c({ insert: "audit", documents: [{ note: "a" }, { note: "b" }, { note: "c", n: Long.fromNumber(5) }] }), classes: ["write"] },
  { label: "update one", command: c({ update: "orders", updates: [{ q: { _id: 10 }, u: { $set: { status: "shipped" } } }] }), classes: ["write"] },
  { label: "update many bounded", command: c({ update: "orders", updates: [{ q: { status: "new" }, u: { $set: { status: "open" } }, multi: true }] }), classes: ["write"] },
  { label: "update upsert", command: c({ update: "orders", updates: [{ q: { _id: 99 }, u: { $setOnInsert: { status: "new" } }, upsert: true }] }), classes: ["write"] },
  { label: "update replacement", command: c({ update: "audit", updates: [{ q: { _id: 1 }, u: { note: "replaced" } }] }), classes: ["write"] },
  { label: "update pipeline", command: c({ update: "orders", updates: [{ q: { _id: 10 }, u: [{ $set: { total: { $multiply: ["$total", 2] } } }] }] }), classes: ["write"] },
  { label: "update single empty filter", command: c({ update: "orders", updates: [{ q: {}, u: { $inc: { total: 1 } } }] }), classes: ["write"], note: "multi false: one document" },
  { label: "delete one", command: c({ delete: "audit", deletes: [{ q: { _id: 1 }, limit: 1 }] }), classes: ["write"] },
  { label: "delete many bounded", command: c({ delete: "audit", deletes: [{ q: { note: "x" }, limit: 0 }] }), classes: ["write"] },
  { label: "delete first of all", command: c({ delete: "audit", deletes: [{ q: {}, limit: 1 }] }), classes: ["write"], note: "limit 1: one document" },
  { label: "findAndModify update", command: c({ findAndModify: "orders", query: { _id: 10 }, update: { $set: { status: "x" } }, new: true }), classes: ["write"] },
  { label: "findAndModify remove", command: c({ findAndModify: "audit", query: {}, remove: true }), classes: ["write"], note: "one document" },
  { label: "findandmodify lowercase", command: c({ findandmodify: "orders", query: { _id: 10 }, update: { $inc: { total: 1 } } }), classes: ["write"] },
  { label: "bulkWrite", command: c({ bulkWrite: 1, ops: [{ insert: 0, document: { note: "a" } }, { update: 0, filter: { note: "a" }, updateMods: { $set: { note: "b" } } }, { delete: 1, filter: { _id: 10 }, multi: false }], nsInfo: [{ ns: "shop.audit" }, { ns: "shop.orders" }] }, "admin"), classes: ["write"] },
  { label: "aggregate merge", command: c({ aggregate: "orders", pipeline: [{ $match: { status: "paid" } }, { $merge: { into: "paid_orders" } }], cursor: {} }), classes: ["write"] },
  { label: "insert in a transaction", command: c({ insert: "audit", documents: [{ note: "t" }], ...session, startTransaction: true, autocommit: false }), classes: ["write"] },
  { label: "update with $rename", command: c({ update: "customers", updates: [{ q: { _id: 1 }, u: { $rename: { name: "full_name" } } }] }), classes: ["write"] },
  { label: "explain aggregate merge executed", command: c({ explain: { aggregate: "orders", pipeline: [{ $merge: { into: "orders_merged" } }], cursor: {} }, verbosity: "executionStats" }), classes: ["write"], note: "fail closed: an executed plan may write" },

  // ---- unbounded writes -------------------------------------------------------------------------
  { label: "delete all", command: c({ delete: "audit", deletes: [{ q: {}, limit: 0 }] }), classes: ["write"], unbounded: true },
  { label: "update all", command: c({ update: "orders", updates: [{ q: {}, u: { $set: { status: "x" } }, multi: true }] }), classes: ["write"], unbounded: true },
  { label: "update expr true", command: c({ update: "orders", updates: [{ q: { $expr: true }, u: { $set: { status: "x" } }, multi: true }] }), classes: ["write"], unbounded: true },
  { label: "delete _id exists", command: c({ delete: "audit", deletes: [{ q: { _id: { $exists: true } }, limit: 0 }] }), classes: ["write"], unbounded: true },
  { label: "delete or empty", command: c({ delete: "audit", deletes: [{ q: { $or: [{ _id: 5 }, {}] }, limit: 0 }] }), classes: ["write"], unbounded: true },
  { label: "delete expr constant", command: c({ delete: "audit", deletes: [{ q: { $expr: { $eq: [1, 1] } }, limit: 0 }] }), classes: ["write"], unbounded: true, note: "does not depend on the document" },
  { label: "delete comment only", command: c({ delete: "audit", deletes: [{ q: { $comment: "all of it" }, limit: 0 }] }), classes: ["write"], unbounded: true },
  { label: "update nin empty", command: c({ update: "orders", updates: [{ q: { status: { $nin: [] } }, u: { $set: { status: "x" } }, multi: true }] }), classes: ["write"], unbounded: true },
  { label: "update regex all", command: c({ update: "audit", updates: [{ q: { note: /.*/ }, u: { $set: { note: "x" } }, multi: true }] }), classes: ["write"], unbounded: true, note: "like LIKE '%'" },
  { label: "delete alwaysTrue", command: c({ delete: "audit", deletes: [{ q: { $alwaysTrue: 1 }, limit: 0 }] }), classes: ["write"], unbounded: true },
  { label: "delete _id from MinKey", command: c({ delete: "audit", deletes: [{ q: { _id: { $gte: new MinKey() } }, limit: 0 }] }), classes: ["write"], unbounded: true },
  { label: "delete jsonSchema object", command: c({ delete: "audit", deletes: [{ q: { $jsonSchema: { bsonType: "object" } }, limit: 0 }] }), classes: ["write"], unbounded: true },
  { label: "update expr field equals itself", command: c({ update: "orders", updates: [{ q: { $expr: { $eq: ["$total", "$total"] } }, u: { $set: { status: "x" } }, multi: true }] }), classes: ["write"], unbounded: true },
  { label: "bulkWrite delete all", command: c({ bulkWrite: 1, ops: [{ delete: 0, filter: {}, multi: true }], nsInfo: [{ ns: "shop.audit" }] }, "admin"), classes: ["write"], unbounded: true },
  { label: "aggregate out", command: c({ aggregate: "orders", pipeline: [{ $match: {} }, { $out: "orders_copy" }], cursor: {} }), classes: ["write"], unbounded: true, note: "$out discards the target's documents" },
  { label: "update second statement unbounded", command: c({ update: "orders", updates: [{ q: { _id: 10 }, u: { $set: { status: "a" } } }, { q: { $and: [{}, { $comment: "x" }] }, u: { $set: { status: "b" } }, multi: true }] }), classes: ["write"], unbounded: true },

  // ---- ddl --------------------------------------------------------------------------------------
  { label: "create", command: c({ create: "corpus_created" }), classes: ["ddl"] },
  { label: "create capped", command: c({ create: "corpus_capped", capped: true, size: 4096 }), classes: ["ddl"] },
  { label: "create view", command: c({ create: "corpus_view", viewOn: "orders", pipeline: [{ $match: { status: "paid" } }] }), classes: ["ddl"] },
  { label: "drop", command: c({ drop: "orders" }), classes: ["ddl"] },
  { label: "dropDatabase", command: c({ dropDatabase: 1 }), classes: ["ddl"] },
  { label: "createIndexes", command: c({ createIndexes: "customers", indexes: [{ key: { email: 1 }, name: "email_1", unique: true }] }), classes: ["ddl"] },
  { label: "createIndexes partial", command: c({ createIndexes: "orders", indexes: [{ key: { status: 1 }, name: "status_paid", partialFilterExpression: { status: "paid" } }] }), classes: ["ddl"] },
  { label: "dropIndexes", command: c({ dropIndexes: "customers", index: "email_1" }), classes: ["ddl"] },
  { label: "collMod", command: c({ collMod: "orders", validator: { total: { $type: "number" } }, validationLevel: "moderate" }), classes: ["ddl"] },
  { label: "renameCollection", command: c({ renameCollection: "shop.audit", to: "shop.audit_old", dropTarget: false }, "admin"), classes: ["ddl"] },
  { label: "reIndex", command: c({ reIndex: "orders" }), classes: ["ddl"] },
  { label: "convertToCapped", command: c({ convertToCapped: "audit", size: 4096 }), classes: ["ddl"] },
  { label: "insert into system.views", command: c({ insert: "system.views", documents: [{ _id: "shop.v", viewOn: "customers", pipeline: [] }] }), classes: ["ddl", "write"] },
  { label: "rename across databases", command: c({ renameCollection: "shop.customers", to: "archive.customers" }, "admin"), classes: ["ddl", "write"] },
  { label: "cloneCollectionAsCapped", command: c({ cloneCollectionAsCapped: "orders", toCollection: "orders_capped", size: 4096 }), classes: ["ddl", "write"] },

  // ---- admin ------------------------------------------------------------------------------------
  { label: "createUser", command: c({ createUser: "intruder", pwd: "secret", roles: ["root"] }, "admin"), classes: ["admin"] },
  { label: "dropUser", command: c({ dropUser: "app" }, "admin"), classes: ["admin"] },
  { label: "updateUser", command: c({ updateUser: "app", pwd: "new" }, "admin"), classes: ["admin"] },
  { label: "grantRolesToUser", command: c({ grantRolesToUser: "app", roles: [{ role: "root", db: "admin" }] }, "admin"), classes: ["admin"] },
  { label: "createRole", command: c({ createRole: "r", privileges: [], roles: [] }, "admin"), classes: ["admin"] },
  { label: "setParameter", command: c({ setParameter: 1, logLevel: 5 }, "admin"), classes: ["admin"] },
  { label: "shutdown", command: c({ shutdown: 1, force: true }, "admin"), classes: ["admin"] },
  { label: "fsync lock", command: c({ fsync: 1, lock: true }, "admin"), classes: ["admin"] },
  { label: "replSetReconfig", command: c({ replSetReconfig: { _id: "rs0", version: 2, members: [] } }, "admin"), classes: ["admin"] },
  { label: "killOp", command: c({ killOp: 1, op: 12345 }, "admin"), classes: ["admin"] },
  { label: "currentOp", command: c({ currentOp: 1, $all: true }, "admin"), classes: ["admin"] },
  { label: "currentOp stage", command: c({ aggregate: 1, pipeline: [{ $currentOp: { allUsers: true } }], cursor: {} }, "admin"), classes: ["admin"] },
  { label: "getLog", command: c({ getLog: "global" }, "admin"), classes: ["admin"] },
  { label: "compact", command: c({ compact: "orders" }), classes: ["admin"] },
  { label: "find system.users", command: c({ find: "system.users", filter: {} }, "admin"), classes: ["admin"] },
  { label: "usersInfo showCredentials", command: c({ usersInfo: 1, showCredentials: true }), classes: ["admin"] },
  { label: "profile on", command: c({ profile: 2 }), classes: ["admin"] },
  { label: "insert into system.users", command: c({ insert: "system.users", documents: [{ user: "x" }] }, "admin"), classes: ["admin", "write"] },

  // ---- dangerous --------------------------------------------------------------------------------
  { label: "$where string", command: c({ find: "customers", filter: { $where: "this.name == 'Ann'" } }), classes: ["dangerous"] },
  { label: "$where code", command: c({ find: "customers", filter: { $where: new Code("function() { return true; }") } }), classes: ["dangerous"] },
  { label: "$where in $or", command: c({ count: "customers", query: { $or: [{ _id: 1 }, { $where: "sleep(100) || true" }] } }), classes: ["dangerous"] },
  { label: "$function in $expr", command: c({ find: "customers", filter: { $expr: { $function: { body: "function(n) { return true; }", args: ["$name"], lang: "js" } } } }), classes: ["dangerous"] },
  { label: "$function in projection", command: c({ find: "customers", filter: {}, projection: { x: { $function: { body: "function() { return 1; }", args: [], lang: "js" } } } }), classes: ["dangerous"] },
  { label: "$accumulator", command: c({ aggregate: "orders", pipeline: [{ $group: { _id: null, x: { $accumulator: { init: "function() { return 0; }", accumulate: "function(s) { return s; }", accumulateArgs: [], merge: "function(a) { return a; }", lang: "js" } } } }], cursor: {} }), classes: ["dangerous"] },
  { label: "$function in nested lookup", command: c({ aggregate: "orders", pipeline: [{ $lookup: { from: "customers", pipeline: [{ $facet: { a: [{ $addFields: { y: { $function: { body: "function() { return 1; }", args: [], lang: "js" } } } }] } }], as: "c" } }], cursor: {} }), classes: ["dangerous"] },
  { label: "$where in update filter", command: c({ update: "orders", updates: [{ q: { $where: "true" }, u: { $set: { status: "x" } }, multi: true }] }), classes: ["dangerous", "write"], unbounded: true, note: "JavaScript that ignores the document" },
  { label: "$where in delete filter", command: c({ delete: "audit", deletes: [{ q: { $where: "this.note == 'x'" }, limit: 0 }] }), classes: ["dangerous", "write"] },
  { label: "mapReduce inline", command: c({ mapReduce: "orders", map: new Code("function() { emit(this.status, 1); }"), reduce: new Code("function(k, v) { return Array.sum(v); }"), out: { inline: 1 } }), classes: ["dangerous"] },
  { label: "mapReduce to collection", command: c({ mapReduce: "orders", map: new Code("function() { emit(this.status, 1); }"), reduce: new Code("function(k, v) { return 1; }"), out: "mr_out" }), classes: ["dangerous", "write"] },
  { label: "eval", command: c({ eval: "db.dropDatabase()" }), classes: ["dangerous"] },
  { label: "applyOps", command: c({ applyOps: [{ op: "d", ns: "shop.audit", o: { _id: 1 } }] }, "admin"), classes: ["dangerous"] },
  { label: "saslStart", command: c({ saslStart: 1, mechanism: "SCRAM-SHA-256", payload: new Binary(Buffer.from("n,,n=root,r=abc")) }, "admin"), classes: ["dangerous"] },
  { label: "authenticate", command: c({ authenticate: 1, mechanism: "MONGODB-X509" }, "$external"), classes: ["dangerous"] },
  { label: "hello speculativeAuthenticate", command: c({ hello: 1, speculativeAuthenticate: { saslStart: 1, mechanism: "SCRAM-SHA-256" } }, "admin"), classes: ["dangerous"] },
  { label: "lookup another database", command: c({ aggregate: "orders", pipeline: [{ $lookup: { from: { db: "secrets", coll: "keys" }, pipeline: [], as: "k" } }], cursor: {} }), classes: ["dangerous"] },
  { label: "unionWith another database", command: c({ aggregate: "orders", pipeline: [{ $unionWith: { db: "hr", coll: "salaries" } }], cursor: {} }), classes: ["dangerous"] },
  { label: "graphLookup another database", command: c({ aggregate: "orders", pipeline: [{ $graphLookup: { from: { db: "hr", coll: "people" }, startWith: "$x", connectFromField: "a", connectToField: "b", as: "p" } }], cursor: {} }), classes: ["dangerous"] },
  { label: "out to another database", command: c({ aggregate: "customers", pipeline: [{ $out: { db: "exfil", coll: "customers" } }], cursor: {} }), classes: ["dangerous", "write"], unbounded: true },
  { label: "merge to another database", command: c({ aggregate: "customers", pipeline: [{ $merge: { into: { db: "exfil", coll: "c" } } }], cursor: {} }), classes: ["dangerous", "write"] },
  { label: "change stream of the cluster", command: c({ aggregate: 1, pipeline: [{ $changeStream: { allChangesForCluster: true } }], cursor: {} }, "admin"), classes: ["dangerous"] },
  { label: "insert into system.js", command: c({ insert: "system.js", documents: [{ _id: "f", value: new Code("function() { return 1; }") }] }), classes: ["dangerous", "write"] },
  { label: "impersonation", command: c({ find: "orders", filter: {}, $impersonatedUser: { user: "root", db: "admin" } }), classes: ["dangerous"] },
  { label: "cloneCollection", command: c({ cloneCollection: "shop.orders", from: "evil.example:27017" }), classes: ["dangerous"] },

  // ---- benign look-alikes: must come out read ---------------------------------------------------
  { label: "string that says drop", command: c({ find: "audit", filter: { note: "db.dropDatabase()" } }), classes: ["read"], benign: true },
  { label: "string that says $where", command: c({ find: "audit", filter: { note: "$where" } }), classes: ["read"], benign: true },
  { label: "field named delete", command: c({ find: "audit", filter: { delete: 1, drop: "x" } }), classes: ["read"], benign: true },
  { label: "count with empty filter", command: c({ count: "audit", query: {} }), classes: ["read"], benign: true, note: "always-true filters only matter for writes" },
  { label: "aggregate with $out in a string", command: c({ aggregate: "audit", pipeline: [{ $match: { note: "$out" } }], cursor: {} }), classes: ["read"], benign: true },
  { label: "literal code-like text in $literal", command: c({ aggregate: "audit", pipeline: [{ $project: { x: { $literal: "function() { return 1; }" } } }], cursor: {} }), classes: ["read"], benign: true },
  { label: "lookup in the same database by name", command: c({ aggregate: "orders", pipeline: [{ $lookup: { from: { db: "shop", coll: "customers" }, localField: "customer_id", foreignField: "_id", as: "c" } }], cursor: {} }), classes: ["read"], benign: true },
  { label: "find with a Timestamp and MaxKey", command: c({ find: "audit", filter: { at: { $lt: new Timestamp({ t: 1, i: 1 }) }, _id: { $lt: new MaxKey() } } }), classes: ["read"], benign: true },
  { label: "distinct of a field named update", command: c({ distinct: "audit", key: "update" }), classes: ["read"], benign: true },
  { label: "explain of a find with sort", command: c({ explain: { find: "orders", filter: {}, sort: { total: 1 } }, verbosity: "queryPlanner" }), classes: ["read"], benign: true },
];
