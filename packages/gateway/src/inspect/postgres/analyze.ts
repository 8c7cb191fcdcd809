import type { StatementClass } from "@airlock/policy";
import { fingerprintSync, loadModule, parseSync, scanSync } from "libpg-query";
import { createFacts, flag, mergeFacts, quote, type Facts, type RelationAccess } from "./facts.js";
import { compileSafeFunctions, type SafeFunctions } from "./functions.js";
import { plpgsqlBody, rawParseMode, type PlpgsqlExpression } from "./plpgsql.js";
import { TreeTooDeepError, walkStatement, type NestedAnalyzer, type SessionEffects, type TransactionKind } from "./walk.js";

export type { StatementClass } from "@airlock/policy";
export type { RelationAccess } from "./facts.js";
export type { TransactionKind } from "./walk.js";

/** What one statement does, from its parse tree. */
export interface StatementAnalysis {
  /** This statement's own text, as the parser delimited it in the input. */
  readonly text: string;
  /** The parse tree's node type, e.g. `SelectStmt`, `InsertStmt`, `CopyStmt`. */
  readonly kind: string;
  /**
   * At least one class, sorted. `read` appears only when the statement does nothing stronger: an
   * INSERT ... SELECT is `["write"]`, not `["read", "write"]`.
   */
  readonly classes: readonly StatementClass[];
  /** UPDATE or DELETE (anywhere inside, CTEs and function bodies included) with no WHERE, an always-true one or one that ignores the row; TRUNCATE; a sweeping MERGE. */
  readonly unboundedWrite: boolean;
  /** Rows are copied somewhere other than the result stream (CREATE TABLE AS, SELECT INTO, INSERT ... SELECT, UPDATE from columns, MERGE, COPY (query) TO, REFRESH). */
  readonly copiesData: boolean;
  /** Why, sorted: lowercase sentences, SQL keywords in capitals, names in backticks. */
  readonly reasons: readonly string[];
  /** Relations as written, sorted; `write` for targets of DML, TRUNCATE, COPY FROM, LOCK, INTO and DDL. */
  readonly relations: readonly RelationAccess[];
  /** Called functions as written (schema-qualified if written so), sorted. */
  readonly functions: readonly string[];
  /** PREPARE name AS ...: the name and the analysis of the prepared statement. */
  readonly prepares?: { readonly name: string; readonly statement: StatementAnalysis };
  /**
   * EXECUTE name: the prepared statement to resolve against the session. Until the gateway
   * resolves it, the statement's classes are `["write"]` (fail closed); the gateway replaces them
   * with the classes of the statement prepared under that name.
   */
  readonly executes?: string;
  /** DECLARE name CURSOR FOR ...: the cursor's name. */
  readonly declaresCursor?: string;
  /** Transaction control: which kind. */
  readonly transaction?: TransactionKind;
}

/** The analysis of a whole query string, or why it could not be analysed (then deny it). */
export type Analysis =
  | {
      readonly ok: true;
      readonly statements: readonly StatementAnalysis[];
      /** The union over statements, sorted; `["read"]` for a string with no statement at all. */
      readonly classes: readonly StatementClass[];
      /** libpg_query's fingerprint: equal for statements that differ only in constants. */
      readonly fingerprint: string;
    }
  | { readonly ok: false; readonly error: string };

/** Options of analyzePostgres. */
export interface AnalyzeOptions {
  /**
   * User functions (and operators) configuration marks as safe: calls to them are reads. Lowercase
   * names, optionally schema-qualified (`touch`, `public.touch`). The dangerous list wins.
   */
  readonly safeFunctions?: readonly string[];
}

/** How deep SQL may nest inside SQL (a DO block running a DO block...) before it is refused. */
const maxNesting = 8;

let loaded = false;

/** Loads the parser (WebAssembly) once; analyzePostgres is synchronous afterwards. */
export async function loadAnalyzer(): Promise<void> {
  if (loaded) return;
  await loadModule();
  loaded = true;
}

/** True once loadAnalyzer() has loaded the parser. */
export function analyzerLoaded(): boolean {
  return loaded;
}

const compiledSafe = new WeakMap<AnalyzeOptions, SafeFunctions>();
const noSafeFunctions = compileSafeFunctions(undefined);

function safeFunctionsOf(options: AnalyzeOptions | undefined): SafeFunctions {
  if (options?.safeFunctions === undefined) return noSafeFunctions;
  let safe = compiledSafe.get(options);
  if (safe === undefined) {
    safe = compileSafeFunctions(options.safeFunctions);
    compiledSafe.set(options, safe);
  }
  return safe;
}

/** A parser error message in house style: `"x"` becomes `` `x` ``. */
function errorMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const parts = message.split('"');
  if (parts.length % 2 === 0) return message;
  return parts.map((part, index) => (index % 2 === 1 ? `\`${part}\`` : part)).join("");
}

