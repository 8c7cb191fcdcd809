import { Timestamp, type Document } from "bson";
import type { CursorSource } from "./cursors.js";
import { fail } from "./errors.js";
import { aggregate, copy } from "./query.js";
import type { Store } from "./storage.js";

/**
 * Change streams: every committed write is logged as a change event, and a $changeStream cursor
 * reads the log from its position, waiting in getMore for more.
 * https://www.mongodb.com/docs/manual/reference/change-events/
 */

/** A change as a write reports it, before it gets its token and time. */
export interface ChangeInput {
  readonly operationType: "insert" | "update" | "replace" | "delete" | "drop" | "rename" | "dropDatabase" | "create" | "createIndexes" | "dropIndexes";
  readonly db: string;
  readonly coll?: string;
  readonly documentKey?: Document;
  readonly fullDocument?: Document;
  readonly updateDescription?: Document;
  readonly to?: { readonly db: string; readonly coll: string };
}

interface LoggedChange extends ChangeInput {
  readonly seq: number;
  readonly clusterTime: Timestamp;
  readonly wallTime: Date;
}

/** Events kept for resuming; older ones are dropped. */
const RETAINED = 10_000;

/** The server's change log. */
export class ChangeLog {
  #events: LoggedChange[] = [];
  #seq = 0;
  readonly #waiters = new Set<() => void>();

  /** The sequence number of the latest event (0 before any). */
  get latest(): number {
    return this.#seq;
  }

  record(change: ChangeInput): void {
    const seq = ++this.#seq;
    const now = new Date();
    this.#events.push({ ...change, seq, clusterTime: new Timestamp({ t: Math.floor(now.getTime() / 1000), i: seq }), wallTime: now });
    if (this.#events.length > RETAINED * 2) this.#events = this.#events.slice(-RETAINED);
    for (const wake of [...this.#waiters]) wake();
  }

  /** Events after `seq`, oldest first; ChangeStreamHistoryLost-like BadValue when they were dropped. */
  since(seq: number): LoggedChange[] {
    const first = this.#events[0];
    if (first !== undefined && seq < first.seq - 1) fail("BadValue", "Resume of change stream was not possible, as the resume point may no longer be in the oplog.");
    const at = this.#events.findIndex((event) => event.seq > seq);
    return at === -1 ? [] : this.#events.slice(at);
  }

  /** The sequence number just before the first event at or after `time`. */
  seqAt(time: Timestamp): number {
    const event = this.#events.find((candidate) => candidate.clusterTime.gte(time));
    return event === undefined ? this.#seq : event.seq - 1;
  }

  /** Resolves at the next event, after `ms`, or when `signal` aborts. */
  wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted === true) {
        resolve();
        return;
      }
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }
}

/** A resume token of the stand-in: the event's sequence number. */
export function resumeToken(seq: number): Document {
  return { _data: `82${seq.toString(16).padStart(16, "0")}` };
}

function tokenSeq(token: unknown): number {
  const data = (token as Document | undefined)?._data;
  if (typeof data !== "string" || !/^82[0-9a-f]{16}$/.test(data)) fail("BadValue", "KeyString format error: invalid resume token");
  return Number.parseInt(data.slice(2), 16);
}

/** What a $changeStream watches: one collection, one database, or (on admin with allChangesForCluster) all. */
export type ChangeScope = { readonly db: string; readonly coll: string } | { readonly db: string; readonly coll?: undefined } | { readonly db?: undefined };

/** Options of the $changeStream stage. */
export interface ChangeStreamOptions {
  readonly fullDocument?: string;
  readonly fullDocumentBeforeChange?: string;
  readonly resumeAfter?: Document;
  readonly startAfter?: Document;
  readonly startAtOperationTime?: Timestamp;
  readonly showExpandedEvents?: boolean;
}

/** The cursor source of a change stream. */
export class ChangeStreamSource implements CursorSource {
  readonly #log: ChangeLog;
  readonly #scope: ChangeScope;
  readonly #options: ChangeStreamOptions;
  readonly #pipeline: readonly Document[];
  readonly #store: () => Store;
  #position: number;
  #invalidated = false;
  #pending: Document[] = [];

