import type { StatementClass } from "@airlock/policy";
import { addRelation, createFacts, flag, mergeFacts, quote, type Facts } from "../postgres/facts.js";
import type { TransactionKind } from "../postgres/walk.js";
import { CompoundError, readCompound, readRoutineHeader, routineObjectIndex, skipParens, splitStatements, isTopLevelCompound, type CompoundItem } from "./compound.js";
import { classifyProcedure, dangerousFunctionReason, type SafeFunctions } from "./functions.js";
import { lex, type LexOptions, type Token } from "./lexer.js";
import { closingParen, parseCanonical, render, rewriteForParser, synthetic, type AstNode } from "./parser.js";
import { charsetSettings, classifySetting, isSafeClientCharset, parseSqlMode, type SettingScope } from "./settings.js";
import { UnexpectedStatementError, walkAst } from "./walk.js";

/**
 * Classifies one MySQL statement from its tokens: queries and data changes through sqlparser-rs's
 * tree, everything else (SET, SHOW, HANDLER, LOAD DATA, PREPARE, XA, GRANT, stored programs...)
 * through its grammar read token by token here, with expressions inside them parsed as expressions.
 */

/** Thrown when a statement cannot be parsed: the whole string is then refused. */
export class StatementParseError extends Error {}

/** What analysing one statement needs. */
export interface StatementContext {
  readonly lex: LexOptions;
  readonly pipesAsConcat: boolean;
  readonly safe: SafeFunctions;
  /** The current schema (USE), which unqualified names resolve to. */
  readonly schema: string | undefined;
  /** Local variables and parameters in scope (inside stored programs). */
  readonly locals: ReadonlySet<string> | undefined;
  /** How deep SQL sits inside SQL (PREPARE, stored program bodies). */
  readonly nesting: number;
}

/** A HANDLER statement's effect on the session's open handlers. */
export interface HandlerEffect {
  readonly action: "open" | "read" | "close";
  /** The handler's name: its alias, or the table name as written. */
  readonly name: string;
  /** OPEN: the table it reads. */
  readonly table?: { readonly schema?: string; readonly name: string };
}

/** What a statement does to the session besides its classes. */
export interface StatementEffects {
  transaction?: TransactionKind;
  prepared?: { readonly name: string; readonly outcome: StatementOutcome; readonly text: string };
  usesSchema?: string;
  /** The new sql_mode (normalized), `DEFAULT` for the global default. */
  setsSqlMode?: string;
  /** sql_mode set to a value that is not a literal: later text cannot be lexed as the server will. */
  sqlModeUnknown?: true;
  handler?: HandlerEffect;
  deallocates?: string;
  /** The statement may store values in variables a later statement reads (see assignsVariables). */
  assignsVariables?: true;
}

/** The analysis of one statement before it is frozen. */
export interface StatementOutcome {
  readonly kind: string;
  readonly facts: Facts;
  /** Classes from function calls alone (what EXPLAIN still runs). */
  readonly calls: Facts;
  readonly effects: StatementEffects;
}

/** How deep SQL may nest inside SQL before it is refused. */
const maxNesting = 8;

const isWord = (token: Token | undefined, word: string): boolean => token !== undefined && token.kind === "word" && token.upper === word;
const isOp = (token: Token | undefined, op: string): boolean => token !== undefined && token.kind === "op" && token.value === op;
const upperAt = (tokens: readonly Token[], i: number): string => (tokens[i]?.kind === "word" ? (tokens[i]?.upper ?? "") : "");

function plain(outcome: StatementOutcome, statementClass: StatementClass, reason: string): StatementOutcome {
  flag(outcome.facts, statementClass, reason);
  return outcome;
}

function newOutcome(kind: string): StatementOutcome {
  return { kind, facts: createFacts(), calls: createFacts(), effects: {} };
}

/** A name `a` or `a.b` at `i`: its parts as written and the index after it. */
function readName(tokens: readonly Token[], i: number): { parts: string[]; end: number } | undefined {
  const parts: string[] = [];
  let j = i;
  for (;;) {
    const token = tokens[j];
    if (token === undefined || (token.kind !== "word" && token.kind !== "ident" && token.kind !== "string")) return parts.length === 0 ? undefined : { parts, end: j };
    parts.push(token.value);
    j += 1;
    if (!isOp(tokens[j], ".")) return { parts, end: j };
    j += 1;
  }
}

function addTable(facts: Facts, parts: readonly string[], access: "read" | "write", schema: string | undefined): void {
  const name = parts.at(-1);
  if (name === undefined) return;
  const qualifier = parts.length >= 2 ? parts.at(-2) : schema;
  addRelation(facts, qualifier === undefined ? { name, access } : { schema: qualifier, name, access });
}

/** Splits tokens at depth-0 commas. */
function splitCommas(tokens: readonly Token[]): Token[][] {
  const parts: Token[][] = [];
  let current: Token[] = [];
  let depth = 0;
  for (const token of tokens) {
    if (isOp(token, "(")) depth += 1;
    else if (isOp(token, ")")) depth -= 1;
    if (depth === 0 && isOp(token, ",")) {
      parts.push(current);
      current = [];
    } else current.push(token);
  }
  parts.push(current);
  return parts;
}

/** Index of the first depth-0 word `word` at or after `from`, or -1. */
function findWord(tokens: readonly Token[], word: string, from = 0): number {
  let depth = 0;
  for (let j = from; j < tokens.length; j += 1) {
    const token = tokens[j];
    if (isOp(token, "(")) depth += 1;
    else if (isOp(token, ")")) depth -= 1;
    else if (depth === 0 && isWord(token, word)) return j;
  }
  return -1;
}

/** Parses rewritten tokens with sqlparser-rs and walks the single statement into the outcome. */
function walkTokens(tokens: readonly Token[], context: StatementContext, outcome: StatementOutcome): AstNode {
  const text = render(rewriteForParser(tokens, context.pipesAsConcat));
  const parsed = parseCanonical(text);
  if (!parsed.ok) throw new StatementParseError(parsed.error);
  const statement = parsed.statements[0];
  if (parsed.statements.length !== 1 || statement === undefined) throw new StatementParseError("expected one statement");
  try {
    walkAst(statement, { facts: outcome.facts, calls: outcome.calls, safe: context.safe, schema: context.schema });
  } catch (error) {
    if (error instanceof UnexpectedStatementError) throw new StatementParseError(error.message);
    throw error;
  }
  return statement;
}

/** Analyses an expression (a SET value, a DO list, a HANDLER condition) for the calls and subqueries in it. */
function walkExpression(tokens: readonly Token[], context: StatementContext, outcome: StatementOutcome): void {
  if (tokens.length === 0) return;
  const select = tokens[0] === undefined ? [] : [synthetic(tokens[0], "word", "SELECT")];
  walkTokens([...select, ...tokens], context, outcome);
}

const insertModifiers: ReadonlySet<string> = new Set(["LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE"]);

/**
 * Removes SELECT ... INTO clauses (sqlparser-rs does not read MySQL's) and records them: INTO
 * OUTFILE/DUMPFILE writes a server file; INTO @variables copies data into the session.
 */
