/**
 * Content detectors: the second masking layer, run over every text value that reaches a client
 * whatever its column. Each detector looks for one kind of sensitive value and validates what it
 * finds (Luhn, mod 97, check letters, Verhoeff, a JSON header) so that ordinary numbers and ids
 * are left alone.
 *
 * Every scanner runs in time linear in the text: hand-written loops, or regular expressions whose
 * repetitions are bounded or cannot backtrack (a repeated class is always followed by a character
 * outside it), so no value can make a scan quadratic.
 */

/** The detectors, in the order their hits win a tie (see {@link Detectors.scan}). */
export const detectorNames = ["card_number", "email", "ssn", "national_id", "iban", "phone", "secret"] as const;

/**
 * What a detector looks for:
 *
 * - `card_number`: payment card numbers, 13 to 19 digits, bare or grouped by spaces or dashes as
 *   cards are printed (4-4-4-4, 4-6-5, ...), from a known issuer range with that issuer's lengths,
 *   passing Luhn. UATP (prefix 1) is left out: too many plain integers start with 1.
 * - `email`: e-mail addresses with an ASCII local part of at most 64 characters and a domain of at
 *   least two labels ending in an alphabetic (or `xn--`) top-level label.
 * - `ssn`: US social security numbers written NNN-NN-NNNN, without the never-issued areas 000,
 *   666 and 9xx, group 00 and serial 0000.
 * - `national_id`: UK National Insurance numbers (prefix rules, suffix A-D); French NIR (INSEE
 *   number, key checked, Corsican 2A/2B); Spanish DNI and NIE (check letter); Italian codice
 *   fiscale (check character, omocodia digits); Indian Aadhaar (Verhoeff), grouped 4-4-4 or, when
 *   written as 12 bare digits, only after the word "aadhaar". Letters must be upper case.
 * - `iban`: IBANs of a registered country at that country's length, electronic (no spaces) or
 *   printed in groups of four, in upper case, passing mod 97.
 * - `phone`: international numbers (`+`, country code, 8 to 15 digits with single spaces, dashes or
 *   one parenthesised group) and North American numbers in a clear format ((415) 555-0100,
 *   415-555-0100, 415.555.0100). Bare digit strings are never phone numbers.
 * - `secret`: AWS access key ids, AWS secret keys next to an `aws_secret`/`secret_access_key`
 *   name, PEM private key blocks (to the end of the text if the END line is missing), JWTs whose
 *   header decodes to JSON with an `alg`, GitHub, Slack and Stripe tokens, and generic tokens: 32 or
 *   more characters of `[A-Za-z0-9+/_=-]` with at least three of lower case, upper case, digits
 *   and symbols, a Shannon entropy of at least 4 bits per character, a character class that
 *   changes between neighbours at least 40% of the time (not words glued together), and not hex
 *   with dashes. A run is judged whole: a secret glued to a long low-entropy run can pass unseen.
 */
export type DetectorName = (typeof detectorNames)[number];

/** A sensitive value found in a text: `text.slice(start, end)`, in UTF-16 code units. */
export interface DetectorHit {
  /** The detector that found it. */
  readonly detector: DetectorName;
  /** Index of the first code unit. */
  readonly start: number;
  /** Index one past the last code unit. */
  readonly end: number;
}

/** What {@link Detectors.redact} returns. */
export interface RedactResult {
  /** The text with every hit replaced. */
  readonly text: string;
  /** The hits, in the coordinates of the original text. */
  readonly hits: DetectorHit[];
}

/** A set of detectors, made by {@link createDetectors}. Stateless: one instance serves every session. */
export interface Detectors {
  /** The enabled detectors, in canonical order, without duplicates. */
  readonly names: readonly DetectorName[];
  /**
   * Finds every sensitive value in `text`. Hits are sorted and never overlap: hits of different
   * detectors that overlap are merged into one spanning all of them (so redacting every hit hides
   * everything any detector saw), credited to the longest of them (the earlier detector in
   * {@link detectorNames} on a tie).
   */
  scan(text: string): DetectorHit[];
  /**
   * Replaces each hit of {@link Detectors.scan} by what `replace` returns for it.
   *
   * @param replace - gets the hit and the sensitive text it covers
   */
  redact(text: string, replace: (hit: DetectorHit, value: string) => string): RedactResult;
}

