import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { WireError, mysql, mysqlAuth, mysqlCapabilities as C, mysqlColumnTypes as T, mysqlCommands, mysqlServerStatus } from "../../src/index.js";

// mysql2's own packet classes, to check our bytes against another implementation. Its package
// exports hide lib/, so they are required by path.
const require = createRequire(import.meta.url);
const mysql2Lib = join(dirname(require.resolve("mysql2/package.json")), "lib");
interface Mysql2Packet {
  buffer: Buffer;
  offset: number;
}
type PacketConstructor = new (id: number, buffer: Buffer, start: number, end: number) => Mysql2Packet;
const Packet = require(join(mysql2Lib, "packets/packet.js")) as PacketConstructor;
const Handshake = require(join(mysql2Lib, "packets/handshake.js")) as {
  new (args: Record<string, unknown>): { toPacket(sequenceId: number): Mysql2Packet };
  fromPacket(packet: Mysql2Packet): Record<string, unknown>;
};
const HandshakeResponse = require(join(mysql2Lib, "packets/handshake_response.js")) as {
  new (args: Record<string, unknown>): { toPacket(): Mysql2Packet };
  fromPacket(packet: Mysql2Packet): Record<string, unknown>;
};
const ColumnDefinition = require(join(mysql2Lib, "packets/column_definition.js")) as { toPacket(column: Record<string, unknown>, sequenceId: number): Mysql2Packet };
const TextRow = require(join(mysql2Lib, "packets/text_row.js")) as { toPacket(columns: unknown[], encoding: string): Mysql2Packet };

/** The payload of a packet mysql2 built (its buffer starts with a 4-byte header). */
function payloadOf(packet: Mysql2Packet): Buffer {
  return Buffer.from(packet.buffer.subarray(4));
}

/** A mysql2 packet around a payload, for its fromPacket readers. */
function mysql2Packet(payload: Buffer): Mysql2Packet {
  const buffer = Buffer.concat([Buffer.alloc(4), payload]);
  return new Packet(0, buffer, 0, buffer.length);
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

const caps41 = (C.CLIENT_PROTOCOL_41 | C.CLIENT_TRANSACTIONS | C.CLIENT_SECURE_CONNECTION | C.CLIENT_PLUGIN_AUTH) >>> 0;
const scramble = Buffer.from("0123456789abcdefghij");
const bytes = fc.uint8Array({ maxLength: 80 }).map((array) => Buffer.from(array));
const text = fc.string({ unit: "grapheme", maxLength: 40 });
const nulFree = text.filter((value) => !value.includes("\0"));
const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });

describe("length-encoded integers", () => {
  const cases: [number | bigint, string][] = [
    [0, "00"],
    [250, "fa"],
    [251, "fcfb00"],
    [0xffff, "fcffff"],
    [0x10000, "fd000001"],
    [0xffffff, "fdffffff"],
    [0x1000000, "fe0000000100000000"],
    [Number.MAX_SAFE_INTEGER, "feffffffffffff1f00"],
    [2n ** 53n, "fe0000000000002000"],
    [2n ** 64n - 1n, "feffffffffffffffff"],
  ];

  it("encodes each width at its boundaries and reads it back", () => {
    for (const [value, hex] of cases) {
      expect(mysql.encodeLenencInt(value).toString("hex"), String(value)).toBe(hex);
      const reader = new mysql.Reader(Buffer.from(hex, "hex"));
      expect(reader.lenencInt()).toBe(value);
      expect(reader.remaining).toBe(0);
    }
  });

  it("gives a number up to MAX_SAFE_INTEGER and a bigint above, whatever the width on the wire", () => {
    expect(new mysql.Reader(Buffer.from("fe0500000000000000", "hex")).lenencInt()).toBe(5);
    expect(new mysql.Reader(Buffer.from("fe0000000000002000", "hex")).lenencInt()).toBe(2n ** 53n);
    expect(mysql.encodeLenencInt(5n).toString("hex")).toBe("05");
  });

  it("round-trips any unsigned 64-bit value", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (value) => {
        const decoded = new mysql.Reader(mysql.encodeLenencInt(value)).lenencInt();
        expect(BigInt(decoded)).toBe(value);
        expect(typeof decoded).toBe(value <= BigInt(Number.MAX_SAFE_INTEGER) ? "number" : "bigint");
      }),
    );
    fc.assert(
      fc.property(fc.nat(), (value) => {
        expect(new mysql.Reader(mysql.encodeLenencInt(value)).lenencInt()).toBe(value);
      }),
    );
  });

  it("refuses NULL (0xfb) and 0xff as integers, and reads NULL as a null string", () => {
    expect(wireError(() => new mysql.Reader(Buffer.from([0xfb])).lenencInt()).code).toBe("malformed_message");
    expect(wireError(() => new mysql.Reader(Buffer.from([0xff])).lenencInt()).code).toBe("malformed_message");
    expect(new mysql.Reader(Buffer.from([0xfb])).lenencBytesOrNull()).toBeNull();
  });

  it("refuses a truncated integer or string", () => {
    for (const hex of ["fc00", "fd0000", "fe00000000000000", "05616263"]) {
      expect(wireError(() => new mysql.Reader(Buffer.from(hex, "hex")).lenencBytes()).code, hex).toBe("malformed_message");
    }
    expect(wireError(() => new mysql.Reader(Buffer.from("fe0000000000000001", "hex")).lenencLength()).code).toBe("malformed_message");
  });

  it("refuses negative, fractional and oversized values with a TypeError", () => {
    expect(() => mysql.encodeLenencInt(-1)).toThrow(TypeError);
    expect(() => mysql.encodeLenencInt(1.5)).toThrow(TypeError);
    expect(() => mysql.encodeLenencInt(2n ** 64n)).toThrow(TypeError);
  });
});

