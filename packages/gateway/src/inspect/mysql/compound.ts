import type { Token } from "./lexer.js";

/**
 * Statement boundaries and the insides of compound statements. The server splits a multi-statement
 * string where its grammar ends a statement, so the `;` inside a stored program's BEGIN ... END
 * (or MariaDB's anonymous `BEGIN NOT ATOMIC ... END`, `IF ... END IF` at top level) do not end it.
 * https://dev.mysql.com/doc/refman/8.0/en/sql-compound-statements.html
 * https://mariadb.com/kb/en/using-compound-statements-outside-of-stored-programs/
 */

/** What a compound statement runs: SQL statements and expressions, in order, for the analyser. */
export type CompoundItem =
  | { readonly kind: "sql"; readonly tokens: readonly Token[] }
  | { readonly kind: "expression"; readonly tokens: readonly Token[] };

/** A compound body: what it runs and the local variable names it declares. */
export interface CompoundBody {
  readonly items: CompoundItem[];
  readonly locals: Set<string>;
}

/** Thrown when a compound statement does not have the shape the server requires. */
export class CompoundError extends Error {}

/** Words that end a statement list inside a compound statement. */
const listStops: ReadonlySet<string> = new Set(["END", "ELSE", "ELSEIF", "WHEN", "UNTIL"]);

const isWord = (token: Token | undefined, word: string): boolean => token !== undefined && token.kind === "word" && token.upper === word;
const isOp = (token: Token | undefined, op: string): boolean => token !== undefined && token.kind === "op" && token.value === op;
const isSemicolon = (token: Token | undefined): boolean => token !== undefined && token.kind === "semicolon";

/** A label `name:` at `i` (not `:=`). */
function isLabel(tokens: readonly Token[], i: number): boolean {
  const name = tokens[i];
  return name !== undefined && (name.kind === "word" || name.kind === "ident") && isOp(tokens[i + 1], ":");
}

/** Words that start a compound statement at a statement's start (after an optional label). */
function startsCompound(tokens: readonly Token[], i: number): boolean {
  const token = tokens[i];
  if (token?.kind !== "word") return false;
  switch (token.upper) {
    case "IF":
    case "CASE":
    case "LOOP":
    case "WHILE":
    case "REPEAT":
      return true;
    case "FOR":
      return isWord(tokens[i + 2], "IN");
    case "BEGIN":
      return true;
    default:
      return false;
  }
}

/**
 * True when the statement at `i` (top level) is a compound statement: MariaDB runs `BEGIN NOT
 * ATOMIC ... END`, IF, CASE, LOOP, WHILE, REPEAT and FOR outside stored programs. A bare `BEGIN` is
 * the start of a transaction.
 */
export function isTopLevelCompound(tokens: readonly Token[], i: number): boolean {
  let j = i;
  if (isLabel(tokens, j)) j += 2;
  const token = tokens[j];
  if (token?.kind !== "word") return false;
  if (token.upper === "BEGIN") return j > i || (isWord(tokens[j + 1], "NOT") && isWord(tokens[j + 2], "ATOMIC"));
  return startsCompound(tokens, j);
}

/** Index of the token ending an expression that starts at `i`: the first `stop` word at depth 0. */
function expressionEnd(tokens: readonly Token[], i: number, stops: ReadonlySet<string>): number {
  let depth = 0;
  let cases = 0;
  for (let j = i; j < tokens.length; j += 1) {
    const token = tokens[j];
    if (token === undefined) break;
    if (token.kind === "op" && token.value === "(") depth += 1;
    else if (token.kind === "op" && token.value === ")") depth -= 1;
    else if (token.kind === "semicolon") {
      if (stops.has(";")) return j;
      throw new CompoundError("unexpected `;` in a condition");
    } else if (token.kind === "word" && depth === 0) {
      if (cases > 0) {
        if (token.upper === "CASE") cases += 1;
        else if (token.upper === "END") cases -= 1;
        continue;
      }
      if (stops.has(token.upper)) return j;
      if (token.upper === "CASE") cases += 1;
    }
  }
  if (stops.has(";")) return tokens.length;
  throw new CompoundError(`missing ${[...stops].map((stop) => `\`${stop}\``).join(" or ")}`);
}

/** Index of the `;` (or the end) after a simple statement starting at `i`. */
function simpleEnd(tokens: readonly Token[], i: number): number {
  for (let j = i; j < tokens.length; j += 1) if (isSemicolon(tokens[j])) return j;
  return tokens.length;
}

function expect(tokens: readonly Token[], i: number, word: string): number {
  if (!isWord(tokens[i], word)) throw new CompoundError(`expected \`${word}\``);
  return i + 1;
}

