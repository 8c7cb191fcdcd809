// The MongoDB load client: the official `mongodb` driver (from the workspace: no dependency of the
// bench's own), in its own process so its CPU is measured apart from the harness.
//
//   node mongo-client.mjs point PORT AUTH DATABASE COLLECTION CLIENTS SECONDS DOCUMENTS LATENCY_FILE
//     CLIENTS concurrent loops on one MongoClient with maxPoolSize CLIENTS (every connection opened
//     and logged in before the clock starts), each running findOne({ _id: <random 1..DOCUMENTS> })
//     one after another for SECONDS; every operation's latency (µs, float64) goes to LATENCY_FILE.
//   node mongo-client.mjs bulk PORT AUTH DATABASE COLLECTION BATCH_SIZE
//     find({}) with batchSize BATCH_SIZE (firstBatch and every getMore), documents taken as raw BSON
//     (`raw: true`: the driver does not deserialize them) and counted with their bytes; the first
//     one is decoded, to show whether the masked fields came masked.
//
// AUTH: scram (BENCH_MONGO_USER / BENCH_MONGO_PASSWORD, authSource admin: the stand-in directly),
// oidc (MONGODB-OIDC with the token in BENCH_MONGO_TOKEN: Airlock's native listener) or none
// (`airlock connect`). Prints one JSON line.
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const ROOT = join(import.meta.dirname, "../..");
const require = createRequire(join(ROOT, "packages/mongo-test-server/package.json"));
const { BSON, MongoClient } = await import(pathToFileURL(require.resolve("mongodb")).href);

const [mode, portText, auth, database, collectionName, ...rest] = process.argv.slice(2);

function fail(message) {
  process.stderr.write(`mongo-client: ${message}\n`);
  process.exit(1);
}

/** A proxy that stops answering must not hang the harness: give up (exit 1) after `seconds`. */
function watchdog(seconds) {
  setTimeout(() => fail(`no end after ${seconds} s`), seconds * 1000).unref();
}

/** This process's user + system CPU seconds since `since` (process.cpuUsage()). */
function cpuSeconds(since) {
  const { user, system } = process.cpuUsage(since);
  return (user + system) / 1e6;
}

function client(maxPoolSize) {
  const options = { maxPoolSize, serverSelectionTimeoutMS: 15_000, connectTimeoutMS: 15_000, appName: "airlock-bench" };
  const address = `127.0.0.1:${portText}`;
  if (auth === "scram") {
    const user = encodeURIComponent(process.env.BENCH_MONGO_USER ?? "");
    const password = encodeURIComponent(process.env.BENCH_MONGO_PASSWORD ?? "");
    return new MongoClient(`mongodb://${user}:${password}@${address}/?directConnection=true&authSource=admin`, options);
  }
  if (auth === "oidc") {
    const token = process.env.BENCH_MONGO_TOKEN;
    if (!token) fail("BENCH_MONGO_TOKEN is not set");
    return new MongoClient(`mongodb://${address}/?directConnection=true&authMechanism=MONGODB-OIDC`, {
      ...options,
      authMechanismProperties: { OIDC_CALLBACK: async () => ({ accessToken: token }) },
    });
  }
  if (auth === "none") return new MongoClient(`mongodb://${address}/?directConnection=true`, options);
  return fail(`AUTH is scram, oidc or none, not ${auth}`);
}

try {
  if (mode === "point") {
    const [clientsText, secondsText, documentsText, latencyFile] = rest;
    const clients = Number(clientsText);
    const seconds = Number(secondsText);
    const documents = Number(documentsText);
    watchdog(seconds + 120);
    const mongo = client(clients);
    const openStarted = performance.now();
    await mongo.connect();
    const collection = mongo.db(database).collection(collectionName);
    // Every connection of the pool opened and logged in before the clock starts: as many
    // concurrent finds as clients (each checks out its own connection), twice.
    for (let pass = 0; pass < 2; pass++) await Promise.all(Array.from({ length: clients }, () => collection.findOne({ _id: 1 + Math.floor(Math.random() * documents) })));
    const openSeconds = (performance.now() - openStarted) / 1000;
    let latencies = new Float64Array(1 << 14);
    let transactions = 0;
    let missing = 0;
    const cpuAtStart = process.cpuUsage();
    const started = performance.now();
    const deadline = started + seconds * 1000;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        for (;;) {
          const id = 1 + Math.floor(Math.random() * documents);
          const sentAt = performance.now();
          const found = await collection.findOne({ _id: id });
          const now = performance.now();
          if (found?._id !== id) missing++;
          if (transactions === latencies.length) {
            const grown = new Float64Array(latencies.length * 2);
            grown.set(latencies);
            latencies = grown;
          }
          latencies[transactions++] = (now - sentAt) * 1000;
          if (now >= deadline) return;
        }
      }),
    );
    const elapsed = (performance.now() - started) / 1000;
    const clientCpuSeconds = cpuSeconds(cpuAtStart);
    await mongo.close();
    if (missing > 0) fail(`${missing} of ${transactions} finds did not return their document`);
    const used = latencies.subarray(0, transactions);
    writeFileSync(latencyFile, Buffer.from(used.buffer, used.byteOffset, used.byteLength));
    const sorted = Float64Array.from(used).sort();
    const at = (p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] / 1000;
    process.stdout.write(`${JSON.stringify({ clients, openSeconds, transactions, seconds: elapsed, tps: transactions / elapsed, p50Ms: at(50), p99Ms: at(99), clientCpuSeconds })}\n`);
  } else if (mode === "bulk") {
    const [batchText] = rest;
    const batchSize = Number(batchText);
    watchdog(900);
    const mongo = client(1);
    await mongo.connect();
    // A ping first, so the connection and its login are not in the read's time.
    await mongo.db(database).command({ ping: 1 });
    let rows = 0;
    let bytes = 0;
    let firstRow;
    let firstRowAt = 0;
    const cpuAtStart = process.cpuUsage();
    const started = performance.now();
    const cursor = mongo.db(database).collection(collectionName).find({}, { batchSize, raw: true });
    for await (const raw of cursor) {
      if (rows === 0) {
        firstRowAt = performance.now();
        const decoded = BSON.deserialize(raw);
        firstRow = Object.fromEntries(Object.entries(decoded).map(([key, value]) => [key, value instanceof Date ? value.toISOString() : value]));
      }
      rows++;
      bytes += raw.byteLength;
    }
    const seconds = (performance.now() - started) / 1000;
    const clientCpuSeconds = cpuSeconds(cpuAtStart);
    await mongo.close();
    process.stdout.write(`${JSON.stringify({ rows, bytes, seconds, firstRowMs: rows > 0 ? firstRowAt - started : undefined, firstRow, clientCpuSeconds })}\n`);
  } else {
    fail("usage: mongo-client.mjs point|bulk PORT AUTH DATABASE COLLECTION ...");
  }
} catch (error) {
  fail(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
}
