/**
 * A lexer that reads MySQL and MariaDB statement text the way the server does, so the gateway
 * analyses what the server will run rather than what a generic SQL parser thinks it sees:
 * executable comments (`/*! ... *\/`, `/*!50700 ... *\/`, MariaDB's `/*M! ... *\/`) are code when the
 * server would run them, `#` and `-- ` comments, backslash escapes unless NO_BACKSLASH_ESCAPES, and
 * `"..."` as an identifier under ANSI_QUOTES.
 * https://dev.mysql.com/doc/refman/8.0/en/comments.html
 * https://mariadb.com/kb/en/comment-syntax/
 * https://github.com/MariaDB/server/blob/10.11/sql/sql_lex.cc (lex_one_token, consume_comment)
 */

/** The server at the other end, as its handshake names it. */
export interface MysqlServer {
  readonly flavor: "mysql" | "mariadb";
  /** major * 10000 + minor * 100 + patch, as executable comments write versions: 101106, 80036. */
  readonly version: number;
}

/** How the session's sql_mode makes the server lex text. */
export interface LexOptions {
  /** ANSI_QUOTES: `"x"` is an identifier, not a string. */
  readonly ansiQuotes: boolean;
  /** NO_BACKSLASH_ESCAPES: a backslash in a string is an ordinary character. */
  readonly noBackslashEscapes: boolean;
  /** The server, which decides which versioned comments run; unknown refuses those whose fate depends on it. */
  readonly server: MysqlServer | undefined;
}

/** What kind of token. */
export type TokenKind =
  | "word"
  | "ident"
  | "string"
  | "number"
  | "hex"
  | "bit"
  | "uservar"
  | "sysvar"
  | "param"
  | "op"
  | "semicolon";

/** One token; `start` and `end` are offsets in the original text. */
export interface Token {
  readonly kind: TokenKind;
  readonly start: number;
  readonly end: number;
  /**
   * word: as written; ident: the unquoted name; string: the decoded value; number, hex, bit: the
   * literal's digits; uservar: the name without `@`; sysvar: the name without `@@`, lowercased,
   * scope included (`global.max_connections`); op, semicolon: the characters.
   */
  readonly value: string;
  /** word: the value in capitals (keywords); otherwise empty. */
  readonly upper: string;
  /** string: a character set introducer written before it (`_utf8mb4`, `N`). */
  readonly introducer?: string;
  /** True when the token was read inside an executable comment. */
  readonly inComment: boolean;
}

/** Tokens, or why the text cannot be lexed as the server would. */
export type Lexed = { readonly ok: true; readonly tokens: readonly Token[] } | { readonly ok: false; readonly error: string };

const isDigit = (code: number): boolean => code >= 48 && code <= 57;
const isHexDigit = (code: number): boolean => isDigit(code) || (code >= 65 && code <= 70) || (code >= 97 && code <= 102);
/** Characters of an unquoted identifier: letters, digits, `_`, `$` and anything beyond ASCII. */
const isIdentChar = (code: number): boolean =>
  (code >= 97 && code <= 122) || (code >= 65 && code <= 90) || isDigit(code) || code === 95 || code === 36 || code >= 0x80;
const isSpace = (code: number): boolean => code === 32 || (code >= 9 && code <= 13);
/** my_iscntrl and my_isspace: what makes `--` a comment. */
const isSpaceOrControl = (code: number): boolean => code <= 32 || code === 127;

/** Operators of more than one character, longest first. */
const longOperators: readonly string[] = ["<=>", "->>", "<=", ">=", "<>", "!=", "<<", ">>", "&&", "||", ":=", "->", ".."];

/** Whether a versioned executable comment runs on this server, or undefined when that depends on an unknown server. */
function versionRuns(version: number, digits: number, maria: boolean, server: MysqlServer | undefined): boolean | undefined {
  if (server === undefined) {
    if (maria || digits === 6) return undefined;
    if (version < 50700) return true;
    return undefined;
  }
  if (server.flavor === "mysql") return version <= server.version;
  // MariaDB ignores MySQL 5.7+ versions (50700-99999) unless the comment is MariaDB's own /*M!.
  return version <= server.version && (version < 50700 || version > 99999 || maria);
}

class LexError extends Error {}

/**
 * Lexes `sql` from offset `from`. `inComment` starts inside an executable comment (when lexing the
 * rest of a string again after a change of sql_mode).
 */
export function lex(sql: string, options: LexOptions, from = 0, inComment = false): Lexed {
  try {
    return { ok: true, tokens: lexTokens(sql, options, from, inComment) };
  } catch (error) {
    if (error instanceof LexError) return { ok: false, error: error.message };
    throw error;
  }
}

