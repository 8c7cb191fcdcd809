import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { WireError, createMysqlFramer, mysql, type MysqlFramer, type MysqlPacket } from "../../src/index.js";

const MAX = 1 << 16;
const FULL = 0xffffff;

/** A physical packet built by hand: int<3> length, int<1> sequence id, payload. */
function physical(sequenceId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUIntLE(payload.length, 0, 3);
  header[3] = sequenceId;
  return Buffer.concat([header, payload]);
}

/** The packets as plain values, so toEqual compares bytes and not views. */
function plain(packets: readonly MysqlPacket[]): { sequenceId: number; payload: string; bytes: string }[] {
  return packets.map((packet) => ({ sequenceId: packet.sequenceId, payload: packet.payload.toString("hex"), bytes: packet.bytes.toString("hex") }));
}

function pushAll(framer: MysqlFramer, chunks: readonly Buffer[]): MysqlPacket[] {
  const out: MysqlPacket[] = [];
  for (const chunk of chunks) out.push(...framer.push(chunk));
  return out;
}

/** Cuts `all` at the given points. */
function cut(all: Buffer, points: readonly number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let from = 0;
  for (const point of points) {
    chunks.push(all.subarray(from, point));
    from = point;
  }
  chunks.push(all.subarray(from));
  return chunks;
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

const stream = [
  physical(0, mysql.encodeComQuery("select 1")),
  physical(1, Buffer.alloc(0)),
  physical(1, mysql.encodeColumnCount(3)),
  physical(2, mysql.encodeErr({ code: 1045, sqlState: "28000", message: "Access denied" })),
  physical(255, Buffer.from("wrapped sequence id")),
];
const whole = Buffer.concat(stream);
const expected = stream.map((bytes) => ({ sequenceId: bytes[3] ?? -1, payload: bytes.subarray(4).toString("hex"), bytes: bytes.toString("hex") }));

describe("createMysqlFramer", () => {
  it("refuses a maximum below 16 or not an integer", () => {
    expect(() => createMysqlFramer({ maxMessageBytes: 15 })).toThrow(TypeError);
    expect(() => createMysqlFramer({ maxMessageBytes: 1024.5 })).toThrow(TypeError);
  });

  it("frames packets with their sequence id, payload and whole bytes", () => {
    const framer = createMysqlFramer({ maxMessageBytes: MAX });
    expect(plain(framer.push(whole))).toEqual(expected);
    expect(framer.buffered).toBe(0);
  });

  it("returns views into a contiguous chunk, without copying", () => {
    const framer = createMysqlFramer({ maxMessageBytes: MAX });
    const packets = framer.push(whole);
    expect(packets).toHaveLength(stream.length);
    for (const packet of packets) {
      expect(packet.bytes.buffer).toBe(whole.buffer);
      expect(packet.payload.buffer).toBe(whole.buffer);
    }
  });

  it("gives the same packets whatever byte offset the stream is split at", () => {
    for (let at = 0; at <= whole.length; at++) {
      const framer = createMysqlFramer({ maxMessageBytes: MAX });
      expect(plain(pushAll(framer, [whole.subarray(0, at), whole.subarray(at)])), `split at ${at}`).toEqual(expected);
      expect(framer.buffered).toBe(0);
    }
  });

  it("gives the same packets when every packet is split at every offset, and byte by byte", () => {
    for (const [index, bytes] of stream.entries()) {
      const before = Buffer.concat(stream.slice(0, index));
      const after = Buffer.concat(stream.slice(index + 1));
      for (let at = 0; at <= bytes.length; at++) {
        const framer = createMysqlFramer({ maxMessageBytes: MAX });
        const packets = pushAll(framer, [Buffer.concat([before, bytes.subarray(0, at)]), Buffer.concat([bytes.subarray(at), after])]);
        expect(plain(packets), `packet ${index} split at ${at}`).toEqual(expected);
      }
    }
    const framer = createMysqlFramer({ maxMessageBytes: MAX });
    expect(plain(pushAll(framer, [...whole].map((byte) => Buffer.from([byte]))))).toEqual(expected);
  });

  it("splits a logical packet of several physical packets at every offset", () => {
    // Every offset of a 16 MB stream is too many to try: cut at every offset around the two headers
    // and at a prime stride through the bodies.
    const payload = Buffer.alloc(FULL + 3, 0x61);
    payload.write("end", FULL);
    const encoded = Buffer.concat([mysql.encodePacket(7, payload), physical(0, Buffer.from("next"))]);
    const points = new Set<number>();
    for (let at = 0; at <= 12; at++) points.add(at);
    for (let at = FULL - 4; at <= FULL + 20; at++) points.add(at);
    for (let at = 0; at < encoded.length; at += 4_999_999) points.add(at);
    points.add(encoded.length);
    for (const at of points) {
      const framer = createMysqlFramer({ maxMessageBytes: FULL + 3 });
      const packets = pushAll(framer, [encoded.subarray(0, at), encoded.subarray(at)]);
      expect(packets.map((packet) => packet.sequenceId), `split at ${at}`).toEqual([7, 0]);
      expect(packets[0]?.payload.equals(payload), `split at ${at}`).toBe(true);
      expect(packets[0]?.bytes.equals(encoded.subarray(0, FULL + 3 + 8)), `split at ${at}`).toBe(true);
      expect(packets[1]?.payload.toString()).toBe("next");
      expect(framer.buffered).toBe(0);
    }
  });

  it("keeps an incomplete packet buffered and reports its size", () => {
    const framer = createMysqlFramer({ maxMessageBytes: MAX });
    const packet = physical(0, mysql.encodeComQuery("select 1"));
    expect(framer.push(packet.subarray(0, 2))).toEqual([]);
    expect(framer.buffered).toBe(2);
    expect(framer.push(packet.subarray(2, 7))).toEqual([]);
    expect(framer.buffered).toBe(7);
    expect(framer.push(packet.subarray(7))).toHaveLength(1);
    expect(framer.buffered).toBe(0);
  });

  it("does not pin or depend on the caller's chunk for the buffered tail", () => {
    const framer = createMysqlFramer({ maxMessageBytes: MAX });
    const packet = physical(3, mysql.encodeComQuery("select 1"));
    const chunk = Buffer.concat([packet, packet.subarray(0, 6)]);
    framer.push(chunk);
    chunk.fill(0);
    const rest = Buffer.from(packet.subarray(6));
    expect(plain(framer.push(rest))).toEqual(plain([{ sequenceId: 3, payload: packet.subarray(4), bytes: packet }]));
  });

  describe("properties", () => {
    const packet = fc.record({
      sequenceId: fc.integer({ min: 0, max: 255 }),
      payload: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
    });

    it("decode(encode(x)) = x for arbitrary sequence ids and payloads", () => {
      fc.assert(
        fc.property(fc.array(packet, { maxLength: 12 }), (packets) => {
          const framer = createMysqlFramer({ maxMessageBytes: MAX });
          const framed = framer.push(Buffer.concat(packets.map((p) => mysql.encodePacket(p.sequenceId, p.payload))));
          expect(framed.map((p) => ({ sequenceId: p.sequenceId, payload: Buffer.from(p.payload) }))).toEqual(packets);
          for (const p of framed) expect(mysql.nextSequenceId(p)).toBe((p.sequenceId + 1) & 0xff);
          expect(framer.buffered).toBe(0);
        }),
      );
    });

    it("any split of the concatenation yields the same packets", () => {
      fc.assert(
        fc.property(fc.array(packet, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), (packets, cuts) => {
          const encoded = packets.map((p) => mysql.encodePacket(p.sequenceId, p.payload));
          const all = Buffer.concat(encoded);
          const points = [...new Set(cuts.map((at) => at % (all.length + 1)))].sort((a, b) => a - b);
          const framer = createMysqlFramer({ maxMessageBytes: MAX });
          expect(plain(pushAll(framer, cut(all, points)))).toEqual(plain(packets.map((p, i) => ({ ...p, bytes: encoded[i] ?? Buffer.alloc(0) }))));
          expect(framer.buffered).toBe(0);
        }),
      );
    });
  });

  describe("16 MB continuation packets", () => {
    it("round-trips a 20 MiB payload, whole and in 64 KiB chunks", () => {
      const payload = Buffer.alloc(20 * 1024 * 1024);
      for (let i = 0; i < payload.length; i += 4096) payload.writeUInt32LE(i, i);
      const encoded = mysql.encodePacket(3, payload);
      // 0xffffff bytes, then the rest: two physical packets with sequence ids 3 and 4.
      expect(encoded.length).toBe(payload.length + 8);
      expect(encoded.readUIntLE(0, 3)).toBe(FULL);
      expect(encoded[3]).toBe(3);
      expect(encoded.readUIntLE(4 + FULL, 3)).toBe(payload.length - FULL);
      expect(encoded[4 + FULL + 3]).toBe(4);

      const whole = createMysqlFramer({ maxMessageBytes: 32 * 1024 * 1024 }).push(encoded);
      expect(whole).toHaveLength(1);
      expect(whole[0]?.sequenceId).toBe(3);
      expect(whole[0]?.payload.equals(payload)).toBe(true);
      expect(whole[0]?.bytes.equals(encoded)).toBe(true);
      // The bytes stay a view of the contiguous input; the payload has to be joined.
      expect(whole[0]?.bytes.buffer).toBe(encoded.buffer);
      if (whole[0] !== undefined) expect(mysql.nextSequenceId(whole[0])).toBe(5);

      const framer = createMysqlFramer({ maxMessageBytes: 32 * 1024 * 1024 });
      const chunks: Buffer[] = [];
      for (let at = 0; at < encoded.length; at += 65536) chunks.push(encoded.subarray(at, at + 65536));
      const packets = pushAll(framer, chunks);
      expect(packets).toHaveLength(1);
      expect(packets[0]?.payload.equals(payload)).toBe(true);
      expect(packets[0]?.bytes.equals(encoded)).toBe(true);
      expect(framer.buffered).toBe(0);
    });

    it("ends an exact multiple of 0xffffff with an empty packet", () => {
      for (const multiple of [1, 2]) {
        const payload = Buffer.alloc(FULL * multiple, multiple);
        const encoded = mysql.encodePacket(254, payload);
        expect(encoded.length).toBe(payload.length + 4 * (multiple + 1));
        const tail = encoded.subarray(encoded.length - 4);
        expect(tail.readUIntLE(0, 3)).toBe(0);
        expect(tail[3]).toBe((254 + multiple) & 0xff);
        const packets = createMysqlFramer({ maxMessageBytes: FULL * 2 }).push(Buffer.concat([encoded, physical(0, Buffer.from([1]))]));
        expect(packets).toHaveLength(2);
        expect(packets[0]?.sequenceId).toBe(254);
        expect(packets[0]?.payload.equals(payload)).toBe(true);
        expect(packets[0]?.bytes.equals(encoded)).toBe(true);
        if (packets[0] !== undefined) expect(mysql.nextSequenceId(packets[0])).toBe((254 + multiple + 1) & 0xff);
      }
    });

    it("encodes an empty payload as one empty packet", () => {
      expect(mysql.encodePacket(9, Buffer.alloc(0)).toString("hex")).toBe("00000009");
    });

    it("refuses a sequence id outside 0..255", () => {
      expect(() => mysql.encodePacket(256, Buffer.alloc(1))).toThrow(TypeError);
      expect(() => mysql.encodePacket(-1, Buffer.alloc(1))).toThrow(TypeError);
    });

    it("refuses a continuation packet out of sequence", () => {
      const first = physical(0, Buffer.alloc(FULL));
      const framer = createMysqlFramer({ maxMessageBytes: 2 * FULL });
      expect(framer.push(first)).toEqual([]);
      expect(thrown(() => framer.push(physical(2, Buffer.from("x")))).code).toBe("malformed_message");
    });
  });

  describe("limits", () => {
    it("refuses a length above maxMessageBytes from the 4-byte header, before the payload arrives", () => {
      const framer = createMysqlFramer({ maxMessageBytes: 1024 });
      const header = Buffer.from([0, 0, 0, 0]);
      header.writeUIntLE(1025, 0, 3);
      expect(thrown(() => framer.push(header)).code).toBe("message_too_large");
      // A 16 MB announcement is refused as soon as its header is in, whatever the max.
      expect(thrown(() => createMysqlFramer({ maxMessageBytes: MAX }).push(Buffer.from([0xff, 0xff, 0xff, 0]))).code).toBe("message_too_large");
    });

    it("accepts a payload of exactly maxMessageBytes", () => {
      expect(createMysqlFramer({ maxMessageBytes: 64 }).push(physical(0, Buffer.alloc(64)))).toHaveLength(1);
      expect(thrown(() => createMysqlFramer({ maxMessageBytes: 64 }).push(physical(0, Buffer.alloc(65)))).code).toBe("message_too_large");
    });

    it("checks the running total of continuation packets from each header", () => {
      // The first physical packet fits; the second's header takes the total over the max.
      const framer = createMysqlFramer({ maxMessageBytes: FULL + 10 });
      expect(framer.push(physical(0, Buffer.alloc(FULL)))).toEqual([]);
      expect(framer.buffered).toBe(FULL + 4);
      const header = Buffer.from([11, 0, 0, 1]);
      expect(thrown(() => framer.push(header)).code).toBe("message_too_large");
    });
  });
});