/** Skips an optional end label (`END LOOP lbl`). */
function endLabel(tokens: readonly Token[], i: number): number {
  const token = tokens[i];
  if (token !== undefined && (token.kind === "word" || token.kind === "ident") && !listStops.has(token.upper)) return i + 1;
  return i;
}

const stopsThen: ReadonlySet<string> = new Set(["THEN"]);
const stopsDo: ReadonlySet<string> = new Set(["DO"]);
const stopsEndRepeat: ReadonlySet<string> = new Set(["END"]);
const stopsWhen: ReadonlySet<string> = new Set(["WHEN"]);
const stopsSemicolon: ReadonlySet<string> = new Set([";"]);
const stopsDefault: ReadonlySet<string> = new Set(["DEFAULT", ";"]);

/** Reads compound statements into items. */
class CompoundReader {
  readonly items: CompoundItem[] = [];
  readonly locals = new Set<string>();

  private readonly tokens: readonly Token[];

  constructor(tokens: readonly Token[]) {
    this.tokens = tokens;
  }

  private expression(start: number, end: number): void {
    if (end <= start) throw new CompoundError("missing expression");
    this.items.push({ kind: "expression", tokens: this.tokens.slice(start, end) });
  }

  private sql(start: number, end: number): void {
    if (end > start) this.items.push({ kind: "sql", tokens: this.tokens.slice(start, end) });
  }

  /** A list of statements, each ending with `;`, up to a stop word; returns the index of the stop word. */
  list(i: number): number {
    let j = i;
    for (;;) {
      const token = this.tokens[j];
      if (token === undefined) throw new CompoundError("missing `END`");
      if (token.kind === "word" && listStops.has(token.upper)) return j;
      j = this.statement(j);
      if (!isSemicolon(this.tokens[j])) throw new CompoundError("missing `;` after a statement in a compound statement");
      j += 1;
    }
  }

  /** One statement of a stored program starting at `i`; returns the index after it (its `;` or the end). */
  statement(i: number): number {
    const tokens = this.tokens;
    let j = i;
    if (isLabel(tokens, j)) j += 2;
    const token = tokens[j];
    if (token === undefined) throw new CompoundError("missing statement");
    if (token.kind !== "word") {
      const end = simpleEnd(tokens, j);
      this.sql(j, end);
      return end;
    }
    switch (token.upper) {
      case "BEGIN": {
        j += 1;
        if (isWord(tokens[j], "NOT") && isWord(tokens[j + 1], "ATOMIC")) j += 2;
        j = this.list(j);
        j = expect(tokens, j, "END");
        return endLabel(tokens, j);
      }
      case "IF": {
        j += 1;
        for (;;) {
          const then = expressionEnd(tokens, j, stopsThen);
          this.expression(j, then);
          j = this.list(then + 1);
          if (isWord(tokens[j], "ELSEIF")) {
            j += 1;
            continue;
          }
          if (isWord(tokens[j], "ELSE")) j = this.list(j + 1);
          j = expect(tokens, j, "END");
          return expect(tokens, j, "IF");
        }
      }
      case "CASE": {
        j += 1;
        if (!isWord(tokens[j], "WHEN")) {
          const when = expressionEnd(tokens, j, stopsWhen);
          this.expression(j, when);
          j = when;
        }
        while (isWord(tokens[j], "WHEN")) {
          const then = expressionEnd(tokens, j + 1, stopsThen);
          this.expression(j + 1, then);
          j = this.list(then + 1);
        }
        if (isWord(tokens[j], "ELSE")) j = this.list(j + 1);
        j = expect(tokens, j, "END");
        return expect(tokens, j, "CASE");
      }
      case "LOOP": {
        j = this.list(j + 1);
        j = expect(tokens, j, "END");
        j = expect(tokens, j, "LOOP");
        return endLabel(tokens, j);
      }
      case "WHILE": {
        const doAt = expressionEnd(tokens, j + 1, stopsDo);
        this.expression(j + 1, doAt);
        j = this.list(doAt + 1);
        j = expect(tokens, j, "END");
        j = expect(tokens, j, "WHILE");
        return endLabel(tokens, j);
      }
      case "REPEAT": {
        j = this.list(j + 1);
        j = expect(tokens, j, "UNTIL");
        const end = expressionEnd(tokens, j, stopsEndRepeat);
        this.expression(j, end);
        j = expect(tokens, end, "END");
        j = expect(tokens, j, "REPEAT");
        return endLabel(tokens, j);
      }
      case "FOR": {
        if (!isWord(tokens[j + 2], "IN")) break;
        const variable = tokens[j + 1];
        if (variable !== undefined) this.locals.add(variable.value.toLowerCase());
        let k = j + 3;
        if (isWord(tokens[k], "REVERSE")) k += 1;
        const doAt = expressionEnd(tokens, k, stopsDo);
        const range = tokens.slice(k, doAt);
        const dots = range.findIndex((t) => isOp(t, ".."));
        if (dots >= 0) {
          this.expression(k, k + dots);
          this.expression(k + dots + 1, doAt);
        } else if (isOp(range[0], "(")) {
          this.sql(k + 1, doAt - 1);
        }
        j = this.list(doAt + 1);
        j = expect(tokens, j, "END");
        j = expect(tokens, j, "FOR");
        return endLabel(tokens, j);
      }
      case "DECLARE":
        return this.declare(j);
      case "RETURN": {
        const end = expressionEnd(tokens, j + 1, stopsSemicolon);
        this.expression(j + 1, end);
        return end;
      }
      case "LEAVE":
      case "ITERATE":
      case "OPEN":
      case "CLOSE":
      case "FETCH":
        return simpleEnd(tokens, j);
      default:
        break;
    }
    const end = simpleEnd(tokens, j);
    this.sql(j, end);
    return end;
  }

