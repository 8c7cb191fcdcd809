import { WireError } from "../errors.js";
import { mysqlCapabilities, mysqlColumnTypeName, mysqlColumnTypes, mysqlCommands, mysqlCursorTypes, mysqlResponseHeaders, mysqlServerStatus } from "./messages.js";

export { encodePacket, nextSequenceId } from "./framer.js";

const {
  CLIENT_CONNECT_ATTRS,
  CLIENT_CONNECT_WITH_DB,
  CLIENT_DEPRECATE_EOF,
  CLIENT_PLUGIN_AUTH,
  CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
  CLIENT_PROTOCOL_41,
  CLIENT_QUERY_ATTRIBUTES,
  CLIENT_SECURE_CONNECTION,
  CLIENT_SESSION_TRACK,
  CLIENT_SSL,
  CLIENT_TRANSACTIONS,
  CLIENT_ZSTD_COMPRESSION_ALGORITHM,
} = mysqlCapabilities;
const T = mysqlColumnTypes;
const H = mysqlResponseHeaders;

/** The largest value a 1-byte length-encoded integer holds; 0xfb..0xff are prefixes. */
const LENENC_1 = 0xfb;
const EMPTY: Buffer = Buffer.alloc(0);

// ---- length-encoded integers and strings -------------------------------------------------------
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_dt_integers.html
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_dt_strings.html

/**
 * Bounds-checked reader over one payload; running past the end, or a length that does not fit, is a
 * WireError("malformed_message"). Byte results are views into the payload.
 */
export class Reader {
  readonly #bytes: Buffer;
  #offset: number;

  constructor(bytes: Buffer, offset = 0) {
    this.#bytes = bytes;
    this.#offset = offset;
  }

  /** Position of the next byte. */
  get offset(): number {
    return this.#offset;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#bytes.length - this.#offset;
  }

  /** The next byte, not consumed; undefined at the end. */
  peek(): number | undefined {
    return this.#bytes[this.#offset];
  }

  /** int<1>. */
  uint8(): number {
    this.#need(1);
    return this.#bytes[this.#offset++] ?? 0;
  }

  /** int<2>, little-endian like every MySQL integer. */
  uint16(): number {
    this.#need(2);
    const value = this.#bytes.readUInt16LE(this.#offset);
    this.#offset += 2;
    return value;
  }

  /** int<3>. */
  uint24(): number {
    this.#need(3);
    const value = this.#bytes.readUIntLE(this.#offset, 3);
    this.#offset += 3;
    return value;
  }

  /** int<4>. */
  uint32(): number {
    this.#need(4);
    const value = this.#bytes.readUInt32LE(this.#offset);
    this.#offset += 4;
    return value;
  }

  /** int<8>. */
  uint64(): bigint {
    this.#need(8);
    const value = this.#bytes.readBigUInt64LE(this.#offset);
    this.#offset += 8;
    return value;
  }

  /** int<lenenc>: a number, or a bigint above Number.MAX_SAFE_INTEGER. A NULL (0xfb) or 0xff prefix is malformed. */
  lenencInt(): number | bigint {
    const first = this.uint8();
    if (first < LENENC_1) return first;
    switch (first) {
      case 0xfc:
        return this.uint16();
      case 0xfd:
        return this.uint24();
      case 0xfe: {
        const value = this.uint64();
        return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
      }
      default:
        throw malformed(`length-encoded integer has prefix 0x${first.toString(16)}`);
    }
  }

  /** int<lenenc> used as a count or a length: it must be a safe integer. */
  lenencLength(): number {
    const value = this.lenencInt();
    if (typeof value === "bigint") throw malformed(`length ${value} is too large`);
    return value;
  }

  /** string[n]. */
  bytes(length: number): Buffer {
    this.#need(length);
    const value = this.#bytes.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return value;
  }

  /** string<lenenc>. */
  lenencBytes(): Buffer {
    return this.bytes(this.lenencLength());
  }

  /** string<lenenc>, or null for the 0xfb NULL of a text row. */
  lenencBytesOrNull(): Buffer | null {
    if (this.peek() === LENENC_1) {
      this.#offset++;
      return null;
    }
    return this.lenencBytes();
  }

  /** string<lenenc> as UTF-8. */
  lenencString(): string {
    return this.lenencBytes().toString("utf8");
  }

  /** string<NUL>, the terminator consumed and not included. */
  nulBytes(): Buffer {
    const end = this.#bytes.indexOf(0, this.#offset);
    if (end === -1) throw malformed("string is not terminated");
    const value = this.#bytes.subarray(this.#offset, end);
    this.#offset = end + 1;
    return value;
  }

  /** string<NUL> as UTF-8. */
  nulString(): string {
    return this.nulBytes().toString("utf8");
  }

  /** string<EOF>: everything left. */
  restBytes(): Buffer {
    const value = this.#bytes.subarray(this.#offset);
    this.#offset = this.#bytes.length;
    return value;
  }

  /** string<EOF> as UTF-8. */
  restString(): string {
    return this.restBytes().toString("utf8");
  }

  /** Skips n bytes (fillers, reserved fields). */
  skip(count: number): void {
    this.#need(count);
    this.#offset += count;
  }

  /** Throws unless every byte was read; `what` names the message. */
  end(what: string): void {
    if (this.remaining !== 0) throw malformed(`${what} has ${this.remaining} unexpected trailing bytes`);
  }

  #need(count: number): void {
    if (count < 0 || this.#offset + count > this.#bytes.length) throw malformed("packet ends early");
  }
}

/** Builds one payload from parts; integers are checked, naming the field, and written little-endian. */
export class Writer {
  readonly #parts: Buffer[] = [];

  /** int<1>. */
  uint8(value: number, name = "value"): this {
    checkUint(value, 0xff, name);
    return this.bytes(Buffer.from([value]));
  }

  /** int<2>. */
  uint16(value: number, name = "value"): this {
    checkUint(value, 0xffff, name);
    const out = Buffer.allocUnsafe(2);
    out.writeUInt16LE(value);
    return this.bytes(out);
  }

  /** int<3>. */
  uint24(value: number, name = "value"): this {
    checkUint(value, 0xffffff, name);
    const out = Buffer.allocUnsafe(3);
    out.writeUIntLE(value, 0, 3);
    return this.bytes(out);
  }

  /** int<4>. */
  uint32(value: number, name = "value"): this {
    checkUint(value, 0xffffffff, name);
    const out = Buffer.allocUnsafe(4);
    out.writeUInt32LE(value);
    return this.bytes(out);
  }