/**
 * Makes a set of detectors.
 *
 * @param names - the detectors to enable, e.g. from a connection's `masking.detectors`
 * @throws TypeError when `names` is not an array of detector names
 */
export function createDetectors(names: readonly DetectorName[]): Detectors {
  if (!Array.isArray(names)) throw new TypeError("names: expected an array of detector names");
  for (const name of names) {
    if (!(detectorNames as readonly unknown[]).includes(name)) throw new TypeError(`names: unknown detector \`${String(name)}\``);
  }
  const enabled = detectorNames.filter((name) => names.includes(name));
  const scanners = enabled.map((name) => ({ name, scan: SCANNERS[name] }));

  function scan(text: string): DetectorHit[] {
    if (typeof text !== "string") throw new TypeError("text: expected a string");
    const raw: DetectorHit[] = [];
    for (const { name, scan: run } of scanners) {
      run(text, (start, end) => {
        if (end > start) raw.push({ detector: name, start, end });
      });
    }
    return merge(raw);
  }

  return {
    names: enabled,
    scan,
    redact(text, replace) {
      const hits = scan(text);
      if (hits.length === 0) return { text, hits };
      let out = "";
      let at = 0;
      for (const hit of hits) {
        out += text.slice(at, hit.start) + replace(hit, text.slice(hit.start, hit.end));
        at = hit.end;
      }
      return { text: out + text.slice(at), hits };
    },
  };
}

type Emit = (start: number, end: number) => void;
type Scanner = (text: string, emit: Emit) => void;

const rank = new Map<DetectorName, number>(detectorNames.map((name, index) => [name, index]));

/** Sorts hits and merges the overlapping ones (see {@link Detectors.scan}). */
function merge(hits: DetectorHit[]): DetectorHit[] {
  if (hits.length <= 1) return hits;
  hits.sort((a, b) => a.start - b.start || b.end - a.end || (rank.get(a.detector) ?? 0) - (rank.get(b.detector) ?? 0));
  const out: DetectorHit[] = [];
  let current = hits[0] as DetectorHit;
  let best = current;
  for (let i = 1; i < hits.length; i++) {
    const hit = hits[i] as DetectorHit;
    if (hit.start < current.end) {
      if (hit.end - hit.start > best.end - best.start) best = hit;
      if (hit.end > current.end) current = { detector: current.detector, start: current.start, end: hit.end };
      continue;
    }
    out.push({ detector: best.detector, start: current.start, end: current.end });
    current = hit;
    best = hit;
  }
  out.push({ detector: best.detector, start: current.start, end: current.end });
  return out;
}

// Character classes over UTF-16 code units; charCodeAt past the end is NaN, which is in none.
const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isUpper = (c: number): boolean => c >= 65 && c <= 90;
const isLower = (c: number): boolean => c >= 97 && c <= 122;
const isAlnum = (c: number): boolean => isDigit(c) || isUpper(c) || isLower(c);
const isWord = (c: number): boolean => isAlnum(c) || c === 95;

// ---------------------------------------------------------------------------------------------
// card_number

type Range = readonly [low: string, high: string, lengths: readonly number[]];

const LONG = [16, 17, 18, 19];
const ANY = [13, 14, 15, 16, 17, 18, 19];

/**
 * Issuer identification number ranges and the lengths each issuer uses; prefixes of one range have
 * the same number of digits, so they compare as strings.
 */
const CARD_RANGES: readonly Range[] = [
  ["4", "4", [13, 16, 19]], // Visa
  ["51", "55", [16]], // Mastercard
  ["2221", "2720", [16]], // Mastercard 2-series
  ["34", "34", [15]], // American Express
  ["37", "37", [15]],
  ["300", "305", [14, ...LONG]], // Diners Club
  ["3095", "3095", [14, ...LONG]],
  ["36", "36", [14, ...LONG]],
  ["38", "39", [14, ...LONG]],
  ["3528", "3589", LONG], // JCB
  ["6011", "6011", LONG], // Discover
  ["644", "649", LONG],
  ["65", "65", LONG], // Discover, RuPay
  ["62", "62", LONG], // UnionPay (and Discover's 622126-622925)
  ["2200", "2204", LONG], // Mir
  ["50", "50", ANY], // Maestro, RuPay 508
  ["56", "58", ANY],
  ["639", "639", ANY],
  ["67", "67", ANY],
  ["60", "60", [16]], // RuPay
  ["353", "353", [16]],
  ["356", "356", [16]],
  ["81", "82", [16]],
  ["9792", "9792", [16]], // Troy
];