  /** DECLARE of variables, conditions, cursors and handlers. */
  private declare(i: number): number {
    const tokens = this.tokens;
    const kinds = tokens.slice(i + 1, i + 4).map((token) => (token.kind === "word" ? token.upper : ""));
    if (kinds[1] === "HANDLER" && (kinds[0] === "CONTINUE" || kinds[0] === "EXIT" || kinds[0] === "UNDO")) {
      let j = expect(tokens, i + 3, "FOR");
      // Conditions: SQLSTATE [VALUE] 'x' | SQLWARNING | NOT FOUND | SQLEXCEPTION | name | number.
      for (;;) {
        if (isWord(tokens[j], "SQLSTATE")) {
          j += 1;
          if (isWord(tokens[j], "VALUE")) j += 1;
          j += 1;
        } else if (isWord(tokens[j], "NOT")) j += 2;
        else j += 1;
        if (!isOp(tokens[j], ",")) break;
        j += 1;
      }
      return this.statement(j);
    }
    if (kinds[1] === "CONDITION") return simpleEnd(tokens, i);
    const cursorAt = tokens.findIndex((token, index) => index > i && index <= i + 2 && isWord(token, "CURSOR"));
    if (cursorAt > 0) {
      let j = cursorAt + 1;
      if (isOp(tokens[j], "(")) {
        while (j < tokens.length && !isOp(tokens[j], ")")) j += 1;
        j += 1;
      }
      j = expect(tokens, j, "FOR");
      const end = simpleEnd(tokens, j);
      this.sql(j, end);
      return end;
    }
    // Variables: names up to the type, then DEFAULT expr.
    let j = i + 1;
    for (;;) {
      const name = tokens[j];
      if (name === undefined) throw new CompoundError("missing variable name");
      this.locals.add(name.value.toLowerCase());
      j += 1;
      if (!isOp(tokens[j], ",")) break;
      j += 1;
    }
    const stop = expressionEnd(tokens, j, stopsDefault);
    if (isWord(tokens[stop], "DEFAULT")) {
      const end = expressionEnd(tokens, stop + 1, stopsSemicolon);
      this.expression(stop + 1, end);
      return end;
    }
    return stop;
  }
}

/**
 * Reads one stored-program statement (a routine, trigger or event body, or a top-level compound
 * statement) starting at `start`. Returns what it runs and where it ends.
 */
export function readCompound(tokens: readonly Token[], start: number): CompoundBody & { readonly end: number } {
  const reader = new CompoundReader(tokens);
  const end = reader.statement(start);
  return { items: reader.items, locals: reader.locals, end };
}

const characteristicWords: ReadonlySet<string> = new Set(["COMMENT", "LANGUAGE", "NOT", "DETERMINISTIC", "CONTAINS", "NO", "READS", "MODIFIES", "SQL"]);
const typeModifiers: ReadonlySet<string> = new Set([
  "UNSIGNED", "SIGNED", "ZEROFILL", "BINARY", "ASCII", "UNICODE", "PRECISION", "VARYING", "BYTE", "VARCHAR", "CHAR",
]);

