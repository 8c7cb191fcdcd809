import { BSON, MongoServerError, type Document, type MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mongoCorpus, type MongoCorpusEntry } from "../../../gateway/test/inspect/mongo/corpus.js";
import { startHarness, type Harness } from "../support/harness.js";
import { directClient, oidcClient, RawMongo, serverState } from "./mongo-policy-support.js";

// Issue 9's proof for a read-only group on MongoDB: every command of the analyser's corpus goes
// through the gateway's native listener as a group whose policy allows reads only, once with the
// official driver (db.command) and once as the corpus's exact OP_MSG. Every read runs (the
// stand-in may answer an error of its own); every write, DDL, admin and server-side JavaScript
// command gets the gateway's refusal, and the stand-in itself shows that nothing reached it and
// nothing changed. The agent logs in as root, so a command let through by mistake would show.

const { EJSON } = BSON;
/** Commands the gateway answers itself, as a standalone server, without the database. */
const HANDSHAKE = new Set(["hello", "isMaster", "ismaster"]);

let harness: Harness;
let driver: MongoClient;
let raw: RawMongo;
/** The stand-in's state once seeded. */
let initial: Document;

beforeAll(async () => {
  harness = await startHarness({
    protocol: "mongodb",
    policies: `policies:
  - name: readers
    groups: [feature-test]
    connections: [orders]
    actions: { read: allow }`,
  });
  // The corpus's fixture (see its header), and a user its user commands name.
  const databases = harness.mongo?.databases;
  if (databases === undefined) throw new Error("no stand-in");
  databases.insert("shop", "customers", [
    { _id: 1, name: "Ann", email: "ann@example.com", card: { number: "4111111111111111", expiry: "12/30" }, cards: [{ number: "5500000000000004" }], address: { street: "1 rue Haute", city: "Paris" }, tags: ["gold"] },
  ]);
  databases.insert("shop", "orders", [{ _id: 10, customer_id: 1, total: 12.5, status: "paid" }]);
  databases.insert("shop", "audit", [{ _id: 1, note: "x" }]);
  databases.insert("hr", "salaries", [{ _id: 1, amount: 100 }]);
  const direct = await directClient(harness);
  try {
    await direct.db("admin").command({ createUser: "app", pwd: "app-password", roles: ["read"] });
    await direct.db("shop").command({ createIndexes: "orders", indexes: [{ key: { status: 1 }, name: "status_1" }] });
  } finally {
    await direct.close();
  }
  driver = await oidcClient(harness);
  raw = await RawMongo.login(harness.native, await harness.token());
  initial = serverState(harness);
});

afterAll(async () => {
  raw?.close();
  await driver?.close();
  await harness?.close();
});

function isRead(entry: MongoCorpusEntry): boolean {
  return entry.classes.length === 1 && entry.classes[0] === "read";
}

function commandName(command: Document): string {
  return Object.keys(command)[0] ?? "";
}

/** The reply to the command, success or error, as a server document. */
async function viaDriver(command: Document): Promise<Document> {
  const { $db, ...rest } = command;
  try {
    return await driver.db(String($db)).command(rest);
  } catch (error) {
    // Only the server's answer counts: a driver-side failure would prove nothing.
    if (!(error instanceof MongoServerError)) throw error;
    return { ok: 0, code: error.code, codeName: error.codeName, errmsg: error.message };
  }
}

const stats = () => new Map(harness.mongo?.stats.commands ?? []);

describe.each([
  ["the official driver", viaDriver],
  ["raw OP_MSG", (command: Document) => raw.command(command)],
] as const)("the command corpus for a read-only group, sent with %s", (_via, send) => {
  const reads = mongoCorpus.filter(isRead);
  const refused = mongoCorpus.filter((entry) => !isRead(entry));

  it("covers every class", () => {
    expect(reads.length).toBeGreaterThanOrEqual(50);
    for (const kind of ["write", "ddl", "admin", "dangerous"] as const) expect(refused.filter((entry) => entry.classes.includes(kind)).length, kind).toBeGreaterThanOrEqual(10);
    expect(refused.filter((entry) => entry.unbounded === true).length).toBeGreaterThanOrEqual(10);
  });

  it.each(reads.map((entry) => [entry.label, entry] as const))("runs the read `%s`", async (_label, entry) => {
    const name = commandName(entry.command);
    const before = serverState(harness);
    const counted = stats().get(name) ?? 0;
    const reply = await send(entry.command);
    if (reply.ok !== 1) expect(String(reply.errmsg), EJSON.stringify(reply)).not.toMatch(/^airlock:/);
    if (HANDSHAKE.has(name)) {
      // Answered by the gateway: a standalone server, no topology of the real one.
      expect(reply).toMatchObject({ ok: 1, maxWireVersion: expect.any(Number) });
      expect(reply.hosts).toBeUndefined();
      expect(stats().get(name) ?? 0).toBe(counted);
    } else {
      expect(stats().get(name) ?? 0, "the command reached the server").toBe(counted + 1);
    }
    expect(serverState(harness)).toEqual(before);
  });

  it.each(refused.map((entry) => [entry.label, entry] as const))("refuses `%s` and the server is untouched", async (_label, entry) => {
    const before = serverState(harness);
    const counted = stats();
    const reply = await send(entry.command);
    if (HANDSHAKE.has(commandName(entry.command))) {
      // hello with speculativeAuthenticate: the gateway answers the hello itself and never
      // authenticates anyone on the database's connection.
      expect(reply.ok).toBe(1);
      expect(reply.speculativeAuthenticate).toBeUndefined();
    } else {
      expect(reply, EJSON.stringify(reply)).toMatchObject({ ok: 0, code: 13, codeName: "Unauthorized", errmsg: expect.stringMatching(/^airlock: /) });
    }
    expect(stats(), "no command reached the server").toEqual(counted);
    expect(serverState(harness)).toEqual(before);
  });
});

describe("after the whole corpus, twice", () => {
  it("the server holds exactly what it held before, and the sessions still serve reads", async () => {
    expect(Object.keys(initial).filter((key) => key.includes(".")).sort()).toEqual(["hr.salaries", "shop.audit", "shop.customers", "shop.orders"]);
    expect((initial.users as Document[]).map((user) => `${String(user.db)}.${String(user.username)}`)).toEqual(["admin.airlock_e2e_svc", "admin.app"]);
    expect(serverState(harness)).toEqual(initial);
    expect(await driver.db("shop").collection("audit").find().toArray()).toEqual([{ _id: 1, note: "x" }]);
    expect(await raw.command({ count: "orders", query: {}, $db: "shop" })).toMatchObject({ n: 1, ok: 1 });
  });

  it("logged every refusal as a deny", () => {
    const denials = harness.logs.map((line) => JSON.parse(line) as Document).filter((line) => line.msg === "statement decision" && line.effect === "deny");
    const refusedByPolicy = mongoCorpus.filter((entry) => !isRead(entry) && !HANDSHAKE.has(commandName(entry.command)));
    expect(denials).toHaveLength(refusedByPolicy.length * 2);
  });
});