describe("strings", () => {
  it("round-trips length-encoded strings of any bytes, and several in a row", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }).map((array) => Buffer.from(array)), { maxLength: 5 }), (values) => {
        const reader = new mysql.Reader(Buffer.concat(values.map((value) => mysql.encodeLenencString(value))));
        for (const value of values) expect(reader.lenencBytes().equals(value)).toBe(true);
        expect(reader.remaining).toBe(0);
      }),
    );
    fc.assert(
      fc.property(text, (value) => {
        expect(new mysql.Reader(mysql.encodeLenencString(value)).lenencString()).toBe(value);
      }),
    );
  });

  it("writes a 70000-byte string with a 0xfd prefix", () => {
    const encoded = mysql.encodeLenencString(Buffer.alloc(70_000, 1));
    expect(encoded.subarray(0, 4).toString("hex")).toBe("fd701101");
    expect(new mysql.Reader(encoded).lenencBytes().length).toBe(70_000);
  });

  it("reads NUL-terminated strings and refuses an unterminated one", () => {
    const reader = new mysql.Reader(Buffer.from("root\0x"));
    expect(reader.nulString()).toBe("root");
    expect(wireError(() => reader.nulString()).code).toBe("malformed_message");
    expect(() => new mysql.Writer().nulString("a\0b", "username")).toThrow(/username/);
  });
});

describe("HandshakeV10", () => {
  const mariadbLike: mysql.HandshakeV10 = {
    protocolVersion: 10,
    serverVersion: "5.5.5-10.11.19-MariaDB-0+deb12u1",
    connectionId: 0x01020304,
    authPluginData: scramble,
    capabilities: 0xfffff7fe,
    characterSet: 45,
    statusFlags: mysqlServerStatus.SERVER_STATUS_AUTOCOMMIT,
    authPluginName: "mysql_native_password",
    mariadbCapabilities: 0x1d,
  };

  it("encodes the wire layout field by field", () => {
    const payload = mysql.encodeHandshakeV10(mariadbLike);
    const version = Buffer.from(`${mariadbLike.serverVersion}\0`);
    const expected = Buffer.concat([
      Buffer.from([10]),
      version,
      Buffer.from("04030201", "hex"),
      scramble.subarray(0, 8),
      Buffer.from([0]),
      Buffer.from("fef7", "hex"), // lower capabilities
      Buffer.from([45]),
      Buffer.from("0200", "hex"),
      Buffer.from("ffff", "hex"), // upper capabilities
      Buffer.from([21]), // auth_plugin_data_len: 20 and a NUL
      Buffer.alloc(6),
      Buffer.from("1d000000", "hex"),
      scramble.subarray(8),
      Buffer.from([0]),
      Buffer.from("mysql_native_password\0"),
    ]);
    expect(payload.toString("hex")).toBe(expected.toString("hex"));
    expect(mysql.decodeHandshakeV10(payload)).toEqual(mariadbLike);
  });

  it("agrees with mysql2's Handshake in both directions", () => {
    const theirs = new Handshake({
      protocolVersion: 10,
      serverVersion: "8.0.36",
      capabilityFlags: 0xdfffffff,
      connectionId: 77,
      authPluginData1: scramble.subarray(0, 8),
      authPluginData2: scramble.subarray(8),
      characterSet: 255,
      statusFlags: 2,
    }).toPacket(0);
    expect(mysql.decodeHandshakeV10(payloadOf(theirs))).toEqual({
      protocolVersion: 10,
      serverVersion: "8.0.36",
      connectionId: 77,
      authPluginData: scramble,
      capabilities: 0xdfffffff,
      characterSet: 255,
      statusFlags: 2,
      authPluginName: "mysql_native_password",
      mariadbCapabilities: 0,
    });
    const parsed = Handshake.fromPacket(mysql2Packet(mysql.encodeHandshakeV10(mariadbLike)));
    expect(parsed).toMatchObject({
      protocolVersion: 10,
      serverVersion: mariadbLike.serverVersion,
      connectionId: mariadbLike.connectionId,
      capabilityFlags: mariadbLike.capabilities,
      characterSet: 45,
      authPluginName: "mysql_native_password",
      mariadbExtendedCapabilityFlags: 0x1d,
    });
    expect(Buffer.concat([parsed.authPluginData1 as Buffer, (parsed.authPluginData2 as Buffer).subarray(0, 12)]).equals(scramble)).toBe(true);
  });

  it("round-trips arbitrary greetings", () => {
    const greeting = fc.record({
      protocolVersion: fc.constant(10),
      serverVersion: nulFree,
      connectionId: u32,
      authPluginData: fc.uint8Array({ minLength: 8, maxLength: 254 }).map((array) => Buffer.from(array)),
      capabilities: u32.map((value) => (value | C.CLIENT_SECURE_CONNECTION | C.CLIENT_PLUGIN_AUTH) >>> 0),
      characterSet: u8,
      statusFlags: u16,
      authPluginName: nulFree,
      mariadbCapabilities: u32,
    });
    fc.assert(
      fc.property(greeting, (value) => {
        expect(mysql.decodeHandshakeV10(mysql.encodeHandshakeV10(value))).toEqual(value);
      }),
    );
  });

  it("keeps the 20-byte scramble without CLIENT_PLUGIN_AUTH and refuses other protocol versions", () => {
    const old = { ...mariadbLike, capabilities: C.CLIENT_PROTOCOL_41 | C.CLIENT_SECURE_CONNECTION, authPluginName: "" };
    expect(mysql.decodeHandshakeV10(mysql.encodeHandshakeV10(old))).toEqual(old);
    expect(() => mysql.encodeHandshakeV10({ ...old, authPluginData: scramble.subarray(0, 12) })).toThrow(TypeError);
    const v9 = Buffer.from(mysql.encodeHandshakeV10(mariadbLike));
    v9[0] = 9;
    expect(wireError(() => mysql.decodeHandshakeV10(v9)).code).toBe("unsupported_protocol");
    const err = mysql.encodeErr({ code: 1130, message: "Host '10.0.0.1' is not allowed to connect to this MariaDB server" });
    expect(wireError(() => mysql.decodeHandshakeV10(err)).code).toBe("unexpected_message");
    expect(mysql.classifyResponse(err, 0, "auth")).toBe("err");
    expect(mysql.decodeErr(err)).toEqual({ code: 1130, message: "Host '10.0.0.1' is not allowed to connect to this MariaDB server" });
  });

  it("refuses a truncated greeting as malformed", () => {
    const payload = mysql.encodeHandshakeV10(mariadbLike);
    for (const length of [1, 10, 40, 50]) {
      expect(wireError(() => mysql.decodeHandshakeV10(payload.subarray(0, length))).code, `length ${length}`).toBe("malformed_message");
    }
  });
});

