/**
 * Masked MySQL and MariaDB column values that stay valid for the column's type, in the text
 * protocol (COM_QUERY rows) and the binary protocol (COM_STMT_EXECUTE rows), so a driver that
 * parses a typed column gets a value it can read.
 *
 * Binary values are as the binary protocol carries them, without their length prefix:
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_binary_resultset.html
 */
import { mysqlColumnFlags, mysqlColumnTypes, type mysql } from "@airlock/wire";
import { MaskError } from "./errors.js";
import { DEFAULT_PARTIAL_KEEP, REDACTED_TEXT, base32, checkTextOptions, maskPartial, pseudonymDigest, pseudonymToken, type MaskStyle, type MaskTextOptions } from "./styles.js";

const T = mysqlColumnTypes;
const F = mysqlColumnFlags;

/** The collation id of binary strings (BINARY, VARBINARY, BLOB, BIT). */
const BINARY_COLLATION = 63;

/** What of a column definition decides its masked value. */
export type MysqlColumnShape = Pick<mysql.ColumnDefinition41, "type" | "flags" | "characterSet" | "columnLength" | "decimals" | "extendedMetadata">;

/** Rows of COM_QUERY are text, rows of COM_STMT_EXECUTE and COM_STMT_FETCH binary. */
export type MysqlRowFormat = "text" | "binary";

/**
 * How a column's values are masked, from its definition:
 * integer (TINYINT..BIGINT), year, float, double, decimal, date, datetime (DATETIME, TIMESTAMP),
 * time, bit, json (MySQL's JSON, or MariaDB's with extended metadata), enum and set (strings with
 * ENUM_FLAG or SET_FLAG), text (strings in a character set), bytes (VARBINARY, BLOB), fixed_bytes
 * (BINARY(n)), null_type (the type of a bare NULL), other (GEOMETRY, VECTOR and anything unknown).
 */
export type MysqlValueKind =
  | "integer"
  | "year"
  | "float"
  | "double"
  | "decimal"
  | "date"
  | "datetime"
  | "time"
  | "bit"
  | "json"
  | "enum"
  | "set"
  | "text"
  | "bytes"
  | "fixed_bytes"
  | "null_type"
  | "other";

/** The kind of a column's values; see {@link MysqlValueKind}. */
export function mysqlValueKind(column: MysqlColumnShape): MysqlValueKind {
  switch (column.type) {
    case T.MYSQL_TYPE_TINY:
    case T.MYSQL_TYPE_SHORT:
    case T.MYSQL_TYPE_INT24:
    case T.MYSQL_TYPE_LONG:
    case T.MYSQL_TYPE_LONGLONG:
      return "integer";
    case T.MYSQL_TYPE_YEAR:
      return "year";
    case T.MYSQL_TYPE_FLOAT:
      return "float";
    case T.MYSQL_TYPE_DOUBLE:
      return "double";
    case T.MYSQL_TYPE_DECIMAL:
    case T.MYSQL_TYPE_NEWDECIMAL:
      return "decimal";
    case T.MYSQL_TYPE_DATE:
    case T.MYSQL_TYPE_NEWDATE:
      return "date";
    case T.MYSQL_TYPE_DATETIME:
    case T.MYSQL_TYPE_DATETIME2:
    case T.MYSQL_TYPE_TIMESTAMP:
    case T.MYSQL_TYPE_TIMESTAMP2:
      return "datetime";
    case T.MYSQL_TYPE_TIME:
    case T.MYSQL_TYPE_TIME2:
      return "time";
    case T.MYSQL_TYPE_BIT:
      return "bit";
    case T.MYSQL_TYPE_JSON:
      return "json";
    case T.MYSQL_TYPE_ENUM:
      return "enum";
    case T.MYSQL_TYPE_SET:
      return "set";
    case T.MYSQL_TYPE_NULL:
      return "null_type";
    case T.MYSQL_TYPE_VARCHAR:
    case T.MYSQL_TYPE_VAR_STRING:
    case T.MYSQL_TYPE_STRING:
    case T.MYSQL_TYPE_TINY_BLOB:
    case T.MYSQL_TYPE_MEDIUM_BLOB:
    case T.MYSQL_TYPE_LONG_BLOB:
    case T.MYSQL_TYPE_BLOB:
      // ENUM and SET columns travel as strings flagged as such.
      if ((column.flags & F.ENUM_FLAG) !== 0) return "enum";
      if ((column.flags & F.SET_FLAG) !== 0) return "set";
      if (column.characterSet === BINARY_COLLATION) return column.type === T.MYSQL_TYPE_STRING ? "fixed_bytes" : "bytes";
      return mariadbFormat(column.extendedMetadata) === "json" ? "json" : "text";
    default:
      return "other";
  }
}

