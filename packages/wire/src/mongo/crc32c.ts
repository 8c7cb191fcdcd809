/**
 * CRC-32C (Castagnoli), the checksum of OP_MSG's checksumPresent flag. Node's zlib has only CRC-32,
 * so this is a table-driven implementation, sliced by 8 bytes.
 * https://github.com/mongodb/specifications/blob/master/source/message/OP_MSG.md#checksum
 */

/** Reflected polynomial 0x1EDC6F41. */
const POLYNOMIAL = 0x82f63b78;

const tables: Uint32Array[] = (() => {
  const out: Uint32Array[] = [];
  const first = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let crc = n;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ POLYNOMIAL : crc >>> 1;
    first[n] = crc >>> 0;
  }
  out.push(first);
  for (let k = 1; k < 8; k++) {
    const previous = out[k - 1] as Uint32Array;
    const table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      const value = previous[n] as number;
      table[n] = ((value >>> 8) ^ (first[value & 0xff] as number)) >>> 0;
    }
    out.push(table);
  }
  return out;
})();

/** CRC-32C of `bytes`, as an unsigned 32-bit integer; `initial` continues an earlier value. */
export function crc32c(bytes: Uint8Array, initial = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = tables as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];
  let crc = ~initial >>> 0;
  let index = 0;
  const end8 = bytes.length - (bytes.length % 8);
  while (index < end8) {
    const a = (crc ^ ((bytes[index] as number) | ((bytes[index + 1] as number) << 8) | ((bytes[index + 2] as number) << 16) | ((bytes[index + 3] as number) << 24))) >>> 0;
    const b = (bytes[index + 4] as number) | ((bytes[index + 5] as number) << 8) | ((bytes[index + 6] as number) << 16) | ((bytes[index + 7] as number) << 24);
    crc =
      (t7[a & 0xff] as number) ^
      (t6[(a >>> 8) & 0xff] as number) ^
      (t5[(a >>> 16) & 0xff] as number) ^
      (t4[a >>> 24] as number) ^
      (t3[b & 0xff] as number) ^
      (t2[(b >>> 8) & 0xff] as number) ^
      (t1[(b >>> 16) & 0xff] as number) ^
      (t0[(b >>> 24) & 0xff] as number);
    index += 8;
  }
  while (index < bytes.length) {
    crc = (crc >>> 8) ^ (t0[(crc ^ (bytes[index] as number)) & 0xff] as number);
    index++;
  }
  return ~crc >>> 0;
}
