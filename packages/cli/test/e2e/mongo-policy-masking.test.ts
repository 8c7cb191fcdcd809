import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BSON, MongoBulkWriteError, MongoServerError, type ChangeStream, type ChangeStreamDocument, type Document, type MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { C, database, fields, fixture, forbiddenForms, maskCases, N, views, type MongoMaskCase } from "../../../gateway/test/mask/mongo/corpus.js";
import { startHarness, type Harness } from "../support/harness.js";
import { decodeStream, directClient, oidcClient, startCapturingProxy, type CapturingProxy, type Numbered } from "./mongo-policy-support.js";

// Issue 9's masking proof over the official driver: the unit masking corpus (nested paths,
// arrays, pipeline renames, $lookup into a sensitive collection, $where, errors that echo values,
// explain, findAndModify, distinct), run against the stand-in through the gateway, plus the
// driver's own helpers (cursors in batches of one, so every later document comes by getMore;
// insertOne against a unique index on a sensitive field; findOneAndUpdate; explain; watch()).
// A TCP proxy between the driver and the gateway keeps every byte the client receives: no canary
// may be in them, in any form (itself, base64, hex, reversed, other case, pieces, or the BSON
// encoding of the numbers, dates and ids), neither in the raw bytes nor in the decoded documents.
// An unmasked group gets exactly what the driver gets straight from the server.

const { EJSON } = BSON;
const forbidden = forbiddenForms();
/** The BSON encodings of the canaries that are not strings (int32, date and int64 little-endian, ids, UUID, Decimal128), to find in raw bytes. */
const forbiddenBytes: readonly (readonly [string, Buffer])[] = [
  ["salary1 int32", int32(N.salary1)],
  ["salary2 int32", int32(N.salary2)],
  ["birth1 date", int64(BigInt(N.birth1.getTime()))],
  ["birth2 date", int64(BigInt(N.birth2.getTime()))],
  ["ref1 ObjectId", Buffer.from(N.ref1.id)],
  ["ref2 ObjectId", Buffer.from(N.ref2.id)],
  ["uuid1", Buffer.from(N.uuid1.buffer)],
  ["balance1 Decimal128", Buffer.from(N.balance1.bytes)],
  ["visits1 int64", int64(N.visits1.toBigInt())],
];

function int32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeInt32LE(value);
  return bytes;
}

function int64(value: bigint): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigInt64LE(value);
  return bytes;
}

/** Every form of a canary found in bytes a client received. */
function leaks(bytes: Buffer, also: unknown = undefined): string[] {
  const raw = bytes.toString("latin1");
  const decoded = decodeStream(bytes)
    .map((body) => EJSON.stringify(body, { relaxed: false }))
    .join("\n");
  const seen = also === undefined ? "" : EJSON.stringify(also as Document, { relaxed: false });
  return [
    ...forbidden.filter((form) => raw.includes(form) || decoded.includes(form) || seen.includes(form)),
    ...forbiddenBytes.filter(([, encoded]) => bytes.includes(encoded)).map(([label]) => label),
  ];
}

/** The stand-in has no views: the corpus's view cases cannot run here (the unit test covers them). */
const VIEW_CASES = new Set(views.map((view) => view.name));
const usesView = (entry: MongoMaskCase) => VIEW_CASES.has(String(entry.command.find ?? entry.command.aggregate));
/** The corpus's change events are written out; watch() below gets real ones. */
const isChangeStream = (entry: MongoMaskCase) => JSON.stringify(entry.command).includes("$changeStream");
const cases = maskCases.filter((entry) => !usesView(entry) && !isChangeStream(entry));
/** Refused for the masked group: server-side JavaScript, an unknown stage, and copies of sensitive fields past masking. */
const REFUSED = ["$function over email", "unknown stage", "$where find", "out of customers", "merge of renamed email", "update pipeline copying email", "rename email"];

