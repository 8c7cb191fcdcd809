import { startMongoTestServer, type MongoTestServer } from "@airlock/mongo-test-server";
import { create, OpenSessionSchema, packFrames, Protocol, SessionResponseSchema, unpackFrames, type SessionRequest } from "@airlock/proto";
import { createLogger, Secret } from "@airlock/runtime";
import { createMongoFramer, mongo, mongoOpcodes, type MongoMessage } from "@airlock/wire";
import { Metadata, type Client } from "@grpc/grpc-js";
import type { Document } from "bson";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createAgentMetrics } from "../src/metrics.js";
import { runMongoSession } from "../src/session/mongo.js";
import type { LiveSession } from "../src/session/relay.js";
import type { MongoTarget } from "../src/upstream/mongo.js";

/**
 * The agent's MongoDB session against the stand-in, with the gateway's side of the Session call
 * played by the test: login, `opened` facts, relay of whole messages with cursors on one server
 * connection, refusal of compressed messages, and backpressure.
 */

const ADMIN = { username: "airlock_svc", password: "session-Password-1" };
let server: MongoTestServer;

beforeAll(async () => {
  server = await startMongoTestServer({ users: [ADMIN], scramIterations: { sha1: 4096, sha256: 4096 } });
  server.databases.insert("shop", "items", Array.from({ length: 25 }, (_, index) => ({ _id: index, name: `item ${index}` })));
  server.databases.insert(
    "shop",
    "blobs",
    Array.from({ length: 50 }, (_, index) => ({ _id: index, blob: "x".repeat(1024) })),
  );
});

afterAll(async () => {
  await server.close();
});