  /** int<8>. */
  uint64(value: number | bigint, name = "value"): this {
    const big = toUint64(value, name);
    const out = Buffer.allocUnsafe(8);
    out.writeBigUInt64LE(big);
    return this.bytes(out);
  }

  /** int<lenenc>. */
  lenencInt(value: number | bigint, name = "value"): this {
    return this.bytes(encodeLenencInt(value, name));
  }

  /** string<lenenc>; a string is written as UTF-8. */
  lenencBytes(value: Buffer | string): this {
    const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value;
    return this.lenencInt(bytes.length).bytes(bytes);
  }

  /** string<NUL>; the value must not contain a NUL byte. */
  nulString(value: Buffer | string, name = "value"): this {
    const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value;
    if (bytes.includes(0)) throw new TypeError(`${name} must not contain a NUL byte`);
    return this.bytes(bytes).bytes(Buffer.from([0]));
  }

  /** string[n] or string<EOF>; a string is written as UTF-8. */
  bytes(value: Buffer | string): this {
    this.#parts.push(typeof value === "string" ? Buffer.from(value, "utf8") : value);
    return this;
  }

  /** n zero bytes (fillers, reserved fields). */
  zeros(count: number): this {
    return this.bytes(Buffer.alloc(count));
  }

  /** The payload. */
  finish(): Buffer {
    return Buffer.concat(this.#parts);
  }
}

/** Encodes int<lenenc>: 1 byte below 0xfb, else 0xfc + int<2>, 0xfd + int<3> or 0xfe + int<8>. */
export function encodeLenencInt(value: number | bigint, name = "value"): Buffer {
  const big = toUint64(value, name);
  if (big < 0xfbn) return Buffer.from([Number(big)]);
  if (big <= 0xffffn) {
    const out = Buffer.from([0xfc, 0, 0]);
    out.writeUInt16LE(Number(big), 1);
    return out;
  }
  if (big <= 0xffffffn) {
    const out = Buffer.from([0xfd, 0, 0, 0]);
    out.writeUIntLE(Number(big), 1, 3);
    return out;
  }
  const out = Buffer.allocUnsafe(9);
  out[0] = 0xfe;
  out.writeBigUInt64LE(big, 1);
  return out;
}

/** Encodes string<lenenc>; a string is written as UTF-8. */
export function encodeLenencString(value: Buffer | string): Buffer {
  return new Writer().lenencBytes(value).finish();
}

// ---- connection phase ---------------------------------------------------------------------------

/**
 * The server's greeting, Protocol::HandshakeV10.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_handshake_v10.html
 * https://mariadb.com/kb/en/connection/#initial-handshake-packet
 */
export interface HandshakeV10 {
  /** Always 10. */
  readonly protocolVersion: number;
  /** MariaDB prefixes its version with `5.5.5-`. */
  readonly serverVersion: string;
  readonly connectionId: number;
  /** auth-plugin-data parts 1 and 2 joined, without the trailing NUL: the 20-byte scramble of the usual plugins. */
  readonly authPluginData: Buffer;
  /** All 32 bits (lower and upper halves joined). */
  readonly capabilities: number;
  readonly characterSet: number;
  readonly statusFlags: number;
  /** Empty without CLIENT_PLUGIN_AUTH. */
  readonly authPluginName: string;
  /** MariaDB's extended capabilities (the last 4 reserved bytes); 0 from MySQL. Meaningful when CLIENT_LONG_PASSWORD is clear. */
  readonly mariadbCapabilities: number;
}

/** What {@link encodeHandshakeV10} needs: protocolVersion defaults to 10, mariadbCapabilities to 0. */
export type HandshakeV10Init = Omit<HandshakeV10, "protocolVersion" | "mariadbCapabilities"> &
  Partial<Pick<HandshakeV10, "protocolVersion" | "mariadbCapabilities">>;

/**
 * Decodes the server's greeting. A server that refuses the connection (too many connections, host
 * not allowed) sends an ERR packet instead: check for 0xff first ({@link classifyResponse} with
 * phase "auth" says "err"); here it is an unexpected_message.
 */
export function decodeHandshakeV10(payload: Buffer): HandshakeV10 {
  const reader = new Reader(payload);
  const protocolVersion = reader.uint8();
  if (protocolVersion === H.ERR) throw new WireError("unexpected_message", "server sent an ERR packet instead of its handshake");
  if (protocolVersion !== 10) throw new WireError("unsupported_protocol", `handshake protocol version ${protocolVersion} is not supported`);
  const serverVersion = reader.nulString();
  const connectionId = reader.uint32();
  const part1 = reader.bytes(8);
  reader.skip(1);
  const lower = reader.uint16();
  const characterSet = reader.uint8();
  const statusFlags = reader.uint16();
  const upper = reader.uint16();
  const capabilities = (lower | (upper << 16)) >>> 0;
  const dataLength = reader.uint8();
  reader.skip(6);
  const mariadbCapabilities = reader.uint32();
  let part2 = EMPTY;
  if (hasFlag(capabilities, CLIENT_SECURE_CONNECTION)) {
    // $len = MAX(13, auth_plugin_data_len - 8); auth_plugin_data_len counts part 1 and a trailing NUL.
    const field = reader.bytes(Math.max(13, dataLength - 8));
    part2 = field.subarray(0, dataLength > 8 ? dataLength - 9 : 12);
  }
  // MySQL 5.5.7 to 5.5.9 sent the plugin name without its NUL: read to the end then.
  let authPluginName = "";
  if (hasFlag(capabilities, CLIENT_PLUGIN_AUTH) && reader.remaining > 0) {
    authPluginName = payload.includes(0, reader.offset) ? reader.nulString() : reader.restString();
  }
  return {
    protocolVersion,
    serverVersion,
    connectionId,
    authPluginData: Buffer.concat([part1, part2]),
    capabilities,
    characterSet,
    statusFlags,
    authPluginName,
    mariadbCapabilities,
  };
}

/** Encodes the server's greeting; see {@link HandshakeV10}. */
export function encodeHandshakeV10(handshake: HandshakeV10Init): Buffer {
  const { authPluginData: data, capabilities } = handshake;
  const secure = hasFlag(capabilities, CLIENT_SECURE_CONNECTION);
  const pluginAuth = hasFlag(capabilities, CLIENT_PLUGIN_AUTH);
  if (!secure && data.length !== 8) throw new TypeError("handshake.authPluginData must be 8 bytes without CLIENT_SECURE_CONNECTION");
  if (secure && !pluginAuth && data.length !== 20) throw new TypeError("handshake.authPluginData must be 20 bytes without CLIENT_PLUGIN_AUTH");
  if (data.length < 8 || data.length > 254) throw new TypeError("handshake.authPluginData must be 8 to 254 bytes");
  const writer = new Writer()
    .uint8(handshake.protocolVersion ?? 10, "handshake.protocolVersion")
    .nulString(handshake.serverVersion, "handshake.serverVersion")
    .uint32(handshake.connectionId, "handshake.connectionId")
    .bytes(data.subarray(0, 8))
    .uint8(0)
    .uint16(lowerHalf(capabilities, "handshake.capabilities"))
    .uint8(handshake.characterSet, "handshake.characterSet")
    .uint16(handshake.statusFlags, "handshake.statusFlags")
    .uint16(capabilities >>> 16)
    .uint8(pluginAuth ? data.length + 1 : 0)
    .zeros(6)
    .uint32(handshake.mariadbCapabilities ?? 0, "handshake.mariadbCapabilities");
  if (secure) {
    const part2 = Buffer.alloc(Math.max(13, data.length - 8 + 1));
    data.copy(part2, 0, 8);
    writer.bytes(part2);
  }
  if (pluginAuth) writer.nulString(handshake.authPluginName, "handshake.authPluginName");
  return writer.finish();
}

/**
 * The client's SSLRequest: the first 32 bytes of a HandshakeResponse41, after which the client
 * starts TLS and sends the whole response.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_ssl_request.html
 */
export interface SSLRequest {
  readonly capabilities: number;
  readonly maxPacketSize: number;
  readonly characterSet: number;
  /** MariaDB's extended client capabilities, in the last 4 filler bytes; 0 from MySQL clients. */
  readonly mariadbCapabilities: number;
}

/** What {@link encodeSSLRequest} needs; mariadbCapabilities defaults to 0. */
export type SSLRequestInit = Omit<SSLRequest, "mariadbCapabilities"> & Partial<Pick<SSLRequest, "mariadbCapabilities">>;

/** Length of the fixed head of a HandshakeResponse41, which is the whole SSLRequest. */
const RESPONSE_HEAD = 32;

/** Whether the client's first packet is an SSLRequest (32 bytes with CLIENT_SSL) rather than a HandshakeResponse41. */
export function isSSLRequest(payload: Buffer): boolean {
  return payload.length === RESPONSE_HEAD && hasFlag(payload.readUInt32LE(0), CLIENT_SSL);
}

/** Decodes an SSLRequest; see {@link isSSLRequest}. */
export function decodeSSLRequest(payload: Buffer): SSLRequest {
  if (!isSSLRequest(payload)) throw malformed(`SSLRequest must be ${RESPONSE_HEAD} bytes with CLIENT_SSL`);
  return decodeResponseHead(new Reader(payload));
}

/** Encodes an SSLRequest; capabilities must include CLIENT_SSL and CLIENT_PROTOCOL_41. */
export function encodeSSLRequest(request: SSLRequestInit): Buffer {
  if (!hasFlag(request.capabilities, CLIENT_SSL) || !hasFlag(request.capabilities, CLIENT_PROTOCOL_41)) {
    throw new TypeError("request.capabilities must include CLIENT_SSL and CLIENT_PROTOCOL_41");
  }
  return encodeResponseHead(new Writer(), request, "request").finish();
}

/**
 * The client's answer to the greeting, Protocol::HandshakeResponse41.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_handshake_response.html
 * https://mariadb.com/kb/en/connection/#handshake-response-packet
 */
export interface HandshakeResponse41 extends SSLRequest {
  readonly username: string;
  /** The plugin's first answer (e.g. the 20-byte mysql_native_password scramble); empty for an empty password. */
  readonly authResponse: Buffer;
  /** Present with CLIENT_CONNECT_WITH_DB. */
  readonly database?: string;
  /** Present with CLIENT_PLUGIN_AUTH. */
  readonly authPluginName?: string;
  /** Present with CLIENT_CONNECT_ATTRS; the wire order is kept. */
  readonly connectAttributes?: ReadonlyMap<string, string>;
  /** Present with CLIENT_ZSTD_COMPRESSION_ALGORITHM. */
  readonly zstdCompressionLevel?: number;
}

/** What {@link encodeHandshakeResponse41} needs; fields absent but required by the capabilities are written empty. */
export type HandshakeResponse41Init = Omit<HandshakeResponse41, "mariadbCapabilities"> & Partial<Pick<HandshakeResponse41, "mariadbCapabilities">>;

/**
 * Decodes a HandshakeResponse41. The fields after the auth response are read when their capability
 * is set and the packet goes on (servers accept a packet that ends early). A client without
 * CLIENT_PROTOCOL_41 (HandshakeResponse320) is unsupported_protocol. Check {@link isSSLRequest}
 * first: a client that wants TLS sends the 32-byte head alone.
 */
export function decodeHandshakeResponse41(payload: Buffer): HandshakeResponse41 {
  const reader = new Reader(payload);
  const head = decodeResponseHead(reader);
  const caps = head.capabilities;
  const username = reader.nulString();
  let authResponse: Buffer;
  if (hasFlag(caps, CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)) authResponse = reader.lenencBytes();
  else if (hasFlag(caps, CLIENT_SECURE_CONNECTION)) authResponse = reader.bytes(reader.uint8());
  else authResponse = reader.nulBytes();
  const response: { -readonly [K in keyof HandshakeResponse41]: HandshakeResponse41[K] } = { ...head, username, authResponse };
  if (hasFlag(caps, CLIENT_CONNECT_WITH_DB) && reader.remaining > 0) response.database = reader.nulString();
  if (hasFlag(caps, CLIENT_PLUGIN_AUTH) && reader.remaining > 0) response.authPluginName = reader.nulString();
  if (hasFlag(caps, CLIENT_CONNECT_ATTRS) && reader.remaining > 0) {
    const attributes = new Reader(reader.lenencBytes());
    const map = new Map<string, string>();
    while (attributes.remaining > 0) {
      const key = attributes.lenencString();
      map.set(key, attributes.lenencString());
    }
    response.connectAttributes = map;
  }
  if (hasFlag(caps, CLIENT_ZSTD_COMPRESSION_ALGORITHM) && reader.remaining > 0) response.zstdCompressionLevel = reader.uint8();
  return response;
}

/** Encodes a HandshakeResponse41; the auth response's length prefix follows the capabilities. */
export function encodeHandshakeResponse41(response: HandshakeResponse41Init): Buffer {
  const caps = response.capabilities;
  if (!hasFlag(caps, CLIENT_PROTOCOL_41)) throw new TypeError("response.capabilities must include CLIENT_PROTOCOL_41");
  const writer = encodeResponseHead(new Writer(), response, "response").nulString(response.username, "response.username");
  if (hasFlag(caps, CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)) {
    writer.lenencBytes(response.authResponse);
  } else if (hasFlag(caps, CLIENT_SECURE_CONNECTION)) {
    if (response.authResponse.length > 0xff) throw new TypeError("response.authResponse must be at most 255 bytes without CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA");
    writer.uint8(response.authResponse.length).bytes(response.authResponse);
  } else {
    writer.nulString(response.authResponse, "response.authResponse");
  }
  if (hasFlag(caps, CLIENT_CONNECT_WITH_DB)) writer.nulString(response.database ?? "", "response.database");
  if (hasFlag(caps, CLIENT_PLUGIN_AUTH)) writer.nulString(response.authPluginName ?? "", "response.authPluginName");
  if (hasFlag(caps, CLIENT_CONNECT_ATTRS)) {
    const attributes = new Writer();
    for (const [key, value] of response.connectAttributes ?? []) attributes.lenencBytes(key).lenencBytes(value);
    writer.lenencBytes(attributes.finish());
  }
  if (hasFlag(caps, CLIENT_ZSTD_COMPRESSION_ALGORITHM)) writer.uint8(response.zstdCompressionLevel ?? 3, "response.zstdCompressionLevel");
  return writer.finish();
}

function decodeResponseHead(reader: Reader): SSLRequest {
  const capabilities = reader.uint32();
  if (!hasFlag(capabilities, CLIENT_PROTOCOL_41)) {
    throw new WireError("unsupported_protocol", "client without CLIENT_PROTOCOL_41 (HandshakeResponse320) is not supported");
  }
  const maxPacketSize = reader.uint32();
  const characterSet = reader.uint8();
  reader.skip(19);
  return { capabilities, maxPacketSize, characterSet, mariadbCapabilities: reader.uint32() };
}

function encodeResponseHead(writer: Writer, head: SSLRequestInit, name: string): Writer {
  return writer
    .uint32(head.capabilities, `${name}.capabilities`)
    .uint32(head.maxPacketSize, `${name}.maxPacketSize`)
    .uint8(head.characterSet, `${name}.characterSet`)
    .zeros(19)
    .uint32(head.mariadbCapabilities ?? 0, `${name}.mariadbCapabilities`);
}

/**
 * AuthSwitchRequest: the server asks for another plugin, with that plugin's data (for
 * mysql_native_password and caching_sha2_password, a new 20-byte scramble and a NUL).
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_auth_switch_request.html
 */
export interface AuthSwitchRequest {
  readonly pluginName: string;
  readonly pluginData: Buffer;
}

/** Decodes an AuthSwitchRequest; a lone 0xfe is the old request to switch to mysql_old_password. */
export function decodeAuthSwitchRequest(payload: Buffer): AuthSwitchRequest {
  expectHeader(payload, H.EOF, "AuthSwitchRequest");
  if (payload.length === 1) return { pluginName: "mysql_old_password", pluginData: EMPTY };
  const reader = new Reader(payload, 1);
  const pluginName = reader.nulString();
  return { pluginName, pluginData: reader.restBytes() };
}

/** Encodes an AuthSwitchRequest. */
export function encodeAuthSwitchRequest(request: AuthSwitchRequest): Buffer {
  return new Writer().uint8(H.EOF).nulString(request.pluginName, "request.pluginName").bytes(request.pluginData).finish();
}

/**
 * Decodes AuthMoreData (0x01 + data): a plugin's extra round trip, such as caching_sha2_password's
 * fast-auth result or its RSA public key.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_auth_more_data.html
 */
export function decodeAuthMoreData(payload: Buffer): Buffer {
  expectHeader(payload, H.AuthMoreData, "AuthMoreData");
  return payload.subarray(1);
}

/** Encodes AuthMoreData. */
export function encodeAuthMoreData(data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([H.AuthMoreData]), data]);
}

