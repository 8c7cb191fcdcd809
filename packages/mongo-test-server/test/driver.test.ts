import { MongoBulkWriteError, MongoServerError, ObjectId, type Db, type MongoClient } from "mongodb";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startMongoTestServer, type MongoTestServer } from "../src/index.js";
import { ADMIN, closeClient, connect, recordCommands } from "./support.js";

/**
 * The official driver, connected directly to the stand-in with SCRAM-SHA-256, is the judge of its
 * fidelity: CRUD, cursors, aggregation, indexes, errors, transactions and change streams.
 */
let server: MongoTestServer;
let client: MongoClient;
let db: Db;

beforeAll(async () => {
  server = await startMongoTestServer({ users: [ADMIN], scramIterations: { sha1: 4096, sha256: 4096 } });
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  client = await connect(server, ADMIN, { authMechanism: "SCRAM-SHA-256" }, { monitorCommands: true });
  db = client.db("shop");
});
afterEach(async () => {
  await db.dropDatabase();
  await closeClient(server, client);
  expect(server.cursorCount).toBe(0);
});

describe("writes", () => {
  it("insertOne and insertMany put the documents on the server", async () => {
    const orders = db.collection("orders");
    const one = await orders.insertOne({ sku: "a", qty: 1 });
    expect(one.insertedId).toBeInstanceOf(ObjectId);
    const many = await orders.insertMany([{ _id: 1, sku: "b", qty: 2 }, { _id: 2, sku: "c", qty: 3 }, { sku: "d", nested: { tags: ["x", "y"] }, when: new Date(0) }]);
    expect(many.insertedCount).toBe(3);
    expect(many.insertedIds[0]).toBe(1);
    const stored = server.databases.documents("shop", "orders");
    expect(stored).toHaveLength(4);
    expect(stored[0]?._id).toEqual(one.insertedId);
    expect(stored[3]).toMatchObject({ sku: "d", nested: { tags: ["x", "y"] }, when: new Date(0) });
    expect(Object.keys(stored[1] ?? {})[0]).toBe("_id");
  });

  it("updateOne, updateMany, replaceOne and upserts", async () => {
    const items = db.collection("items");
    await items.insertMany([
      { _id: 1, kind: "a", qty: 1, tags: ["x"], grades: [{ g: 1 }, { g: 5 }] },
      { _id: 2, kind: "a", qty: 2, tags: [] },
      { _id: 3, kind: "b", qty: 3, tags: [] },
    ]);
    const one = await items.updateOne({ kind: "a" }, { $inc: { qty: 10 }, $push: { tags: "y" } });
    expect(one).toMatchObject({ matchedCount: 1, modifiedCount: 1, upsertedCount: 0 });
    const many = await items.updateMany({ kind: "a" }, { $set: { seen: true } });
    expect(many).toMatchObject({ matchedCount: 2, modifiedCount: 2 });
    const unchanged = await items.updateMany({ kind: "a" }, { $set: { seen: true } });
    expect(unchanged).toMatchObject({ matchedCount: 2, modifiedCount: 0 });
    const filtered = await items.updateOne({ _id: 1 }, { $set: { "grades.$[high].g": 9 } }, { arrayFilters: [{ "high.g": { $gt: 2 } }] });
    expect(filtered.modifiedCount).toBe(1);
    const replaced = await items.replaceOne({ _id: 3 }, { kind: "c", qty: 0 });
    expect(replaced).toMatchObject({ matchedCount: 1, modifiedCount: 1 });
    const upserted = await items.updateOne({ sku: "new" }, { $set: { qty: 5 }, $setOnInsert: { created: true } }, { upsert: true });
    expect(upserted.upsertedCount).toBe(1);
    expect(upserted.upsertedId).toBeInstanceOf(ObjectId);
    const notInserted = await items.updateOne({ sku: "new" }, { $set: { qty: 6 }, $setOnInsert: { created: false } }, { upsert: true });
    expect(notInserted).toMatchObject({ matchedCount: 1, modifiedCount: 1, upsertedCount: 0 });
    const replacedUpsert = await items.replaceOne({ _id: 10 }, { kind: "z" }, { upsert: true });
    expect(replacedUpsert.upsertedId).toBe(10);

    expect(server.databases.documents("shop", "items")).toEqual([
      { _id: 1, kind: "a", qty: 11, tags: ["x", "y"], grades: [{ g: 1 }, { g: 9 }], seen: true },
      { _id: 2, kind: "a", qty: 2, tags: [], seen: true },
      { _id: 3, kind: "c", qty: 0 },
      { _id: upserted.upsertedId, sku: "new", qty: 6, created: true },
      { _id: 10, kind: "z" },
    ]);
  });

  it("refuses to change _id", async () => {
    const items = db.collection("items");
    await items.insertOne({ _id: 1 });
    const error = await items.updateOne({ _id: 1 }, { $set: { _id: 2 } }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MongoServerError);
    expect((error as MongoServerError).code).toBe(66);
    expect((await items.updateOne({ _id: 1 }, { $set: { _id: 1, a: 1 } })).modifiedCount).toBe(1);
    expect((await items.updateOne({ k: "x" }, { $set: { _id: 7 } }, { upsert: true })).upsertedId).toBe(7);
    expect(server.databases.documents("shop", "items")).toEqual([{ _id: 1, a: 1 }, { _id: 7, k: "x" }]);
  });

  it("deleteOne and deleteMany", async () => {
    const items = db.collection("items");
    await items.insertMany([{ k: 1 }, { k: 1 }, { k: 2 }, { k: 3 }]);
    expect((await items.deleteOne({ k: 1 })).deletedCount).toBe(1);
    expect((await items.deleteMany({ k: { $lt: 3 } })).deletedCount).toBe(2);
    expect((await items.deleteMany({ k: 99 })).deletedCount).toBe(0);
    expect(server.databases.documents("shop", "items").map((document) => document.k)).toEqual([3]);
  });

  it("findOneAndUpdate, findOneAndReplace and findOneAndDelete", async () => {
    const counters = db.collection<{ _id: string; n: number; note?: string }>("counters");
    await counters.insertMany([{ _id: "a", n: 1 }, { _id: "b", n: 5 }]);
    const before = await counters.findOneAndUpdate({ _id: "a" }, { $inc: { n: 1 } });
    expect(before).toEqual({ _id: "a", n: 1 });
    const after = await counters.findOneAndUpdate({ _id: "a" }, { $inc: { n: 1 } }, { returnDocument: "after", projection: { n: 1, _id: 0 } });
    expect(after).toEqual({ n: 3 });
    const created = await counters.findOneAndUpdate({ _id: "c" }, { $set: { n: 0 } }, { upsert: true, returnDocument: "after" });
    expect(created).toEqual({ _id: "c", n: 0 });
    const highest = await counters.findOneAndUpdate({}, { $set: { note: "top" } }, { sort: { n: -1 }, returnDocument: "after" });
    expect(highest?._id).toBe("b");
    const replaced = await counters.findOneAndReplace({ _id: "b" }, { n: 50 }, { returnDocument: "after" });
    expect(replaced).toEqual({ _id: "b", n: 50 });
    const deleted = await counters.findOneAndDelete({ _id: "c" });
    expect(deleted).toEqual({ _id: "c", n: 0 });
    expect(await counters.findOneAndDelete({ _id: "nope" })).toBeNull();
    const detailed = await counters.findOneAndUpdate({ _id: "a" }, { $inc: { n: 1 } }, { includeResultMetadata: true });
    expect(detailed.lastErrorObject).toMatchObject({ n: 1, updatedExisting: true });
  });
});

