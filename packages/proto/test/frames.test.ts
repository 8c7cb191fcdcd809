import { describe, expect, it } from "vitest";
import { create, FramesSchema, fromBinary, packFrames, toBinary, unpackFrames } from "../src/index.js";

/** Three messages cut back to back from one "socket read". */
function contiguous(): { read: Buffer; messages: Buffer[] } {
  const read = Buffer.from("Q\0\0\0\x0dselect 1\0S\0\0\0\x04X\0\0\0\x04", "latin1");
  return { read, messages: [read.subarray(0, 14), read.subarray(14, 19), read.subarray(19, 24)] };
}

describe("packFrames", () => {
  it("sends contiguous views as one view of the same buffer, without copying", () => {
    const { read, messages } = contiguous();
    const frames = packFrames(messages.map((bytes) => ({ bytes })));
    expect(frames.lengths).toEqual([14, 5, 5]);
    expect(frames.data.buffer).toBe(read.buffer);
    expect(frames.data.byteOffset).toBe(read.byteOffset);
    expect(frames.data.byteLength).toBe(read.length);
    // A view: a change to the read shows through.
    read[0] = 0x50;
    expect(frames.data[0]).toBe(0x50);
  });

  it("views a contiguous run that starts inside a larger buffer", () => {
    const big = Buffer.alloc(64);
    big.write("abcdefgh", 10, "latin1");
    const frames = packFrames([{ bytes: big.subarray(10, 13) }, { bytes: big.subarray(13, 18) }]);
    expect(frames.data.buffer).toBe(big.buffer);
    expect(frames.data.byteOffset).toBe(big.byteOffset + 10);
    expect(Buffer.from(frames.data).toString("latin1")).toBe("abcdefgh");
    expect(frames.lengths).toEqual([3, 5]);
  });

  it("concatenates messages from different buffers", () => {
    const first = Buffer.alloc(10, 1);
    const second = Buffer.alloc(6, 2);
    const frames = packFrames([{ bytes: first }, { bytes: second }]);
    expect(frames.lengths).toEqual([10, 6]);
    expect(Buffer.from(frames.data).equals(Buffer.concat([first, second]))).toBe(true);
    expect(frames.data.buffer).not.toBe(first.buffer);
    expect(frames.data.buffer).not.toBe(second.buffer);
  });

  it("concatenates views of one buffer that are not back to back (a gap or out of order)", () => {
    const { read, messages } = contiguous();
    const [query, sync, terminate] = messages as [Buffer, Buffer, Buffer];
    const gap = packFrames([{ bytes: query }, { bytes: terminate }]);
    expect(gap.lengths).toEqual([14, 5]);
    expect(Buffer.from(gap.data).equals(Buffer.concat([query, terminate]))).toBe(true);
    read[0] = 0;
    expect(gap.data[0]).toBe(0x51); // a copy

    const swapped = packFrames([{ bytes: sync }, { bytes: query }]);
    expect(Buffer.from(swapped.data).equals(Buffer.concat([sync, query]))).toBe(true);
  });

  it("accepts plain Uint8Arrays", () => {
    const frames = packFrames([{ bytes: new Uint8Array([1, 2]) }, { bytes: new Uint8Array([3]) }]);
    expect([...frames.data]).toEqual([1, 2, 3]);
    expect(frames.lengths).toEqual([2, 1]);
  });

  it("packs one message as a view and no message as empty", () => {
    const one = Buffer.from("abc");
    const frames = packFrames([{ bytes: one }]);
    expect(frames.data.buffer).toBe(one.buffer);
    expect(frames.lengths).toEqual([3]);
    const none = packFrames([]);
    expect(none.data.length).toBe(0);
    expect(none.lengths).toEqual([]);
    expect(unpackFrames(none)).toEqual([]);
  });
});

describe("unpackFrames", () => {
  it("round-trips packFrames, contiguous or not, through the protobuf encoding too", () => {
    const { messages } = contiguous();
    const others = [Buffer.from("one"), Buffer.alloc(0), Buffer.from("three!")];
    for (const input of [messages, others]) {
      const frames = packFrames(input.map((bytes) => ({ bytes })));
      expect(unpackFrames(frames).map((bytes) => bytes.toString("hex"))).toEqual(input.map((bytes) => bytes.toString("hex")));
      const wire = fromBinary(FramesSchema, toBinary(FramesSchema, frames));
      expect(unpackFrames(wire).map((bytes) => bytes.toString("hex"))).toEqual(input.map((bytes) => bytes.toString("hex")));
    }
  });

  it("returns views into the data", () => {
    const frames = create(FramesSchema, { data: new Uint8Array([1, 2, 3, 4, 5]), lengths: [2, 3] });
    const [first, second] = unpackFrames(frames);
    expect(first?.buffer).toBe(frames.data.buffer);
    expect(second?.buffer).toBe(frames.data.buffer);
    expect([...(second ?? [])]).toEqual([3, 4, 5]);
  });

  it("throws a TypeError when the lengths exceed the data", () => {
    const frames = create(FramesSchema, { data: new Uint8Array([1, 2, 3]), lengths: [2, 2] });
    expect(() => unpackFrames(frames)).toThrow(TypeError);
    expect(() => unpackFrames(frames)).toThrow("frames: lengths exceed the data");
    expect(() => unpackFrames(create(FramesSchema, { data: new Uint8Array(0), lengths: [1] }))).toThrow(TypeError);
  });

  it("throws a TypeError when the lengths do not cover the data", () => {
    const frames = create(FramesSchema, { data: new Uint8Array([1, 2, 3]), lengths: [1, 1] });
    expect(() => unpackFrames(frames)).toThrow(TypeError);
    expect(() => unpackFrames(frames)).toThrow("frames: lengths do not cover the data");
    expect(() => unpackFrames(create(FramesSchema, { data: new Uint8Array([9]), lengths: [] }))).toThrow(TypeError);
  });

  it("respects the byte offset of a data view", () => {
    const backing = new Uint8Array([0, 0, 7, 8, 9, 0]);
    const frames = create(FramesSchema, { data: backing.subarray(2, 5), lengths: [1, 2] });
    expect(unpackFrames(frames).map((bytes) => [...bytes])).toEqual([[7], [8, 9]]);
    expect(() => unpackFrames(create(FramesSchema, { data: backing.subarray(2, 5), lengths: [4] }))).toThrow(TypeError);
  });
});
