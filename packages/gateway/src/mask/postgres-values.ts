/**
 * Masked PostgreSQL column values that stay valid for the column's type, in the text format
 * (format 0) and the binary format (format 1) of the extended protocol, so a driver that parses a
 * typed column (or receives it in binary) gets a value it can read.
 *
 * Binary encodings are each type's `*send` function:
 * https://github.com/postgres/postgres/tree/REL_15_STABLE/src/backend/utils/adt
 */
import { MaskError } from "./errors.js";
import {
  DEFAULT_PARTIAL_KEEP,
  REDACTED_TEXT,
  base32,
  checkTextOptions,
  maskPartial,
  maskPartialAsciiInPlace,
  maskText,
  pseudonymDigest,
  pseudonymToken,
  type MaskStyle,
  type MaskTextOptions,
} from "./styles.js";

/**
 * OIDs of the types masked with a type-valid value, named as `pg_type` names them:
 * https://github.com/postgres/postgres/blob/REL_15_STABLE/src/include/catalog/pg_type.dat
 */
export const pgTypeOids = {
  bool: 16,
  bytea: 17,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  json: 114,
  cidr: 650,
  float4: 700,
  float8: 701,
  inet: 869,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  timetz: 1266,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
} as const;

/** The name of a type in {@link pgTypeOids}. */
export type PgTypeName = keyof typeof pgTypeOids;

/** A column's format code in RowDescription and Bind: 0 text, 1 binary. */
export type PgFormat = 0 | 1;

/** Options of {@link maskPgValue}. */
export interface MaskPgValueOptions extends MaskTextOptions {
  /** The column's type OID (RowDescription's data type OID). */
  readonly typeOid: number;
  /** The column's format code. */
  readonly format: PgFormat;
  /**
   * The column's type modifier (RowDescription's atttypmod, -1 for none). When present it bounds
   * the masked value like the column does: varchar(n) and bpchar(n) length, numeric(p, s) digits.
   */
  readonly typeModifier?: number;
}

const supported = new Set<number>(Object.values(pgTypeOids));

/** Whether {@link maskPgValue} has a type-valid masked value for the type in both formats. */
export function isPgTypeMaskable(typeOid: number): boolean {
  return supported.has(typeOid);
}

/**
 * Masks one column value for a PostgreSQL client.
 *
 * By type (the `null` style is NULL for every type; a NULL value stays NULL):
 * - text, varchar, name, bpchar: the style's text ({@link maskText}). bpchar keeps the original
 *   length (padded with spaces; a placeholder or token too long for it becomes `*`s or bare base32
 *   digest characters), and a varchar(n) modifier cuts the same way. The pseudonym of a bpchar
 *   ignores trailing spaces, as bpchar comparison does.
 * - int2, int4, int8: 0; for `pseudonym`, a non-negative integer of the type's range derived from
 *   the HMAC of the value's decimal text, so it equals across text and binary formats.
 * - numeric: 0; for `pseudonym`, an integer derived from the HMAC of the normalised decimal (1.5
 *   and 1.50 agree, as they do in SQL), below 10^15 and within a numeric(p, s) modifier.
 * - uuid: the nil uuid; for `pseudonym`, a version 8 uuid from the HMAC of the canonical text.
 * - bytea: empty; for `pseudonym`, the token's bytes, from the HMAC of the value's bytes.
 * - json, jsonb: the JSON string `"[masked]"`; for `pseudonym`, the token as a JSON string.
 * - float4, float8 (0), bool (false), date (2000-01-01), time and interval (00:00:00), timetz
 *   (00:00:00+00), timestamp and timestamptz (2000-01-01 00:00:00, UTC), inet (0.0.0.0), cidr
 *   (0.0.0.0/0): that fixed value for every style but `null`; `partial` has no meaning there and
 *   a pseudonym of a date or an address would be noise, not a join key.
 * - Any other type, text format: the style's text ({@link maskText}) as the value's text.
 * - Any other type, binary format: NULL for `redact` (NULL is valid for every type and tells
 *   nothing); for `partial` and `pseudonym`, which promise a suffix or a join key that NULL would
 *   silently break, a {@link MaskError} `unsupported_binary_type`. Use {@link isPgTypeMaskable}
 *   at RowDescription time to know in advance.
 *
 * Text is taken and produced as UTF-8 (the session's client_encoding).
 *
 * @throws MaskError `unsupported_binary_type` (see above), or `invalid_value` when a pseudonym
 *   needs the value decoded and it is not a valid value of its type. Either way the caller must
 *   fail closed: end the result with an error, never pass the value through.
 * @throws TypeError when the options are invalid
 */
