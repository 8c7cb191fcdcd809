import { WireError } from "../errors.js";

/**
 * One complete MongoDB message as it is on the wire, standard header included.
 * https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/#standard-message-header
 */
export interface MongoMessage {
  /** Total size of the message in bytes, header included. */
  readonly messageLength: number;
  /** Identifier the sender chose for this message. */
  readonly requestID: number;
  /** The requestID this message answers; 0 in requests. */
  readonly responseTo: number;
  /** One of mongoOpcodes, or anything a peer sent: decodeMessage refuses what it does not know. */
  readonly opCode: number;
  /** The whole message. A view while the input was contiguous, a copy otherwise. */
  readonly bytes: Buffer;
}

/** Options of {@link createMongoFramer}. */
export interface MongoFramerOptions {
  /**
   * Largest accepted message, header included (a server's maxMessageSizeBytes, 48,000,000 by
   * default); checked from the first four bytes, before the body is buffered or awaited.
   */
  readonly maxMessageBytes: number;
}

/** Splits a byte stream into MongoDB messages, keeping only unconsumed bytes between calls. */
export interface MongoFramer {
  /**
   * Adds bytes and returns every message now complete. Throws WireError on a length under 16 or
   * over the maximum; the stream cannot be resynchronised after that, so close it.
   */
  push(chunk: Buffer): MongoMessage[];
  /** Bytes received but not yet part of a complete message. */
  readonly buffered: number;
}

/** messageLength, requestID, responseTo, opCode: four little-endian int32. */
export const MONGO_HEADER_BYTES = 16;

/** Creates a framer; see {@link MongoFramer}. */
export function createMongoFramer(options: MongoFramerOptions): MongoFramer {
  const max = options.maxMessageBytes;
  if (!Number.isSafeInteger(max) || max < MONGO_HEADER_BYTES) throw new TypeError("options.maxMessageBytes must be an integer of at least 16");
  // Owned copies of the unconsumed input; they start at the first byte of a message. They are joined
  // once, when the message completes, so a large message in many chunks is copied only twice.
  let held: Buffer[] = [];
  let heldLength = 0;
  // Length of the message whose first bytes are held, once its length field has been read and checked.
  let announced: number | undefined;

  const check = (length: number): void => {
    if (length < MONGO_HEADER_BYTES) throw new WireError("malformed_message", `message length ${length} is under the header size of ${MONGO_HEADER_BYTES}`);
    if (length > max) throw new WireError("message_too_large", `message length ${length} is over the maximum of ${max}`);
  };

  return {
    get buffered() {
      return heldLength;
    },
    push(chunk) {
      const out: MongoMessage[] = [];
      let offset = 0;
      if (heldLength > 0) {
        if (announced === undefined) {
          if (heldLength + chunk.length < 4) {
            held.push(Buffer.from(chunk));
            heldLength += chunk.length;
            return out;
          }
          const first = Buffer.concat([...held, chunk.subarray(0, 4 - Math.min(4, heldLength))]);
          announced = first.readInt32LE(0);
          check(announced);
        }
        const missing = announced - heldLength;
        if (chunk.length < missing) {
          held.push(Buffer.from(chunk));
          heldLength += chunk.length;
          return out;
        }
        const bytes = Buffer.concat([...held, chunk.subarray(0, missing)], announced);
        out.push(message(bytes));
        held = [];
        heldLength = 0;
        announced = undefined;
        offset = missing;
      }
      for (;;) {
        const left = chunk.length - offset;
        if (left < 4) break;
        const length = chunk.readInt32LE(offset);
        check(length);
        if (left < length) {
          announced = length;
          break;
        }
        out.push(message(chunk.subarray(offset, offset + length)));
        offset += length;
      }
      if (offset < chunk.length) {
        // Copy the tail, so the caller may reuse its chunk and a large chunk is not pinned by it.
        held = [Buffer.from(chunk.subarray(offset))];
        heldLength = chunk.length - offset;
      }
      return out;
    },
  };
}

function message(bytes: Buffer): MongoMessage {
  return {
    messageLength: bytes.length,
    requestID: bytes.readInt32LE(4),
    responseTo: bytes.readInt32LE(8),
    opCode: bytes.readInt32LE(12),
    bytes,
  };
}