describe("reads and cursors", () => {
  beforeEach(async () => {
    await db.collection("numbers").insertMany(Array.from({ length: 25 }, (_, index) => ({ _id: index, n: index, even: index % 2 === 0, label: `n${String(index).padStart(2, "0")}` })));
  });

  it("a find with a small batchSize runs getMore until every document came, in order", async () => {
    const events = recordCommands(client);
    const found = await db.collection("numbers").find({}, { batchSize: 4 }).toArray();
    expect(found.map((document) => document._id)).toEqual(Array.from({ length: 25 }, (_, index) => index));
    const getMores = events.filter((event) => event.commandName === "getMore");
    expect(getMores).toHaveLength(6);
    expect(getMores[0]?.command.batchSize).toBe(4);
    expect(server.cursorCount).toBe(0);
  });

  it("closing a cursor early kills it on the server", async () => {
    const events = recordCommands(client);
    const cursor = db.collection("numbers").find({}, { batchSize: 3 });
    expect((await cursor.next())?._id).toBe(0);
    expect(server.cursorCount).toBe(1);
    await cursor.close();
    const kill = events.find((event) => event.commandName === "killCursors");
    expect(kill?.command.killCursors).toBe("numbers");
    expect(server.cursorCount).toBe(0);
  });

  it("getMore on a killed cursor is CursorNotFound", async () => {
    const cursor = db.collection("numbers").find({}, { batchSize: 2 });
    await cursor.next();
    const id = cursor.id;
    await cursor.close();
    const error = await db.command({ getMore: id, collection: "numbers" }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MongoServerError);
    expect((error as MongoServerError).code).toBe(43);
    expect((error as MongoServerError).codeName).toBe("CursorNotFound");
  });

  it("sort, skip, limit and projection", async () => {
    const found = await db.collection("numbers").find({ even: true }, { projection: { label: 1, n: 1 } }).sort({ n: -1 }).skip(2).limit(3).toArray();
    expect(found).toEqual([
      { _id: 20, n: 20, label: "n20" },
      { _id: 18, n: 18, label: "n18" },
      { _id: 16, n: 16, label: "n16" },
    ]);
    expect(Object.keys(found[0] ?? {})).toEqual(["_id", "n", "label"]);
    const excluded = await db.collection("numbers").findOne({ _id: 3 }, { projection: { _id: 0, even: 0 } });
    expect(excluded).toEqual({ n: 3, label: "n03" });
    const limited = await db.collection("numbers").find({}, { limit: 7, batchSize: 3 }).toArray();
    expect(limited).toHaveLength(7);
    expect(await db.collection("missing").find({}).toArray()).toEqual([]);
  });

  it("query operators come from mingo: $in, $regex, $elemMatch, $exists, $or", async () => {
    const numbers = db.collection("numbers");
    expect(await numbers.countDocuments({ n: { $in: [1, 2, 30] } })).toBe(2);
    expect(await numbers.countDocuments({ label: { $regex: /^n1/ } })).toBe(10);
    expect(await numbers.countDocuments({ $or: [{ n: 0 }, { n: { $gte: 24 } }] })).toBe(2);
    expect(await numbers.countDocuments({ missing: { $exists: false } })).toBe(25);
    await numbers.insertOne({ _id: 100, scores: [{ s: 1 }, { s: 8 }] });
    expect(await numbers.countDocuments({ scores: { $elemMatch: { s: { $gt: 5 } } } })).toBe(1);
  });

  it("a bad query operator is an error reply, not a crash", async () => {
    const error = await db.collection("numbers").find({ n: { $frobnicate: 1 } }).toArray().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MongoServerError);
    expect((error as MongoServerError).code).toBe(2);
  });

  it("server-side JavaScript is refused", async () => {
    const error = await db.collection("numbers").find({ $where: "this.n > 1" }).toArray().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MongoServerError);
    expect((error as MongoServerError).message).toMatch(/JavaScript/);
  });

  it("countDocuments, estimatedDocumentCount and distinct", async () => {
    const numbers = db.collection("numbers");
    expect(await numbers.countDocuments({ even: false })).toBe(12);
    expect(await numbers.countDocuments({}, { skip: 20, limit: 10 })).toBe(5);
    expect(await numbers.estimatedDocumentCount()).toBe(25);
    expect((await numbers.distinct("even")).sort()).toEqual([false, true]);
    await numbers.insertMany([{ tags: ["a", "b"] }, { tags: ["b", "c"] }, { tags: "d" }]);
    expect((await numbers.distinct("tags")).sort()).toEqual(["a", "b", "c", "d"]);
    expect(await numbers.distinct("n", { n: { $lt: 3 } })).toEqual([0, 1, 2]);
  });
});

