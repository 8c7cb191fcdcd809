import { startMongoTestServer, type MongoTestServer } from "@airlock/mongo-test-server";
import { createMongoFramer, mongo, mongoOpcodes, opMsgFlags, opReplyFlags, type MongoFrame, type OpMsg, type OpReply } from "@airlock/wire";
import { Binary, serialize, type Document } from "bson";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer } from "node:tls";
import { inspect, promisify } from "node:util";
import { MongoClient, MongoServerError, type MongoClientOptions, type OIDCCallbackParams } from "mongodb";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  acceptMongoLogin,
  finishMongoLogin,
  MongoHandshakeError,
  type MongoClientLogin,
  type MongoHandshakeOptions,
} from "../src/listeners/mongo-handshake.js";

const run = promisify(execFile);
let certDir: string;
let cert: Buffer;
let key: Buffer;
let standIn: MongoTestServer;

/** A token shaped like a JWT (three base64url parts), `size` bytes long. */
function jwtLike(size = 900): string {
  const header = Buffer.from(JSON.stringify({ alg: "ES256", typ: "JWT", kid: "test" })).toString("base64url");
  const signature = randomBytes(64).toString("base64url");
  const room = size - header.length - signature.length - 2;
  const payload = randomBytes(Math.ceil((room * 3) / 4)).toString("base64url").slice(0, room);
  return `${header}.${payload}.${signature}`;
}

beforeAll(async () => {
  certDir = mkdtempSync(join(tmpdir(), "airlock-mongo-tls-"));
  await run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", join(certDir, "gw.key"), "-out", join(certDir, "gw.crt")]);
  cert = readFileSync(join(certDir, "gw.crt"));
  key = readFileSync(join(certDir, "gw.key"));
  // What the session relays to once the login is done: a stand-in without users, so the relayed
  // connection needs no login of its own.
  standIn = await startMongoTestServer({ compressors: ["zlib"] });
  standIn.databases.insert("shop", "orders", [{ _id: 1, item: "tea" }, { _id: 2, item: "cake" }]);
});

afterAll(async () => {
  await standIn?.close();
  rmSync(certDir, { recursive: true, force: true });
});

/** The stand-in's seeded documents. */
interface Order {
  _id: number;
  item: string;
}

/** One token the test gateway was shown, and what it decided. */
interface Attempt {
  readonly connection: number;
  readonly token: string;
  readonly accepted: boolean;
  readonly login: MongoClientLogin;
}

/** How one connection's login ended. */
interface Outcome {
  readonly login?: MongoClientLogin;
  readonly error?: MongoHandshakeError;
}

interface TestGateway {
  readonly port: number;
  readonly attempts: Attempt[];
  /** Which tokens pass; the test may change it between connections. */
  accepts: (token: string) => boolean;
  /** The outcome of the n-th connection (0-based), when its login ended. */
  outcome(index: number): Promise<Outcome>;
  /** The errors of every connection so far, once each login ended (a driver's monitor never logs in: close the client first). */
  errors(): Promise<MongoHandshakeError[]>;
  readonly connections: number;
  close(): Promise<void>;
}

const gateways = new Set<TestGateway>();

afterEach(async () => {
  const left = [...gateways];
  gateways.clear();
  await Promise.all(left.map((gateway) => gateway.close()));
});

/**
 * A listener made of acceptMongoLogin and finishMongoLogin: it checks each token with `accepts`,
 * refuses and waits for the next attempt, and once a token passes relays the connection, bytes as
 * they are, to the stand-in.
 */
async function startGateway(
  accepts: (token: string) => boolean,
  { tls = false, ...options }: Partial<MongoHandshakeOptions> & { tls?: boolean } = {},
): Promise<TestGateway> {
  const outcomes: Promise<Outcome>[] = [];
  const waiters: ((outcome: Promise<Outcome>) => void)[] = [];
  const sockets = new Set<Socket>();
  const attempts: Attempt[] = [];
  let connections = 0;
  const onConnection = (socket: Socket): void => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    const connection = ++connections;
    const outcome = (async (): Promise<Outcome> => {
      let login = await acceptMongoLogin(socket, { tls, connectionId: connection, ...options });
      for (;;) {
        const token = login.token.reveal();
        const accepted = gateway.accepts(token);
        attempts.push({ connection, token, accepted, login });
        if (accepted) {
          finishMongoLogin(login, true);
          relay(login);
          return { login };
        }
        login = await finishMongoLogin(login, false, "the token was refused");
      }
    })().catch((error: unknown): Outcome => {
      expect(error).toBeInstanceOf(MongoHandshakeError);
      return { error: error as MongoHandshakeError };
    });
    outcomes.push(outcome);
    waiters.shift()?.(outcome);
  };
  const server: Server = tls ? createTlsServer({ cert, key }, onConnection) : createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const gateway: TestGateway = {
    port: (server.address() as AddressInfo).port,
    attempts,
    accepts,
    get connections() {
      return connections;
    },
    outcome: (index) => outcomes[index] ?? new Promise<Outcome>((resolve) => waiters.push((outcome) => resolve(outcome))),
    errors: async () => (await Promise.all(outcomes)).flatMap((outcome) => (outcome.error === undefined ? [] : [outcome.error])),
    close: async () => {
      // Connections the test ended close by themselves; any still open after a moment were left open.
      const deadline = Date.now() + 2_000;
      while (sockets.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      const open = sockets.size;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      expect(open, "a test left a connection open").toBe(0);
    },
  };
  gateways.add(gateway);
  return gateway;
}

