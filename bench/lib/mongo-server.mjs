// The MongoDB stand-in (packages/mongo-test-server, built dist) as its own process, seeded with the
// bench collections through its in-memory API (no wire, so seeding takes seconds, not minutes),
// so that its CPU is not the load client's nor the harness's.
// Usage: node mongo-server.mjs PORT   (the password of the agent's account in BENCH_MONGO_PASSWORD)
// Prints one JSON line once it listens and the data is in: { port, pointDocuments, bulkDocuments, seedSeconds }.
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { MONGO_BULK_COLLECTION, MONGO_BULK_DOCUMENTS, MONGO_DB, MONGO_POINT_COLLECTION, MONGO_POINT_DOCUMENTS, MONGO_USER, bulkDocument, pointDocument } from "./mongo.mjs";

const ROOT = join(import.meta.dirname, "../..");
const [portText] = process.argv.slice(2);
const password = process.env.BENCH_MONGO_PASSWORD;
if (!password) {
  process.stderr.write("mongo-server.mjs: BENCH_MONGO_PASSWORD is not set\n");
  process.exit(2);
}
const { startMongoTestServer } = await import(pathToFileURL(join(ROOT, "packages/mongo-test-server/dist/index.js")).href);

const started = performance.now();
// A standalone (no replica set: the bench needs no sessions' transactions nor change streams),
// no compression offered (the driver does not ask for any by default either).
const server = await startMongoTestServer({
  port: Number(portText ?? 0),
  users: [{ username: MONGO_USER, password, db: "admin", roles: [{ role: "read", db: MONGO_DB }] }],
  requireAuth: true,
  replicaSet: false,
  compressors: [],
});
const CHUNK = 10_000;
const seed = (collection, count, make) => {
  for (let from = 1; from <= count; from += CHUNK) {
    const documents = [];
    for (let id = from; id < from + CHUNK && id <= count; id++) documents.push(make(id));
    server.databases.insert(MONGO_DB, collection, documents);
  }
};
seed(MONGO_POINT_COLLECTION, MONGO_POINT_DOCUMENTS, pointDocument);
seed(MONGO_BULK_COLLECTION, MONGO_BULK_DOCUMENTS, bulkDocument);
const seedSeconds = (performance.now() - started) / 1000;
process.stdout.write(
  `${JSON.stringify({ port: server.port, pointDocuments: server.databases.count(MONGO_DB, MONGO_POINT_COLLECTION), bulkDocuments: server.databases.count(MONGO_DB, MONGO_BULK_COLLECTION), seedSeconds })}\n`,
);
const stop = () => {
  void server.close().then(() => process.exit(0));
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
