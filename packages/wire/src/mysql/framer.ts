import { WireError } from "../errors.js";

/**
 * One logical MySQL packet: a physical packet, or a run of physical packets of 0xffffff payload
 * bytes and the shorter one that ends them, reassembled.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_packets.html
 */
export interface MysqlPacket {
  /** Sequence id of the first physical packet; {@link nextSequenceId} gives the id of the reply. */
  readonly sequenceId: number;
  /** The payload, headers removed. A view when it is one physical packet of contiguous input, a copy otherwise. */
  readonly payload: Buffer;
  /** The whole wire bytes of all its physical packets, headers included. A view while the input was contiguous. */
  readonly bytes: Buffer;
}

/** Options of {@link createMysqlFramer}. */
export interface MysqlFramerOptions {
  /**
   * Largest accepted logical payload (all physical packets together, headers excluded), like the
   * server's max_allowed_packet; checked from each header before its body is buffered or awaited.
   */
  readonly maxMessageBytes: number;
}

/** Splits a byte stream into logical MySQL packets, keeping only unconsumed bytes between calls. */
export interface MysqlFramer {
  /**
   * Adds bytes and returns every packet now complete. Throws WireError on a packet that is too large
   * or a continuation out of sequence; the stream cannot be resynchronised after that, so close it.
   */
  push(chunk: Buffer): MysqlPacket[];
  /** Bytes received but not yet part of a complete packet. */
  readonly buffered: number;
}

/** Payload length of a physical packet that continues into the next one. */
export const MAX_PHYSICAL_PAYLOAD = 0xffffff;
/** int<3> payload length and int<1> sequence id. */
const HEADER = 4;

/** Creates a framer; see {@link MysqlFramer}. */
export function createMysqlFramer(options: MysqlFramerOptions): MysqlFramer {
  const max = options.maxMessageBytes;
  if (!Number.isSafeInteger(max) || max < 16) throw new TypeError("options.maxMessageBytes must be an integer of at least 16");
  // Owned copies of the unconsumed input; they always start at the first byte of a logical packet.
  let held: Buffer[] = [];
  let heldLength = 0;
  // Progress through the logical packet that starts at the first unconsumed byte.
  let scanned = 0; // bytes of its complete physical packets
  let total = 0; // payload bytes of its complete physical packets
  let parts = 0; // its complete physical packets
  let firstSequenceId = 0;
  // Payload length of the physical packet whose header was read and checked but whose body is incomplete.
  let announced: number | undefined;

  return {
    get buffered() {
      return heldLength;
    },
    push(chunk) {
      const input = new Input(held, heldLength, chunk);
      const out: MysqlPacket[] = [];
      let origin = 0; // where the current logical packet starts in `input`
      for (;;) {
        const at = origin + scanned;
        if (announced === undefined) {
          if (input.length - at < HEADER) break;
          const length = input.byteAt(at) | (input.byteAt(at + 1) << 8) | (input.byteAt(at + 2) << 16);
          const sequenceId = input.byteAt(at + 3);
          if (total + length > max) {
            throw new WireError("message_too_large", `packet payload of ${total + length} bytes is over the maximum of ${max}`);
          }
          // Continuation packets count on from the first; anything else is a framing error.
          if (parts > 0 && sequenceId !== ((firstSequenceId + parts) & 0xff)) {
            throw new WireError("malformed_message", `continuation packet has sequence id ${sequenceId}, not ${(firstSequenceId + parts) & 0xff}`);
          }
          if (parts === 0) firstSequenceId = sequenceId;
          announced = length;
        }
        const length = announced;
        if (input.length - at - HEADER < length) break;
        announced = undefined;
        parts++;
        total += length;
        scanned += HEADER + length;
        if (length === MAX_PHYSICAL_PAYLOAD) continue;

        const bytes = input.range(origin, origin + scanned);
        const payload = parts === 1 ? bytes.subarray(HEADER) : joinPayloads(bytes, total);
        out.push({ sequenceId: firstSequenceId, payload, bytes });
        origin += scanned;
        scanned = total = parts = 0;
      }
      if (origin === 0) {
        // Nothing completed: the held copies stay, and the chunk joins them (copied, so the caller may reuse it).
        if (chunk.length > 0) {
          held.push(Buffer.from(chunk));
          heldLength += chunk.length;
        }
      } else {
        // A completed packet always ends inside this chunk, so what is left is a tail of it.
        const tail = chunk.subarray(origin - heldLength);
        held = tail.length === 0 ? [] : [Buffer.from(tail)];
        heldLength = tail.length;
      }
      return out;
    },
  };
}