// ---- generic responses ---------------------------------------------------------------------------

/**
 * OK_Packet, also sent with header 0xfe in place of an EOF under CLIENT_DEPRECATE_EOF.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_ok_packet.html
 */
export interface OkPacket {
  /** True when the header was 0xfe: the OK that ends a result set under CLIENT_DEPRECATE_EOF. */
  readonly eof: boolean;
  /** A bigint only above Number.MAX_SAFE_INTEGER. */
  readonly affectedRows: number | bigint;
  /** A bigint only above Number.MAX_SAFE_INTEGER. */
  readonly lastInsertId: number | bigint;
  readonly statusFlags: number;
  readonly warnings: number;
  /** Human-readable information (`Records: 2  Duplicates: 0  Warnings: 0`); often empty. */
  readonly info: string;
  /** Raw session state changes, present with CLIENT_SESSION_TRACK and SERVER_SESSION_STATE_CHANGED. */
  readonly sessionStateChanges?: Buffer;
}

/** What {@link encodeOk} needs; every field defaults to zero or empty. */
export type OkPacketInit = Partial<OkPacket>;

/**
 * Decodes an OK packet (header 0x00 or 0xfe). Servers write the info as string<lenenc> whatever the
 * capabilities (the spec's string<EOF> is not what they send) and omit it when it is empty.
 */
