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

/** Splits a byte stream into PostgreSQL messages, keeping only unconsumed bytes between calls. */
export interface PgFramer {
  /** Adds bytes and returns every message now complete. Throws WireError on a bad length. */
  push(chunk: Buffer): PgMessage[];
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
  let pending: Buffer | undefined;

  return {
    get buffered() {
      return pending?.length ?? 0;
    },
    expectStartup() {
      startup = true;
    },
    push(chunk) {
      const buf = pending === undefined || pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      const out: PgMessage[] = [];
      let offset = 0;
      for (;;) {
        const left = buf.length - offset;
        if (startup) {
          if (left < 4) break;
          const length = buf.readInt32BE(offset);
          if (length < STARTUP_MIN || length > max) {
            throw new WireError(length < STARTUP_MIN ? "malformed_message" : "message_too_large", `startup message length ${length} is outside 8..${max}`);
          }
          if (left < length) break;
          out.push({ code: 0, bytes: buf.subarray(offset, offset + length) });
          offset += length;
          // Stop after an untyped message: the caller decides what may follow it (after an SSLRequest,
          // nothing until the TLS handshake) and calls push again with an empty chunk to go on.
          startup = false;
          break;
        }
        if (left < HEADER) break;
        const length = buf.readInt32BE(offset + 1);
        if (length < 4 || length + 1 > max) {
          const code = buf[offset] ?? 0;
          throw new WireError(
            length < 4 ? "malformed_message" : "message_too_large",
            `message 0x${code.toString(16)} length ${length} is outside 4..${max - 1}`,
          );
        }
        if (left < length + 1) break;
        out.push({ code: buf[offset] ?? 0, bytes: buf.subarray(offset, offset + length + 1) });
        offset += length + 1;
      }
      // Keep only what is unconsumed; copy it so a large chunk is not pinned by a small tail.
      pending = offset === buf.length ? undefined : Buffer.from(buf.subarray(offset));
      return out;
    },
  };
}
