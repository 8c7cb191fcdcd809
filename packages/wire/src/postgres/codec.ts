import { WireError } from "../errors.js";
import { authCodes, backend, frontend, startupCodes } from "./messages.js";

/** The first, untyped message of a connection. */
export type StartupRequest =
  | { readonly kind: "startup"; readonly version: number; readonly parameters: ReadonlyMap<string, string> }
  | { readonly kind: "ssl" }
  | { readonly kind: "gssenc" }
  | { readonly kind: "cancel"; readonly processId: number; readonly secretKey: Buffer };

/** Decodes a StartupMessage, SSLRequest, GSSENCRequest or CancelRequest (whole message, length included). */
export function decodeStartup(bytes: Buffer): StartupRequest {
  const code = bytes.readInt32BE(4);
  switch (code) {
    case startupCodes.SSLRequest:
      expectLength(bytes, 8, "SSLRequest");
      return { kind: "ssl" };
    case startupCodes.GSSENCRequest:
      expectLength(bytes, 8, "GSSENCRequest");
      return { kind: "gssenc" };
    case startupCodes.CancelRequest:
      // Protocol 3.2 allows a secret key of up to 256 bytes; 3.0 has 4.
      if (bytes.length < 16 || bytes.length > 12 + 256) throw malformed("CancelRequest has a bad length");
      return { kind: "cancel", processId: bytes.readInt32BE(8), secretKey: Buffer.from(bytes.subarray(12)) };
    default: {
      if (code >> 16 !== 3) throw new WireError("unsupported_protocol", `protocol version ${code >> 16}.${code & 0xffff} is not supported`);
      const reader = new Reader(bytes, 8);
      const parameters = new Map<string, string>();
      for (;;) {
        const key = reader.cstring();
        if (key === "") break;
        parameters.set(key, reader.cstring());
      }
      return { kind: "startup", version: code, parameters };
    }
  }
}

/** Fields of an ErrorResponse or NoticeResponse by their one-letter code (S, V, C, M, D, H, P, ...). */
export type PgErrorFields = Readonly<Record<string, string>>;

/**
 * Decodes the fields of an ErrorResponse or NoticeResponse. Every field is optional on the wire, so
 * callers must not assume any (a backend ErrorResponse with missing fields is a known crash of other
 * proxies); a truncated field list keeps what was read.
 */
export function decodeErrorFields(bytes: Buffer): PgErrorFields {
  const fields: Record<string, string> = {};
  let offset = 5;
  while (offset < bytes.length) {
    const type = bytes[offset];
    if (type === 0 || type === undefined) break;
    const end = bytes.indexOf(0, offset + 1);
    if (end === -1) break;
    fields[String.fromCharCode(type)] = bytes.toString("utf8", offset + 1, end);
    offset = end + 1;
  }
  return fields;
}

/** An Authentication request from the server: its subtype and the bytes after it. */
export interface PgAuthentication {
  readonly type: number;
  readonly data: Buffer;
}

/** Decodes an Authentication message (code 'R'). */
export function decodeAuthentication(bytes: Buffer): PgAuthentication {
  if (bytes.length < 9) throw malformed("Authentication message is too short");
  return { type: bytes.readInt32BE(5), data: bytes.subarray(9) };
}

/** Decodes a ParameterStatus message. */
export function decodeParameterStatus(bytes: Buffer): { name: string; value: string } {
  const reader = new Reader(bytes, 5);
  return { name: reader.cstring(), value: reader.cstring() };
}

/** Decodes a BackendKeyData message. */
export function decodeBackendKeyData(bytes: Buffer): { processId: number; secretKey: Buffer } {
  if (bytes.length < 13) throw malformed("BackendKeyData is too short");
  return { processId: bytes.readInt32BE(5), secretKey: Buffer.from(bytes.subarray(9)) };
}

/** Transaction status of a ReadyForQuery: I (idle), T (in a transaction), E (failed transaction). */
export function decodeReadyForQuery(bytes: Buffer): "I" | "T" | "E" {
  const status = String.fromCharCode(bytes[5] ?? 0);
  if (status !== "I" && status !== "T" && status !== "E") throw malformed(`ReadyForQuery has status ${JSON.stringify(status)}`);
  return status;
}

/** Decodes a Query message's SQL text. */
export function decodeQuery(bytes: Buffer): string {
  return new Reader(bytes, 5).cstring();
}

/** Decodes a Parse message. */
export function decodeParse(bytes: Buffer): { name: string; query: string; parameterTypes: number[] } {
  const reader = new Reader(bytes, 5);
  const name = reader.cstring();
  const query = reader.cstring();
  const count = reader.int16();
  const parameterTypes: number[] = [];
  for (let i = 0; i < count; i++) parameterTypes.push(reader.int32());
  return { name, query, parameterTypes };
}

