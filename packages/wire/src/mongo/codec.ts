import { constants as zlibConstants, deflateSync, inflateSync } from "node:zlib";
import { deserialize, serialize, type DeserializeOptions, type Document, type SerializeOptions } from "bson";
import { WireError } from "../errors.js";
import { crc32c } from "./crc32c.js";
import { MONGO_HEADER_BYTES } from "./framer.js";
import { mongoCompressorName, mongoCompressors, mongoOpcodeName, mongoOpcodes, opMsgFlags, opMsgSectionKinds } from "./messages.js";

export type { Document } from "bson";
export { crc32c } from "./crc32c.js";

/** The standard message header. https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/#standard-message-header */
export interface MongoHeader {
  readonly messageLength: number;
  readonly requestID: number;
  readonly responseTo: number;
  readonly opCode: number;
}

/** OP_MSG section of kind 0: the command or reply document. */
export interface OpMsgBodySection {
  readonly kind: 0;
  readonly document: Document;
}

/** OP_MSG section of kind 1: documents that belong to the body's field named `identifier` (e.g. insert's `documents`). */
export interface OpMsgDocumentSequence {
  readonly kind: 1;
  readonly identifier: string;
  readonly documents: readonly Document[];
}

/** A section of an OP_MSG. */
export type OpMsgSection = OpMsgBodySection | OpMsgDocumentSequence;

/** A decoded OP_MSG. https://github.com/mongodb/specifications/blob/master/source/message/OP_MSG.md */
export interface OpMsg {
  readonly opCode: typeof mongoOpcodes.OP_MSG;
  readonly requestID: number;
  readonly responseTo: number;
  readonly flagBits: number;
  /** Exactly one body section, in wire order among the document sequences. */
  readonly sections: readonly OpMsgSection[];
  /** The CRC-32C that was present and verified, if the checksumPresent flag was set. */
  readonly checksum?: number;
}

/** A decoded OP_QUERY (legacy; the hello/isMaster handshake). https://www.mongodb.com/docs/manual/legacy-opcodes/#op_query */
export interface OpQuery {
  readonly opCode: typeof mongoOpcodes.OP_QUERY;
  readonly requestID: number;
  readonly responseTo: number;
  readonly flags: number;
  /** "database.collection"; "admin.$cmd" for a command. */
  readonly fullCollectionName: string;
  readonly numberToSkip: number;
  readonly numberToReturn: number;
  readonly query: Document;
  readonly returnFieldsSelector?: Document;
}

/** A decoded OP_REPLY. https://www.mongodb.com/docs/manual/legacy-opcodes/#op_reply */
export interface OpReply {
  readonly opCode: typeof mongoOpcodes.OP_REPLY;
  readonly requestID: number;
  readonly responseTo: number;
  readonly responseFlags: number;
  readonly cursorID: bigint;
  readonly startingFrom: number;
  readonly documents: readonly Document[];
}

/** A decoded OP_COMPRESSED header; {@link decompressMessage} gives the message it wraps. */
export interface OpCompressed {
  readonly opCode: typeof mongoOpcodes.OP_COMPRESSED;
  readonly requestID: number;
  readonly responseTo: number;
  readonly originalOpcode: number;
  /** Size of the wrapped message without its header. */
  readonly uncompressedSize: number;
  readonly compressorId: number;
  /** A view into the message bytes. */
  readonly compressedMessage: Buffer;
}

/** Any message this codec decodes. */
export type MongoFrame = OpMsg | OpQuery | OpReply | OpCompressed;

/** Options of the decoders. */
export interface MongoDecodeOptions {
  /** Passed to bson's deserialize for every document (e.g. promoteValues: false to keep Int32/Double wrappers). */
  readonly bson?: DeserializeOptions;
}

/** Options of the encoders. */
export interface MongoEncodeOptions {
  /** Passed to bson's serialize for every document that is not already bytes. */
  readonly bson?: SerializeOptions;
}

/** A document to encode: a value for bson to serialize, or a BSON document already serialized. */
export type DocumentInput = Document | Uint8Array;

/** Reads the standard header of a message (at least 16 bytes). */
export function decodeHeader(bytes: Buffer): MongoHeader {
  if (bytes.length < MONGO_HEADER_BYTES) throw malformed(`message of ${bytes.length} bytes is shorter than its header`);
  return {
    messageLength: bytes.readInt32LE(0),
    requestID: bytes.readInt32LE(4),
    responseTo: bytes.readInt32LE(8),
    opCode: bytes.readInt32LE(12),
  };
}