export function maskPgValue(value: Buffer | null, options: MaskPgValueOptions): Buffer | null {
  return maskChecked(value, checkPgOptions(options));
}

/** A column's masking with its options checked once. */
export interface PgColumnMask {
  /** {@link maskPgValue} of one value, with the column's options. */
  readonly mask: (value: Buffer | null) => Buffer | null;
  /**
   * What every non-NULL value of the column masks to, when that does not depend on the value
   * (`null`, `redact` of most types, the fixed values of typed columns): the same bytes each time,
   * not to be modified. Undefined when each value must go through `mask`.
   */
  readonly constant: Buffer | null | undefined;
}

/**
 * Checks the options once and returns the masking of one column: the same values and errors as
 * {@link maskPgValue} with these options, without checking them again per value.
 *
 * @throws TypeError when the options are invalid
 */
export function compilePgMask(options: MaskPgValueOptions): PgColumnMask {
  const checked = checkPgOptions(options);
  return { mask: (value) => maskChecked(value, checked), constant: valueIndependent(checked) ? maskChecked(Buffer.alloc(0), checked) : undefined };
}

/** Types whose masked value is fixed for every style but `null` and `pseudonym` (see {@link maskPgValue}). */
const FIXED_TYPES = new Set<number>([
  pgTypeOids.int2,
  pgTypeOids.int4,
  pgTypeOids.int8,
  pgTypeOids.numeric,
  pgTypeOids.uuid,
  pgTypeOids.bytea,
  pgTypeOids.json,
  pgTypeOids.jsonb,
  pgTypeOids.float4,
  pgTypeOids.float8,
  pgTypeOids.bool,
  pgTypeOids.date,
  pgTypeOids.time,
  pgTypeOids.timetz,
  pgTypeOids.timestamp,
  pgTypeOids.timestamptz,
  pgTypeOids.interval,
  pgTypeOids.inet,
  pgTypeOids.cidr,
]);

/** Whether maskChecked gives every non-NULL value the same result, without reading it or throwing. */
function valueIndependent({ style, typeOid }: CheckedPgOptions): boolean {
  if (style === "null") return true;
  if (style === "pseudonym") return false;
  if (FIXED_TYPES.has(typeOid)) return true;
  // bpchar keeps the value's length; partial keeps its last characters (and throws for an unknown binary type).
  if (typeOid === pgTypeOids.bpchar || style === "partial") return false;
  // redact of text, varchar and name, and of any other type: the placeholder (text format) or NULL (binary).
  return true;
}

/**
 * The fast path of {@link maskPgValue} for the `partial` style of a text, varchar, name or bpchar
 * value whose bytes are ASCII and keep their length (no varchar(n) cut): masks bytes[start, end)
 * in place, as maskPgValue would mask them, and returns true. Anything else is left untouched and
 * returns false, for the caller to use maskPgValue. The options are the caller's, checked.
 */
export function maskPgTextPartialInPlace(bytes: Uint8Array, start: number, end: number, options: { readonly typeOid: number; readonly typeModifier: number; readonly keep: number }): boolean {
  const { typeOid, typeModifier } = options;
  if (!isPgTextType(typeOid)) return false;
  // varchar(n) cuts a longer masked value; bpchar's limit is the value's own length.
  if (typeOid === pgTypeOids.varchar && typeModifier >= 4 && end - start > typeModifier - 4) return false;
  return maskPartialAsciiInPlace(bytes, start, end, options.keep);
}

/** Whether the type is text, varchar, name or bpchar: masked as text in both formats (their binary form is their text). */
export function isPgTextType(typeOid: number): boolean {
  return typeOid === pgTypeOids.text || typeOid === pgTypeOids.varchar || typeOid === pgTypeOids.name || typeOid === pgTypeOids.bpchar;
}

interface CheckedPgOptions {
  readonly options: MaskPgValueOptions;
  readonly style: MaskStyle;
  readonly typeOid: number;
  readonly format: PgFormat;
  readonly typeModifier: number;
  readonly key: Uint8Array;
}

