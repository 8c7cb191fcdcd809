import { MongoClient, type Document } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHarness, type Harness } from "../support/harness.js";

// MongoDB is verified against the project's stand-in server (packages/mongo-test-server) and the
// official driver: no mongod can be had on this machine.
let harness: Harness;
const DOCUMENTS = 200_000;

beforeAll(async () => {
  harness = await startHarness({ protocol: "mongodb" });
  const databases = harness.mongo?.databases;
  if (databases === undefined) throw new Error("no stand-in");
  const documents: Document[] = [];
  for (let i = 0; i < DOCUMENTS; i++) documents.push({ _id: i, name: `name-${i}`, n: i % 97, tags: ["a", String(i % 5)] });
  databases.insert("shop", "items", documents);
}, 120_000);
afterAll(async () => {
  await harness?.close();
});

/** A driver client through the native listener (MONGODB-OIDC with the job's token) or airlock connect (no credentials). */
async function client(path: "native" | "connect"): Promise<MongoClient> {
  if (path === "connect") {
    const connect = await harness.connect();
    return MongoClient.connect(`mongodb://${connect.host}:${connect.port}/?directConnection=true`, { serverSelectionTimeoutMS: 5_000 });
  }
  const token = await harness.token();
  return MongoClient.connect(`mongodb://${harness.native.host}:${harness.native.port}/?authMechanism=MONGODB-OIDC`, {
    serverSelectionTimeoutMS: 5_000,
    authMechanismProperties: { OIDC_CALLBACK: async () => ({ accessToken: token }) },
  });
}

describe.each(["native", "connect"] as const)("through the %s path", (path) => {
  let mongo: MongoClient;
  beforeAll(async () => {
    mongo = await client(path);
  });
  afterAll(async () => {
    await mongo?.close();
  });

  it("runs CRUD, cursors with getMore, aggregation and errors with the official driver", async () => {
    const items = mongo.db("shop").collection(`crud_${path}`);
    await items.insertMany([{ _id: 1, name: "a", n: 1 } as Document, { _id: 2, name: "b", n: 2 }]);
    expect(await items.find({}, { sort: { _id: 1 }, batchSize: 1 }).toArray()).toEqual([{ _id: 1, name: "a", n: 1 }, { _id: 2, name: "b", n: 2 }]);
    await items.updateOne({ _id: 1 }, { $set: { n: 10 } });
    expect(await items.findOne({ _id: 1 })).toEqual({ _id: 1, name: "a", n: 10 });
    expect(await items.aggregate([{ $group: { _id: null, total: { $sum: "$n" } } }]).toArray()).toEqual([{ _id: null, total: 12 }]);
    await expect(items.insertOne({ _id: 1, name: "dup" } as Document)).rejects.toMatchObject({ code: 11000 });
    expect(await items.deleteOne({ _id: 2 })).toMatchObject({ deletedCount: 1 });
    expect(await items.countDocuments()).toBe(1);
  });

  it(`returns a find over ${DOCUMENTS.toLocaleString("en")} documents exactly as directly, batch by batch`, { timeout: 120_000 }, async () => {
    const direct = await MongoClient.connect(harness.mongo?.uriFor({ username: "airlock_e2e_svc", password: harness.dbPassword }) ?? "", { serverSelectionTimeoutMS: 5_000 });
    try {
      const read = async (source: MongoClient) => {
        const batches: number[] = [];
        let count = 0;
        let sum = 0;
        const cursor = source.db("shop").collection("items").find({}, { sort: { _id: 1 }, batchSize: 5_000 });
        for await (const document of cursor) {
          count++;
          sum += (document._id as number) + String(document.name).length;
          if (cursor.bufferedCount() === 0) batches.push(count);
        }
        return { count, sum, batches: batches.length };
      };
      const expected = await read(direct);
      expect(expected.count).toBe(DOCUMENTS);
      // Memory while streaming is measured with gateway and agent as processes: mongo-memory.test.ts.
      expect(await read(mongo)).toEqual(expected);
    } finally {
      await direct.close();
    }
  });
});

