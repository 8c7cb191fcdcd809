import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { WireError, createMongoFramer, mongo, mongoOpcodes, type MongoFramer, type MongoMessage } from "../src/index.js";

const MAX = 1 << 20;

/** The messages as plain values, so toEqual compares bytes and not views. */
function plain(messages: readonly MongoMessage[]): { opCode: number; requestID: number; hex: string }[] {
  return messages.map((message) => ({ opCode: message.opCode, requestID: message.requestID, hex: message.bytes.toString("hex") }));
}

function pushAll(framer: MongoFramer, chunks: readonly Buffer[]): MongoMessage[] {
  const out: MongoMessage[] = [];
  for (const chunk of chunks) out.push(...framer.push(chunk));
  return out;
}

function thrown(run: () => unknown): WireError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(WireError);
    return error as WireError;
  }
  throw new Error("expected a WireError, nothing was thrown");
}

/** A header with any length and opcode, and `body` after it. */
function raw(length: number, opCode: number, body: Buffer = Buffer.alloc(0), requestID = 7): Buffer {
  const header = Buffer.alloc(16);
  header.writeInt32LE(length, 0);
  header.writeInt32LE(requestID, 4);
  header.writeInt32LE(0, 8);
  header.writeInt32LE(opCode, 12);
  return Buffer.concat([header, body]);
}

const stream = [
  mongo.encodeOpQuery({ requestID: 1, fullCollectionName: "admin.$cmd", numberToReturn: -1, query: { isMaster: 1, client: { driver: { name: "test" } } } }),
  mongo.encodeOpReply({ requestID: 2, responseTo: 1, documents: [{ ismaster: true, maxWireVersion: 21, ok: 1 }] }),
  mongo.encodeOpMsg({ requestID: 3, body: { insert: "orders", $db: "shop" }, sequences: [{ identifier: "documents", documents: [{ _id: 1 }, { _id: 2, name: "ann" }] }] }),
  mongo.encodeOpMsg({ requestID: 4, body: { ping: 1, $db: "admin" }, checksum: true }),
  mongo.encodeOpCompressed(mongo.encodeOpMsg({ requestID: 5, body: { find: "orders", filter: { total: { $gt: 10 } }, $db: "shop" } }), "zlib"),
];
const whole = Buffer.concat(stream);
const expected = stream.map((bytes) => ({ opCode: bytes.readInt32LE(12), requestID: bytes.readInt32LE(4), hex: bytes.toString("hex") }));