describe("SSLRequest", () => {
  it("is the 32-byte head of a response, told apart from a HandshakeResponse41", () => {
    const request = { capabilities: (caps41 | C.CLIENT_SSL) >>> 0, maxPacketSize: 16_777_216, characterSet: 45, mariadbCapabilities: 4 };
    const payload = mysql.encodeSSLRequest(request);
    expect(payload.length).toBe(32);
    expect(mysql.isSSLRequest(payload)).toBe(true);
    expect(mysql.decodeSSLRequest(payload)).toEqual(request);
    const response = mysql.encodeHandshakeResponse41({ ...request, username: "", authResponse: Buffer.alloc(0) });
    expect(mysql.isSSLRequest(response)).toBe(false);
    expect(response.subarray(0, 32).equals(payload)).toBe(true);
    expect(() => mysql.encodeSSLRequest({ ...request, capabilities: caps41 })).toThrow(TypeError);
  });
});

describe("HandshakeResponse41", () => {
  const full: mysql.HandshakeResponse41 = {
    capabilities: (caps41 | C.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | C.CLIENT_CONNECT_WITH_DB | C.CLIENT_CONNECT_ATTRS | C.CLIENT_DEPRECATE_EOF) >>> 0,
    maxPacketSize: 0x1000000,
    characterSet: 255,
    mariadbCapabilities: 0,
    username: "ci_bot",
    authResponse: mysqlAuth.scrambleNativePassword("secret", scramble),
    database: "orders",
    authPluginName: "mysql_native_password",
    connectAttributes: new Map([
      ["_client_name", "airlock"],
      ["program_name", "ünïcode"],
    ]),
  };

  it("round-trips with every optional field", () => {
    expect(mysql.decodeHandshakeResponse41(mysql.encodeHandshakeResponse41(full))).toEqual(full);
  });

  it("writes the auth response with a 1-byte length without CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA, and checks its size", () => {
    const capabilities = caps41;
    const payload = mysql.encodeHandshakeResponse41({ ...full, capabilities });
    const afterUser = 32 + "ci_bot".length + 1;
    expect(payload[afterUser]).toBe(20);
    expect(mysql.decodeHandshakeResponse41(payload)).toEqual({
      capabilities,
      maxPacketSize: 0x1000000,
      characterSet: 255,
      mariadbCapabilities: 0,
      username: "ci_bot",
      authResponse: full.authResponse,
      authPluginName: "mysql_native_password",
    });
    expect(() => mysql.encodeHandshakeResponse41({ ...full, capabilities, authResponse: Buffer.alloc(256) })).toThrow(TypeError);
    const long = Buffer.alloc(300, 7);
    const lenenc = mysql.encodeHandshakeResponse41({ ...full, authResponse: long });
    expect(mysql.decodeHandshakeResponse41(lenenc).authResponse.equals(long)).toBe(true);
  });

  it("accepts a packet that ends before the optional fields its capabilities announce", () => {
    const payload = mysql.encodeHandshakeResponse41({ ...full, capabilities: caps41 | C.CLIENT_CONNECT_WITH_DB });
    const truncated = payload.subarray(0, 32 + 7 + 1 + 20);
    expect(mysql.decodeHandshakeResponse41(truncated)).not.toHaveProperty("database");
  });

  it("refuses a pre-4.1 client", () => {
    const payload = Buffer.from(mysql.encodeHandshakeResponse41(full));
    payload.writeUInt32LE(C.CLIENT_SECURE_CONNECTION, 0);
    expect(wireError(() => mysql.decodeHandshakeResponse41(payload)).code).toBe("unsupported_protocol");
  });

  it("agrees with mysql2's HandshakeResponse in both directions, scramble included", () => {
    const flags = (full.capabilities | C.CLIENT_PLUGIN_AUTH) >>> 0;
    const theirs = new HandshakeResponse({
      user: "ci_bot",
      database: "orders",
      password: "secret",
      authPluginData1: scramble.subarray(0, 8),
      authPluginData2: scramble.subarray(8),
      flags,
      charsetNumber: 45,
      connectAttributes: { _client_name: "mysql2" },
    }).toPacket();
    const decoded = mysql.decodeHandshakeResponse41(payloadOf(theirs));
    expect(decoded).toMatchObject({ capabilities: flags, characterSet: 45, username: "ci_bot", database: "orders", authPluginName: "mysql_native_password" });
    expect(decoded.authResponse.equals(mysqlAuth.scrambleNativePassword("secret", scramble))).toBe(true);
    expect([...(decoded.connectAttributes ?? [])]).toEqual([["_client_name", "mysql2"]]);

    const parsed = HandshakeResponse.fromPacket(mysql2Packet(mysql.encodeHandshakeResponse41(full)));
    expect(parsed).toMatchObject({ clientFlags: full.capabilities, user: "ci_bot", database: "orders", authPluginName: "mysql_native_password" });
    expect((parsed.authToken as Buffer).equals(full.authResponse)).toBe(true);
    expect(parsed.connectAttributes).toEqual({ _client_name: "airlock", program_name: "ünïcode" });
  });

  it("round-trips arbitrary responses", () => {
    const response = fc
      .record({
        capabilities: u32.map((value) => (value | C.CLIENT_PROTOCOL_41) >>> 0),
        maxPacketSize: u32,
        characterSet: u8,
        mariadbCapabilities: u32,
        username: nulFree,
        authResponse: bytes,
        database: nulFree,
        authPluginName: nulFree,
        connectAttributes: fc.uniqueArray(fc.tuple(text, text), { selector: ([key]) => key, maxLength: 4 }).map((pairs) => new Map(pairs)),
        zstdCompressionLevel: u8,
      })
      .map((value) => {
        const caps = value.capabilities;
        // Without a length prefix the auth response is NUL-terminated, so it cannot hold a NUL.
        const authResponse =
          (caps & (C.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | C.CLIENT_SECURE_CONNECTION)) === 0 ? value.authResponse.filter((byte) => byte !== 0) : value.authResponse;
        const out: mysql.HandshakeResponse41 = {
          capabilities: caps,
          maxPacketSize: value.maxPacketSize,
          characterSet: value.characterSet,
          mariadbCapabilities: value.mariadbCapabilities,
          username: value.username,
          authResponse: Buffer.from(authResponse),
          ...((caps & C.CLIENT_CONNECT_WITH_DB) !== 0 ? { database: value.database } : {}),
          ...((caps & C.CLIENT_PLUGIN_AUTH) !== 0 ? { authPluginName: value.authPluginName } : {}),
          ...((caps & C.CLIENT_CONNECT_ATTRS) !== 0 ? { connectAttributes: value.connectAttributes } : {}),
          ...((caps & C.CLIENT_ZSTD_COMPRESSION_ALGORITHM) !== 0 ? { zstdCompressionLevel: value.zstdCompressionLevel } : {}),
        };
        return out;
      });
    fc.assert(
      fc.property(response, (value) => {
        expect(mysql.decodeHandshakeResponse41(mysql.encodeHandshakeResponse41(value))).toEqual(value);
      }),
    );
  });
});

