import type { MongoClient } from "mongodb";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startMongoTestServer, type MongoTestServer } from "../src/index.js";
import { ADMIN, closeClient, connect, recordCommands } from "./support.js";

/** 200,000 small documents through the driver: inserted in write batches, read back in cursor batches. */
const COUNT = 200_000;
let server: MongoTestServer;
let client: MongoClient;

beforeAll(async () => {
  server = await startMongoTestServer({ users: [ADMIN], scramIterations: { sha1: 4096, sha256: 4096 } });
  client = await connect(server, ADMIN, {}, { monitorCommands: true });
});
afterAll(async () => {
  await closeClient(server, client);
  await server.close();
});

it("inserts 200,000 documents with insertMany", async () => {
  const documents = Array.from({ length: COUNT }, (_, index) => ({ _id: index, n: index % 1000, s: `row ${index}` }));
  const started = performance.now();
  const result = await client.db("big").collection("rows").insertMany(documents);
  const seconds = (performance.now() - started) / 1000;
  expect(result.insertedCount).toBe(COUNT);
  expect(server.databases.count("big", "rows")).toBe(COUNT);
  expect(seconds).toBeLessThan(20);
});

it("finds all 200,000 in batches, in order, in a few seconds", async () => {
  const events = recordCommands(client);
  const started = performance.now();
  const rows = await client.db("big").collection("rows").find({}).toArray();
  const seconds = (performance.now() - started) / 1000;
  expect(rows).toHaveLength(COUNT);
  expect(rows.every((row, index) => row._id === index)).toBe(true);
  // 101 in the first batch, then getMore batches of up to 16 MiB.
  expect(events.filter((event) => event.commandName === "getMore").length).toBeGreaterThanOrEqual(1);
  expect(seconds).toBeLessThan(10);
  expect(server.cursorCount).toBe(0);
});

it("iterates all 200,000 with batchSize 1000: 200 batches", async () => {
  const events = recordCommands(client);
  const started = performance.now();
  let seen = 0;
  let sum = 0;
  for await (const row of client.db("big").collection("rows").find({ n: { $gte: 0 } }, { batchSize: 1000, projection: { n: 1 } })) {
    seen++;
    sum += row.n as number;
  }
  const seconds = (performance.now() - started) / 1000;
  expect(seen).toBe(COUNT);
  expect(sum).toBe(200 * ((999 * 1000) / 2));
  expect(events.filter((event) => event.commandName === "getMore")).toHaveLength(199);
  expect(seconds).toBeLessThan(15);
});
