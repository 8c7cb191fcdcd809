import { randomInt } from "node:crypto";
import { calculateObjectSize, Long, type Document } from "bson";
import { fail } from "./errors.js";

/** Documents a server cursor hands out, batch by batch. */
export interface CursorSource {
  /** Up to `count` documents, stopping before `maxBytes` of BSON (but always at least one when there is one). */
  take(count: number, maxBytes: number): Document[];
  /** True when no document will ever come again. */
  readonly exhausted: boolean;
  /** Tailable sources: resolves when documents may have come, or after `ms`, or when `signal` aborts. */
  wait?(ms: number, signal: AbortSignal | undefined): Promise<void>;
  /** Fields added to every cursor reply (a change stream's postBatchResumeToken). */
  extra?(): Document;
}

/** A materialized result: the documents are references to immutable stored documents or fresh objects. */
export class ArraySource implements CursorSource {
  readonly #documents: readonly Document[];
  #position = 0;

  constructor(documents: readonly Document[]) {
    this.#documents = documents;
  }

  get exhausted(): boolean {
    return this.#position >= this.#documents.length;
  }

  take(count: number, maxBytes: number): Document[] {
    const out: Document[] = [];
    let bytes = 0;
    while (out.length < count && this.#position < this.#documents.length) {
      const document = this.#documents[this.#position] as Document;
      const size = calculateObjectSize(document, { ignoreUndefined: true });
      if (out.length > 0 && bytes + size > maxBytes) break;
      out.push(document);
      bytes += size;
      this.#position++;
    }
    return out;
  }
}

interface ServerCursor {
  readonly id: number;
  readonly namespace: string;
  readonly source: CursorSource;
  /** `db.user` of the user that opened it, when authenticated. */
  readonly owner: string | undefined;
  /** When a command last used it (ms since the epoch), for the idle timeout. */
  lastUsed: number;
}

/** Options of {@link Cursors.open}. */
export interface OpenCursorOptions {
  /** Documents in the first batch; 101 when absent, as the server's default. */
  readonly batchSize?: number | undefined;
  readonly singleBatch?: boolean | undefined;
  readonly owner: string | undefined;
}

/** Room for the reply around a batch's documents under the 16 MiB document limit. */
const BATCH_BYTES = 16 * 1024 * 1024 - 16 * 1024;
const DEFAULT_FIRST_BATCH = 101;
/** awaitData cursors wait this long in getMore when the client gives no maxTimeMS. */
const DEFAULT_AWAIT_MS = 1000;
/** A cursor no command used for this long is closed, as the server's cursorTimeoutMillis (10 minutes). */
const IDLE_TIMEOUT_MS = 10 * 60 * 1000;

/** Open server cursors by id, for getMore and killCursors. */
export class Cursors {
  readonly #cursors = new Map<number, ServerCursor>();

  get size(): number {
    return this.#cursors.size;
  }

  /** Takes the first batch and, unless that ends the result, keeps the cursor; returns the command reply. */
  open(namespace: string, source: CursorSource, options: OpenCursorOptions): Document {
    this.#closeIdle();
    const batchSize = options.batchSize ?? DEFAULT_FIRST_BATCH;
    const firstBatch = source.take(batchSize, BATCH_BYTES);
    let id = 0;
    if (!source.exhausted && options.singleBatch !== true) {
      do id = randomInt(2 ** 32, 2 ** 47);
      while (this.#cursors.has(id));
      this.#cursors.set(id, { id, namespace, source, owner: options.owner, lastUsed: Date.now() });
    }
    return { cursor: { firstBatch, id: Long.fromNumber(id), ns: namespace, ...source.extra?.() }, ok: 1 };
  }

  /** Runs getMore: the next batch, waiting on a tailable source; returns the command reply. */
  async getMore(
    id: number,
    namespace: string,
    options: { readonly batchSize?: number | undefined; readonly maxTimeMS?: number | undefined; readonly owner: string | undefined; readonly signal?: AbortSignal },
  ): Promise<Document> {
    const cursor = this.#cursors.get(id);
    if (cursor === undefined) fail("CursorNotFound", `cursor id ${id} not found`);
    if (cursor.namespace !== namespace) {
      fail("Unauthorized", `Requested getMore on namespace '${namespace}', but cursor belongs to a different namespace ${cursor.namespace}`);
    }
    if (cursor.owner !== options.owner) fail("Unauthorized", `cursor id ${id} was not created by the authenticated user`);
    cursor.lastUsed = Date.now();
    const count = options.batchSize === undefined || options.batchSize === 0 ? Number.POSITIVE_INFINITY : options.batchSize;
    let nextBatch = cursor.source.take(count, BATCH_BYTES);
    if (nextBatch.length === 0 && !cursor.source.exhausted && cursor.source.wait !== undefined) {
      await cursor.source.wait(options.maxTimeMS ?? DEFAULT_AWAIT_MS, options.signal);
      // The cursor may have been killed while this getMore waited.
      if (this.#cursors.get(id) !== cursor) fail("CursorNotFound", `cursor id ${id} not found`);
      nextBatch = cursor.source.take(count, BATCH_BYTES);
    }
    const done = cursor.source.exhausted;
    if (done) this.#cursors.delete(id);
    return { cursor: { nextBatch, id: Long.fromNumber(done ? 0 : id), ns: cursor.namespace, ...cursor.source.extra?.() }, ok: 1 };
  }

  /** Runs killCursors for cursors of `namespace`; returns the command reply. */
  kill(namespace: string, ids: readonly number[], owner: string | undefined): Document {
    const killed: Long[] = [];
    const notFound: Long[] = [];
    for (const id of ids) {
      const cursor = this.#cursors.get(id);
      if (cursor === undefined || cursor.namespace !== namespace || cursor.owner !== owner) {
        notFound.push(Long.fromNumber(id));
        continue;
      }
      this.#cursors.delete(id);
      killed.push(Long.fromNumber(id));
    }
    return { cursorsKilled: killed, cursorsNotFound: notFound, cursorsAlive: [], cursorsUnknown: [], ok: 1 };
  }

  #closeIdle(): void {
    const oldest = Date.now() - IDLE_TIMEOUT_MS;
    for (const [id, cursor] of this.#cursors) if (cursor.lastUsed < oldest) this.#cursors.delete(id);
  }

  /** Forgets every cursor (server shutdown). */
  clear(): void {
    this.#cursors.clear();
  }
}