function knownIssuer(prefix: string, length: number): boolean {
  for (const [low, high, lengths] of CARD_RANGES) {
    const head = prefix.slice(0, low.length);
    if (head >= low && head <= high && lengths.includes(length)) return true;
  }
  return false;
}

/** Luhn over the digits of groups `first..last`, read from the text without copying. */
function luhnValid(text: string, starts: number[], ends: number[], first: number, last: number): boolean {
  let sum = 0;
  let double = false;
  for (let k = last; k >= first; k--) {
    for (let i = (ends[k] as number) - 1; i >= (starts[k] as number); i--) {
      let d = text.charCodeAt(i) - 48;
      if (double) {
        d *= 2;
        if (d > 9) d -= 9;
      }
      sum += d;
      double = !double;
    }
  }
  return sum % 10 === 0;
}

/**
 * Cards: find runs of digit groups joined by single spaces or dashes, then, left to right, the
 * longest run of consecutive groups laid out like a printed card (or one bare group) that is a
 * valid number. At most 19 groups are tried from each group, so the work is linear.
 */
const scanCards: Scanner = (text, emit) => {
  const n = text.length;
  let i = 0;
  while (i < n) {
    if (!isDigit(text.charCodeAt(i))) {
      i++;
      continue;
    }
    const runStart = i;
    const starts: number[] = [];
    const ends: number[] = [];
    for (;;) {
      starts.push(i);
      while (isDigit(text.charCodeAt(i))) i++;
      ends.push(i);
      const c = text.charCodeAt(i);
      if ((c === 32 || c === 45) && isDigit(text.charCodeAt(i + 1))) {
        i++;
        continue;
      }
      break;
    }
    // A card is not glued to a word, nor part of a decimal number.
    const before = text.charCodeAt(runStart - 1);
    const leftOpen = !isWord(before) && !((before === 46 || before === 44) && isDigit(text.charCodeAt(runStart - 2)));
    const after = text.charCodeAt(i);
    const rightOpen = !isWord(after) && !((after === 46 || after === 44) && isDigit(text.charCodeAt(i + 1)));
    cardsInRun(text, starts, ends, leftOpen, rightOpen, emit);
  }
};

function cardsInRun(text: string, starts: number[], ends: number[], leftOpen: boolean, rightOpen: boolean, emit: Emit): void {
  const count = starts.length;
  let g = leftOpen ? 0 : 1;
  while (g < count) {
    // Only a bare number or a group of 4 can open a card: skip the rest in constant time.
    const opening = groupLength(starts, ends, g);
    if (opening !== 4) {
      if (opening >= 13 && opening <= 19 && (g < count - 1 || rightOpen) && isCard(text, starts, ends, g, g)) emit(starts[g] as number, ends[g] as number);
      g++;
      continue;
    }
    let last = g - 1;
    let digits = 0;
    while (last + 1 < count && digits + groupLength(starts, ends, last + 1) <= 19) {
      last++;
      digits += groupLength(starts, ends, last);
    }
    let found = -1;
    for (let k = last; k >= g; k--) {
      if (k === count - 1 && !rightOpen) continue;
      if (isCard(text, starts, ends, g, k)) {
        found = k;
        break;
      }
    }
    if (found === -1) {
      g++;
      continue;
    }
    emit(starts[g] as number, ends[found] as number);
    g = found + 1;
  }
}

function groupLength(starts: number[], ends: number[], index: number): number {
  return (ends[index] as number) - (starts[index] as number);
}