describe("aggregation", () => {
  it("$match, $group, $project, $sort, $lookup and $unwind", async () => {
    await db.collection("customers").insertMany([
      { _id: 1, name: "Ann", country: "FI" },
      { _id: 2, name: "Bob", country: "SE" },
    ]);
    await db.collection("orders").insertMany([
      { _id: 10, customer: 1, total: 30, items: ["x", "y"] },
      { _id: 11, customer: 1, total: 12, items: ["z"] },
      { _id: 12, customer: 2, total: 7, items: [] },
      { _id: 13, customer: 2, total: 100, items: ["x"], status: "void" },
    ]);
    const totals = await db
      .collection("orders")
      .aggregate([
        { $match: { status: { $ne: "void" } } },
        { $group: { _id: "$customer", spent: { $sum: "$total" }, orders: { $sum: 1 } } },
        { $lookup: { from: "customers", localField: "_id", foreignField: "_id", as: "customer" } },
        { $unwind: "$customer" },
        { $project: { _id: 0, name: "$customer.name", spent: 1, orders: 1 } },
        { $sort: { spent: -1 } },
      ])
      .toArray();
    expect(totals).toEqual([
      { name: "Ann", spent: 42, orders: 2 },
      { name: "Bob", spent: 7, orders: 1 },
    ]);
    const unwound = await db.collection("orders").aggregate([{ $unwind: "$items" }, { $count: "n" }]).toArray();
    expect(unwound).toEqual([{ n: 4 }]);
    expect(server.databases.documents("shop", "orders")[0]).toEqual({ _id: 10, customer: 1, total: 30, items: ["x", "y"] });
  });

  it("a large aggregate result comes in batches", async () => {
    await db.collection("many").insertMany(Array.from({ length: 500 }, (_, index) => ({ index })));
    const events = recordCommands(client);
    const out = await db.collection("many").aggregate([{ $sort: { index: -1 } }], { batchSize: 100 }).toArray();
    expect(out).toHaveLength(500);
    expect(out[0]?.index).toBe(499);
    expect(events.filter((event) => event.commandName === "getMore")).toHaveLength(4);
  });

  it("$out and $merge write collections", async () => {
    await db.collection("source").insertMany([{ _id: 1, v: 1 }, { _id: 2, v: 2 }]);
    await db.collection("source").aggregate([{ $match: { v: { $gt: 1 } } }, { $out: "copy" }]).toArray();
    expect(server.databases.documents("shop", "copy")).toEqual([{ _id: 2, v: 2 }]);
    await db.collection("source").aggregate([{ $set: { w: true } }, { $merge: { into: "copy" } }]).toArray();
    expect(server.databases.documents("shop", "copy")).toEqual([
      { _id: 2, v: 2, w: true },
      { _id: 1, v: 1, w: true },
    ]);
  });
});

