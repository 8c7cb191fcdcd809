import type { StatementClass } from "@airlock/policy";
import type { RelationAccess } from "../postgres/facts.js";
import type { StatementAnalysis } from "../postgres/analyze.js";
import { CompoundError, statementEnd } from "./compound.js";
import { compileSafeFunctions, type SafeFunctions } from "./functions.js";
import { lex, type LexOptions, type MysqlServer, type Token } from "./lexer.js";
import { loadMysqlParser, mysqlParserLoaded } from "./parser.js";
import { sqlModeFlags } from "./settings.js";
import { analyzeStatement, StatementParseError, type HandlerEffect, type StatementContext, type StatementOutcome } from "./statements.js";
import { TreeTooDeepError } from "./walk.js";

export type { MysqlServer } from "./lexer.js";
export type { HandlerEffect } from "./statements.js";

/** What one MySQL statement does: PostgreSQL's StatementAnalysis, plus what it changes in the session. */
export interface MysqlStatementAnalysis extends StatementAnalysis {
  /**
   * The statement's kind from its leading keywords: `SELECT`, `INSERT`, `UPDATE`, `CREATE TABLE`,
   * `SET`, `SHOW`, `LOAD DATA`, `HANDLER`, `XA`, `compound statement`...
   */
  readonly kind: string;
  /** PREPARE name FROM 'text': the name and the analysis of the prepared text. */
  readonly prepares?: { readonly name: string; readonly statement: MysqlStatementAnalysis };
  /** USE db: the session's schema once the server has run it (COM_INIT_DB does the same). */
  readonly useSchema?: string;
  /**
   * SET [SESSION] sql_mode to a literal (or DEFAULT, read as the `globalSqlMode` option): the new
   * mode and its lexing flags. Lex later text with them once the server has run the statement.
   */
  readonly sqlMode?: MysqlSqlMode;
  /** HANDLER OPEN, READ or CLOSE: which handler (READ names a handler, which may be an alias). */
  readonly handler?: HandlerEffect;
  /** DEALLOCATE PREPARE / DROP PREPARE: the prepared statement's name. */
  readonly deallocates?: string;
  /**
   * The statement may store values in variables (`:=`, SET, `INTO @var`, GET DIAGNOSTICS, CALL
   * with user variables), which later statements read with no relation in sight: masking must not
   * let sensitive values in there. Over-approximated.
   */
  readonly assignsVariables?: true;
}

/** A session's sql_mode: the normalized list and the flags that change how text is lexed. */
export interface MysqlSqlMode {
  /** Uppercase, comma-separated, as written (combination modes such as ANSI kept). */
  readonly mode: string;
  readonly ansiQuotes: boolean;
  readonly noBackslashEscapes: boolean;
  readonly pipesAsConcat: boolean;
}

/** The analysis of a whole query string, or why it could not be analysed (then deny it). */
export type MysqlAnalysis =
  | {
      readonly ok: true;
      readonly statements: readonly MysqlStatementAnalysis[];
      /** The union over statements, sorted; `["read"]` for a string with no statement at all. */
      readonly classes: readonly StatementClass[];
      /** 16 hex digits, equal for texts that differ only in constants, comments, case and spacing. */
      readonly fingerprint: string;
      /**
       * Pieces of the string between or after `;` that hold only comments: the server answers each
       * with an OK of its own and runs nothing. With no error, the server sends
       * `statements.length + emptyStatements` results.
       */
      readonly emptyStatements: number;
    }
  | { readonly ok: false; readonly error: string };

/** Options of analyzeMysql: the session state that decides how the server reads the text. */
export interface MysqlAnalyzeOptions {
  /** sql_mode has ANSI_QUOTES (`"x"` is an identifier). */
  readonly ansiQuotes?: boolean;
  /** sql_mode has NO_BACKSLASH_ESCAPES. */
  readonly noBackslashEscapes?: boolean;
  /** sql_mode has PIPES_AS_CONCAT (`||` concatenates instead of meaning OR). */
  readonly pipesAsConcat?: boolean;
  /** The global sql_mode, which `SET sql_mode = DEFAULT` restores (normalized, see parseSqlMode). Default: the empty mode. */
  readonly globalSqlMode?: string;
  /** The session's current schema (USE, COM_INIT_DB): unqualified relations are reported in it. */
  readonly defaultSchema?: string;
  /**
   * Stored functions and procedures configuration marks as safe: calls to them are reads.
   * `name` or `schema.name`, compared without case. The dangerous list wins.
   */
  readonly safeFunctions?: readonly string[];
  /**
   * The server (from its handshake, see parseServerVersion): which versioned executable comments
   * `/*!NNNNN ... *\/` it runs. Unknown: comments whose fate depends on it are refused.
   */
  readonly server?: MysqlServer;
}

/** Another name for MysqlAnalyzeOptions. */
export type MysqlAnalysisOptions = MysqlAnalyzeOptions;