/** A CREATE PROCEDURE/FUNCTION/TRIGGER/EVENT (or ALTER EVENT) statement's parts. */
export interface RoutineHeader {
  readonly object: "PROCEDURE" | "FUNCTION" | "TRIGGER" | "EVENT";
  /** The object's name as written, parts joined with `.`. */
  readonly name: string;
  /** Index of the body's first token, or undefined when there is none (a loadable function, ALTER EVENT without DO). */
  readonly bodyStart: number | undefined;
  /** Parameter names (routines). */
  readonly params: readonly string[];
  /** Loadable function from a shared library (CREATE FUNCTION ... SONAME). */
  readonly soname: boolean;
  /** TRIGGER: the table it is on. */
  readonly table?: readonly Token[];
}

/** Reads a name `a` or `a.b` at `i`; returns its tokens and the index after it. */
function readName(tokens: readonly Token[], i: number): { parts: Token[]; end: number } {
  const parts: Token[] = [];
  let j = i;
  for (;;) {
    const token = tokens[j];
    if (token === undefined || (token.kind !== "word" && token.kind !== "ident")) throw new CompoundError("missing name");
    parts.push(token);
    j += 1;
    if (!isOp(tokens[j], ".")) return { parts, end: j };
    j += 1;
  }
}

/** The index after a balanced `( ... )` starting at `i`. */
export function skipParens(tokens: readonly Token[], i: number): number {
  if (!isOp(tokens[i], "(")) throw new CompoundError("expected `(`");
  let depth = 0;
  for (let j = i; j < tokens.length; j += 1) {
    if (isOp(tokens[j], "(")) depth += 1;
    else if (isOp(tokens[j], ")")) {
      depth -= 1;
      if (depth === 0) return j + 1;
    }
  }
  throw new CompoundError("missing `)`");
}

/** Parameter names of a routine's `( ... )` list (IN/OUT/INOUT, then a name, then its type). */
function paramNames(tokens: readonly Token[], open: number, close: number): string[] {
  const names: string[] = [];
  let expectName = true;
  let depth = 0;
  for (let j = open + 1; j < close - 1; j += 1) {
    const token = tokens[j];
    if (token === undefined) break;
    if (isOp(token, "(")) depth += 1;
    else if (isOp(token, ")")) depth -= 1;
    else if (depth === 0 && isOp(token, ",")) expectName = true;
    else if (expectName && depth === 0) {
      if (token.kind === "word" && (token.upper === "IN" || token.upper === "OUT" || token.upper === "INOUT")) continue;
      names.push(token.value.toLowerCase());
      expectName = false;
    }
  }
  return names;
}

/**
 * Reads the header of CREATE [OR REPLACE] [DEFINER = user] [AGGREGATE] PROCEDURE | FUNCTION |
 * TRIGGER | EVENT, or ALTER [DEFINER = user] EVENT, from `objectAt` (the object keyword).
 */