export function decodeOk(payload: Buffer, capabilities: number): OkPacket {
  const header = payload[0];
  if (header !== H.OK && header !== H.EOF) throw unexpected("OK", header);
  const reader = new Reader(payload, 1);
  const affectedRows = reader.lenencInt();
  const lastInsertId = reader.lenencInt();
  let statusFlags = 0;
  let warnings = 0;
  if (hasFlag(capabilities, CLIENT_PROTOCOL_41)) {
    statusFlags = reader.uint16();
    warnings = reader.uint16();
  } else if (hasFlag(capabilities, CLIENT_TRANSACTIONS)) {
    statusFlags = reader.uint16();
  }
  const ok: { -readonly [K in keyof OkPacket]: OkPacket[K] } = { eof: header === H.EOF, affectedRows, lastInsertId, statusFlags, warnings, info: "" };
  if (reader.remaining > 0) ok.info = reader.lenencString();
  if (hasFlag(capabilities, CLIENT_SESSION_TRACK) && hasFlag(statusFlags, mysqlServerStatus.SERVER_SESSION_STATE_CHANGED) && reader.remaining > 0) {
    ok.sessionStateChanges = reader.lenencBytes();
  }
  return ok;
}

/** Encodes an OK packet for a client with the given capabilities. */
export function encodeOk(ok: OkPacketInit, capabilities: number): Buffer {
  const statusFlags = ok.statusFlags ?? 0;
  const writer = new Writer()
    .uint8(ok.eof === true ? H.EOF : H.OK)
    .lenencInt(ok.affectedRows ?? 0, "ok.affectedRows")
    .lenencInt(ok.lastInsertId ?? 0, "ok.lastInsertId");
  if (hasFlag(capabilities, CLIENT_PROTOCOL_41)) writer.uint16(statusFlags, "ok.statusFlags").uint16(ok.warnings ?? 0, "ok.warnings");
  else if (hasFlag(capabilities, CLIENT_TRANSACTIONS)) writer.uint16(statusFlags, "ok.statusFlags");
  const state = hasFlag(capabilities, CLIENT_SESSION_TRACK) && hasFlag(statusFlags, mysqlServerStatus.SERVER_SESSION_STATE_CHANGED) ? ok.sessionStateChanges : undefined;
  const info = ok.info ?? "";
  if (info !== "" || state !== undefined) writer.lenencBytes(info);
  if (state !== undefined) writer.lenencBytes(state);
  return writer.finish();
}

