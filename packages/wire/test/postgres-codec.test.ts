import { describe, expect, it } from "vitest";
import { WireError, backend, frontend, pg, startupCodes } from "../src/index.js";

function int16(value: number): Buffer {
  const out = Buffer.alloc(2);
  out.writeInt16BE(value);
  return out;
}

function int32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeInt32BE(value);
  return out;
}

function cstring(value: string): Buffer {
  return Buffer.from(`${value}\0`, "utf8");
}

/** An untyped message: int32 length (counting itself), then the body. */
function untyped(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([int32(body.length + 4), body]);
}

function wireError(run: () => unknown): WireError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(WireError);
    return error as WireError;
  }
  throw new Error("expected a WireError, nothing was thrown");
}

describe("decodeStartup", () => {
  it("decodes a StartupMessage with its parameters", () => {
    const bytes = pg.encodeStartupMessage([
      ["user", "ci"],
      ["database", "orders"],
      ["application_name", "psql ünïcode"],
    ]);
    const request = pg.decodeStartup(bytes);
    expect(request.kind).toBe("startup");
    if (request.kind !== "startup") return;
    expect(request.version).toBe(startupCodes.ProtocolVersion3);
    expect([...request.parameters]).toEqual([
      ["user", "ci"],
      ["database", "orders"],
      ["application_name", "psql ünïcode"],
    ]);
  });

  it("decodes a StartupMessage without parameters", () => {
    const request = pg.decodeStartup(pg.encodeStartupMessage([]));
    expect(request).toEqual({ kind: "startup", version: startupCodes.ProtocolVersion3, parameters: new Map() });
  });

  it("accepts protocol 3.2", () => {
    const request = pg.decodeStartup(untyped(int32((3 << 16) | 2), cstring("user"), cstring("ci"), Buffer.from([0])));
    expect(request).toEqual({ kind: "startup", version: (3 << 16) | 2, parameters: new Map([["user", "ci"]]) });
  });

  it("decodes SSLRequest and GSSENCRequest", () => {
    expect(pg.decodeStartup(pg.encodeSSLRequest())).toEqual({ kind: "ssl" });
    expect(pg.decodeStartup(untyped(int32(startupCodes.GSSENCRequest)))).toEqual({ kind: "gssenc" });
  });

  it("refuses an SSLRequest or GSSENCRequest with extra bytes", () => {
    expect(wireError(() => pg.decodeStartup(untyped(int32(startupCodes.SSLRequest), Buffer.from([0])))).code).toBe("malformed_message");
    expect(wireError(() => pg.decodeStartup(untyped(int32(startupCodes.GSSENCRequest), int32(0)))).code).toBe("malformed_message");
  });

  it("decodes a CancelRequest, with a 4-byte and a longer (protocol 3.2) secret key", () => {
    const key = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
    const bytes = pg.encodeCancelRequest(4242, key);
    expect(bytes.length).toBe(16);
    const request = pg.decodeStartup(bytes);
    expect(request).toEqual({ kind: "cancel", processId: 4242, secretKey: key });
    // The secret key is a copy, not a view into the message.
    bytes.fill(0, 12);
    expect(request).toEqual({ kind: "cancel", processId: 4242, secretKey: key });

    const long = Buffer.alloc(32, 9);
    expect(pg.decodeStartup(pg.encodeCancelRequest(7, long))).toEqual({ kind: "cancel", processId: 7, secretKey: long });
  });

  it("refuses a CancelRequest with no secret key or one above 256 bytes", () => {
    expect(wireError(() => pg.decodeStartup(pg.encodeCancelRequest(1, Buffer.alloc(0)))).code).toBe("malformed_message");
    expect(wireError(() => pg.decodeStartup(pg.encodeCancelRequest(1, Buffer.alloc(257)))).code).toBe("malformed_message");
    expect(pg.decodeStartup(pg.encodeCancelRequest(1, Buffer.alloc(256))).kind).toBe("cancel");
  });

  it("refuses protocol versions other than 3", () => {
    for (const version of [2 << 16, 4 << 16, (1234 << 16) | 5677, 0]) {
      const error = wireError(() => pg.decodeStartup(untyped(int32(version), Buffer.from([0]))));
      expect(error.code).toBe("unsupported_protocol");
      expect(error.message).toContain(`${version >> 16}.${version & 0xffff}`);
    }
  });

  it("refuses a StartupMessage whose parameter list is not terminated", () => {
    const error = wireError(() => pg.decodeStartup(untyped(int32(startupCodes.ProtocolVersion3), Buffer.from("user\0ci", "latin1"))));
    expect(error.code).toBe("malformed_message");
  });
});