function lexTokens(sql: string, options: LexOptions, from: number, startInComment: boolean): Token[] {
  const tokens: Token[] = [];
  const length = sql.length;
  let i = from;
  let inExec = startInComment;

  const push = (kind: TokenKind, start: number, end: number, value: string, extra?: { introducer?: string }): void => {
    const token: { -readonly [K in keyof Token]: Token[K] } = {
      kind,
      start,
      end,
      value,
      upper: kind === "word" ? value.toUpperCase() : "",
      inComment: inExec,
    };
    if (extra?.introducer !== undefined) token.introducer = extra.introducer;
    tokens.push(token);
  };

  /** Skips a plain comment body after `/*`; `nesting` levels of `/* *\/` may sit inside (consume_comment). */
  const consumeComment = (start: number, nesting: number): number => {
    let j = start;
    while (j < length) {
      const code = sql.charCodeAt(j);
      if (nesting > 0 && code === 47 && sql.charCodeAt(j + 1) === 42) {
        j = consumeComment(j + 2, nesting - 1);
        continue;
      }
      if (code === 42 && sql.charCodeAt(j + 1) === 47) return j + 2;
      j += 1;
    }
    throw new LexError("unterminated comment");
  };

  const toEndOfLine = (start: number): number => {
    const newline = sql.indexOf("\n", start);
    return newline === -1 ? length : newline + 1;
  };

  /** A quoted string or identifier body from after the opening quote; returns [value, end]. */
  const readQuoted = (start: number, quote: number, escapes: boolean): [string, number] => {
    let value = "";
    let j = start;
    let chunk = j;
    while (j < length) {
      const code = sql.charCodeAt(j);
      if (code === quote) {
        if (sql.charCodeAt(j + 1) === quote) {
          value += sql.slice(chunk, j + 1);
          j += 2;
          chunk = j;
          continue;
        }
        return [value + sql.slice(chunk, j), j + 1];
      }
      if (escapes && code === 92) {
        value += sql.slice(chunk, j);
        const next = sql[j + 1];
        if (next === undefined) break;
        value += unescape(next);
        j += 2;
        chunk = j;
        continue;
      }
      j += 1;
    }
    throw new LexError(quote === 96 ? "unterminated quoted identifier" : "unterminated string");
  };

  while (i < length) {
    const code = sql.charCodeAt(i);
    if (isSpace(code)) {
      i += 1;
      continue;
    }
    // Comments.
    if (code === 35) {
      i = toEndOfLine(i + 1);
      continue;
    }
    if (code === 45 && sql.charCodeAt(i + 1) === 45 && (i + 2 >= length || isSpaceOrControl(sql.charCodeAt(i + 2)))) {
      i = toEndOfLine(i + 2);
      continue;
    }
    if (code === 47 && sql.charCodeAt(i + 1) === 42) {
      const third = sql.charCodeAt(i + 2);
      const maria = third === 77 && sql.charCodeAt(i + 3) === 33;
      if (third === 33 || maria) {
        if (maria && options.server === undefined) {
          throw new LexError("executable comment `/*M!` runs on MariaDB only, and the server is not known");
        }
        if (maria && options.server?.flavor === "mysql") {
          // MySQL reads /*M! as an ordinary comment.
          i = consumeComment(i + 2, 0);
          continue;
        }
        if (inExec) throw new LexError("executable comment inside an executable comment");
        let j = i + (maria ? 4 : 3);
        let digits = 0;
        while (digits < 6 && isDigit(sql.charCodeAt(j + digits))) digits += 1;
        if (digits < 5) {
          // No version: the server always runs it.
          inExec = true;
          i = j;
          continue;
        }
        // MySQL reads exactly five digits; MariaDB a sixth when there is one.
        const mysqlDigits = 5;
        const used = options.server?.flavor === "mysql" ? mysqlDigits : digits;
        const version = Number(sql.slice(j, j + used));
        const runs = versionRuns(version, used, maria, options.server);
        if (runs === undefined) {
          throw new LexError(
            `executable comment \`${sql.slice(i, j + digits)}\` runs or not depending on the server version, which is not known`,
          );
        }
        j += used;
        if (runs) {
          inExec = true;
          i = j;
        } else {
          i = consumeComment(j, 1);
        }
        continue;
      }
      if (third === 43 && options.server?.flavor !== "mariadb") {
        // A MySQL optimizer hint: its own scanner reads quoted names, so the end could differ from
        // the first `*/`. Hints never need quotes in practice; refuse those that have them.
        const end = consumeComment(i + 3, 0);
        if (/['"`]/.test(sql.slice(i + 3, end - 2))) throw new LexError("optimizer hint with quotes");
        i = end;
        continue;
      }
      i = consumeComment(i + 2, 0);
      continue;
    }
    if (inExec && code === 42 && sql.charCodeAt(i + 1) === 47) {
      inExec = false;
      i += 2;
      continue;
    }
    // Strings and quoted identifiers.
    if (code === 39 || (code === 34 && !options.ansiQuotes)) {
      const [value, end] = readQuoted(i + 1, code, !options.noBackslashEscapes);
      const previous = tokens.at(-1);
      if (previous !== undefined && previous.kind === "word" && isIntroducer(previous.value)) {
        // `_utf8mb4'x'` or `_utf8mb4 'x'`: a character set introducer.
        tokens.pop();
        push("string", previous.start, end, value, { introducer: previous.value });
      } else {
        push("string", i, end, value);
      }
      i = end;
      continue;
    }
    if (code === 96 || (code === 34 && options.ansiQuotes)) {
      const [value, end] = readQuoted(i + 1, code, false);
      push("ident", i, end, value);
      i = end;
      continue;
    }
    // Variables.
    if (code === 64) {
      if (sql.charCodeAt(i + 1) === 64) {
        let j = i + 2;
        if (sql.charCodeAt(j) === 96) {
          const [value, end] = readQuoted(j + 1, 96, false);
          push("sysvar", i, end, value.toLowerCase());
          i = end;
          continue;
        }
        while (j < length && (isIdentChar(sql.charCodeAt(j)) || sql.charCodeAt(j) === 46)) j += 1;
        if (j === i + 2) throw new LexError("`@@` without a variable name");
        push("sysvar", i, j, sql.slice(i + 2, j).toLowerCase());
        i = j;
        continue;
      }
      const next = sql.charCodeAt(i + 1);
      if (next === 39 || next === 34 || next === 96) {
        const [value, end] = readQuoted(i + 2, next, next !== 96 && !options.noBackslashEscapes);
        push("uservar", i, end, value);
        i = end;
        continue;
      }
      let j = i + 1;
      while (j < length && (isIdentChar(sql.charCodeAt(j)) || sql.charCodeAt(j) === 46)) j += 1;
      push("uservar", i, j, sql.slice(i + 1, j));
      i = j;
      continue;
    }
    // Numbers, and identifiers that start with digits.
    const previous = tokens.at(-1);
    const qualifier = tokens.at(-2);
    const afterName =
      previous !== undefined && previous.kind === "op" && previous.value === "." && previous.end === i && isNameEnd(qualifier, previous.start);
    if (isDigit(code) || (code === 46 && isDigit(sql.charCodeAt(i + 1)) && !isNameEnd(previous, i))) {
      if (afterName && isDigit(code)) {
        // `t.1col`: after a qualifier's dot, digits start an identifier.
        let j = i;
        while (j < length && isIdentChar(sql.charCodeAt(j))) j += 1;
        push("word", i, j, sql.slice(i, j));
        i = j;
        continue;
      }
      const end = readNumber(sql, i);
      if (end.kind === "word") {
        push("word", i, end.end, sql.slice(i, end.end));
      } else if (end.kind === "hex") {
        push("hex", i, end.end, sql.slice(i + 2, end.end));
      } else if (end.kind === "bit") {
        push("bit", i, end.end, sql.slice(i + 2, end.end));
      } else {
        push("number", i, end.end, sql.slice(i, end.end));
      }
      i = end.end;
      continue;
    }
    if (isIdentChar(code)) {
      let j = i;
      while (j < length && isIdentChar(sql.charCodeAt(j))) j += 1;
      const word = sql.slice(i, j);
      // X'41', B'01', N'text': the letter directly before a quote.
      if (sql.charCodeAt(j) === 39 && word.length === 1) {
        const letter = word.toUpperCase();
        if (letter === "X" || letter === "B") {
          const close = sql.indexOf("'", j + 1);
          if (close === -1) throw new LexError("unterminated string");
          const digits = sql.slice(j + 1, close);
          const valid = letter === "X" ? /^[0-9a-fA-F]*$/.test(digits) && digits.length % 2 === 0 : /^[01]*$/.test(digits);
          if (!valid) throw new LexError(`invalid ${letter === "X" ? "hexadecimal" : "bit"} literal`);
          push(letter === "X" ? "hex" : "bit", i, close + 1, digits);
          i = close + 1;
          continue;
        }
        if (letter === "N") {
          const [value, end] = readQuoted(j + 1, 39, !options.noBackslashEscapes);
          push("string", i, end, value, { introducer: "N" });
          i = end;
          continue;
        }
      }
      push("word", i, j, word);
      i = j;
      continue;
    }
    if (code === 59) {
      push("semicolon", i, i + 1, ";");
      // The server lexes the next statement of a multi-statement string afresh: a `;` inside an
      // executable comment leaves the comment (its `*/` is then `*` and `/`).
      inExec = false;
      i += 1;
      continue;
    }
    if (code === 63) {
      push("param", i, i + 1, "?");
      i += 1;
      continue;
    }
    if (code === 0) throw new LexError("statement contains a NUL character");
    const long = longOperators.find((op) => sql.startsWith(op, i));
    if (long !== undefined) {
      push("op", i, i + long.length, long);
      i += long.length;
      continue;
    }
    push("op", i, i + 1, sql[i] ?? "");
    i += 1;
  }
  if (inExec) throw new LexError("unterminated executable comment");
  return tokens;
}

/** True when `previous` ends a name right before a `.` at `dot` (so `.5` there is not a number). */
function isNameEnd(previous: Token | undefined, dot: number): boolean {
  return previous !== undefined && previous.end === dot && (previous.kind === "word" || previous.kind === "ident" || previous.value === ")");
}

/** Character sets of MySQL 8 and MariaDB 10.11, as `_name` introducers. */
const characterSets: ReadonlySet<string> = new Set([
  "armscii8", "ascii", "big5", "binary", "cp1250", "cp1251", "cp1256", "cp1257", "cp850", "cp852", "cp866", "cp932",
  "dec8", "eucjpms", "euckr", "filename", "gb18030", "gb2312", "gbk", "geostd8", "greek", "hebrew", "hp8", "keybcs2",
  "koi8r", "koi8u", "latin1", "latin2", "latin5", "latin7", "macce", "macroman", "sjis", "swe7", "tis620", "ucs2",
  "ujis", "utf16", "utf16le", "utf32", "utf8", "utf8mb3", "utf8mb4",
]);

function isIntroducer(word: string): boolean {
  return word.startsWith("_") && characterSets.has(word.slice(1).toLowerCase());
}

/** The end of a numeric literal starting at `start`, or of an identifier when letters follow the digits. */
function readNumber(sql: string, start: number): { kind: "number" | "hex" | "bit" | "word"; end: number } {
  const length = sql.length;
  const identEnd = (from: number): number => {
    let j = from;
    while (j < length && isIdentChar(sql.charCodeAt(j))) j += 1;
    return j;
  };
  if (sql.charCodeAt(start) === 48) {
    const marker = sql.charCodeAt(start + 1);
    if (marker === 120 && isHexDigit(sql.charCodeAt(start + 2))) {
      let j = start + 2;
      while (j < length && isHexDigit(sql.charCodeAt(j))) j += 1;
      if (j < length && isIdentChar(sql.charCodeAt(j))) return { kind: "word", end: identEnd(j) };
      return { kind: "hex", end: j };
    }
    if (marker === 98 && (sql.charCodeAt(start + 2) === 48 || sql.charCodeAt(start + 2) === 49)) {
      let j = start + 2;
      while (j < length && (sql.charCodeAt(j) === 48 || sql.charCodeAt(j) === 49)) j += 1;
      if (j < length && isIdentChar(sql.charCodeAt(j))) return { kind: "word", end: identEnd(j) };
      return { kind: "bit", end: j };
    }
  }
  let j = start;
  while (j < length && isDigit(sql.charCodeAt(j))) j += 1;
  const integerEnd = j;
  let decimal = false;
  if (sql.charCodeAt(j) === 46 && sql.charCodeAt(j + 1) !== 46) {
    decimal = true;
    j += 1;
    while (j < length && isDigit(sql.charCodeAt(j))) j += 1;
  }
  const e = sql.charCodeAt(j);
  if (e === 101 || e === 69) {
    let k = j + 1;
    const sign = sql.charCodeAt(k);
    if (sign === 43 || sign === 45) k += 1;
    if (isDigit(sql.charCodeAt(k))) {
      while (k < length && isDigit(sql.charCodeAt(k))) k += 1;
      j = k;
    } else if (!decimal && integerEnd > start) {
      // `1e` or `1ex`: an identifier.
      return { kind: "word", end: identEnd(j) };
    }
  }
  if (!decimal && j === integerEnd && j < length && isIdentChar(sql.charCodeAt(j))) return { kind: "word", end: identEnd(j) };
  return { kind: "number", end: j };
}

/** The character a backslash escape stands for (https://dev.mysql.com/doc/refman/8.0/en/string-literals.html). */
function unescape(char: string): string {
  switch (char) {
    case "0":
      return "\u0000";
    case "b":
      return "\b";
    case "n":
      return "\n";
    case "r":
      return "\r";
    case "t":
      return "\t";
    case "Z":
      return "\u001a";
    case "%":
      return "\\%";
    case "_":
      return "\\_";
    default:
      return char;
  }
}