/**
 * ERR_Packet.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_err_packet.html
 */
export interface ErrPacket {
  /** Server error number (1045 for access denied). MariaDB's progress reports use 0xffff. */
  readonly code: number;
  /** The 5-character SQLSTATE; absent when the server sent none (errors before the handshake is agreed). */
  readonly sqlState?: string;
  readonly message: string;
}

/** Decodes an ERR packet, with or without the `#` SQLSTATE marker. */
export function decodeErr(payload: Buffer): ErrPacket {
  expectHeader(payload, H.ERR, "ERR");
  const reader = new Reader(payload, 1);
  const code = reader.uint16();
  if (reader.peek() === 0x23 /* # */) {
    reader.skip(1);
    const sqlState = reader.bytes(5).toString("latin1");
    return { code, sqlState, message: reader.restString() };
  }
  return { code, message: reader.restString() };
}

/** Encodes an ERR packet; the SQLSTATE is written when given (clients with CLIENT_PROTOCOL_41 expect it). */
export function encodeErr(error: ErrPacket): Buffer {
  const writer = new Writer().uint8(H.ERR).uint16(error.code, "error.code");
  if (error.sqlState !== undefined) {
    if (!/^[0-9A-Z]{5}$/.test(error.sqlState)) throw new TypeError("error.sqlState must be 5 characters of 0-9 and A-Z");
    writer.bytes("#").bytes(Buffer.from(error.sqlState, "latin1"));
  }
  return writer.bytes(error.message).finish();
}

/**
 * EOF_Packet (without CLIENT_DEPRECATE_EOF).
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_eof_packet.html
 */
export interface EofPacket {
  readonly warnings: number;
  readonly statusFlags: number;
}

/** Decodes an EOF packet (0xfe, shorter than 9 bytes); the 1-byte pre-4.1 form gives zeros. */
export function decodeEof(payload: Buffer): EofPacket {
  expectHeader(payload, H.EOF, "EOF");
  if (payload.length >= 9) throw malformed(`EOF packet has ${payload.length} bytes, not under 9`);
  if (payload.length === 1) return { warnings: 0, statusFlags: 0 };
  const reader = new Reader(payload, 1);
  return { warnings: reader.uint16(), statusFlags: reader.uint16() };
}

/** Encodes an EOF packet (protocol 4.1 form). */
export function encodeEof(eof: EofPacket): Buffer {
  return new Writer().uint8(H.EOF).uint16(eof.warnings, "eof.warnings").uint16(eof.statusFlags, "eof.statusFlags").finish();
}

/** What a server packet is; see {@link classifyResponse}. */
export type MysqlResponseKind =
  | "ok"
  | "err"
  | "eof"
  | "local_infile"
  | "result_set"
  | "row"
  | "auth_switch"
  | "auth_more_data"
  | "auth_next_factor";

/**
 * Where a server packet arrives, which decides how its first byte reads:
 * "auth" after a HandshakeResponse or an auth answer, "command" as the first packet answering a
 * command, "rows" after a result set's column definitions (until its terminator).
 */
export type MysqlResponsePhase = "auth" | "command" | "rows";

/**
 * Classifies a server packet by its first byte, its length and the agreed capabilities.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_query_response.html
 * - auth: 0x00 ok, 0xff err, 0xfe auth_switch, 0x01 auth_more_data, 0x02 auth_next_factor.
 * - command: 0x00 ok, 0xff err, 0xfb local_infile, 0xfe eof (short, without CLIENT_DEPRECATE_EOF)
 *   or ok (with it), anything else result_set (a column count).
 * - rows: 0xff err, 0xfe shorter than 9 bytes eof, or under CLIENT_DEPRECATE_EOF shorter than
 *   0xffffff ok, anything else row (a text row may begin with 0x00 or 0xfb, a binary row with 0x00).
 */
export function classifyResponse(payload: Buffer, capabilities: number, phase: MysqlResponsePhase = "command"): MysqlResponseKind {
  const first = payload[0];
  if (first === undefined) throw malformed("server packet is empty");
  if (first === H.ERR) return "err";
  const deprecateEof = hasFlag(capabilities, CLIENT_DEPRECATE_EOF);
  const terminator = first === H.EOF && (deprecateEof ? payload.length < 0xffffff : payload.length < 9);
  switch (phase) {
    case "auth":
      if (first === H.OK) return "ok";
      if (first === H.EOF) return "auth_switch";
      if (first === H.AuthMoreData) return "auth_more_data";
      if (first === H.AuthNextFactor) return "auth_next_factor";
      throw new WireError("unexpected_message", `authentication reply has header 0x${first.toString(16)}`);
    case "command":
      if (first === H.OK) return "ok";
      if (first === H.LocalInfile) return "local_infile";
      if (terminator) return deprecateEof ? "ok" : "eof";
      return "result_set";
    case "rows":
      if (terminator) return deprecateEof ? "ok" : "eof";
      return "row";
  }
}

// ---- result sets -------------------------------------------------------------------------------

/** Decodes the column count that starts a result set. */
export function decodeColumnCount(payload: Buffer): number {
  return new Reader(payload).lenencLength();
}