/** The input as UTF-8 (the parser's offsets count bytes), with a cheap path for ASCII text. */
interface Source {
  readonly text: string;
  slice(start: number, end: number | undefined): string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function source(text: string): Source {
  let ascii = true;
  for (let i = 0; i < text.length; i += 1) {
    if (text.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) return { text, slice: (start, end) => text.slice(start, end) };
  const bytes = encoder.encode(text);
  return { text, slice: (start, end) => decoder.decode(bytes.subarray(start, end)) };
}

/** One statement of a parsed string: its tree and its own text. */
export interface ParsedStatement {
  readonly node: unknown;
  readonly text: string;
}

/** The statements of a string, or the parser's error in house style. */
export type Parsed = { readonly ok: true; readonly statements: readonly ParsedStatement[] } | { readonly ok: false; readonly error: string };

/** Parses a string into statements with their texts (sliced by bytes, as the parser counts). */
export function parse(sql: string): Parsed {
  if (sql.includes("\u0000")) return { ok: false, error: "statement contains a NUL character" };
  if (sql.length === 0) return { ok: true, statements: [] };
  let tree: { stmts?: { stmt?: unknown; stmt_location?: number; stmt_len?: number }[] };
  try {
    tree = parseSync(sql);
  } catch (error) {
    if (error instanceof RangeError) return { ok: false, error: "statement is nested too deeply to analyse" };
    return { ok: false, error: errorMessage(error) };
  }
  const input = source(sql);
  const statements = (tree.stmts ?? []).map((raw) => {
    const start = raw.stmt_location ?? 0;
    const end = raw.stmt_len === undefined || raw.stmt_len === 0 ? undefined : start + raw.stmt_len;
    return { node: raw.stmt, text: input.slice(start, end) };
  });
  return { ok: true, statements };
}

/** Splits a PL/pgSQL assignment `target := expression` at its top-level `:=` (or `=`), by tokens. */
function splitAssignment(query: string): { target: string; value: string } | undefined {
  let tokens: { start: number; end: number; text: string }[];
  try {
    tokens = scanSync(query).tokens;
  } catch {
    return undefined;
  }
  const input = source(query);
  let depth = 0;
  for (const token of tokens) {
    if (token.text === "[" || token.text === "(") depth += 1;
    else if (token.text === "]" || token.text === ")") depth -= 1;
    else if (depth === 0 && (token.text === ":=" || token.text === "=")) {
      return { target: input.slice(0, token.start), value: input.slice(token.end, undefined) };
    }
  }
  return undefined;
}

/** The SQL texts the server parses for one PL/pgSQL expression, as it would parse them. */
export function expressionQueries(expression: PlpgsqlExpression): string[] | undefined {
  switch (expression.parseMode) {
    case rawParseMode.RAW_PARSE_DEFAULT:
      return [expression.query];
    case rawParseMode.RAW_PARSE_PLPGSQL_EXPR:
      return [`SELECT ${expression.query}`];
    case rawParseMode.RAW_PARSE_PLPGSQL_ASSIGN1:
    case rawParseMode.RAW_PARSE_PLPGSQL_ASSIGN2:
    case rawParseMode.RAW_PARSE_PLPGSQL_ASSIGN3: {
      const parts = splitAssignment(expression.query);
      if (parts === undefined) return undefined;
      // A subscripted target (`a[i] := ...`) evaluates its subscripts too.
      return [`SELECT ${parts.value}`, `SELECT ${parts.target}`];
    }
    default:
      return undefined;
  }
}

/** Analyses SQL nested in a statement (function bodies, PL/pgSQL), merging into the outer facts. */
function nestedAnalyzer(safe: SafeFunctions, nesting: number): NestedAnalyzer {
  const analyzer: NestedAnalyzer = {
    sql(text, facts, where) {
      if (nesting >= maxNesting) {
        flag(facts, "dangerous", `SQL nested too deeply in ${where}`);
        return;
      }
      const parsed = parse(text);
      if (!parsed.ok) {
        flag(facts, "dangerous", `could not parse SQL in ${where}: ${parsed.error}`);
        return;
      }
      for (const statement of parsed.statements) {
        const inner = createFacts();
        walkStatement(statement.node, { facts: inner, safe, nested: nestedAnalyzer(safe, nesting + 1), statementText: statement.text });
        mergeFacts(facts, inner);
      }
    },
    plpgsql(createFunctionSql, facts, where) {
      const body = plpgsqlBody(createFunctionSql);
      if (!body.ok) {
        flag(facts, "dangerous", `could not parse the PL/pgSQL of ${where}: ${errorMessage(body.error)}`);
        return;
      }
      for (const kind of body.dynamic) flag(facts, "dangerous", `dynamic SQL (${kind}) in ${where}`);
      for (const expression of body.expressions) {
        const queries = expressionQueries(expression);
        if (queries === undefined) {
          flag(facts, "dangerous", `could not read a PL/pgSQL expression in ${where}`);
          continue;
        }
        for (const query of queries) analyzer.sql(query, facts, where);
      }
    },
  };
  return analyzer;
}

const classOrder = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Final classes: sorted, `read` only when nothing stronger, never empty. */
function finalClasses(facts: Facts): StatementClass[] {
  const strong = [...facts.classes].filter((value) => value !== "read");
  return strong.length === 0 ? ["read"] : strong.sort(classOrder);
}

function compareRelations(a: RelationAccess, b: RelationAccess): number {
  return classOrder(a.schema ?? "", b.schema ?? "") || classOrder(a.name, b.name) || classOrder(a.access, b.access);
}

function toAnalysis(text: string, kind: string, facts: Facts, effects: SessionEffects, preparedText: string | undefined): StatementAnalysis {
  const classes = finalClasses(facts);
  const reasons = [...facts.reasons].sort(classOrder);
  const analysis: {
    -readonly [K in keyof StatementAnalysis]: StatementAnalysis[K];
  } = {
    text,
    kind,
    classes,
    unboundedWrite: facts.unboundedWrite,
    copiesData: facts.copiesData,
    reasons: reasons.length > 0 ? reasons : [`${kind === "SelectStmt" ? "SELECT" : quote(kind)} only reads`],
    relations: [...facts.relations.values()].sort(compareRelations),
    functions: [...facts.functions].sort(classOrder),
  };
  if (effects.prepared !== undefined) {
    const inner = toAnalysis(preparedText ?? text, effects.prepared.kind, effects.prepared.facts, {}, undefined);
    analysis.prepares = { name: effects.prepared.name, statement: inner };
  }
  if (facts.executes !== undefined) analysis.executes = facts.executes;
  if (effects.cursor !== undefined) analysis.declaresCursor = effects.cursor;
  if (effects.transaction !== undefined) analysis.transaction = effects.transaction;
  return analysis;
}

/** The text after PREPARE name [(types)] AS, found by tokens. */
function preparedQueryText(statementText: string): string | undefined {
  let tokens: { start: number; end: number; text: string; keywordName: string }[];
  try {
    tokens = scanSync(statementText).tokens;
  } catch {
    return undefined;
  }
  const input = source(statementText);
  let depth = 0;
  for (let index = 0; index < tokens.length; index += 1) {
    const token = tokens[index];
    if (token === undefined) break;
    if (token.text === "(") depth += 1;
    else if (token.text === ")") depth -= 1;
    else if (depth === 0 && token.keywordName === "RESERVED_KEYWORD" && token.text.toLowerCase() === "as") {
      const next = tokens[index + 1];
      return next === undefined ? undefined : input.slice(next.start, undefined);
    }
  }
  return undefined;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/**
 * Analyses a query string as PostgreSQL parses it: every statement, classified from its parse
 * tree (and from the PL/pgSQL compiler's tree for DO blocks and function bodies). Synchronous;
 * call loadAnalyzer() once first. The result is frozen. A string the parser rejects, or one that
 * cannot be analysed, is `{ ok: false }`: deny it.
 */
export function analyzePostgres(sql: string, options?: AnalyzeOptions): Analysis {
  if (!loaded) throw new TypeError("analyzePostgres: the parser is not loaded: await loadAnalyzer() first");
  if (typeof sql !== "string") throw new TypeError("analyzePostgres: `sql` must be a string");
  const safe = safeFunctionsOf(options);
  const parsed = parse(sql);
  if (!parsed.ok) return deepFreeze({ ok: false, error: parsed.error });
  const statements: StatementAnalysis[] = [];
  try {
    for (const statement of parsed.statements) {
      const facts = createFacts();
      const effects = walkStatement(statement.node, { facts, safe, nested: nestedAnalyzer(safe, 1), statementText: statement.text });
      const kind = Object.keys(statement.node ?? {})[0] ?? "unknown";
      const preparedText = effects.prepared === undefined ? undefined : preparedQueryText(statement.text);
      statements.push(toAnalysis(statement.text, kind, facts, effects, preparedText));
    }
  } catch (error) {
    if (error instanceof TreeTooDeepError || error instanceof RangeError) return deepFreeze({ ok: false, error: "statement is nested too deeply to analyse" });
    throw error;
  }
  const union = new Set<StatementClass>(statements.length === 0 ? ["read"] : statements.flatMap((statement) => statement.classes));
  const result = { ok: true as const, statements: deepFreeze(statements), classes: deepFreeze([...union].sort(classOrder)) };
  // The fingerprint parses the text again (about as long as the analysis itself): computed when
  // first read. It cannot fail once the text has parsed.
  let fingerprint: string | undefined;
  Object.defineProperty(result, "fingerprint", {
    enumerable: true,
    get: () => (fingerprint ??= statements.length === 0 ? "" : fingerprintSync(sql)),
  });
  return Object.freeze(result as typeof result & { readonly fingerprint: string });
}