describe("authentication packets", () => {
  it("round-trips AuthSwitchRequest and reads the old lone 0xfe form", () => {
    const request = { pluginName: "mysql_native_password", pluginData: Buffer.concat([scramble, Buffer.from([0])]) };
    const payload = mysql.encodeAuthSwitchRequest(request);
    expect(payload[0]).toBe(0xfe);
    expect(mysql.decodeAuthSwitchRequest(payload)).toEqual(request);
    expect(mysql.classifyResponse(payload, caps41, "auth")).toBe("auth_switch");
    expect(mysql.decodeAuthSwitchRequest(Buffer.from([0xfe]))).toEqual({ pluginName: "mysql_old_password", pluginData: Buffer.alloc(0) });
    expect(wireError(() => mysql.decodeAuthSwitchRequest(Buffer.from([0x01, 0x03]))).code).toBe("unexpected_message");
  });

  it("round-trips AuthMoreData", () => {
    const payload = mysql.encodeAuthMoreData(Buffer.from([3]));
    expect(payload.toString("hex")).toBe("0103");
    expect(mysql.decodeAuthMoreData(payload).toString("hex")).toBe("03");
    expect(mysql.classifyResponse(payload, caps41, "auth")).toBe("auth_more_data");
    expect(mysql.classifyResponse(Buffer.from([2]), caps41, "auth")).toBe("auth_next_factor");
    expect(mysql.classifyResponse(mysql.encodeOk({}, caps41), caps41, "auth")).toBe("ok");
    expect(wireError(() => mysql.classifyResponse(Buffer.from([0x42]), caps41, "auth")).code).toBe("unexpected_message");
  });
});

describe("OK, ERR and EOF", () => {
  const okPacket = fc.record({
    eof: fc.boolean(),
    affectedRows: fc.oneof(fc.nat(), fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n - 1n })),
    lastInsertId: fc.oneof(fc.nat(), fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n - 1n })),
    statusFlags: u16,
    warnings: u16,
    info: text,
  });

  it("round-trips OK packets with and without session tracking", () => {
    fc.assert(
      fc.property(okPacket, fc.option(bytes, { nil: undefined }), (value, state) => {
        expect(mysql.decodeOk(mysql.encodeOk(value, caps41), caps41)).toEqual(value);
        const trackCaps = (caps41 | C.CLIENT_SESSION_TRACK) >>> 0;
        const tracked = { ...value, statusFlags: value.statusFlags | mysqlServerStatus.SERVER_SESSION_STATE_CHANGED, ...(state === undefined ? {} : { sessionStateChanges: state }) };
        const decoded = mysql.decodeOk(mysql.encodeOk(tracked, trackCaps), trackCaps);
        expect(decoded).toEqual(tracked);
      }),
    );
  });

  it("encodes the OK MariaDB sends after an insert, info as string<lenenc>, and omits an empty info", () => {
    const info = "Records: 2  Duplicates: 0  Warnings: 0";
    const payload = mysql.encodeOk({ affectedRows: 2, lastInsertId: 0, statusFlags: 2, info }, caps41);
    expect(payload.toString("hex")).toBe(`0002000200000026${Buffer.from(info).toString("hex")}`);
    expect(mysql.encodeOk({ statusFlags: 2 }, caps41).toString("hex")).toBe("00000002000000");
    expect(mysql.encodeOk({ eof: true, statusFlags: 2 }, caps41).toString("hex")).toBe("fe000002000000");
    // Without CLIENT_PROTOCOL_41, only the status (with CLIENT_TRANSACTIONS) follows the ids.
    expect(mysql.decodeOk(Buffer.from("0001050200", "hex"), C.CLIENT_TRANSACTIONS)).toEqual({
      eof: false,
      affectedRows: 1,
      lastInsertId: 5,
      statusFlags: 2,
      warnings: 0,
      info: "",
    });
    expect(wireError(() => mysql.decodeOk(Buffer.from("ff", "hex"), caps41)).code).toBe("unexpected_message");
  });

  it("round-trips ERR with its SQLSTATE and decodes one without the marker", () => {
    const err = { code: 1045, sqlState: "28000", message: "Access denied for user 'ci'@'localhost' (using password: YES)" };
    const payload = mysql.encodeErr(err);
    expect(payload.subarray(0, 9).toString("latin1")).toBe("\xff\x15\x04#28000");
    expect(mysql.decodeErr(payload)).toEqual(err);
    const bare = Buffer.concat([Buffer.from([0xff, 0x10, 0x04]), Buffer.from("Too many connections")]);
    expect(mysql.decodeErr(bare)).toEqual({ code: 1040, message: "Too many connections" });
    expect(mysql.decodeErr(Buffer.from([0xff, 0x10, 0x04]))).toEqual({ code: 1040, message: "" });
    expect(wireError(() => mysql.decodeErr(Buffer.from([0xff, 0x10]))).code).toBe("malformed_message");
    expect(wireError(() => mysql.decodeErr(Buffer.from([0xff, 0x10, 0x04, 0x23, 0x34]))).code).toBe("malformed_message");
    expect(() => mysql.encodeErr({ code: 1, sqlState: "2800", message: "" })).toThrow(TypeError);
    expect(() => mysql.encodeErr({ code: 70000, message: "" })).toThrow(TypeError);
  });

  it("round-trips EOF and refuses one of 9 bytes or more", () => {
    const payload = mysql.encodeEof({ warnings: 1, statusFlags: 0x22 });
    expect(payload.toString("hex")).toBe("fe01002200");
    expect(mysql.decodeEof(payload)).toEqual({ warnings: 1, statusFlags: 0x22 });
    expect(mysql.decodeEof(Buffer.from([0xfe]))).toEqual({ warnings: 0, statusFlags: 0 });
    expect(wireError(() => mysql.decodeEof(Buffer.alloc(9, 0xfe))).code).toBe("malformed_message");
  });
});