let harness: Harness;
let keyDir: string;
let maskedProxy: CapturingProxy;
let unmaskedProxy: CapturingProxy;
let masked: MongoClient;
let unmasked: MongoClient;
let direct: MongoClient;

beforeAll(async () => {
  keyDir = mkdtempSync(join(tmpdir(), "airlock-mask-key-"));
  writeFileSync(join(keyDir, "key"), randomBytes(32));
  const columns = fields.map((field) => `{ column: ${field.database}.${field.collection}.${field.path}, style: ${field.style}${field.keep === undefined ? "" : `, keep: ${field.keep}`} }`);
  harness = await startHarness({
    protocol: "mongodb",
    connectionExtra: `    masking:
      columns: [ ${columns.join(", ")} ]
      detectors: [email, card_number, secret]
      inference: allow`,
    extra: `masking: { key_file: ${join(keyDir, "key")} }`,
    policies: `policies:
  - name: readers
    groups: [feature-test]
    connections: [orders]
    actions: { read: allow, write: allow, dangerous: deny }
  - name: auditors
    groups: [auditors]
    connections: [orders]
    actions: { read: allow, write: allow, dangerous: deny }
    unbounded_write: allow
    unmasked: true`,
  });
  maskedProxy = await startCapturingProxy(harness.native);
  unmaskedProxy = await startCapturingProxy(harness.native);
  masked = await oidcClient(harness, {}, {}, maskedProxy.address);
  unmasked = await oidcClient(harness, { groups: ["auditors"] }, {}, unmaskedProxy.address);
  direct = await directClient(harness);
});

afterAll(async () => {
  await masked?.close();
  await unmasked?.close();
  await direct?.close();
  await maskedProxy?.close();
  await unmaskedProxy?.close();
  await harness?.close();
  if (keyDir !== undefined) rmSync(keyDir, { recursive: true, force: true });
});

/** The fixture as the corpus declares it, with a unique index on the sensitive `email`, set on the server itself. */
async function reset(): Promise<void> {
  const databases = harness.mongo?.databases;
  if (databases === undefined) throw new Error("no stand-in");
  databases.drop(database);
  for (const [name, documents] of Object.entries(fixture())) databases.insert(database, name, documents);
  await direct.db(database).command({ createIndexes: "customers", indexes: [{ key: { email: 1 }, name: "email_1", unique: true }] });
}

/** What the driver returned: the documents of a cursor, a reply, or the server's error. */
type Outcome = { readonly documents: Document[] } | { readonly reply: Document } | { readonly error: { code: unknown; errmsg: string; response: Document } };

/**
 * Runs a corpus command with the driver: find and aggregate through its cursors in batches of one
 * (every document after the first comes by getMore), the rest with db.command.
 */
async function run(client: MongoClient, command: Document): Promise<Outcome> {
  const { $db, ...body } = command;
  const db = client.db(String($db));
  try {
    if (body.find !== undefined) {
      const options = { batchSize: 1, ...(body.projection === undefined ? {} : { projection: body.projection as Document }), ...(body.sort === undefined ? {} : { sort: body.sort as Document }) };
      return { documents: await db.collection<Numbered>(String(body.find)).find(body.filter as Document, options).toArray() };
    }
    if (body.aggregate !== undefined && body.explain === undefined) {
      const pipeline = body.pipeline as Document[];
      const cursor = body.aggregate === 1 ? db.aggregate(pipeline, { batchSize: 1 }) : db.collection<Numbered>(String(body.aggregate)).aggregate(pipeline, { batchSize: 1 });
      return { documents: await cursor.toArray() };
    }
    return { reply: await db.command(body) };
  } catch (error) {
    if (!(error instanceof MongoServerError)) throw error;
    return { error: { code: error.code, errmsg: error.message, response: { ...error.errorResponse } } };
  }
}

/** An outcome without what differs from one connection to another (cluster time, session ids echoed by explain). */
function comparable(outcome: Outcome): unknown {
  return JSON.parse(
    EJSON.stringify(outcome as Document, (key: string, value: unknown) => (["$clusterTime", "operationTime", "lsid", "serverInfo", "$readPreference"].includes(key) ? undefined : value), undefined, { relaxed: false }),
  ) as unknown;
}