export function readRoutineHeader(tokens: readonly Token[], objectAt: number, alter: boolean): RoutineHeader {
  const object = tokens[objectAt]?.upper as RoutineHeader["object"];
  let j = objectAt + 1;
  if (isWord(tokens[j], "IF")) {
    j += 1;
    if (isWord(tokens[j], "NOT")) j += 1;
    j = expect(tokens, j, "EXISTS");
  }
  const name = readName(tokens, j);
  const written = name.parts.map((part) => part.value).join(".");
  j = name.end;
  if (object === "EVENT") {
    // Everything up to DO is the schedule and options.
    let k = j;
    let depth = 0;
    for (; k < tokens.length; k += 1) {
      const token = tokens[k];
      if (isOp(token, "(")) depth += 1;
      else if (isOp(token, ")")) depth -= 1;
      else if (depth === 0 && isWord(token, "DO")) break;
      else if (isSemicolon(token)) break;
    }
    const bodyStart = isWord(tokens[k], "DO") ? k + 1 : undefined;
    if (!alter && bodyStart === undefined) throw new CompoundError("CREATE EVENT without `DO`");
    return { object, name: written, bodyStart, params: [], soname: false };
  }
  if (object === "TRIGGER") {
    // {BEFORE|AFTER} {INSERT|UPDATE|DELETE} ON table FOR EACH ROW [{FOLLOWS|PRECEDES} name]
    j += 2;
    j = expect(tokens, j, "ON");
    const table = readName(tokens, j);
    j = expect(tokens, table.end, "FOR");
    j = expect(tokens, j, "EACH");
    j = expect(tokens, j, "ROW");
    if (isWord(tokens[j], "FOLLOWS") || isWord(tokens[j], "PRECEDES")) j = readName(tokens, j + 1).end;
    return { object, name: written, bodyStart: j, params: [], soname: false, table: table.parts };
  }
  if (object === "FUNCTION" && isWord(tokens[j], "RETURNS")) {
    // A loadable function: RETURNS {STRING|INTEGER|REAL|DECIMAL} SONAME 'library'.
    if (isWord(tokens[j + 2], "SONAME")) return { object, name: written, bodyStart: undefined, params: [], soname: true };
  }
  const close = skipParens(tokens, j);
  const params = paramNames(tokens, j, close);
  j = close;
  if (object === "FUNCTION") {
    j = expect(tokens, j, "RETURNS");
    j += 1;
    if (isOp(tokens[j], "(")) j = skipParens(tokens, j);
    for (;;) {
      const token = tokens[j];
      if (token?.kind !== "word") break;
      if (typeModifiers.has(token.upper)) {
        j += 1;
        if (isOp(tokens[j], "(")) j = skipParens(tokens, j);
      } else if (token.upper === "CHARACTER" && isWord(tokens[j + 1], "SET")) j += 3;
      else if (token.upper === "CHARSET" || token.upper === "COLLATE") j += 2;
      else break;
    }
  }
  // Characteristics.
  for (;;) {
    const token = tokens[j];
    if (token?.kind !== "word" || !characteristicWords.has(token.upper)) break;
    if (token.upper === "COMMENT") j += 2;
    else if (token.upper === "LANGUAGE") j += 2;
    else if (token.upper === "NOT") j += 2;
    else if (token.upper === "DETERMINISTIC") j += 1;
    else if (token.upper === "CONTAINS" || token.upper === "NO") j += 2;
    else if (token.upper === "READS" || token.upper === "MODIFIES") j += 3;
    else if (token.upper === "SQL" && isWord(tokens[j + 1], "SECURITY")) j += 3;
    else break;
  }
  return { object, name: written, bodyStart: j, params, soname: false };
}

/** Index of the object keyword of CREATE [OR REPLACE] [DEFINER = user] [AGGREGATE] ..., or -1. */
export function routineObjectIndex(tokens: readonly Token[], start: number): { index: number; alter: boolean } | undefined {
  const first = tokens[start];
  if (!isWord(first, "CREATE") && !isWord(first, "ALTER")) return undefined;
  const alter = isWord(first, "ALTER");
  let j = start + 1;
  if (!alter && isWord(tokens[j], "OR") && isWord(tokens[j + 1], "REPLACE")) j += 2;
  if (isWord(tokens[j], "DEFINER")) {
    j += 1;
    if (isOp(tokens[j], "=")) j += 1;
    j += 1;
    // user@host: a string or name followed by an `@host` variable token, or CURRENT_USER[()].
    if (tokens[j]?.kind === "uservar" && tokens[j]?.start === tokens[j - 1]?.end) j += 1;
    else if (isOp(tokens[j], "(")) j += 2;
  }
  if (!alter && isWord(tokens[j], "AGGREGATE")) j += 1;
  const object = tokens[j];
  if (object?.kind !== "word") return undefined;
  if (alter) return object.upper === "EVENT" ? { index: j, alter } : undefined;
  if (object.upper === "PROCEDURE" || object.upper === "FUNCTION" || object.upper === "TRIGGER" || object.upper === "EVENT") return { index: j, alter };
  return undefined;
}

/**
 * Splits a token stream into statements as the server would run them with CLIENT_MULTI_STATEMENTS:
 * at `;`, except inside stored programs' and top-level compound statements' bodies. Empty
 * statements (`;;`) are dropped, as the server ignores them.
 */
export function splitStatements(tokens: readonly Token[]): Token[][] {
  const statements: Token[][] = [];
  let i = 0;
  while (i < tokens.length) {
    if (isSemicolon(tokens[i])) {
      i += 1;
      continue;
    }
    const end = statementEnd(tokens, i);
    statements.push(tokens.slice(i, end));
    i = end + 1;
  }
  return statements;
}

/** The index of the `;` ending the statement at `start` (or the token count). */
export function statementEnd(tokens: readonly Token[], start: number): number {
  const routine = routineObjectIndex(tokens, start);
  if (routine !== undefined) {
    const header = readRoutineHeader(tokens, routine.index, routine.alter);
    if (header.bodyStart === undefined) return simpleEnd(tokens, start);
    const body = readCompound(tokens, header.bodyStart);
    return body.end;
  }
  if (isTopLevelCompound(tokens, start)) return readCompound(tokens, start).end;
  return simpleEnd(tokens, start);
}