describe("classifyResponse", () => {
  const deprecate = (caps41 | C.CLIENT_DEPRECATE_EOF) >>> 0;
  const eof = mysql.encodeEof({ warnings: 0, statusFlags: 2 });
  const okEof = mysql.encodeOk({ eof: true, statusFlags: 2, info: "a longer info makes it 9 bytes or more" }, deprecate);

  it("classifies the first packet answering a command", () => {
    expect(mysql.classifyResponse(mysql.encodeOk({}, caps41), caps41)).toBe("ok");
    expect(mysql.classifyResponse(mysql.encodeErr({ code: 1064, sqlState: "42000", message: "syntax" }), caps41)).toBe("err");
    expect(mysql.classifyResponse(Buffer.concat([Buffer.from([0xfb]), Buffer.from("/etc/passwd")]), caps41)).toBe("local_infile");
    expect(mysql.classifyResponse(mysql.encodeColumnCount(3), caps41)).toBe("result_set");
    expect(mysql.classifyResponse(mysql.encodeColumnCount(300), caps41)).toBe("result_set");
    expect(mysql.classifyResponse(eof, caps41)).toBe("eof");
    expect(mysql.classifyResponse(okEof, deprecate)).toBe("ok");
    expect(wireError(() => mysql.classifyResponse(Buffer.alloc(0), caps41)).code).toBe("malformed_message");
  });

  it("classifies rows and their terminator, with and without CLIENT_DEPRECATE_EOF", () => {
    const emptyFirst = mysql.encodeTextRow(["", "x"]); // starts with 0x00 like an OK
    const nullFirst = mysql.encodeTextRow([null, "x"]); // starts with 0xfb
    const hugeFirst = Buffer.concat([Buffer.from([0xfe]), Buffer.alloc(8)]); // a string<lenenc> with a 9-byte length
    for (const row of [emptyFirst, nullFirst, hugeFirst]) {
      expect(mysql.classifyResponse(row, caps41, "rows")).toBe("row");
    }
    expect(mysql.classifyResponse(eof, caps41, "rows")).toBe("eof");
    expect(mysql.classifyResponse(okEof, deprecate, "rows")).toBe("ok");
    expect(mysql.classifyResponse(Buffer.alloc(0xffffff, 0xfe), deprecate, "rows")).toBe("row");
    expect(mysql.classifyResponse(mysql.encodeErr({ code: 1317, sqlState: "70100", message: "interrupted" }), deprecate, "rows")).toBe("err");
  });
});

describe("ColumnDefinition41", () => {
  const column: mysql.ColumnDefinition41 = {
    catalog: "def",
    schema: "shop",
    table: "c",
    orgTable: "customers",
    name: "email",
    orgName: "email_address",
    characterSet: 45,
    columnLength: 1020,
    type: T.MYSQL_TYPE_VAR_STRING,
    flags: 0x1001,
    decimals: 0,
  };

  it("round-trips, with MariaDB's extended metadata too", () => {
    expect(mysql.decodeColumnDefinition41(mysql.encodeColumnDefinition41(column))).toEqual(column);
    const extended = { ...column, extendedMetadata: Buffer.from("\x00\x04uuid", "latin1") };
    expect(mysql.decodeColumnDefinition41(mysql.encodeColumnDefinition41(extended), { extendedMetadata: true })).toEqual(extended);
  });

  it("reads mysql2's encoding and ignores COM_FIELD_LIST's trailing default", () => {
    const theirs = payloadOf(ColumnDefinition.toPacket({ ...column, columnType: column.type }, 1));
    expect(mysql.decodeColumnDefinition41(theirs)).toEqual(column);
    expect(theirs.equals(mysql.encodeColumnDefinition41(column))).toBe(true);
    expect(mysql.decodeColumnDefinition41(Buffer.concat([theirs, mysql.encodeLenencString("default")]))).toEqual(column);
  });

  it("round-trips arbitrary definitions", () => {
    const definition = fc.record({
      catalog: text,
      schema: text,
      table: text,
      orgTable: text,
      name: text,
      orgName: text,
      characterSet: u16,
      columnLength: u32,
      type: u8,
      flags: u16,
      decimals: u8,
    });
    fc.assert(
      fc.property(definition, (value) => {
        expect(mysql.decodeColumnDefinition41(mysql.encodeColumnDefinition41(value))).toEqual(value);
      }),
    );
  });

  it("round-trips the column count", () => {
    expect(mysql.decodeColumnCount(mysql.encodeColumnCount(3))).toBe(3);
    expect(mysql.decodeColumnCount(mysql.encodeColumnCount(4096))).toBe(4096);
  });
});

