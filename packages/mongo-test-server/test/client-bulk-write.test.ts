import { MongoClientBulkWriteError } from "mongodb";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startMongoTestServer, type MongoTestServer } from "../src/index.js";
import { ADMIN, closeClient, connect, recordCommands } from "./support.js";

/**
 * With maxWireVersion 25 (MongoDB 8.0) the driver's client.bulkWrite sends the bulkWrite command,
 * whose ops and nsInfo travel as OP_MSG document sequences: the stand-in's path for them.
 */
let server: MongoTestServer;

beforeAll(async () => {
  server = await startMongoTestServer({ users: [ADMIN], maxWireVersion: 25, scramIterations: { sha1: 4096, sha256: 4096 } });
});
afterAll(async () => {
  await server.close();
});

it("client.bulkWrite across two namespaces, sent as document sequences", async () => {
  const client = await connect(server, ADMIN, {}, { monitorCommands: true });
  const events = recordCommands(client);
  const before = server.stats.documentSequenceMessages;
  try {
    server.databases.insert("shop", "orders", [{ _id: 1, status: "new" }, { _id: 2, status: "new" }]);
    const result = await client.bulkWrite(
      [
        { namespace: "shop.orders", name: "insertOne", document: { _id: 3, status: "new" } },
        { namespace: "shop.orders", name: "updateMany", filter: { status: "new" }, update: { $set: { status: "seen" } } },
        { namespace: "shop.audit", name: "insertOne", document: { _id: "a", what: "bulk" } },
        { namespace: "shop.orders", name: "updateOne", filter: { _id: 9 }, update: { $set: { status: "upserted" } }, upsert: true },
        { namespace: "shop.orders", name: "deleteOne", filter: { _id: 1 } },
        { namespace: "shop.orders", name: "replaceOne", filter: { _id: 2 }, replacement: { status: "replaced" } },
      ],
      { verboseResults: true },
    );
    expect(result).toMatchObject({ insertedCount: 2, matchedCount: 4, modifiedCount: 4, upsertedCount: 1, deletedCount: 1 });
    expect(result.updateResults?.get(3)).toMatchObject({ didUpsert: true, upsertedId: 9 });
    expect(events.find((event) => event.commandName === "bulkWrite")?.databaseName).toBe("admin");
    expect(server.stats.documentSequenceMessages - before).toBe(1);
    expect(server.databases.documents("shop", "orders")).toEqual([
      { _id: 2, status: "replaced" },
      { _id: 3, status: "seen" },
      { _id: 9, status: "upserted" },
    ]);
    expect(server.databases.documents("shop", "audit")).toEqual([{ _id: "a", what: "bulk" }]);

    const error = await client
      .bulkWrite([
        { namespace: "shop.orders", name: "insertOne", document: { _id: 2 } },
        { namespace: "shop.orders", name: "insertOne", document: { _id: 10 } },
      ])
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MongoClientBulkWriteError);
    expect((error as MongoClientBulkWriteError).writeErrors.get(0)?.code).toBe(11000);
    expect(server.databases.count("shop", "orders")).toBe(3);
  } finally {
    await closeClient(server, client);
  }
});