describe("decodeErrorFields", () => {
  it("decodes every field of an ErrorResponse", () => {
    const fields = { S: "ERROR", V: "ERROR", C: "23505", M: "duplicate key", D: "Key (id)=(1) exists.", H: "hint", P: "12", s: "public", t: "orders", n: "orders_pkey" };
    expect(pg.decodeErrorFields(pg.encodeErrorFields(backend.ErrorResponse, fields))).toEqual(fields);
    expect(pg.decodeErrorFields(pg.encodeErrorFields(backend.NoticeResponse, { S: "NOTICE", M: "héllo" }))).toEqual({ S: "NOTICE", M: "héllo" });
  });

  it("decodes a response with only a message", () => {
    expect(pg.decodeErrorFields(pg.encodeErrorFields(backend.ErrorResponse, { M: "oops" }))).toEqual({ M: "oops" });
  });

  it("decodes a response with no fields at all", () => {
    const empty = pg.encodeErrorFields(backend.ErrorResponse, {});
    expect(empty.toString("hex")).toBe("450000000500");
    expect(pg.decodeErrorFields(empty)).toEqual({});
    // Not even the terminator.
    expect(pg.decodeErrorFields(pg.encodeMessage(backend.ErrorResponse))).toEqual({});
  });

  it("keeps what was read from a truncated field list, without throwing", () => {
    const truncated = pg.encodeMessage(backend.ErrorResponse, Buffer.from("SERROR\0C42501\0Mpermission den", "utf8"));
    expect(pg.decodeErrorFields(truncated)).toEqual({ S: "ERROR", C: "42501" });
    const typeOnly = pg.encodeMessage(backend.ErrorResponse, Buffer.from("SERROR\0M", "utf8"));
    expect(pg.decodeErrorFields(typeOnly)).toEqual({ S: "ERROR" });
  });
});

describe("encodeErrorResponse", () => {
  it("round-trips severity, SQLSTATE, message, detail and hint", () => {
    const bytes = pg.encodeErrorResponse("42501", "permission denied: `orders`", { severity: "FATAL", detail: "by policy", hint: "ask a reviewer" });
    expect(bytes[0]).toBe(backend.ErrorResponse);
    expect(bytes.readInt32BE(1)).toBe(bytes.length - 1);
    expect(pg.decodeErrorFields(bytes)).toEqual({
      S: "FATAL",
      V: "FATAL",
      C: "42501",
      M: "permission denied: `orders`",
      D: "by policy",
      H: "ask a reviewer",
    });
  });

  it("defaults to ERROR and leaves out absent detail and hint", () => {
    expect(pg.decodeErrorFields(pg.encodeErrorResponse("28000", "no"))).toEqual({ S: "ERROR", V: "ERROR", C: "28000", M: "no" });
  });

  it("encodes a NoticeResponse", () => {
    const bytes = pg.encodeNotice("held for review", "id 7");
    expect(bytes[0]).toBe(backend.NoticeResponse);
    expect(pg.decodeErrorFields(bytes)).toEqual({ S: "NOTICE", V: "NOTICE", C: "00000", M: "held for review", D: "id 7" });
  });
});