describe("text rows", () => {
  it("round-trips values and NULLs as views into the payload", () => {
    const payload = mysql.encodeTextRow(["1", "x", null, "", Buffer.from([0, 0xfb, 0xff])]);
    expect(payload.toString("hex")).toBe("01310178fb000300fbff");
    const row = mysql.decodeTextRow(payload, 5);
    expect(row.map((value) => (value === null ? null : value.toString("hex")))).toEqual(["31", "78", null, "", "00fbff"]);
    expect(row[0]?.buffer).toBe(payload.buffer);
  });

  it("agrees with mysql2's TextRow and refuses a column count that does not match", () => {
    const theirs = payloadOf(TextRow.toPacket(["a", null, 42], "utf8"));
    expect(mysql.decodeTextRow(theirs, 3).map((value) => value?.toString() ?? null)).toEqual(["a", null, "42"]);
    expect(wireError(() => mysql.decodeTextRow(theirs, 2)).code).toBe("malformed_message");
    expect(wireError(() => mysql.decodeTextRow(theirs, 4)).code).toBe("malformed_message");
  });

  it("round-trips arbitrary rows", () => {
    fc.assert(
      fc.property(fc.array(fc.option(bytes, { nil: null }), { maxLength: 20 }), (values) => {
        const row = mysql.decodeTextRow(mysql.encodeTextRow(values), values.length);
        expect(row.map((value) => (value === null ? null : Buffer.from(value)))).toEqual(values);
      }),
    );
  });
});