function checkPgOptions(options: MaskPgValueOptions): CheckedPgOptions {
  const style = checkTextOptions(options);
  const { typeOid, format } = options;
  if (!Number.isSafeInteger(typeOid) || typeOid < 0) throw new TypeError("options.typeOid: expected a type oid");
  if (format !== 0 && format !== 1) throw new TypeError("options.format: expected 0 (text) or 1 (binary)");
  const typeModifier = options.typeModifier ?? -1;
  if (!Number.isSafeInteger(typeModifier)) throw new TypeError("options.typeModifier: expected an integer");
  return { options, style, typeOid, format, typeModifier, key: options.key ?? new Uint8Array() };
}

function maskChecked(value: Buffer | null, checked: CheckedPgOptions): Buffer | null {
  const { options, style, typeOid, typeModifier, key } = checked;
  if (value === null || style === "null") return null;
  const binary = checked.format === 1;

  switch (typeOid) {
    case pgTypeOids.text:
    case pgTypeOids.varchar:
    case pgTypeOids.name:
    case pgTypeOids.bpchar:
      return Buffer.from(maskTextLike(value, style, options.keep ?? DEFAULT_PARTIAL_KEEP, key, typeOid, typeModifier), "utf8");

    case pgTypeOids.int2:
    case pgTypeOids.int4:
    case pgTypeOids.int8: {
      const width = typeOid === pgTypeOids.int2 ? 2 : typeOid === pgTypeOids.int4 ? 4 : 8;
      const n = style === "pseudonym" ? pseudonymInteger(key, integerText(value, binary, width), 2n ** BigInt(width * 8 - 1)) : 0n;
      if (!binary) return Buffer.from(n.toString(), "ascii");
      const out = Buffer.alloc(width);
      if (width === 2) out.writeInt16BE(Number(n));
      else if (width === 4) out.writeInt32BE(Number(n));
      else out.writeBigInt64BE(n);
      return out;
    }

    case pgTypeOids.numeric: {
      const { digits, scale } = numericBounds(typeModifier);
      let n = 0n;
      if (style === "pseudonym" && digits > 0) n = pseudonymInteger(key, numericText(value, binary), 10n ** BigInt(digits));
      const unit = scale < 0 ? 10n ** BigInt(-scale) : 1n;
      const dscale = Math.max(scale, 0);
      return binary ? encodeNumeric(n * unit, dscale) : Buffer.from((n * unit).toString() + (dscale > 0 ? `.${"0".repeat(dscale)}` : ""), "ascii");
    }

    case pgTypeOids.uuid: {
      if (style !== "pseudonym") return binary ? Buffer.alloc(16) : Buffer.from("00000000-0000-0000-0000-000000000000", "ascii");
      const digest = pseudonymDigest(key, Buffer.from(uuidText(value, binary), "ascii"));
      const bytes = Buffer.from(digest.subarray(0, 16));
      bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x80; // version 8: custom (RFC 9562)
      bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80; // variant 10
      return binary ? bytes : Buffer.from(formatUuid(bytes), "ascii");
    }

    case pgTypeOids.bytea: {
      const bytes = style === "pseudonym" ? Buffer.from(pseudonymToken(pseudonymDigest(key, byteaBytes(value, binary))), "ascii") : Buffer.alloc(0);
      return binary ? bytes : Buffer.from(`\\x${bytes.toString("hex")}`, "ascii");
    }

    case pgTypeOids.json:
    case pgTypeOids.jsonb: {
      let text = JSON.stringify(REDACTED_TEXT);
      if (style === "pseudonym") {
        let source = value;
        if (binary && typeOid === pgTypeOids.jsonb) {
          if (value[0] !== 1) throw new MaskError("invalid_value", "a binary jsonb value does not start with version 1");
          source = value.subarray(1);
        }
        text = JSON.stringify(pseudonymToken(pseudonymDigest(key, source)));
      }
      const body = Buffer.from(text, "utf8");
      return binary && typeOid === pgTypeOids.jsonb ? Buffer.concat([JSONB_VERSION, body]) : body;
    }

    case pgTypeOids.float4:
      return binary ? Buffer.alloc(4) : Buffer.from("0", "ascii");
    case pgTypeOids.float8:
      return binary ? Buffer.alloc(8) : Buffer.from("0", "ascii");
    case pgTypeOids.bool:
      return binary ? Buffer.alloc(1) : Buffer.from("f", "ascii");
    case pgTypeOids.date:
      // Binary: days since 2000-01-01.
      return binary ? Buffer.alloc(4) : Buffer.from("2000-01-01", "ascii");
    case pgTypeOids.time:
      // Binary: microseconds since midnight.
      return binary ? Buffer.alloc(8) : Buffer.from("00:00:00", "ascii");
    case pgTypeOids.timetz:
      // Binary: microseconds since midnight, then the zone's offset in seconds west of UTC.
      return binary ? Buffer.alloc(12) : Buffer.from("00:00:00+00", "ascii");
    case pgTypeOids.timestamp:
      // Binary: microseconds since 2000-01-01 00:00:00.
      return binary ? Buffer.alloc(8) : Buffer.from("2000-01-01 00:00:00", "ascii");
    case pgTypeOids.timestamptz:
      return binary ? Buffer.alloc(8) : Buffer.from("2000-01-01 00:00:00+00", "ascii");
    case pgTypeOids.interval:
      // Binary: microseconds, days, months.
      return binary ? Buffer.alloc(16) : Buffer.from("00:00:00", "ascii");
    case pgTypeOids.inet:
      // Binary: family (PGSQL_AF_INET = AF_INET = 2), bits, is_cidr, address length, address.
      return binary ? Buffer.from([2, 32, 0, 4, 0, 0, 0, 0]) : Buffer.from("0.0.0.0", "ascii");
    case pgTypeOids.cidr:
      return binary ? Buffer.from([2, 0, 1, 4, 0, 0, 0, 0]) : Buffer.from("0.0.0.0/0", "ascii");

    default: {
      if (!binary) return Buffer.from(maskText(value.toString("utf8"), options) ?? "", "utf8");
      if (style === "redact") return null;
      throw new MaskError("unsupported_binary_type", `type oid ${typeOid} in binary format has no masked value for the \`${style}\` style`);
    }
  }
}

