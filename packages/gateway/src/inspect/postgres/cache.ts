import { analyzePostgres, type Analysis, type AnalyzeOptions } from "./analyze.js";
import { lruGet } from "../lru.js";

/** Options of createAnalysisCache. */
export interface AnalysisCacheOptions {
  /** Most entries kept; the least recently used goes first. Default 10 000. */
  readonly max?: number;
  /** Longer texts are analysed but not kept (bulk INSERTs would fill memory). Default 64 KiB of characters. */
  readonly maxTextLength?: number;
}

/** A least-recently-used cache in front of analyzePostgres. */
export interface AnalysisCache {
  /** The analysis of `sql` under `options`: the same frozen object for the same text and options object. */
  analyze(sql: string, options?: AnalyzeOptions): Analysis;
  readonly size: number;
  clear(): void;
}

/**
 * Caches analyses by exact SQL text and by the identity of the options object, because a session
 * sends the same prepared statement texts again and again. Results are frozen, so sharing is safe.
 */
export function createAnalysisCache(options: AnalysisCacheOptions = {}): AnalysisCache {
  const max = options.max ?? 10_000;
  const maxTextLength = options.maxTextLength ?? 65_536;
  if (!Number.isInteger(max) || max < 1) throw new TypeError("createAnalysisCache: `max` must be a positive integer");
  if (!Number.isInteger(maxTextLength) || maxTextLength < 0) throw new TypeError("createAnalysisCache: `maxTextLength` must be a non-negative integer");
  const entries = new Map<string, Analysis>();
  const optionIds = new WeakMap<AnalyzeOptions, number>();
  let nextId = 1;
  const keyOf = (sql: string, analyzeOptions: AnalyzeOptions | undefined): string => {
    if (analyzeOptions === undefined) return `0\u0000${sql}`;
    let id = optionIds.get(analyzeOptions);
    if (id === undefined) {
      id = nextId;
      nextId += 1;
      optionIds.set(analyzeOptions, id);
    }
    return `${id}\u0000${sql}`;
  };
  return {
    analyze(sql, analyzeOptions) {
      if (sql.length > maxTextLength) return analyzePostgres(sql, analyzeOptions);
      return lruGet(entries, keyOf(sql, analyzeOptions), max, () => analyzePostgres(sql, analyzeOptions));
    },
    get size() {
      return entries.size;
    },
    clear() {
      entries.clear();
    },
  };
}