/**
 * Decodes one whole message (as a framer returns it). Throws WireError on an opcode this codec does
 * not know ("unexpected_message"), one that MongoDB removed ("unsupported_protocol"), a length that
 * disagrees with the bytes, or malformed BSON ("malformed_message").
 */
export function decodeMessage(bytes: Buffer, options: MongoDecodeOptions = {}): MongoFrame {
  const header = checkedHeader(bytes);
  switch (header.opCode) {
    case mongoOpcodes.OP_MSG:
      return decodeBodyOpMsg(bytes, header, options);
    case mongoOpcodes.OP_QUERY:
      return decodeBodyOpQuery(bytes, header, options);
    case mongoOpcodes.OP_REPLY:
      return decodeBodyOpReply(bytes, header, options);
    case mongoOpcodes.OP_COMPRESSED:
      return decodeBodyOpCompressed(bytes, header);
    default:
      throw opcodeError(header.opCode);
  }
}

/** Decodes an OP_MSG, verifying its checksum when one is present. */
export function decodeOpMsg(bytes: Buffer, options: MongoDecodeOptions = {}): OpMsg {
  return decodeBodyOpMsg(bytes, expectOpcode(bytes, mongoOpcodes.OP_MSG), options);
}

/** Decodes an OP_QUERY. */
export function decodeOpQuery(bytes: Buffer, options: MongoDecodeOptions = {}): OpQuery {
  return decodeBodyOpQuery(bytes, expectOpcode(bytes, mongoOpcodes.OP_QUERY), options);
}

/** Decodes an OP_REPLY. */
export function decodeOpReply(bytes: Buffer, options: MongoDecodeOptions = {}): OpReply {
  return decodeBodyOpReply(bytes, expectOpcode(bytes, mongoOpcodes.OP_REPLY), options);
}

/** Decodes the header fields of an OP_COMPRESSED; the payload stays compressed. */
export function decodeOpCompressed(bytes: Buffer): OpCompressed {
  return decodeBodyOpCompressed(bytes, expectOpcode(bytes, mongoOpcodes.OP_COMPRESSED));
}

/** Options of {@link decompressMessage}. */
export interface MongoDecompressOptions {
  /** Largest accepted message once decompressed, header included; checked before inflating. */
  readonly maxMessageBytes: number;
}

/**
 * The message an OP_COMPRESSED wraps, as whole bytes with a standard header (same requestID and
 * responseTo, the original opcode), ready for {@link decodeMessage}. noop and zlib are supported;
 * snappy and zstd are refused ("unsupported compressor"): a gateway removes them from the handshake.
 */
export function decompressMessage(message: Buffer | OpCompressed, options: MongoDecompressOptions): Buffer {
  const frame = Buffer.isBuffer(message) ? decodeOpCompressed(message) : message;
  const total = frame.uncompressedSize + MONGO_HEADER_BYTES;
  if (total > options.maxMessageBytes) {
    throw new WireError("message_too_large", `decompressed message of ${total} bytes is over the maximum of ${options.maxMessageBytes}`);
  }
  const out = Buffer.allocUnsafe(total);
  out.writeInt32LE(total, 0);
  out.writeInt32LE(frame.requestID, 4);
  out.writeInt32LE(frame.responseTo, 8);
  out.writeInt32LE(frame.originalOpcode, 12);
  switch (frame.compressorId) {
    case mongoCompressors.noop:
      if (frame.compressedMessage.length !== frame.uncompressedSize) {
        throw malformed(`noop OP_COMPRESSED carries ${frame.compressedMessage.length} bytes, not its uncompressedSize of ${frame.uncompressedSize}`);
      }
      frame.compressedMessage.copy(out, MONGO_HEADER_BYTES);
      return out;
    case mongoCompressors.zlib: {
      let body: Buffer;
      try {
        // maxOutputLength stops a small input from inflating past what it announced.
        body = inflateSync(frame.compressedMessage, { maxOutputLength: Math.max(1, frame.uncompressedSize) });
      } catch (error) {
        throw new WireError("malformed_message", "OP_COMPRESSED zlib payload does not inflate to its uncompressedSize", { cause: error });
      }
      if (body.length !== frame.uncompressedSize) {
        throw malformed(`OP_COMPRESSED inflated to ${body.length} bytes, not its uncompressedSize of ${frame.uncompressedSize}`);
      }
      body.copy(out, MONGO_HEADER_BYTES);
      return out;
    }
    default: {
      const name = mongoCompressorName(frame.compressorId);
      throw new WireError("unsupported_protocol", `unsupported compressor \`${name ?? frame.compressorId}\``);
    }
  }
}