/** Encodes the column count that starts a result set. */
export function encodeColumnCount(count: number): Buffer {
  return encodeLenencInt(count, "count");
}

/**
 * Protocol::ColumnDefinition41.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_query_response_text_resultset_column_definition.html
 */
export interface ColumnDefinition41 {
  /** Always `def`. */
  readonly catalog: string;
  readonly schema: string;
  /** The table alias. */
  readonly table: string;
  /** The physical table. */
  readonly orgTable: string;
  /** The column alias, as the client sees it. */
  readonly name: string;
  /** The physical column. */
  readonly orgName: string;
  /** Collation id of the values (63 is binary). */
  readonly characterSet: number;
  /** Maximum display length. */
  readonly columnLength: number;
  /** A {@link mysqlColumnTypes} value. */
  readonly type: number;
  /** {@link mysqlColumnFlags} bits. */
  readonly flags: number;
  readonly decimals: number;
  /** MariaDB's extended type information (raw), present when MARIADB_CLIENT_EXTENDED_METADATA was agreed. */
  readonly extendedMetadata?: Buffer;
}

/** Options of {@link decodeColumnDefinition41}. */
export interface ColumnDefinitionOptions {
  /** MARIADB_CLIENT_EXTENDED_METADATA was agreed: a string<lenenc> follows org_name. */
  readonly extendedMetadata?: boolean;
}

/** Decodes a ColumnDefinition41; the default values COM_FIELD_LIST appends are ignored. */
export function decodeColumnDefinition41(payload: Buffer, options: ColumnDefinitionOptions = {}): ColumnDefinition41 {
  const reader = new Reader(payload);
  const catalog = reader.lenencString();
  const schema = reader.lenencString();
  const table = reader.lenencString();
  const orgTable = reader.lenencString();
  const name = reader.lenencString();
  const orgName = reader.lenencString();
  const extendedMetadata = options.extendedMetadata === true ? reader.lenencBytes() : undefined;
  const fixedLength = reader.lenencLength();
  if (fixedLength < 10) throw malformed(`column definition has ${fixedLength} bytes of fixed fields, not 12`);
  const fixed = new Reader(reader.bytes(fixedLength));
  const column = {
    catalog,
    schema,
    table,
    orgTable,
    name,
    orgName,
    characterSet: fixed.uint16(),
    columnLength: fixed.uint32(),
    type: fixed.uint8(),
    flags: fixed.uint16(),
    decimals: fixed.uint8(),
  };
  return extendedMetadata === undefined ? column : { ...column, extendedMetadata };
}

/** Encodes a ColumnDefinition41 (with MariaDB's extended metadata when the column carries it). */
export function encodeColumnDefinition41(column: ColumnDefinition41): Buffer {
  const writer = new Writer()
    .lenencBytes(column.catalog)
    .lenencBytes(column.schema)
    .lenencBytes(column.table)
    .lenencBytes(column.orgTable)
    .lenencBytes(column.name)
    .lenencBytes(column.orgName);
  if (column.extendedMetadata !== undefined) writer.lenencBytes(column.extendedMetadata);
  return writer
    .lenencInt(12)
    .uint16(column.characterSet, "column.characterSet")
    .uint32(column.columnLength, "column.columnLength")
    .uint8(column.type, "column.type")
    .uint16(column.flags, "column.flags")
    .uint8(column.decimals, "column.decimals")
    .zeros(2)
    .finish();
}

/** A decoded row: one raw value per column (a view into the payload), null for SQL NULL. */
export type MysqlRow = (Buffer | null)[];

/**
 * Decodes a text-protocol row: a string<lenenc> per column, 0xfb for NULL.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_query_response_text_resultset_row.html
 */
export function decodeTextRow(payload: Buffer, columnCount: number): MysqlRow {
  const reader = new Reader(payload);
  const values: MysqlRow = [];
  for (let i = 0; i < columnCount; i++) values.push(reader.lenencBytesOrNull());
  reader.end("text row");
  return values;
}

/** Encodes a text-protocol row; strings are written as UTF-8. */
export function encodeTextRow(values: readonly (Buffer | string | null)[]): Buffer {
  const writer = new Writer();
  for (const value of values) {
    if (value === null) writer.uint8(LENENC_1);
    else writer.lenencBytes(value);
  }
  return writer.finish();
}

/**
 * Decodes a binary-protocol row (the rows of COM_STMT_EXECUTE) into one raw slice per column, so a
 * masking layer can rewrite single values and {@link encodeBinaryRow} can put the row back together.
 * A slice holds the value without its length prefix: the little-endian bytes of a number (1, 2, 4 or
 * 8 bytes by type), the 0/4/7/11 bytes of a DATE/DATETIME/TIMESTAMP, the 0/8/12 bytes of a TIME, the
 * bytes of a string<lenenc> for every other type.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_binary_resultset.html
 */
export function decodeBinaryRow(payload: Buffer, columnTypes: readonly number[]): MysqlRow {
  expectHeader(payload, H.OK, "binary row");
  const reader = new Reader(payload, 1);
  // The NULL bitmap of a result row is offset by 2 bits.
  const bitmap = reader.bytes(Math.floor((columnTypes.length + 7 + 2) / 8));
  const values: MysqlRow = [];
  for (const [index, type] of columnTypes.entries()) {
    values.push(isNull(bitmap, index + 2) ? null : readBinaryValue(reader, type));
  }
  reader.end("binary row");
  return values;
}

/** Encodes a binary-protocol row from raw slices as {@link decodeBinaryRow} gives them; a slice of the wrong size is a TypeError. */
export function encodeBinaryRow(columnTypes: readonly number[], values: readonly (Buffer | null)[]): Buffer {
  if (values.length !== columnTypes.length) throw new TypeError(`values has ${values.length} entries for ${columnTypes.length} columns`);
  const bitmap = Buffer.alloc(Math.floor((columnTypes.length + 7 + 2) / 8));
  const writer = new Writer().uint8(H.OK).bytes(bitmap);
  for (const [index, type] of columnTypes.entries()) {
    const value = values[index] ?? null;
    if (value === null) setBit(bitmap, index + 2);
    else writeBinaryValue(writer, type, value, `values[${index}]`);
  }
  return writer.finish();
}