const JSONB_VERSION = Buffer.from([1]);

/** The length of a string in code points, the unit of bpchar(n) and varchar(n). */
function codePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

function maskTextLike(value: Buffer, style: MaskStyle, keep: number, key: Uint8Array, typeOid: number, typeModifier: number): string {
  const original = value.toString("utf8");
  const bpchar = typeOid === pgTypeOids.bpchar;
  let digest: Buffer | undefined;
  let out: string;
  if (style === "partial") out = maskPartial(original, keep);
  else if (style === "pseudonym") {
    // bpchar compares without its trailing spaces, so its pseudonym ignores them too.
    digest = pseudonymDigest(key, bpchar ? Buffer.from(original.replace(/ +$/, ""), "utf8") : value);
    out = pseudonymToken(digest);
  } else out = REDACTED_TEXT;

  const length = bpchar ? codePoints(original) : undefined;
  const declared = (bpchar || typeOid === pgTypeOids.varchar) && typeModifier >= 4 ? typeModifier - 4 : undefined;
  const limit = length ?? declared;
  if (limit !== undefined && codePoints(out) > limit) {
    if (digest !== undefined) out = base32(digest).slice(0, limit);
    else if (style === "redact") out = "*".repeat(limit);
    else out = Array.from(out).slice(0, limit).join("");
  }
  return length === undefined ? out : out + " ".repeat(Math.max(0, length - codePoints(out)));
}

/** A non-negative integer below `bound` from the HMAC of a value's canonical text. */
function pseudonymInteger(key: Uint8Array, canonical: string, bound: bigint): bigint {
  return pseudonymDigest(key, Buffer.from(canonical, "utf8")).readBigUInt64BE(0) % bound;
}

function integerText(value: Buffer, binary: boolean, width: number): string {
  if (binary) {
    if (value.length !== width) throw new MaskError("invalid_value", `a binary int${width} value is not ${width} bytes`);
    return (width === 2 ? value.readInt16BE() : width === 4 ? value.readInt32BE() : value.readBigInt64BE()).toString();
  }
  const text = value.toString("ascii");
  if (!/^[+-]?\d{1,20}$/.test(text.trim())) throw new MaskError("invalid_value", `a text int${width} value is not an integer`);
  return BigInt(text.trim()).toString();
}

/** The digits left of the point a numeric(p, s) allows (capped at 15) and its scale. */
function numericBounds(typeModifier: number): { digits: number; scale: number } {
  if (typeModifier < 4) return { digits: 15, scale: 0 };
  const bits = typeModifier - 4;
  const precision = (bits >> 16) & 0xffff;
  // Since PostgreSQL 15 the scale is an 11-bit signed field and may be negative.
  const raw = bits & 0x7ff;
  const scale = raw & 0x400 ? raw - 0x800 : raw;
  // A negative scale rounds to tens, hundreds...: precision digits, then -scale zeros.
  return { digits: Math.min(Math.max(scale < 0 ? precision : precision - scale, 0), 15), scale };
}