/** Fields of an OP_MSG to encode. */
export interface OpMsgInput {
  readonly requestID: number;
  readonly responseTo?: number;
  /** moreToCome and exhaustAllowed; checksumPresent is set by `checksum`. */
  readonly flagBits?: number;
  /** The body document. */
  readonly body: DocumentInput;
  /** Document sequences, written after the body in this order. */
  readonly sequences?: readonly { readonly identifier: string; readonly documents: readonly DocumentInput[] }[];
  /** Appends a CRC-32C and sets checksumPresent. */
  readonly checksum?: boolean;
}

/** Encodes an OP_MSG. */
export function encodeOpMsg(input: OpMsgInput, options: MongoEncodeOptions = {}): Buffer {
  const flagBits = ((input.flagBits ?? 0) & ~opMsgFlags.checksumPresent) | (input.checksum === true ? opMsgFlags.checksumPresent : 0);
  const parts: Uint8Array[] = [Buffer.from([opMsgSectionKinds.Body]), bsonBytes(input.body, options)];
  for (const sequence of input.sequences ?? []) {
    if (sequence.identifier.includes("\0")) throw new TypeError("sequences[].identifier must not contain NUL");
    const identifier = Buffer.from(`${sequence.identifier}\0`, "utf8");
    const documents = sequence.documents.map((document) => bsonBytes(document, options));
    const size = 4 + identifier.length + documents.reduce((sum, document) => sum + document.length, 0);
    const head = Buffer.allocUnsafe(5);
    head[0] = opMsgSectionKinds.DocumentSequence;
    head.writeInt32LE(size, 1);
    parts.push(head, identifier, ...documents);
  }
  const bodyLength = 4 + parts.reduce((sum, part) => sum + part.length, 0) + (input.checksum === true ? 4 : 0);
  const out = Buffer.allocUnsafe(MONGO_HEADER_BYTES + bodyLength);
  writeHeader(out, input.requestID, input.responseTo ?? 0, mongoOpcodes.OP_MSG);
  out.writeUInt32LE(flagBits >>> 0, MONGO_HEADER_BYTES);
  let offset = MONGO_HEADER_BYTES + 4;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  if (input.checksum === true) out.writeUInt32LE(crc32c(out.subarray(0, offset)), offset);
  return out;
}

/** Fields of an OP_QUERY to encode. */
export interface OpQueryInput {
  readonly requestID: number;
  readonly flags?: number;
  readonly fullCollectionName: string;
  readonly numberToSkip?: number;
  readonly numberToReturn?: number;
  readonly query: DocumentInput;
  readonly returnFieldsSelector?: DocumentInput;
}

/** Encodes an OP_QUERY. */
export function encodeOpQuery(input: OpQueryInput, options: MongoEncodeOptions = {}): Buffer {
  if (input.fullCollectionName.includes("\0")) throw new TypeError("fullCollectionName must not contain NUL");
  const name = Buffer.from(`${input.fullCollectionName}\0`, "utf8");
  const query = bsonBytes(input.query, options);
  const selector = input.returnFieldsSelector === undefined ? undefined : bsonBytes(input.returnFieldsSelector, options);
  const out = Buffer.allocUnsafe(MONGO_HEADER_BYTES + 4 + name.length + 8 + query.length + (selector?.length ?? 0));
  writeHeader(out, input.requestID, 0, mongoOpcodes.OP_QUERY);
  let offset = out.writeInt32LE(input.flags ?? 0, MONGO_HEADER_BYTES);
  offset += name.copy(out, offset);
  offset = out.writeInt32LE(input.numberToSkip ?? 0, offset);
  offset = out.writeInt32LE(input.numberToReturn ?? 0, offset);
  out.set(query, offset);
  if (selector !== undefined) out.set(selector, offset + query.length);
  return out;
}