describe("collections and indexes", () => {
  it("createCollection, listCollections, rename and drop", async () => {
    await db.createCollection("a");
    await db.collection("b").insertOne({ x: 1 });
    const names = (await db.listCollections().toArray()).map((info) => info.name);
    expect(names).toEqual(["a", "b"]);
    const info = await db.listCollections({ name: "b" }).toArray();
    expect(info[0]).toMatchObject({ name: "b", type: "collection", options: {}, info: { readOnly: false } });
    const exists = await db.createCollection("a").catch((caught: unknown) => caught);
    expect((exists as MongoServerError).code).toBe(48);
    await db.collection("b").rename("c");
    expect(server.databases.collectionNames("shop")).toEqual(["a", "c"]);
    expect(await db.collection("c").drop()).toBe(true);
    expect(server.databases.collectionNames("shop")).toEqual(["a"]);
    const listed = await client.db("admin").admin().listDatabases();
    expect(listed.databases.map((database) => database.name)).toContain("shop");
  });

  it("createIndex, listIndexes, a unique index's duplicate and dropIndex", async () => {
    const users = db.collection("users");
    await users.insertOne({ email: "a@example.com" });
    expect(await users.createIndex({ email: 1 }, { unique: true })).toBe("email_1");
    expect(await users.createIndex({ age: -1 })).toBe("age_-1");
    const indexes = await users.listIndexes().toArray();
    expect(indexes).toEqual([
      { v: 2, key: { _id: 1 }, name: "_id_" },
      { v: 2, key: { email: 1 }, name: "email_1", unique: true },
      { v: 2, key: { age: -1 }, name: "age_-1" },
    ]);
    const duplicate = await users.insertOne({ email: "a@example.com" }).catch((caught: unknown) => caught);
    expect(duplicate).toBeInstanceOf(MongoServerError);
    expect((duplicate as MongoServerError).code).toBe(11000);
    expect((duplicate as MongoServerError).message).toBe('E11000 duplicate key error collection: shop.users index: email_1 dup key: { email: "a@example.com" }');
    await users.dropIndex("email_1");
    await users.insertOne({ email: "a@example.com" });
    expect((await users.listIndexes().toArray()).map((index) => index.name)).toEqual(["_id_", "age_-1"]);
    const missing = await users.dropIndex("nope").catch((caught: unknown) => caught);
    expect((missing as MongoServerError).code).toBe(27);
    const noCollection = await db.collection("ghost").listIndexes().toArray().catch((caught: unknown) => caught);
    expect((noCollection as MongoServerError).codeName).toBe("NamespaceNotFound");
  });
});

