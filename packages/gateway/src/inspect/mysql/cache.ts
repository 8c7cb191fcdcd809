import { analyzeMysql, type MysqlAnalysis, type MysqlAnalyzeOptions } from "./analyze.js";
import { lruGet } from "../lru.js";

/** Options of createMysqlAnalysisCache. */
export interface MysqlAnalysisCacheOptions {
  /** Most entries kept; the least recently used goes first. Default 10 000. */
  readonly max?: number;
  /** Longer texts are analysed but not kept (bulk INSERTs would fill memory). Default 64 KiB of characters. */
  readonly maxTextLength?: number;
}

/** A least-recently-used cache in front of analyzeMysql. */
export interface MysqlAnalysisCache {
  /** The analysis of `sql` under `options`: the same frozen object for the same text and options. */
  analyze(sql: string, options?: MysqlAnalyzeOptions): MysqlAnalysis;
  readonly size: number;
  clear(): void;
}

/**
 * Caches analyses by exact SQL text and by the session state that decides how it is read (sql_mode
 * flags, schema, server) plus the identity of the safe-function list, because a session sends the
 * same texts again and again. Results are frozen, so sharing is safe.
 */
export function createMysqlAnalysisCache(options: MysqlAnalysisCacheOptions = {}): MysqlAnalysisCache {
  const max = options.max ?? 10_000;
  const maxTextLength = options.maxTextLength ?? 65_536;
  if (!Number.isInteger(max) || max < 1) throw new TypeError("createMysqlAnalysisCache: `max` must be a positive integer");
  if (!Number.isInteger(maxTextLength) || maxTextLength < 0) {
    throw new TypeError("createMysqlAnalysisCache: `maxTextLength` must be a non-negative integer");
  }
  const entries = new Map<string, MysqlAnalysis>();
  const listIds = new WeakMap<readonly string[], number>();
  let nextId = 1;
  const keyOf = (sql: string, analyzeOptions: MysqlAnalyzeOptions | undefined): string => {
    if (analyzeOptions === undefined) return `\u0000${sql}`;
    let listId = 0;
    const list = analyzeOptions.safeFunctions;
    if (list !== undefined) {
      listId = listIds.get(list) ?? 0;
      if (listId === 0) {
        listId = nextId;
        nextId += 1;
        listIds.set(list, listId);
      }
    }
    const server = analyzeOptions.server === undefined ? "" : `${analyzeOptions.server.flavor}${analyzeOptions.server.version}`;
    const flags = `${analyzeOptions.ansiQuotes === true ? "A" : ""}${analyzeOptions.noBackslashEscapes === true ? "B" : ""}${analyzeOptions.pipesAsConcat === true ? "P" : ""}`;
    return [flags, server, listId, analyzeOptions.defaultSchema ?? "", analyzeOptions.globalSqlMode ?? "", sql].join("\u0000");
  };
  return {
    analyze(sql, analyzeOptions) {
      if (sql.length > maxTextLength) return analyzeMysql(sql, analyzeOptions);
      return lruGet(entries, keyOf(sql, analyzeOptions), max, () => analyzeMysql(sql, analyzeOptions));
    },
    get size() {
      return entries.size;
    },
    clear() {
      entries.clear();
    },
  };
}
