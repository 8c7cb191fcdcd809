import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { WireError, backend, createPgFramer, frontend, pg, type PgFramer, type PgMessage } from "../src/index.js";

const MAX = 1 << 16;

/** A typed message built by hand: code byte, int32 length (counting itself), body. */
function typed(code: number, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header[0] = code;
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/** The messages as plain values, so toEqual compares bytes and not views. */
function plain(messages: readonly PgMessage[]): { code: number; hex: string }[] {
  return messages.map((message) => ({ code: message.code, hex: message.bytes.toString("hex") }));
}

/** Pushes `chunks` one after the other and collects every message. */
function pushAll(framer: PgFramer, chunks: readonly Buffer[]): PgMessage[] {
  const out: PgMessage[] = [];
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

const stream = [
  pg.encodeQuery("select 1"),
  typed(frontend.Parse, Buffer.from("s1\0select $1\0\0\0", "latin1")),
  pg.encodeMessage(frontend.Sync),
  pg.encodeErrorResponse("42501", "permission denied", { detail: "by policy" }),
  pg.encodeReadyForQuery("I"),
  pg.encodeTerminate(),
];
const whole = Buffer.concat(stream);
const expected = stream.map((bytes) => ({ code: bytes[0] ?? -1, hex: bytes.toString("hex") }));

describe("createPgFramer", () => {
  it("refuses a maximum below 16 or not an integer", () => {
    expect(() => createPgFramer({ maxMessageBytes: 15 })).toThrow(TypeError);
    expect(() => createPgFramer({ maxMessageBytes: 1024.5 })).toThrow(TypeError);
  });

  it("frames typed messages with their code and whole bytes", () => {
    const framer = createPgFramer({ maxMessageBytes: MAX });
    const query = pg.encodeQuery("select now()");
    const messages = framer.push(query);
    expect(messages).toHaveLength(1);
    expect(messages[0]?.code).toBe(frontend.Query);
    expect(messages[0]?.bytes.equals(query)).toBe(true);
    expect(framer.buffered).toBe(0);
  });

  it("frames a message with an empty body (length 4)", () => {
    const framer = createPgFramer({ maxMessageBytes: MAX });
    expect(plain(framer.push(pg.encodeMessage(frontend.Sync)))).toEqual([{ code: frontend.Sync, hex: "5300000004" }]);
  });

  it("returns views into a contiguous chunk, without copying", () => {
    const framer = createPgFramer({ maxMessageBytes: MAX });
    const messages = framer.push(whole);
    expect(messages).toHaveLength(stream.length);
    for (const message of messages) expect(message.bytes.buffer).toBe(whole.buffer);
  });

  it("frames the untyped startup message, then typed messages", () => {
    const framer = createPgFramer({ maxMessageBytes: MAX, startup: true });
    const startup = pg.encodeStartupMessage([
      ["user", "ci"],
      ["database", "orders"],
    ]);
    const messages = framer.push(startup);
    expect(plain(messages)).toEqual([{ code: 0, hex: startup.toString("hex") }]);
    expect(plain(framer.push(pg.encodeQuery("select 1")))).toEqual([{ code: frontend.Query, hex: pg.encodeQuery("select 1").toString("hex") }]);
  });

  it("gives the same messages whatever byte offset the stream is split at", () => {
    for (let at = 0; at <= whole.length; at++) {
      const framer = createPgFramer({ maxMessageBytes: MAX });
      const messages = pushAll(framer, [whole.subarray(0, at), whole.subarray(at)]);
      expect(plain(messages), `split at ${at}`).toEqual(expected);
      expect(framer.buffered).toBe(0);
    }
  });

  it("gives the same messages when every message is split at every offset, and byte by byte", () => {
    for (const [index, bytes] of stream.entries()) {
      for (let at = 0; at <= bytes.length; at++) {
        const framer = createPgFramer({ maxMessageBytes: MAX });
        const before = Buffer.concat(stream.slice(0, index));
        const after = Buffer.concat(stream.slice(index + 1));
        const messages = pushAll(framer, [Buffer.concat([before, bytes.subarray(0, at)]), Buffer.concat([bytes.subarray(at), after])]);
        expect(plain(messages), `message ${index} split at ${at}`).toEqual(expected);
      }
    }
    const framer = createPgFramer({ maxMessageBytes: MAX });
    const bytewise = pushAll(
      framer,
      [...whole].map((byte) => Buffer.from([byte])),
    );
    expect(plain(bytewise)).toEqual(expected);
  });

  it("splits a startup message at every offset, followed by typed messages", () => {
    const startup = pg.encodeStartupMessage([["user", "ci"]]);
    const query = pg.encodeQuery("select 1");
    const all = Buffer.concat([startup, query]);
    for (let at = 0; at <= all.length; at++) {
      const framer = createPgFramer({ maxMessageBytes: MAX, startup: true });
      const messages = framer.push(all.subarray(0, at));
      messages.push(...framer.push(all.subarray(at)));
      // The framer stops after the untyped message; an empty push goes on.
      messages.push(...framer.push(Buffer.alloc(0)));
      expect(plain(messages), `split at ${at}`).toEqual([
        { code: 0, hex: startup.toString("hex") },
        { code: frontend.Query, hex: query.toString("hex") },
      ]);
      expect(framer.buffered).toBe(0);
    }
  });

  it("keeps an incomplete message buffered and reports its size", () => {
    const framer = createPgFramer({ maxMessageBytes: MAX });
    const query = pg.encodeQuery("select 1");
    expect(framer.push(query.subarray(0, 3))).toEqual([]);
    expect(framer.buffered).toBe(3);
    expect(framer.push(query.subarray(3, 7))).toEqual([]);
    expect(framer.buffered).toBe(7);
    expect(framer.push(query.subarray(7))).toHaveLength(1);
    expect(framer.buffered).toBe(0);
  });

  it("does not pin the caller's chunk with the buffered tail", () => {
    const framer = createPgFramer({ maxMessageBytes: MAX });
    const query = pg.encodeQuery("select 1");
    const chunk = Buffer.concat([query, query.subarray(0, 4)]);
    framer.push(chunk);
    chunk.fill(0);
    expect(plain(framer.push(query.subarray(4)))).toEqual([{ code: frontend.Query, hex: query.toString("hex") }]);
  });

  describe("properties", () => {
    const message = fc.record({
      code: fc.integer({ min: 1, max: 255 }),
      body: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
    });

    it("decode(encode(x)) = x for arbitrary codes and bodies", () => {
      fc.assert(
        fc.property(fc.array(message, { maxLength: 12 }), (messages) => {
          const framer = createPgFramer({ maxMessageBytes: MAX });
          const framed = framer.push(Buffer.concat(messages.map((m) => pg.encodeMessage(m.code, m.body))));
          expect(framed.map((m) => ({ code: m.code, body: Buffer.from(m.bytes.subarray(5)) }))).toEqual(messages);
          for (const m of framed) expect(m.bytes.readInt32BE(1)).toBe(m.bytes.length - 1);
          expect(framer.buffered).toBe(0);
        }),
      );
    });

    it("any split of the concatenation yields the same frames", () => {
      fc.assert(
        fc.property(
          fc.array(message, { minLength: 1, maxLength: 8 }),
          fc.array(fc.nat(), { maxLength: 10 }),
          (messages, cuts) => {
            const encoded = messages.map((m) => pg.encodeMessage(m.code, m.body));
            const all = Buffer.concat(encoded);
            const points = [...new Set(cuts.map((cut) => cut % (all.length + 1)))].sort((a, b) => a - b);
            const chunks: Buffer[] = [];
            let from = 0;
            for (const point of points) {
              chunks.push(all.subarray(from, point));
              from = point;
            }
            chunks.push(all.subarray(from));
            const framer = createPgFramer({ maxMessageBytes: MAX });
            expect(plain(pushAll(framer, chunks))).toEqual(encoded.map((bytes) => ({ code: bytes[0] ?? -1, hex: bytes.toString("hex") })));
            expect(framer.buffered).toBe(0);
          },
        ),
      );
    });
  });

  describe("limits", () => {
    it("refuses a length above maxMessageBytes from the 5-byte header, before the body arrives", () => {
      const framer = createPgFramer({ maxMessageBytes: 1024 });
      const header = Buffer.from([backend.DataRow, 0, 0, 0, 0]);
      header.writeInt32BE(1024, 1); // 1024 + code byte = 1025 bytes on the wire
      expect(thrown(() => framer.push(header)).code).toBe("message_too_large");
    });

    it("accepts a message of exactly maxMessageBytes", () => {
      const framer = createPgFramer({ maxMessageBytes: 64 });
      const bytes = pg.encodeMessage(backend.DataRow, Buffer.alloc(64 - 5, 7));
      expect(bytes.length).toBe(64);
      expect(framer.push(bytes)).toHaveLength(1);
      expect(thrown(() => createPgFramer({ maxMessageBytes: 64 }).push(pg.encodeMessage(backend.DataRow, Buffer.alloc(60)))).code).toBe(
        "message_too_large",
      );
    });

    it("refuses a huge or negative length", () => {
      const huge = Buffer.from([backend.DataRow, 0x7f, 0xff, 0xff, 0xff]);
      expect(thrown(() => createPgFramer({ maxMessageBytes: MAX }).push(huge)).code).toBe("message_too_large");
      const negative = Buffer.from([backend.DataRow, 0xff, 0xff, 0xff, 0xff]);
      expect(thrown(() => createPgFramer({ maxMessageBytes: MAX }).push(negative)).code).toBe("malformed_message");
    });

    it("refuses a typed length below 4 as malformed", () => {
      for (const length of [0, 1, 2, 3]) {
        const framer = createPgFramer({ maxMessageBytes: MAX });
        expect(thrown(() => framer.push(Buffer.from([frontend.Query, 0, 0, 0, length]))).code).toBe("malformed_message");
      }
    });

    it("refuses a startup length below 8 as malformed and above the maximum as too large", () => {
      for (const length of [0, 4, 7]) {
        const framer = createPgFramer({ maxMessageBytes: MAX, startup: true });
        expect(thrown(() => framer.push(Buffer.from([0, 0, 0, length]))).code).toBe("malformed_message");
      }
      const framer = createPgFramer({ maxMessageBytes: 1024, startup: true });
      const header = Buffer.alloc(4);
      header.writeInt32BE(1025);
      expect(thrown(() => framer.push(header)).code).toBe("message_too_large");
    });
  });

  describe("the startup phase", () => {
    it("stops after an untyped message; buffered reports the rest; an empty push goes on", () => {
      const framer = createPgFramer({ maxMessageBytes: MAX, startup: true });
      const ssl = pg.encodeSSLRequest();
      const query = pg.encodeQuery("select 1");
      const messages = framer.push(Buffer.concat([ssl, query]));
      expect(plain(messages)).toEqual([{ code: 0, hex: ssl.toString("hex") }]);
      expect(framer.buffered).toBe(query.length);
      expect(plain(framer.push(Buffer.alloc(0)))).toEqual([{ code: frontend.Query, hex: query.toString("hex") }]);
      expect(framer.buffered).toBe(0);
    });

    it("reads an untyped message again after expectStartup", () => {
      const framer = createPgFramer({ maxMessageBytes: MAX, startup: true });
      expect(plain(framer.push(pg.encodeSSLRequest()))).toEqual([{ code: 0, hex: pg.encodeSSLRequest().toString("hex") }]);
      framer.expectStartup();
      const startup = pg.encodeStartupMessage([["user", "ci"]]);
      // Were it read as typed, the first byte (0) would be the code and the length would be garbage.
      expect(plain(framer.push(startup))).toEqual([{ code: 0, hex: startup.toString("hex") }]);
      const query = pg.encodeQuery("select 1");
      expect(plain(framer.push(query))).toEqual([{ code: frontend.Query, hex: query.toString("hex") }]);
    });

    it("waits for the 4-byte length of an untyped message", () => {
      const framer = createPgFramer({ maxMessageBytes: MAX, startup: true });
      const cancel = pg.encodeCancelRequest(42, Buffer.from([1, 2, 3, 4]));
      expect(framer.push(cancel.subarray(0, 3))).toEqual([]);
      expect(framer.buffered).toBe(3);
      expect(plain(framer.push(cancel.subarray(3)))).toEqual([{ code: 0, hex: cancel.toString("hex") }]);
    });
  });
});