describe("createMongoFramer", () => {
  it("refuses a maximum below 16 or not an integer", () => {
    expect(() => createMongoFramer({ maxMessageBytes: 15 })).toThrow(TypeError);
    expect(() => createMongoFramer({ maxMessageBytes: 1024.5 })).toThrow(TypeError);
  });

  it("frames messages with their header fields and whole bytes", () => {
    const framer = createMongoFramer({ maxMessageBytes: MAX });
    const messages = framer.push(whole);
    expect(plain(messages)).toEqual(expected);
    expect(messages[2]).toMatchObject({ opCode: mongoOpcodes.OP_MSG, requestID: 3, responseTo: 0, messageLength: stream[2]?.length });
    expect(messages[1]?.responseTo).toBe(1);
    expect(framer.buffered).toBe(0);
  });

  it("returns views into a contiguous chunk, without copying", () => {
    const framer = createMongoFramer({ maxMessageBytes: MAX });
    for (const message of framer.push(whole)) expect(message.bytes.buffer).toBe(whole.buffer);
  });

  it("gives the same messages when the stream is split at every byte offset", () => {
    for (let split = 0; split <= whole.length; split++) {
      const framer = createMongoFramer({ maxMessageBytes: MAX });
      const messages = pushAll(framer, [whole.subarray(0, split), whole.subarray(split)]);
      expect(plain(messages)).toEqual(expected);
      expect(framer.buffered).toBe(0);
    }
  });

  it("gives the same messages fed one byte at a time", () => {
    const framer = createMongoFramer({ maxMessageBytes: MAX });
    const chunks = [...whole].map((byte) => Buffer.from([byte]));
    expect(plain(pushAll(framer, chunks))).toEqual(expected);
  });

  it("gives the same messages for any split (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: whole.length }), { maxLength: 12 }), (cuts) => {
        const points = [0, ...[...cuts].sort((a, b) => a - b), whole.length];
        const chunks = points.slice(1).map((end, index) => whole.subarray(points[index], end));
        const framer = createMongoFramer({ maxMessageBytes: MAX });
        expect(plain(pushAll(framer, chunks))).toEqual(expected);
      }),
    );
  });

  it("keeps only the unconsumed tail, copied, so the caller may reuse its chunk", () => {
    const framer = createMongoFramer({ maxMessageBytes: MAX });
    const first = stream[0] as Buffer;
    const chunk = Buffer.concat([first, (stream[1] as Buffer).subarray(0, 10)]);
    expect(framer.push(chunk)).toHaveLength(1);
    expect(framer.buffered).toBe(10);
    chunk.fill(0xff);
    expect(plain(framer.push((stream[1] as Buffer).subarray(10)))).toEqual([expected[1]]);
    expect(framer.buffered).toBe(0);
  });

  it("refuses a length under the header size", () => {
    for (const length of [0, 4, 15, -1, -2147483648]) {
      const framer = createMongoFramer({ maxMessageBytes: MAX });
      expect(thrown(() => framer.push(raw(length, mongoOpcodes.OP_MSG))).code).toBe("malformed_message");
    }
  });

  it("refuses a length over the maximum from its first four bytes, before the body arrives", () => {
    const framer = createMongoFramer({ maxMessageBytes: 1024 });
    const header = raw(1025, mongoOpcodes.OP_MSG);
    expect(framer.push(header.subarray(0, 3))).toEqual([]);
    const error = thrown(() => framer.push(header.subarray(3, 4)));
    expect(error.code).toBe("message_too_large");
    expect(error.message).toContain("1025");
  });

  it("refuses a length past the maximum even when the whole declared body never comes", () => {
    const framer = createMongoFramer({ maxMessageBytes: 48_000_000 });
    expect(thrown(() => framer.push(raw(0x7fffffff, mongoOpcodes.OP_MSG))).code).toBe("message_too_large");
  });

  it("accepts a message of exactly the maximum", () => {
    const framer = createMongoFramer({ maxMessageBytes: 64 });
    const message = raw(64, mongoOpcodes.OP_MSG, Buffer.alloc(48));
    expect(framer.push(message)).toHaveLength(1);
  });

  it("waits on a length larger than the message, and decoding what it absorbed fails", () => {
    const framer = createMongoFramer({ maxMessageBytes: MAX });
    const ping = mongo.encodeOpMsg({ requestID: 9, body: { ping: 1, $db: "admin" } });
    const lying = Buffer.from(ping);
    lying.writeInt32LE(ping.length + 10, 0);
    expect(framer.push(lying)).toEqual([]);
    expect(framer.buffered).toBe(ping.length);
    const [absorbed] = framer.push(Buffer.alloc(10, 0x41));
    expect(absorbed?.bytes.length).toBe(ping.length + 10);
    expect(thrown(() => mongo.decodeMessage(absorbed?.bytes as Buffer)).code).toBe("malformed_message");
  });

  it("cuts at a length smaller than the message, and decoding the cut message fails", () => {
    const framer = createMongoFramer({ maxMessageBytes: MAX });
    const ping = mongo.encodeOpMsg({ requestID: 9, body: { ping: 1, $db: "admin" } });
    const lying = Buffer.from(ping);
    lying.writeInt32LE(ping.length - 3, 0);
    const [cut] = framer.push(lying);
    expect(cut?.bytes.length).toBe(ping.length - 3);
    expect(framer.buffered).toBe(3);
    expect(thrown(() => mongo.decodeMessage(cut?.bytes as Buffer)).code).toBe("malformed_message");
  });

  it("reassembles a large message from many chunks", () => {
    const documents = Array.from({ length: 2000 }, (_, index) => ({ _id: index, text: "x".repeat(100) }));
    const big = mongo.encodeOpMsg({ requestID: 1, body: { insert: "c", $db: "d" }, sequences: [{ identifier: "documents", documents }] });
    const framer = createMongoFramer({ maxMessageBytes: 48_000_000 });
    const out: MongoMessage[] = [];
    for (let offset = 0; offset < big.length; offset += 1000) out.push(...framer.push(big.subarray(offset, offset + 1000)));
    expect(out).toHaveLength(1);
    expect(out[0]?.bytes.equals(big)).toBe(true);
    const command = mongo.opMsgCommand(mongo.decodeOpMsg(out[0]?.bytes as Buffer));
    expect(command.documents).toHaveLength(2000);
  });
});