describe("policy and masking", () => {
  it("denies a write for an identity whose policy allows reads only, and the server keeps its data", async () => {
    const readOnly = await startHarness({
      protocol: "mongodb",
      policies: `policies:
  - name: readers
    groups: [feature-test]
    connections: [orders]
    actions: { read: allow }`,
    });
    try {
      readOnly.mongo?.databases.insert("shop", "kept", [{ _id: 1, v: "x" }]);
      const token = await readOnly.token();
      const mongo = await MongoClient.connect(`mongodb://${readOnly.native.host}:${readOnly.native.port}/?authMechanism=MONGODB-OIDC`, {
        serverSelectionTimeoutMS: 5_000,
        authMechanismProperties: { OIDC_CALLBACK: async () => ({ accessToken: token }) },
      });
      try {
        const kept = mongo.db("shop").collection("kept");
        expect(await kept.find().toArray()).toEqual([{ _id: 1, v: "x" }]);
        await expect(kept.insertOne({ _id: 2 } as Document)).rejects.toMatchObject({ code: 13 });
        await expect(kept.deleteMany({})).rejects.toMatchObject({ code: 13 });
        await expect(mongo.db("shop").dropDatabase()).rejects.toMatchObject({ code: 13 });
        await expect(kept.find({ $where: "true" }).toArray()).rejects.toMatchObject({ code: 13 });
      } finally {
        await mongo.close();
      }
      expect(readOnly.mongo?.databases.documents("shop", "kept")).toEqual([{ _id: 1, v: "x" }]);
    } finally {
      await readOnly.close();
    }
  });

  it("masks declared fields in every batch, and an unmasked group sees the real values", async () => {
    const masked = await startHarness({
      protocol: "mongodb",
      connectionExtra: `    masking:
      columns: [ { column: shop.people.email, style: redact }, { column: shop.people.card.number, style: partial, keep: 4 } ]
      inference: allow`,
      policies: `policies:
  - name: readers
    groups: [feature-test]
    connections: [orders]
    actions: { read: allow }
  - name: auditors
    groups: [auditors]
    connections: [orders]
    actions: { read: allow }
    unmasked: true`,
    });
    try {
      const canary = "zq-canary-7731";
      masked.mongo?.databases.insert("shop", "people", [
        { _id: 1, name: "Ann", email: `${canary}@x`, card: { number: "4111222233334444" } },
        { _id: 2, name: "Bob", email: `${canary}2@x`, card: { number: "5500000000000004" } },
      ]);
      const connect = async (claims: Record<string, unknown>) => {
        const token = await masked.token(claims);
        return MongoClient.connect(`mongodb://${masked.native.host}:${masked.native.port}/?authMechanism=MONGODB-OIDC`, {
          serverSelectionTimeoutMS: 5_000,
          authMechanismProperties: { OIDC_CALLBACK: async () => ({ accessToken: token }) },
        });
      };
      const reader = await connect({});
      try {
        const people = reader.db("shop").collection("people");
        const seen = [
          await people.find({}, { batchSize: 1 }).toArray(),
          await people.aggregate([{ $project: { contact: { $concat: ["$name", " <", "$email", ">"] } } }]).toArray(),
          await people.findOne({ _id: 1 }),
        ];
        const text = JSON.stringify(seen);
        expect(text).not.toContain(canary);
        expect(text).not.toContain(Buffer.from(canary).toString("base64"));
        expect(text).toContain("Ann");
        expect(JSON.stringify(seen[0])).toContain("4444");
        expect(JSON.stringify(seen[0])).not.toContain("41112222");
      } finally {
        await reader.close();
      }
      const auditor = await connect({ groups: ["auditors"] });
      try {
        expect(await auditor.db("shop").collection("people").findOne({ _id: 1 })).toMatchObject({ email: `${canary}@x`, card: { number: "4111222233334444" } });
      } finally {
        await auditor.close();
      }
    } finally {
      await masked.close();
    }
  });
});