/** Bytes as they are, both ways, between the logged-in client and the stand-in. */
function relay(login: MongoClientLogin): void {
  const client = login.socket;
  const upstream = connect(standIn.port, "127.0.0.1");
  client.on("error", () => upstream.destroy());
  upstream.on("error", () => client.destroy());
  client.on("close", () => upstream.destroy());
  upstream.on("close", () => client.destroy());
  if (login.leftover.length > 0) upstream.write(login.leftover);
  client.pipe(upstream);
  upstream.pipe(client);
}

/** Records every server address the driver's topology ever held. */
function watchTopology(client: MongoClient): { addresses: Set<string>; types: Set<string> } {
  const seen = { addresses: new Set<string>(), types: new Set<string>() };
  client.on("topologyDescriptionChanged", (event) => {
    seen.types.add(event.newDescription.type);
    for (const address of event.newDescription.servers.keys()) seen.addresses.add(address);
  });
  return seen;
}

function oidcClient(port: number, callback: (params: OIDCCallbackParams) => Promise<{ accessToken: string }>, query = "", options: MongoClientOptions = {}): MongoClient {
  return new MongoClient(`mongodb://127.0.0.1:${port}/?authMechanism=MONGODB-OIDC${query}`, {
    authMechanismProperties: { OIDC_CALLBACK: callback },
    serverSelectionTimeoutMS: 5_000,
    ...options,
  });
}

// ---- the official driver -----------------------------------------------------------------------------