function stripSelectInto(tokens: readonly Token[], context: StatementContext, outcome: StatementOutcome): Token[] {
  const out: Token[] = [];
  for (let k = 0; k < tokens.length; k += 1) {
    const token = tokens[k];
    if (token === undefined) break;
    if (!isWord(token, "INTO")) {
      out.push(token);
      continue;
    }
    let back = out.length - 1;
    while (back >= 0 && out[back]?.kind === "word" && insertModifiers.has(out[back]?.upper ?? "")) back -= 1;
    if (isWord(out[back], "INSERT") || isWord(out[back], "REPLACE")) {
      out.push(token);
      continue;
    }
    let j = k + 1;
    const what = upperAt(tokens, j);
    if (what === "OUTFILE" || what === "DUMPFILE") {
      const file = tokens[j + 1];
      if (file?.kind !== "string") throw new StatementParseError(`INTO ${what} without a file name`);
      flag(outcome.facts, "dangerous", `SELECT ... INTO ${what} writes the server file ${quote(file.value)}`);
      flag(outcome.facts, "export", `SELECT ... INTO ${what} exports rows`);
      outcome.facts.copiesData = true;
      j += 2;
      if (what === "OUTFILE") j = skipExportOptions(tokens, j);
    } else {
      let any = false;
      for (;;) {
        const target = tokens[j];
        if (target === undefined || (target.kind !== "uservar" && target.kind !== "word" && target.kind !== "ident")) break;
        any = true;
        if (target.kind === "uservar") outcome.facts.copiesData = true;
        else if (context.locals?.has(target.value.toLowerCase()) !== true) {
          throw new StatementParseError(`SELECT ... INTO ${quote(target.value)}: not a variable in scope`);
        }
        j += 1;
        if (!isOp(tokens[j], ",")) break;
        j += 1;
      }
      if (!any) throw new StatementParseError("INTO without a target");
      flag(outcome.facts, "read", "SELECT ... INTO variables");
    }
    k = j - 1;
  }
  return out;
}

/** Skips the CHARACTER SET, FIELDS/COLUMNS and LINES options of INTO OUTFILE and LOAD DATA. */
function skipExportOptions(tokens: readonly Token[], from: number): number {
  let j = from;
  for (;;) {
    const word = upperAt(tokens, j);
    if (word === "CHARACTER" && isWord(tokens[j + 1], "SET")) j += 3;
    else if (word === "CHARSET") j += 2;
    else if (word === "FIELDS" || word === "COLUMNS" || word === "LINES") {
      j += 1;
      for (;;) {
        const option = upperAt(tokens, j);
        if (option === "TERMINATED" || option === "ESCAPED" || option === "STARTING") j += 3;
        else if (option === "ENCLOSED") j += 3;
        else if (option === "OPTIONALLY") j += 4;
        else break;
      }
    } else return j;
  }
}

/** SELECT, WITH, VALUES, TABLE, `(`, INSERT, REPLACE, UPDATE, DELETE through sqlparser-rs. */
function analyzeQuery(tokens: readonly Token[], context: StatementContext, kind: string): StatementOutcome {
  const outcome = newOutcome(kind);
  let list = stripSelectInto(tokens, context, outcome);
  if (kind === "UPDATE") list = updateJoins(list);
  walkTokens(list, context, outcome);
  return outcome;
}

/** `UPDATE a, b SET` as `UPDATE a CROSS JOIN b SET`, which sqlparser-rs reads. */
function updateJoins(tokens: readonly Token[]): Token[] {
  const set = findWord(tokens, "SET", 1);
  if (set < 0) return [...tokens];
  const out: Token[] = [];
  let depth = 0;
  tokens.forEach((token, index) => {
    if (isOp(token, "(")) depth += 1;
    else if (isOp(token, ")")) depth -= 1;
    if (index < set && depth === 0 && isOp(token, ",")) out.push(synthetic(token, "word", "CROSS"), synthetic(token, "word", "JOIN"));
    else out.push(token);
  });
  return out;
}

/** Starts of statements EXPLAIN and ANALYZE take. */
const explainable: ReadonlySet<string> = new Set(["SELECT", "WITH", "TABLE", "VALUES", "INSERT", "REPLACE", "UPDATE", "DELETE"]);

function startsQuery(tokens: readonly Token[], i: number): boolean {
  return explainable.has(upperAt(tokens, i)) || isOp(tokens[i], "(");
}

function queryKind(tokens: readonly Token[], i: number): string {
  const word = upperAt(tokens, i);
  if (word === "INSERT" || word === "REPLACE" || word === "UPDATE" || word === "DELETE") return word;
  return "SELECT";
}

/** EXPLAIN / DESCRIBE / DESC, and MariaDB's ANALYZE statement. */
function analyzeExplain(tokens: readonly Token[], context: StatementContext, runs: boolean): StatementOutcome {
  const verb = upperAt(tokens, 0);
  let j = 1;
  let analyze = runs;
  for (;;) {
    const word = upperAt(tokens, j);
    if (word === "EXTENDED" || word === "PARTITIONS") j += 1;
    else if (word === "ANALYZE") {
      analyze = true;
      j += 1;
    } else if (word === "FORMAT" && isOp(tokens[j + 1], "=")) j += 3;
    else break;
  }
  const outcome = newOutcome(runs ? "ANALYZE" : "EXPLAIN");
  if (isWord(tokens[j], "FOR") && isWord(tokens[j + 1], "CONNECTION")) return plain(outcome, "read", "EXPLAIN FOR CONNECTION shows another session's plan");
  if (!startsQuery(tokens, j)) {
    if (runs) throw new StatementParseError("ANALYZE without a statement");
    const name = readName(tokens, j);
    if (name === undefined) throw new StatementParseError(`${verb} without a table or statement`);
    addTable(outcome.facts, name.parts, "read", context.schema);
    return plain(outcome, "read", `${verb} of a table's columns`);
  }
  const inner = analyzeQuery(tokens.slice(j), context, queryKind(tokens, j));
  if (analyze) {
    mergeFacts(outcome.facts, inner.facts);
    mergeFacts(outcome.calls, inner.calls);
    outcome.facts.reasons.add(`${runs ? "ANALYZE" : "EXPLAIN ANALYZE"} runs the statement`);
    return outcome;
  }
  for (const relation of inner.facts.relations.values()) {
    addRelation(outcome.facts, relation.schema === undefined ? { name: relation.name, access: "read" } : { schema: relation.schema, name: relation.name, access: "read" });
  }
  // Without ANALYZE nothing runs, but the optimizer may evaluate constant calls while planning.
  for (const name of inner.calls.functions) outcome.facts.functions.add(name);
  for (const statementClass of inner.calls.classes) outcome.facts.classes.add(statementClass);
  for (const reason of inner.calls.reasons) outcome.facts.reasons.add(reason);
  for (const name of inner.calls.userFunctions) {
    outcome.facts.userFunctions.add(name);
    flag(outcome.facts, "write", `EXPLAIN may run stored function ${quote(name)} while planning`);
  }
  return plain(outcome, "read", "EXPLAIN without ANALYZE does not run the statement");
}

/** SHOW ...: reads, with the tables it names and any WHERE expression analysed. */
function analyzeShow(tokens: readonly Token[], context: StatementContext): StatementOutcome {
  const outcome = newOutcome("SHOW");
  let j = 1;
  while (["FULL", "EXTENDED", "GLOBAL", "SESSION", "LOCAL", "ALL"].includes(upperAt(tokens, j))) j += 1;
  const what = upperAt(tokens, j);
  if ((what === "BINLOG" || what === "RELAYLOG") && isWord(tokens[j + 1], "EVENTS")) {
    return plain(outcome, "dangerous", `SHOW ${what} EVENTS reads the server's log of every session's changes`);
  }
  if (what === "COLUMNS" || what === "FIELDS" || what === "INDEX" || what === "INDEXES" || what === "KEYS") {
    if (isWord(tokens[j + 1], "FROM") || isWord(tokens[j + 1], "IN")) {
      const name = readName(tokens, j + 2);
      if (name !== undefined) {
        let parts = name.parts;
        if ((isWord(tokens[name.end], "FROM") || isWord(tokens[name.end], "IN")) && tokens[name.end + 1] !== undefined) {
          parts = [tokens[name.end + 1]?.value ?? "", ...parts.slice(-1)];
        }
        addTable(outcome.facts, parts, "read", context.schema);
      }
    }
  } else if (what === "CREATE" && (isWord(tokens[j + 1], "TABLE") || isWord(tokens[j + 1], "VIEW"))) {
    const name = readName(tokens, j + 2);
    if (name !== undefined) addTable(outcome.facts, name.parts, "read", context.schema);
  }
  const where = findWord(tokens, "WHERE", j);
  if (where >= 0) walkExpression(tokens.slice(where + 1), context, outcome);
  return plain(outcome, "read", `SHOW ${what === "" ? "" : what}`.trim());
}

