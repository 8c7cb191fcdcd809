/**
 * MongoDB wire protocol codes, named as the spec names them.
 * https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/
 */

/**
 * Opcodes of the standard message header.
 * https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/#opcodes
 */
export const mongoOpcodes = {
  /** Reply to OP_QUERY; still sent by servers to a legacy hello/isMaster. */
  OP_REPLY: 1,
  /** Removed in MongoDB 5.1 (as are OP_INSERT, OP_GET_MORE, OP_DELETE and OP_KILL_CURSORS). */
  OP_UPDATE: 2001,
  OP_INSERT: 2002,
  RESERVED: 2003,
  /** Deprecated; only the first hello/isMaster of a connection may use it. */
  OP_QUERY: 2004,
  OP_GET_MORE: 2005,
  OP_DELETE: 2006,
  OP_KILL_CURSORS: 2007,
  OP_COMPRESSED: 2012,
  OP_MSG: 2013,
} as const;

/** One of {@link mongoOpcodes}. */
export type MongoOpcode = (typeof mongoOpcodes)[keyof typeof mongoOpcodes];

/** The spec's name of an opcode, or undefined for one it does not define. */
export function mongoOpcodeName(opCode: number): keyof typeof mongoOpcodes | undefined {
  for (const [name, value] of Object.entries(mongoOpcodes)) {
    if (value === opCode) return name as keyof typeof mongoOpcodes;
  }
  return undefined;
}

/**
 * OP_MSG flagBits. Bits 0-15 are required: a peer must refuse a message with one it does not know.
 * Bits 16-31 are optional and may be ignored.
 * https://github.com/mongodb/specifications/blob/master/source/message/OP_MSG.md#flag-bits
 */
export const opMsgFlags = {
  /** The message ends with a CRC-32C of everything before it. */
  checksumPresent: 1 << 0,
  /** The sender will send another message without waiting for an answer; the receiver must not answer. */
  moreToCome: 1 << 1,
  /** The client accepts several replies to this request (exhaust cursors, streaming hello). */
  exhaustAllowed: 1 << 16,
} as const;

/** OP_MSG section kinds. */
export const opMsgSectionKinds = {
  /** Body: exactly one BSON document. */
  Body: 0,
  /** Document Sequence: size, identifier, then BSON documents up to size. */
  DocumentSequence: 1,
} as const;

/**
 * OP_QUERY flags.
 * https://www.mongodb.com/docs/manual/legacy-opcodes/#op_query
 */
export const opQueryFlags = {
  TailableCursor: 1 << 1,
  SlaveOk: 1 << 2,
  OplogReplay: 1 << 3,
  NoCursorTimeout: 1 << 4,
  AwaitData: 1 << 5,
  Exhaust: 1 << 6,
  Partial: 1 << 7,
} as const;

/**
 * OP_REPLY responseFlags.
 * https://www.mongodb.com/docs/manual/legacy-opcodes/#op_reply
 */
export const opReplyFlags = {
  CursorNotFound: 1 << 0,
  QueryFailure: 1 << 1,
  ShardConfigStale: 1 << 2,
  AwaitCapable: 1 << 3,
} as const;

/**
 * Compressor ids of OP_COMPRESSED.
 * https://github.com/mongodb/specifications/blob/master/source/compression/OP_COMPRESSED.md#compressor-ids
 */
export const mongoCompressors = {
  noop: 0,
  snappy: 1,
  zlib: 2,
  zstd: 3,
} as const;

/** The name of a compressor id, or undefined. */
export function mongoCompressorName(id: number): keyof typeof mongoCompressors | undefined {
  for (const [name, value] of Object.entries(mongoCompressors)) {
    if (value === id) return name as keyof typeof mongoCompressors;
  }
  return undefined;
}