/** Fixed sizes of binary-protocol numbers by column type. */
const FIXED_SIZES: ReadonlyMap<number, number> = new Map([
  [T.MYSQL_TYPE_TINY, 1],
  [T.MYSQL_TYPE_SHORT, 2],
  [T.MYSQL_TYPE_YEAR, 2],
  [T.MYSQL_TYPE_LONG, 4],
  [T.MYSQL_TYPE_INT24, 4],
  [T.MYSQL_TYPE_FLOAT, 4],
  [T.MYSQL_TYPE_LONGLONG, 8],
  [T.MYSQL_TYPE_DOUBLE, 8],
  [T.MYSQL_TYPE_NULL, 0],
]);

/** Allowed lengths of binary-protocol temporal values by column type. */
const TEMPORAL_SIZES: ReadonlyMap<number, readonly number[]> = new Map([
  [T.MYSQL_TYPE_DATE, [0, 4, 7, 11]],
  [T.MYSQL_TYPE_DATETIME, [0, 4, 7, 11]],
  [T.MYSQL_TYPE_TIMESTAMP, [0, 4, 7, 11]],
  [T.MYSQL_TYPE_TIME, [0, 8, 12]],
]);

/**
 * Reads one binary-protocol value of a column type, as {@link decodeBinaryRow} describes it.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_binary_resultset.html#sect_protocol_binary_resultset_row_value
 */
export function readBinaryValue(reader: Reader, type: number): Buffer {
  const fixed = FIXED_SIZES.get(type);
  if (fixed !== undefined) return reader.bytes(fixed);
  const temporal = TEMPORAL_SIZES.get(type);
  if (temporal !== undefined) {
    const length = reader.uint8();
    if (!temporal.includes(length)) throw malformed(`${mysqlColumnTypeName(type)} value has length ${length}, not one of ${temporal.join(", ")}`);
    return reader.bytes(length);
  }
  return reader.lenencBytes();
}

function writeBinaryValue(writer: Writer, type: number, value: Buffer, name: string): void {
  const fixed = FIXED_SIZES.get(type);
  if (fixed !== undefined) {
    if (value.length !== fixed) throw new TypeError(`${name} must be ${fixed} bytes for ${mysqlColumnTypeName(type)}`);
    writer.bytes(value);
    return;
  }
  const temporal = TEMPORAL_SIZES.get(type);
  if (temporal !== undefined) {
    if (!temporal.includes(value.length)) throw new TypeError(`${name} must be ${temporal.join(", ")} bytes for ${mysqlColumnTypeName(type)}`);
    writer.uint8(value.length).bytes(value);
    return;
  }
  writer.lenencBytes(value);
}

// ---- prepared statements -----------------------------------------------------------------------

/**
 * COM_STMT_PREPARE_OK, the first packet answering COM_STMT_PREPARE; numParams parameter definitions
 * and numColumns column definitions follow (each block ended by an EOF without CLIENT_DEPRECATE_EOF).
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_stmt_prepare.html
 */
export interface StmtPrepareOk {
  readonly statementId: number;
  readonly numColumns: number;
  readonly numParams: number;
  readonly warnings: number;
}

/** Decodes COM_STMT_PREPARE_OK. */
export function decodeStmtPrepareOk(payload: Buffer): StmtPrepareOk {
  expectHeader(payload, H.OK, "COM_STMT_PREPARE_OK");
  const reader = new Reader(payload, 1);
  const statementId = reader.uint32();
  const numColumns = reader.uint16();
  const numParams = reader.uint16();
  reader.skip(1);
  const warnings = reader.remaining >= 2 ? reader.uint16() : 0;
  return { statementId, numColumns, numParams, warnings };
}

/** Encodes COM_STMT_PREPARE_OK. */
export function encodeStmtPrepareOk(ok: StmtPrepareOk): Buffer {
  return new Writer()
    .uint8(H.OK)
    .uint32(ok.statementId, "ok.statementId")
    .uint16(ok.numColumns, "ok.numColumns")
    .uint16(ok.numParams, "ok.numParams")
    .uint8(0)
    .uint16(ok.warnings, "ok.warnings")
    .finish();
}

/**
 * The fixed head of COM_STMT_EXECUTE, enough to route it; {@link decodeStmtExecuteParameters}
 * decodes the rest with the statement's parameter count, which the caller tracks.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_stmt_execute.html
 */
export interface StmtExecuteHeader {
  readonly statementId: number;
  /** {@link mysqlCursorTypes} bits. */
  readonly flags: number;
  /** Always 1. */
  readonly iterationCount: number;
  /** The rest of the packet (NULL bitmap, new-params-bound flag, types, values), a view. */
  readonly parameters: Buffer;
}

/** Decodes the head of COM_STMT_EXECUTE. */
export function decodeStmtExecuteHeader(payload: Buffer): StmtExecuteHeader {
  expectHeader(payload, mysqlCommands.COM_STMT_EXECUTE, "COM_STMT_EXECUTE");
  const reader = new Reader(payload, 1);
  return { statementId: reader.uint32(), flags: reader.uint8(), iterationCount: reader.uint32(), parameters: reader.restBytes() };
}

/** Options of {@link decodeStmtExecuteParameters}: what the caller tracks per statement. */
export interface StmtExecuteOptions {
  /** The types the previous COM_STMT_EXECUTE of this statement sent, used when this one does not resend them. */
  readonly previousTypes?: readonly number[];
  /** Indexes of parameters sent with COM_STMT_SEND_LONG_DATA: their values are not in the packet. */
  readonly longData?: ReadonlySet<number>;
}

/** The parameters of COM_STMT_EXECUTE. */
export interface StmtExecuteParameters {
  /** Whether the client sent the types (new_params_bind_flag) rather than reusing the previous ones. */
  readonly newParamsBound: boolean;
  /** One int<2> per parameter: the column type in the low byte, 0x80 in the high byte for unsigned. */
  readonly types: readonly number[];
  /** Query attribute names under CLIENT_QUERY_ATTRIBUTES (empty strings for plain parameters); else empty. */
  readonly names: readonly string[];
  /** Raw binary values as {@link decodeBinaryRow} gives them; null for NULL and for long-data parameters. */
  readonly values: MysqlRow;
}

/**
 * Decodes the parameters of COM_STMT_EXECUTE, given the statement's parameter count from its
 * COM_STMT_PREPARE_OK. Under CLIENT_QUERY_ATTRIBUTES the client states the count itself (query
 * attributes follow the parameters) and names each one.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_stmt_execute.html
 */