/** The value of a string literal (adjacent literals joined, as the server joins them), or undefined. */
function literalText(tokens: readonly Token[]): string | undefined {
  if (tokens.length === 0 || tokens.some((token) => token.kind !== "string")) return undefined;
  return tokens.map((token) => token.value).join("");
}

/** SET in all its forms. */
function analyzeSet(tokens: readonly Token[], context: StatementContext): StatementOutcome {
  const outcome = newOutcome("SET");
  const second = upperAt(tokens, 1);
  if (second === "STATEMENT") {
    // MariaDB: SET STATEMENT var = value [, ...] FOR statement.
    const forAt = findWord(tokens, "FOR", 2);
    if (forAt < 0) throw new StatementParseError("SET STATEMENT without `FOR`");
    setAssignments(tokens.slice(2, forAt), context, outcome, true);
    const inner = analyzeStatement(tokens.slice(forAt + 1), context);
    mergeFacts(outcome.facts, inner.facts);
    mergeFacts(outcome.calls, inner.calls);
    Object.assign(outcome.effects, inner.effects);
    return outcome;
  }
  if (second === "PASSWORD") return plain(outcome, "admin", "SET PASSWORD changes an account's password");
  if (second === "ROLE") return plain(outcome, "dangerous", "SET ROLE changes the session's roles");
  if (second === "DEFAULT" && isWord(tokens[2], "ROLE")) return plain(outcome, "admin", "SET DEFAULT ROLE changes an account's roles");
  if (second === "RESOURCE" && isWord(tokens[2], "GROUP")) return plain(outcome, "admin", "SET RESOURCE GROUP");
  const transactionAt = second === "GLOBAL" || second === "SESSION" || second === "LOCAL" ? 2 : 1;
  if (isWord(tokens[transactionAt], "TRANSACTION")) {
    if (second === "GLOBAL") return plain(outcome, "admin", "SET GLOBAL TRANSACTION changes the server's default");
    return plain(outcome, "read", "SET TRANSACTION characteristics");
  }
  setAssignments(tokens.slice(1), context, outcome, false);
  return outcome;
}

const scopeWords: Readonly<Record<string, SettingScope>> = {
  GLOBAL: "global",
  SESSION: "session",
  LOCAL: "session",
  PERSIST: "persist",
  PERSIST_ONLY: "persist_only",
};

/** The assignments of SET (or SET STATEMENT, whose changes last one statement). */
function setAssignments(tokens: readonly Token[], context: StatementContext, outcome: StatementOutcome, statementOnly: boolean): void {
  let scope: SettingScope = "session";
  for (const assignment of splitCommas(tokens)) {
    let j = 0;
    const scopeWord = scopeWords[upperAt(assignment, 0)];
    if (scopeWord !== undefined && assignment.length > 1) {
      scope = scopeWord;
      j = 1;
    }
    const target = assignment[j];
    if (target === undefined) throw new StatementParseError("SET without a variable");
    // NAMES and CHARACTER SET take a character set, not `=`.
    if (isWord(target, "NAMES") || (isWord(target, "CHARACTER") && isWord(assignment[j + 1], "SET")) || isWord(target, "CHARSET")) {
      const valueAt = isWord(target, "CHARACTER") ? j + 2 : j + 1;
      const value = assignment[valueAt];
      if (value === undefined) throw new StatementParseError(`SET ${target.upper} without a character set`);
      charsetChange(value.value, outcome);
      continue;
    }
    let name: string;
    let variableScope = scope;
    let user = false;
    let equals = j + 1;
    if (target.kind === "uservar") {
      user = true;
      name = target.value;
    } else if (target.kind === "sysvar") {
      const dot = target.value.indexOf(".");
      const prefix = dot > 0 ? target.value.slice(0, dot) : "";
      const known = scopeWords[prefix.toUpperCase()];
      variableScope = known ?? "session";
      name = known === undefined ? target.value : target.value.slice(dot + 1);
    } else if (target.kind === "word" || target.kind === "ident") {
      name = target.value;
      // `SET x.y = ...`: a structured variable (key cache) or a column of a trigger's NEW row.
      if (isOp(assignment[j + 1], ".") && assignment[j + 2] !== undefined) {
        name = `${name}.${assignment[j + 2]?.value ?? ""}`;
        equals = j + 3;
      }
    } else throw new StatementParseError(`SET of ${quote(target.value)}`);
    if (!isOp(assignment[equals], "=") && !isOp(assignment[equals], ":=")) throw new StatementParseError("SET without `=`");
    const value = assignment.slice(equals + 1);
    if (value.length === 0) throw new StatementParseError("SET without a value");
    const lower = name.toLowerCase();
    if (user) {
      flag(outcome.facts, "read", "SET of a user variable");
      walkValue(value, context, outcome);
      continue;
    }
    if (context.locals?.has(lower) === true || lower.startsWith("new.")) {
      flag(outcome.facts, "read", "SET of a local variable");
      walkValue(value, context, outcome);
      continue;
    }
    if (lower === "sql_mode" && variableScope === "session") {
      sqlModeChange(value, outcome, statementOnly);
      continue;
    }
    if (charsetSettings.has(lower) && variableScope === "session") {
      const literal = literalText(value) ?? (value.length === 1 && value[0]?.kind === "word" ? value[0].value : undefined);
      if (literal === undefined) flag(outcome.facts, "dangerous", `SET ${quote(lower)} to a value that is not a literal`);
      else charsetChange(literal, outcome);
      continue;
    }
    const verdict = classifySetting(lower, variableScope);
    flag(outcome.facts, verdict.class, verdict.reason);
    walkValue(value, context, outcome);
  }
}

const literalKinds: ReadonlySet<string> = new Set(["word", "string", "number", "hex", "bit", "sysvar", "uservar"]);

/** A SET value: a single word (ON, OFF, DEFAULT, SYSTEM), literal or variable needs nothing; anything else is an expression. */
function walkValue(value: readonly Token[], context: StatementContext, outcome: StatementOutcome): void {
  if (value.length === 1 && literalKinds.has(value[0]?.kind ?? "")) return;
  walkExpression(value, context, outcome);
}

function charsetChange(name: string, outcome: StatementOutcome): void {
  if (name.toUpperCase() === "DEFAULT" || isSafeClientCharset(name)) {
    flag(outcome.facts, "read", "SET of the connection's character set");
    return;
  }
  flag(outcome.facts, "dangerous", `character set ${quote(name.toLowerCase())}: its multi-byte characters can hide quotes and backslashes from the gateway`);
}

/** SET sql_mode: a literal is followed (the session then lexes with it); anything else is dangerous. */
function sqlModeChange(value: readonly Token[], outcome: StatementOutcome, statementOnly: boolean): void {
  const word = value.length === 1 && value[0]?.kind === "word" ? value[0].upper : undefined;
  const literal = literalText(value) ?? word;
  if (literal === undefined) {
    flag(outcome.facts, "dangerous", "SET `sql_mode` to a value that is not a literal: the gateway cannot lex what follows as the server will");
    if (!statementOnly) outcome.effects.sqlModeUnknown = true;
    return;
  }
  if (word === "DEFAULT") {
    flag(outcome.facts, "read", "SET `sql_mode` to its default");
    if (!statementOnly) outcome.effects.setsSqlMode = "DEFAULT";
    return;
  }
  const parsed = parseSqlMode(literal);
  if (!parsed.ok) {
    flag(outcome.facts, "dangerous", `SET \`sql_mode\`: ${parsed.error}`);
    if (!statementOnly) outcome.effects.sqlModeUnknown = true;
    return;
  }
  flag(outcome.facts, "read", "SET of session variable `sql_mode`");
  if (!statementOnly) outcome.effects.setsSqlMode = parsed.mode;
}

