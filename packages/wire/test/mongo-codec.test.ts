import { deflateSync } from "node:zlib";
import { Binary, Decimal128, Double, Int32, Long, ObjectId, serialize } from "bson";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { WireError, mongo, mongoCompressors, mongoOpcodes, opMsgFlags, type OpMsg } from "../src/index.js";

function thrown(run: () => unknown): WireError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(WireError);
    return error as WireError;
  }
  throw new Error("expected a WireError, nothing was thrown");
}

/** A message with a hand-made body after a correct header. */
function message(opCode: number, body: Buffer, requestID = 1): Buffer {
  const header = Buffer.alloc(16);
  header.writeInt32LE(16 + body.length, 0);
  header.writeInt32LE(requestID, 4);
  header.writeInt32LE(opCode, 12);
  return Buffer.concat([header, body]);
}

function int32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeInt32LE(value);
  return out;
}

const bsonOf = (document: object): Buffer => Buffer.from(serialize(document));

describe("crc32c", () => {
  it("gives the check values of CRC-32C", () => {
    expect(mongo.crc32c(Buffer.from("123456789"))).toBe(0xe3069283);
    expect(mongo.crc32c(Buffer.alloc(32))).toBe(0x8a9136aa);
    expect(mongo.crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    expect(mongo.crc32c(Buffer.alloc(0))).toBe(0);
  });

  it("continues from an earlier value", () => {
    const bytes = Buffer.from("the quick brown fox jumps over the lazy dog");
    expect(mongo.crc32c(bytes.subarray(13), mongo.crc32c(bytes.subarray(0, 13)))).toBe(mongo.crc32c(bytes));
  });
});

describe("OP_MSG", () => {
  it("round-trips a body", () => {
    const bytes = mongo.encodeOpMsg({ requestID: 42, responseTo: 7, body: { find: "orders", filter: { total: { $gt: 10 } }, batchSize: 2, $db: "shop" } });
    expect(mongo.decodeHeader(bytes)).toEqual({ messageLength: bytes.length, requestID: 42, responseTo: 7, opCode: mongoOpcodes.OP_MSG });
    const decoded = mongo.decodeMessage(bytes);
    expect(decoded).toEqual({
      opCode: mongoOpcodes.OP_MSG,
      requestID: 42,
      responseTo: 7,
      flagBits: 0,
      sections: [{ kind: 0, document: { find: "orders", filter: { total: { $gt: 10 } }, batchSize: 2, $db: "shop" } }],
    });
  });

  it("round-trips document sequences and merges them into the command", () => {
    const bytes = mongo.encodeOpMsg({
      requestID: 1,
      body: { update: "orders", ordered: true, $db: "shop" },
      sequences: [
        { identifier: "updates", documents: [{ q: { _id: 1 }, u: { $set: { a: 1 } } }, { q: {}, u: { $inc: { n: 1 } }, multi: true }] },
        { identifier: "empty", documents: [] },
      ],
    });
    const decoded = mongo.decodeOpMsg(bytes);
    expect(decoded.sections).toEqual([
      { kind: 0, document: { update: "orders", ordered: true, $db: "shop" } },
      { kind: 1, identifier: "updates", documents: [{ q: { _id: 1 }, u: { $set: { a: 1 } } }, { q: {}, u: { $inc: { n: 1 } }, multi: true }] },
      { kind: 1, identifier: "empty", documents: [] },
    ]);
    expect(mongo.opMsgCommand(decoded)).toEqual({
      update: "orders",
      ordered: true,
      $db: "shop",
      updates: [{ q: { _id: 1 }, u: { $set: { a: 1 } } }, { q: {}, u: { $inc: { n: 1 } }, multi: true }],
      empty: [],
    });
    expect(mongo.opMsgBody(decoded)).toEqual({ update: "orders", ordered: true, $db: "shop" });
  });

  it("decodes a document sequence written before the body", () => {
    const sequence = Buffer.concat([Buffer.from("documents\0"), bsonOf({ _id: 1 }), bsonOf({ _id: 2 })]);
    const body = Buffer.concat([int32(0), Buffer.from([1]), int32(4 + sequence.length), sequence, Buffer.from([0]), bsonOf({ insert: "c", $db: "d" })]);
    const decoded = mongo.decodeOpMsg(message(mongoOpcodes.OP_MSG, body));
    expect(mongo.opMsgCommand(decoded)).toEqual({ insert: "c", $db: "d", documents: [{ _id: 1 }, { _id: 2 }] });
  });

  it("refuses a sequence whose identifier repeats a body field", () => {
    const decoded = mongo.decodeOpMsg(mongo.encodeOpMsg({ requestID: 1, body: { insert: "c", documents: [] }, sequences: [{ identifier: "documents", documents: [{ a: 1 }] }] }));
    expect(thrown(() => mongo.opMsgCommand(decoded)).code).toBe("malformed_message");
  });

  it("writes a CRC-32C and verifies it on decode", () => {
    const bytes = mongo.encodeOpMsg({ requestID: 1, body: { ping: 1, $db: "admin" }, checksum: true });
    const decoded = mongo.decodeOpMsg(bytes);
    expect(decoded.flagBits & opMsgFlags.checksumPresent).toBe(opMsgFlags.checksumPresent);
    expect(decoded.checksum).toBe(bytes.readUInt32LE(bytes.length - 4));
    expect(decoded.checksum).toBe(mongo.crc32c(bytes.subarray(0, bytes.length - 4)));
    expect(mongo.opMsgBody(decoded)).toEqual({ ping: 1, $db: "admin" });
  });

  it("detects a checksum mismatch, whichever byte changed", () => {
    const bytes = mongo.encodeOpMsg({ requestID: 1, body: { ping: 1, $db: "admin" }, sequences: [{ identifier: "x", documents: [{ a: 1 }] }], checksum: true });
    // Every byte after the length and opcode: flipping one of those fails earlier, differently.
    for (let index = 4; index < bytes.length; index++) {
      if (index >= 12 && index < 16) continue;
      const corrupt = Buffer.from(bytes);
      corrupt[index] = (corrupt[index] ?? 0) ^ 0x01;
      if (index >= 16 && index < 20) continue; // flag bits: checked separately below
      const error = thrown(() => mongo.decodeOpMsg(corrupt));
      expect(error.code).toBe("malformed_message");
      expect(error.message).toContain("checksum mismatch");
    }
  });

  it("refuses checksumPresent on a message too short to hold a checksum", () => {
    const body = Buffer.concat([int32(opMsgFlags.checksumPresent)]);
    expect(thrown(() => mongo.decodeOpMsg(message(mongoOpcodes.OP_MSG, body))).code).toBe("malformed_message");
  });

  it("keeps moreToCome and exhaustAllowed, and ignores unknown optional bits", () => {
    const flags = opMsgFlags.moreToCome | opMsgFlags.exhaustAllowed | (1 << 20);
    const decoded = mongo.decodeOpMsg(mongo.encodeOpMsg({ requestID: 1, flagBits: flags, body: { hello: 1 } }));
    expect(decoded.flagBits).toBe(flags);
  });

  it("refuses unknown required flag bits", () => {
    const bytes = mongo.encodeOpMsg({ requestID: 1, flagBits: 1 << 3, body: { hello: 1 } });
    expect(thrown(() => mongo.decodeOpMsg(bytes)).code).toBe("unsupported_protocol");
  });

  it("refuses no body section, two body sections and unknown section kinds", () => {
    const doc = bsonOf({ a: 1 });
    const none = Buffer.concat([int32(0), Buffer.from([1]), int32(4 + 2), Buffer.from("x\0")]);
    const two = Buffer.concat([int32(0), Buffer.from([0]), doc, Buffer.from([0]), doc]);
    const unknown = Buffer.concat([int32(0), Buffer.from([0]), doc, Buffer.from([2]), doc]);
    for (const body of [none, two, unknown, int32(0)]) {
      expect(thrown(() => mongo.decodeOpMsg(message(mongoOpcodes.OP_MSG, body))).code).toBe("malformed_message");
    }
  });

  it("refuses a document sequence whose size lies", () => {
    const sequence = Buffer.concat([Buffer.from("documents\0"), bsonOf({ _id: 1 })]);
    for (const size of [4 + sequence.length + 1, 4 + sequence.length - 1, 3, -5, 0x7fffffff]) {
      const body = Buffer.concat([int32(0), Buffer.from([0]), bsonOf({ insert: "c" }), Buffer.from([1]), int32(size), sequence]);
      expect(thrown(() => mongo.decodeOpMsg(message(mongoOpcodes.OP_MSG, body))).code).toBe("malformed_message");
    }
  });

  it("refuses a document sequence with no terminated identifier", () => {
    const body = Buffer.concat([int32(0), Buffer.from([0]), bsonOf({ insert: "c" }), Buffer.from([1]), int32(4 + 3), Buffer.from("abc")]);
    expect(thrown(() => mongo.decodeOpMsg(message(mongoOpcodes.OP_MSG, body))).code).toBe("malformed_message");
  });

  it("encodes documents given as BSON bytes as they are", () => {
    const document = bsonOf({ _id: 5, name: "x" });
    const bytes = mongo.encodeOpMsg({ requestID: 1, body: bsonOf({ insert: "c" }), sequences: [{ identifier: "documents", documents: [document] }] });
    expect(mongo.opMsgCommand(mongo.decodeOpMsg(bytes))).toEqual({ insert: "c", documents: [{ _id: 5, name: "x" }] });
  });

  it("keeps BSON types through a round trip with promoteValues off", () => {
    const id = new ObjectId();
    const body = { int: new Int32(1), double: new Double(1), long: Long.fromString("9007199254740993"), dec: Decimal128.fromString("1.10"), bin: new Binary(Buffer.from([1, 2, 3])), id, date: new Date(0) };
    const decoded = mongo.decodeOpMsg(mongo.encodeOpMsg({ requestID: 1, body }), { bson: { promoteValues: false } });
    const document = mongo.opMsgBody(decoded);
    expect(document.int).toBeInstanceOf(Int32);
    expect(document.double).toBeInstanceOf(Double);
    expect(document.long).toBeInstanceOf(Long);
    expect(String(document.long)).toBe("9007199254740993");
    expect(String(document.dec)).toBe("1.10");
    expect((document.id as ObjectId).equals(id)).toBe(true);
    expect(Buffer.from(mongo.encodeOpMsg({ requestID: 1, body: document })).equals(mongo.encodeOpMsg({ requestID: 1, body }))).toBe(true);
  });

  it("round-trips any body and sequences (property)", () => {
    const value = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: "small" },
        fc.string(),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie("value"), { maxLength: 4 }),
        fc.dictionary(fc.string({ minLength: 1 }).filter((key) => !key.includes("\0")), tie("value"), { maxKeys: 4 }),
      ),
    })).value;
    const key = fc.string({ minLength: 1, maxLength: 8 }).filter((text) => !text.includes("\0") && text !== "__proto__");
    const document = fc.dictionary(key, value, { maxKeys: 5 });
    fc.assert(
      fc.property(
        document,
        fc.array(fc.record({ identifier: fc.stringMatching(/^[a-z]{1,8}$/), documents: fc.array(document, { maxLength: 4 }) }), { maxLength: 3 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        (body, sequences, checksum, requestID) => {
          const bytes = mongo.encodeOpMsg({ requestID, body, sequences, checksum });
          const decoded = mongo.decodeMessage(bytes) as OpMsg;
          expect(decoded.requestID).toBe(requestID);
          expect(decoded.sections).toEqual([{ kind: 0, document: body }, ...sequences.map((sequence) => ({ kind: 1, ...sequence }))]);
          // Re-encoding the decoded message gives the same bytes.
          const again = mongo.encodeOpMsg({ requestID, body: mongo.opMsgBody(decoded), sequences: decoded.sections.filter((section) => section.kind === 1), checksum });
          expect(again.equals(bytes)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("malformed BSON", () => {
  const valid = mongo.encodeOpMsg({ requestID: 1, body: { find: "orders", filter: { name: "ann" }, $db: "shop" } });
  const bodyAt = 16 + 4 + 1;

  it("refuses a document whose size runs past the message", () => {
    const corrupt = Buffer.from(valid);
    corrupt.writeInt32LE(corrupt.readInt32LE(bodyAt) + 1, bodyAt);
    expect(thrown(() => mongo.decodeMessage(corrupt)).code).toBe("malformed_message");
  });

  it("refuses a document size under 5 or negative", () => {
    for (const size of [0, 4, -1]) {
      const corrupt = Buffer.from(valid);
      corrupt.writeInt32LE(size, bodyAt);
      expect(thrown(() => mongo.decodeMessage(corrupt)).code).toBe("malformed_message");
    }
  });

  it("refuses a truncated document at every length", () => {
    const document = bsonOf({ find: "orders", filter: { name: "ann", n: 1 }, $db: "shop" });
    for (let length = 0; length < document.length; length++) {
      const body = Buffer.concat([int32(0), Buffer.from([0]), document.subarray(0, length)]);
      expect(thrown(() => mongo.decodeMessage(message(mongoOpcodes.OP_MSG, body))).code).toBe("malformed_message");
    }
  });

  it("refuses a document whose inner size lies, with a wrapped cause", () => {
    const document = bsonOf({ filter: { name: "ann" } });
    // The embedded document's size is after the type byte and "filter\0".
    const inner = 4 + 1 + 7;
    const corrupt = Buffer.from(document);
    corrupt.writeInt32LE(corrupt.readInt32LE(inner) + 3, inner);
    const error = thrown(() => mongo.decodeDocument(corrupt));
    expect(error.code).toBe("malformed_message");
    expect(error.cause).toBeInstanceOf(Error);
  });

  it("refuses an unknown element type, a missing terminator and invalid UTF-8", () => {
    const document = bsonOf({ a: "hello" });
    const badType = Buffer.from(document);
    badType[4] = 0x77;
    const noTerminator = Buffer.from(document);
    noTerminator[noTerminator.length - 1] = 1;
    const badUtf8 = Buffer.from(document);
    badUtf8.set([0xc3, 0x28], badUtf8.indexOf("hello"));
    for (const bytes of [badType, noTerminator, badUtf8]) {
      expect(thrown(() => mongo.decodeMessage(message(mongoOpcodes.OP_MSG, Buffer.concat([int32(0), Buffer.from([0]), bytes])))).code).toBe("malformed_message");
    }
  });
});

describe("OP_QUERY and OP_REPLY", () => {
  it("round-trips an OP_QUERY hello with and without a field selector", () => {
    const query = { isMaster: 1, helloOk: true, client: { driver: { name: "nodejs", version: "6" } }, compression: ["zlib"] };
    const bytes = mongo.encodeOpQuery({ requestID: 3, flags: 4, fullCollectionName: "admin.$cmd", numberToReturn: -1, query });
    expect(mongo.decodeMessage(bytes)).toEqual({
      opCode: mongoOpcodes.OP_QUERY,
      requestID: 3,
      responseTo: 0,
      flags: 4,
      fullCollectionName: "admin.$cmd",
      numberToSkip: 0,
      numberToReturn: -1,
      query,
    });
    const withSelector = mongo.decodeOpQuery(mongo.encodeOpQuery({ requestID: 3, fullCollectionName: "db.c", numberToSkip: 5, query: {}, returnFieldsSelector: { a: 1 } }));
    expect(withSelector.returnFieldsSelector).toEqual({ a: 1 });
    expect(withSelector.numberToSkip).toBe(5);
  });

  it("refuses bytes after an OP_QUERY's documents, and a name without its NUL", () => {
    const bytes = mongo.encodeOpQuery({ requestID: 3, fullCollectionName: "admin.$cmd", query: { hello: 1 }, returnFieldsSelector: {} });
    expect(thrown(() => mongo.decodeMessage(message(mongoOpcodes.OP_QUERY, Buffer.concat([bytes.subarray(16), Buffer.from([0])])))).code).toBe("malformed_message");
    expect(thrown(() => mongo.decodeMessage(message(mongoOpcodes.OP_QUERY, Buffer.concat([int32(0), Buffer.from("admin.$cmd")])))).code).toBe("malformed_message");
  });

  it("round-trips an OP_REPLY with a 64-bit cursor id", () => {
    const bytes = mongo.encodeOpReply({ requestID: 9, responseTo: 3, cursorID: 0x7fff_ffff_ffff_fff0n, startingFrom: 2, documents: [{ ismaster: true, ok: 1 }, { b: "x" }] });
    expect(mongo.decodeOpReply(bytes)).toEqual({
      opCode: mongoOpcodes.OP_REPLY,
      requestID: 9,
      responseTo: 3,
      responseFlags: 0,
      cursorID: 0x7fff_ffff_ffff_fff0n,
      startingFrom: 2,
      documents: [{ ismaster: true, ok: 1 }, { b: "x" }],
    });
  });

  it("refuses an OP_REPLY whose numberReturned lies", () => {
    const bytes = mongo.encodeOpReply({ requestID: 9, responseTo: 3, documents: [{ ok: 1 }] });
    for (const count of [0, 2, -1]) {
      const corrupt = Buffer.from(bytes);
      corrupt.writeInt32LE(count, 16 + 16);
      expect(thrown(() => mongo.decodeOpReply(corrupt)).code).toBe("malformed_message");
    }
  });
});

describe("OP_COMPRESSED", () => {
  const original = mongo.encodeOpMsg({ requestID: 11, responseTo: 4, body: { find: "orders", filter: { note: "a".repeat(500) }, $db: "shop" } });

  for (const compressor of ["noop", "zlib"] as const) {
    it(`round-trips through ${compressor}`, () => {
      const compressed = mongo.encodeOpCompressed(original, compressor);
      const frame = mongo.decodeMessage(compressed);
      expect(frame).toMatchObject({
        opCode: mongoOpcodes.OP_COMPRESSED,
        requestID: 11,
        responseTo: 4,
        originalOpcode: mongoOpcodes.OP_MSG,
        uncompressedSize: original.length - 16,
        compressorId: mongoCompressors[compressor],
      });
      if (compressor === "zlib") expect(compressed.length).toBeLessThan(original.length);
      const restored = mongo.decompressMessage(compressed, { maxMessageBytes: 1 << 20 });
      expect(restored.equals(original)).toBe(true);
    });
  }

  it("refuses snappy and zstd with a clear error", () => {
    for (const id of [mongoCompressors.snappy, mongoCompressors.zstd]) {
      const compressed = mongo.encodeOpCompressed(original, "noop");
      compressed[24] = id;
      const error = thrown(() => mongo.decompressMessage(compressed, { maxMessageBytes: 1 << 20 }));
      expect(error.code).toBe("unsupported_protocol");
      expect(error.message).toMatch(/^unsupported compressor `(snappy|zstd)`$/);
    }
    const unknown = mongo.encodeOpCompressed(original, "noop");
    unknown[24] = 99;
    expect(thrown(() => mongo.decompressMessage(unknown, { maxMessageBytes: 1 << 20 })).message).toBe("unsupported compressor `99`");
  });

  it("checks uncompressedSize against the maximum before inflating", () => {
    const compressed = mongo.encodeOpCompressed(original, "zlib");
    expect(thrown(() => mongo.decompressMessage(compressed, { maxMessageBytes: original.length - 1 })).code).toBe("message_too_large");
  });

  it("refuses a zlib payload that inflates to more or less than it announced", () => {
    const bomb = Buffer.alloc(100_000);
    const payload = deflateSync(bomb);
    const body = Buffer.concat([int32(mongoOpcodes.OP_MSG), int32(1000), Buffer.from([mongoCompressors.zlib]), payload]);
    expect(thrown(() => mongo.decompressMessage(message(mongoOpcodes.OP_COMPRESSED, body), { maxMessageBytes: 1 << 20 })).code).toBe("malformed_message");
    const short = Buffer.concat([int32(mongoOpcodes.OP_MSG), int32(200_000), Buffer.from([mongoCompressors.zlib]), payload]);
    expect(thrown(() => mongo.decompressMessage(message(mongoOpcodes.OP_COMPRESSED, short), { maxMessageBytes: 1 << 20 })).code).toBe("malformed_message");
    const garbage = Buffer.concat([int32(mongoOpcodes.OP_MSG), int32(10), Buffer.from([mongoCompressors.zlib]), Buffer.from("not zlib")]);
    expect(thrown(() => mongo.decompressMessage(message(mongoOpcodes.OP_COMPRESSED, garbage), { maxMessageBytes: 1 << 20 })).code).toBe("malformed_message");
  });

  it("refuses a noop payload whose size disagrees, a negative size and nesting", () => {
    const noop = Buffer.concat([int32(mongoOpcodes.OP_MSG), int32(10), Buffer.from([0]), Buffer.alloc(9)]);
    expect(thrown(() => mongo.decompressMessage(message(mongoOpcodes.OP_COMPRESSED, noop), { maxMessageBytes: 1 << 20 })).code).toBe("malformed_message");
    const negative = Buffer.concat([int32(mongoOpcodes.OP_MSG), int32(-1), Buffer.from([0])]);
    expect(thrown(() => mongo.decodeMessage(message(mongoOpcodes.OP_COMPRESSED, negative))).code).toBe("malformed_message");
    const nested = Buffer.concat([int32(mongoOpcodes.OP_COMPRESSED), int32(0), Buffer.from([0])]);
    expect(thrown(() => mongo.decodeMessage(message(mongoOpcodes.OP_COMPRESSED, nested))).code).toBe("malformed_message");
    expect(() => mongo.encodeOpCompressed(mongo.encodeOpCompressed(original, "noop"), "zlib")).toThrow(TypeError);
  });
});

describe("decodeMessage", () => {
  it("refuses an unknown opcode", () => {
    const error = thrown(() => mongo.decodeMessage(message(1234, Buffer.alloc(8))));
    expect(error.code).toBe("unexpected_message");
    expect(error.message).toBe("unknown opcode 1234");
  });

  it("refuses the opcodes MongoDB removed", () => {
    for (const opCode of [mongoOpcodes.OP_INSERT, mongoOpcodes.OP_UPDATE, mongoOpcodes.OP_DELETE, mongoOpcodes.OP_GET_MORE, mongoOpcodes.OP_KILL_CURSORS, mongoOpcodes.RESERVED]) {
      expect(thrown(() => mongo.decodeMessage(message(opCode, Buffer.alloc(8)))).code).toBe("unsupported_protocol");
    }
  });

  it("refuses a message whose length field disagrees with its bytes", () => {
    const bytes = mongo.encodeOpMsg({ requestID: 1, body: { ping: 1 } });
    for (const length of [bytes.length - 1, bytes.length + 1, 0]) {
      const corrupt = Buffer.from(bytes);
      corrupt.writeInt32LE(length, 0);
      expect(thrown(() => mongo.decodeMessage(corrupt)).code).toBe("malformed_message");
    }
    expect(thrown(() => mongo.decodeMessage(Buffer.alloc(10))).code).toBe("malformed_message");
  });

  it("says which opcode it expected from a typed decoder", () => {
    const error = thrown(() => mongo.decodeOpQuery(mongo.encodeOpMsg({ requestID: 1, body: { ping: 1 } })));
    expect(error.code).toBe("unexpected_message");
    expect(error.message).toBe("expected OP_QUERY, got OP_MSG (2013)");
  });
});
