import { mysqlColumnFlags as F, mysqlColumnTypes as T } from "@airlock/wire";
import { describe, expect, it } from "vitest";
import { MaskError } from "../../../src/mask/errors.js";
import { createMysqlValueMasker, isMysqlTextKind, maskMysqlValue, mysqlValueKind, type MysqlColumnShape, type MysqlRowFormat } from "../../../src/mask/mysql-values.js";
import { maskText, type MaskStyle } from "../../../src/mask/styles.js";

const KEY = Buffer.alloc(32, 7);
const STYLES: readonly MaskStyle[] = ["redact", "partial", "pseudonym"];
const FORMATS: readonly MysqlRowFormat[] = ["text", "binary"];

/** A column as MariaDB 10.11 describes it (see the captured definitions in masker.test.ts). */
function column(type: number, extra: Partial<MysqlColumnShape> = {}): MysqlColumnShape {
  return { type, flags: 0, characterSet: 63, columnLength: 11, decimals: 0, ...extra };
}

const utf8 = (length: number, flags = 0): MysqlColumnShape => column(T.MYSQL_TYPE_VAR_STRING, { characterSet: 45, columnLength: length * 4, flags });
const mask = (value: Buffer, shape: MysqlColumnShape, format: MysqlRowFormat, style: MaskStyle, keep?: number): Buffer | null =>
  maskMysqlValue(value, { column: shape, format, style, key: KEY, ...(keep === undefined ? {} : { keep }) });
const text = (value: string): Buffer => Buffer.from(value, "utf8");
const str = (value: Buffer | null): string | null => (value === null ? null : value.toString("utf8"));

function le(width: number, value: bigint): Buffer {
  const out = Buffer.alloc(width);
  if (width === 8) out.writeBigInt64LE(value);
  else out.writeIntLE(Number(value), 0, width);
  return out;
}

describe("mysqlValueKind", () => {
  it("reads the kind from type, flags, collation and MariaDB's extended metadata", () => {
    expect(mysqlValueKind(column(T.MYSQL_TYPE_INT24))).toBe("integer");
    expect(mysqlValueKind(column(T.MYSQL_TYPE_NEWDECIMAL))).toBe("decimal");
    expect(mysqlValueKind(column(T.MYSQL_TYPE_TIMESTAMP))).toBe("datetime");
    expect(mysqlValueKind(utf8(10))).toBe("text");
    expect(mysqlValueKind(column(T.MYSQL_TYPE_STRING, { characterSet: 45, flags: F.ENUM_FLAG }))).toBe("enum");
    expect(mysqlValueKind(column(T.MYSQL_TYPE_STRING, { characterSet: 45, flags: F.SET_FLAG }))).toBe("set");
    expect(mysqlValueKind(column(T.MYSQL_TYPE_STRING))).toBe("fixed_bytes");
    expect(mysqlValueKind(column(T.MYSQL_TYPE_BLOB))).toBe("bytes");
    expect(mysqlValueKind(column(T.MYSQL_TYPE_JSON))).toBe("json");
    // MariaDB's JSON is LONGTEXT; with MARIADB_CLIENT_EXTENDED_METADATA its format says json.
    const longtext = column(T.MYSQL_TYPE_BLOB, { characterSet: 45, columnLength: 0xffffffff });
    expect(mysqlValueKind(longtext)).toBe("text");
    expect(mysqlValueKind({ ...longtext, extendedMetadata: Buffer.from("\x01\x04json", "latin1") })).toBe("json");
    expect(mysqlValueKind({ ...longtext, extendedMetadata: Buffer.from("\x00\x05inet6", "latin1") })).toBe("text");
    expect(mysqlValueKind(column(T.MYSQL_TYPE_GEOMETRY))).toBe("other");
    expect(mysqlValueKind(column(T.MYSQL_TYPE_VECTOR))).toBe("other");
    expect(mysqlValueKind(column(T.MYSQL_TYPE_NULL))).toBe("null_type");
    expect(isMysqlTextKind("text") && isMysqlTextKind("json") && !isMysqlTextKind("bytes") && !isMysqlTextKind("enum")).toBe(true);
  });
});

