// The MongoDB side: there is no mongod on this machine (none in Debian, and nothing may download
// one), so the MongoDB targets run against the project's stand-in, packages/mongo-test-server (an
// in-process JavaScript server whose query semantics come from mingo), started by the harness as
// its own process (lib/mongo-server.mjs) and seeded with the bench collections.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { freePort, startProcess, waitFor } from "./util.mjs";

export const MONGO_DB = "airlock_bench";
/** The account the agent logs in as (SCRAM-SHA-256, authSource admin), and mongo-direct's, so both read with the same grants. */
export const MONGO_USER = "airlock_bench";
/** Point finds by _id: small documents shaped like pgbench_accounts. */
export const MONGO_POINT_COLLECTION = "bench_accounts";
export const MONGO_POINT_DOCUMENTS = 100_000;
/** The masked bulk find: five fields (_id, name, email, card_number, created_at), email and card_number masked. */
export const MONGO_BULK_COLLECTION = "bench_people";
export const MONGO_BULK_DOCUMENTS = 200_000;
export const MONGO_BULK_BATCH = 1000;

const ROOT = join(import.meta.dirname, "../..");
const SERVER_DIST = join(ROOT, "packages/mongo-test-server/dist/index.js");
const EPOCH = Date.UTC(2024, 0, 1);

/** Document `id` of bench_accounts (like a pgbench_accounts row: aid, bid, abalance, filler). */
export function pointDocument(id) {
  return { _id: id, bid: 1 + Math.floor((id - 1) / 100_000), abalance: 0, filler: "" };
}

/** Document `id` of bench_people: the same values as the PostgreSQL and MariaDB bench_people rows. */
export function bulkDocument(id) {
  const pad = (value) => String(value).padStart(4, "0");
  return {
    _id: id,
    name: `Person ${id}`,
    email: `person${id}@example.com`,
    card_number: `4111 ${pad(id % 10000)} ${pad((id * 7) % 10000)} ${pad((id * 13) % 10000)}`,
    created_at: new Date(EPOCH + id * 1000),
  };
}

/** Throws with what to do when the stand-in is not built. */
export function checkMongoBuilt() {
  if (!existsSync(SERVER_DIST)) throw new Error("the MongoDB targets need the stand-in built (packages/mongo-test-server/dist missing): run `pnpm build`");
}

/** The stand-in's version as it reports it (SERVER_VERSION of the package), for the report. */
export async function mongoFacts() {
  const { SERVER_VERSION, MAX_WIRE_VERSION } = await import(pathToFileURL(SERVER_DIST).href);
  const pkg = JSON.parse(readFileSync(join(ROOT, "packages/mongo-test-server/package.json"), "utf8"));
  const mingo = pkg.dependencies?.mingo;
  return { serverVersion: SERVER_VERSION, maxWireVersion: MAX_WIRE_VERSION, mingo, driver: pkg.devDependencies?.mongodb };
}

/**
 * Starts the stand-in as a process in `dir` with the agent's account (a fresh random password,
 * written to `passwordFile`, mode 600, for the agent's password_file) and the seeded collections.
 * Returns { handle, port, password, seedSeconds }.
 */
export async function startMongoServer({ dir, passwordFile }) {
  checkMongoBuilt();
  const password = randomBytes(24).toString("base64url");
  writeFileSync(passwordFile, password, { mode: 0o600 });
  const port = await freePort();
  const handle = startProcess("mongo stand-in", process.execPath, [join(import.meta.dirname, "mongo-server.mjs"), String(port)], {
    logFile: join(dir, "mongo-server.log"),
    cwd: dir,
    env: { ...process.env, BENCH_MONGO_PASSWORD: password },
    pipeStdout: true,
  });
  let stdout = "";
  handle.child.stdout.setEncoding("utf8").on("data", (text) => (stdout += text));
  const line = await waitFor("the MongoDB stand-in to listen and be seeded", () => stdout.split("\n").find((text) => text.startsWith("{")), 120_000, handle);
  const ready = JSON.parse(line);
  if (ready.pointDocuments !== MONGO_POINT_DOCUMENTS || ready.bulkDocuments !== MONGO_BULK_DOCUMENTS) throw new Error(`the stand-in holds ${ready.pointDocuments} / ${ready.bulkDocuments} documents, not ${MONGO_POINT_DOCUMENTS} / ${MONGO_BULK_DOCUMENTS}`);
  return { handle, port: ready.port, password, seedSeconds: ready.seedSeconds };
}
