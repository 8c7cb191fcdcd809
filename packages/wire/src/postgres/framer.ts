import { WireError } from "../errors.js";

/** One complete message as it is on the wire, header included. */
export interface PgMessage {
  /** Type byte; 0 for the untyped startup-phase messages. */
  readonly code: number;
  /** The whole message (header and body). A view while the input was contiguous, a copy otherwise. */
  readonly bytes: Buffer;
}

/** Options of {@link createPgFramer}. */
export interface PgFramerOptions {
  /** Largest accepted message, header included; checked before anything is allocated or awaited. */
  readonly maxMessageBytes: number;
  /** True when the first message is untyped (a server reading a client's StartupMessage). */
  readonly startup?: boolean;
}

/** Complete messages back to back, as {@link PgFramer.pushBatch} returns them. */
export interface PgBatch {
  /** The messages' bytes, one after the other. A view while the input was contiguous, a copy otherwise. */
  readonly bytes: Buffer;
  /** The length of each message, header included, in order; they add up to `bytes.length`. */
  readonly lengths: number[];
}

/** Splits a byte stream into PostgreSQL messages, keeping only unconsumed bytes between calls. */
export interface PgFramer {
  /** Adds bytes and returns every message now complete. Throws WireError on a bad length. */
  push(chunk: Buffer): PgMessage[];
  /**
   * {@link push} for a relay: adds the chunks (in order) and returns the messages now complete as
   * one contiguous run and their lengths, with no object per message. Same checks, same state:
   * the two can be mixed.
   */
  pushBatch(chunks: readonly Buffer[]): PgBatch;
  /** The next message is untyped again (after an SSLRequest or GSSENCRequest was answered). */
  expectStartup(): void;
  /** Bytes received but not yet part of a complete message. */
  readonly buffered: number;
}

/** Smallest untyped message: length and request code. */
const STARTUP_MIN = 8;
/** Typed message header: code byte and int32 length (which counts itself). */
const HEADER = 5;

/** Creates a framer; see {@link PgFramer}. */
export function createPgFramer(options: PgFramerOptions): PgFramer {
  const max = options.maxMessageBytes;
  if (!Number.isInteger(max) || max < 16) throw new TypeError("options.maxMessageBytes must be an integer of at least 16");
  let startup = options.startup === true;
  // The unconsumed bytes (copies: never the caller's chunks), and how many bytes the first
  // message needs once its length is known (0 before): a large message arriving over many
  // chunks is joined once, when it is complete, rather than at every chunk.
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let need = 0;

  /** The pending bytes and the chunks as one buffer, or undefined while the first message is still incomplete. */
  const take = (chunks: readonly Buffer[]): Buffer | undefined => {
    if (pendingBytes === 0 && chunks.length === 1) return chunks[0] as Buffer;
    let added = 0;
    for (const chunk of chunks) added += chunk.length;
    if (pendingBytes > 0 && pendingBytes + added < need) {
      for (const chunk of chunks) if (chunk.length > 0) pending.push(Buffer.from(chunk));
      pendingBytes += added;
      return undefined;
    }
    const buf = Buffer.concat(pendingBytes === 0 ? chunks : [...pending, ...chunks], pendingBytes + added);
    pending = [];
    pendingBytes = 0;
    need = 0;
    return buf;
  };

  /** Keeps buf's unconsumed tail; copies it so a large chunk is not pinned by a small tail. */
  const keep = (buf: Buffer, offset: number, needed: number): void => {
    if (offset === buf.length) return;
    pending = [Buffer.from(buf.subarray(offset))];
    pendingBytes = buf.length - offset;
    need = needed;
  };

  /** The length of an untyped message at `offset` (at least 4 bytes there), checked. */
  const startupLength = (buf: Buffer, offset: number): number => {
    const length = buf.readInt32BE(offset);
    if (length < STARTUP_MIN || length > max) {
      throw new WireError(length < STARTUP_MIN ? "malformed_message" : "message_too_large", `startup message length ${length} is outside 8..${max}`);
    }
    return length;
  };

  /** The length of the typed message at `offset` (a whole header there), header included, checked. */
  const typedLength = (buf: Buffer, offset: number): number => {
    const length = buf.readInt32BE(offset + 1);
    if (length < 4 || length + 1 > max) {
      const code = buf[offset] ?? 0;
      throw new WireError(length < 4 ? "malformed_message" : "message_too_large", `message 0x${code.toString(16)} length ${length} is outside 4..${max - 1}`);
    }
    return length + 1;
  };

  return {
    get buffered() {
      return pendingBytes;
    },
    expectStartup() {
      startup = true;
      // A pending tail's length was read as a typed message's: read it again.
      need = 0;
    },
    push(chunk) {
      const out: PgMessage[] = [];
      const buf = take([chunk]);
      if (buf === undefined) return out;
      let offset = 0;
      let needed = 0;
      for (;;) {
        const left = buf.length - offset;
        if (startup) {
          if (left < 4) break;
          const length = startupLength(buf, offset);
          if (left < length) {
            needed = length;
            break;
          }
          out.push({ code: 0, bytes: buf.subarray(offset, offset + length) });
          offset += length;
          // Stop after an untyped message: the caller decides what may follow it (after an SSLRequest,
          // nothing until the TLS handshake) and calls push again with an empty chunk to go on.
          startup = false;
          break;
        }
        if (left < HEADER) break;
        const length = typedLength(buf, offset);
        if (left < length) {
          needed = length;
          break;
        }
        out.push({ code: buf[offset] ?? 0, bytes: buf.subarray(offset, offset + length) });
        offset += length;
      }
      keep(buf, offset, needed);
      return out;
    },
    pushBatch(chunks) {
      const lengths: number[] = [];
      const buf = take(chunks);
      if (buf === undefined) return { bytes: EMPTY, lengths };
      let offset = 0;
      let needed = 0;
      for (;;) {
        const left = buf.length - offset;
        if (startup) {
          if (left < 4) break;
          const length = startupLength(buf, offset);
          if (left < length) {
            needed = length;
            break;
          }
          lengths.push(length);
          offset += length;
          startup = false;
          break;
        }
        if (left < HEADER) break;
        const length = typedLength(buf, offset);
        if (left < length) {
          needed = length;
          break;
        }
        lengths.push(length);
        offset += length;
      }
      keep(buf, offset, needed);
      return { bytes: buf.subarray(0, offset), lengths };
    },
  };
}

const EMPTY = Buffer.alloc(0);
