import { init, MySqlDialect, Parser } from "@guanmingchiu/sqlparser-ts";
import type { Token, TokenKind } from "./lexer.js";

/**
 * The bridge to sqlparser-rs (MySQL dialect, WebAssembly): tokens from our own lexer are rendered
 * back into one canonical text that means the same whatever the session's sql_mode (strings in
 * single quotes with backslashes escaped, identifiers in backticks, no comments), with the few
 * MySQL forms sqlparser-rs does not know rewritten into equivalents it does.
 */

let dialect: MySqlDialect | undefined;

/** Loads sqlparser-rs (WebAssembly) once; parsing is synchronous afterwards. */
export async function loadMysqlParser(): Promise<void> {
  if (dialect !== undefined) return;
  await init();
  dialect = new MySqlDialect();
}

/** True once loadMysqlParser() has run. */
export function mysqlParserLoaded(): boolean {
  return dialect !== undefined;
}

/** A parse tree node of sqlparser-rs, as JSON. */
export type AstNode = Record<string, unknown>;

/** The statements sqlparser-rs made of `text`, or its error. */
export type ParsedText = { readonly ok: true; readonly statements: readonly AstNode[] } | { readonly ok: false; readonly error: string };

/** Parses canonical text (from render()). */
export function parseCanonical(text: string): ParsedText {
  if (dialect === undefined) throw new TypeError("analyzeMysql: the parser is not loaded: await loadMysqlAnalyzer() first");
  try {
    // The tree as a JSON string, parsed here, is cheaper than the WebAssembly bridge building objects.
    const statements = JSON.parse(Parser.parseToJson(text, dialect)) as AstNode[];
    return { ok: true, statements };
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error)).replace(/^sql parser error: /, "").replace(/ at Line: \d+, Column: \d+$/, "");
    // House style: lowercase, what was found in backticks.
    const styled = message.replace(/found: (.+)$/, (_match, found: string) => `found: \`${found}\``);
    return { ok: false, error: styled.charAt(0).toLowerCase() + styled.slice(1) };
  }
}

/** A token made by a rewrite, placed at `at`'s position. */
export function synthetic(at: Token, kind: TokenKind, value: string): Token {
  return { kind, start: at.start, end: at.end, value, upper: kind === "word" ? value.toUpperCase() : "", inComment: at.inComment };
}

const isWord = (token: Token | undefined, word: string): boolean => token !== undefined && token.kind === "word" && token.upper === word;
const isOp = (token: Token | undefined, op: string): boolean => token !== undefined && token.kind === "op" && token.value === op;

const selectOptionsDropped: ReadonlySet<string> = new Set([
  "SQL_NO_CACHE",
  "SQL_CACHE",
  "SQL_CALC_FOUND_ROWS",
  "HIGH_PRIORITY",
  "STRAIGHT_JOIN",
  "SQL_SMALL_RESULT",
  "SQL_BIG_RESULT",
  "SQL_BUFFER_RESULT",
]);
const verbModifiers: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ["INSERT", new Set(["LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY"])],
  ["REPLACE", new Set(["LOW_PRIORITY", "DELAYED"])],
  ["UPDATE", new Set(["LOW_PRIORITY", "IGNORE"])],
  ["DELETE", new Set(["LOW_PRIORITY", "QUICK", "IGNORE"])],
]);
/** Compound INTERVAL units sqlparser-rs does not know; the unit does not matter to the analysis. */
const compoundUnits: ReadonlySet<string> = new Set([
  "SECOND_MICROSECOND",
  "MINUTE_MICROSECOND",
  "MINUTE_SECOND",
  "HOUR_MICROSECOND",
  "HOUR_SECOND",
  "HOUR_MINUTE",
  "DAY_MICROSECOND",
  "DAY_SECOND",
  "DAY_MINUTE",
  "DAY_HOUR",
  "YEAR_MONTH",
]);

/** The index after one operand starting at `i` (a literal, a name, a call, a parenthesised expression). */
function operandEnd(tokens: readonly Token[], i: number): number {
  const token = tokens[i];
  if (token === undefined) return i;
  if (isOp(token, "!") || isOp(token, "-") || isOp(token, "~") || isOp(token, "+")) return operandEnd(tokens, i + 1);
  if (isOp(token, "(")) return closingParen(tokens, i) + 1;
  let j = i + 1;
  if (token.kind === "word" || token.kind === "ident") {
    while (isOp(tokens[j], ".") && tokens[j + 1] !== undefined) j += 2;
    if (isOp(tokens[j], "(")) j = closingParen(tokens, j) + 1;
  }
  return j;
}

/** The index of the `)` matching the `(` at `open` (or the last index). */
export function closingParen(tokens: readonly Token[], open: number): number {
  let depth = 0;
  for (let j = open; j < tokens.length; j += 1) {
    const token = tokens[j];
    if (isOp(token, "(")) depth += 1;
    else if (isOp(token, ")")) {
      depth -= 1;
      if (depth === 0) return j;
    }
  }
  return tokens.length - 1;
}

/**
 * Rewrites MySQL forms that sqlparser-rs does not parse into equivalents for the analysis:
 * `a MOD b`, `!a`, `&&`, `||` (OR unless PIPES_AS_CONCAT), LOCK IN SHARE MODE, WITH ROLLUP, SOUNDS
 * LIKE, select and DML modifiers, NEXT/PREVIOUS VALUE FOR, lock WAIT n, LIMIT ROWS EXAMINED, compound
 * INTERVAL units and `TABLE t`.
 */