describe("the mongodb driver logs in through the listener", () => {
  it("by MONGODB-OIDC with OIDC_CALLBACK and directConnection=true, then runs CRUD on the relayed session", async () => {
    const token = jwtLike(1200);
    const gateway = await startGateway((presented) => presented === token);
    const calls: OIDCCallbackParams[] = [];
    const client = oidcClient(gateway.port, async (params) => {
      calls.push(params);
      return { accessToken: token };
    }, "&directConnection=true&appName=nightly-migration");
    const topology = watchTopology(client);
    await client.connect();
    const orders = client.db("shop").collection<Order>("orders");
    expect(await orders.find({}, { sort: { _id: 1 } }).toArray()).toEqual([{ _id: 1, item: "tea" }, { _id: 2, item: "cake" }]);
    await orders.insertOne({ _id: 3, item: "scone" });
    expect(await orders.countDocuments()).toBe(3);
    await orders.deleteOne({ _id: 3 });
    await client.close();

    expect(calls).toHaveLength(1);
    const [first] = gateway.attempts;
    expect(first?.accepted).toBe(true);
    expect(first?.login).toMatchObject({
      mechanism: "MONGODB-OIDC",
      authSource: "$external",
      tls: false,
      attempt: 1,
      reply: { via: "saslStart", opCode: mongoOpcodes.OP_MSG },
      clientMetadata: { driverName: "nodejs", applicationName: "nightly-migration" },
    });
    expect(first?.login.clientMetadata?.driverVersion).toMatch(/^6\.22\./);
    expect(first?.login.leftover).toEqual(Buffer.alloc(0));
    expect([...topology.addresses]).toEqual([`127.0.0.1:${gateway.port}`]);
    expect(topology.types.has("Single")).toBe(true);
  });

  it.each([
    ["directConnection=false", "&directConnection=false"],
    ["no directConnection", ""],
  ])("stays on the gateway's address with %s: a standalone names no other host", async (_, query) => {
    const token = jwtLike();
    const gateway = await startGateway((presented) => presented === token);
    const client = oidcClient(gateway.port, async () => ({ accessToken: token }), query);
    const topology = watchTopology(client);
    await client.connect();
    expect(await client.db("shop").collection("orders").countDocuments()).toBe(2);
    const description = client.options.hosts.map(String);
    await client.close();
    expect(description).toEqual([`127.0.0.1:${gateway.port}`]);
    expect([...topology.addresses]).toEqual([`127.0.0.1:${gateway.port}`]);
    expect([...topology.types].filter((type) => type !== "Unknown")).toEqual(["Single"]);
  });

  it("answers speculativeAuthenticate on the pool's later connections, once the caller accepted the cached token", async () => {
    const token = jwtLike();
    const gateway = await startGateway((presented) => presented === token);
    let calls = 0;
    const client = oidcClient(gateway.port, async () => {
      calls++;
      return { accessToken: token };
    });
    await client.connect();
    const orders = client.db("shop").collection("orders");
    // Parallel operations make the pool open more connections, which present the cached token in hello.
    await Promise.all(Array.from({ length: 6 }, () => orders.find({}).toArray()));
    await client.close();
    expect(calls).toBe(1);
    const vias = gateway.attempts.map((attempt) => attempt.login.reply.via);
    expect(vias[0]).toBe("saslStart");
    expect(vias.slice(1).length).toBeGreaterThan(0);
    expect(vias.slice(1).every((via) => via === "speculative")).toBe(true);
    const speculative = gateway.attempts.find((attempt) => attempt.login.reply.via === "speculative");
    // The driver's first hello is a legacy OP_QUERY, so the speculative answer is an OP_REPLY.
    expect(speculative?.login).toMatchObject({ authSource: "$external", mechanism: "MONGODB-OIDC", reply: { opCode: mongoOpcodes.OP_QUERY } });
  });

  it("lets a driver whose cached token went stale fetch a fresh one on the same connection", async () => {
    const stale = jwtLike();
    const fresh = jwtLike();
    let current = stale;
    const gateway = await startGateway((presented) => presented === current);
    let calls = 0;
    const client = oidcClient(gateway.port, async () => ({ accessToken: calls++ === 0 ? stale : fresh }));
    await client.connect();
    current = fresh;
    const orders = client.db("shop").collection("orders");
    await Promise.all(Array.from({ length: 6 }, () => orders.find({}).toArray()));
    await client.close();
    expect(calls).toBeGreaterThanOrEqual(2);
    const byConnection = new Map<number, Attempt[]>();
    for (const attempt of gateway.attempts.slice(1)) byConnection.set(attempt.connection, [...(byConnection.get(attempt.connection) ?? []), attempt]);
    const steps = [...byConnection.values()].map((list) => list.map((attempt) => [attempt.login.reply.via, attempt.token === stale ? "stale" : "fresh", attempt.accepted, attempt.login.attempt]));
    expect(steps.length).toBeGreaterThan(0);
    // Every later connection ends on the fresh token; the first to try the cached one in saslStart
    // went through all three steps: the stale token refused in hello, refused again, then the fresh one.
    for (const list of steps) expect(list.at(-1)?.slice(0, 3)).toEqual(["saslStart", "fresh", true]);
    expect(steps).toContainEqual([
      ["speculative", "stale", false, 1],
      ["saslStart", "stale", false, 2],
      ["saslStart", "fresh", true, 3],
    ]);
  });

  it("by MONGODB-OIDC with ENVIRONMENT=test and OIDC_TOKEN_FILE", async () => {
    const token = jwtLike();
    const gateway = await startGateway((presented) => presented === token);
    const file = join(certDir, "oidc-token");
    writeFileSync(file, token, { mode: 0o600 });
    const before = process.env.OIDC_TOKEN_FILE;
    process.env.OIDC_TOKEN_FILE = file;
    try {
      const client = new MongoClient(`mongodb://127.0.0.1:${gateway.port}/?authMechanism=MONGODB-OIDC&authMechanismProperties=ENVIRONMENT:test`, { serverSelectionTimeoutMS: 5_000 });
      await client.connect();
      expect(await client.db("shop").collection("orders").countDocuments()).toBe(2);
      await client.close();
    } finally {
      if (before === undefined) delete process.env.OIDC_TOKEN_FILE;
      else process.env.OIDC_TOKEN_FILE = before;
    }
    expect(gateway.attempts[0]).toMatchObject({ accepted: true, login: { mechanism: "MONGODB-OIDC", reply: { via: "saslStart" } } });
  });

  it("by the MONGODB-OIDC human flow: the principal step names the provider, the token comes in saslContinue", async () => {
    const token = jwtLike();
    const gateway = await startGateway((presented) => presented === token, { oidcProvider: { issuer: "https://idp.example.com", clientId: "airlock-cli", requestScopes: ["openid"] } });
    const seen: OIDCCallbackParams[] = [];
    const client = new MongoClient(`mongodb://alice@127.0.0.1:${gateway.port}/?authMechanism=MONGODB-OIDC`, {
      authMechanismProperties: {
        OIDC_HUMAN_CALLBACK: async (params) => {
          seen.push(params);
          return { accessToken: token };
        },
      },
      serverSelectionTimeoutMS: 5_000,
    });
    await client.connect();
    expect(await client.db("shop").collection("orders").countDocuments()).toBe(2);
    await client.close();
    expect(seen[0]?.idpInfo).toEqual({ issuer: "https://idp.example.com", clientId: "airlock-cli", requestScopes: ["openid"] });
    expect(seen[0]?.username).toBe("alice");
    expect(gateway.attempts[0]?.login).toMatchObject({ user: "alice", mechanism: "MONGODB-OIDC", reply: { via: "saslContinue", conversationId: 1 } });
  });

  it("refuses the human flow where no provider is configured, saying a token is needed", async () => {
    const gateway = await startGateway(() => true);
    const client = new MongoClient(`mongodb://127.0.0.1:${gateway.port}/?authMechanism=MONGODB-OIDC`, {
      authMechanismProperties: { OIDC_HUMAN_CALLBACK: async () => ({ accessToken: "never" }) },
      serverSelectionTimeoutMS: 5_000,
    });
    const error = await client.connect().catch((caught: unknown) => caught);
    await client.close();
    expect(error).toBeInstanceOf(MongoServerError);
    expect(error).toMatchObject({ code: 18, message: expect.stringContaining("OIDC_CALLBACK") });
    expect((await gateway.errors()).map((failure) => failure.code)).toContain("auth_unsupported");
  });

  it("refuses a wrong token: the driver sees AuthenticationFailed", async () => {
    const gateway = await startGateway((presented) => presented === "the-right-one");
    const client = oidcClient(gateway.port, async () => ({ accessToken: jwtLike() }));
    const error = await client.connect().catch((caught: unknown) => caught);
    await client.close();
    expect(error).toBeInstanceOf(MongoServerError);
    expect(error).toMatchObject({ code: 18, codeName: "AuthenticationFailed", message: "the token was refused" });
    expect(gateway.attempts.every((attempt) => !attempt.accepted)).toBe(true);
  });

  it("by PLAIN over TLS: any user, the token as the password", async () => {
    const token = jwtLike(2000);
    const gateway = await startGateway((presented) => presented === token, { tls: true, remoteAddress: "203.0.113.7" });
    const client = new MongoClient(`mongodb://127.0.0.1:${gateway.port}/?authMechanism=PLAIN&tls=true`, {
      auth: { username: "ci-job", password: token },
      ca: cert,
      serverSelectionTimeoutMS: 5_000,
    });
    await client.connect();
    expect(await client.db("shop").collection("orders").countDocuments()).toBe(2);
    await client.close();
    expect(gateway.attempts[0]?.login).toMatchObject({ mechanism: "PLAIN", user: "ci-job", tls: true, authSource: "$external", reply: { via: "saslStart" } });
  });

  it("by PLAIN without TLS from loopback", async () => {
    const token = jwtLike();
    const gateway = await startGateway((presented) => presented === token);
    const client = new MongoClient(`mongodb://127.0.0.1:${gateway.port}/?authMechanism=PLAIN`, { auth: { username: "ci", password: token }, serverSelectionTimeoutMS: 5_000 });
    await client.connect();
    expect(await client.db("shop").collection<Order>("orders").findOne({ _id: 2 })).toEqual({ _id: 2, item: "cake" });
    await client.close();
    expect(gateway.attempts[0]?.login).toMatchObject({ mechanism: "PLAIN", user: "ci", tls: false });
  });

  it("refuses PLAIN and MONGODB-OIDC without TLS from an address that is not loopback", async () => {
    const gateway = await startGateway(() => true, { remoteAddress: "203.0.113.7" });
    const plain = new MongoClient(`mongodb://127.0.0.1:${gateway.port}/?authMechanism=PLAIN`, { auth: { username: "ci", password: "token" }, serverSelectionTimeoutMS: 5_000 });
    const plainError = await plain.connect().catch((caught: unknown) => caught);
    await plain.close();
    expect(plainError).toMatchObject({ code: 18, message: "PLAIN carries the token in clear: connect with tls" });
    const oidc = oidcClient(gateway.port, async () => ({ accessToken: "token" }));
    const oidcError = await oidc.connect().catch((caught: unknown) => caught);
    await oidc.close();
    expect(oidcError).toMatchObject({ code: 18, message: "MONGODB-OIDC carries the token in clear: connect with tls" });
    expect(gateway.attempts).toHaveLength(0);
    expect((await gateway.errors()).filter((failure) => failure.code === "tls_required")).toHaveLength(2);
  });

  it("accepts the token in clear from any address with insecureAllowPlaintext", async () => {
    const gateway = await startGateway((presented) => presented === "token", { remoteAddress: "203.0.113.7", insecureAllowPlaintext: true });
    const client = new MongoClient(`mongodb://127.0.0.1:${gateway.port}/?authMechanism=PLAIN`, { auth: { username: "ci", password: "token" }, serverSelectionTimeoutMS: 5_000 });
    await client.connect();
    await client.close();
    expect(gateway.attempts[0]?.accepted).toBe(true);
  });

  it("refuses SCRAM (the driver's default mechanism) with 334 naming the mechanisms it takes", async () => {
    const gateway = await startGateway(() => true);
    const client = new MongoClient(`mongodb://admin:secret@127.0.0.1:${gateway.port}/`, { serverSelectionTimeoutMS: 5_000 });
    const error = await client.connect().catch((caught: unknown) => caught);
    await client.close();
    expect(error).toBeInstanceOf(MongoServerError);
    expect(error).toMatchObject({
      code: 334,
      codeName: "MechanismUnavailable",
      message: "authentication mechanism `SCRAM-SHA-1` is not available on this gateway: use MONGODB-OIDC with the job's OIDC token, or PLAIN with the OIDC token as the password",
    });
    expect((await gateway.errors()).map((failure) => failure.code)).toContain("auth_unsupported");
  });

  it("refuses commands before authentication with 13 Unauthorized", async () => {
    const gateway = await startGateway(() => true);
    const client = new MongoClient(`mongodb://127.0.0.1:${gateway.port}/`, { serverSelectionTimeoutMS: 5_000 });
    const error = await client.db("shop").collection("orders").findOne({}).catch((caught: unknown) => caught);
    await client.close();
    expect(error).toMatchObject({ code: 13, codeName: "Unauthorized", message: "command `find` requires authentication" });
  });

  it("reports logicalSessionTimeoutMinutes, so the driver uses sessions: a transaction commits on the relayed session", async () => {
    const token = jwtLike();
    const gateway = await startGateway((presented) => presented === token);
    const client = oidcClient(gateway.port, async () => ({ accessToken: token }));
    const commits = standIn.stats.commands.get("commitTransaction") ?? 0;
    const session = client.startSession();
    try {
      await session.withTransaction(async () => {
        await client.db("shop").collection<{ _id: number; amount: number }>("ledger").insertOne({ _id: 1, amount: 5 }, { session });
        await client.db("shop").collection<{ _id: number; amount: number }>("ledger").insertOne({ _id: 2, amount: 7 }, { session });
      });
    } finally {
      await session.endSession();
      await client.close();
    }
    expect(standIn.databases.documents("shop", "ledger")).toEqual([{ _id: 1, amount: 5 }, { _id: 2, amount: 7 }]);
    expect(standIn.stats.commands.get("commitTransaction")).toBe(commits + 1);
    standIn.databases.drop("shop", "ledger");
  });

  it("never agrees compression: a driver asking for zlib sends the relayed session uncompressed", async () => {
    const token = jwtLike();
    const gateway = await startGateway((presented) => presented === token);
    const before = standIn.stats.compressedMessages;
    const client = oidcClient(gateway.port, async () => ({ accessToken: token }), "&compressors=zlib");
    await client.connect();
    expect(await client.db("shop").collection("orders").countDocuments()).toBe(2);
    await client.close();
    expect(standIn.stats.compressedMessages).toBe(before);
  });

  it("keeps answering a monitor that never authenticates, beyond the first-message timeout", async () => {
    const token = jwtLike();
    const gateway = await startGateway((presented) => presented === token, { timeoutMs: 300, idleTimeoutMs: 2_000 });
    const client = oidcClient(gateway.port, async () => ({ accessToken: token }), "", { heartbeatFrequencyMS: 500 });
    let failed = 0;
    client.on("serverHeartbeatFailed", () => failed++);
    const heartbeats = new Promise<void>((resolve) => {
      let succeeded = 0;
      client.on("serverHeartbeatSucceeded", () => {
        if (++succeeded === 4) resolve();
      });
    });
    await client.connect();
    await heartbeats;
    expect(await client.db("shop").collection("orders").countDocuments()).toBe(2);
    await client.close();
    expect(failed).toBe(0);
  });
});