/** Fields of an OP_REPLY to encode. */
export interface OpReplyInput {
  readonly requestID: number;
  readonly responseTo: number;
  readonly responseFlags?: number;
  readonly cursorID?: bigint;
  readonly startingFrom?: number;
  readonly documents: readonly DocumentInput[];
}

/** Encodes an OP_REPLY. */
export function encodeOpReply(input: OpReplyInput, options: MongoEncodeOptions = {}): Buffer {
  const documents = input.documents.map((document) => bsonBytes(document, options));
  const size = documents.reduce((sum, document) => sum + document.length, 0);
  const out = Buffer.allocUnsafe(MONGO_HEADER_BYTES + 20 + size);
  writeHeader(out, input.requestID, input.responseTo, mongoOpcodes.OP_REPLY);
  let offset = out.writeInt32LE(input.responseFlags ?? 0, MONGO_HEADER_BYTES);
  offset = out.writeBigInt64LE(input.cursorID ?? 0n, offset);
  offset = out.writeInt32LE(input.startingFrom ?? 0, offset);
  offset = out.writeInt32LE(documents.length, offset);
  for (const document of documents) {
    out.set(document, offset);
    offset += document.length;
  }
  return out;
}

/** The compressors {@link encodeOpCompressed} writes. */
export type MongoCompressor = "noop" | "zlib";

/**
 * Wraps a whole message (header included) in an OP_COMPRESSED with the same requestID and
 * responseTo. `level` is zlib's compression level (-1..9, the driver's zlibCompressionLevel).
 */
export function encodeOpCompressed(message: Buffer, compressor: MongoCompressor, level = zlibConstants.Z_DEFAULT_COMPRESSION): Buffer {
  const header = checkedHeader(message);
  if (header.opCode === mongoOpcodes.OP_COMPRESSED) throw new TypeError("message is already an OP_COMPRESSED");
  const body = message.subarray(MONGO_HEADER_BYTES);
  const compressed = compressor === "zlib" ? deflateSync(body, { level }) : body;
  const out = Buffer.allocUnsafe(MONGO_HEADER_BYTES + 9 + compressed.length);
  writeHeader(out, header.requestID, header.responseTo, mongoOpcodes.OP_COMPRESSED);
  let offset = out.writeInt32LE(header.opCode, MONGO_HEADER_BYTES);
  offset = out.writeInt32LE(body.length, offset);
  offset = out.writeUInt8(mongoCompressors[compressor], offset);
  compressed.copy(out, offset);
  return out;
}

/**
 * The command an OP_MSG carries, as a server reads it: the body with each document sequence added
 * as an array field named by its identifier. Throws WireError when a sequence's identifier is also
 * a field of the body (the spec forbids it).
 */
export function opMsgCommand(message: OpMsg): Document {
  let command: Document | undefined;
  const sequences: OpMsgDocumentSequence[] = [];
  for (const section of message.sections) {
    if (section.kind === 0) command = section.document;
    else sequences.push(section);
  }
  if (command === undefined) throw malformed("OP_MSG has no body section");
  if (sequences.length === 0) return command;
  const merged: Document = { ...command };
  for (const sequence of sequences) {
    if (Object.hasOwn(merged, sequence.identifier)) throw malformed(`OP_MSG document sequence \`${sequence.identifier}\` repeats a field of the body or another sequence`);
    merged[sequence.identifier] = [...sequence.documents];
  }
  return merged;
}

/** The body document of an OP_MSG. */
export function opMsgBody(message: OpMsg): Document {
  for (const section of message.sections) if (section.kind === 0) return section.document;
  throw malformed("OP_MSG has no body section");
}

