import type { Logger } from "@airlock/runtime";
import { mkdir, open, readdir, rm, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { genesisHash, sealLine } from "./chain.js";

/** How recordings are written. */
export interface RecorderOptions {
  readonly dir: string;
  /**
   * statement: every event is on disk (fdatasync) before the call that recorded it resolves;
   * interval: syncs are grouped, at most `intervalMs` apart, and calls resolve after the next one.
   */
  readonly fsync: "statement" | "interval";
  readonly intervalMs: number;
  readonly logger: Logger;
  readonly now: () => Date;
}

/** One session's recording: append-only, hash-chained, on disk before `append` resolves. */
export interface SessionRecording {
  readonly path: string;
  /** Appends an event; resolves once it is durable. Rejects if it cannot be written. */
  append(event: Readonly<Record<string, unknown>>): Promise<void>;
  /** Appends without waiting (results, timings): still in order, still chained. */
  note(event: Readonly<Record<string, unknown>>): void;
  /** Resolves once everything appended so far is on disk; rejects if it cannot be. */
  sync(): Promise<void>;
  /** Writes session_end, syncs and closes; returns the count and last hash for the store. */
  finish(event: Readonly<Record<string, unknown>>): Promise<{ records: number; lastHash: string }>;
  /** True once a write failed: the session must refuse statements (fail closed). */
  readonly failed: boolean;
}

/** Writes recordings under `dir/YYYY-MM-DD/<session>.jsonl`: a layout an operator can ship to object storage as files close. */
export interface Recorder {
  open(sessionId: string, startedAt: Date): Promise<SessionRecording>;
  /** Deletes day folders older than `maxAgeMs`; returns how many recordings were removed. */
  prune(maxAgeMs: number): Promise<number>;
}

/** The file of a session's recording. */
export function recordingPath(dir: string, sessionId: string, startedAt: Date): string {
  return join(dir, startedAt.toISOString().slice(0, 10), `${sessionId}.jsonl`);
}

/** Creates the recorder. */
export function createRecorder(options: RecorderOptions): Recorder {
  return {
    async open(sessionId, startedAt) {
      const path = recordingPath(options.dir, sessionId, startedAt);
      await mkdir(join(path, ".."), { recursive: true });
      const handle = await open(path, "wx", 0o600);
      return new FileRecording(path, handle, genesisHash(sessionId), options);
    },
    async prune(maxAgeMs) {
      const cutoff = options.now().getTime() - maxAgeMs;
      let removed = 0;
      let days: string[];
      try {
        days = await readdir(options.dir);
      } catch {
        return 0;
      }
      for (const day of days) {
        if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) continue;
        // A day folder goes once its last possible session start is past the cutoff.
        if (Date.parse(`${day}T00:00:00Z`) + 86_400_000 > cutoff) continue;
        const folder = join(options.dir, day);
        removed += (await readdir(folder)).filter((name) => name.endsWith(".jsonl")).length;
        await rm(folder, { recursive: true, force: true });
      }
      if (removed > 0) options.logger.info({ removed }, "recordings past retention removed");
      return removed;
    },
  };
}

class FileRecording implements SessionRecording {
  readonly path: string;
  readonly #handle: FileHandle;
  readonly #options: RecorderOptions;
  #seq = 0;
  #prev: string;
  /** The write in progress (it takes every line queued before it ends), in append order. */
  #tail: Promise<void> = Promise.resolve();
  #queued: string[] = [];
  #waiting: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  #writing = false;
  #failed = false;
  #syncing: Promise<void> | undefined;
  #dirty = false;
  #closed = false;
  #lastSync = 0;

  constructor(path: string, handle: FileHandle, genesis: string, options: RecorderOptions) {
    this.path = path;
    this.#handle = handle;
    this.#prev = genesis;
    this.#options = options;
  }

  get failed(): boolean {
    return this.#failed;
  }

  /**
   * Seals an event and queues its line. Lines queued while a write runs go out together in the next
   * one (one thread-pool job instead of one per line), still in order.
   */
  #write(event: Readonly<Record<string, unknown>>): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("the recording is closed"));
    const { text, hash } = sealLine(++this.#seq, this.#options.now(), this.#prev, event);
    this.#prev = hash;
    this.#queued.push(`${text}\n`);
    const written = new Promise<void>((resolve, reject) => this.#waiting.push({ resolve, reject }));
    if (!this.#writing) this.#tail = this.#writeQueued();
    return written;
  }

  async #writeQueued(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queued.length > 0) {
        const text = this.#queued.join("");
        const waiting = this.#waiting;
        this.#queued = [];
        this.#waiting = [];
        if (this.#failed) {
          for (const waiter of waiting) waiter.reject(new Error("the recording failed earlier"));
          continue;
        }
        try {
          await this.#handle.write(text);
          this.#dirty = true;
          for (const waiter of waiting) waiter.resolve();
        } catch (error) {
          this.#failed = true;
          this.#options.logger.error({ path: this.path, err: (error as Error).message }, "cannot write the recording");
          for (const waiter of waiting) waiter.reject(error);
        }
      }
    } finally {
      this.#writing = false;
    }
  }

  /**
   * Group commit: one fdatasync at a time, started at once when none runs; calls that arrive while
   * one runs share the next. In interval mode syncs of a file are at least `intervalMs` apart, so
   * a busy session pays one sync per interval, and each call waits at most that long more.
   */
  #sync(): Promise<void> {
    if (this.#syncing !== undefined) return this.#syncing.then(() => (this.#dirty ? this.#sync() : undefined));
    const wait = this.#options.fsync === "interval" ? Math.max(0, this.#lastSync + this.#options.intervalMs - performance.now()) : 0;
    this.#syncing = (wait === 0 ? Promise.resolve() : new Promise<void>((resolve) => setTimeout(resolve, wait)))
      .then(() => this.#tail)
      .then(async () => {
        this.#dirty = false;
        await this.#handle.datasync();
        this.#lastSync = performance.now();
      })
      .catch((error: unknown) => {
        this.#failed = true;
        this.#options.logger.error({ path: this.path, err: (error as Error).message }, "cannot sync the recording");
        throw error;
      })
      .finally(() => {
        this.#syncing = undefined;
      });
    return this.#syncing;
  }

  async append(event: Readonly<Record<string, unknown>>): Promise<void> {
    await this.#write(event);
    await this.#sync();
  }

  note(event: Readonly<Record<string, unknown>>): void {
    this.#write(event).catch(() => undefined);
  }

  async sync(): Promise<void> {
    await this.#tail;
    if (this.#failed) throw new Error("the recording cannot be written");
    await this.#sync();
  }

  async finish(event: Readonly<Record<string, unknown>>): Promise<{ records: number; lastHash: string }> {
    const written = await this.#write(event).then(
      () => true,
      () => false,
    );
    this.#closed = true;
    await this.#tail;
    const synced = await this.#handle.datasync().then(
      () => true,
      () => false,
    );
    await this.#handle.close();
    // A seal for records that are not on disk would make verification blame a truncation.
    if (!written || !synced || this.#failed) throw new Error("the recording could not be finished");
    return { records: this.#seq, lastHash: this.#prev };
  }
}

/** Size of a recording file, for the API. */
export async function recordingSize(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}