/** The canonical decimal of a numeric: no leading or trailing zeros, so equal numbers agree. */
function numericText(value: Buffer, binary: boolean): string {
  if (binary) return numericFromBinary(value);
  const text = value.toString("ascii").trim();
  if (text === "NaN" || text === "Infinity" || text === "-Infinity") return text;
  const match = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text);
  if (match === null || (match[2] === "" && (match[3] ?? "") === "")) throw new MaskError("invalid_value", "a text numeric value is not a number");
  return normaliseDecimal(match[1] === "-", match[2] ?? "", match[3] ?? "");
}

function normaliseDecimal(negative: boolean, integer: string, fraction: string): string {
  const whole = integer.replace(/^0+/, "") || "0";
  const decimals = fraction.replace(/0+$/, "");
  const zero = whole === "0" && decimals === "";
  return (negative && !zero ? "-" : "") + whole + (decimals === "" ? "" : `.${decimals}`);
}

/** numeric_send: ndigits, weight, sign, dscale (int16 each), then base-10000 digits. */
function numericFromBinary(value: Buffer): string {
  if (value.length < 8) throw new MaskError("invalid_value", "a binary numeric value is shorter than its header");
  const ndigits = value.readUInt16BE(0);
  const weight = value.readInt16BE(2);
  const sign = value.readUInt16BE(4);
  if (value.length !== 8 + 2 * ndigits) throw new MaskError("invalid_value", "a binary numeric value does not match its digit count");
  if (sign === 0xc000) return "NaN";
  if (sign === 0xd000) return "Infinity";
  if (sign === 0xf000) return "-Infinity";
  if (sign !== 0 && sign !== 0x4000) throw new MaskError("invalid_value", "a binary numeric value has an unknown sign");
  const digit = (i: number): number => (i >= 0 && i < ndigits ? value.readUInt16BE(8 + 2 * i) : 0);
  let integer = "";
  for (let i = 0; i <= weight; i++) integer += i === 0 ? String(digit(i)) : String(digit(i)).padStart(4, "0");
  let fraction = "";
  for (let i = weight + 1; i < ndigits; i++) fraction += String(digit(i)).padStart(4, "0");
  return normaliseDecimal(sign === 0x4000, integer, fraction);
}

/** numeric_send of a non-negative integer with `dscale` digits after the point. */
function encodeNumeric(n: bigint, dscale: number): Buffer {
  const digits: number[] = [];
  for (let rest = n; rest > 0n; rest /= 10000n) digits.unshift(Number(rest % 10000n));
  const weight = digits.length === 0 ? 0 : digits.length - 1;
  // Like make_result, drop trailing zero digits (the weight still places the rest).
  while (digits.length > 0 && digits[digits.length - 1] === 0) digits.pop();
  const out = Buffer.alloc(8 + 2 * digits.length);
  out.writeUInt16BE(digits.length, 0);
  out.writeInt16BE(weight, 2);
  out.writeUInt16BE(0, 4);
  out.writeUInt16BE(dscale, 6);
  digits.forEach((d, i) => out.writeUInt16BE(d, 8 + 2 * i));
  return out;
}

const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function uuidText(value: Buffer, binary: boolean): string {
  if (binary) {
    if (value.length !== 16) throw new MaskError("invalid_value", "a binary uuid value is not 16 bytes");
    return formatUuid(value);
  }
  const text = value.toString("ascii");
  if (!UUID_TEXT.test(text)) throw new MaskError("invalid_value", "a text uuid value is not a uuid");
  return text.toLowerCase();
}

function formatUuid(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The bytes of a bytea: binary as is; text in the hex (`\x...`) or the escape output format. */
function byteaBytes(value: Buffer, binary: boolean): Buffer {
  if (binary) return value;
  const text = value.toString("latin1");
  if (text.startsWith("\\x")) {
    const hex = text.slice(2);
    if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new MaskError("invalid_value", "a text bytea value is not valid hex");
    return Buffer.from(hex, "hex");
  }
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x5c) {
      out.push(c);
      continue;
    }
    if (text[i + 1] === "\\") {
      out.push(0x5c);
      i++;
    } else if (/^[0-3][0-7]{2}$/.test(text.slice(i + 1, i + 4))) {
      out.push(Number.parseInt(text.slice(i + 1, i + 4), 8));
      i += 3;
    } else throw new MaskError("invalid_value", "a text bytea value has a bad escape");
  }
  return Buffer.from(out);
}