/** The keywords each transaction statement may have after its first word. */
const transactionWords: Readonly<Record<string, ReadonlySet<string>>> = {
  BEGIN: new Set(["WORK"]),
  COMMIT: new Set(["WORK", "AND", "NO", "CHAIN", "RELEASE"]),
  ROLLBACK: new Set(["WORK", "AND", "NO", "CHAIN", "RELEASE", "TO", "SAVEPOINT"]),
  SAVEPOINT: new Set(),
  RELEASE: new Set(["SAVEPOINT"]),
  START: new Set(["TRANSACTION", "WITH", "CONSISTENT", "SNAPSHOT", "READ", "WRITE", "ONLY"]),
};

/** START TRANSACTION, BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE, XA. */
function analyzeTransaction(tokens: readonly Token[]): StatementOutcome {
  const first = upperAt(tokens, 0);
  // These take names and keywords only (XA a transaction id of strings and numbers): nothing to run.
  const allowed = first === "XA" ? ["word", "ident", "string", "hex", "number"] : ["word", "ident"];
  const stray = tokens.find((token) => !allowed.includes(token.kind) && !(first === "XA" && isOp(token, ",")) && !(first === "START" && isOp(token, ",")));
  if (stray !== undefined) throw new StatementParseError(`syntax error at or near ${quote(stray.value)}`);
  const words = transactionWords[first];
  if (words !== undefined) {
    // The savepoint's name is the one word that is not a keyword of the statement.
    const named = first === "SAVEPOINT" || first === "RELEASE" || (first === "ROLLBACK" && findWord(tokens, "TO") >= 0);
    const last = named ? tokens.length - 1 : tokens.length;
    const unexpected = tokens.slice(1, last).find((token) => !(first === "START" && isOp(token, ",")) && (token.kind !== "word" || !words.has(token.upper)));
    if (unexpected !== undefined || (named && tokens.length < 2)) throw new StatementParseError(`syntax error at or near ${quote(unexpected?.value ?? first)}`);
  }
  const outcome = newOutcome(first === "XA" ? "XA" : first);
  const set = (kind: TransactionKind | undefined, reason: string): StatementOutcome => {
    if (kind !== undefined) outcome.effects.transaction = kind;
    return plain(outcome, "read", reason);
  };
  switch (first) {
    case "START":
      return set("begin", "transaction control (begin)");
    case "BEGIN":
      return set("begin", "transaction control (begin)");
    case "COMMIT":
      return set("commit", "transaction control (commit)");
    case "ROLLBACK": {
      const to = findWord(tokens, "TO");
      return to >= 0 ? set("rollback_to", "transaction control (rollback_to)") : set("rollback", "transaction control (rollback)");
    }
    case "SAVEPOINT":
      return set("savepoint", "transaction control (savepoint)");
    case "RELEASE":
      return set("release", "transaction control (release)");
    default: {
      const action = upperAt(tokens, 1);
      switch (action) {
        case "START":
        case "BEGIN":
          return set("begin", "XA transaction control (begin)");
        case "END":
          return set(undefined, "XA transaction control (end)");
        case "PREPARE":
          return set("prepare", "XA transaction control (prepare)");
        case "COMMIT":
          return findWord(tokens, "ONE") >= 0 ? set("commit", "XA transaction control (commit)") : set("commit_prepared", "XA transaction control (commit_prepared)");
        case "ROLLBACK":
          return set("rollback_prepared", "XA transaction control (rollback_prepared)");
        case "RECOVER":
          return set(undefined, "XA RECOVER lists prepared transactions");
        default:
          throw new StatementParseError(`unknown XA statement ${quote(action)}`);
      }
    }
  }
}

/** LOCK TABLES / LOCK INSTANCE / UNLOCK. */
function analyzeLock(tokens: readonly Token[], context: StatementContext): StatementOutcome {
  const outcome = newOutcome("LOCK TABLES");
  if (isWord(tokens[1], "INSTANCE")) return plain(outcome, "admin", "LOCK INSTANCE FOR BACKUP blocks changes server-wide");
  if (!isWord(tokens[1], "TABLES") && !isWord(tokens[1], "TABLE")) throw new StatementParseError("LOCK without TABLES");
  for (const item of splitCommas(tokens.slice(2))) {
    const name = readName(item, 0);
    if (name === undefined) throw new StatementParseError("LOCK TABLES without a table");
    addTable(outcome.facts, name.parts, "write", context.schema);
  }
  return plain(outcome, "write", "LOCK of tables");
}

/** HANDLER tbl OPEN [AS alias] | READ ... | CLOSE. */
function analyzeHandler(tokens: readonly Token[], context: StatementContext): StatementOutcome {
  const outcome = newOutcome("HANDLER");
  const name = readName(tokens, 1);
  if (name === undefined) throw new StatementParseError("HANDLER without a table");
  const action = upperAt(tokens, name.end);
  const written = name.parts.join(".");
  if (action === "OPEN") {
    let alias = written;
    let j = name.end + 1;
    if (isWord(tokens[j], "AS")) j += 1;
    const aliasToken = tokens[j];
    if (aliasToken !== undefined && (aliasToken.kind === "word" || aliasToken.kind === "ident")) alias = aliasToken.value;
    const table = name.parts.at(-1) ?? "";
    const schema = name.parts.length >= 2 ? name.parts.at(-2) : context.schema;
    outcome.effects.handler = { action: "open", name: alias, table: schema === undefined ? { name: table } : { schema, name: table } };
    addTable(outcome.facts, name.parts, "read", context.schema);
    return plain(outcome, "read", `HANDLER OPEN of ${quote(written)}`);
  }
  if (action === "READ") {
    outcome.effects.handler = { action: "read", name: written };
    addTable(outcome.facts, name.parts, "read", context.schema);
    // Key values `= (expr, ...)` and WHERE are expressions; the server evaluates them.
    const where = findWord(tokens, "WHERE", name.end);
    const limit = findWord(tokens, "LIMIT", name.end);
    const open = tokens.findIndex((token, index) => index > name.end && isOp(token, "("));
    if (open > 0 && (where < 0 || open < where)) walkExpression(tokens.slice(open, closingParen(tokens, open) + 1), context, outcome);
    if (where >= 0) walkExpression(tokens.slice(where + 1, limit > where ? limit : tokens.length), context, outcome);
    return plain(outcome, "read", `HANDLER READ of ${quote(written)}`);
  }
  if (action === "CLOSE") {
    outcome.effects.handler = { action: "close", name: written };
    return plain(outcome, "read", `HANDLER CLOSE of ${quote(written)}`);
  }
  throw new StatementParseError(`HANDLER ${quote(action)}`);
}

/** LOAD DATA / LOAD XML [LOCAL] INFILE 'file' INTO TABLE t ...; LOAD INDEX INTO CACHE. */
function analyzeLoad(tokens: readonly Token[], context: StatementContext): StatementOutcome {
  const what = upperAt(tokens, 1);
  if (what === "INDEX") return plain(newOutcome("LOAD INDEX"), "admin", "LOAD INDEX INTO CACHE");
  if (what !== "DATA" && what !== "XML") throw new StatementParseError(`LOAD ${quote(what)}`);
  const outcome = newOutcome(`LOAD ${what}`);
  let j = 2;
  while (isWord(tokens[j], "LOW_PRIORITY") || isWord(tokens[j], "CONCURRENT")) j += 1;
  const local = isWord(tokens[j], "LOCAL");
  if (local) j += 1;
  if (!isWord(tokens[j], "INFILE") || tokens[j + 1]?.kind !== "string") throw new StatementParseError(`LOAD ${what} without INFILE`);
  const file = tokens[j + 1]?.value ?? "";
  const into = findWord(tokens, "INTO", j);
  if (into < 0 || !isWord(tokens[into + 1], "TABLE")) throw new StatementParseError(`LOAD ${what} without INTO TABLE`);
  const table = readName(tokens, into + 2);
  if (table === undefined) throw new StatementParseError(`LOAD ${what} without a table`);
  addTable(outcome.facts, table.parts, "write", context.schema);
  flag(outcome.facts, "write", `LOAD ${what} into ${quote(table.parts.join("."))}`);
  if (local) outcome.facts.reasons.add(`LOAD ${what} LOCAL sends a file from the client`);
  else flag(outcome.facts, "dangerous", `LOAD ${what} reads the server file ${quote(file)}`);
  const set = findWord(tokens, "SET", table.end);
  if (set >= 0) {
    for (const assignment of splitCommas(tokens.slice(set + 1))) {
      const equals = assignment.findIndex((token) => isOp(token, "="));
      if (equals >= 0) walkExpression(assignment.slice(equals + 1), context, outcome);
    }
  }
  return outcome;
}