function isCard(text: string, starts: number[], ends: number[], first: number, last: number): boolean {
  let length = 0;
  for (let k = first; k <= last; k++) length += groupLength(starts, ends, k);
  if (length < 13 || length > 19) return false;
  if (first !== last) {
    // Printed layouts: 4 digits first, then groups of 4 or 6, the last 1 to 6; one separator kind.
    const separator = text.charCodeAt(ends[first] as number);
    for (let k = first; k <= last; k++) {
      const size = groupLength(starts, ends, k);
      if (k === first ? size !== 4 : k === last ? size > 6 : size !== 4 && size !== 6) return false;
      if (k < last && text.charCodeAt(ends[k] as number) !== separator) return false;
    }
  }
  let prefix = "";
  for (let k = first; k <= last && prefix.length < 6; k++) prefix += text.slice(starts[k], ends[k]);
  return knownIssuer(prefix, length) && luhnValid(text, starts, ends, first, last);
}

// ---------------------------------------------------------------------------------------------
// email

const isLocalChar = (c: number): boolean => isAlnum(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45;
const isLabelChar = (c: number): boolean => isAlnum(c) || c === 45;

/** From each `@`: at most 64 characters back for the local part, at most 253 on for the domain. */
const scanEmails: Scanner = (text, emit) => {
  for (let at = text.indexOf("@"); at !== -1; at = text.indexOf("@", at + 1)) {
    let start = at;
    while (start > 0 && at - start < 64 && isLocalChar(text.charCodeAt(start - 1))) start--;
    while (start < at && text.charCodeAt(start) === 46) start++;
    if (start === at) continue;
    const end = domainEnd(text, at + 1);
    if (end !== -1) emit(start, end);
  }
};

function domainEnd(text: string, from: number): number {
  let pos = from;
  let labels = 0;
  let lastLabel = from;
  for (;;) {
    const labelStart = pos;
    while (pos - labelStart < 64 && isLabelChar(text.charCodeAt(pos))) pos++;
    const length = pos - labelStart;
    if (length === 0 || length > 63) return -1;
    if (text.charCodeAt(labelStart) === 45 || text.charCodeAt(pos - 1) === 45) return -1;
    labels++;
    lastLabel = labelStart;
    if (pos - from > 253) return -1;
    if (text.charCodeAt(pos) === 46 && isLabelChar(text.charCodeAt(pos + 1))) {
      pos++;
      continue;
    }
    break;
  }
  if (labels < 2) return -1;
  const tld = text.slice(lastLabel, pos);
  return /^(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})$/.test(tld) ? pos : -1;
}

// ---------------------------------------------------------------------------------------------
// ssn

const SSN = /(?<!\d-?)(\d{3})-(\d{2})-(\d{4})(?!-?\d)/g;

const scanSsns: Scanner = (text, emit) => {
  for (const m of text.matchAll(SSN)) {
    const [whole, area = "", group = "", serial = ""] = m;
    if (area === "000" || area === "666" || area.startsWith("9") || group === "00" || serial === "0000") continue;
    emit(m.index, m.index + whole.length);
  }
};

// ---------------------------------------------------------------------------------------------
// national_id

/** UK National Insurance number: https://www.gov.uk/hmrc-internal-manuals/national-insurance-manual/nim39110 */
const NINO = /(?<![A-Za-z0-9])([A-CEGHJ-PR-TW-Z])([A-CEGHJ-NPR-TW-Z]) ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])/g;
const NINO_NEVER_ISSUED = new Set(["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"]);

/** French NIR (numéro de sécurité sociale): 13 digits and a key, 97 - (number mod 97). */
const NIR = /(?<![A-Za-z0-9])([1-478]) ?(\d{2}) ?(\d{2}) ?(\d{2}|2[AB]) ?(\d{3}) ?(\d{3}) ?(\d{2})(?![A-Za-z0-9])/g;

/** Spanish DNI (8 digits) and NIE (X, Y or Z and 7 digits), then the check letter. */
const DNI = /(?<![A-Za-z0-9])(?:([XYZ])-?(\d{7})|(\d{8}))-?([A-Z])(?![A-Za-z0-9])/g;
const DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE";

/** Italian codice fiscale, with the letters that stand for digits in omocodia codes. */
const CODICE_FISCALE =
  /(?<![A-Za-z0-9])[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z](?![A-Za-z0-9])/g;
// Values of A..Z (and 0..9 as the same index) in odd positions (1st, 3rd, ...).
const CF_ODD = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23];