export function rewriteForParser(tokens: readonly Token[], pipesAsConcat: boolean): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < tokens.length; i += 1) {
    const token = tokens[i];
    if (token === undefined) break;
    const next = tokens[i + 1];
    if (token.kind === "op") {
      if (token.value === "&&") {
        out.push(synthetic(token, "word", "AND"));
        continue;
      }
      if (token.value === "||" && !pipesAsConcat) {
        out.push(synthetic(token, "word", "OR"));
        continue;
      }
      if (token.value === "!") {
        // `!a` binds tighter than NOT: wrap its operand.
        const end = operandEnd(tokens, i + 1);
        out.push(synthetic(token, "op", "("), synthetic(token, "word", "NOT"), ...rewriteForParser(tokens.slice(i + 1, end), pipesAsConcat), synthetic(token, "op", ")"));
        i = end - 1;
        continue;
      }
      out.push(token);
      continue;
    }
    if (token.kind !== "word") {
      out.push(token);
      continue;
    }
    switch (token.upper) {
      case "MOD":
        if (!isOp(next, "(")) {
          out.push(synthetic(token, "op", "%"));
          continue;
        }
        break;
      case "LOCK":
        if (isWord(next, "IN") && isWord(tokens[i + 2], "SHARE") && isWord(tokens[i + 3], "MODE")) {
          out.push(synthetic(token, "word", "FOR"), synthetic(token, "word", "SHARE"));
          i += 3;
          continue;
        }
        break;
      case "WITH":
        if (isWord(next, "ROLLUP")) {
          i += 1;
          continue;
        }
        break;
      case "SOUNDS":
        if (isWord(next, "LIKE")) continue;
        break;
      case "SELECT": {
        out.push(token);
        let j = i + 1;
        for (;;) {
          const option = tokens[j];
          if (option?.kind !== "word") break;
          if (selectOptionsDropped.has(option.upper)) j += 1;
          else if (option.upper === "DISTINCTROW") {
            out.push(synthetic(option, "word", "DISTINCT"));
            j += 1;
          } else if (option.upper === "ALL" || option.upper === "DISTINCT") {
            out.push(option);
            j += 1;
          } else break;
        }
        i = j - 1;
        continue;
      }
      case "INSERT":
      case "REPLACE":
      case "UPDATE":
      case "DELETE": {
        const modifiers = verbModifiers.get(token.upper);
        out.push(token);
        if (token.upper === "REPLACE" && isOp(next, "(")) continue;
        let j = i + 1;
        while (modifiers !== undefined && tokens[j]?.kind === "word" && modifiers.has(tokens[j]?.upper ?? "")) j += 1;
        i = j - 1;
        continue;
      }
      case "NEXT":
      case "PREVIOUS":
        if (isWord(next, "VALUE") && isWord(tokens[i + 2], "FOR")) {
          const end = operandEnd(tokens, i + 3);
          out.push(synthetic(token, "word", token.upper === "NEXT" ? "NEXTVAL" : "LASTVAL"), synthetic(token, "op", "("), ...tokens.slice(i + 3, end), synthetic(token, "op", ")"));
          i = end - 1;
          continue;
        }
        break;
      case "WAIT":
        if (next?.kind === "number" && (isWord(tokens[i - 1], "UPDATE") || isWord(tokens[i - 1], "SHARE") || isWord(tokens[i - 1], "MODE"))) {
          i += 1;
          continue;
        }
        break;
      case "ROWS":
        if (isWord(next, "EXAMINED")) {
          i += 2;
          continue;
        }
        break;
      case "TABLE": {
        const previous = out.at(-1);
        const queryStart = previous === undefined || isOp(previous, "(") || isWord(previous, "UNION") || isWord(previous, "EXCEPT") || isWord(previous, "INTERSECT") || isWord(previous, "ALL") || isWord(previous, "DISTINCT");
        if (queryStart && next !== undefined && (next.kind === "word" || next.kind === "ident")) {
          out.push(synthetic(token, "word", "SELECT"), synthetic(token, "op", "*"), synthetic(token, "word", "FROM"));
          continue;
        }
        break;
      }
      default:
        if (compoundUnits.has(token.upper)) {
          out.push(synthetic(token, "word", "SECOND"));
          continue;
        }
    }
    out.push(token);
  }
  return out;
}

/** A string literal for sqlparser-rs's MySQL dialect: single quotes, backslash escapes. */
function quoteString(value: string): string {
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "''").replaceAll("\u0000", "\\0")}'`;
}

/** A user variable's name as a plain identifier sqlparser-rs reads (its name does not matter to the analysis). */
function userVariable(name: string): string {
  return /^[A-Za-z0-9_$]+$/.test(name) ? `@${name}` : `@airlock_${[...name].map((char) => char.codePointAt(0)?.toString(16) ?? "").join("_")}`;
}

/** Renders tokens as canonical text for sqlparser-rs. */
export function render(tokens: readonly Token[]): string {
  const parts: string[] = [];
  let glue = false;
  for (const token of tokens) {
    let text: string;
    switch (token.kind) {
      case "ident":
        text = `\`${token.value.replaceAll("`", "``")}\``;
        break;
      case "string":
        text = token.introducer === undefined ? quoteString(token.value) : `${token.introducer}${quoteString(token.value)}`;
        break;
      case "hex":
        text = `X'${token.value.length % 2 === 0 ? token.value : `0${token.value}`}'`;
        break;
      case "bit":
        text = `B'${token.value}'`;
        break;
      case "uservar":
        text = userVariable(token.value);
        break;
      case "sysvar":
        text = `@@${token.value}`;
        break;
      case "semicolon":
        continue;
      default:
        text = token.value;
    }
    const dot = token.kind === "op" && token.value === ".";
    if (parts.length > 0 && !glue && !dot) parts.push(" ");
    parts.push(text);
    glue = dot;
  }
  return parts.join("");
}