describe("binary rows", () => {
  const le = (size: number, value: number | bigint): Buffer => {
    const out = Buffer.alloc(size);
    if (size === 8) out.writeBigInt64LE(BigInt(value));
    else out.writeIntLE(Number(value), 0, size);
    return out;
  };
  const float = Buffer.alloc(4);
  float.writeFloatLE(1.5);
  const double = Buffer.alloc(8);
  double.writeDoubleLE(-2.25);
  const date4 = Buffer.from("e8070102", "hex"); // 2024-01-02
  const datetime7 = Buffer.from("e8070102030405", "hex"); // 2024-01-02 03:04:05
  const datetime11 = Buffer.concat([datetime7, le(4, 123456)]);
  const time8 = Buffer.from("0101000000030405", "hex"); // negative, 1 day, 03:04:05
  const time12 = Buffer.concat([time8, le(4, 999999)]);
  const columns: [number, Buffer | null][] = [
    [T.MYSQL_TYPE_TINY, le(1, -5)],
    [T.MYSQL_TYPE_SHORT, le(2, 300)],
    [T.MYSQL_TYPE_LONG, null],
    [T.MYSQL_TYPE_INT24, le(4, 70000)],
    [T.MYSQL_TYPE_LONGLONG, le(8, -(2n ** 62n))],
    [T.MYSQL_TYPE_FLOAT, float],
    [T.MYSQL_TYPE_DOUBLE, double],
    [T.MYSQL_TYPE_YEAR, le(2, 2024)],
    [T.MYSQL_TYPE_DATE, Buffer.alloc(0)],
    [T.MYSQL_TYPE_DATE, date4],
    [T.MYSQL_TYPE_DATETIME, datetime7],
    [T.MYSQL_TYPE_TIMESTAMP, datetime11],
    [T.MYSQL_TYPE_DATETIME, date4],
    [T.MYSQL_TYPE_TIME, Buffer.alloc(0)],
    [T.MYSQL_TYPE_TIME, time8],
    [T.MYSQL_TYPE_TIME, time12],
    [T.MYSQL_TYPE_VAR_STRING, Buffer.from("alice@example.com")],
    [T.MYSQL_TYPE_NEWDECIMAL, Buffer.from("-12.50")],
    [T.MYSQL_TYPE_BLOB, null],
    [T.MYSQL_TYPE_NULL, null],
    [T.MYSQL_TYPE_JSON, Buffer.from('{"a":1}')],
  ];
  const types = columns.map(([type]) => type);
  const values = columns.map(([, value]) => value);

  it("encodes the header, the NULL bitmap at offset 2, and each value by type", () => {
    const payload = mysql.encodeBinaryRow(types, values);
    expect(payload[0]).toBe(0x00);
    // 21 columns + 2 offset bits = 23 bits: 3 bytes. NULLs at columns 2, 18 and 19 are bits 4, 20 and 21.
    expect(payload.subarray(1, 4).toString("hex")).toBe("100030");
    expect(payload.subarray(4, 7).toString("hex")).toBe("fb2c01"); // TINY -5, SHORT 300
    const row = mysql.decodeBinaryRow(payload, types);
    expect(row.map((value) => (value === null ? null : value.toString("hex")))).toEqual(values.map((value) => (value === null ? null : value.toString("hex"))));
    expect(row[16]?.buffer).toBe(payload.buffer);
    // Temporal values carry their length byte on the wire.
    expect(payload.includes(Buffer.concat([Buffer.from([11]), datetime11]))).toBe(true);
    expect(payload.includes(Buffer.concat([Buffer.from([12]), time12]))).toBe(true);
  });

  it("lets a masking layer replace one value and re-encode", () => {
    const row = mysql.decodeBinaryRow(mysql.encodeBinaryRow(types, values), types);
    row[16] = Buffer.from("***");
    const again = mysql.decodeBinaryRow(mysql.encodeBinaryRow(types, row), types);
    expect(again[16]?.toString()).toBe("***");
    expect(again[17]?.toString()).toBe("-12.50");
  });

  it("refuses bad temporal lengths, wrong fixed sizes, a bad header and trailing bytes", () => {
    for (const length of [1, 5, 8, 12]) {
      const payload = Buffer.from([0x00, 0x00, length, ...Buffer.alloc(length)]);
      expect(wireError(() => mysql.decodeBinaryRow(payload, [T.MYSQL_TYPE_DATETIME])).code, `DATETIME ${length}`).toBe("malformed_message");
    }
    for (const length of [4, 7, 11]) {
      const payload = Buffer.from([0x00, 0x00, length, ...Buffer.alloc(length)]);
      expect(wireError(() => mysql.decodeBinaryRow(payload, [T.MYSQL_TYPE_TIME])).code, `TIME ${length}`).toBe("malformed_message");
    }
    expect(() => mysql.encodeBinaryRow([T.MYSQL_TYPE_LONG], [Buffer.alloc(3)])).toThrow(TypeError);
    expect(() => mysql.encodeBinaryRow([T.MYSQL_TYPE_TIME], [Buffer.alloc(7)])).toThrow(TypeError);
    expect(() => mysql.encodeBinaryRow([T.MYSQL_TYPE_TIME], [])).toThrow(TypeError);
    expect(wireError(() => mysql.decodeBinaryRow(Buffer.from([0x01, 0x00, 0x05]), [T.MYSQL_TYPE_TINY])).code).toBe("unexpected_message");
    expect(wireError(() => mysql.decodeBinaryRow(Buffer.from([0x00, 0x00, 0x05, 0x06]), [T.MYSQL_TYPE_TINY])).code).toBe("malformed_message");
    expect(wireError(() => mysql.decodeBinaryRow(Buffer.from([0x00, 0x00]), [T.MYSQL_TYPE_LONG])).code).toBe("malformed_message");
  });

  it("round-trips arbitrary rows of every wire type", () => {
    const sized = (size: number) => fc.uint8Array({ minLength: size, maxLength: size }).map((array) => Buffer.from(array));
    const valueOf = (type: number): fc.Arbitrary<Buffer> => {
      switch (type) {
        case T.MYSQL_TYPE_TINY:
          return sized(1);
        case T.MYSQL_TYPE_SHORT:
        case T.MYSQL_TYPE_YEAR:
          return sized(2);
        case T.MYSQL_TYPE_LONG:
        case T.MYSQL_TYPE_INT24:
        case T.MYSQL_TYPE_FLOAT:
          return sized(4);
        case T.MYSQL_TYPE_LONGLONG:
        case T.MYSQL_TYPE_DOUBLE:
          return sized(8);
        case T.MYSQL_TYPE_NULL:
          return sized(0);
        case T.MYSQL_TYPE_DATE:
        case T.MYSQL_TYPE_DATETIME:
        case T.MYSQL_TYPE_TIMESTAMP:
          return fc.constantFrom(0, 4, 7, 11).chain(sized);
        case T.MYSQL_TYPE_TIME:
          return fc.constantFrom(0, 8, 12).chain(sized);
        default:
          return bytes;
      }
    };
    const column = fc.constantFrom(...Object.values(T)).chain((type) => fc.tuple(fc.constant(type), fc.option(valueOf(type), { nil: null })));
    fc.assert(
      fc.property(fc.array(column, { maxLength: 40 }), (row) => {
        const rowTypes = row.map(([type]) => type);
        const rowValues = row.map(([, value]) => value);
        const decoded = mysql.decodeBinaryRow(mysql.encodeBinaryRow(rowTypes, rowValues), rowTypes);
        expect(decoded.map((value) => (value === null ? null : Buffer.from(value)))).toEqual(rowValues);
      }),
    );
  });
});

describe("prepared statements", () => {
  it("round-trips COM_STMT_PREPARE_OK and reads one without the warning count", () => {
    const ok = { statementId: 7, numColumns: 3, numParams: 2, warnings: 1 };
    const payload = mysql.encodeStmtPrepareOk(ok);
    expect(payload.toString("hex")).toBe("000700000003000200000100");
    expect(mysql.decodeStmtPrepareOk(payload)).toEqual(ok);
    expect(mysql.decodeStmtPrepareOk(payload.subarray(0, 10))).toEqual({ ...ok, warnings: 0 });
  });

  it("decodes the head of COM_STMT_EXECUTE and the statement id of the other statement commands", () => {
    const execute = Buffer.from("17" + "2a000000" + "00" + "01000000" + "00" + "01" + "0800" + "0500000000000000", "hex");
    const header = mysql.decodeStmtExecuteHeader(execute);
    expect(header).toMatchObject({ statementId: 42, flags: 0, iterationCount: 1 });
    expect(header.parameters.toString("hex")).toBe("000108000500000000000000");
    expect(mysql.decodeStatementId(execute)).toBe(42);
    expect(mysql.decodeStatementId(mysql.encodeCommand(mysqlCommands.COM_STMT_CLOSE, Buffer.from("2a000000", "hex")))).toBe(42);
    expect(wireError(() => mysql.decodeStatementId(mysql.encodeComQuery("select 1"))).code).toBe("unexpected_message");
    expect(wireError(() => mysql.decodeStmtExecuteHeader(execute.subarray(0, 8))).code).toBe("malformed_message");
  });
});