  constructor(log: ChangeLog, scope: ChangeScope, options: ChangeStreamOptions, pipeline: readonly Document[], store: () => Store) {
    this.#log = log;
    this.#scope = scope;
    this.#options = options;
    this.#pipeline = pipeline;
    this.#store = store;
    if (options.resumeAfter !== undefined) this.#position = tokenSeq(options.resumeAfter);
    else if (options.startAfter !== undefined) this.#position = tokenSeq(options.startAfter);
    else if (options.startAtOperationTime !== undefined) this.#position = log.seqAt(options.startAtOperationTime);
    else this.#position = log.latest;
    if (this.#position > log.latest) fail("BadValue", "cannot resume stream from a point in the future");
  }

  get exhausted(): boolean {
    return this.#invalidated && this.#pending.length === 0;
  }

  take(count: number): Document[] {
    if (!this.#invalidated) {
      for (const event of this.#log.since(this.#position)) {
        this.#position = event.seq;
        if (!this.#inScope(event)) continue;
        const output = this.#output(event);
        if (output !== undefined) this.#pending.push(...aggregate([output], this.#pipeline, () => []));
        if (this.#invalidates(event)) {
          this.#pending.push({ _id: resumeToken(event.seq), operationType: "invalidate", clusterTime: event.clusterTime, wallTime: event.wallTime });
          this.#invalidated = true;
          break;
        }
      }
    }
    return this.#pending.splice(0, Math.min(count, this.#pending.length));
  }

  wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return this.#log.wait(ms, signal);
  }

  extra(): Document {
    return { postBatchResumeToken: resumeToken(this.#position) };
  }

  #inScope(event: LoggedChange): boolean {
    const scope = this.#scope;
    if (scope.db === undefined) return true;
    if (event.db !== scope.db) return false;
    return scope.coll === undefined || event.coll === undefined || event.coll === scope.coll;
  }

  #invalidates(event: LoggedChange): boolean {
    const scope = this.#scope;
    if (scope.db === undefined) return false;
    if (scope.coll === undefined) return event.operationType === "dropDatabase";
    return (event.operationType === "drop" || event.operationType === "rename") && event.coll === scope.coll;
  }

  #output(event: LoggedChange): Document | undefined {
    const expanded = this.#options.showExpandedEvents === true;
    if (["create", "createIndexes", "dropIndexes"].includes(event.operationType) && !expanded) return undefined;
    const out: Document = {
      _id: resumeToken(event.seq),
      operationType: event.operationType,
      clusterTime: event.clusterTime,
      wallTime: event.wallTime,
      ns: event.coll === undefined ? { db: event.db } : { db: event.db, coll: event.coll },
    };
    if (event.to !== undefined) out.to = { ...event.to };
    if (event.documentKey !== undefined) out.documentKey = copy(event.documentKey);
    if (event.updateDescription !== undefined) out.updateDescription = copy(event.updateDescription);
    if (event.operationType === "insert" || event.operationType === "replace") out.fullDocument = copy(event.fullDocument);
    if (event.operationType === "update") {
      const mode = this.#options.fullDocument ?? "default";
      if (mode === "updateLookup" || mode === "whenAvailable" || mode === "required") {
        const current = event.coll === undefined ? undefined : this.#store().collection(event.db, event.coll)?.byId(event.documentKey?._id);
        out.fullDocument = current === undefined ? null : copy(current);
      }
    }
    return out;
  }
}

/** The updateDescription of an update: top-level fields set and removed. */
export function describeUpdate(before: Document, after: Document, same: (a: unknown, b: unknown) => boolean): Document {
  const updatedFields: Document = {};
  const removedFields: string[] = [];
  for (const [key, value] of Object.entries(after)) {
    if (!Object.hasOwn(before, key) || !same(before[key], value)) updatedFields[key] = value;
  }
  for (const key of Object.keys(before)) if (!Object.hasOwn(after, key)) removedFields.push(key);
  return { updatedFields, removedFields, truncatedArrays: [] };
}
