import { connect as connectSocket, type Socket } from "node:net";
import { once } from "node:events";
import { Long, ObjectId, type Document } from "bson";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createMongoFramer, mongo, mongoCompressors, mongoOpcodes, opMsgFlags, type MongoFrame, type MongoMessage, type OpMsg, type OpReply } from "@airlock/wire";
import { startMongoTestServer, type MongoTestServer } from "../src/index.js";

/** The stand-in from a raw socket, through @airlock/wire's codec: legacy handshake, checksums, document sequences, moreToCome, exhaust, compression and refusals. */
let server: MongoTestServer;
let open: RawClient[] = [];

beforeAll(async () => {
  server = await startMongoTestServer({ requireAuth: false });
});
afterAll(async () => {
  await server.close();
});
afterEach(async () => {
  for (const client of open) client.socket.destroy();
  open = [];
  server.databases.drop("raw");
});

/** A socket that frames what it receives and hands out messages one by one. */
class RawClient {
  readonly socket: Socket;
  readonly #framer = createMongoFramer({ maxMessageBytes: 64 * 1024 * 1024 });
  readonly #messages: MongoMessage[] = [];
  readonly #waiters: (() => void)[] = [];
  closed = false;
  #requestId = 0;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.#messages.push(...this.#framer.push(chunk));
      for (const wake of this.#waiters.splice(0)) wake();
    });
    socket.on("close", () => {
      this.closed = true;
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  static async open(): Promise<RawClient> {
    const socket = connectSocket(server.port, server.host);
    await once(socket, "connect");
    const client = new RawClient(socket);
    open.push(client);
    return client;
  }

  nextId(): number {
    return ++this.#requestId;
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next message, or undefined when the server closed the connection first. */
  async receive(): Promise<MongoMessage | undefined> {
    for (;;) {
      const message = this.#messages.shift();
      if (message !== undefined) return message;
      if (this.closed) return undefined;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Sends an OP_MSG command and decodes the OP_MSG reply. */
  async command(body: Document, options: { sequences?: { identifier: string; documents: Document[] }[]; checksum?: boolean; flagBits?: number } = {}): Promise<{ reply: OpMsg; body: Document }> {
    const requestID = this.nextId();
    this.send(mongo.encodeOpMsg({ requestID, body, ...options }));
    const message = await this.receive();
    if (message === undefined) throw new Error("connection closed");
    const reply = mongo.decodeOpMsg(message.bytes);
    expect(reply.responseTo).toBe(requestID);
    return { reply, body: mongo.opMsgBody(reply) };
  }

  /** Resolves when the server has closed the connection. */
  async closedByServer(): Promise<boolean> {
    if (!this.closed) await once(this.socket, "close");
    return this.closed;
  }
}

describe("handshake", () => {
  it("answers a legacy OP_QUERY isMaster with an OP_REPLY", async () => {
    const client = await RawClient.open();
    client.send(mongo.encodeOpQuery({ requestID: 7, fullCollectionName: "admin.$cmd", numberToReturn: -1, query: { isMaster: 1, helloOk: true, client: { driver: { name: "raw", version: "0" } } } }));
    const message = await client.receive();
    expect(message?.opCode).toBe(mongoOpcodes.OP_REPLY);
    const reply = mongo.decodeMessage(message?.bytes as Buffer) as OpReply;
    expect(reply.responseTo).toBe(7);
    expect(reply.cursorID).toBe(0n);
    expect(reply.documents).toHaveLength(1);
    expect(reply.documents[0]).toMatchObject({ ismaster: true, helloOk: true, minWireVersion: 0, maxWireVersion: 21, maxBsonObjectSize: 16777216, setName: "rs0", ok: 1 });
  });

  it("also accepts the $query wrapping of old drivers", async () => {
    const client = await RawClient.open();
    client.send(mongo.encodeOpQuery({ requestID: 8, fullCollectionName: "admin.$cmd", numberToReturn: -1, query: { $query: { ismaster: 1 }, $readPreference: { mode: "primary" } } }));
    const reply = mongo.decodeMessage((await client.receive())?.bytes as Buffer) as OpReply;
    expect(reply.documents[0]).toMatchObject({ ismaster: true, ok: 1 });
  });

  it("refuses anything but the handshake over OP_QUERY, as MongoDB 5.1 and later do", async () => {
    const client = await RawClient.open();
    client.send(mongo.encodeOpQuery({ requestID: 9, fullCollectionName: "raw.$cmd", numberToReturn: -1, query: { find: "c" } }));
    const reply = mongo.decodeMessage((await client.receive())?.bytes as Buffer) as OpReply;
    expect(reply.documents[0]).toMatchObject({ ok: 0, code: 352, codeName: "UnsupportedOpQueryCommand" });
  });

  it("streams an awaitable hello with exhaustAllowed: replies with moreToCome, each answering the last", async () => {
    const client = await RawClient.open();
    const { body: first } = await client.command({ hello: 1, $db: "admin" });
    const requestID = client.nextId();
    client.send(
      mongo.encodeOpMsg({
        requestID,
        flagBits: opMsgFlags.exhaustAllowed,
        body: { hello: 1, topologyVersion: first.topologyVersion, maxAwaitTimeMS: 20, $db: "admin" },
      }),
    );
    let responseTo = requestID;
    for (let index = 0; index < 3; index++) {
      const message = await client.receive();
      const reply = mongo.decodeOpMsg(message?.bytes as Buffer);
      expect(reply.responseTo).toBe(responseTo);
      expect(reply.flagBits & opMsgFlags.moreToCome).toBe(opMsgFlags.moreToCome);
      expect(mongo.opMsgBody(reply)).toMatchObject({ isWritablePrimary: true, ok: 1 });
      responseTo = reply.requestID;
    }
  });
});

describe("OP_MSG", () => {
  it("verifies a request's checksum and checksums its reply", async () => {
    const client = await RawClient.open();
    const { reply, body } = await client.command({ ping: 1, $db: "admin" }, { checksum: true });
    expect(reply.checksum).toBeDefined();
    expect(body).toEqual({ ok: 1 });
  });

  it("closes the connection on a checksum mismatch", async () => {
    const client = await RawClient.open();
    const bytes = mongo.encodeOpMsg({ requestID: 1, body: { ping: 1, $db: "admin" }, checksum: true });
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff;
    client.send(bytes);
    expect(await client.receive()).toBeUndefined();
  });

  it("runs insert, update and delete whose statements come as document sequences", async () => {
    const client = await RawClient.open();
    const before = server.stats.documentSequenceMessages;
    const inserted = await client.command({ insert: "c", $db: "raw" }, { sequences: [{ identifier: "documents", documents: [{ _id: 1, v: "a" }, { _id: 2, v: "b" }, { _id: 3, v: "c" }] }] });
    expect(inserted.body).toEqual({ n: 3, ok: 1 });
    const updated = await client.command(
      { update: "c", ordered: true, $db: "raw" },
      { sequences: [{ identifier: "updates", documents: [{ q: { _id: 1 }, u: { $set: { v: "A" } } }, { q: { _id: 9 }, u: { $set: { v: "new" } }, upsert: true }] }] },
    );
    expect(updated.body).toEqual({ n: 2, nModified: 1, upserted: [{ index: 1, _id: 9 }], ok: 1 });
    const deleted = await client.command({ delete: "c", $db: "raw" }, { sequences: [{ identifier: "deletes", documents: [{ q: { _id: 2 }, limit: 1 }] }] });
    expect(deleted.body).toEqual({ n: 1, ok: 1 });
    expect(server.stats.documentSequenceMessages - before).toBe(3);
    expect(server.databases.documents("raw", "c")).toEqual([
      { _id: 1, v: "A" },
      { _id: 3, v: "c" },
      { _id: 9, v: "new" },
    ]);
  });

  it("reports a duplicate key in writeErrors with index, code and errmsg", async () => {
    const client = await RawClient.open();
    const { body } = await client.command({ insert: "c", $db: "raw" }, { sequences: [{ identifier: "documents", documents: [{ _id: "x" }, { _id: "x" }, { _id: "y" }] }] });
    expect(body).toEqual({
      n: 1,
      writeErrors: [{ index: 1, code: 11000, errmsg: 'E11000 duplicate key error collection: raw.c index: _id_ dup key: { _id: "x" }', keyPattern: { _id: 1 }, keyValue: { _id: "x" } }],
      ok: 1,
    });
  });

  it("answers errors like a server: ok 0, errmsg, code, codeName", async () => {
    const client = await RawClient.open();
    expect((await client.command({ frobnicate: 1, $db: "raw" })).body).toEqual({ ok: 0, errmsg: "no such command: 'frobnicate'", code: 59, codeName: "CommandNotFound" });
    expect((await client.command({ ping: 1 })).body).toMatchObject({ ok: 0, code: 2, codeName: "BadValue" });
    expect((await client.command({ getMore: Long.fromNumber(12345), collection: "c", $db: "raw" })).body).toMatchObject({ ok: 0, code: 43, codeName: "CursorNotFound" });
    // The connection goes on after error replies.
    expect((await client.command({ ping: 1, $db: "admin" })).body).toEqual({ ok: 1 });
  });

  it("does not answer a moreToCome request, but runs it", async () => {
    const client = await RawClient.open();
    client.send(mongo.encodeOpMsg({ requestID: client.nextId(), flagBits: opMsgFlags.moreToCome, body: { insert: "c", documents: [{ _id: new ObjectId() }], $db: "raw" } }));
    const { body } = await client.command({ count: "c", $db: "raw" });
    expect(body).toEqual({ n: 1, ok: 1 });
  });

  it("serves a find cursor with real ids through getMore and killCursors", async () => {
    server.databases.insert("raw", "c", Array.from({ length: 10 }, (_, index) => ({ _id: index })));
    const client = await RawClient.open();
    const { body: first } = await client.command({ find: "c", batchSize: 4, $db: "raw" });
    const id = first.cursor.id as Long;
    expect(Long.isLong(id) || typeof id === "number").toBe(true);
    expect(Number(id)).toBeGreaterThan(2 ** 31);
    expect(first.cursor.firstBatch).toHaveLength(4);
    expect(first.cursor.ns).toBe("raw.c");
    const { body: more } = await client.command({ getMore: id, collection: "c", batchSize: 4, $db: "raw" });
    expect(more.cursor.nextBatch.map((document: Document) => document._id)).toEqual([4, 5, 6, 7]);
    expect(Number(more.cursor.id)).toBe(Number(id));
    const { body: killed } = await client.command({ killCursors: "c", cursors: [id], $db: "raw" });
    expect(killed.cursorsKilled.map(Number)).toEqual([Number(id)]);
    expect(server.cursorCount).toBe(0);
  });
});

describe("compression", () => {
  it("decompresses a zlib request and compresses the reply with zlib", async () => {
    const client = await RawClient.open();
    await client.command({ hello: 1, compression: ["zlib"], $db: "admin" });
    const requestID = client.nextId();
    client.send(mongo.encodeOpCompressed(mongo.encodeOpMsg({ requestID, body: { ping: 1, $db: "admin" } }), "zlib"));
    const message = await client.receive();
    expect(message?.opCode).toBe(mongoOpcodes.OP_COMPRESSED);
    const compressed = mongo.decodeOpCompressed(message?.bytes as Buffer);
    expect(compressed.compressorId).toBe(mongoCompressors.zlib);
    const reply = mongo.decodeMessage(mongo.decompressMessage(compressed, { maxMessageBytes: 1 << 20 })) as MongoFrame;
    expect(reply.responseTo).toBe(requestID);
    expect(mongo.opMsgBody(reply as OpMsg)).toEqual({ ok: 1 });
  });

  it("closes the connection on a compressor it does not have", async () => {
    const client = await RawClient.open();
    const bytes = mongo.encodeOpCompressed(mongo.encodeOpMsg({ requestID: 1, body: { ping: 1, $db: "admin" } }), "noop");
    bytes[24] = mongoCompressors.snappy;
    client.send(bytes);
    expect(await client.receive()).toBeUndefined();
  });
});

describe("refusals", () => {
  function header(length: number, opCode: number): Buffer {
    const bytes = Buffer.alloc(16);
    bytes.writeInt32LE(length, 0);
    bytes.writeInt32LE(1, 4);
    bytes.writeInt32LE(opCode, 12);
    return bytes;
  }

  it("closes the connection on an unknown opcode", async () => {
    const client = await RawClient.open();
    client.send(Buffer.concat([header(24, 4242), Buffer.alloc(8)]));
    expect(await client.closedByServer()).toBe(true);
  });

  it("closes the connection on a removed legacy opcode", async () => {
    const client = await RawClient.open();
    client.send(Buffer.concat([header(24, mongoOpcodes.OP_INSERT), Buffer.alloc(8)]));
    expect(await client.closedByServer()).toBe(true);
  });

  it("closes the connection on a length over maxMessageSizeBytes, without waiting for the body", async () => {
    const client = await RawClient.open();
    client.send(header(48_000_001, mongoOpcodes.OP_MSG));
    expect(await client.closedByServer()).toBe(true);
  });

  it("closes the connection on a length under the header size", async () => {
    const client = await RawClient.open();
    client.send(header(8, mongoOpcodes.OP_MSG));
    expect(await client.closedByServer()).toBe(true);
  });

  it("closes the connection on malformed BSON", async () => {
    const client = await RawClient.open();
    const bytes = mongo.encodeOpMsg({ requestID: 1, body: { ping: 1, $db: "admin" } });
    // The body document's first element type byte: 0x10 (int32) becomes an undefined type.
    bytes[16 + 4 + 1 + 4] = 0x55;
    client.send(bytes);
    expect(await client.receive()).toBeUndefined();
  });

  it("closes the connection on a document sequence that repeats a body field", async () => {
    const client = await RawClient.open();
    client.send(mongo.encodeOpMsg({ requestID: 1, body: { insert: "c", documents: [], $db: "raw" }, sequences: [{ identifier: "documents", documents: [{ a: 1 }] }] }));
    expect(await client.receive()).toBeUndefined();
    expect(server.databases.count("raw", "c")).toBe(0);
  });
});
