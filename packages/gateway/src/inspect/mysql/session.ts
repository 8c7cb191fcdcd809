import type { MysqlAnalyzeOptions, MysqlServer, MysqlStatementAnalysis } from "./analyze.js";
import { parseSqlMode, sqlModeFlags } from "./settings.js";

/** Options of createMysqlSessionState: what the relay knows when the session starts. */
export interface MysqlSessionStateOptions {
  /** The server, from its handshake (parseServerVersion). */
  readonly server?: MysqlServer;
  /**
   * The session's sql_mode when it starts (`SELECT @@SESSION.sql_mode`, which is the global one
   * for a new connection). Default: the empty mode, as MySQL 8 and MariaDB 10.11 ship no lexing flag
   * in theirs; a server configured with ANSI_QUOTES or NO_BACKSLASH_ESCAPES must be told here.
   */
  readonly sqlMode?: string;
  /** The database named in the handshake. */
  readonly schema?: string;
  /** Stored functions and procedures marked safe in configuration. */
  readonly safeFunctions?: readonly string[];
}

/** Where a handler opened with HANDLER ... OPEN reads from. */
export interface HandlerTable {
  readonly schema?: string;
  readonly name: string;
}

/**
 * The session state that decides how the server reads a client's next statement: the current
 * schema and the sql_mode flags. The relay asks it for the options of each analysis and tells it
 * what ran; `options` is the same object until the state changes, so an analysis cache keyed on it
 * keeps hitting.
 */
export interface MysqlSessionState {
  readonly schema: string | undefined;
  readonly sqlMode: string;
  /** Options for analyzeMysql (or a cache) in the current state. */
  readonly options: MysqlAnalyzeOptions;
  /** COM_INIT_DB succeeded. */
  initDb(schema: string): void;
  /**
   * The server ran `statement` without error (call it per statement of a multi-statement string, in
   * order, for those that succeeded): USE, SET sql_mode and HANDLER OPEN/CLOSE take effect.
   */
  applyStatement(statement: MysqlStatementAnalysis): void;
  /** The table a handler name reads, when HANDLER ... OPEN was seen. */
  handlerTable(name: string): HandlerTable | undefined;
  /** COM_RESET_CONNECTION or COM_CHANGE_USER: back to the global sql_mode, no handlers. */
  reset(): void;
}

/** Creates the state of one MySQL session. */
export function createMysqlSessionState(initial: MysqlSessionStateOptions = {}): MysqlSessionState {
  const globalMode = normalizeMode(initial.sqlMode ?? "");
  let schema = initial.schema;
  let sqlMode = globalMode;
  let options: MysqlAnalyzeOptions = build();
  const handlers = new Map<string, HandlerTable>();

  function normalizeMode(mode: string): string {
    const parsed = parseSqlMode(mode);
    if (!parsed.ok) throw new TypeError(`createMysqlSessionState: \`sqlMode\`: ${parsed.error}`);
    return parsed.mode;
  }

  function build(): MysqlAnalyzeOptions {
    const flags = sqlModeFlags(sqlMode);
    const next: { -readonly [K in keyof MysqlAnalyzeOptions]: MysqlAnalyzeOptions[K] } = {
      ansiQuotes: flags.ansiQuotes,
      noBackslashEscapes: flags.noBackslashEscapes,
      pipesAsConcat: flags.pipesAsConcat,
      globalSqlMode: globalMode,
    };
    if (schema !== undefined) next.defaultSchema = schema;
    if (initial.server !== undefined) next.server = initial.server;
    if (initial.safeFunctions !== undefined) next.safeFunctions = initial.safeFunctions;
    return Object.freeze(next);
  }

  return {
    get schema() {
      return schema;
    },
    get sqlMode() {
      return sqlMode;
    },
    get options() {
      return options;
    },
    initDb(name) {
      if (typeof name !== "string" || name.length === 0) throw new TypeError("initDb: `schema` must be a non-empty string");
      schema = name;
      options = build();
    },
    applyStatement(statement) {
      let changed = false;
      if (statement.useSchema !== undefined) {
        schema = statement.useSchema;
        changed = true;
      }
      if (statement.sqlMode !== undefined) {
        sqlMode = statement.sqlMode.mode;
        changed = true;
      }
      const handler = statement.handler;
      if (handler?.action === "open" && handler.table !== undefined) handlers.set(handler.name.toLowerCase(), handler.table);
      else if (handler?.action === "close") handlers.delete(handler.name.toLowerCase());
      if (changed) options = build();
    },
    handlerTable(name) {
      return handlers.get(name.toLowerCase());
    },
    reset() {
      sqlMode = globalMode;
      handlers.clear();
      options = build();
    },
  };
}

/**
 * The server from the version string of its handshake: MariaDB's `5.5.5-10.11.6-MariaDB-...`
 * (the `5.5.5-` prefix is for old clients) or MySQL's `8.0.36`. Undefined when unreadable.
 */
export function parseServerVersion(version: string): MysqlServer | undefined {
  const mariadb = /mariadb/i.test(version);
  const text = mariadb ? version.replace(/^5\.5\.5-/, "") : version;
  const match = /^(\d+)\.(\d+)\.(\d+)/.exec(text);
  if (match === null) return undefined;
  const [major, minor, patch] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (minor > 99 || patch > 99) return undefined;
  return { flavor: mariadb ? "mariadb" : "mysql", version: major * 10000 + minor * 100 + patch };
}