/** CALL proc[(args)]: like an unknown function, a write unless marked safe. */
function analyzeCall(tokens: readonly Token[], context: StatementContext): StatementOutcome {
  const outcome = newOutcome("CALL");
  const name = readName(tokens, 1);
  if (name === undefined) throw new StatementParseError("CALL without a procedure");
  const verdict = classifyProcedure(name.parts, context.safe, context.schema);
  const written = name.parts.map((part) => part.toLowerCase()).join(".");
  outcome.facts.functions.add(written);
  if (verdict.user) outcome.facts.userFunctions.add(written);
  flag(outcome.facts, verdict.class, verdict.reason);
  if (isOp(tokens[name.end], "(")) {
    const close = closingParen(tokens, name.end);
    const args = tokens.slice(name.end + 1, close);
    if (args.length > 0) walkExpression(args, context, outcome);
    if (close !== tokens.length - 1) throw new StatementParseError("unexpected text after CALL");
  } else if (name.end !== tokens.length) throw new StatementParseError("unexpected text after CALL");
  return outcome;
}

/** PREPARE name FROM 'text' | @var; EXECUTE name [USING ...]; EXECUTE IMMEDIATE; DEALLOCATE. */
function analyzePrepare(tokens: readonly Token[], context: StatementContext): StatementOutcome {
  const outcome = newOutcome("PREPARE");
  const name = tokens[1];
  if (name === undefined || !isWord(tokens[2], "FROM")) throw new StatementParseError("PREPARE without `FROM`");
  const source = tokens.slice(3);
  const text = literalText(source);
  if (text === undefined) {
    return plain(outcome, "dangerous", `PREPARE ${quote(name.value)} FROM a variable or expression: dynamic SQL the gateway cannot see`);
  }
  const inner = nestedStatement(text, context, `prepared statement ${quote(name.value)}`, outcome);
  if (inner !== undefined) {
    mergeFacts(outcome.facts, inner.facts);
    mergeFacts(outcome.calls, inner.calls);
    outcome.effects.prepared = { name: name.value, outcome: inner, text };
    if (inner.effects.setsSqlMode !== undefined || inner.effects.sqlModeUnknown === true) {
      flag(outcome.facts, "dangerous", "a prepared statement that changes `sql_mode` changes how later text is lexed when executed");
    }
  }
  return outcome;
}

function analyzeExecute(tokens: readonly Token[], context: StatementContext): StatementOutcome {
  const outcome = newOutcome("EXECUTE");
  if (isWord(tokens[1], "IMMEDIATE")) {
    const source = tokens.slice(2);
    const using = findWord(source, "USING");
    const text = literalText(using >= 0 ? source.slice(0, using) : source);
    if (text === undefined) return plain(outcome, "dangerous", "EXECUTE IMMEDIATE of a variable or expression: dynamic SQL the gateway cannot see");
    const inner = nestedStatement(text, context, "EXECUTE IMMEDIATE", outcome);
    if (inner !== undefined) {
      mergeFacts(outcome.facts, inner.facts);
      mergeFacts(outcome.calls, inner.calls);
      if (inner.effects.setsSqlMode !== undefined || inner.effects.sqlModeUnknown === true || inner.effects.usesSchema !== undefined) {
        flag(outcome.facts, "dangerous", "EXECUTE IMMEDIATE of a statement that changes the session's `sql_mode` or schema");
      }
    }
    if (using >= 0) walkExpression(source.slice(using + 1), context, outcome);
    return outcome;
  }
  const name = tokens[1];
  if (name === undefined) throw new StatementParseError("EXECUTE without a name");
  outcome.facts.executes ??= name.value;
  flag(outcome.facts, "write", `EXECUTE of prepared statement ${quote(name.value)}: taken as a write until resolved`);
  if (isWord(tokens[2], "USING")) walkExpression(tokens.slice(3), context, outcome);
  else if (tokens.length > 2) throw new StatementParseError("unexpected text after EXECUTE");
  return outcome;
}

/** GRANT, REVOKE and account statements. */
function admin(kind: string, reason: string): StatementOutcome {
  return plain(newOutcome(kind), "admin", reason);
}

function dangerous(kind: string, reason: string): StatementOutcome {
  return plain(newOutcome(kind), "dangerous", reason);
}

/** Storage engines and table options through which a table reads server files or other servers. */
const remoteEngines: ReadonlySet<string> = new Set(["FEDERATED", "FEDERATEDX", "CONNECT", "SPIDER", "CSV", "OQGRAPH"]);

/** Table options that reach outside the database (DATA DIRECTORY, CONNECTION, remote engines), and dangerous calls found by name in a definition. */
function tableDefinitionRisks(tokens: readonly Token[], outcome: StatementOutcome): void {
  for (let j = 0; j < tokens.length; j += 1) {
    const token = tokens[j];
    if (token?.kind !== "word") continue;
    const next = tokens[j + 1];
    if ((token.upper === "DATA" || token.upper === "INDEX") && isWord(next, "DIRECTORY")) {
      flag(outcome.facts, "dangerous", `${token.upper} DIRECTORY puts table files at a server path`);
    } else if (token.upper === "CONNECTION" && (isOp(next, "=") || next?.kind === "string")) {
      flag(outcome.facts, "dangerous", "CONNECTION makes the table reach another server");
    } else if (token.upper === "ENGINE" && (isOp(next, "=") ? tokens[j + 2] : next) !== undefined) {
      const engine = (isOp(next, "=") ? tokens[j + 2] : next)?.value.toUpperCase() ?? "";
      if (remoteEngines.has(engine)) flag(outcome.facts, "dangerous", `ENGINE=${engine} reads server files or other servers`);
    } else if ((token.upper === "FILE_NAME" || token.upper === "TABLE_TYPE") && isOp(next, "=")) {
      flag(outcome.facts, "dangerous", `${token.upper} makes the table read server files or programs`);
    } else if (isOp(next, "(")) {
      const reason = dangerousFunctionReason(token.value);
      if (reason !== undefined) flag(outcome.facts, "dangerous", `calls ${quote(token.value.toLowerCase())}: it ${reason}`);
    }
  }
}

/** A DEFINER clause naming someone other than the current user: the object then runs with that account's rights. */
function definerRisk(tokens: readonly Token[], outcome: StatementOutcome): void {
  const at = findWord(tokens, "DEFINER");
  if (at < 0) return;
  let j = at + 1;
  if (isOp(tokens[j], "=")) j += 1;
  if (isWord(tokens[j], "CURRENT_USER")) return;
  flag(outcome.facts, "admin", "DEFINER names another account, whose rights the object then runs with");
}