afterEach(async () => {
  await vi.waitFor(() => expect(server.connectionCount).toBe(0), { timeout: 5_000, interval: 10 });
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

/**
 * The Session call as the agent sees it: what the agent writes is recorded (and its completion held
 * while `holding`, so the call's buffer fills as a slow gateway's would); what the test pushes is
 * what the gateway sends.
 */
class FakeCall extends Duplex {
  readonly received: SessionRequest[] = [];
  holding = false;
  #held: (() => void)[] = [];
  #waiters: (() => void)[] = [];

  constructor(highWaterMark = 16) {
    super({ objectMode: true, writableHighWaterMark: highWaterMark, readableHighWaterMark: 16 });
  }

  override _read(): void {}

  override _write(message: SessionRequest, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.received.push(message);
    for (const waiter of this.#waiters.splice(0)) waiter();
    if (this.holding) this.#held.push(() => callback());
    else callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    callback();
  }

  /** Completes held writes and stops holding. */
  release(): void {
    this.holding = false;
    for (const callback of this.#held.splice(0)) callback();
  }

  /** Sends whole messages to the agent, as the gateway does: one Frames batch. */
  send(...messages: Buffer[]): void {
    this.push(create(SessionResponseSchema, { kind: { case: "frames", value: packFrames(messages.map((bytes) => ({ bytes }))) } }));
  }

  /** Resolves once the agent has written something that satisfies `done`. */
  async until(done: (received: readonly SessionRequest[]) => boolean): Promise<void> {
    while (!done(this.received)) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  /** The database's messages the agent relayed so far, in order. */
  messages(): Buffer[] {
    return this.received.flatMap((message) => (message.kind.case === "frames" ? unpackFrames(message.kind.value).map((bytes) => Buffer.from(bytes)) : []));
  }
}

function start(call: FakeCall, to: MongoTarget = target()) {
  const live = new Map<string, LiveSession>();
  const metrics = createAgentMetrics();
  const client = { makeBidiStreamRequest: () => call } as unknown as Client;
  const finished = new Promise<void>((resolve) => call.once("finish", () => resolve()));
  const request = create(OpenSessionSchema, { sessionId: "s-1", connection: "docs", protocol: Protocol.MONGODB, parameters: {} });
  const running = runMongoSession(request, { client, metadata: () => new Metadata(), target: to, logger: createLogger({ name: "test", level: "silent" }), metrics, live, agentVersion: "0.0.0-test" });
  return { live, metrics, finished, running };
}

let requestId = 0;
function command(body: Document): Buffer {
  return mongo.encodeOpMsg({ requestID: ++requestId, body });
}

/** Replies relayed so far, decoded. */
function replies(call: FakeCall): Document[] {
  return call.messages().map((bytes) => {
    const frame = mongo.decodeMessage(bytes);
    if (frame.opCode !== mongoOpcodes.OP_MSG) throw new Error(`unexpected opcode ${frame.opCode}`);
    return mongo.opMsgBody(frame);
  });
}

async function outcome(metrics: ReturnType<typeof createAgentMetrics>): Promise<Record<string, number>> {
  const values = (await metrics.sessions.get()).values;
  return Object.fromEntries(values.map((value) => [String(value.labels.outcome), value.value]));
}

describe("runMongoSession", () => {
  it("attaches, logs in, sends the hello facts, then relays cursors to the connection that owns them", async () => {
    const call = new FakeCall();
    const { live, metrics, running } = start(call);
    await call.until((received) => received.length >= 2);
    expect(call.received[0]?.kind).toEqual({ case: "attach", value: expect.objectContaining({ sessionId: "s-1" }) });
    const opened = call.received[1]?.kind;
    expect(opened?.case).toBe("opened");
    const facts = opened?.case === "opened" ? opened.value.facts : {};
    expect(facts).toEqual({
      maxWireVersion: "21",
      minWireVersion: "0",
      maxBsonObjectSize: String(16 * 1024 * 1024),
      maxMessageSizeBytes: "48000000",
      maxWriteBatchSize: "100000",
      logicalSessionTimeoutMinutes: "30",
      isWritablePrimary: "true",
      secondary: "false",
      setName: "rs0",
      connectionId: expect.stringMatching(/^\d+$/),
    });
    expect(JSON.stringify(call.received)).not.toContain(ADMIN.password);
    expect(live.has("s-1")).toBe(true);

    call.send(command({ find: "items", filter: {}, sort: { _id: 1 }, batchSize: 10, $db: "shop" }));
    await call.until(() => call.messages().length === 1);
    const first = (replies(call)[0]?.cursor ?? {}) as Document;
    expect((first.firstBatch as Document[]).map((item) => item._id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const cursorId = first.id;
    expect(server.cursorCount).toBe(1);

    // getMore travels on the same server connection, so the server finds the cursor.
    call.send(command({ getMore: cursorId, collection: "items", batchSize: 10, $db: "shop" }), command({ getMore: cursorId, collection: "items", batchSize: 10, $db: "shop" }));
    await call.until(() => call.messages().length === 3);
    const batches = replies(call).slice(1).map((reply) => (reply.cursor as Document).nextBatch as Document[]);
    expect(batches.map((batch) => batch.map((item) => item._id))).toEqual([
      [10, 11, 12, 13, 14, 15, 16, 17, 18, 19],
      [20, 21, 22, 23, 24],
    ]);
    expect(server.cursorCount).toBe(0);

    call.send(command({ find: "items", filter: {}, batchSize: 2, $db: "shop" }));
    await call.until(() => call.messages().length === 4);
    const second = (replies(call)[3]?.cursor as Document).id;
    call.send(command({ killCursors: "items", cursors: [second], $db: "shop" }));
    await call.until(() => call.messages().length === 5);
    expect(replies(call)[4]).toMatchObject({ cursorsKilled: [second], ok: 1 });
    expect(server.cursorCount).toBe(0);

    // The gateway ends the call (gRPC: the call is over): the agent closes the server connection.
    call.push(null);
    await running;
    await vi.waitFor(() => expect(live.size).toBe(0));
    expect(await outcome(metrics)).toEqual({ closed: 1 });
    expect((await metrics.bytes.get()).values.every((value) => value.value > 0)).toBe(true);
  });

  it("sends the login's failure as `code:codeName`, without the password", async () => {
    const call = new FakeCall();
    const { finished, metrics, live } = start(call, target({ password: new Secret("wrong-Password-2") }));
    await finished;
    expect(call.received.map((message) => message.kind.case)).toEqual(["attach", "error"]);
    const error = call.received[1]?.kind;
    expect(error?.case === "error" ? error.value : undefined).toMatchObject({ code: "18:AuthenticationFailed", message: "the database refused the agent's credentials: error 18 (AuthenticationFailed)" });
    expect(JSON.stringify(call.received)).not.toContain("wrong-Password-2");
    expect(live.size).toBe(0);
    expect(await outcome(metrics)).toEqual({ refused: 1 });
  });

  it("refuses a compressed message from the gateway: none was negotiated", async () => {
    const call = new FakeCall();
    const { finished, metrics } = start(call);
    await call.until((received) => received.length >= 2);
    call.send(mongo.encodeOpCompressed(command({ ping: 1, $db: "admin" }), "zlib"));
    await finished;
    const last = call.received.at(-1)?.kind;
    expect(last?.case === "error" ? last.value : undefined).toMatchObject({ code: "17:ProtocolError", message: expect.stringMatching(/compressed message/) });
    expect(await outcome(metrics)).toEqual({ protocol_error: 1 });
  });

  it("refuses a batch whose message lengths disagree with its bytes", async () => {
    const call = new FakeCall();
    const { finished } = start(call);
    await call.until((received) => received.length >= 2);
    const bytes = command({ ping: 1, $db: "admin" });
    bytes.writeInt32LE(bytes.length + 4, 0);
    call.send(bytes);
    await finished;
    const last = call.received.at(-1)?.kind;
    expect(last?.case === "error" ? last.value.code : undefined).toBe("17:ProtocolError");
  });

  it("refuses a compressed message from the server", async () => {
    // A server that answers hello, then compresses its replies though nobody asked it to.
    const sockets = new Set<Socket>();
    const rogue = createServer((socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      const framer = createMongoFramer({ maxMessageBytes: 1 << 20 });
      socket.on("data", (chunk: Buffer) => {
        for (const message of framer.push(chunk) as MongoMessage[]) {
          const frame = mongo.decodeMessage(message.bytes);
          const body = frame.opCode === mongoOpcodes.OP_MSG ? mongo.opMsgBody(frame) : {};
          const reply = body.hello !== undefined ? { isWritablePrimary: true, maxWireVersion: 21, minWireVersion: 0, ok: 1 } : { ok: 1 };
          const bytes = mongo.encodeOpMsg({ requestID: 1, responseTo: message.requestID, body: reply });
          socket.write(body.hello !== undefined ? bytes : mongo.encodeOpCompressed(bytes, "zlib"));
        }
      });
    });
    await new Promise<void>((resolve) => rogue.listen(0, "127.0.0.1", resolve));
    try {
      const call = new FakeCall();
      const { password: _password, ...anonymous } = target({ port: (rogue.address() as AddressInfo).port });
      const { finished, metrics } = start(call, anonymous);
      await call.until((received) => received.length >= 2);
      call.send(command({ ping: 1, $db: "admin" }));
      await finished;
      const last = call.received.at(-1)?.kind;
      expect(last?.case === "error" ? last.value : undefined).toMatchObject({ code: "17:ProtocolError", message: "the database sent a compressed message, though no compression was negotiated" });
      expect(call.messages()).toEqual([]);
      expect(await outcome(metrics)).toEqual({ protocol_error: 1 });
      await vi.waitFor(() => expect(sockets.size).toBe(0));
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => rogue.close(() => resolve()));
    }
  });

  it("stops reading the server while the gateway does not take the frames, then delivers everything", async () => {
    const call = new FakeCall(2);
    const { live } = start(call);
    await call.until((received) => received.length >= 2);
    call.holding = true;
    // 200 pipelined finds of ~50 KiB each: 10 MiB the agent must not pull in while the gateway is stalled.
    const count = 200;
    const requests = Array.from({ length: count }, () => command({ find: "blobs", filter: {}, batchSize: 50, singleBatch: true, $db: "shop" }));
    call.send(...requests);
    await call.until((received) => received.some((message) => message.kind.case === "frames"));
    // What arrives while stalled is bounded by the call's buffer, not by what the server has to say.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const stalled = call.received.length + call.writableLength;
    const relayed = call.messages().length;
    expect(stalled).toBeLessThanOrEqual(2 + 4);
    expect(relayed).toBeLessThan(count / 4);
    call.release();
    await call.until(() => call.messages().length === count);
    const all = replies(call);
    expect(all.every((reply) => reply.ok === 1 && ((reply.cursor as Document).firstBatch as Document[]).length === 50)).toBe(true);
    expect(server.cursorCount).toBe(0);
    call.push(null);
    await vi.waitFor(() => expect(live.size).toBe(0));
  });
});