/** Loads sqlparser-rs (WebAssembly) once; analyzeMysql is synchronous afterwards. */
export async function loadMysqlAnalyzer(): Promise<void> {
  await loadMysqlParser();
}

/** True once loadMysqlAnalyzer() has run. */
export function mysqlAnalyzerLoaded(): boolean {
  return mysqlParserLoaded();
}

const compiledSafe = new WeakMap<MysqlAnalyzeOptions, SafeFunctions>();
const noSafeFunctions = compileSafeFunctions(undefined);

function safeFunctionsOf(options: MysqlAnalyzeOptions): SafeFunctions {
  if (options.safeFunctions === undefined) return noSafeFunctions;
  let safe = compiledSafe.get(options);
  if (safe === undefined) {
    safe = compileSafeFunctions(options.safeFunctions);
    compiledSafe.set(options, safe);
  }
  return safe;
}

const order = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function compareRelations(a: RelationAccess, b: RelationAccess): number {
  return order(a.schema ?? "", b.schema ?? "") || order(a.name, b.name) || order(a.access, b.access);
}

/** The sql_mode a statement sets, DEFAULT read as the global mode. */
function sqlModeOf(mode: string, globalSqlMode: string): MysqlSqlMode {
  const resolved = mode === "DEFAULT" ? globalSqlMode : mode;
  return { mode: resolved, ...sqlModeFlags(resolved) };
}

function toAnalysis(text: string, outcome: StatementOutcome, globalSqlMode: string): MysqlStatementAnalysis {
  const { facts, effects } = outcome;
  const strong = [...facts.classes].filter((value) => value !== "read");
  const classes: StatementClass[] = strong.length === 0 ? ["read"] : strong.sort(order);
  const reasons = [...facts.reasons].sort(order);
  const analysis: { -readonly [K in keyof MysqlStatementAnalysis]: MysqlStatementAnalysis[K] } = {
    text,
    kind: outcome.kind,
    classes,
    unboundedWrite: facts.unboundedWrite,
    copiesData: facts.copiesData,
    reasons: reasons.length > 0 ? reasons : [`${outcome.kind} only reads`],
    relations: [...facts.relations.values()].sort(compareRelations),
    functions: [...facts.functions].sort(order),
  };
  if (effects.prepared !== undefined) {
    analysis.prepares = { name: effects.prepared.name, statement: toAnalysis(effects.prepared.text, effects.prepared.outcome, globalSqlMode) };
  }
  if (facts.executes !== undefined) analysis.executes = facts.executes;
  if (effects.transaction !== undefined) analysis.transaction = effects.transaction;
  if (effects.usesSchema !== undefined) analysis.useSchema = effects.usesSchema;
  if (effects.setsSqlMode !== undefined) analysis.sqlMode = sqlModeOf(effects.setsSqlMode, globalSqlMode);
  if (effects.handler !== undefined) analysis.handler = effects.handler;
  if (effects.deallocates !== undefined) analysis.deallocates = effects.deallocates;
  if (effects.assignsVariables === true) analysis.assignsVariables = true;
  return analysis;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** FNV-1a, 64 bits, as 16 hex digits. */
function fnv1a64(text: string): string {
  let hash = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  const mask = 0xffffffffffffffffn;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= BigInt(text.charCodeAt(i));
    hash = (hash * prime) & mask;
  }
  return hash.toString(16).padStart(16, "0");
}

/** Normalized text: constants as `?`, lists of constants as one `?`, names in lowercase. */
function fingerprintOf(tokens: readonly Token[]): string {
  const parts: string[] = [];
  for (const token of tokens) {
    let text: string;
    switch (token.kind) {
      case "string":
      case "number":
      case "hex":
      case "bit":
      case "param":
        text = "?";
        break;
      case "word":
        text = token.upper;
        break;
      case "ident":
        text = `\`${token.value.toLowerCase()}\``;
        break;
      case "uservar":
        text = `@${token.value.toLowerCase()}`;
        break;
      case "sysvar":
        text = `@@${token.value}`;
        break;
      default:
        text = token.value;
    }
    // `?, ?, ?` → `?`
    if (text === "?" && parts.at(-1) === "," && parts.at(-2) === "?") {
      parts.pop();
      continue;
    }
    parts.push(text);
  }
  return fnv1a64(parts.join(" "));
}

interface State {
  lex: LexOptions;
  pipesAsConcat: boolean;
  schema: string | undefined;
}

function modeState(mode: string, server: MysqlServer | undefined): { lex: LexOptions; pipesAsConcat: boolean } {
  const flags = sqlModeFlags(mode);
  return { lex: { ansiQuotes: flags.ansiQuotes, noBackslashEscapes: flags.noBackslashEscapes, server }, pipesAsConcat: flags.pipesAsConcat };
}

class AnalysisError extends Error {}