/** Whether a command may change the fixture. */
function writes(entry: MongoMaskCase): boolean {
  const name = Object.keys(entry.command)[0] ?? "";
  return ["insert", "update", "delete", "findAndModify"].includes(name) || /"\$(out|merge)"/.test(JSON.stringify(entry.command));
}

const refusedByGateway = (outcome: Outcome) => "error" in outcome && outcome.error.code === 13 && outcome.error.errmsg.startsWith("airlock:");

describe("masking through the gateway, over the official driver", () => {
  it("runs a corpus of at least 60 cases of every kind", () => {
    expect(cases.length).toBeGreaterThanOrEqual(60);
    const commands = cases.map((entry) => JSON.stringify(EJSON.serialize(entry.command)));
    for (const needle of ["$lookup", "$where", "$project", "$unwind", "$group", "$facet", "address.", "cards", "explain", "findAndModify", "distinct", "insert"]) {
      expect(commands.some((command) => command.includes(needle)), needle).toBe(true);
    }
  });

  const results = new Map<string, { masked: Outcome; unmasked: Outcome; canaries: number }>();

  // Each run starts from the fixture: reset after a command that may have written.
  let dirty = true;
  const fresh = async (entry: MongoMaskCase) => {
    if (dirty) await reset();
    dirty = writes(entry);
  };

  it.each(cases.map((entry) => [entry.label, entry] as const))("%s", async (label, entry) => {
    await fresh(entry);
    const start = maskedProxy.mark();
    const seenMasked = await run(masked, entry.command);
    const maskedBytes = maskedProxy.received(start);
    await fresh(entry);
    const unmaskedStart = unmaskedProxy.mark();
    const seenUnmasked = await run(unmasked, entry.command);
    const unmaskedBytes = unmaskedProxy.received(unmaskedStart);
    await fresh(entry);
    const straight = await run(direct, entry.command);
    dirty ||= writes(entry);

    expect(leaks(maskedBytes, seenMasked), EJSON.stringify(seenMasked)).toEqual([]);
    expect(refusedByGateway(seenMasked), EJSON.stringify(seenMasked)).toBe(REFUSED.includes(label));
    const canaries = leaks(unmaskedBytes).length;
    results.set(label, { masked: seenMasked, unmasked: seenUnmasked, canaries });
    if (!refusedByGateway(seenUnmasked)) {
      // An unmasked group sees the real values: exactly what the server answers the driver.
      expect(comparable(seenUnmasked)).toEqual(comparable(straight));
      // What is not sensitive survives masking (when this server returns it at all).
      const unmaskedText = EJSON.stringify(seenUnmasked);
      const maskedText = EJSON.stringify(seenMasked);
      for (const value of entry.keeps ?? []) if (unmaskedText.includes(value) && !REFUSED.includes(label)) expect(maskedText, value).toContain(value);
    }
  });

  it("found canaries in what the unmasked group received for nearly every case, and none for the masked group", () => {
    const carrying = [...results.entries()].filter(([, result]) => result.canaries > 0).map(([label]) => label);
    expect(carrying.length, carrying.join(", ")).toBeGreaterThanOrEqual(55);
    expect(leaks(maskedProxy.received())).toEqual([]);
    // The search finds every form, the BSON encodings too, where nothing is masked.
    const unmaskedLeaks = leaks(unmaskedProxy.received());
    expect(unmaskedLeaks.length).toBeGreaterThan(100);
    expect(unmaskedLeaks).toEqual(expect.arrayContaining(forbiddenBytes.map(([label]) => label)));
  });
});