describe("createMysqlValueMasker", () => {
  it("gives NULL for the null style, and for geometry and unknown types whatever the style", () => {
    for (const type of Object.values(T)) {
      for (const format of FORMATS) expect(mask(Buffer.alloc(8), column(type, { characterSet: 45 }), format, "null")).toBeNull();
    }
    for (const style of STYLES) {
      for (const format of FORMATS) {
        expect(mask(Buffer.alloc(25), column(T.MYSQL_TYPE_GEOMETRY), format, style)).toBeNull();
        expect(mask(Buffer.alloc(4), column(T.MYSQL_TYPE_VECTOR), format, style)).toBeNull();
      }
    }
  });

  it("masks integers to 0 in text, to zero bytes of the type's width in binary, zero-filled under ZEROFILL", () => {
    const widths: [number, number][] = [
      [T.MYSQL_TYPE_TINY, 1],
      [T.MYSQL_TYPE_SHORT, 2],
      [T.MYSQL_TYPE_INT24, 4],
      [T.MYSQL_TYPE_LONG, 4],
      [T.MYSQL_TYPE_LONGLONG, 8],
    ];
    for (const [type, width] of widths) {
      for (const style of ["redact", "partial"] as const) {
        expect(str(mask(text("-42"), column(type), "text", style))).toBe("0");
        expect(mask(le(width, -42n), column(type), "binary", style)).toEqual(Buffer.alloc(width));
      }
    }
    expect(str(mask(text("00004242"), column(T.MYSQL_TYPE_LONG, { columnLength: 8, flags: F.ZEROFILL_FLAG | F.UNSIGNED_FLAG }), "text", "redact"))).toBe("00000000");
  });

  it("gives integer pseudonyms in range, equal in text and binary rows, for signed and unsigned columns", () => {
    const layouts: [number, number, number][] = [
      [T.MYSQL_TYPE_TINY, 1, 8],
      [T.MYSQL_TYPE_SHORT, 2, 16],
      [T.MYSQL_TYPE_INT24, 4, 24],
      [T.MYSQL_TYPE_LONG, 4, 32],
      [T.MYSQL_TYPE_LONGLONG, 8, 64],
    ];
    for (const [type, width, bits] of layouts) {
      const seen = new Set<string>();
      for (const n of [0n, 1n, 42n, -7n, 100n]) {
        const fromText = str(mask(text(n.toString()), column(type), "text", "pseudonym")) ?? "";
        const binary = mask(le(width, n), column(type), "binary", "pseudonym") as Buffer;
        const fromBinary = width === 8 ? binary.readBigInt64LE() : BigInt(binary.readIntLE(0, width));
        expect(fromText).toBe(fromBinary.toString());
        expect(BigInt(fromText) >= 0n && BigInt(fromText) < 2n ** BigInt(bits - 1)).toBe(true);
        seen.add(fromText);
        if (n >= 0n) {
          const unsigned = mask(le(width, n), column(type, { flags: F.UNSIGNED_FLAG }), "binary", "pseudonym");
          expect(unsigned).toEqual(binary);
        }
      }
      expect(seen.size).toBeGreaterThan(1);
    }
    // Zero-fill is formatting: 00042 is 42.
    const zerofill = column(T.MYSQL_TYPE_LONG, { columnLength: 5, flags: F.ZEROFILL_FLAG | F.UNSIGNED_FLAG });
    expect(str(mask(text("00042"), zerofill, "text", "pseudonym"))).toBe(str(mask(text("42"), column(T.MYSQL_TYPE_LONG), "text", "pseudonym"))?.padStart(5, "0"));
  });

  it("masks decimals to 0 with the column's scale; decimal pseudonyms fit the precision and ignore trailing zeros", () => {
    const decimal = column(T.MYSQL_TYPE_NEWDECIMAL, { columnLength: 12, decimals: 2 });
    for (const format of FORMATS) {
      expect(str(mask(text("98765.43"), decimal, format, "redact"))).toBe("0.00");
      expect(str(mask(text("98765.43"), decimal, format, "partial"))).toBe("0.00");
    }
    const token = str(mask(text("1.50"), decimal, "text", "pseudonym")) ?? "";
    expect(token).toMatch(/^\d{1,8}\.00$/);
    expect(str(mask(text("1.5"), decimal, "text", "pseudonym"))).toBe(token);
    expect(str(mask(text("0001.500"), decimal, "binary", "pseudonym"))).toBe(token);
    expect(str(mask(text("-1.5"), decimal, "text", "pseudonym"))).not.toBe(token);
    expect(str(mask(text("7"), column(T.MYSQL_TYPE_NEWDECIMAL, { columnLength: 3, decimals: 0, flags: F.UNSIGNED_FLAG }), "text", "pseudonym"))).toMatch(/^\d{1,3}$/);
  });

  it("masks temporal values to fixed valid values of their shape", () => {
    const cases: [MysqlColumnShape, string, string][] = [
      [column(T.MYSQL_TYPE_DATE), "2000-01-01", "d0070101"],
      [column(T.MYSQL_TYPE_DATETIME), "2000-01-01 00:00:00", "d0070101"],
      [column(T.MYSQL_TYPE_DATETIME, { decimals: 6 }), "2000-01-01 00:00:00.000000", "d0070101"],
      [column(T.MYSQL_TYPE_TIMESTAMP, { decimals: 3 }), "2000-01-01 00:00:00.000", "d0070101"],
      [column(T.MYSQL_TYPE_TIME), "00:00:00", ""],
      [column(T.MYSQL_TYPE_TIME, { decimals: 3 }), "00:00:00.000", ""],
      [column(T.MYSQL_TYPE_YEAR), "2000", "d007"],
      [column(T.MYSQL_TYPE_FLOAT), "0", "00000000"],
      [column(T.MYSQL_TYPE_DOUBLE, { decimals: 31 }), "0", "0000000000000000"],
    ];
    for (const [shape, textForm, binaryForm] of cases) {
      for (const style of STYLES) {
        expect(str(mask(text("1987-06-05"), shape, "text", style))).toBe(textForm);
        expect(mask(Buffer.from([0xc3, 0x07, 6, 5]), shape, "binary", style)?.toString("hex")).toBe(binaryForm);
      }
    }
  });

  it("masks text with the style, within the column's length in characters", () => {
    const varchar = utf8(64);
    expect(str(mask(text("canary-alice@example.com"), varchar, "text", "redact"))).toBe("[masked]");
    expect(str(mask(text("4111 1111 1111 1111"), varchar, "binary", "partial"))).toBe("**** **** **** 1111");
    expect(str(mask(text("4111 1111 1111 1111"), varchar, "text", "partial", 2))).toBe("**** **** **** **11");
    const token = str(mask(text("alice"), varchar, "text", "pseudonym"));
    // The same token as PostgreSQL's text pseudonym under the same key: joins across protocols agree.
    expect(token).toBe(maskText("alice", { style: "pseudonym", key: KEY }));
    expect(str(mask(text("alice"), varchar, "binary", "pseudonym"))).toBe(token);
    // VARCHAR(5) in utf8mb4: 20 bytes, 5 characters.
    expect(str(mask(text("abcde"), utf8(5), "text", "redact"))).toBe("*****");
    expect(str(mask(text("abcde"), utf8(5), "text", "pseudonym"))).toMatch(/^[a-z2-7]{5}$/);
    expect(str(mask(text("😀😀"), utf8(2), "text", "partial"))).toBe("**");
    // latin1 and utf8mb3 collations count 1 and 3 bytes per character.
    expect(str(mask(text("abcdef"), column(T.MYSQL_TYPE_VAR_STRING, { characterSet: 8, columnLength: 6 }), "text", "redact"))).toBe("******");
    expect(str(mask(text("abcdefghijk"), column(T.MYSQL_TYPE_VAR_STRING, { characterSet: 33, columnLength: 30 }), "text", "redact"))).toBe("[masked]");
  });

  it("masks JSON to a JSON string, ENUM and SET to the empty string, BIT to zero bits", () => {
    const json = column(T.MYSQL_TYPE_JSON, { characterSet: 45 });
    for (const format of FORMATS) {
      expect(JSON.parse(str(mask(text('{"a": "secret"}'), json, format, "redact")) ?? "")).toBe("[masked]");
      expect(JSON.parse(str(mask(text('{"a": "secret"}'), json, format, "partial")) ?? "")).toBe("[masked]");
      expect(JSON.parse(str(mask(text('{"a": "secret"}'), json, format, "pseudonym")) ?? "")).toMatch(/^psd_[a-z2-7]{16}$/);
      for (const style of STYLES) {
        expect(str(mask(text("green"), column(T.MYSQL_TYPE_STRING, { characterSet: 45, flags: F.ENUM_FLAG }), format, style))).toBe("");
        expect(str(mask(text("a,c"), column(T.MYSQL_TYPE_STRING, { characterSet: 45, flags: F.SET_FLAG }), format, style))).toBe("");
        expect(mask(Buffer.from([0x02, 0xce]), column(T.MYSQL_TYPE_BIT, { columnLength: 10 }), format, style)).toEqual(Buffer.alloc(2));
      }
    }
  });

  it("masks bytes to the placeholder or the token's bytes within the column's length, BINARY(n) to exactly n bytes", () => {
    const varbinary = column(T.MYSQL_TYPE_VAR_STRING, { columnLength: 32 });
    expect(str(mask(text("canary-varbinary"), varbinary, "text", "redact"))).toBe("[masked]");
    expect(str(mask(text("canary-varbinary"), varbinary, "text", "partial"))).toBe("[masked]");
    expect(str(mask(text("canary-varbinary"), varbinary, "binary", "pseudonym"))).toMatch(/^psd_[a-z2-7]{16}$/);
    expect(mask(text("abc"), column(T.MYSQL_TYPE_VAR_STRING, { columnLength: 4 }), "text", "redact")).toEqual(text("[mas"));
    expect(mask(text("abc"), column(T.MYSQL_TYPE_VAR_STRING, { columnLength: 4 }), "text", "pseudonym")).toHaveLength(4);
    const binary8 = column(T.MYSQL_TYPE_STRING, { columnLength: 8 });
    expect(mask(text("cnrybin8"), binary8, "text", "redact")).toEqual(text("[masked]"));
    const binary16 = column(T.MYSQL_TYPE_STRING, { columnLength: 16 });
    expect(mask(Buffer.alloc(16, 1), binary16, "binary", "redact")).toEqual(Buffer.concat([text("[masked]"), Buffer.alloc(8)]));
    const uuid = mask(Buffer.alloc(16, 1), binary16, "binary", "pseudonym");
    expect(uuid).toHaveLength(16);
    expect(mask(Buffer.alloc(16, 1), binary16, "text", "pseudonym")).toEqual(uuid);
    expect(mask(Buffer.alloc(16, 2), binary16, "text", "pseudonym")).not.toEqual(uuid);
    expect(mask(Buffer.alloc(24, 1), column(T.MYSQL_TYPE_STRING, { columnLength: 24 }), "text", "pseudonym")?.subarray(0, 4).toString()).toBe("psd_");
  });

  it("refuses to derive a pseudonym from a value that is not of its type; other styles never read the value", () => {
    const cases: [MysqlColumnShape, MysqlRowFormat, Buffer][] = [
      [column(T.MYSQL_TYPE_LONG), "binary", Buffer.alloc(3)],
      [column(T.MYSQL_TYPE_LONG), "text", text("12abc")],
      [column(T.MYSQL_TYPE_NEWDECIMAL, { columnLength: 12, decimals: 2 }), "text", text("1.2.3")],
    ];
    for (const [shape, format, value] of cases) {
      expect(() => mask(value, shape, format, "pseudonym")).toThrow(MaskError);
      expect(() => mask(value, shape, format, "redact")).not.toThrow();
    }
  });

  it("checks its options once, when the column's masker is made", () => {
    expect(() => createMysqlValueMasker({ column: utf8(5), format: "text", style: "pseudonym" })).toThrow(/needs a key/);
    expect(() => createMysqlValueMasker({ column: utf8(5), format: "text", style: "shred" as MaskStyle })).toThrow(TypeError);
    expect(() => createMysqlValueMasker({ column: utf8(5), format: "csv" as MysqlRowFormat, style: "redact" })).toThrow(/options.format/);
    // A constant mask is the same Buffer for every value: no allocation per row.
    const redact = createMysqlValueMasker({ column: utf8(10), format: "text", style: "redact" });
    expect(redact(text("a"))).toBe(redact(text("b")));
  });
});