/** Whether the content detectors read a column's values (text and JSON, not numbers, bytes, ENUM or SET labels). */
export function isMysqlTextKind(kind: MysqlValueKind): boolean {
  return kind === "text" || kind === "json";
}

/** Options of {@link maskMysqlValue} and {@link createMysqlValueMasker}. */
export interface MaskMysqlValueOptions extends MaskTextOptions {
  /** The column's definition (type, flags, collation, display length, decimals). */
  readonly column: MysqlColumnShape;
  /** Text rows (COM_QUERY) or binary rows (COM_STMT_EXECUTE). */
  readonly format: MysqlRowFormat;
}

/** Masks one value; see {@link createMysqlValueMasker}, which does the per-column work once. */
export function maskMysqlValue(value: Buffer | null, options: MaskMysqlValueOptions): Buffer | null {
  if (value === null) return null;
  return createMysqlValueMasker(options)(value);
}

/**
 * Makes the masker of one column's values: a function from a non-NULL value (as the row carries it,
 * without its length prefix) to its masked form, NULL included.
 *
 * By kind (the `null` style is NULL for every kind; a NULL value stays NULL, the caller's business):
 * - text: the style's text ({@link maskText}); when the column's display length bounds it
 *   (characters = display length / the collation's bytes per character), a placeholder or token too
 *   long becomes `*`s or bare base32 digest characters, as for PostgreSQL's varchar(n).
 * - integer: 0 (text `0`, zero-filled to the display length under ZEROFILL; binary, zero bytes of
 *   the type's width); for `pseudonym`, a non-negative integer below 2^(bits - 1) from the HMAC of
 *   the value's decimal text, so it is the same in text and binary rows and for signed and
 *   unsigned columns of one width.
 * - decimal: `0` with the column's decimals (`0.00`); for `pseudonym`, an integer from the HMAC of
 *   the normalised decimal (1.5 and 1.50 agree) that fits the column's precision, at most 15 digits.
 * - float, double (0), date (2000-01-01), datetime and timestamp (2000-01-01 00:00:00, with the
 *   column's fractional digits), time (00:00:00), year (2000): that fixed value for every style
 *   but `null`; a pseudonym of a date would be noise, not a join key.
 * - json: the JSON string `"[masked]"`; for `pseudonym`, the token as a JSON string.
 * - enum, set: the empty string for every style but `null`. MySQL reads it as the empty SET and
 *   as ENUM's error value (index 0), which any client reading the column must already accept; a
 *   placeholder or token would be a label the column does not have.
 * - bytes (VARBINARY, BLOB): the placeholder's bytes (also for `partial`: bytes have no readable
 *   suffix); for `pseudonym`, the token's bytes; cut to the display length.
 * - fixed_bytes (BINARY(n)): as bytes, then padded with 0x00 or cut to the value's length (n).
 * - bit: zero bits of the same length.
 * - null_type, other (GEOMETRY, VECTOR, unknown types): NULL. No fixed geometry is valid for every
 *   geometry column and a location is exactly what must not leak; NULL is valid on the wire for
 *   every type, so it fails closed.
 *
 * Text is taken and produced as UTF-8 (the connection's character set, utf8mb4 for the gateway).
 *
 * @throws TypeError when the options are invalid (unknown style, short pseudonym key...)
 * @returns a function that throws MaskError `invalid_value` when a pseudonym needs the value read
 *   and it is not a value of its type (an integer column whose text is not an integer); the
 *   caller must fail closed (NULL or an error), never pass the value through
 */