export function decodeStmtExecuteParameters(payload: Buffer, numParams: number, capabilities: number, options: StmtExecuteOptions = {}): StmtExecuteParameters {
  const header = decodeStmtExecuteHeader(payload);
  const reader = new Reader(header.parameters);
  const attributes = hasFlag(capabilities, CLIENT_QUERY_ATTRIBUTES);
  if (!(numParams > 0 || (attributes && hasFlag(header.flags, mysqlCursorTypes.PARAMETER_COUNT_AVAILABLE)))) {
    reader.end("COM_STMT_EXECUTE");
    return { newParamsBound: false, types: [], names: [], values: [] };
  }
  const count = attributes ? reader.lenencLength() : numParams;
  if (count < numParams) throw malformed(`COM_STMT_EXECUTE has ${count} parameters, the statement ${numParams}`);
  const bitmap = reader.bytes(Math.floor((count + 7) / 8));
  const newParamsBound = reader.uint8() === 1;
  let types: number[] = [];
  const names: string[] = [];
  if (newParamsBound) {
    for (let i = 0; i < count; i++) {
      types.push(reader.uint16());
      if (attributes) names.push(reader.lenencString());
    }
  } else {
    if (options.previousTypes?.length !== count) throw malformed("COM_STMT_EXECUTE reuses parameter types that were never sent");
    types = [...options.previousTypes];
  }
  const values: MysqlRow = types.map((type, index) =>
    isNull(bitmap, index) || options.longData?.has(index) === true ? null : readBinaryValue(reader, type & 0xff),
  );
  reader.end("COM_STMT_EXECUTE");
  return { newParamsBound, types, names, values };
}

/** The statement id of COM_STMT_EXECUTE, COM_STMT_CLOSE, COM_STMT_RESET, COM_STMT_SEND_LONG_DATA or COM_STMT_FETCH. */
export function decodeStatementId(payload: Buffer): number {
  const command = payload[0];
  const { COM_STMT_EXECUTE, COM_STMT_CLOSE, COM_STMT_RESET, COM_STMT_SEND_LONG_DATA, COM_STMT_FETCH, COM_STMT_BULK_EXECUTE } = mysqlCommands;
  const known: readonly number[] = [COM_STMT_EXECUTE, COM_STMT_CLOSE, COM_STMT_RESET, COM_STMT_SEND_LONG_DATA, COM_STMT_FETCH, COM_STMT_BULK_EXECUTE];
  if (command === undefined || !known.includes(command)) throw unexpected("statement command", command);
  return new Reader(payload, 1).uint32();
}

// ---- commands ----------------------------------------------------------------------------------

/** The command byte of a client packet in the command phase. */
export function commandOf(payload: Buffer): number {
  const command = payload[0];
  if (command === undefined) throw malformed("command packet is empty");
  return command;
}

/** Encodes a command: its byte and body (a string as UTF-8). */
export function encodeCommand(command: number, body: Buffer | string = EMPTY): Buffer {
  return new Writer().uint8(command, "command").bytes(body).finish();
}

/**
 * The SQL text of COM_QUERY. With CLIENT_QUERY_ATTRIBUTES the text follows the attributes (count,
 * set count, NULL bitmap, types and names, binary values), which are skipped.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_query.html
 */
export function decodeComQuery(payload: Buffer, capabilities = 0): string {
  expectHeader(payload, mysqlCommands.COM_QUERY, "COM_QUERY");
  const reader = new Reader(payload, 1);
  if (hasFlag(capabilities, CLIENT_QUERY_ATTRIBUTES)) {
    const count = reader.lenencLength();
    reader.lenencLength(); // parameter_set_count, always 1
    if (count > 0) {
      const bitmap = reader.bytes(Math.floor((count + 7) / 8));
      if (reader.uint8() !== 1) throw malformed("COM_QUERY attributes come without their types");
      const types: number[] = [];
      for (let i = 0; i < count; i++) {
        types.push(reader.uint16() & 0xff);
        reader.lenencBytes(); // the attribute's name
      }
      for (const [index, type] of types.entries()) if (!isNull(bitmap, index)) readBinaryValue(reader, type);
    }
  }
  return reader.restString();
}

/** Encodes COM_QUERY; with CLIENT_QUERY_ATTRIBUTES agreed, an empty attribute list goes first. */
export function encodeComQuery(sql: string, capabilities = 0): Buffer {
  const writer = new Writer().uint8(mysqlCommands.COM_QUERY);
  if (hasFlag(capabilities, CLIENT_QUERY_ATTRIBUTES)) writer.lenencInt(0).lenencInt(1);
  return writer.bytes(sql).finish();
}

/** The SQL text of COM_STMT_PREPARE. */
export function decodeComStmtPrepare(payload: Buffer): string {
  expectHeader(payload, mysqlCommands.COM_STMT_PREPARE, "COM_STMT_PREPARE");
  return payload.toString("utf8", 1);
}

/** The schema name of COM_INIT_DB. */
export function decodeComInitDb(payload: Buffer): string {
  expectHeader(payload, mysqlCommands.COM_INIT_DB, "COM_INIT_DB");
  return payload.toString("utf8", 1);
}

// ---- helpers -----------------------------------------------------------------------------------

/** Whether a capability or status bit is set in a 32-bit set. */
export function hasFlag(flags: number, flag: number): boolean {
  return (flags & flag) !== 0;
}

function isNull(bitmap: Buffer, bit: number): boolean {
  return ((bitmap[bit >> 3] ?? 0) & (1 << (bit & 7))) !== 0;
}

function setBit(bitmap: Buffer, bit: number): void {
  bitmap[bit >> 3] = (bitmap[bit >> 3] ?? 0) | (1 << (bit & 7));
}

function lowerHalf(capabilities: number, name: string): number {
  checkUint(capabilities, 0xffffffff, name);
  return capabilities & 0xffff;
}

function checkUint(value: number, max: number, name: string): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new TypeError(`${name} must be an integer in 0..${max}`);
}

function toUint64(value: number | bigint, name: string): bigint {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`${name} must be a non-negative safe integer or a bigint`);
    return BigInt(value);
  }
  if (value < 0n || value > 0xffffffffffffffffn) throw new TypeError(`${name} must fit in 64 unsigned bits`);
  return value;
}

function expectHeader(payload: Buffer, header: number, what: string): void {
  if (payload[0] !== header) throw unexpected(what, payload[0]);
}

function unexpected(what: string, header: number | undefined): WireError {
  return new WireError("unexpected_message", `expected ${what}, got a packet with header ${header === undefined ? "(empty)" : `0x${header.toString(16)}`}`);
}

function malformed(message: string): WireError {
  return new WireError("malformed_message", message);
}
