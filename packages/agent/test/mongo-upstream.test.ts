import { startMongoTestServer, type MongoTestServer } from "@airlock/mongo-test-server";
import { Secret } from "@airlock/runtime";
import { createMongoFramer, mongo, mongoOpcodes, type MongoMessage } from "@airlock/wire";
import { Binary, EJSON, type Document } from "bson";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer, type Server as TlsServer } from "node:tls";
import { inspect, promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { UpstreamError } from "../src/upstream/errors.js";
import {
  connectMongo,
  createMongoScramClient,
  mongoErrorCode,
  MongoServerError,
  readMongoCatalog,
  type MongoSession,
  type MongoTarget,
} from "../src/upstream/mongo.js";

const run = promisify(execFile);

const ADMIN = { username: "airlock_svc", password: "s3cret,=pass:/@" };
const LEGACY = { username: "legacy", password: "sha1-only-Password", mechanisms: ["SCRAM-SHA-1" as const] };
const MODERN = { username: "modern", password: "sha256-only-Password", mechanisms: ["SCRAM-SHA-256" as const] };
const CLERK = { username: "clerk", password: "clerk-Password", db: "shop", roles: ["readWrite" as const] };
// SASLprep maps the soft hyphen (U+00AD) to nothing; the stand-in stores the prepared password.
const PREPPED = { username: "prepped", password: "I\u00ADX-\u00E9t\u00E9" };
// `=` and `,` in a user name are escaped in SCRAM's n= (RFC 5802 5.1).
const ODD = { username: "odd,name=1", password: "odd-Password" };
// May list the databases (cluster privilege) but read none of them.
const OPERATOR = { username: "operator", password: "operator-Password", roles: ["clusterAdmin" as const] };

let server: MongoTestServer;
let certDir: string;
let ca: Buffer;
let cert: Buffer;
let key: Buffer;

beforeAll(async () => {
  server = await startMongoTestServer({ users: [ADMIN, LEGACY, MODERN, CLERK, PREPPED, ODD, OPERATOR], scramIterations: { sha1: 4096, sha256: 4096 } });
  server.databases.insert("shop", "orders", [{ _id: 1, item: "pen" }, { _id: 2, item: "ink" }]);
  certDir = mkdtempSync(join(tmpdir(), "airlock-mongo-agent-"));
  await run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", join(certDir, "server.key"), "-out", join(certDir, "server.crt")]);
  ca = readFileSync(join(certDir, "server.crt"));
  cert = ca;
  key = readFileSync(join(certDir, "server.key"));
});

afterAll(async () => {
  await server.close();
  rmSync(certDir, { recursive: true, force: true });
});

function target(overrides: Partial<MongoTarget> = {}): MongoTarget {
  return {
    host: "127.0.0.1",
    port: server.port,
    user: ADMIN.username,
    password: new Secret(ADMIN.password),
    authSource: "admin",
    tls: { mode: "disable" },
    connectTimeoutMs: 5_000,
    maxMessageBytes: 48_000_000,
    ...overrides,
  };
}

const sessions = new Set<MongoSession>();

async function open(to: MongoTarget): Promise<MongoSession> {
  const session = await connectMongo(to, { appName: "airlock-agent test", agentVersion: "0.0.0-test" });
  session.socket.on("error", () => undefined);
  sessions.add(session);
  return session;
}

afterEach(async () => {
  const left = [...sessions];
  sessions.clear();
  await Promise.all(
    left.map(async ({ socket }) => {
      if (socket.destroyed) return;
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      socket.destroy();
      await closed;
    }),
  );
  // Every connection the agent opened (sessions, catalog reads, failed logins) is closed.
  await vi.waitFor(() => expect(server.connectionCount).toBe(0), { timeout: 5_000, interval: 10 });
});

/** Runs commands on a session the agent opened, as the relay would: proof that it is usable and who it is. */
async function commands(session: MongoSession, bodies: readonly Document[]): Promise<{ replies: Document[]; opCodes: number[] }> {
  const framer = createMongoFramer({ maxMessageBytes: 48_000_000 });
  const queue: MongoMessage[] = framer.push(session.leftover);
  const { socket } = session;
  const replies: Document[] = [];
  const opCodes: number[] = [];
  let requestID = 1000;
  for (const body of bodies) {
    socket.write(mongo.encodeOpMsg({ requestID: ++requestID, body }));
    while (queue.length === 0) {
      const chunk = await new Promise<Buffer>((resolve, reject) => {
        socket.once("data", (data: Buffer) => {
          socket.pause();
          resolve(data);
        });
        socket.once("close", () => reject(new Error("closed")));
        socket.resume();
      });
      queue.push(...framer.push(chunk));
    }
    const message = queue.shift() as MongoMessage;
    opCodes.push(message.opCode);
    const reply = mongo.decodeMessage(message.bytes);
    if (reply.opCode !== mongoOpcodes.OP_MSG) throw new Error(`unexpected opcode ${reply.opCode}`);
    expect(reply.responseTo).toBe(requestID);
    replies.push(mongo.opMsgBody(reply));
  }
  return { replies, opCodes };
}

async function authenticatedUsers(session: MongoSession): Promise<unknown> {
  const { replies } = await commands(session, [{ connectionStatus: 1, $db: "admin" }]);
  return (replies[0]?.authInfo as Document | undefined)?.authenticatedUsers;
}

/** Expects connectMongo to reject with an UpstreamError; checks the password appears nowhere in it. */
async function refused(to: MongoTarget, secrets: readonly string[] = [ADMIN.password]): Promise<UpstreamError> {
  let caught: unknown;
  try {
    const session = await connectMongo(to);
    session.socket.destroy();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(UpstreamError);
  const text = `${(caught as Error).message}\n${(caught as Error).stack ?? ""}\n${inspect(caught, { depth: Infinity })}\n${JSON.stringify(caught)}`;
  for (const secret of secrets) expect(text).not.toContain(secret);
  return caught as UpstreamError;
}

describe("createMongoScramClient", () => {
  // RFC 7677 section 3: SCRAM-SHA-256 with user `user` and password `pencil`.
  it("computes the RFC 7677 test vector and checks its server signature", async () => {
    const client = createMongoScramClient("SCRAM-SHA-256", "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
    expect(client.clientFirst.toString()).toBe("n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    const final = await client.final(Buffer.from("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
    expect(final.toString()).toBe("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    expect(() => client.verify(Buffer.from("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))).not.toThrow();
    expect(() => client.verify(Buffer.from("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))).toThrow(/signature does not match/);
  });

  // MongoDB's auth spec, SCRAM-SHA-1 test vector: the password is hex md5(`user:mongo:pencil`).
  it("computes MongoDB's SCRAM-SHA-1 test vector", async () => {
    const client = createMongoScramClient("SCRAM-SHA-1", "user", "pencil", "fyko+d2lbbFgONRv9qkxdawL");
    const final = await client.final(Buffer.from("r=fyko+d2lbbFgONRv9qkxdawLHo+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE,s=rQ9ZY3MntBeuP3E1TDVC4w==,i=10000"));
    expect(final.toString()).toBe("c=biws,r=fyko+d2lbbFgONRv9qkxdawLHo+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE,p=MC2T8BvbmWRckDw8oWl5IVghwCY=");
    expect(() => client.verify(Buffer.from("v=UMWeI25JD1yNYZRMpZ4VHvhZ9e0="))).not.toThrow();
  });

  it("escapes = and , in the user name", () => {
    expect(createMongoScramClient("SCRAM-SHA-256", "a=b,c", "x", "nonce").clientFirst.toString()).toBe("n,,n=a=3Db=2Cc,r=nonce");
  });

  it("refuses a nonce the server did not extend, a low iteration count, a server error and a prohibited password", async () => {
    const client = () => createMongoScramClient("SCRAM-SHA-256", "user", "pencil", "abc");
    await expect(client().final(Buffer.from("r=xyz123,s=c2FsdA==,i=4096"))).rejects.toMatchObject({ code: "protocol_error" });
    await expect(client().final(Buffer.from("r=abc,s=c2FsdA==,i=4096"))).rejects.toMatchObject({ code: "protocol_error" });
    await expect(client().final(Buffer.from("r=abcdef,s=c2FsdA==,i=1000"))).rejects.toMatchObject({ code: "auth_failed", message: expect.stringMatching(/iteration count 1000/) });
    await expect(client().final(Buffer.from("r=abcdef,i=4096"))).rejects.toMatchObject({ code: "protocol_error" });
    const started = client();
    await started.final(Buffer.from("r=abcdef,s=c2FsdA==,i=4096"));
    expect(() => started.verify(Buffer.from("e=invalid-proof"))).toThrow(/refused the agent's SCRAM proof/);
    const prohibited = createMongoScramClient("SCRAM-SHA-256", "user", "bad\u0007password", "abc");
    const error = await prohibited.final(Buffer.from("r=abcdef,s=c2FsdA==,i=4096")).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: "auth_failed" });
    expect(inspect(error, { depth: Infinity })).not.toContain("bad\u0007password");
  });
});

describe("connectMongo against the stand-in", () => {
  it("negotiates SCRAM-SHA-256, reports the hello facts and leaves a usable session", async () => {
    const before = server.stats.compressedMessages;
    const session = await open(target());
    expect(session.mechanism).toBe("SCRAM-SHA-256");
    expect(session.tls).toBe(false);
    expect(session.leftover.length).toBe(0);
    expect(session.socket.isPaused()).toBe(true);
    expect(session.socket.listenerCount("data")).toBe(0);
    expect(session.hello).toMatchObject({
      maxWireVersion: 21,
      minWireVersion: 0,
      maxBsonObjectSize: 16 * 1024 * 1024,
      maxMessageSizeBytes: 48_000_000,
      maxWriteBatchSize: 100_000,
      logicalSessionTimeoutMinutes: 30,
      isWritablePrimary: true,
      secondary: false,
      setName: "rs0",
    });
    expect(session.hello.msg).toBeUndefined();
    expect(typeof session.hello.connectionId).toBe("number");
    expect(await authenticatedUsers(session)).toEqual([{ user: ADMIN.username, db: "admin" }]);
    const { replies, opCodes } = await commands(session, [{ find: "orders", filter: {}, sort: { _id: 1 }, $db: "shop" }]);
    expect((replies[0]?.cursor as Document).firstBatch).toEqual([{ _id: 1, item: "pen" }, { _id: 2, item: "ink" }]);
    // Nothing was compressed: the agent offered no compressor, so the server answers plain OP_MSG.
    expect(opCodes).toEqual([mongoOpcodes.OP_MSG]);
    expect(server.stats.compressedMessages).toBe(before);
  });

  it("uses the configured mechanism, SCRAM-SHA-1 or SCRAM-SHA-256", async () => {
    const sha1 = await open(target({ mechanism: "SCRAM-SHA-1" }));
    expect(sha1.mechanism).toBe("SCRAM-SHA-1");
    expect(await authenticatedUsers(sha1)).toEqual([{ user: ADMIN.username, db: "admin" }]);
    const sha256 = await open(target({ mechanism: "SCRAM-SHA-256" }));
    expect(sha256.mechanism).toBe("SCRAM-SHA-256");
    expect(await authenticatedUsers(sha256)).toEqual([{ user: ADMIN.username, db: "admin" }]);
  });

  it("negotiates SCRAM-SHA-1 for a user that has only it, and SCRAM-SHA-256 for one that has only that", async () => {
    const legacy = await open(target({ user: LEGACY.username, password: new Secret(LEGACY.password) }));
    expect(legacy.mechanism).toBe("SCRAM-SHA-1");
    expect(await authenticatedUsers(legacy)).toEqual([{ user: LEGACY.username, db: "admin" }]);
    const modern = await open(target({ user: MODERN.username, password: new Secret(MODERN.password) }));
    expect(modern.mechanism).toBe("SCRAM-SHA-256");
  });

  it("authenticates against auth_source", async () => {
    const session = await open(target({ user: CLERK.username, password: new Secret(CLERK.password), authSource: "shop" }));
    expect(await authenticatedUsers(session)).toEqual([{ user: CLERK.username, db: "shop" }]);
    const error = await refused(target({ user: CLERK.username, password: new Secret(CLERK.password) }), [CLERK.password]);
    expect(error).toMatchObject({ code: "auth_failed", sqlstate: "18" });
  });

  it("SASLpreps the password for SCRAM-SHA-256, digests it for SCRAM-SHA-1, and escapes odd user names", async () => {
    for (const mechanism of ["SCRAM-SHA-256", "SCRAM-SHA-1"] as const) {
      const prepped = await open(target({ user: PREPPED.username, password: new Secret(PREPPED.password), mechanism }));
      expect(await authenticatedUsers(prepped)).toEqual([{ user: PREPPED.username, db: "admin" }]);
      const odd = await open(target({ user: ODD.username, password: new Secret(ODD.password), mechanism }));
      expect(await authenticatedUsers(odd)).toEqual([{ user: ODD.username, db: "admin" }]);
    }
  });

  it("maps a wrong password to AuthenticationFailed (18), with neither the password nor the account in the message", async () => {
    for (const mechanism of [undefined, "SCRAM-SHA-1", "SCRAM-SHA-256"] as const) {
      const wrong = "not-the-Password-9";
      const error = await refused(target({ password: new Secret(wrong), ...(mechanism === undefined ? {} : { mechanism }) }), [wrong, ADMIN.password]);
      expect(error).toBeInstanceOf(MongoServerError);
      expect(error).toMatchObject({ code: "auth_failed", sqlstate: "18", serverCode: 18, codeName: "AuthenticationFailed" });
      expect(error.message).toBe("the database refused the agent's credentials: error 18 (AuthenticationFailed)");
      expect(error.message).not.toContain(ADMIN.username);
      expect(mongoErrorCode(error)).toEqual({ code: 18, codeName: "AuthenticationFailed" });
    }
  });

  it("maps an unknown user and a mechanism the user lacks to AuthenticationFailed", async () => {
    const unknown = await refused(target({ user: "nobody", password: new Secret("whatever-Password") }), ["whatever-Password"]);
    expect(unknown).toMatchObject({ code: "auth_failed", serverCode: 18 });
    expect(unknown.message).not.toContain("nobody");
    const lacking = await refused(target({ user: LEGACY.username, password: new Secret(LEGACY.password), mechanism: "SCRAM-SHA-256" }), [LEGACY.password]);
    expect(lacking).toMatchObject({ code: "auth_failed", serverCode: 18 });
  });

  it("does not authenticate without a password, on a server without access control", async () => {
    const open_ = await startMongoTestServer({ requireAuth: false, replicaSet: false });
    try {
      const { password: _password, ...withoutPassword } = target({ port: open_.port });
      const again = await open(withoutPassword);
      expect(again.mechanism).toBeUndefined();
      expect(again.hello.setName).toBeUndefined();
      expect(again.hello.secondary).toBeUndefined();
      expect(open_.stats.commands.get("saslStart")).toBeUndefined();
      const { replies } = await commands(again, [{ ping: 1, $db: "admin" }]);
      expect(replies[0]?.ok).toBe(1);
    } finally {
      await open_.close();
    }
  });

  it("fails fast when nothing listens", async () => {
    const listener = createServer();
    await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
    const port = (listener.address() as AddressInfo).port;
    await new Promise<void>((resolve) => listener.close(() => resolve()));
    const error = await refused(target({ port }));
    expect(error).toMatchObject({ code: "connect_failed", sqlstate: "6" });
    expect(error.message).toMatch(/ECONNREFUSED/);
    expect(mongoErrorCode(error)).toEqual({ code: 6, codeName: "HostUnreachable" });
  });
});

describe("readMongoCatalog", () => {
  it("lists the collections of every database, across getMore batches", async () => {
    const names = Array.from({ length: 105 }, (_, index) => `c${String(index).padStart(3, "0")}`);
    for (const name of names) server.databases.insert("catalogdb", name, [{ _id: 1 }]);
    try {
      const rows = await readMongoCatalog(target());
      const catalog = rows.filter((row) => row.schema === "catalogdb");
      expect(catalog.map((row) => row.name)).toEqual(names);
      expect(catalog.every((row) => row.kind === "r" && row.columns.length === 0 && row.definition === "")).toBe(true);
      expect(rows.find((row) => row.schema === "shop" && row.name === "orders")).toBeDefined();
      expect(new Set(rows.map((row) => row.oid)).size).toBe(rows.length);
      expect(server.stats.commands.get("getMore")).toBeGreaterThan(0);
    } finally {
      server.databases.drop("catalogdb");
    }
  });

  it("reads the databases an account with one database's roles may list", async () => {
    const rows = await readMongoCatalog(target({ user: CLERK.username, password: new Secret(CLERK.password), authSource: "shop", database: "shop" }));
    expect(rows.map((row) => `${row.schema}.${row.name}`)).toContain("shop.orders");
    expect(rows.every((row) => row.schema === "shop")).toBe(true);
  });

  it("skips the databases whose collections the account may not list", async () => {
    const rows = await readMongoCatalog(target({ user: OPERATOR.username, password: new Secret(OPERATOR.password) }));
    expect(rows).toEqual([]);
    expect(server.stats.commands.get("listCollections")).toBeGreaterThan(0);
  });
});

/** A TLS terminator in front of the stand-in (which speaks plain TCP only): MongoDB's TLS starts with the first byte. */
async function startTlsProxy(): Promise<{ port: number; close(): Promise<void>; accepted: () => number }> {
  let accepted = 0;
  /** Both ends of every proxied connection, destroyed by close(). */
  const upstreams = new Set<Socket>();
  const proxy: TlsServer = createTlsServer({ cert, key }, (secure) => {
    accepted++;
    upstreams.add(secure);
    secure.on("close", () => upstreams.delete(secure));
    const upstream = netConnect({ host: "127.0.0.1", port: server.port });
    upstreams.add(upstream);
    upstream.on("close", () => upstreams.delete(upstream));
    secure.pipe(upstream).pipe(secure);
    secure.on("error", () => upstream.destroy());
    upstream.on("error", () => secure.destroy());
    secure.on("close", () => upstream.destroy());
  });
  proxy.on("tlsClientError", () => undefined);
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return {
    port: (proxy.address() as AddressInfo).port,
    accepted: () => accepted,
    close: async () => {
      for (const upstream of upstreams) upstream.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };
}

describe("TLS", () => {
  it("verifies the server against the CA and the host name (verify-full), or only encrypts (require)", async () => {
    const proxy = await startTlsProxy();
    try {
      const verified = await open(target({ port: proxy.port, host: "localhost", tls: { mode: "verify-full", ca } }));
      expect(verified.tls).toBe(true);
      expect(verified.socket.constructor.name).toBe("TLSSocket");
      expect(await authenticatedUsers(verified)).toEqual([{ user: ADMIN.username, db: "admin" }]);
      const byName = await open(target({ port: proxy.port, tls: { mode: "verify-full", ca, servername: "localhost" } }));
      expect(byName.mechanism).toBe("SCRAM-SHA-256");
      const unverified = await open(target({ port: proxy.port, tls: { mode: "require" } }));
      expect(await authenticatedUsers(unverified)).toEqual([{ user: ADMIN.username, db: "admin" }]);
      expect(proxy.accepted()).toBe(3);
    } finally {
      await proxy.close();
    }
  });

  it("refuses an unknown CA and a wrong host name with SSLHandshakeFailed", async () => {
    const proxy = await startTlsProxy();
    try {
      const unknownCa = await refused(target({ port: proxy.port, host: "localhost", tls: { mode: "verify-full" } }));
      expect(unknownCa).toMatchObject({ code: "tls_refused", sqlstate: "141" });
      const wrongName = await refused(target({ port: proxy.port, tls: { mode: "verify-full", ca, servername: "db.example.com" } }));
      expect(wrongName).toMatchObject({ code: "tls_refused", sqlstate: "141" });
      expect(mongoErrorCode(wrongName)).toEqual({ code: 141, codeName: "SSLHandshakeFailed" });
    } finally {
      await proxy.close();
    }
  });
});

/** A scripted server: answers each message the agent sends with what `answer` returns (bytes, or nothing). */
async function startScriptedServer(answer: (command: Document, message: MongoMessage, socket: Socket) => Buffer | undefined): Promise<{ port: number; closed: Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let resolveClosed: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });
  const listener: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => {
      sockets.delete(socket);
      resolveClosed();
    });
    socket.on("error", () => undefined);
    const framer = createMongoFramer({ maxMessageBytes: 1 << 20 });
    socket.on("data", (chunk: Buffer) => {
      for (const message of framer.push(chunk)) {
        const frame = mongo.decodeMessage(message.bytes);
        const command = frame.opCode === mongoOpcodes.OP_MSG ? mongo.opMsgCommand(frame) : {};
        const reply = answer(command, message, socket);
        if (reply !== undefined) socket.write(reply);
      }
    });
  });
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  return {
    port: (listener.address() as AddressInfo).port,
    closed,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}

let nextReplyId = 1;
function reply(message: MongoMessage, body: Document): Buffer {
  return mongo.encodeOpMsg({ requestID: nextReplyId++, responseTo: message.requestID, body });
}

const HELLO: Document = { isWritablePrimary: true, maxBsonObjectSize: 16777216, maxMessageSizeBytes: 48000000, maxWriteBatchSize: 100000, minWireVersion: 0, maxWireVersion: 21, ok: 1 };

describe("a misbehaving server", () => {
  async function against(answer: Parameters<typeof startScriptedServer>[0], overrides: Partial<MongoTarget> = {}): Promise<UpstreamError> {
    const scripted = await startScriptedServer(answer);
    try {
      return await refused(target({ port: scripted.port, ...overrides }));
    } finally {
      await scripted.close();
    }
  }

  it("times out a server that never answers, and closes the socket", async () => {
    const scripted = await startScriptedServer(() => undefined);
    try {
      const started = Date.now();
      const error = await refused(target({ port: scripted.port, connectTimeoutMs: 300 }));
      expect(error).toMatchObject({ code: "connect_failed", sqlstate: "89" });
      expect(error.message).toMatch(/took longer than 300 ms/);
      expect(Date.now() - started).toBeLessThan(3_000);
      await scripted.closed;
    } finally {
      await scripted.close();
    }
  });

  it("refuses malformed replies as ProtocolError (17)", async () => {
    const tooShort = await against(() => Buffer.from([8, 0, 0, 0, 0, 0, 0, 0]));
    expect(tooShort).toMatchObject({ code: "protocol_error", sqlstate: "17" });
    expect(tooShort.message).toMatch(/malformed message/);

    const badBson = await against((_, message) => {
      const bytes = reply(message, HELLO);
      bytes.writeInt32LE(9999, 21);
      return bytes;
    });
    expect(badBson).toMatchObject({ code: "protocol_error", sqlstate: "17" });

    const compressed = await against((_, message) => mongo.encodeOpCompressed(reply(message, HELLO), "noop"));
    expect(compressed).toMatchObject({ code: "protocol_error", message: expect.stringMatching(/compressed message/) });

    const legacy = await against((_, message) => mongo.encodeOpReply({ requestID: 1, responseTo: message.requestID, documents: [HELLO] }));
    expect(legacy.message).toMatch(/OP_REPLY, not OP_MSG/);

    const wrongResponse = await against((_, message) => mongo.encodeOpMsg({ requestID: 1, responseTo: message.requestID + 7, body: HELLO }));
    expect(wrongResponse.message).toMatch(/answers request/);

    const closing = await against((_, __, socket) => {
      socket.destroy();
      return undefined;
    });
    expect(closing).toMatchObject({ code: "connect_failed", message: "the database closed the connection during login" });

    const noWireVersion = await against((_, message) => reply(message, { ...HELLO, maxWireVersion: undefined }));
    expect(noWireVersion.message).toMatch(/no maxWireVersion/);
  });

  it("refuses a server older than OP_MSG and a failed hello", async () => {
    const old = await against((_, message) => reply(message, { ...HELLO, maxWireVersion: 5 }));
    expect(old).toMatchObject({ code: "server_error", message: expect.stringMatching(/wire version 5/) });
    const failed = await against((_, message) => reply(message, { ok: 0, code: 8, codeName: "UnknownError", errmsg: "boom" }));
    expect(failed).toMatchObject({ code: "server_error", serverCode: 8, codeName: "UnknownError" });
    expect(failed.message).toBe("the database refused `hello`: error 8 (UnknownError): boom");
  });

  it("falls back to isMaster on a server without hello, and reads a mongos", async () => {
    const seen: string[] = [];
    const scripted = await startScriptedServer((command, message) => {
      const name = Object.keys(command)[0] ?? "";
      seen.push(name);
      if (name === "hello") return reply(message, { ok: 0, code: 59, codeName: "CommandNotFound", errmsg: "no such command: 'hello'" });
      return reply(message, { ...HELLO, isWritablePrimary: undefined, ismaster: true, msg: "isdbgrid", maxWireVersion: 8, logicalSessionTimeoutMinutes: 30 });
    });
    try {
      const { password: _password, ...anonymous } = target({ port: scripted.port });
      const session = await open(anonymous);
      expect(seen).toEqual(["hello", "isMaster"]);
      expect(session.hello).toMatchObject({ isWritablePrimary: true, msg: "isdbgrid", maxWireVersion: 8, logicalSessionTimeoutMinutes: 30 });
    } finally {
      await scripted.close();
    }
  });

  it("sends hello on admin with saslSupportedMechs and without compression", async () => {
    let hello: Document | undefined;
    const error = await against((command, message) => {
      hello ??= command;
      return reply(message, { ok: 0, code: 18, codeName: "AuthenticationFailed", errmsg: "Authentication failed." });
    });
    expect(hello).toMatchObject({ hello: 1, helloOk: true, $db: "admin", saslSupportedMechs: `admin.${ADMIN.username}` });
    expect(hello?.compression).toBeUndefined();
    expect(hello?.speculativeAuthenticate).toBeUndefined();
    expect((hello?.client as Document).driver).toEqual({ name: "airlock-agent", version: "unknown" });
    expect(error.code).toBe("server_error");
  });

  /** Answers hello, then saslStart with `serverFirst(clientNonce)`, then saslContinue with `serverFinal`. */
  function scram(serverFirst: (nonce: string) => string, serverFinal: string, helloExtra: Document = {}): Parameters<typeof startScriptedServer>[0] {
    return (command, message) => {
      if (command.hello !== undefined) return reply(message, { ...HELLO, ...helloExtra });
      if (command.saslStart !== undefined) {
        const first = Buffer.from((command.payload as Binary).buffer).toString();
        const nonce = /r=([^,]*)/.exec(first)?.[1] ?? "";
        return reply(message, { conversationId: 1, done: false, payload: new Binary(Buffer.from(serverFirst(nonce))), ok: 1 });
      }
      return reply(message, { conversationId: 1, done: true, payload: new Binary(Buffer.from(serverFinal)), ok: 1 });
    };
  }

  it("refuses a server that cannot prove it knows the credentials", async () => {
    const salt = randomBytes(16).toString("base64");
    const forged = await against(scram((nonce) => `r=${nonce}server,s=${salt},i=4096`, `v=${randomBytes(32).toString("base64")}`), { mechanism: "SCRAM-SHA-256" });
    expect(forged).toMatchObject({ code: "auth_failed", sqlstate: "18", message: expect.stringMatching(/signature does not match/) });
    const lowCount = await against(scram((nonce) => `r=${nonce}server,s=${salt},i=1`, "v="), { mechanism: "SCRAM-SHA-1" });
    expect(lowCount.message).toMatch(/iteration count 1 /);
    const stolenNonce = await against(scram(() => `r=someone-elses-nonce,s=${salt},i=4096`, "v="), { mechanism: "SCRAM-SHA-1" });
    expect(stolenNonce).toMatchObject({ code: "protocol_error" });
  });

  it("gives a view's pipeline to the catalog as canonical Extended JSON (the stand-in has no views)", async () => {
    const pipeline = [{ $project: { email: 1, total: { $add: ["$a", 1] } } }];
    const scripted = await startScriptedServer((command, message) => {
      if (command.hello !== undefined) return reply(message, HELLO);
      if (command.listDatabases !== undefined) return reply(message, { databases: [{ name: "crm" }, { name: "local" }, { name: "config" }], ok: 1 });
      const firstBatch = [
        { name: "customers", type: "collection", options: {}, info: { readOnly: false } },
        { name: "emails", type: "view", options: { viewOn: "customers", pipeline }, info: { readOnly: true } },
      ];
      return reply(message, { cursor: { id: 0, ns: `${String(command.$db)}.$cmd.listCollections`, firstBatch }, ok: 1 });
    });
    try {
      const { password: _password, ...anonymous } = target({ port: scripted.port });
      const rows = await readMongoCatalog(anonymous);
      expect(rows).toEqual([
        { oid: 1, schema: "crm", name: "customers", kind: "r", columns: [], definition: "" },
        { oid: 2, schema: "crm", name: "emails", kind: "v", columns: [], definition: expect.any(String) },
      ]);
      expect(EJSON.parse(rows[1]?.definition ?? "")).toEqual({ viewOn: "customers", pipeline });
      expect(rows[1]?.definition).toContain('{"$numberInt":"1"}');
    } finally {
      await scripted.close();
    }
  });

  it("refuses an account whose only mechanisms the agent does not speak", async () => {
    const error = await against((command, message) => reply(message, { ...HELLO, saslSupportedMechs: ["PLAIN", "MONGODB-X509"] }));
    expect(error).toMatchObject({ code: "auth_unsupported", sqlstate: "334" });
    expect(error.message).toMatch(/`PLAIN`, `MONGODB-X509`/);
  });
});