// ---- raw clients ------------------------------------------------------------------------------------

/** A client of our own encoders, reading whole replies. */
interface RawClient {
  send(bytes: Buffer): void;
  /** The next message from the gateway, decoded. */
  next(): Promise<MongoFrame>;
  /** Resolves when the gateway closed the connection; with the messages it sent that were not read. */
  closed(): Promise<MongoFrame[]>;
  end(): void;
}

async function rawClient(port: number): Promise<RawClient> {
  const socket = connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const framer = createMongoFramer({ maxMessageBytes: 1 << 20 });
  const frames: MongoFrame[] = [];
  const waiting: ((frame: MongoFrame) => void)[] = [];
  socket.on("data", (chunk: Buffer) => {
    for (const message of framer.push(chunk)) {
      const frame = mongo.decodeMessage(message.bytes);
      const waiter = waiting.shift();
      if (waiter === undefined) frames.push(frame);
      else waiter(frame);
    }
  });
  socket.on("error", () => undefined);
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return {
    send: (bytes) => socket.write(bytes),
    next: () => {
      const frame = frames.shift();
      return frame === undefined ? new Promise<MongoFrame>((resolve) => waiting.push(resolve)) : Promise.resolve(frame);
    },
    closed: async () => {
      await closed;
      return frames.splice(0);
    },
    end: () => socket.end(),
  };
}

