import { mongo, mongoOpcodes, opMsgFlags } from "@airlock/wire";
import { deflateSync } from "node:zlib";
import { BSON, type Document, type MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHarness, type Harness } from "../support/harness.js";
import { oidcClient, RawMongo, serverState, type Numbered } from "./mongo-policy-support.js";

// Bad input from a raw socket to the gateway's native MongoDB listener, before and after the
// login: malformed BSON, lengths under the header, over the maximum or not matching the content,
// unknown and removed opcodes, OP_COMPRESSED (never agreed), bad checksums and flags. Each ends
// the session or gets an error reply, never reaches the database, and the gateway goes on serving
// its other clients.

const { EJSON } = BSON;
/** The gateway's largest message (limits.max_message_bytes) in this file. */
const MAX_MESSAGE = 1 << 20;

let harness: Harness;
let bystander: MongoClient;
let nextRequestId = 1_000;

beforeAll(async () => {
  harness = await startHarness({ protocol: "mongodb", maxMessageBytes: MAX_MESSAGE });
  harness.mongo?.databases.insert("shop", "items", [{ _id: 1, name: "kept" }]);
  bystander = await oidcClient(harness);
});

afterAll(async () => {
  await bystander?.close();
  await harness?.close();
});

/** A message with a standard header of our choosing in front of `body`. */
function message(opCode: number, body: Buffer, length = 16 + body.length): Buffer {
  const header = Buffer.alloc(16);
  header.writeInt32LE(length, 0);
  header.writeInt32LE(++nextRequestId, 4);
  header.writeInt32LE(0, 8);
  header.writeInt32LE(opCode, 12);
  return Buffer.concat([header, body]);
}

/** An OP_MSG body: flagBits, then a kind-0 section holding `document` (raw bytes). */
function opMsgOf(document: Buffer, flagBits = 0): Buffer {
  const flags = Buffer.alloc(4);
  flags.writeUInt32LE(flagBits >>> 0, 0);
  return message(mongoOpcodes.OP_MSG, Buffer.concat([flags, Buffer.from([0]), document]));
}

const ping = () => mongo.encodeOpMsg({ requestID: ++nextRequestId, responseTo: 0, body: { ping: 1, $db: "admin" } });
const pingDocument = () => Buffer.from(BSON.serialize({ ping: 1, $db: "admin" }));

/** Bytes a well-behaved client never sends, each with what makes it bad. */
const badInputs: readonly (readonly [string, () => Buffer])[] = [
  ["a length under the header size", () => Buffer.concat([int32(8), Buffer.alloc(12)])],
  ["a negative length", () => Buffer.concat([int32(-1), Buffer.alloc(28)])],
  ["a length over the maximum (the body never comes)", () => message(mongoOpcodes.OP_MSG, Buffer.alloc(64), MAX_MESSAGE * 4)],
  ["a length one over the maximum", () => message(mongoOpcodes.OP_MSG, Buffer.alloc(64), MAX_MESSAGE + 1)],
  ["a length longer than the message's content", () => Buffer.concat([withLength(ping(), ping().length + 8), Buffer.alloc(8)])],
  ["a length shorter than the message's content", () => withLength(ping(), ping().length - 4)],
  ["a BSON document longer than its section", () => opMsgOf(patchInt32(pingDocument(), 0, 4096))],
  ["a BSON document with an element of unknown type", () => opMsgOf(Buffer.concat([int32(12), Buffer.from([0x99, 0x78, 0x00]), int32(1), Buffer.from([0])]))],
  ["a BSON document without its terminating zero", () => opMsgOf(patchByte(pingDocument(), pingDocument().length - 1, 0x07))],
  ["a BSON string whose length runs past the document", () => opMsgOf(patchInt32(Buffer.from(BSON.serialize({ ping: "x", $db: "admin" })), 10, 1 << 20))],
  ["a BSON document of garbage", () => opMsgOf(Buffer.from([0x0d, 0, 0, 0, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8, 0]))],
  ["an OP_MSG without a body section", () => message(mongoOpcodes.OP_MSG, Buffer.concat([int32(0), Buffer.from([1]), int32(4 + 2 + 5), Buffer.from("d\0"), Buffer.from([5, 0, 0, 0, 0])]))],
  ["an OP_MSG with two body sections", () => message(mongoOpcodes.OP_MSG, Buffer.concat([int32(0), Buffer.from([0]), pingDocument(), Buffer.from([0]), pingDocument()]))],
  ["an OP_MSG section of unknown kind", () => message(mongoOpcodes.OP_MSG, Buffer.concat([int32(0), Buffer.from([7]), pingDocument()]))],
  ["an OP_MSG with a wrong checksum", () => Buffer.concat([withLength(opMsgOf(pingDocument(), opMsgFlags.checksumPresent), 16 + 4 + 1 + pingDocument().length + 4), int32(0x12345678)])],
  ["an OP_MSG with an unknown required flag bit", () => opMsgOf(pingDocument(), 1 << 5)],
  ["an unknown opcode", () => message(9999, Buffer.concat([int32(0), Buffer.from([0]), pingDocument()]))],
  ["OP_REPLY from a client", () => mongo.encodeOpReply({ requestID: ++nextRequestId, responseTo: 0, documents: [{ ok: 1 }] })],
  ["the removed OP_INSERT", () => message(mongoOpcodes.OP_INSERT, Buffer.concat([int32(0), Buffer.from("shop.items\0"), Buffer.from(BSON.serialize({ _id: 99 }))]))],
  ["the removed OP_GET_MORE", () => message(mongoOpcodes.OP_GET_MORE, Buffer.concat([int32(0), Buffer.from("shop.items\0"), int32(10), Buffer.alloc(8, 1)]))],
  ["OP_COMPRESSED (zlib) of a valid OP_MSG", () => mongo.encodeOpCompressed(ping(), "zlib")],
  ["OP_COMPRESSED (noop) of a valid OP_MSG", () => mongo.encodeOpCompressed(ping(), "noop")],
  ["OP_COMPRESSED that claims the wrong size", () => compressedWithSize(4)],
  ["OP_COMPRESSED of an unknown compressor", () => compressed(ping(), 9)],
];