describe("errors", () => {
  it("a duplicate _id is MongoServerError 11000 with writeErrors", async () => {
    const items = db.collection("items");
    await items.insertOne({ _id: 1 });
    const error = await items.insertOne({ _id: 1 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MongoServerError);
    const server11000 = error as MongoServerError;
    expect(server11000.code).toBe(11000);
    expect(server11000.errmsg).toBe("E11000 duplicate key error collection: shop.items index: _id_ dup key: { _id: 1 }");
    expect(server11000.keyValue).toEqual({ _id: 1 });
    expect(server11000.errorResponse.writeErrors).toBeUndefined();

    const bulk = await items.insertMany([{ _id: 2 }, { _id: 1 }, { _id: 3 }]).catch((caught: unknown) => caught);
    expect(bulk).toBeInstanceOf(MongoBulkWriteError);
    const bulkError = bulk as MongoBulkWriteError;
    expect(bulkError.code).toBe(11000);
    expect(bulkError.insertedCount).toBe(1);
    expect(bulkError.writeErrors).toHaveLength(1);
    const [first] = bulkError.writeErrors as unknown as { index: number; code: number; errmsg: string }[];
    expect(first).toMatchObject({ index: 1, code: 11000 });
    expect(first?.errmsg).toMatch(/^E11000 duplicate key error/);

    const unordered = await items.insertMany([{ _id: 1 }, { _id: 4 }, { _id: 2 }], { ordered: false }).catch((caught: unknown) => caught);
    expect((unordered as MongoBulkWriteError).writeErrors).toHaveLength(2);
    expect(server.databases.documents("shop", "items").map((document) => document._id)).toEqual([1, 2, 4]);
  });

  it("an unknown command is CommandNotFound (59)", async () => {
    const error = await db.command({ frobnicate: 1 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MongoServerError);
    expect((error as MongoServerError).code).toBe(59);
    expect((error as MongoServerError).codeName).toBe("CommandNotFound");
    expect((error as MongoServerError).message).toBe("no such command: 'frobnicate'");
  });

  it("ping, buildInfo, hello and getParameter answer like a server", async () => {
    expect(await db.command({ ping: 1 })).toEqual({ ok: 1 });
    const info = await client.db("admin").command({ buildInfo: 1 });
    expect(info.version).toMatch(/^7\.0\./);
    const hello = await db.command({ hello: 1 });
    expect(hello).toMatchObject({ isWritablePrimary: true, maxWireVersion: 21, setName: "rs0", logicalSessionTimeoutMinutes: 30 });
    const parameter = await client.db("admin").command({ getParameter: 1, featureCompatibilityVersion: 1 });
    expect(parameter.featureCompatibilityVersion).toEqual({ version: "7.0" });
  });
});

describe("transactions", () => {
  it("withTransaction commits: nothing is visible outside before the commit, everything after", async () => {
    const accounts = db.collection<{ _id: string; balance: number }>("accounts");
    await accounts.insertMany([{ _id: "a", balance: 100 }, { _id: "b", balance: 0 }]);
    const session = client.startSession();
    try {
      await session.withTransaction(async () => {
        await accounts.updateOne({ _id: "a" }, { $inc: { balance: -40 } }, { session });
        await accounts.updateOne({ _id: "b" }, { $inc: { balance: 40 } }, { session });
        await accounts.insertOne({ _id: "log", balance: 40 }, { session });
        // Inside, the transaction reads its own writes; outside, nothing changed yet.
        expect((await accounts.findOne({ _id: "b" }, { session }))?.balance).toBe(40);
        expect((await accounts.findOne({ _id: "b" }))?.balance).toBe(0);
        expect(server.databases.count("shop", "accounts")).toBe(2);
      });
    } finally {
      await session.endSession();
    }
    expect(server.databases.documents("shop", "accounts")).toEqual([
      { _id: "a", balance: 60 },
      { _id: "b", balance: 40 },
      { _id: "log", balance: 40 },
    ]);
  });

  it("withTransaction aborts when the callback throws, and nothing is written", async () => {
    const accounts = db.collection("accounts");
    await accounts.insertOne({ _id: "a", balance: 100 });
    const events = recordCommands(client);
    const session = client.startSession();
    try {
      await expect(
        session.withTransaction(async () => {
          await accounts.updateOne({ _id: "a" }, { $set: { balance: 0 } }, { session });
          await accounts.insertOne({ _id: "x" }, { session });
          throw new Error("changed my mind");
        }),
      ).rejects.toThrow("changed my mind");
    } finally {
      await session.endSession();
    }
    expect(events.map((event) => event.commandName)).toContain("abortTransaction");
    expect(server.databases.documents("shop", "accounts")).toEqual([{ _id: "a", balance: 100 }]);
  });

  it("a duplicate key inside a transaction aborts it", async () => {
    const accounts = db.collection("accounts");
    await accounts.insertOne({ _id: "a" });
    const session = client.startSession();
    try {
      session.startTransaction();
      await accounts.insertOne({ _id: "b" }, { session });
      const error = await accounts.insertOne({ _id: "a" }, { session }).catch((caught: unknown) => caught);
      expect((error as MongoServerError).code).toBe(11000);
      const after = await accounts.insertOne({ _id: "c" }, { session }).catch((caught: unknown) => caught);
      expect((after as MongoServerError).codeName).toBe("NoSuchTransaction");
      expect((after as MongoServerError).hasErrorLabel("TransientTransactionError")).toBe(true);
      await session.abortTransaction();
    } finally {
      await session.endSession();
    }
    expect(server.databases.documents("shop", "accounts")).toEqual([{ _id: "a" }]);
  });

  it("a write outside the transaction to the same collection makes its commit a WriteConflict", async () => {
    const accounts = db.collection("accounts");
    await accounts.insertOne({ _id: "a", n: 0 });
    const session = client.startSession();
    try {
      session.startTransaction();
      await accounts.updateOne({ _id: "a" }, { $set: { n: 1 } }, { session });
      await accounts.updateOne({ _id: "a" }, { $set: { n: 2 } });
      const error = await session.commitTransaction().catch((caught: unknown) => caught);
      expect((error as MongoServerError).codeName).toBe("WriteConflict");
    } finally {
      await session.endSession();
    }
    expect(server.databases.documents("shop", "accounts")).toEqual([{ _id: "a", n: 2 }]);
  });

  it("commands a transaction may not run are refused", async () => {
    const session = client.startSession();
    try {
      session.startTransaction();
      const error = await db.collection("accounts").countDocuments({}, { session }).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      // countDocuments is an aggregate, which is allowed; count is not.
      expect(error).toBeUndefined();
      const refused = await db.command({ count: "accounts" }, { session }).catch((caught: unknown) => caught);
      expect((refused as MongoServerError).codeName).toBe("OperationNotSupportedInTransaction");
      await session.abortTransaction().catch(() => undefined);
    } finally {
      await session.endSession();
    }
  });
});

describe("change streams", () => {
  it("watch sees inserts, updates (with updateLookup) and deletes", async () => {
    const orders = db.collection("orders");
    await orders.insertOne({ _id: 0 });
    const stream = orders.watch([], { fullDocument: "updateLookup", maxAwaitTimeMS: 200 });
    try {
      const first = stream.tryNext();
      expect(await first).toBeNull();
      await orders.insertOne({ _id: 1, status: "new" });
      await orders.updateOne({ _id: 1 }, { $set: { status: "paid" } });
      await orders.deleteOne({ _id: 1 });
      const insert = await stream.next();
      expect(insert).toMatchObject({ operationType: "insert", ns: { db: "shop", coll: "orders" }, documentKey: { _id: 1 }, fullDocument: { _id: 1, status: "new" } });
      const update = await stream.next();
      expect(update).toMatchObject({ operationType: "update", updateDescription: { updatedFields: { status: "paid" }, removedFields: [] } });
      const removal = await stream.next();
      expect(removal).toMatchObject({ operationType: "delete", documentKey: { _id: 1 } });
      expect(stream.resumeToken).toEqual(removal._id);
    } finally {
      await stream.close();
    }
  });

  it("resumes after a token", async () => {
    const orders = db.collection("orders");
    const stream = orders.watch([{ $match: { operationType: "insert" } }], { maxAwaitTimeMS: 100 });
    await stream.tryNext();
    await orders.insertMany([{ _id: 1 }, { _id: 2 }]);
    const first = await stream.next();
    await stream.close();
    const resumed = orders.watch([], { resumeAfter: first._id, maxAwaitTimeMS: 100 });
    try {
      const next = await resumed.next();
      expect(next).toMatchObject({ operationType: "insert", documentKey: { _id: 2 } });
    } finally {
      await resumed.close();
    }
  });
});