let requestId = 100;

function command(body: Document, options: { checksum?: boolean; flagBits?: number } = {}): Buffer {
  return mongo.encodeOpMsg({ requestID: ++requestId, body, ...options });
}

function reply(frame: MongoFrame): Document {
  if (frame.opCode === mongoOpcodes.OP_MSG) return mongo.opMsgBody(frame);
  if (frame.opCode === mongoOpcodes.OP_REPLY) return frame.documents[0] ?? {};
  throw new Error(`unexpected opcode ${frame.opCode}`);
}

function plainStart(user: string, password: string, db = "$external"): Document {
  return { saslStart: 1, mechanism: "PLAIN", payload: new Binary(Buffer.from(`\0${user}\0${password}`)), autoAuthorize: 1, $db: db };
}

function oidcStart(payload: Document, db = "$external"): Document {
  return { saslStart: 1, mechanism: "MONGODB-OIDC", payload: new Binary(serialize(payload)), $db: db };
}

describe("the handshake as a server answers it", () => {
  it("answers a legacy OP_QUERY isMaster with an OP_REPLY: a standalone, no compression, no hosts", async () => {
    const now = new Date("2024-05-01T12:00:00Z");
    const gateway = await startGateway(() => true, {
      connectionId: 42,
      now: () => now,
      server: { maxWireVersion: 25, maxMessageSizeBytes: 48_000_000, logicalSessionTimeoutMinutes: 20, version: "8.0.4" },
    });
    const client = await rawClient(gateway.port);
    const isMaster = {
      isMaster: 1,
      helloOk: true,
      client: { driver: { name: "raw", version: "1" }, application: { name: "tests" }, os: { type: "Linux" }, platform: "Node.js" },
      compression: ["zlib", "snappy", "zstd"],
      saslSupportedMechs: "$external.ci",
    };
    client.send(mongo.encodeOpQuery({ requestID: 7, fullCollectionName: "admin.$cmd", numberToReturn: -1, query: isMaster }));
    const frame = (await client.next()) as OpReply;
    expect(frame.opCode).toBe(mongoOpcodes.OP_REPLY);
    expect(frame.responseTo).toBe(7);
    expect(frame.responseFlags & opReplyFlags.AwaitCapable).toBe(opReplyFlags.AwaitCapable);
    expect(frame.documents).toEqual([
      {
        ismaster: true,
        helloOk: true,
        maxBsonObjectSize: 16 * 1024 * 1024,
        maxMessageSizeBytes: 48_000_000,
        maxWriteBatchSize: 100_000,
        localTime: now,
        logicalSessionTimeoutMinutes: 20,
        connectionId: 42,
        minWireVersion: 0,
        maxWireVersion: 25,
        readOnly: false,
        saslSupportedMechs: ["MONGODB-OIDC", "PLAIN"],
        ok: 1,
      },
    ]);
    // A read preference wraps the command; OP_MSG's hello answers isWritablePrimary, with the request's checksum.
    client.send(mongo.encodeOpQuery({ requestID: 8, fullCollectionName: "admin.$cmd", query: { $query: { ismaster: 1 }, $readPreference: { mode: "secondaryPreferred" } } }));
    expect(reply(await client.next())).toMatchObject({ ismaster: true, ok: 1 });
    client.send(command({ hello: 1, $db: "admin" }, { checksum: true }));
    const hello = (await client.next()) as OpMsg;
    expect(hello.checksum).toBeDefined();
    expect(mongo.opMsgBody(hello)).toMatchObject({ isWritablePrimary: true, ok: 1 });
    expect(mongo.opMsgBody(hello)).not.toHaveProperty("compression");
    client.send(command({ buildInfo: 1, $db: "admin" }));
    expect(reply(await client.next())).toMatchObject({ version: "8.0.4", versionArray: [8, 0, 4, 0], ok: 1 });
    client.end();
    const { error } = await gateway.outcome(0);
    expect(error?.code).toBe("client_closed");
  });

  it("answers ping, buildInfo, getnonce and endSessions before authentication and refuses the rest with 13, then takes a token", async () => {
    const gateway = await startGateway((token) => token === "tok");
    const client = await rawClient(gateway.port);
    client.send(command({ ping: 1, $db: "admin" }));
    expect(reply(await client.next())).toEqual({ ok: 1 });
    client.send(command({ getnonce: 1, $db: "admin" }));
    expect(reply(await client.next())).toMatchObject({ nonce: expect.stringMatching(/^[0-9a-f]{16}$/), ok: 1 });
    client.send(command({ endSessions: [], $db: "admin" }));
    expect(reply(await client.next())).toEqual({ ok: 1 });
    for (const name of ["find", "insert", "listDatabases", "logout"]) {
      client.send(command({ [name]: 1, $db: "shop" }));
      expect(reply(await client.next())).toEqual({ ok: 0, errmsg: `command \`${name}\` requires authentication`, code: 13, codeName: "Unauthorized" });
    }
    client.send(command({ ping: 1 }));
    expect(reply(await client.next())).toMatchObject({ ok: 0, code: 2, errmsg: "OP_MSG requests require a $db argument" });
    client.send(mongo.encodeOpQuery({ requestID: 9, fullCollectionName: "shop.$cmd", query: { find: "orders" } }));
    expect(reply(await client.next())).toMatchObject({ ok: 0, code: 352, codeName: "UnsupportedOpQueryCommand" });
    // The token, then commands sent before the reply came, the last one cut: they are the caller's, in leftover.
    const ping = command({ ping: 1, $db: "shop" });
    const count = command({ count: "orders", $db: "shop" });
    const start = command(plainStart("ci", "tok"));
    client.send(start.subarray(0, 30));
    client.send(Buffer.concat([start.subarray(30), ping, count.subarray(0, 9)]));
    expect(reply(await client.next())).toEqual({ conversationId: 1, done: true, payload: new Binary(Buffer.alloc(0)), ok: 1 });
    expect(reply(await client.next())).toMatchObject({ ok: 1 });
    const { login } = await gateway.outcome(0);
    expect(login?.leftover).toEqual(Buffer.concat([ping, count.subarray(0, 9)]));
    client.send(count.subarray(9));
    expect(reply(await client.next())).toMatchObject({ n: 2, ok: 1 });
    client.end();
  });

  it("answers a speculative MONGODB-OIDC token in hello only after the caller accepted it", async () => {
    const gateway = await startGateway((token) => token === "tok");
    const client = await rawClient(gateway.port);
    const speculative = { saslStart: 1, mechanism: "MONGODB-OIDC", payload: new Binary(serialize({ jwt: "tok" })), db: "$external" };
    client.send(command({ hello: 1, speculativeAuthenticate: speculative, $db: "admin" }));
    const hello = reply(await client.next());
    expect(hello).toMatchObject({ isWritablePrimary: true, ok: 1, speculativeAuthenticate: { conversationId: 1, done: true, payload: new Binary(Buffer.alloc(0)) } });
    expect(Object.keys(hello).at(-1)).toBe("ok");
    expect((await gateway.outcome(0)).login?.reply).toMatchObject({ via: "speculative", opCode: mongoOpcodes.OP_MSG });
    client.end();
  });

  it("leaves a refused speculative token out of the hello and goes on to the next attempt", async () => {
    const gateway = await startGateway((token) => token === "good");
    const client = await rawClient(gateway.port);
    const speculative = { saslStart: 1, mechanism: "MONGODB-OIDC", payload: new Binary(serialize({ jwt: "bad" })), db: "$external" };
    client.send(mongo.encodeOpQuery({ requestID: 5, fullCollectionName: "admin.$cmd", query: { isMaster: 1, speculativeAuthenticate: speculative } }));
    const hello = reply(await client.next());
    expect(hello).toMatchObject({ ismaster: true, ok: 1 });
    expect(hello).not.toHaveProperty("speculativeAuthenticate");
    client.send(command(oidcStart({ jwt: "bad" })));
    expect(reply(await client.next())).toEqual({ ok: 0, errmsg: "the token was refused", code: 18, codeName: "AuthenticationFailed" });
    client.send(command(oidcStart({ jwt: "good" })));
    expect(reply(await client.next())).toMatchObject({ conversationId: 3, done: true, ok: 1 });
    expect(gateway.attempts.map((attempt) => [attempt.login.reply.via, attempt.login.attempt, attempt.accepted])).toEqual([
      ["speculative", 1, false],
      ["saslStart", 2, false],
      ["saslStart", 3, true],
    ]);
    client.end();
  });

  it("leaves a speculative SCRAM start out of the hello, and refuses its saslStart with 334", async () => {
    const gateway = await startGateway(() => true);
    const client = await rawClient(gateway.port);
    const scram = { saslStart: 1, mechanism: "SCRAM-SHA-256", payload: new Binary(Buffer.from("n,,n=admin,r=abc")), db: "admin" };
    client.send(command({ hello: 1, speculativeAuthenticate: scram, saslSupportedMechs: "admin.admin", $db: "admin" }));
    const hello = reply(await client.next());
    expect(hello).not.toHaveProperty("speculativeAuthenticate");
    expect(hello.saslSupportedMechs).toEqual(["MONGODB-OIDC", "PLAIN"]);
    const { db: _db, ...start } = scram;
    client.send(command({ ...start, $db: "admin" }));
    const [refusal] = await client.closed();
    expect(reply(refusal as MongoFrame)).toMatchObject({ code: 334, errmsg: expect.stringContaining("`SCRAM-SHA-256`") });
    const { error } = await gateway.outcome(0);
    expect(error).toMatchObject({ code: "auth_unsupported", sent: { code: 334, codeName: "MechanismUnavailable" } });
  });

  it("refuses MONGODB-X509's authenticate with 334", async () => {
    const gateway = await startGateway(() => true);
    const client = await rawClient(gateway.port);
    client.send(command({ authenticate: 1, mechanism: "MONGODB-X509", $db: "$external" }));
    const [frame] = await client.closed();
    expect(reply(frame as MongoFrame)).toMatchObject({ code: 334, errmsg: expect.stringMatching(/^authentication mechanism `MONGODB-X509` is not available on this gateway: /) });
    expect((await gateway.outcome(0)).error?.code).toBe("auth_unsupported");
  });

  it("offers only the configured mechanisms", async () => {
    const gateway = await startGateway(() => true, { mechanisms: ["MONGODB-OIDC"] });
    const client = await rawClient(gateway.port);
    client.send(command({ hello: 1, saslSupportedMechs: "$external.ci", $db: "admin" }));
    expect(reply(await client.next()).saslSupportedMechs).toEqual(["MONGODB-OIDC"]);
    client.send(command(plainStart("ci", "tok")));
    const [refusal] = await Promise.all([client.next(), client.closed()]);
    expect(reply(refusal)).toMatchObject({ code: 334, errmsg: "authentication mechanism `PLAIN` is not available on this gateway: use MONGODB-OIDC with the job's OIDC token" });
  });

  it("closes after the last of maxAttempts refused tokens", async () => {
    const gateway = await startGateway(() => false, { maxAttempts: 2 });
    const client = await rawClient(gateway.port);
    client.send(command(plainStart("ci", "one")));
    expect(reply(await client.next())).toMatchObject({ code: 18 });
    client.send(command(plainStart("ci", "two")));
    expect(reply(await client.next())).toMatchObject({ code: 18, errmsg: "the token was refused" });
    await client.closed();
    const { error } = await gateway.outcome(0);
    expect(error?.code).toBe("auth_failed");
    expect(gateway.attempts).toHaveLength(2);
  });

  it("refuses a malformed SASL step, a token over the maximum and a saslContinue out of order", async () => {
    const cases: [Document, string, string][] = [
      [{ saslStart: 1, mechanism: "PLAIN", payload: new Binary(Buffer.from("no-nul-here")), $db: "$external" }, "bad_handshake", "malformed PLAIN payload"],
      [{ saslStart: 1, mechanism: "MONGODB-OIDC", payload: new Binary(Buffer.from([9, 0, 0, 0, 2, 1, 2])), $db: "$external" }, "bad_handshake", "malformed MONGODB-OIDC payload"],
      [oidcStart({ jwt: 42 }), "bad_handshake", "malformed MONGODB-OIDC payload"],
      [oidcStart({ jwt: "x".repeat(300) }), "message_too_large", "the token is longer than 256 bytes"],
      [{ saslContinue: 1, conversationId: 1, payload: new Binary(serialize({ jwt: "tok" })), $db: "$external" }, "bad_handshake", "no sasl conversation in progress: send saslStart first"],
    ];
    for (const [step, code, errmsg] of cases) {
      const gateway = await startGateway(() => true, { maxTokenBytes: 256 });
      const client = await rawClient(gateway.port);
      client.send(command(step));
      expect(reply(await client.next())).toMatchObject({ ok: 0, errmsg });
      await client.closed();
      expect((await gateway.outcome(0)).error?.code).toBe(code);
      expect(gateway.attempts).toHaveLength(0);
    }
  });

  it("keeps the token out of JSON, inspection and errors", async () => {
    const token = jwtLike();
    const gateway = await startGateway(() => false, { maxAttempts: 1 });
    const client = await rawClient(gateway.port);
    client.send(command(plainStart("ci", token)));
    await client.next();
    await client.closed();
    const { error } = await gateway.outcome(0);
    const login = gateway.attempts[0]?.login;
    expect(login?.token.reveal()).toBe(token);
    for (const text of [JSON.stringify(login), inspect(login, { depth: 5 }), String(error), JSON.stringify(error), inspect(error)]) expect(text).not.toContain(token);
  });
});