function int32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeInt32LE(value);
  return bytes;
}

function withLength(bytes: Buffer, length: number): Buffer {
  return patchInt32(bytes, 0, length);
}

function patchInt32(bytes: Buffer, at: number, value: number): Buffer {
  const copy = Buffer.from(bytes);
  copy.writeInt32LE(value, at);
  return copy;
}

function patchByte(bytes: Buffer, at: number, value: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] = value;
  return copy;
}

/** OP_COMPRESSED by hand: originalOpcode, uncompressedSize, compressorId, compressed bytes. */
function compressed(inner: Buffer, compressorId: number, uncompressedSize = inner.length - 16): Buffer {
  const fields = Buffer.alloc(9);
  fields.writeInt32LE(inner.readInt32LE(12), 0);
  fields.writeInt32LE(uncompressedSize, 4);
  fields.writeUInt8(compressorId, 8);
  return message(mongoOpcodes.OP_COMPRESSED, Buffer.concat([fields, compressorId === 2 ? deflateSync(inner.subarray(16)) : inner.subarray(16)]));
}

function compressedWithSize(size: number): Buffer {
  return compressed(ping(), 2, size);
}

/** What the gateway did with bad bytes: closed the connection, or answered with an error (and then maybe closed). */
async function outcome(raw: RawMongo): Promise<{ closed: boolean; replies: Document[] }> {
  const closed = await raw.ended(3_000);
  return { closed, replies: raw.pending.map((reply) => reply.body) };
}

/** Waits until `check` holds (for what the gateway does after a test's last await). */
async function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 150; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`never: ${what}`);
}

describe.each(["before the login", "after the login"] as const)("bad input %s", (phase) => {
  it.each(badInputs.map(([label, bytes]) => [label, bytes] as const))("%s", async (_label, bytes) => {
    const connections = harness.mongo?.connectionCount ?? 0;
    const sessions = new Set((await harness.gateway.store.listSessions({ limit: 200 })).map((session) => session.id));
    const raw = phase === "before the login" ? await RawMongo.open(harness.native) : await RawMongo.login(harness.native, await harness.token());
    // After the login the agent has logged in to the database for this session: count from here.
    const commands = new Map(harness.mongo?.stats.commands ?? []);
    const state = serverState(harness);
    raw.write(bytes());
    const result = await outcome(raw);
    raw.close();
    expect(result.closed, EJSON.stringify(result.replies)).toBe(true);
    for (const reply of result.replies) expect(reply).toMatchObject({ ok: 0, code: 17, codeName: "ProtocolError" });
    // Nothing reached the database, and the gateway serves its other clients.
    expect(new Map(harness.mongo?.stats.commands ?? [])).toEqual(commands);
    expect(serverState(harness)).toEqual(state);
    expect(await bystander.db("shop").collection<Numbered>("items").findOne({ _id: 1 })).toEqual({ _id: 1, name: "kept" });
    if (phase === "after the login") {
      // The session ended as a protocol violation, and its connection to the database closed.
      const opened = (await harness.gateway.store.listSessions({ limit: 200 })).filter((session) => !sessions.has(session.id));
      expect(opened).toHaveLength(1);
      await eventually(async () => (await harness.gateway.store.getSession(opened[0]?.id ?? ""))?.outcome === "protocol_violation", "the session ends as a protocol violation");
    }
    await eventually(() => (harness.mongo?.connectionCount ?? 0) <= connections, "the database connection of the session closes");
  });

  it("leaves the gateway serving new clients", async () => {
    const fresh = await oidcClient(harness);
    try {
      expect(await fresh.db("shop").collection<Numbered>("items").find().toArray()).toEqual([{ _id: 1, name: "kept" }]);
    } finally {
      await fresh.close();
    }
  });
});

describe("what is not bad input", () => {
  it("answers a legacy OP_QUERY that is not the handshake with an error, and the session goes on", async () => {
    const raw = await RawMongo.login(harness.native, await harness.token());
    try {
      const requestID = 424_242;
      raw.write(mongo.encodeOpQuery({ requestID, flags: 0, fullCollectionName: "shop.items", numberToSkip: 0, numberToReturn: 1, query: { _id: 1 } }));
      const reply = await raw.reply((candidate) => candidate.responseTo === requestID);
      expect(reply).toMatchObject({ opCode: mongoOpcodes.OP_REPLY, body: { ok: 0, code: 352 } });
      expect(await raw.command({ find: "items", filter: {}, $db: "shop" })).toMatchObject({ ok: 1, cursor: { firstBatch: [{ _id: 1, name: "kept" }] } });
    } finally {
      raw.close();
    }
  });

  it("refuses an empty command document as a command it does not know", async () => {
    const raw = await RawMongo.login(harness.native, await harness.token());
    try {
      expect(await raw.command({})).toMatchObject({ ok: 0, code: 13, errmsg: expect.stringMatching(/^airlock: command denied/) });
      expect(await raw.command({ ping: 1, $db: "admin" })).toMatchObject({ ok: 1 });
    } finally {
      raw.close();
    }
  });
});