/** Decodes the names in a Bind message (parameters are left in the bytes). */
export function decodeBindNames(bytes: Buffer): { portal: string; statement: string } {
  const reader = new Reader(bytes, 5);
  return { portal: reader.cstring(), statement: reader.cstring() };
}

/** A Bind message in full: names, parameter values (null for SQL NULL) with their formats, result formats. */
export interface PgBind {
  readonly portal: string;
  readonly statement: string;
  readonly parameterFormats: readonly number[];
  readonly parameters: readonly (Buffer | null)[];
  readonly resultFormats: readonly number[];
}

/** Decodes a Bind message, parameters included; every length is checked against the message. */
export function decodeBind(bytes: Buffer): PgBind {
  const reader = new Reader(bytes, 5);
  const portal = reader.cstring();
  const statement = reader.cstring();
  const parameterFormats: number[] = [];
  for (let i = reader.int16(); i > 0; i--) parameterFormats.push(reader.int16());
  const parameters: (Buffer | null)[] = [];
  for (let i = reader.int16(); i > 0; i--) {
    const length = reader.int32();
    parameters.push(length === -1 ? null : reader.bytes(length));
  }
  const resultFormats: number[] = [];
  for (let i = reader.int16(); i > 0; i--) resultFormats.push(reader.int16());
  return { portal, statement, parameterFormats, parameters, resultFormats };
}

/** A column of a RowDescription. */
export interface PgField {
  readonly name: string;
  readonly tableOid: number;
  readonly column: number;
  readonly typeOid: number;
  /** atttypmod: varchar(n), numeric(p, s)...; -1 for none. */
  readonly typeModifier: number;
  readonly format: number;
}

/** Decodes a RowDescription. */
export function decodeRowDescription(bytes: Buffer): PgField[] {
  const reader = new Reader(bytes, 5);
  const fields: PgField[] = [];
  for (let i = reader.int16(); i > 0; i--) {
    const name = reader.cstring();
    const tableOid = reader.int32() >>> 0;
    const column = reader.int16();
    const typeOid = reader.int32() >>> 0;
    reader.int16();
    const typeModifier = reader.int32();
    fields.push({ name, tableOid, column, typeOid, typeModifier, format: reader.int16() });
  }
  return fields;
}

/** Decodes a DataRow into its values (views into the message; null for SQL NULL). */
export function decodeDataRow(bytes: Buffer): (Buffer | null)[] {
  const reader = new Reader(bytes, 5);
  const values: (Buffer | null)[] = [];
  for (let i = reader.int16(); i > 0; i--) {
    const length = reader.int32();
    values.push(length === -1 ? null : reader.bytes(length));
  }
  return values;
}

/** Decodes a CommandComplete's tag (e.g. `SELECT 3`). */
export function decodeCommandComplete(bytes: Buffer): string {
  return new Reader(bytes, 5).cstring();
}

/** Decodes an Execute message. */
export function decodeExecute(bytes: Buffer): { portal: string; maxRows: number } {
  const reader = new Reader(bytes, 5);
  return { portal: reader.cstring(), maxRows: reader.int32() };
}

/** Decodes a Describe or Close message: 'S' (statement) or 'P' (portal) and the name. */
export function decodeTarget(bytes: Buffer): { target: "S" | "P"; name: string } {
  const reader = new Reader(bytes, 5);
  const target = String.fromCharCode(reader.byte());
  if (target !== "S" && target !== "P") throw malformed(`Describe/Close target ${JSON.stringify(target)} is not S or P`);
  return { target, name: reader.cstring() };
}

// ---- encoders ----------------------------------------------------------------------------------

/** Encodes a typed message from its code and body parts. */
export function encodeMessage(code: number, ...parts: Buffer[]): Buffer {
  let length = 4;
  for (const part of parts) length += part.length;
  const out = Buffer.allocUnsafe(length + 1);
  out[0] = code;
  out.writeInt32BE(length, 1);
  let offset = 5;
  for (const part of parts) offset += part.copy(out, offset);
  return out;
}

function cstring(value: string): Buffer {
  return Buffer.from(`${value}\0`, "utf8");
}

function int32(value: number): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeInt32BE(value);
  return out;
}

/** Encodes a StartupMessage (protocol 3.0). */
export function encodeStartupMessage(parameters: Iterable<readonly [string, string]>): Buffer {
  const parts = [int32(startupCodes.ProtocolVersion3)];
  for (const [key, value] of parameters) parts.push(cstring(key), cstring(value));
  parts.push(Buffer.from([0]));
  const body = Buffer.concat(parts);
  return Buffer.concat([int32(body.length + 4), body]);
}

/** Encodes an SSLRequest. */
export function encodeSSLRequest(): Buffer {
  return Buffer.concat([int32(8), int32(startupCodes.SSLRequest)]);
}

/** Encodes a CancelRequest. */
export function encodeCancelRequest(processId: number, secretKey: Buffer): Buffer {
  return Buffer.concat([int32(12 + secretKey.length), int32(startupCodes.CancelRequest), int32(processId), secretKey]);
}