export function createMysqlValueMasker(options: MaskMysqlValueOptions): (value: Buffer) => Buffer | null {
  const style = checkTextOptions(options);
  const { column, format } = options;
  if (format !== "text" && format !== "binary") throw new TypeError("options.format: expected `text` or `binary`");
  if (style === "null") return () => null;
  const binary = format === "binary";
  const key = options.key ?? new Uint8Array();
  const pseudonym = style === "pseudonym";
  const kind = mysqlValueKind(column);

  switch (kind) {
    case "null_type":
    case "other":
      return () => null;

    case "integer": {
      const { width, bits } = integerLayout(column.type);
      const unsigned = (column.flags & F.UNSIGNED_FLAG) !== 0;
      const zerofill = (column.flags & F.ZEROFILL_FLAG) !== 0;
      const encode = (n: bigint): Buffer => {
        if (binary) {
          const out = Buffer.alloc(width);
          if (width === 8) out.writeBigUInt64LE(n);
          else out.writeUIntLE(Number(n), 0, width);
          return out;
        }
        const text = n.toString();
        return Buffer.from(zerofill ? text.padStart(column.columnLength, "0") : text, "ascii");
      };
      if (!pseudonym) return constant(encode(0n));
      const bound = 2n ** BigInt(bits - 1);
      return (value) => encode(pseudonymInteger(key, integerText(value, binary, width, unsigned), bound));
    }

    case "year":
      return constant(binary ? uint16(2000) : Buffer.from("2000", "ascii"));
    case "float":
      return constant(binary ? Buffer.alloc(4) : Buffer.from("0", "ascii"));
    case "double":
      return constant(binary ? Buffer.alloc(8) : Buffer.from("0", "ascii"));

    case "decimal": {
      // Decimals beyond 38 mean "not fixed" (31 in MySQL, 39 in MariaDB).
      const scale = column.decimals <= 38 ? column.decimals : 0;
      const unsigned = (column.flags & F.UNSIGNED_FLAG) !== 0;
      // The display length of DECIMAL(M, D) is M, plus 1 for the point when D > 0, plus 1 for the sign.
      const precision = column.columnLength - (scale > 0 ? 1 : 0) - (unsigned ? 0 : 1);
      const digits = Math.min(Math.max(precision - scale, 0), 15);
      const encode = (n: bigint): Buffer => Buffer.from(n.toString() + (scale > 0 ? `.${"0".repeat(scale)}` : ""), "ascii");
      if (!pseudonym || digits === 0) return constant(encode(0n));
      const bound = 10n ** BigInt(digits);
      return (value) => encode(pseudonymInteger(key, decimalText(value), bound));
    }

    case "date":
      return constant(binary ? DATE_2000 : Buffer.from("2000-01-01", "ascii"));
    case "datetime":
      // Binary: a 4-byte date means midnight, as the server itself sends it.
      return constant(binary ? DATE_2000 : Buffer.from(`2000-01-01 00:00:00${fraction(column.decimals)}`, "ascii"));
    case "time":
      // Binary: a 0-byte TIME is 00:00:00.
      return constant(binary ? Buffer.alloc(0) : Buffer.from(`00:00:00${fraction(column.decimals)}`, "ascii"));

    case "bit":
      return (value) => Buffer.alloc(value.length);

    case "json":
      if (!pseudonym) return constant(Buffer.from(JSON.stringify(REDACTED_TEXT), "utf8"));
      return (value) => Buffer.from(JSON.stringify(pseudonymToken(pseudonymDigest(key, value))), "utf8");

    case "enum":
    case "set":
      return constant(Buffer.alloc(0));

    case "text": {
      const limit = textLimit(column);
      const keep = options.keep ?? DEFAULT_PARTIAL_KEEP;
      if (style === "redact") return constant(Buffer.from(fitText(REDACTED_TEXT, limit, undefined, style), "utf8"));
      return (value) => {
        if (style === "partial") return Buffer.from(fitText(maskPartial(value.toString("utf8"), keep), limit, undefined, style), "utf8");
        const digest = pseudonymDigest(key, value);
        return Buffer.from(fitText(pseudonymToken(digest), limit, digest, style), "utf8");
      };
    }

    case "bytes": {
      const limit = column.columnLength > 0 ? column.columnLength : undefined;
      if (!pseudonym) return constant(cutBytes(Buffer.from(REDACTED_TEXT, "ascii"), limit));
      return (value) => pseudonymBytes(pseudonymDigest(key, value), limit);
    }

    case "fixed_bytes":
      return (value) => {
        const masked = pseudonym ? pseudonymBytes(pseudonymDigest(key, value), value.length) : cutBytes(Buffer.from(REDACTED_TEXT, "ascii"), value.length);
        return masked.length === value.length ? masked : Buffer.concat([masked, Buffer.alloc(value.length - masked.length)]);
      };
  }
}

const DATE_2000 = Buffer.from([0xd0, 0x07, 1, 1]);

function constant(out: Buffer): () => Buffer {
  return () => out;
}

function uint16(value: number): Buffer {
  const out = Buffer.alloc(2);
  out.writeUInt16LE(value);
  return out;
}

/** `.000` for a temporal column with fractional seconds (decimals 1 to 6). */
function fraction(decimals: number): string {
  return decimals >= 1 && decimals <= 6 ? `.${"0".repeat(decimals)}` : "";
}

/** Binary width and range bits of the integer types; MEDIUMINT travels in 4 bytes but holds 24 bits. */
function integerLayout(type: number): { width: number; bits: number } {
  switch (type) {
    case T.MYSQL_TYPE_TINY:
      return { width: 1, bits: 8 };
    case T.MYSQL_TYPE_SHORT:
      return { width: 2, bits: 16 };
    case T.MYSQL_TYPE_INT24:
      return { width: 4, bits: 24 };
    case T.MYSQL_TYPE_LONG:
      return { width: 4, bits: 32 };
    default:
      return { width: 8, bits: 64 };
  }
}