/** Deserializes one BSON document that must fill `bytes` exactly; WireError if it is malformed. */
export function decodeDocument(bytes: Uint8Array, options: MongoDecodeOptions = {}): Document {
  if (bytes.length < 5) throw malformed(`BSON document of ${bytes.length} bytes is shorter than the minimum of 5`);
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = view.readInt32LE(0);
  if (size !== bytes.length) throw malformed(`BSON document announces ${size} bytes but has ${bytes.length}`);
  try {
    return deserialize(bytes, options.bson);
  } catch (error) {
    throw new WireError("malformed_message", `malformed BSON document: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** Serializes one document; bytes are passed through as they are. */
export function encodeDocument(document: DocumentInput, options: MongoEncodeOptions = {}): Buffer {
  return bsonBytes(document, options);
}

function decodeBodyOpMsg(bytes: Buffer, header: MongoHeader, options: MongoDecodeOptions): OpMsg {
  const reader = new Reader(bytes, MONGO_HEADER_BYTES, "OP_MSG");
  const flagBits = reader.uint32();
  // Required bits (0-15) the spec does not define must be refused.
  const unknownRequired = flagBits & 0xffff & ~(opMsgFlags.checksumPresent | opMsgFlags.moreToCome);
  if (unknownRequired !== 0) throw new WireError("unsupported_protocol", `OP_MSG has unknown required flag bits 0x${unknownRequired.toString(16)}`);
  let end = bytes.length;
  let checksum: number | undefined;
  if ((flagBits & opMsgFlags.checksumPresent) !== 0) {
    if (bytes.length < MONGO_HEADER_BYTES + 4 + 4) throw malformed("OP_MSG has checksumPresent but no room for a checksum");
    end = bytes.length - 4;
    checksum = bytes.readUInt32LE(end);
    const computed = crc32c(bytes.subarray(0, end));
    if (computed !== checksum) {
      throw malformed(`OP_MSG checksum mismatch: the message carries 0x${checksum.toString(16).padStart(8, "0")}, its bytes give 0x${computed.toString(16).padStart(8, "0")}`);
    }
  }
  reader.end = end;
  const sections: OpMsgSection[] = [];
  let bodies = 0;
  while (reader.offset < end) {
    const kind = reader.uint8();
    if (kind === opMsgSectionKinds.Body) {
      bodies++;
      sections.push({ kind: 0, document: reader.document(options) });
    } else if (kind === opMsgSectionKinds.DocumentSequence) {
      const start = reader.offset;
      const size = reader.int32();
      if (size < 5 || start + size > end) throw malformed(`OP_MSG document sequence size ${size} does not fit the message`);
      const sequence = new Reader(bytes, reader.offset, "OP_MSG document sequence", start + size);
      const identifier = sequence.cstring();
      const documents: Document[] = [];
      while (sequence.offset < sequence.end) documents.push(sequence.document(options));
      sections.push({ kind: 1, identifier, documents });
      reader.offset = start + size;
    } else {
      throw malformed(`OP_MSG has a section of unknown kind ${kind}`);
    }
  }
  if (bodies !== 1) throw malformed(`OP_MSG has ${bodies} body sections, not exactly one`);
  const base = { opCode: mongoOpcodes.OP_MSG, requestID: header.requestID, responseTo: header.responseTo, flagBits, sections };
  return checksum === undefined ? base : { ...base, checksum };
}

function decodeBodyOpQuery(bytes: Buffer, header: MongoHeader, options: MongoDecodeOptions): OpQuery {
  const reader = new Reader(bytes, MONGO_HEADER_BYTES, "OP_QUERY");
  const flags = reader.int32();
  const fullCollectionName = reader.cstring();
  const numberToSkip = reader.int32();
  const numberToReturn = reader.int32();
  const query = reader.document(options);
  const base = { opCode: mongoOpcodes.OP_QUERY, requestID: header.requestID, responseTo: header.responseTo, flags, fullCollectionName, numberToSkip, numberToReturn, query };
  if (reader.offset === reader.end) return base;
  const returnFieldsSelector = reader.document(options);
  if (reader.offset !== reader.end) throw malformed(`OP_QUERY has ${reader.end - reader.offset} bytes after its documents`);
  return { ...base, returnFieldsSelector };
}

function decodeBodyOpReply(bytes: Buffer, header: MongoHeader, options: MongoDecodeOptions): OpReply {
  const reader = new Reader(bytes, MONGO_HEADER_BYTES, "OP_REPLY");
  const responseFlags = reader.int32();
  const cursorID = reader.int64();
  const startingFrom = reader.int32();
  const numberReturned = reader.int32();
  if (numberReturned < 0) throw malformed(`OP_REPLY numberReturned is ${numberReturned}`);
  const documents: Document[] = [];
  for (let index = 0; index < numberReturned; index++) documents.push(reader.document(options));
  if (reader.offset !== reader.end) throw malformed(`OP_REPLY has ${reader.end - reader.offset} bytes after its ${numberReturned} documents`);
  return { opCode: mongoOpcodes.OP_REPLY, requestID: header.requestID, responseTo: header.responseTo, responseFlags, cursorID, startingFrom, documents };
}

function decodeBodyOpCompressed(bytes: Buffer, header: MongoHeader): OpCompressed {
  const reader = new Reader(bytes, MONGO_HEADER_BYTES, "OP_COMPRESSED");
  const originalOpcode = reader.int32();
  const uncompressedSize = reader.int32();
  const compressorId = reader.uint8();
  if (uncompressedSize < 0) throw malformed(`OP_COMPRESSED uncompressedSize is ${uncompressedSize}`);
  if (originalOpcode === mongoOpcodes.OP_COMPRESSED) throw malformed("OP_COMPRESSED wraps another OP_COMPRESSED");
  return {
    opCode: mongoOpcodes.OP_COMPRESSED,
    requestID: header.requestID,
    responseTo: header.responseTo,
    originalOpcode,
    uncompressedSize,
    compressorId,
    compressedMessage: bytes.subarray(reader.offset),
  };
}

function checkedHeader(bytes: Buffer): MongoHeader {
  const header = decodeHeader(bytes);
  if (header.messageLength !== bytes.length) throw malformed(`message announces ${header.messageLength} bytes but has ${bytes.length}`);
  return header;
}

function expectOpcode(bytes: Buffer, opCode: number): MongoHeader {
  const header = checkedHeader(bytes);
  if (header.opCode !== opCode) {
    throw new WireError("unexpected_message", `expected ${mongoOpcodeName(opCode)}, got ${mongoOpcodeName(header.opCode) ?? "opcode"} (${header.opCode})`);
  }
  return header;
}

function opcodeError(opCode: number): WireError {
  const name = mongoOpcodeName(opCode);
  if (name === undefined) return new WireError("unexpected_message", `unknown opcode ${opCode}`);
  return new WireError("unsupported_protocol", `opcode ${name} (${opCode}) is not supported: MongoDB removed it`);
}

function writeHeader(out: Buffer, requestID: number, responseTo: number, opCode: number): void {
  out.writeInt32LE(out.length, 0);
  out.writeInt32LE(requestID | 0, 4);
  out.writeInt32LE(responseTo | 0, 8);
  out.writeInt32LE(opCode, 12);
}

function bsonBytes(document: DocumentInput, options: MongoEncodeOptions): Buffer {
  const bytes = document instanceof Uint8Array ? document : serialize(document, options.bson);
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function malformed(message: string): WireError {
  return new WireError("malformed_message", message);
}

/** Bounds-checked little-endian reads over one message. */
class Reader {
  readonly #bytes: Buffer;
  readonly #what: string;
  offset: number;
  end: number;

  constructor(bytes: Buffer, offset: number, what: string, end = bytes.length) {
    this.#bytes = bytes;
    this.#what = what;
    this.offset = offset;
    this.end = end;
  }

  #need(count: number): void {
    if (this.offset + count > this.end) throw malformed(`${this.#what} is truncated at byte ${this.offset}`);
  }

  uint8(): number {
    this.#need(1);
    return this.#bytes.readUInt8(this.offset++);
  }

  int32(): number {
    this.#need(4);
    const value = this.#bytes.readInt32LE(this.offset);
    this.offset += 4;
    return value;
  }

  uint32(): number {
    this.#need(4);
    const value = this.#bytes.readUInt32LE(this.offset);
    this.offset += 4;
    return value;
  }

  int64(): bigint {
    this.#need(8);
    const value = this.#bytes.readBigInt64LE(this.offset);
    this.offset += 8;
    return value;
  }

  cstring(): string {
    const nul = this.#bytes.indexOf(0, this.offset);
    if (nul === -1 || nul >= this.end) throw malformed(`${this.#what} has an unterminated string at byte ${this.offset}`);
    const value = this.#bytes.toString("utf8", this.offset, nul);
    this.offset = nul + 1;
    return value;
  }

  /** One BSON document: its int32 size is checked against what is left before it is parsed. */
  document(options: MongoDecodeOptions): Document {
    this.#need(4);
    const size = this.#bytes.readInt32LE(this.offset);
    if (size < 5 || this.offset + size > this.end) {
      throw malformed(`${this.#what} has a BSON document of ${size} bytes at byte ${this.offset}, with ${this.end - this.offset} bytes left`);
    }
    const document = decodeDocument(this.#bytes.subarray(this.offset, this.offset + size), options);
    this.offset += size;
    return document;
  }
}
