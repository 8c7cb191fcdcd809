/**
 * Mask styles over text values: what replaces a sensitive value once a column or a detector says
 * it must be masked. Pure: no I/O, no clock; the pseudonym key comes from the gateway's config.
 */
import { createHmac } from "node:crypto";

/** The mask styles, as `masking.columns[].style` names them. */
export const maskStyles = ["redact", "partial", "null", "pseudonym"] as const;

/**
 * How a value is masked:
 *
 * - `redact`: a fixed placeholder, {@link REDACTED_TEXT}.
 * - `partial`: the last `keep` letters and digits stay, every other one becomes `*`; spaces and
 *   punctuation stay where they were, so the length and layout are the original's
 *   (`**** **** **** 1111`). A value with no more than `keep` of them is masked whole.
 * - `null`: SQL NULL.
 * - `pseudonym`: a deterministic keyed token, `psd_` and the base32 of the first 10 bytes of
 *   HMAC-SHA256(key, value): the same value gives the same token under one key, so joins,
 *   GROUP BY and DISTINCT still behave, and another key gives unrelated tokens.
 */
export type MaskStyle = (typeof maskStyles)[number];

/** What `redact` puts in place of a text value. */
export const REDACTED_TEXT = "[masked]";

/** How many trailing characters `partial` keeps when the config does not say. */
export const DEFAULT_PARTIAL_KEEP = 4;

/** The prefix of a pseudonym token. */
export const PSEUDONYM_PREFIX = "psd_";

/** The shortest pseudonym key accepted, in bytes: the key is all that stands between a dictionary and the tokens. */
export const MIN_PSEUDONYM_KEY_BYTES = 16;

/** Options of {@link maskText}. */
export interface MaskTextOptions {
  /** The mask style. */
  readonly style: MaskStyle;
  /** For `partial`: how many trailing letters and digits to keep; {@link DEFAULT_PARTIAL_KEEP} by default. */
  readonly keep?: number;
  /** For `pseudonym`: the HMAC key, at least {@link MIN_PSEUDONYM_KEY_BYTES} bytes. */
  readonly key?: Uint8Array;
}

/**
 * Masks a text value.
 *
 * @returns the masked text, or null for the `null` style
 * @throws TypeError when the options are not valid for the style (unknown style, negative or
 *   fractional `keep`, missing or short `key` for `pseudonym`)
 */
export function maskText(value: string, options: MaskTextOptions): string | null {
  const style = checkTextOptions(options);
  switch (style) {
    case "redact":
      return REDACTED_TEXT;
    case "null":
      return null;
    case "partial":
      return maskPartial(value, options.keep ?? DEFAULT_PARTIAL_KEEP);
    case "pseudonym":
      return pseudonymToken(pseudonymDigest(options.key as Uint8Array, Buffer.from(value, "utf8")));
  }
}

/**
 * Validates options and returns the style.
 *
 * @throws TypeError naming the bad option
 */
export function checkTextOptions(options: MaskTextOptions): MaskStyle {
  const { style, keep, key } = options;
  if (!(maskStyles as readonly unknown[]).includes(style)) throw new TypeError(`options.style: unknown mask style \`${String(style)}\``);
  if (keep !== undefined && !(Number.isSafeInteger(keep) && keep >= 0)) throw new TypeError("options.keep: expected a non-negative integer");
  if (style === "pseudonym") {
    if (!(key instanceof Uint8Array)) throw new TypeError("options.key: the pseudonym style needs a key");
    if (key.length < MIN_PSEUDONYM_KEY_BYTES) throw new TypeError(`options.key: expected at least ${MIN_PSEUDONYM_KEY_BYTES} bytes`);
  }
  return style;
}

// Spaces, line breaks and punctuation keep their place in a partial mask; everything else is masked.
const SEPARATOR = /^[\p{P}\p{Z}\s]$/u;

/**
 * The `partial` style: keeps the last `keep` significant characters (anything but spaces and
 * punctuation), replaces the other significant characters with `*` one for one (by code point),
 * and keeps spaces and punctuation. With no more than `keep` significant characters, all are masked.
 */
export function maskPartial(value: string, keep: number): string {
  if (ASCII.test(value)) return maskPartialAscii(value, keep);
  const chars = Array.from(value);
  const separator = chars.map((char) => SEPARATOR.test(char));
  const significant = separator.reduce((count, isSeparator) => (isSeparator ? count : count + 1), 0);
  let reveal = significant > keep ? keep : 0;
  for (let i = chars.length - 1; i >= 0; i--) {
    if (separator[i] === true) continue;
    if (reveal > 0) reveal--;
    else chars[i] = "*";
  }
  return chars.join("");
}

const ASCII = /^[\x00-\x7f]*$/;
/** SEPARATOR for each ASCII code, computed once: the hot path of a masked bulk read tests no regex per character. */
const ASCII_SEPARATOR: readonly boolean[] = Array.from({ length: 128 }, (_, code) => SEPARATOR.test(String.fromCharCode(code)));

/** {@link maskPartial} for ASCII text, which has one code unit per code point. */
function maskPartialAscii(value: string, keep: number): string {
  let significant = 0;
  for (let i = 0; i < value.length; i++) if (ASCII_SEPARATOR[value.charCodeAt(i)] !== true) significant++;
  let reveal = significant > keep ? keep : 0;
  const out = new Array<string>(value.length);
  for (let i = value.length - 1; i >= 0; i--) {
    const char = value[i] as string;
    if (ASCII_SEPARATOR[value.charCodeAt(i)] === true) out[i] = char;
    else if (reveal > 0) {
      reveal--;
      out[i] = char;
    } else out[i] = "*";
  }
  return out.join("");
}

/** {@link ASCII_SEPARATOR} as bytes, for the byte-level fast path. */
const ASCII_SEPARATOR_BYTES: Uint8Array = Uint8Array.from(ASCII_SEPARATOR, (separator) => (separator ? 1 : 0));
const STAR = 0x2a;

/**
 * {@link maskPartial} over the UTF-8 bytes of a value, in place: when bytes[start, end) are all
 * ASCII, masks them as `maskPartial` would (same length, one byte per character) and returns true;
 * otherwise changes nothing and returns false, for the caller to take the string path.
 */
export function maskPartialAsciiInPlace(bytes: Uint8Array, start: number, end: number, keep: number): boolean {
  let significant = 0;
  for (let i = start; i < end; i++) {
    const byte = bytes[i] as number;
    if (byte > 0x7f) return false;
    significant += 1 - (ASCII_SEPARATOR_BYTES[byte] as number);
  }
  let reveal = significant > keep ? keep : 0;
  for (let i = end - 1; i >= start; i--) {
    if (ASCII_SEPARATOR_BYTES[bytes[i] as number] === 1) continue;
    if (reveal > 0) reveal--;
    else bytes[i] = STAR;
  }
  return true;
}

/** HMAC-SHA256 of a value under the pseudonym key: the seed of every pseudonym, text or typed. */
export function pseudonymDigest(key: Uint8Array, value: Uint8Array): Buffer {
  return createHmac("sha256", key).update(value).digest();
}

/** The text token of a digest: {@link PSEUDONYM_PREFIX} and the base32 of its first 10 bytes (16 characters). */
export function pseudonymToken(digest: Uint8Array): string {
  return PSEUDONYM_PREFIX + base32(digest.subarray(0, 10));
}

const BASE32_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

/** RFC 4648 base32, lower case, without padding. */
export function base32(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32_ALPHABET[(value >>> bits) & 31];
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32_ALPHABET[(value << (5 - bits)) & 31];
  return out;
}