/** The query after `AS` or a top-level SELECT/WITH/`(` in CREATE TABLE ... SELECT and CREATE VIEW ... AS. */
function queryStart(tokens: readonly Token[], from: number): number {
  let depth = 0;
  for (let j = from; j < tokens.length; j += 1) {
    const token = tokens[j];
    if (depth === 0 && (isWord(token, "SELECT") || isWord(token, "WITH") || isWord(token, "VALUES") || isWord(token, "TABLE"))) {
      return j;
    }
    if (depth === 0 && isOp(token, "(") && (isWord(tokens[j + 1], "SELECT") || isWord(tokens[j + 1], "WITH"))) return j;
    if (isOp(token, "(")) depth += 1;
    else if (isOp(token, ")")) depth -= 1;
  }
  return -1;
}

const objectWords = new Set(["TABLE", "VIEW", "INDEX", "DATABASE", "SCHEMA", "SEQUENCE", "USER", "ROLE", "SERVER", "TABLESPACE", "LOGFILE", "PROCEDURE", "FUNCTION", "TRIGGER", "EVENT", "SPATIAL", "RESOURCE", "PACKAGE"]);

/** CREATE, ALTER and DROP of everything that is not a stored program. */
function analyzeDdl(tokens: readonly Token[], context: StatementContext): StatementOutcome {
  const verb = upperAt(tokens, 0);
  let j = 1;
  // Modifiers before the object word: OR REPLACE, TEMPORARY, UNIQUE, ONLINE, IGNORE, ALGORITHM=, DEFINER=, SQL SECURITY.
  while (j < tokens.length && !objectWords.has(upperAt(tokens, j))) {
    if (isWord(tokens[j], "DEFINER") || isWord(tokens[j], "ALGORITHM")) {
      j += isOp(tokens[j + 1], "=") ? 3 : 2;
      if (tokens[j]?.kind === "uservar" && tokens[j]?.start === tokens[j - 1]?.end) j += 1;
      else if (isOp(tokens[j], "(") && isOp(tokens[j + 1], ")")) j += 2;
      continue;
    }
    j += 1;
  }
  const object = upperAt(tokens, j);
  if (object === "") throw new StatementParseError(`unrecognised statement \`${verb}\``);
  const kind = `${verb} ${object}`;
  const outcome = newOutcome(kind);
  j += 1;
  if (object === "LOGFILE" || object === "RESOURCE") j += 1;
  if (object === "SPATIAL") j += 2;
  const ifClause = (): void => {
    if (isWord(tokens[j], "IF")) {
      j += 1;
      if (isWord(tokens[j], "NOT")) j += 1;
      j += 1;
    }
  };
  switch (object) {
    case "USER":
    case "ROLE":
      return plain(outcome, "admin", `${kind} changes accounts`);
    case "SERVER":
    case "TABLESPACE":
    case "LOGFILE":
    case "RESOURCE":
      return plain(outcome, "admin", kind);
    case "PACKAGE":
      throw new StatementParseError(`${kind} (Oracle mode) is not supported`);
    case "DATABASE":
    case "SCHEMA":
      return plain(outcome, "ddl", kind);
    case "PROCEDURE":
    case "FUNCTION":
    case "TRIGGER":
    case "EVENT":
      // DROP and ALTER of stored programs without a body.
      return plain(outcome, "ddl", kind);
    case "SPATIAL":
      return plain(outcome, "ddl", kind);
    default:
      break;
  }
  ifClause();
  if (object === "INDEX") {
    const onAt = findWord(tokens, "ON", j);
    const table = onAt < 0 ? undefined : readName(tokens, onAt + 1);
    if (table !== undefined) addTable(outcome.facts, table.parts, "write", context.schema);
    return plain(outcome, "ddl", `${kind} on ${quote(table?.parts.join(".") ?? "?")}`);
  }
  if (verb === "DROP") {
    const items = splitCommas(tokens.slice(j));
    for (const [index, item] of items.entries()) {
      const name = readName(item, 0);
      if (name === undefined) throw new StatementParseError(`${kind} without a name`);
      const tail = item.slice(name.end);
      const last = index === items.length - 1;
      if (tail.length > 1 || (tail.length === 1 && !(last && (isWord(tail[0], "RESTRICT") || isWord(tail[0], "CASCADE"))))) {
        throw new StatementParseError(`syntax error at or near ${quote(tail[0]?.value ?? "")}`);
      }
      addTable(outcome.facts, name.parts, "write", context.schema);
      flag(outcome.facts, "ddl", `${kind} ${quote(name.parts.join("."))}`);
    }
    if (outcome.facts.classes.size === 0) flag(outcome.facts, "ddl", kind);
    return outcome;
  }
  const name = readName(tokens, j);
  if (name === undefined) throw new StatementParseError(`${kind} without a name`);
  addTable(outcome.facts, name.parts, "write", context.schema);
  flag(outcome.facts, "ddl", `${kind} ${quote(name.parts.join("."))}`);
  definerRisk(tokens.slice(0, j), outcome);
  const rest = tokens.slice(name.end);
  if (object === "TABLE" || object === "SEQUENCE") tableDefinitionRisks(rest, outcome);
  if (object === "TABLE" && verb === "CREATE") {
    const like = isWord(rest[0], "LIKE") ? 1 : isOp(rest[0], "(") && isWord(rest[1], "LIKE") ? 2 : 0;
    if (like > 0) {
      const source = readName(rest, like);
      if (source !== undefined) addTable(outcome.facts, source.parts, "read", context.schema);
    }
  }
  if ((object === "TABLE" && verb === "CREATE") || object === "VIEW") {
    const start = object === "VIEW" ? findWord(rest, "AS") + 1 : queryStart(rest, 0);
    if (start > 0 || (object === "TABLE" && start === 0)) {
      const query = rest.slice(start);
      // WITH CHECK OPTION ends a view definition.
      const check = object === "VIEW" ? findWord(query, "WITH") : -1;
      const body = check > 0 && isWord(query[check + 1], "CHECK") ? query.slice(0, check) : check > 0 && (isWord(query[check + 1], "CASCADED") || isWord(query[check + 1], "LOCAL")) ? query.slice(0, check) : query;
      const inner = analyzeQuery(body, context, "SELECT");
      mergeFacts(outcome.facts, inner.facts);
      mergeFacts(outcome.calls, inner.calls);
      if (object === "TABLE") {
        flag(outcome.facts, "write", `CREATE TABLE ... SELECT copies rows into ${quote(name.parts.join("."))}`);
        outcome.facts.copiesData = true;
      }
    }
  }
  if (object === "TABLE" && verb === "ALTER") {
    const partitions = findWord(rest, "IMPORT");
    if (partitions >= 0 && isWord(rest[partitions + 1], "TABLESPACE")) flag(outcome.facts, "dangerous", "IMPORT TABLESPACE reads table files from the server's disk");
  }
  return outcome;
}

/** CREATE PROCEDURE / FUNCTION / TRIGGER / EVENT and ALTER EVENT: DDL, plus what the body does. */
function analyzeRoutine(tokens: readonly Token[], context: StatementContext, objectAt: number, alter: boolean): StatementOutcome {
  const header = readRoutineHeader(tokens, objectAt, alter);
  const verb = alter ? "ALTER" : "CREATE";
  const outcome = newOutcome(`${verb} ${header.object}`);
  const what = `${header.object.toLowerCase()} ${quote(header.name)}`;
  flag(outcome.facts, "ddl", `${verb} ${header.object} ${quote(header.name)}`);
  definerRisk(tokens.slice(0, objectAt), outcome);
  if (header.soname) return plain(outcome, "dangerous", `${verb} FUNCTION ... SONAME loads a shared library into the server`);
  if (header.table !== undefined) {
    addTable(outcome.facts, header.table.map((token) => token.value), "write", context.schema);
  }
  if (header.bodyStart === undefined) return outcome;
  const body = readCompound(tokens, header.bodyStart);
  if (body.end !== tokens.length) throw new StatementParseError(`unexpected text after the body of ${what}`);
  const locals = new Set([...header.params, ...body.locals, ...(context.locals ?? [])]);
  analyzeItems(body.items, { ...context, locals, nesting: context.nesting + 1 }, outcome, what);
  // A stored program runs with the sql_mode it was created with and restores the caller's after.
  delete outcome.effects.setsSqlMode;
  delete outcome.effects.sqlModeUnknown;
  if (header.object === "EVENT") flag(outcome.facts, "dangerous", `${what} schedules SQL that runs later, outside the gateway`);
  return outcome;
}