describe("masking in the driver's helpers", () => {
  it("masks every getMore batch of a cursor, with the driver's cursor in batches of one", async () => {
    await reset();
    const more = Array.from({ length: 20 }, (_, index) => ({ _id: 100 + index, name: `n${index}`, email: `${C.email1}-${index}`, card: { number: `${C.card2}${index}` } }));
    harness.mongo?.databases.insert(database, "customers", more);
    const getMores = harness.mongo?.stats.commands.get("getMore") ?? 0;
    const start = maskedProxy.mark();
    const seen = await masked.db(database).collection<Numbered>("customers").find({}, { batchSize: 3, sort: { _id: 1 } }).toArray();
    expect(leaks(maskedProxy.received(start), seen)).toEqual([]);
    expect(seen).toHaveLength(22);
    expect(seen.map((document) => document.name)).toEqual(["Ann", "Bob", ...more.map((document) => document.name)]);
    expect(new Set(seen.map((document) => document.email))).toEqual(new Set(["[masked]"]));
    expect((harness.mongo?.stats.commands.get("getMore") ?? 0) - getMores).toBe(7);
    const real = await unmasked.db(database).collection<Numbered>("customers").find({}, { batchSize: 3, sort: { _id: 1 } }).toArray();
    expect(real.slice(2).map((document) => document.email)).toEqual(more.map((document) => document.email));
  });

  it("withholds a duplicate key error on a sensitive unique field (insertOne, insertMany, updateOne)", async () => {
    await reset();
    const start = maskedProxy.mark();
    const customers = masked.db(database).collection<Numbered>("customers");
    const insertOne = await customers.insertOne({ _id: 3, email: C.email1 }).catch((error: unknown) => error);
    expect(insertOne).toBeInstanceOf(MongoServerError);
    expect(insertOne).toMatchObject({ code: 11000 });
    const insertMany = await customers.insertMany([{ _id: 4, email: "fresh@example.org" }, { _id: 5, email: C.email2 }]).catch((error: unknown) => error);
    expect(insertMany).toBeInstanceOf(MongoBulkWriteError);
    expect(insertMany).toMatchObject({ code: 11000, result: { insertedCount: 1 } });
    const updateOne = await customers.updateOne({ _id: 1 }, { $set: { email: C.email2 } }).catch((error: unknown) => error);
    expect(updateOne).toMatchObject({ code: 11000 });
    // (The driver's writeErrors also carry the documents the client itself sent: only what it received counts.)
    expect(leaks(maskedProxy.received(start), [String(insertOne), String(insertMany), String(updateOne)])).toEqual([]);
    expect((insertMany as MongoBulkWriteError).writeErrors).toMatchObject([{ code: 11000, errmsg: expect.stringContaining("withheld") }]);

    await reset();
    const real = await unmasked.db(database).collection<Numbered>("customers").insertOne({ _id: 3, email: C.email1 }).catch((error: unknown) => error);
    expect(real).toMatchObject({ code: 11000, keyValue: { email: C.email1 } });
    expect(String(real)).toContain(C.email1);
  });

  it("masks findOneAndUpdate / findOneAndDelete values, distinct, countDocuments and explain", async () => {
    await reset();
    const start = maskedProxy.mark();
    const customers = masked.db(database).collection<Numbered>("customers");
    const updated = await customers.findOneAndUpdate({ _id: 1 }, { $set: { "address.street": C.street2 } }, { returnDocument: "after" });
    expect(updated).toMatchObject({ _id: 1, name: "Ann", email: "[masked]", address: { street: "[masked]", city: "Paris" } });
    const deleted = await customers.findOneAndDelete({ _id: 2 });
    expect(deleted).toMatchObject({ _id: 2, name: "Bob", email: "[masked]" });
    expect(await customers.distinct("cards.number")).toEqual(["[masked]", "[masked]"]);
    expect(await customers.distinct("address.city")).toEqual(["Paris"]);
    expect(await customers.countDocuments({ "address.city": "Paris" })).toBe(1);
    const explained = await customers.find({ email: C.email1 }).explain("executionStats");
    const aggregated = await customers.aggregate([{ $match: { ssn: C.ssn1 } }, { $project: { s: "$ssn" } }]).explain("queryPlanner");
    expect(EJSON.stringify(explained)).toContain("COLLSCAN");
    expect(leaks(maskedProxy.received(start), [updated, deleted, explained, aggregated])).toEqual([]);
    expect(harness.mongo?.databases.documents(database, "customers").map((document) => document._id)).toEqual([1]);
    expect(harness.mongo?.databases.documents(database, "customers")[0]?.address).toEqual({ street: C.street2, city: "Paris" });
  });

  it("masks change stream events (watch) and the unmasked group sees them whole", async () => {
    await reset();
    const start = maskedProxy.mark();
    const streams: ChangeStream[] = [];
    const open = (client: MongoClient) => {
      const stream = client.db(database).collection<Numbered>("customers").watch([], { fullDocument: "updateLookup", maxAwaitTimeMS: 50 });
      streams.push(stream);
      return stream;
    };
    try {
      const maskedStream = open(masked);
      const unmaskedStream = open(unmasked);
      // The streams exist on the server once their first (empty) batch came back.
      expect(await maskedStream.tryNext()).toBeNull();
      expect(await unmaskedStream.tryNext()).toBeNull();
      const writer = direct.db(database).collection<Numbered>("customers");
      await writer.insertOne({ _id: 3, name: "Cy", email: C.email2.toUpperCase(), ssn: `${C.ssn2}x`, cards: [{ number: C.cards1a, brand: "visa" }] });
      await writer.updateOne({ _id: 1 }, { $set: { "address.street": C.street2, email: `x${C.email1}`, "address.city": "Nice" } });
      await writer.replaceOne({ _id: 2 }, { name: "Bob", email: C.email2, salary: N.salary2 });
      await writer.deleteOne({ _id: 3 });
      const events = async (stream: ChangeStream) => {
        const seen: ChangeStreamDocument[] = [];
        while (seen.length < 4) seen.push(await stream.next());
        return seen;
      };
      const maskedEvents = await events(maskedStream);
      const unmaskedEvents = await events(unmaskedStream);
      expect(maskedEvents.map((event) => event.operationType)).toEqual(["insert", "update", "replace", "delete"]);
      expect(maskedEvents[0]).toMatchObject({ fullDocument: { _id: 3, name: "Cy", email: "[masked]", cards: [{ number: "[masked]", brand: "visa" }] } });
      expect(maskedEvents[1]).toMatchObject({ fullDocument: { _id: 1, name: "Ann", email: "[masked]", address: { street: "[masked]", city: "Nice" } } });
      expect(EJSON.stringify(maskedEvents[1])).toContain("Nice");
      expect(leaks(maskedProxy.received(start), maskedEvents)).toEqual([]);
      expect(unmaskedEvents[0]).toMatchObject({ fullDocument: { email: C.email2.toUpperCase(), cards: [{ number: C.cards1a }] } });
      expect(maskedEvents[1]).toMatchObject({ updateDescription: { updatedFields: { email: "[masked]", address: { street: "[masked]", city: "Nice" } } } });
      expect(unmaskedEvents[1]).toMatchObject({ updateDescription: { updatedFields: { address: { street: C.street2 }, email: `x${C.email1}` } } });
      expect(unmaskedEvents[2]).toMatchObject({ fullDocument: { email: C.email2, salary: N.salary2 } });
    } finally {
      for (const stream of streams) await stream.close();
    }
  });

  it("refuses $where for the masked group before it reaches the server", async () => {
    const wheres = harness.mongo?.stats.commands.get("find") ?? 0;
    await expect(masked.db(database).collection<Numbered>("customers").find({ $where: "this.email.length > 3" }).toArray()).rejects.toMatchObject({ code: 13 });
    await expect(masked.db(database).collection<Numbered>("customers").countDocuments({ $where: "true" })).rejects.toMatchObject({ code: 13 });
    expect(harness.mongo?.stats.commands.get("find") ?? 0).toBe(wheres);
  });
});
