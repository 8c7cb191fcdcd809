import { createHash, randomBytes } from "node:crypto";
import { BSON, MongoClient, type ChangeStreamDocument, type Document } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyLines } from "../../../gateway/src/recording/index.js";
import { cli } from "../support/cli.js";
import { startHarness, type Harness } from "../support/harness.js";
import { oidcClient, recordingOf, sessionEnded, type RecordLine, type Numbered } from "./mongo-policy-support.js";

// Issue 9 through the gateway with the official driver: sessions and transactions (commit and
// abort), change streams, a write held for review (approved, then rejected with a reason), the
// session recording (the commands as Extended JSON, the results as the client saw them, masked),
// and `airlock replay` of a MongoDB session.

const { EJSON } = BSON;
const aliceKey = randomBytes(24).toString("base64url");
const sha = (key: string) => createHash("sha256").update(key).digest("hex");
const CANARY = `zq${randomBytes(6).toString("hex")}`;
/** A job whose writes need a reviewer: not in feature-test (another repository), in the `reviewed` group. */
const REVIEWED = { repository: "acme/other", groups: ["reviewed"] };

let harness: Harness;
const api = () => `http://${harness.gateway.httpAddress}`;

beforeAll(async () => {
  harness = await startHarness({
    protocol: "mongodb",
    connectionExtra: `    masking:
      columns: [ { column: shop.people.email, style: redact } ]
      inference: allow`,
    policies: `policies:
  - name: ci
    groups: [feature-test]
    connections: [orders]
    actions: { read: allow, write: allow, dangerous: deny }
  - name: writes-reviewed
    groups: [reviewed]
    connections: [orders]
    actions: { read: allow, write: review }
    reviewers: [dba]
    review_timeout: 20s`,
    extra: `reviewers:
  - { name: alice, key_sha256: ${sha(aliceKey)}, groups: [dba] }`,
  });
  harness.mongo?.databases.insert("shop", "people", [
    { _id: 1, name: "Ann", email: `${CANARY}@example.com` },
    { _id: 2, name: "Bob", email: `${CANARY}2@example.com` },
    { _id: 3, name: "Cy", email: `${CANARY}3@example.com` },
  ]);
});

afterAll(async () => {
  await harness?.close();
});

/** A driver client through `airlock connect` (the tunnel: no credentials). */
async function tunnelClient(): Promise<MongoClient> {
  const connect = await harness.connect();
  return MongoClient.connect(`mongodb://${connect.host}:${connect.port}/?directConnection=true`, { serverSelectionTimeoutMS: 5_000 });
}