describe("extended-protocol decoders", () => {
  it("decodes a Parse with parameter types", () => {
    const bytes = pg.encodeMessage(frontend.Parse, cstring("s1"), cstring("select $1::int, $2"), int16(2), int32(23), int32(0));
    expect(pg.decodeParse(bytes)).toEqual({ name: "s1", query: "select $1::int, $2", parameterTypes: [23, 0] });
  });

  it("decodes an unnamed Parse without parameter types", () => {
    const bytes = pg.encodeMessage(frontend.Parse, cstring(""), cstring("select 1"), int16(0));
    expect(pg.decodeParse(bytes)).toEqual({ name: "", query: "select 1", parameterTypes: [] });
  });

  it("decodes the names of a Bind", () => {
    const bytes = pg.encodeMessage(frontend.Bind, cstring("p1"), cstring("s1"), int16(0), int16(1), int32(1), Buffer.from("7"), int16(0));
    expect(pg.decodeBindNames(bytes)).toEqual({ portal: "p1", statement: "s1" });
    expect(pg.decodeBindNames(pg.encodeMessage(frontend.Bind, cstring(""), cstring(""), int16(0), int16(0), int16(0)))).toEqual({
      portal: "",
      statement: "",
    });
  });

  it("decodes an Execute", () => {
    expect(pg.decodeExecute(pg.encodeMessage(frontend.Execute, cstring("p1"), int32(100)))).toEqual({ portal: "p1", maxRows: 100 });
    expect(pg.decodeExecute(pg.encodeMessage(frontend.Execute, cstring(""), int32(0)))).toEqual({ portal: "", maxRows: 0 });
  });

  it("decodes the target of a Describe or Close", () => {
    expect(pg.decodeTarget(pg.encodeMessage(frontend.Describe, Buffer.from("S"), cstring("s1")))).toEqual({ target: "S", name: "s1" });
    expect(pg.decodeTarget(pg.encodeMessage(frontend.Close, Buffer.from("P"), cstring("")))).toEqual({ target: "P", name: "" });
    expect(wireError(() => pg.decodeTarget(pg.encodeMessage(frontend.Describe, Buffer.from("X"), cstring("s1")))).code).toBe("malformed_message");
  });

  it("decodes a Query", () => {
    expect(pg.decodeQuery(pg.encodeQuery("select 'ü'"))).toBe("select 'ü'");
  });
});

describe("Reader bounds", () => {
  it("refuses a Parse that ends inside its parameter types", () => {
    const bytes = pg.encodeMessage(frontend.Parse, cstring("s1"), cstring("select $1, $2"), int16(2), int32(23));
    const error = wireError(() => pg.decodeParse(bytes));
    expect(error.code).toBe("malformed_message");
  });

  it("refuses a Parse without its parameter count", () => {
    expect(wireError(() => pg.decodeParse(pg.encodeMessage(frontend.Parse, cstring("s1"), cstring("select 1")))).code).toBe("malformed_message");
    expect(wireError(() => pg.decodeParse(pg.encodeMessage(frontend.Parse, cstring("s1"), cstring("select 1"), Buffer.from([0])))).code).toBe(
      "malformed_message",
    );
  });

  it("refuses a string that is not terminated", () => {
    expect(wireError(() => pg.decodeParse(pg.encodeMessage(frontend.Parse, cstring("s1"), Buffer.from("select 1")))).code).toBe("malformed_message");
    expect(wireError(() => pg.decodeQuery(pg.encodeMessage(frontend.Query, Buffer.from("select 1")))).code).toBe("malformed_message");
    expect(wireError(() => pg.decodeBindNames(pg.encodeMessage(frontend.Bind, cstring("p1")))).code).toBe("malformed_message");
  });

  it("refuses an Execute without its row limit and a Describe without its target", () => {
    expect(wireError(() => pg.decodeExecute(pg.encodeMessage(frontend.Execute, cstring("p1"), int16(0)))).code).toBe("malformed_message");
    expect(wireError(() => pg.decodeTarget(pg.encodeMessage(frontend.Describe))).code).toBe("malformed_message");
  });
});