/** The decimal text of an integer value, canonical (no sign for 0, no leading zeros of ZEROFILL). */
function integerText(value: Buffer, binary: boolean, width: number, unsigned: boolean): string {
  if (binary) {
    if (value.length !== width) throw new MaskError("invalid_value", `a binary integer value is not ${width} bytes`);
    if (width === 8) return (unsigned ? value.readBigUInt64LE() : value.readBigInt64LE()).toString();
    return String(unsigned ? value.readUIntLE(0, width) : value.readIntLE(0, width));
  }
  const text = value.toString("latin1");
  if (!/^[+-]?\d{1,20}$/.test(text)) throw new MaskError("invalid_value", "a text integer value is not an integer");
  return BigInt(text).toString();
}

/** A non-negative integer below `bound` from the HMAC of a value's canonical text. */
function pseudonymInteger(key: Uint8Array, canonical: string, bound: bigint): bigint {
  return pseudonymDigest(key, Buffer.from(canonical, "utf8")).readBigUInt64BE(0) % bound;
}

/** The canonical decimal of a DECIMAL value (text in both protocols): no leading or trailing zeros. */
function decimalText(value: Buffer): string {
  const match = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(value.toString("latin1"));
  if (match === null || ((match[2] ?? "") === "" && (match[3] ?? "") === "")) throw new MaskError("invalid_value", "a decimal value is not a number");
  const whole = (match[2] ?? "").replace(/^0+/, "") || "0";
  const decimals = (match[3] ?? "").replace(/0+$/, "");
  const zero = whole === "0" && decimals === "";
  return (match[1] === "-" && !zero ? "-" : "") + whole + (decimals === "" ? "" : `.${decimals}`);
}

/**
 * Bytes per character of a collation, for the character count a display length allows: 1 for
 * latin1, ascii and binary, 3 for utf8mb3, else 4 (utf8mb4 and anything unknown, the smallest count).
 * https://mariadb.com/kb/en/supported-character-sets-and-collations/
 */
function bytesPerCharacter(collation: number): number {
  if (collation === BINARY_COLLATION || SINGLE_BYTE.has(collation)) return 1;
  if (collation === 33 || collation === 83 || (collation >= 192 && collation <= 215) || collation === 223) return 3;
  return 4;
}

/** latin1 and ascii collations. */
const SINGLE_BYTE: ReadonlySet<number> = new Set([5, 8, 11, 15, 31, 47, 48, 49, 65, 94]);

/** The most characters a text column's display length allows, when it says. */
function textLimit(column: MysqlColumnShape): number | undefined {
  const limit = Math.floor(column.columnLength / bytesPerCharacter(column.characterSet));
  return limit > 0 ? limit : undefined;
}

function codePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/** Fits a masked text in `limit` characters: `*`s for the placeholder, digest characters for a token, a cut otherwise. */
function fitText(out: string, limit: number | undefined, digest: Buffer | undefined, style: MaskStyle): string {
  if (limit === undefined || codePoints(out) <= limit) return out;
  if (digest !== undefined) return base32(digest).slice(0, limit);
  if (style === "redact") return "*".repeat(limit);
  return Array.from(out).slice(0, limit).join("");
}

function cutBytes(bytes: Buffer, limit: number | undefined): Buffer {
  return limit === undefined || bytes.length <= limit ? bytes : bytes.subarray(0, limit);
}

/** The token's bytes, or the digest's first bytes when the token does not fit. */
function pseudonymBytes(digest: Buffer, limit: number | undefined): Buffer {
  const token = Buffer.from(pseudonymToken(digest), "ascii");
  if (limit === undefined || token.length <= limit) return token;
  return Buffer.from(digest.subarray(0, Math.min(limit, digest.length)));
}

/**
 * The `format` of MariaDB's extended metadata (`json` for JSON columns): pairs of a kind byte
 * (0 type name, 1 format) and a string<lenenc>.
 * https://mariadb.com/kb/en/result-set-packets/#column-definition-packet
 */
function mariadbFormat(extended: Buffer | undefined): string | undefined {
  if (extended === undefined) return undefined;
  let offset = 0;
  while (offset + 2 <= extended.length) {
    const kind = extended[offset] as number;
    const length = extended[offset + 1] as number;
    // Values are short names; a longer length prefix is not a format this needs.
    if (length >= 0xfb) return undefined;
    const value = extended.toString("utf8", offset + 2, offset + 2 + length);
    if (kind === 1) return value;
    offset += 2 + length;
  }
  return undefined;
}