describe("messages the listener refuses", () => {
  it("malformed BSON: a ProtocolError reply, then the connection closes", async () => {
    const gateway = await startGateway(() => true);
    const client = await rawClient(gateway.port);
    const bytes = command({ hello: 1, $db: "admin" });
    bytes[21 + 4] = 0x20; // the body's first element type becomes one BSON does not have
    client.send(bytes);
    const [frame] = await client.closed();
    expect(frame?.opCode).toBe(mongoOpcodes.OP_MSG);
    expect(frame?.responseTo).toBe(bytes.readInt32LE(4));
    expect(reply(frame as MongoFrame)).toMatchObject({ ok: 0, code: 17, codeName: "ProtocolError", errmsg: expect.stringMatching(/^malformed message: /) });
    expect((await gateway.outcome(0)).error?.code).toBe("bad_handshake");
  });

  it("a BSON document longer than its message: a ProtocolError reply, then close", async () => {
    const gateway = await startGateway(() => true);
    const client = await rawClient(gateway.port);
    const bytes = command({ hello: 1, $db: "admin" });
    bytes.writeInt32LE(bytes.readInt32LE(21) + 10, 21);
    client.send(bytes);
    const [frame] = await client.closed();
    expect(reply(frame as MongoFrame)).toMatchObject({ code: 17 });
    expect((await gateway.outcome(0)).error?.code).toBe("bad_handshake");
  });

  it("a message length under the header's size: closed without a reply", async () => {
    const gateway = await startGateway(() => true);
    const client = await rawClient(gateway.port);
    const bytes = Buffer.alloc(16);
    bytes.writeInt32LE(8, 0);
    client.send(bytes);
    expect(await client.closed()).toEqual([]);
    expect((await gateway.outcome(0)).error?.code).toBe("bad_handshake");
  });

  it("a message over the login's maximum: refused from its header, before the body is sent", async () => {
    const gateway = await startGateway(() => true);
    const client = await rawClient(gateway.port);
    const header = Buffer.alloc(16);
    header.writeInt32LE(10_000_000, 0);
    header.writeInt32LE(1, 4);
    header.writeInt32LE(mongoOpcodes.OP_MSG, 12);
    client.send(header);
    expect(await client.closed()).toEqual([]);
    const { error } = await gateway.outcome(0);
    expect(error?.code).toBe("message_too_large");
  });

  it.each([
    ["an unknown opcode", 9999],
    ["OP_INSERT, removed from MongoDB", mongoOpcodes.OP_INSERT],
  ])("%s: a ProtocolError reply, then close", async (_, opCode) => {
    const gateway = await startGateway(() => true);
    const client = await rawClient(gateway.port);
    const bytes = command({ hello: 1, $db: "admin" });
    bytes.writeInt32LE(opCode, 12);
    client.send(bytes);
    const [frame] = await client.closed();
    expect(reply(frame as MongoFrame)).toMatchObject({ ok: 0, code: 17 });
    expect((await gateway.outcome(0)).error?.code).toBe("unsupported_protocol");
  });

  it("OP_COMPRESSED: compression is never negotiated", async () => {
    const gateway = await startGateway(() => true);
    const client = await rawClient(gateway.port);
    client.send(mongo.encodeOpCompressed(command({ hello: 1, $db: "admin" }), "zlib"));
    const [frame] = await client.closed();
    expect(reply(frame as MongoFrame)).toMatchObject({ code: 17, errmsg: "OP_COMPRESSED is not accepted: compression was not negotiated" });
    expect((await gateway.outcome(0)).error?.code).toBe("unsupported_protocol");
  });

  it("does not answer an OP_MSG with moreToCome", async () => {
    const gateway = await startGateway(() => true);
    const client = await rawClient(gateway.port);
    client.send(command({ endSessions: [], $db: "admin" }, { flagBits: opMsgFlags.moreToCome }));
    client.send(command({ ping: 1, $db: "admin" }));
    const frame = await client.next();
    expect(reply(frame)).toEqual({ ok: 1 });
    expect(frame.responseTo).toBe(requestId);
    client.end();
    await gateway.outcome(0);
  });

  it("closes a connection that sends nothing within timeoutMs, and one idle past idleTimeoutMs", async () => {
    const gateway = await startGateway(() => true, { timeoutMs: 200, idleTimeoutMs: 400 });
    const silent = await rawClient(gateway.port);
    await silent.closed();
    expect((await gateway.outcome(0)).error).toMatchObject({ code: "timeout", message: "the client sent nothing for 200 ms during the login" });
    const idle = await rawClient(gateway.port);
    idle.send(command({ hello: 1, $db: "admin" }));
    await idle.next();
    await idle.closed();
    expect((await gateway.outcome(1)).error).toMatchObject({ code: "timeout", message: "the client sent nothing for 400 ms during the login" });
  });

  it("rejects with client_closed when the client leaves before authenticating, and finishing twice is a TypeError", async () => {
    const gateway = await startGateway((token) => token === "tok");
    const leaver = await rawClient(gateway.port);
    leaver.send(command({ hello: 1, $db: "admin" }));
    await leaver.next();
    leaver.end();
    expect((await gateway.outcome(0)).error?.code).toBe("client_closed");
    const client = await rawClient(gateway.port);
    client.send(command(plainStart("ci", "tok")));
    await client.next();
    const { login } = await gateway.outcome(1);
    expect(() => finishMongoLogin(login as MongoClientLogin, true)).toThrow(TypeError);
    expect(() => finishMongoLogin({ ...(login as MongoClientLogin) }, true)).toThrow(TypeError);
    client.end();
  });
});