describe("COM_STMT_EXECUTE parameters", () => {
  const head = (flags = 0) => new mysql.Writer().uint8(mysqlCommands.COM_STMT_EXECUTE).uint32(9).uint8(flags).uint32(1);
  const seven = Buffer.from("0700000000000000", "hex");

  it("decodes the NULL bitmap (no offset), the types and the values", () => {
    const payload = head()
      .uint8(0b010) // the second of three is NULL
      .uint8(1)
      .uint16(T.MYSQL_TYPE_LONGLONG | 0x8000)
      .uint16(T.MYSQL_TYPE_VAR_STRING)
      .uint16(T.MYSQL_TYPE_DATETIME)
      .bytes(seven)
      .uint8(7)
      .bytes(Buffer.from("e8070102030405", "hex"))
      .finish();
    const parameters = mysql.decodeStmtExecuteParameters(payload, 3, caps41);
    expect(parameters.newParamsBound).toBe(true);
    expect(parameters.types).toEqual([T.MYSQL_TYPE_LONGLONG | 0x8000, T.MYSQL_TYPE_VAR_STRING, T.MYSQL_TYPE_DATETIME]);
    expect(parameters.names).toEqual([]);
    expect(parameters.values.map((value) => value?.toString("hex") ?? null)).toEqual(["0700000000000000", null, "e8070102030405"]);
  });

  it("reuses the previous types, skips long-data parameters, and refuses types it never saw", () => {
    const payload = head().uint8(0).uint8(0).bytes(seven).finish();
    const types = [T.MYSQL_TYPE_BLOB, T.MYSQL_TYPE_LONGLONG];
    const parameters = mysql.decodeStmtExecuteParameters(payload, 2, caps41, { previousTypes: types, longData: new Set([0]) });
    expect(parameters).toMatchObject({ newParamsBound: false, types });
    expect(parameters.values.map((value) => value?.toString("hex") ?? null)).toEqual([null, "0700000000000000"]);
    expect(wireError(() => mysql.decodeStmtExecuteParameters(payload, 2, caps41)).code).toBe("malformed_message");
  });

  it("reads the count and names under CLIENT_QUERY_ATTRIBUTES", () => {
    const caps = (caps41 | C.CLIENT_QUERY_ATTRIBUTES) >>> 0;
    const payload = head()
      .lenencInt(2) // one parameter and one attribute
      .uint8(0)
      .uint8(1)
      .uint16(T.MYSQL_TYPE_LONGLONG)
      .lenencBytes("")
      .uint16(T.MYSQL_TYPE_VAR_STRING)
      .lenencBytes("trace")
      .bytes(seven)
      .lenencBytes("abc")
      .finish();
    const parameters = mysql.decodeStmtExecuteParameters(payload, 1, caps);
    expect(parameters.names).toEqual(["", "trace"]);
    expect(parameters.values.map((value) => value?.toString("hex") ?? null)).toEqual(["0700000000000000", "616263"]);
    // No parameters and no PARAMETER_COUNT_AVAILABLE: nothing follows the head.
    expect(mysql.decodeStmtExecuteParameters(head().finish(), 0, caps)).toEqual({ newParamsBound: false, types: [], names: [], values: [] });
    const countOnly = head(0x08).lenencInt(0).uint8(1).finish();
    expect(mysql.decodeStmtExecuteParameters(countOnly, 0, caps).values).toEqual([]);
    expect(wireError(() => mysql.decodeStmtExecuteParameters(head().lenencInt(0).uint8(1).finish(), 1, caps)).code).toBe("malformed_message");
  });

  it("refuses trailing bytes", () => {
    const payload = head().uint8(0).uint8(1).uint16(T.MYSQL_TYPE_TINY).uint8(1).uint8(2).finish();
    expect(wireError(() => mysql.decodeStmtExecuteParameters(payload, 1, caps41)).code).toBe("malformed_message");
  });
});

describe("commands", () => {
  it("extracts the text of COM_QUERY, COM_STMT_PREPARE and COM_INIT_DB", () => {
    const sql = "select 'ünïcode' as u";
    expect(mysql.decodeComQuery(mysql.encodeComQuery(sql))).toBe(sql);
    expect(mysql.commandOf(mysql.encodeComQuery(sql))).toBe(mysqlCommands.COM_QUERY);
    expect(mysql.decodeComStmtPrepare(mysql.encodeCommand(mysqlCommands.COM_STMT_PREPARE, sql))).toBe(sql);
    expect(mysql.decodeComInitDb(mysql.encodeCommand(mysqlCommands.COM_INIT_DB, "shop"))).toBe("shop");
    expect(wireError(() => mysql.decodeComQuery(mysql.encodeCommand(mysqlCommands.COM_PING))).code).toBe("unexpected_message");
    expect(wireError(() => mysql.commandOf(Buffer.alloc(0))).code).toBe("malformed_message");
  });

  it("skips query attributes before the text under CLIENT_QUERY_ATTRIBUTES", () => {
    const caps = C.CLIENT_QUERY_ATTRIBUTES;
    expect(mysql.encodeComQuery("select 1", caps).toString("hex")).toBe(`030001${Buffer.from("select 1").toString("hex")}`);
    expect(mysql.decodeComQuery(mysql.encodeComQuery("select 1", caps), caps)).toBe("select 1");
    // Two attributes: `trace` = 'abc' (VAR_STRING) and `n` = NULL (LONGLONG).
    const withAttributes = new mysql.Writer()
      .uint8(mysqlCommands.COM_QUERY)
      .lenencInt(2)
      .lenencInt(1)
      .uint8(0b10) // the second is NULL
      .uint8(1)
      .uint16(T.MYSQL_TYPE_VAR_STRING)
      .lenencBytes("trace")
      .uint16(T.MYSQL_TYPE_LONGLONG)
      .lenencBytes("n")
      .lenencBytes("abc")
      .bytes("select 2")
      .finish();
    expect(mysql.decodeComQuery(withAttributes, caps)).toBe("select 2");
  });
});
