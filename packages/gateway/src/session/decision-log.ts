import type { Logger } from "@airlock/runtime";
import type { DecisionRow, Store } from "../store/index.js";

/**
 * Statement decisions on their way to the store, written in batches: one transaction per batch
 * instead of one per statement, off the statement's path (the recording, synced before the
 * statement runs, is the record of authority; the store's rows are its index for the API).
 */
export interface DecisionLog {
  /** Queues a decision of a session whose start is stored once `stored` resolves. */
  add(row: DecisionRow, stored: Promise<unknown>): void;
  /** Resolves once every decision queued so far is written (or failed and was logged). */
  flush(): Promise<void>;
}

interface Queued {
  readonly row: DecisionRow;
  readonly stored: Promise<unknown>;
}

/** Batches of at most `maxBatch` decisions, written at most `intervalMs` after the first of them was queued. */
export function createDecisionLog(store: Store, logger: Logger, options: { intervalMs?: number; maxBatch?: number } = {}): DecisionLog {
  const intervalMs = options.intervalMs ?? 20;
  const maxBatch = options.maxBatch ?? 500;
  let queued: Queued[] = [];
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();

  const write = (batch: Queued[]): Promise<void> =>
    (writing = writing.then(async () => {
      // A decision of a session whose start could not be stored has nowhere to go (already logged there).
      const settled = await Promise.allSettled(batch.map((entry) => entry.stored));
      const rows = batch.filter((_, index) => settled[index]?.status === "fulfilled").map((entry) => entry.row);
      if (rows.length === 0) return;
      try {
        await store.recordDecisions(rows);
      } catch (error) {
        logger.error({ err: String(error), decisions: rows.length }, "cannot record decisions");
      }
    }));

  const flush = (): Promise<void> => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (queued.length === 0) return writing;
    const batch = queued;
    queued = [];
    return write(batch);
  };

  return {
    add(row, stored) {
      queued.push({ row, stored });
      if (queued.length >= maxBatch) void flush();
      else if (timer === undefined) timer = setTimeout(() => void flush(), intervalMs);
    },
    flush,
  };
}