/** Encodes ErrorResponse ('E') or NoticeResponse ('N') from fields. */
export function encodeErrorFields(code: typeof backend.ErrorResponse | typeof backend.NoticeResponse, fields: PgErrorFields): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of Object.entries(fields)) parts.push(Buffer.from(key, "latin1"), cstring(value));
  parts.push(Buffer.from([0]));
  return encodeMessage(code, ...parts);
}

/** Encodes an ErrorResponse with severity, SQLSTATE and message (and optional detail/hint). */
export function encodeErrorResponse(sqlstate: string, message: string, extra: { severity?: "ERROR" | "FATAL"; detail?: string; hint?: string } = {}): Buffer {
  const severity = extra.severity ?? "ERROR";
  const fields: Record<string, string> = { S: severity, V: severity, C: sqlstate, M: message };
  if (extra.detail !== undefined) fields.D = extra.detail;
  if (extra.hint !== undefined) fields.H = extra.hint;
  return encodeErrorFields(backend.ErrorResponse, fields);
}

/** Encodes a NoticeResponse with severity NOTICE. */
export function encodeNotice(message: string, detail?: string): Buffer {
  const fields: Record<string, string> = { S: "NOTICE", V: "NOTICE", C: "00000", M: message };
  if (detail !== undefined) fields.D = detail;
  return encodeErrorFields(backend.NoticeResponse, fields);
}

/** Encodes an Authentication request of the given subtype. */
export function encodeAuthentication(type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  return encodeMessage(backend.Authentication, int32(type), data);
}

/** AuthenticationOk. */
export function encodeAuthenticationOk(): Buffer {
  return encodeAuthentication(authCodes.Ok);
}

/** Encodes a BackendKeyData message. */
export function encodeBackendKeyData(processId: number, secretKey: Buffer): Buffer {
  return encodeMessage(backend.BackendKeyData, int32(processId), secretKey);
}

/** Encodes a ParameterStatus message. */
export function encodeParameterStatus(name: string, value: string): Buffer {
  return encodeMessage(backend.ParameterStatus, cstring(name), cstring(value));
}

/** Encodes a ReadyForQuery message. */
export function encodeReadyForQuery(status: "I" | "T" | "E"): Buffer {
  return encodeMessage(backend.ReadyForQuery, Buffer.from(status, "latin1"));
}

/** Encodes a PasswordMessage (cleartext or md5). */
export function encodePasswordMessage(password: string): Buffer {
  return encodeMessage(frontend.PasswordMessage, cstring(password));
}

/** Encodes a SASLInitialResponse. */
export function encodeSASLInitialResponse(mechanism: string, data: Buffer): Buffer {
  return encodeMessage(frontend.PasswordMessage, cstring(mechanism), int32(data.length), data);
}

/** Encodes a SASLResponse. */
export function encodeSASLResponse(data: Buffer): Buffer {
  return encodeMessage(frontend.PasswordMessage, data);
}

/** Encodes a simple Query. */
export function encodeQuery(sql: string): Buffer {
  return encodeMessage(frontend.Query, cstring(sql));
}

/** Encodes a Terminate. */
export function encodeTerminate(): Buffer {
  return encodeMessage(frontend.Terminate);
}

// ---- reader ------------------------------------------------------------------------------------

function expectLength(bytes: Buffer, length: number, name: string): void {
  if (bytes.length !== length) throw malformed(`${name} has length ${bytes.length}, not ${length}`);
}

function malformed(message: string): WireError {
  return new WireError("malformed_message", message);
}

/** Bounds-checked reader over one message; running past the end is a malformed message. */
class Reader {
  readonly #bytes: Buffer;
  #offset: number;

  constructor(bytes: Buffer, offset: number) {
    this.#bytes = bytes;
    this.#offset = offset;
  }

  cstring(): string {
    const end = this.#bytes.indexOf(0, this.#offset);
    if (end === -1) throw malformed("string is not terminated");
    const value = this.#bytes.toString("utf8", this.#offset, end);
    this.#offset = end + 1;
    return value;
  }

  byte(): number {
    this.#need(1);
    return this.#bytes[this.#offset++] ?? 0;
  }

  bytes(count: number): Buffer {
    if (count < 0) throw malformed("negative length");
    this.#need(count);
    const value = this.#bytes.subarray(this.#offset, this.#offset + count);
    this.#offset += count;
    return value;
  }

  int16(): number {
    this.#need(2);
    const value = this.#bytes.readInt16BE(this.#offset);
    this.#offset += 2;
    return value;
  }

  int32(): number {
    this.#need(4);
    const value = this.#bytes.readInt32BE(this.#offset);
    this.#offset += 4;
    return value;
  }

  #need(count: number): void {
    if (this.#offset + count > this.#bytes.length) throw malformed("message ends early");
  }
}