describe.each(["native", "tunnel"] as const)("sessions and transactions through the %s path", (path) => {
  let client: MongoClient;
  beforeAll(async () => {
    client = path === "native" ? await oidcClient(harness) : await tunnelClient();
  });
  afterAll(async () => {
    await client?.close();
  });
  const collection = `txn_${path}`;
  const onServer = () => harness.mongo?.databases.documents("shop", collection) ?? [];

  it("commits a transaction with session.withTransaction", async () => {
    const session = client.startSession();
    try {
      await session.withTransaction(async () => {
        const target = client.db("shop").collection<Numbered>(collection);
        await target.insertOne({ _id: 1, step: "one" }, { session });
        await target.insertOne({ _id: 2, step: "two" }, { session });
        // Inside the transaction its writes are visible to it, and not yet on the server.
        expect(await target.countDocuments({}, { session })).toBe(2);
        expect(onServer()).toEqual([]);
      });
    } finally {
      await session.endSession();
    }
    expect(onServer()).toEqual([{ _id: 1, step: "one" }, { _id: 2, step: "two" }]);
    expect(harness.mongo?.stats.commands.get("commitTransaction")).toBeGreaterThanOrEqual(1);
  });

  it("aborts a transaction when its callback throws, and with abortTransaction", async () => {
    const target = client.db("shop").collection<Numbered>(collection);
    const session = client.startSession();
    try {
      await expect(
        session.withTransaction(async () => {
          await target.insertOne({ _id: 3, step: "never" }, { session });
          await target.updateOne({ _id: 1 }, { $set: { step: "changed" } }, { session });
          throw new Error("changed my mind");
        }),
      ).rejects.toThrow("changed my mind");
      session.startTransaction();
      await target.deleteOne({ _id: 2 }, { session });
      await session.abortTransaction();
    } finally {
      await session.endSession();
    }
    expect(onServer()).toEqual([{ _id: 1, step: "one" }, { _id: 2, step: "two" }]);
    expect(harness.mongo?.stats.commands.get("abortTransaction")).toBeGreaterThanOrEqual(2);
  });

  it("uses causally consistent sessions and ends them", async () => {
    const session = client.startSession({ causalConsistency: true });
    try {
      const target = client.db("shop").collection<Numbered>(collection);
      await target.updateOne({ _id: 1 }, { $set: { seen: true } }, { session });
      expect(await target.findOne({ _id: 1 }, { session })).toEqual({ _id: 1, step: "one", seen: true });
    } finally {
      await session.endSession();
    }
  });

  it("streams changes with watch()", async () => {
    const stream = client.db("shop").collection<Numbered>(collection).watch([], { maxAwaitTimeMS: 50 });
    try {
      expect(await stream.tryNext()).toBeNull();
      const writer = client.db("shop").collection<Numbered>(collection);
      await writer.insertOne({ _id: 10, step: "watched" });
      await writer.deleteOne({ _id: 10 });
      const events: ChangeStreamDocument[] = [await stream.next(), await stream.next()];
      expect(events.map((event) => event.operationType)).toEqual(["insert", "delete"]);
      expect(events[0]).toMatchObject({ fullDocument: { _id: 10, step: "watched" }, ns: { db: "shop", coll: collection } });
    } finally {
      await stream.close();
    }
  });
});

interface ReviewJson {
  readonly id: string;
  readonly status: string;
  readonly sql: string;
}

/** Waits for the pending review whose command contains `marker`. */
async function pendingReview(marker: string): Promise<ReviewJson> {
  for (let i = 0; i < 200; i++) {
    const listed = await cli(["reviews", "list", "--api", api(), "--json"], { AIRLOCK_REVIEWER_KEY: aliceKey });
    const review = (JSON.parse(listed.out) as ReviewJson[]).find((entry) => entry.status === "pending" && entry.sql.includes(marker));
    if (review !== undefined) return review;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no pending review of \`${marker}\``);
}

describe("a write held for review", () => {
  let held: MongoClient;
  let other: MongoClient;
  beforeAll(async () => {
    held = await oidcClient(harness, REVIEWED);
    other = await oidcClient(harness);
  });
  afterAll(async () => {
    await held?.close();
    await other?.close();
  });

  it("runs once a reviewer approves it, while other sessions go on", async () => {
    const insert = held.db("shop").collection<Numbered>("reviewed").insertOne({ _id: 1, note: "approved-write" });
    const review = await pendingReview("approved-write");
    expect(review.sql).toContain('"insert":"reviewed"');
    // Held: nothing on the server yet, and another session is served meanwhile.
    expect(harness.mongo?.databases.documents("shop", "reviewed")).toEqual([]);
    expect(await other.db("shop").collection<Numbered>("people").countDocuments()).toBe(3);
    // Reads of the held identity's policy do not wait for anyone.
    const approved = await cli(["reviews", "approve", review.id, "--api", api(), "--reason", "fine"], { AIRLOCK_REVIEWER_KEY: aliceKey });
    expect(approved).toMatchObject({ status: 0, out: `review ${review.id}: approved\n` });
    expect(await insert).toMatchObject({ acknowledged: true, insertedId: 1 });
    expect(harness.mongo?.databases.documents("shop", "reviewed")).toEqual([{ _id: 1, note: "approved-write" }]);
  });

  it("fails with the reviewer's reason once rejected, and writes nothing", async () => {
    const update = held
      .db("shop")
      .collection<Numbered>("reviewed")
      .updateOne({ _id: 1 }, { $set: { note: "rejected-write" } })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    const review = await pendingReview("rejected-write");
    const rejected = await cli(["reviews", "reject", review.id, "--api", api(), "--reason", "not on a friday"], { AIRLOCK_REVIEWER_KEY: aliceKey });
    expect(rejected.status).toBe(0);
    expect(await update).toMatchObject({ code: 13, codeName: "Unauthorized", errmsg: expect.stringContaining("not on a friday") });
    expect(harness.mongo?.databases.documents("shop", "reviewed")).toEqual([{ _id: 1, note: "approved-write" }]);
    // The session goes on: reads need no review.
    expect(await held.db("shop").collection<Numbered>("reviewed").findOne({ _id: 1 })).toEqual({ _id: 1, note: "approved-write" });
  });
});

