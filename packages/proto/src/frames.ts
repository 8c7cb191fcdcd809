import { create } from "@bufbuild/protobuf";
import { FramesSchema, type Frames } from "./gen/airlock/v1/frames_pb.js";

/** Anything that carries one whole protocol message. */
export interface WholeMessage {
  readonly bytes: Uint8Array;
}

/**
 * Packs complete messages into one Frames batch. Messages that sit back to back in one buffer (the
 * usual case: all cut from one socket read) are sent as one view, without copying.
 */
export function packFrames(messages: readonly WholeMessage[]): Frames {
  const lengths = new Array<number>(messages.length);
  let contiguous = true;
  let total = 0;
  for (let i = 0; i < messages.length; i++) {
    const bytes = (messages[i] as WholeMessage).bytes;
    lengths[i] = bytes.length;
    total += bytes.length;
    if (i > 0 && contiguous) {
      const previous = (messages[i - 1] as WholeMessage).bytes;
      contiguous = previous.buffer === bytes.buffer && previous.byteOffset + previous.length === bytes.byteOffset;
    }
  }
  let data: Uint8Array;
  if (messages.length === 0) data = new Uint8Array(0);
  else if (contiguous) {
    const first = (messages[0] as WholeMessage).bytes;
    data = new Uint8Array(first.buffer, first.byteOffset, total);
  } else {
    data = Buffer.concat(messages.map((message) => message.bytes), total);
  }
  return create(FramesSchema, { data, lengths });
}

/**
 * Splits a Frames batch back into messages (views into its data). Throws TypeError when the lengths
 * do not add up to the data: a peer bug, never trusted.
 */
export function unpackFrames(frames: Frames): Buffer[] {
  const data = Buffer.from(frames.data.buffer, frames.data.byteOffset, frames.data.byteLength);
  const out: Buffer[] = [];
  let offset = 0;
  for (const length of frames.lengths) {
    if (offset + length > data.length) throw new TypeError("frames: lengths exceed the data");
    out.push(data.subarray(offset, offset + length));
    offset += length;
  }
  if (offset !== data.length) throw new TypeError("frames: lengths do not cover the data");
  return out;
}