/** Analyses the statements and expressions of a compound body into `outcome`. */
function analyzeItems(items: readonly CompoundItem[], context: StatementContext, outcome: StatementOutcome, where: string): void {
  if (context.nesting > maxNesting) {
    flag(outcome.facts, "dangerous", `SQL nested too deeply in ${where}`);
    return;
  }
  for (const item of items) {
    try {
      if (item.kind === "expression") {
        walkExpression(item.tokens, context, outcome);
        continue;
      }
      const inner = analyzeStatement(item.tokens, context);
      mergeFacts(outcome.facts, inner.facts);
      mergeFacts(outcome.calls, inner.calls);
      if (inner.effects.setsSqlMode !== undefined) outcome.effects.setsSqlMode = inner.effects.setsSqlMode;
      if (inner.effects.sqlModeUnknown === true) outcome.effects.sqlModeUnknown = true;
    } catch (error) {
      if (!(error instanceof StatementParseError || error instanceof CompoundError)) throw error;
      flag(outcome.facts, "dangerous", `could not parse SQL in ${where}: ${error.message}`);
    }
  }
}

/**
 * Analyses SQL text found inside a statement (PREPARE ... FROM 'text', EXECUTE IMMEDIATE), which
 * must be exactly one statement; problems are dangerous rather than errors.
 */
function nestedStatement(text: string, context: StatementContext, where: string, outcome: StatementOutcome): StatementOutcome | undefined {
  if (context.nesting >= maxNesting) {
    flag(outcome.facts, "dangerous", `SQL nested too deeply in ${where}`);
    return undefined;
  }
  const lexed = lex(text, context.lex);
  if (!lexed.ok) {
    flag(outcome.facts, "dangerous", `could not lex the SQL of ${where}: ${lexed.error}`);
    return undefined;
  }
  try {
    const statements = splitStatements(lexed.tokens);
    if (statements.length !== 1 || statements[0] === undefined) {
      flag(outcome.facts, "dangerous", `${where} is not exactly one statement`);
      return undefined;
    }
    return analyzeStatement(statements[0], { ...context, nesting: context.nesting + 1 });
  } catch (error) {
    if (!(error instanceof StatementParseError || error instanceof CompoundError)) throw error;
    flag(outcome.facts, "dangerous", `could not parse the SQL of ${where}: ${error.message}`);
    return undefined;
  }
}

/** TRUNCATE [TABLE] t: an unbounded write. */
function analyzeTruncate(tokens: readonly Token[], context: StatementContext): StatementOutcome {
  const outcome = newOutcome("TRUNCATE");
  const name = readName(tokens, isWord(tokens[1], "TABLE") ? 2 : 1);
  if (name === undefined) throw new StatementParseError("TRUNCATE without a table");
  addTable(outcome.facts, name.parts, "write", context.schema);
  outcome.facts.reasons.add(`TRUNCATE of ${quote(name.parts.join("."))}`);
  outcome.facts.classes.add("write");
  outcome.facts.unboundedWrite = true;
  return outcome;
}

/** RENAME TABLE a TO b, ...; RENAME USER. */
function analyzeRename(tokens: readonly Token[], context: StatementContext): StatementOutcome {
  if (isWord(tokens[1], "USER")) return admin("RENAME USER", "RENAME USER changes accounts");
  if (!isWord(tokens[1], "TABLE") && !isWord(tokens[1], "TABLES")) throw new StatementParseError("RENAME without TABLE");
  const outcome = newOutcome("RENAME TABLE");
  for (const pair of splitCommas(tokens.slice(2))) {
    const from = readName(pair, 0);
    const to = from === undefined ? undefined : readName(pair, from.end + 1);
    if (from === undefined || to === undefined || !isWord(pair[from.end], "TO")) throw new StatementParseError("RENAME TABLE without `TO`");
    addTable(outcome.facts, from.parts, "write", context.schema);
    addTable(outcome.facts, to.parts, "write", context.schema);
  }
  return plain(outcome, "ddl", "RENAME TABLE");
}

/** CHECK/CHECKSUM read a table; ANALYZE/OPTIMIZE/REPAIR TABLE maintain it. */
function analyzeMaintenance(tokens: readonly Token[], context: StatementContext): StatementOutcome {
  const verb = upperAt(tokens, 0);
  let j = 1;
  if (isWord(tokens[j], "NO_WRITE_TO_BINLOG") || isWord(tokens[j], "LOCAL")) j += 1;
  if (!isWord(tokens[j], "TABLE") && !isWord(tokens[j], "TABLES")) throw new StatementParseError(`${verb} without TABLE`);
  const outcome = newOutcome(`${verb} TABLE`);
  const reads = verb === "CHECK" || verb === "CHECKSUM";
  for (const item of splitCommas(tokens.slice(j + 1))) {
    const name = readName(item, 0);
    if (name !== undefined) addTable(outcome.facts, name.parts, reads ? "read" : "write", context.schema);
  }
  return plain(outcome, reads ? "read" : "admin", `${verb} TABLE`);
}

/** DO expr, ...: evaluates expressions. */
function analyzeDo(tokens: readonly Token[], context: StatementContext): StatementOutcome {
  const outcome = newOutcome("DO");
  walkExpression(tokens.slice(1), context, outcome);
  return plain(outcome, "read", "DO evaluates expressions");
}

/** A compound statement at top level (MariaDB): like PostgreSQL's DO block, classified by what it runs. */
function analyzeTopCompound(tokens: readonly Token[], context: StatementContext): StatementOutcome {
  const outcome = newOutcome("compound statement");
  const body = readCompound(tokens, 0);
  if (body.end !== tokens.length) throw new StatementParseError("unexpected text after a compound statement");
  const locals = new Set([...body.locals, ...(context.locals ?? [])]);
  analyzeItems(body.items, { ...context, locals, nesting: context.nesting + 1 }, outcome, "a compound statement");
  if (outcome.effects.setsSqlMode !== undefined || outcome.effects.sqlModeUnknown === true) {
    // Unlike a stored program's, an anonymous block's change of sql_mode outlives it.
    flag(outcome.facts, "dangerous", "a compound statement that changes `sql_mode` changes how later text is lexed");
    delete outcome.effects.setsSqlMode;
    delete outcome.effects.sqlModeUnknown;
  }
  return plain(outcome, "read", "compound statement");
}

const replicationStatements: ReadonlySet<string> = new Set(["SLAVE", "REPLICA", "GROUP_REPLICATION", "ALL"]);

/** Classifies one statement's tokens (no `;`). Throws StatementParseError when it cannot be parsed. */
export function analyzeStatement(tokens: readonly Token[], context: StatementContext): StatementOutcome {
  const outcome = analyzeStatementTokens(tokens, context);
  if (assignsVariables(tokens)) outcome.effects.assignsVariables = true;
  return outcome;
}

/**
 * Whether a statement may store values in variables, where a later statement reads them with no
 * relation in sight: `:=` anywhere, a SET statement (user, local or system variables), `INTO @var`,
 * `SET @var = ...` inside a compound statement, GET DIAGNOSTICS and CALL (OUT parameters) with user
 * variables. Over-approximated from the tokens (`SELECT 1, @a = 2` counts): masking refuses such a
 * statement when it reads sensitive columns.
 */