describe("the recording of a MongoDB session, and airlock replay", () => {
  let session: string;
  let lines: RecordLine[];
  let text: string;

  beforeAll(async () => {
    const before = new Set((await harness.gateway.store.listSessions({ limit: 100 })).map((entry) => entry.id));
    const client = await oidcClient(harness, {}, { maxPoolSize: 1 });
    try {
      const people = client.db("shop").collection<Numbered>("people");
      await people.insertOne({ _id: 4, name: "Di", email: `${CANARY}4@example.com` });
      expect(await people.find({}, { sort: { _id: 1 }, batchSize: 2 }).toArray()).toHaveLength(4);
      await expect(people.insertOne({ _id: 1, name: "dup" })).rejects.toMatchObject({ code: 11000 });
      await expect(people.find({ $where: "this.name == 'Ann'" }).toArray()).rejects.toMatchObject({ code: 13 });
    } finally {
      await client.close();
    }
    const started = (await harness.gateway.store.listSessions({ limit: 100 })).filter((entry) => !before.has(entry.id));
    expect(started).toHaveLength(1);
    session = started[0]?.id ?? "";
    await sessionEnded(harness, session);
    ({ text, lines } = recordingOf(harness, session));
  });

  it("holds the commands as Extended JSON, each decision, and the results as the client saw them", async () => {
    const ended = await harness.gateway.store.getSession(session);
    expect(verifyLines(session, text, { records: ended?.recording?.records ?? -1, lastHash: ended?.recording?.lastHash ?? "" })).toMatchObject({ ok: true, ended: true });
    expect(lines[0]).toMatchObject({ type: "session_start", connection: "orders", identity: { groups: ["feature-test"] } });
    const statements = lines.filter((line) => line.type === "statement");
    const commands = statements.map((line) => EJSON.parse(String(line.sql)) as Document);
    // The driver ends its session on close: endSessions (when it gets there before the socket closes).
    expect(commands.map((command) => Object.keys(command)[0]).filter((name) => name !== "endSessions")).toEqual(["insert", "find", "getMore", "insert", "find"]);
    expect(commands[0]).toMatchObject({ insert: "people", documents: [{ _id: 4, name: "Di" }], $db: "shop" });
    expect(statements.slice(0, 5).map((line) => line.effect)).toEqual(["allow", "allow", "allow", "allow", "deny"]);
    expect(statements[4]).toMatchObject({ classes: ["dangerous"], rule: "ci" });

    const results = lines.filter((line) => line.type === "result" && line.command !== "endSessions");
    expect(results.map((line) => [line.command, line.ok])).toEqual([
      ["insert", true],
      ["find", true],
      ["getMore", true],
      ["insert", true],
      ["find", false],
    ]);
    expect(results[1]).toMatchObject({ documents: 2, sample: [{ _id: 1, name: "Ann", email: "[masked]" }, { _id: 2, name: "Bob", email: "[masked]" }] });
    expect(results[2]).toMatchObject({ documents: 2, sample: [{ _id: 3, name: "Cy", email: "[masked]" }, { _id: 4, name: "Di", email: "[masked]" }] });
    expect(results[3]).toMatchObject({ n: 0, writeErrors: [{ code: 11000 }] });
    // The gateway's refusal is recorded as the client got it.
    expect(results[4]).toMatchObject({ code: 13, error: expect.stringMatching(/^airlock: command denied by policy `ci`/) });
    expect(lines.at(-1)).toMatchObject({ type: "session_end", outcome: "client_closed" });
    // The command the client sent is recorded as sent; what came back only as the client saw it.
    expect(text.split(CANARY).length - 1).toBe(1);
    expect(String(statements[0]?.sql)).toContain(CANARY);
  });

  it("records the reviews of held writes and the reviewer's decisions", async () => {
    const reviews: RecordLine[] = [];
    for (const entry of await harness.gateway.store.listSessions({ limit: 100 })) {
      try {
        reviews.push(...recordingOf(harness, entry.id).lines.filter((line) => line.type === "review"));
      } catch {
        // a session refused before its recording
      }
    }
    expect(reviews.map((line) => line.status).sort()).toEqual(["approved", "rejected"]);
    expect(reviews.find((line) => line.status === "rejected")).toMatchObject({ actions: [{ reviewer: "alice", action: "reject", reason: "not on a friday" }] });
  });

  it("replays readably with airlock replay: commands field by field, batches as Extended JSON, errors and decisions", async () => {
    const replayed = await cli(["replay", session, "--api", api()], { AIRLOCK_REVIEWER_KEY: aliceKey });
    expect(replayed).toMatchObject({ status: 0, err: "" });
    const out = replayed.out.split("\n").map((line) => line.trimEnd());
    const after = (line: string) => out.slice(out.findIndex((candidate) => candidate.endsWith(line)) + 1);
    expect(out).toContain("connection: orders (mongodb, native listener)");
    expect(out.some((line) => /^ +\+\d+\.\d{3}s {2}command insert on shop:$/.test(line))).toBe(true);
    expect(after("command insert on shop:")[0]?.trim()).toBe('insert: "people"');
    expect(after("command insert on shop:")[1]?.trim()).toBe(`documents: [{"_id":4,"name":"Di","email":"${CANARY}4@example.com"}]`);
    expect(after("result of find: 2 documents").slice(0, 2).map((line) => line.trim())).toEqual(['{"_id":1,"name":"Ann","email":"[masked]"}', '{"_id":2,"name":"Bob","email":"[masked]"}']);
    expect(after("result of getMore: 2 documents").slice(0, 2).map((line) => line.trim())).toEqual(['{"_id":3,"name":"Cy","email":"[masked]"}', '{"_id":4,"name":"Di","email":"[masked]"}']);
    expect(after("result of insert: n 0, 1 write error")[0]?.trim()).toMatch(/^write error 11000 at 0: E11000 duplicate key error collection: shop\.people/);
    expect(out.some((line) => line.trim() === "=> DENY by ci [dangerous]")).toBe(true);
    expect(out.some((line) => /error 13 \(find\): airlock: command denied by policy `ci`: dangerous/.test(line))).toBe(true);
    expect(out.some((line) => /session ended: client_closed, \d+ statements/.test(line))).toBe(true);
    // Nothing of SQL's wording, and nothing unmasked from a result.
    expect(replayed.out).not.toMatch(/\brows?\b|statement \(simple\)/);
    expect(replayed.out.split(CANARY).length - 1).toBe(1);

    const json = await cli(["replay", session, "--api", api(), "--json"], { AIRLOCK_REVIEWER_KEY: aliceKey });
    expect((JSON.parse(json.out) as RecordLine[]).map((line) => line.type)).toEqual(lines.map((line) => line.type));
  });
});