/** Indian Aadhaar: 12 digits, not starting with 0 or 1, Verhoeff check digit last. */
const AADHAAR_GROUPED = /(?<![A-Za-z0-9]|\d[ -])[2-9]\d{3}([ -])\d{4}\1\d{4}(?![A-Za-z0-9]|[ -]\d)/g;
const AADHAAR_BARE = /(?<![A-Za-z0-9])[2-9]\d{11}(?![A-Za-z0-9])/g;
const AADHAAR_CONTEXT = /aadha?ar/i;

const VERHOEFF_D = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
  [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
  [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
  [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
  [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
  [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
  [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
  [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
  [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];
const VERHOEFF_P = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
  [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
  [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
  [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
  [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
  [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
  [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];

function verhoeffValid(digits: string): boolean {
  let c = 0;
  for (let i = 0; i < digits.length; i++) {
    const d = digits.charCodeAt(digits.length - 1 - i) - 48;
    c = VERHOEFF_D[c]?.[VERHOEFF_P[i % 8]?.[d] ?? 0] ?? 0;
  }
  return c === 0;
}

function codiceFiscaleValid(code: string): boolean {
  let sum = 0;
  for (let i = 0; i < 15; i++) {
    const c = code.charCodeAt(i);
    const index = isDigit(c) ? c - 48 : c - 65;
    sum += i % 2 === 0 ? (CF_ODD[index] ?? 0) : index;
  }
  return code.charCodeAt(15) - 65 === sum % 26;
}

function nirValid(m: RegExpExecArray): boolean {
  const [, sex = "", year = "", month = "", department = "", commune = "", order = "", key = ""] = m;
  const mm = Number(month);
  if (!((mm >= 1 && mm <= 12) || (mm >= 20 && mm <= 42) || mm >= 50)) return false;
  const dept = department === "2A" ? "19" : department === "2B" ? "18" : department;
  const number = Number(sex + year + month + dept + commune + order);
  return 97 - (number % 97) === Number(key);
}

const scanNationalIds: Scanner = (text, emit) => {
  for (const m of text.matchAll(NINO)) {
    if (!NINO_NEVER_ISSUED.has(`${m[1]}${m[2]}`)) emit(m.index, m.index + m[0].length);
  }
  for (const m of text.matchAll(NIR)) {
    if (nirValid(m)) emit(m.index, m.index + m[0].length);
  }
  for (const m of text.matchAll(DNI)) {
    const [whole, niePrefix, nieDigits, dniDigits, letter] = m;
    const number = niePrefix !== undefined ? Number(`${"XYZ".indexOf(niePrefix)}${nieDigits}`) : Number(dniDigits);
    if (DNI_LETTERS[number % 23] === letter) emit(m.index, m.index + whole.length);
  }
  for (const m of text.matchAll(CODICE_FISCALE)) {
    if (codiceFiscaleValid(m[0])) emit(m.index, m.index + 16);
  }
  for (const m of text.matchAll(AADHAAR_GROUPED)) {
    if (verhoeffValid(m[0].replace(/[ -]/g, ""))) emit(m.index, m.index + m[0].length);
  }
  for (const m of text.matchAll(AADHAAR_BARE)) {
    if (AADHAAR_CONTEXT.test(text.slice(Math.max(0, m.index - 32), m.index)) && verhoeffValid(m[0])) emit(m.index, m.index + 12);
  }
};

// ---------------------------------------------------------------------------------------------
// iban

/** IBAN lengths by country, from the SWIFT IBAN registry: https://www.swift.com/standards/data-standards/iban-international-bank-account-number */
const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
  CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18,
  FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HN: 28, HR: 21, HU: 28,
  IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20,
  LU: 20, LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28,
  NL: 18, NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24,
  SC: 31, SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26,
  UA: 29, VA: 22, VG: 24, XK: 20, YE: 30,
};

const IBAN_START = /(?<![A-Za-z0-9])([A-Z]{2})(\d{2})/g;

/** ISO 7064 mod 97-10 over BBAN + country + check digits, letters counting A = 10 ... Z = 35. */
function ibanChecksumValid(rearranged: string): boolean {
  let remainder = 0;
  for (let i = 0; i < rearranged.length; i++) {
    const c = rearranged.charCodeAt(i);
    remainder = isDigit(c) ? (remainder * 10 + (c - 48)) % 97 : (remainder * 100 + (c - 55)) % 97;
  }
  return remainder === 1;
}

const scanIbans: Scanner = (text, emit) => {
  for (const m of text.matchAll(IBAN_START)) {
    const [, country = "", check = ""] = m;
    const length = IBAN_LENGTHS[country];
    if (length === undefined) continue;
    let pos = m.index + 4;
    const grouped = text.charCodeAt(pos) === 32;
    let bban = "";
    let count = 4;
    while (count < length) {
      if (grouped && count % 4 === 0) {
        if (text.charCodeAt(pos) !== 32) break;
        pos++;
      }
      const c = text.charCodeAt(pos);
      if (!isUpper(c) && !isDigit(c)) break;
      bban += text[pos];
      pos++;
      count++;
    }
    if (count !== length || isAlnum(text.charCodeAt(pos))) continue;
    if (ibanChecksumValid(bban + country + check)) emit(m.index, pos);
  }
};

// ---------------------------------------------------------------------------------------------
// phone

/** North American numbers in a clear format; the area code and exchange do not start with 0 or 1. */
const NANP =
  /(?<![A-Za-z0-9_+.(-])(?:1[ .-]?)?(?:\([2-9]\d{2}\) ?[2-9]\d{2}[-.]\d{4}|[2-9]\d{2}([-.])[2-9]\d{2}\1\d{4})(?![A-Za-z0-9_]|[.-]\d)/g;

/**
 * E.164 from each `+` that is not an operator or a time zone offset (nothing word-like before it):
 * a country code digit 1-9, then digits with single spaces or dashes between them and at most one
 * parenthesised group, 8 to 15 digits in all, not followed by more number.
 */
const scanPhones: Scanner = (text, emit) => {
  for (let plus = text.indexOf("+"); plus !== -1; plus = text.indexOf("+", plus + 1)) {
    const before = text.charCodeAt(plus - 1);
    if (isWord(before) || before === 41 || before === 43) continue;
    const first = text.charCodeAt(plus + 1);
    if (!isDigit(first) || first === 48) continue;
    let pos = plus + 1;
    let digits = 0;
    let end = -1;
    let parens = 0; // 0 none yet, 1 open, 2 closed
    for (;;) {
      const c = text.charCodeAt(pos);
      if (isDigit(c)) {
        digits++;
        pos++;
        end = pos;
        if (digits > 15) break;
        continue;
      }
      const previous = text.charCodeAt(pos - 1);
      const next = text.charCodeAt(pos + 1);
      if ((c === 32 || c === 45) && (isDigit(previous) || previous === 41) && (isDigit(next) || (next === 40 && parens === 0))) {
        pos++;
        continue;
      }
      if (c === 40 && parens === 0 && isDigit(next)) {
        parens = 1;
        pos++;
        continue;
      }
      if (c === 41 && parens === 1 && isDigit(previous)) {
        parens = 2;
        pos++;
        end = pos;
        continue;
      }
      break;
    }
    if (digits < 8 || digits > 15 || parens === 1) continue;
    const after = text.charCodeAt(end);
    if (isWord(after) || ((after === 46 || after === 44) && isDigit(text.charCodeAt(end + 1)))) continue;
    emit(plus, end);
  }
  for (const m of text.matchAll(NANP)) emit(m.index, m.index + m[0].length);
};

// ---------------------------------------------------------------------------------------------
// secret

/** Tokens recognisable by their prefix: AWS access key ids, GitHub, Slack and Stripe tokens. */
const PREFIXED_TOKEN =
  /(?<![A-Za-z0-9_-])(?:(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|xox[abpr]-[A-Za-z0-9-]{10,}|[sr]k_(?:live|test)_[A-Za-z0-9]{16,})/g;

const AWS_SECRET_NAME = /aws_?secret|secret_?access_?key/gi;
const AWS_SECRET_VALUE = /(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])/;
/** How far after the name the secret value may start (quotes, `=`, `:`, spaces, the rest of the name). */
const AWS_SECRET_WINDOW = 80;

const PEM_BEGIN = /-----BEGIN (?:[A-Z0-9]{1,24} ){0,4}PRIVATE KEY(?: BLOCK)?-----/g;
const PEM_END = /-----END (?:[A-Z0-9]{1,24} ){0,4}PRIVATE KEY(?: BLOCK)?-----/g;

const JWT = /(?<![A-Za-z0-9_-])(eyJ[A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;

const JWT_ALG = /"alg"\s*:\s*"/;

/**
 * The header of a JWT is a base64url JSON object with an `alg`. Checked without JSON.parse, whose
 * exceptions on text built to fail would cost far more than the scan.
 */
function jwtHeaderValid(segment: string): boolean {
  if (segment.length > 4096) return false;
  const header = Buffer.from(segment, "base64url").toString("utf8").trim();
  return header.startsWith("{") && header.endsWith("}") && JWT_ALG.test(header);
}

const isTokenChar = (c: number): boolean => isAlnum(c) || c === 43 || c === 47 || c === 95 || c === 61 || c === 45;
const isHexOrDash = (c: number): boolean => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102) || c === 45;

const charClass = (c: number): number => (isLower(c) ? 1 : isUpper(c) ? 2 : isDigit(c) ? 4 : 8);

/**
 * Generic secrets: long runs of base64/base64url characters that look random. Besides length,
 * classes and entropy, the class must change between neighbours at least 40% of the time: about
 * 65% do in random base64, while words glued together (`AbstractSingletonProxyFactoryBean2024`)
 * change only at word boundaries.
 */
function looksRandom(text: string, start: number, end: number): boolean {
  let classes = 0;
  let changes = 0;
  let previous = 0;
  let hexOnly = true;
  const counts = new Uint32Array(128);
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    counts[c] = (counts[c] ?? 0) + 1;
    const kind = charClass(c);
    if (i > start && kind !== previous) changes++;
    previous = kind;
    classes |= kind;
    if (hexOnly && !isHexOrDash(c)) hexOnly = false;
  }
  const kinds = (classes & 1) + ((classes >> 1) & 1) + ((classes >> 2) & 1) + ((classes >> 3) & 1);
  const length = end - start;
  if (hexOnly || kinds < 3 || changes < 0.4 * (length - 1)) return false;
  let entropy = 0;
  for (const count of counts) {
    if (count === 0) continue;
    const p = count / length;
    entropy -= p * Math.log2(p);
  }
  return entropy >= 4;
}

const scanSecrets: Scanner = (text, emit) => {
  for (const m of text.matchAll(PREFIXED_TOKEN)) emit(m.index, m.index + m[0].length);

  for (const m of text.matchAll(AWS_SECRET_NAME)) {
    const from = m.index + m[0].length;
    const value = AWS_SECRET_VALUE.exec(text.slice(from, from + AWS_SECRET_WINDOW));
    if (value !== null) emit(from + value.index, from + value.index + 40);
  }

  PEM_BEGIN.lastIndex = 0;
  for (let begin = PEM_BEGIN.exec(text); begin !== null; begin = PEM_BEGIN.exec(text)) {
    PEM_END.lastIndex = begin.index + begin[0].length;
    const end = PEM_END.exec(text);
    if (end === null) {
      // No END line anywhere after: the key runs to the end of the value (fail closed).
      emit(begin.index, text.length);
      break;
    }
    emit(begin.index, end.index + end[0].length);
    PEM_BEGIN.lastIndex = end.index + end[0].length;
  }

  for (const m of text.matchAll(JWT)) {
    if (jwtHeaderValid(m[1] ?? "")) emit(m.index, m.index + m[0].length);
  }

  const n = text.length;
  let i = 0;
  while (i < n) {
    if (!isTokenChar(text.charCodeAt(i))) {
      i++;
      continue;
    }
    const start = i;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (!isTokenChar(c)) break;
      i++;
      // `=` is base64 padding only at the end: in `token=value` it ends one token and starts another.
      if (c === 61 && text.charCodeAt(i) !== 61 && isTokenChar(text.charCodeAt(i))) break;
    }
    if (i - start >= 32 && looksRandom(text, start, i)) emit(start, i);
  }
};

const SCANNERS: Readonly<Record<DetectorName, Scanner>> = {
  card_number: scanCards,
  email: scanEmails,
  ssn: scanSsns,
  national_id: scanNationalIds,
  iban: scanIbans,
  phone: scanPhones,
  secret: scanSecrets,
};