function assignsVariables(tokens: readonly Token[]): boolean {
  if (isWord(tokens[0], "SET")) return true;
  const words = new Set(tokens.filter((token) => token.kind === "word").map((token) => token.upper));
  const userVariables = tokens.some((token) => token.kind === "uservar");
  if (userVariables && (words.has("DIAGNOSTICS") || words.has("CALL"))) return true;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as Token;
    if (isOp(token, ":=")) return true;
    if (token.kind !== "uservar") continue;
    const previous = tokens[i - 1];
    if (isWord(previous, "INTO")) return true;
    if (isOp(tokens[i + 1], "=") && (isWord(previous, "SET") || isOp(previous, ","))) return true;
  }
  return false;
}

function analyzeStatementTokens(tokens: readonly Token[], context: StatementContext): StatementOutcome {
  const first = tokens[0];
  if (first === undefined) throw new StatementParseError("empty statement");
  if (isOp(first, "(")) return analyzeQuery(tokens, context, "SELECT");
  if (first.kind !== "word") throw new StatementParseError(`syntax error at or near ${quote(first.value)}`);
  const second = upperAt(tokens, 1);
  try {
    if (isTopLevelCompound(tokens, 0)) return analyzeTopCompound(tokens, context);
    const routine = routineObjectIndex(tokens, 0);
    if (routine !== undefined) return analyzeRoutine(tokens, context, routine.index, routine.alter);
  } catch (error) {
    if (error instanceof CompoundError) throw new StatementParseError(error.message);
    throw error;
  }
  switch (first.upper) {
    case "SELECT":
    case "WITH":
    case "VALUES":
    case "TABLE":
      return analyzeQuery(tokens, context, first.upper === "WITH" ? queryKind(tokens, findWithBody(tokens)) : "SELECT");
    case "INSERT":
    case "UPDATE":
    case "DELETE":
      return analyzeQuery(tokens, context, first.upper);
    case "REPLACE":
      return analyzeQuery(tokens, context, "REPLACE");
    case "EXPLAIN":
    case "DESCRIBE":
    case "DESC":
      return analyzeExplain(tokens, context, false);
    case "ANALYZE":
      if (second === "TABLE" || second === "TABLES" || second === "NO_WRITE_TO_BINLOG" || second === "LOCAL") return analyzeMaintenance(tokens, context);
      return analyzeExplain(tokens, context, true);
    case "OPTIMIZE":
    case "REPAIR":
    case "CHECK":
    case "CHECKSUM":
      return analyzeMaintenance(tokens, context);
    case "SHOW":
      return analyzeShow(tokens, context);
    case "HELP":
      return plain(newOutcome("HELP"), "read", "HELP");
    case "USE": {
      const schema = tokens[1];
      if (schema === undefined || tokens.length !== 2) throw new StatementParseError("USE without a database");
      const outcome = newOutcome("USE");
      outcome.effects.usesSchema = schema.value;
      return plain(outcome, "read", `USE ${quote(schema.value)}`);
    }
    case "SET":
      return analyzeSet(tokens, context);
    case "START":
      if (second === "TRANSACTION") return analyzeTransaction(tokens);
      if (replicationStatements.has(second)) return dangerous(`START ${second}`, `START ${second} changes replication`);
      break;
    case "STOP":
      if (replicationStatements.has(second)) return dangerous(`STOP ${second}`, `STOP ${second} changes replication`);
      break;
    case "BEGIN":
    case "COMMIT":
    case "ROLLBACK":
    case "SAVEPOINT":
    case "XA":
      return analyzeTransaction(tokens);
    case "RELEASE":
      if (second === "SAVEPOINT") return analyzeTransaction(tokens);
      break;
    case "LOCK":
      return analyzeLock(tokens, context);
    case "UNLOCK":
      return plain(newOutcome(`UNLOCK ${second}`), "read", `UNLOCK ${second}`);
    case "HANDLER":
      return analyzeHandler(tokens, context);
    case "LOAD":
      return analyzeLoad(tokens, context);
    case "CALL":
      return analyzeCall(tokens, context);
    case "DO":
      return analyzeDo(tokens, context);
    case "PREPARE":
      return analyzePrepare(tokens, context);
    case "EXECUTE":
      return analyzeExecute(tokens, context);
    case "DEALLOCATE": {
      const outcome = newOutcome("DEALLOCATE PREPARE");
      const name = tokens[2];
      if (name === undefined || second !== "PREPARE") throw new StatementParseError("DEALLOCATE without PREPARE");
      outcome.effects.deallocates = name.value;
      return plain(outcome, "read", "DEALLOCATE PREPARE");
    }
    case "DROP":
      if (second === "PREPARE") {
        const outcome = newOutcome("DEALLOCATE PREPARE");
        const name = tokens[2];
        if (name === undefined) throw new StatementParseError("DROP PREPARE without a name");
        outcome.effects.deallocates = name.value;
        return plain(outcome, "read", "DROP PREPARE");
      }
      return analyzeDdl(tokens, context);
    case "CREATE":
    case "ALTER":
      return analyzeDdl(tokens, context);
    case "TRUNCATE":
      return analyzeTruncate(tokens, context);
    case "RENAME":
      return analyzeRename(tokens, context);
    case "GRANT":
      return admin("GRANT", "GRANT of privileges");
    case "REVOKE":
      return admin("REVOKE", "REVOKE of privileges");
    case "KILL":
      return dangerous("KILL", "KILL ends another session or its query");
    case "SHUTDOWN":
      return dangerous("SHUTDOWN", "SHUTDOWN stops the server");
    case "RESTART":
      return dangerous("RESTART", "RESTART restarts the server");
    case "FLUSH":
      return admin("FLUSH", `FLUSH ${second}`.trim());
    case "RESET":
      if (second === "MASTER" || second === "SLAVE" || second === "REPLICA" || second === "BINARY") return dangerous(`RESET ${second}`, `RESET ${second} discards replication state or binary logs`);
      return admin(`RESET ${second}`, `RESET ${second}`);
    case "PURGE":
      return dangerous("PURGE BINARY LOGS", "PURGE BINARY LOGS deletes binary logs");
    case "CHANGE":
      return dangerous(`CHANGE ${second}`, `CHANGE ${second} changes replication`);
    case "INSTALL":
    case "UNINSTALL":
      return dangerous(`${first.upper} ${second}`, `${first.upper} ${second} loads or unloads code in the server`);
    case "BINLOG":
      return dangerous("BINLOG", "BINLOG applies binary log events: changes the gateway cannot see");
    case "CLONE":
      return dangerous("CLONE", "CLONE copies the data directory to or from another place");
    case "IMPORT": {
      const outcome = dangerous("IMPORT TABLE", "IMPORT TABLE reads table files from the server's disk");
      return plain(outcome, "ddl", "IMPORT TABLE creates tables");
    }
    case "CACHE":
      return admin("CACHE INDEX", "CACHE INDEX");
    case "BACKUP":
      return admin(`BACKUP ${second}`, `BACKUP ${second} blocks changes server-wide`);
    case "SIGNAL":
    case "RESIGNAL":
      return plain(newOutcome(first.upper), "read", `${first.upper} raises a condition`);
    case "GET":
      if (findWord(tokens, "DIAGNOSTICS") > 0) return plain(newOutcome("GET DIAGNOSTICS"), "read", "GET DIAGNOSTICS");
      break;
    default:
      break;
  }
  throw new StatementParseError(`unrecognised statement ${quote(first.value)}`);
}

/** The index of the statement after a WITH clause (`WITH a AS (...), b AS (...) UPDATE ...`). */
function findWithBody(tokens: readonly Token[]): number {
  let j = 1;
  if (isWord(tokens[j], "RECURSIVE")) j += 1;
  for (;;) {
    j += 1;
    if (isOp(tokens[j], "(")) j = skipParens(tokens, j);
    if (!isWord(tokens[j], "AS")) return j;
    j += 1;
    if (!isOp(tokens[j], "(")) return j;
    j = skipParens(tokens, j);
    if (!isOp(tokens[j], ",")) return j;
    j += 1;
  }
}