/** Where a statement's text ends: after its last token, and after the `*\/` closing an executable comment it ends in. */
function textEnd(sql: string, last: Token, next: Token | undefined): number {
  if (!last.inComment) return last.end;
  const close = sql.indexOf("*/", last.end);
  return close >= 0 && (next === undefined || close < next.start) && sql.slice(last.end, close).trim() === "" ? close + 2 : last.end;
}

/**
 * Analyses a query string as a MySQL or MariaDB server reads it: lexed with the session's sql_mode
 * (and again after a statement in the same string changes it), split into statements as the server
 * splits a multi-statement string, each classified from its parse tree. Synchronous; call
 * loadMysqlAnalyzer() once first. The result is frozen. A string that cannot be analysed is
 * `{ ok: false }`: deny it.
 */
export function analyzeMysql(sql: string, options: MysqlAnalyzeOptions = {}): MysqlAnalysis {
  if (!mysqlParserLoaded()) throw new TypeError("analyzeMysql: the parser is not loaded: await loadMysqlAnalyzer() first");
  if (typeof sql !== "string") throw new TypeError("analyzeMysql: `sql` must be a string");
  const safe = safeFunctionsOf(options);
  const globalSqlMode = options.globalSqlMode ?? "";
  const state: State = {
    lex: { ansiQuotes: options.ansiQuotes === true, noBackslashEscapes: options.noBackslashEscapes === true, server: options.server },
    pipesAsConcat: options.pipesAsConcat === true,
    schema: options.defaultSchema,
  };
  const statements: MysqlStatementAnalysis[] = [];
  const allTokens: Token[] = [];
  let emptyStatements = 0;
  /** Where the text since the last `;` (or the start) begins. */
  let segment = 0;
  const countEmpty = (end: number): void => {
    if (/\S/.test(sql.slice(segment, end))) emptyStatements += 1;
  };
  try {
    let offset = 0;
    outer: for (;;) {
      const lexed = lex(sql, state.lex, offset);
      if (!lexed.ok) return deepFreeze({ ok: false, error: lexed.error });
      const tokens = lexed.tokens;
      let i = 0;
      while (i < tokens.length) {
        const first = tokens[i];
        if (first === undefined) break;
        if (first.kind === "semicolon") {
          countEmpty(first.start);
          segment = first.end;
          i += 1;
          continue;
        }
        const end = statementEnd(tokens, i);
        const statementTokens = tokens.slice(i, end);
        for (const token of statementTokens) allTokens.push(token);
        const context: StatementContext = { lex: state.lex, pipesAsConcat: state.pipesAsConcat, safe, schema: state.schema, locals: undefined, nesting: 1 };
        const outcome = analyzeStatement(statementTokens, context);
        const last = statementTokens.at(-1) ?? first;
        statements.push(toAnalysis(sql.slice(first.start, textEnd(sql, last, tokens[end])), outcome, globalSqlMode));
        const rest = tokens.slice(end + 1).some((token) => token.kind !== "semicolon");
        segment = tokens[end]?.end ?? sql.length;
        if (outcome.effects.usesSchema !== undefined) state.schema = outcome.effects.usesSchema;
        if (outcome.effects.sqlModeUnknown === true && rest) {
          throw new AnalysisError("statements after a change of `sql_mode` to a value that is not a literal cannot be lexed as the server will");
        }
        const mode = outcome.effects.setsSqlMode;
        if (mode !== undefined) {
          const next = modeState(mode === "DEFAULT" ? globalSqlMode : mode, options.server);
          const changed =
            next.lex.ansiQuotes !== state.lex.ansiQuotes || next.lex.noBackslashEscapes !== state.lex.noBackslashEscapes || next.pipesAsConcat !== state.pipesAsConcat;
          state.lex = next.lex;
          state.pipesAsConcat = next.pipesAsConcat;
          const semicolon = tokens[end];
          if (changed && rest && semicolon !== undefined) {
            // The server lexes what follows with the new mode: so do we.
            // A `;` leaves any executable comment: the rest starts outside one.
            offset = semicolon.end;
            continue outer;
          }
        }
        i = end + 1;
      }
      break;
    }
    countEmpty(sql.length);
  } catch (error) {
    if (error instanceof StatementParseError || error instanceof CompoundError || error instanceof AnalysisError) {
      return deepFreeze({ ok: false, error: error.message });
    }
    if (error instanceof TreeTooDeepError || error instanceof RangeError) return deepFreeze({ ok: false, error: "statement is nested too deeply to analyse" });
    throw error;
  }
  const union = new Set<StatementClass>(statements.length === 0 ? ["read"] : statements.flatMap((statement) => statement.classes));
  const result = { ok: true as const, statements: deepFreeze(statements), classes: deepFreeze([...union].sort(order)), emptyStatements };
  let fingerprint: string | undefined;
  Object.defineProperty(result, "fingerprint", {
    enumerable: true,
    get: () => (fingerprint ??= fingerprintOf(allTokens)),
  });
  return Object.freeze(result as typeof result & { readonly fingerprint: string });
}