/**
 * Encodes a payload as one physical packet, or as several when it is 0xffffff bytes or more: each
 * full packet is followed by the next, and an exact multiple ends with an empty packet.
 */
export function encodePacket(sequenceId: number, payload: Buffer): Buffer {
  if (!Number.isInteger(sequenceId) || sequenceId < 0 || sequenceId > 0xff) throw new TypeError("sequenceId must be an integer in 0..255");
  const count = Math.floor(payload.length / MAX_PHYSICAL_PAYLOAD) + 1;
  const out = Buffer.allocUnsafe(payload.length + HEADER * count);
  let read = 0;
  let write = 0;
  for (let index = 0; index < count; index++) {
    const length = Math.min(MAX_PHYSICAL_PAYLOAD, payload.length - read);
    out.writeUIntLE(length, write, 3);
    out[write + 3] = (sequenceId + index) & 0xff;
    payload.copy(out, write + HEADER, read, read + length);
    read += length;
    write += HEADER + length;
  }
  return out;
}

/** The sequence id the answer to `packet` carries: one past its last physical packet. */
export function nextSequenceId(packet: Pick<MysqlPacket, "sequenceId" | "payload">): number {
  return (packet.sequenceId + Math.floor(packet.payload.length / MAX_PHYSICAL_PAYLOAD) + 1) & 0xff;
}

/** Copies the payloads of consecutive physical packets into one buffer. */
function joinPayloads(bytes: Buffer, total: number): Buffer {
  const payload = Buffer.allocUnsafe(total);
  let read = 0;
  let write = 0;
  while (read < bytes.length) {
    const length = bytes.readUIntLE(read, 3);
    write += bytes.copy(payload, write, read + HEADER, read + HEADER + length);
    read += HEADER + length;
  }
  return payload;
}

/** The held copies followed by the new chunk, read as one sequence without joining them. */
class Input {
  readonly #held: readonly Buffer[];
  readonly #heldLength: number;
  readonly #chunk: Buffer;
  readonly length: number;

  constructor(held: readonly Buffer[], heldLength: number, chunk: Buffer) {
    this.#held = held;
    this.#heldLength = heldLength;
    this.#chunk = chunk;
    this.length = heldLength + chunk.length;
  }

  byteAt(index: number): number {
    if (index >= this.#heldLength) return this.#chunk[index - this.#heldLength] ?? 0;
    let offset = index;
    for (const piece of this.#held) {
      if (offset < piece.length) return piece[offset] ?? 0;
      offset -= piece.length;
    }
    return 0;
  }

  /** A view when the range lies in one piece, else a copy. */
  range(start: number, end: number): Buffer {
    if (start >= this.#heldLength) return this.#chunk.subarray(start - this.#heldLength, end - this.#heldLength);
    const out = Buffer.allocUnsafe(end - start);
    let write = 0;
    let position = 0;
    for (const piece of [...this.#held, this.#chunk]) {
      const from = Math.max(start, position);
      const to = Math.min(end, position + piece.length);
      if (from < to) write += piece.copy(out, write, from - position, to - position);
      position += piece.length;
      if (position >= end) break;
    }
    return out;
  }
}
