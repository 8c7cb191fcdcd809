import type { Logger } from "@airlock/runtime";
import { mkdir, open as openFile, readdir, rm, stat, type FileHandle } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { genesisHash, sealLine } from "./chain.js";
import { openJournal, recoverJournal, type Journal } from "./journal.js";

/** How recordings are written. */
export interface RecorderOptions {
  readonly dir: string;
  /**
   * statement: every event is on disk (synced, through the gateway's journal) before the call that
   * recorded it resolves; interval: calls resolve once the journal has written the event (a killed
   * gateway loses nothing) and the journal is synced at most `intervalMs` later (what a power
   * failure can lose).
   */
  readonly fsync: "statement" | "interval";
  readonly intervalMs: number;
  /** Names this gateway's journal (`dir/.journal/<id>`), so gateways sharing `dir` recover only their own. */
  readonly gatewayId: string;
  /** Size at which the journal begins a new segment (default 64 MiB). */
  readonly segmentBytes?: number;
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
  /** Writes out what the file of an open recording at `path` holds back (it lags the journal); no-op for others. */
  flush(path: string): Promise<void>;
  /** Syncs the journal and stops the recorder's timer (sessions should have finished). */
  close(): Promise<void>;
}

/** The file of a session's recording. */
export function recordingPath(dir: string, sessionId: string, startedAt: Date): string {
  return join(dir, startedAt.toISOString().slice(0, 10), `${sessionId}.jsonl`);
}

/** The journal's folder for a gateway: one per gateway id, so gateways sharing the recordings dir keep apart. */
export function journalDir(dir: string, gatewayId: string): string {
  return join(dir, ".journal", gatewayId.replace(/[^A-Za-z0-9._-]/g, "_"));
}

/** How long a session file may lag behind the journal, and how much it may hold back, before it is written. */
const flushIntervalMs = 200;
const flushBytes = 64 * 1024;

/**
 * Creates the recorder: first completes the session files of an earlier run from its journal
 * (lines acknowledged but not yet in their files when it stopped), then opens a new journal.
 */
export async function createRecorder(options: RecorderOptions): Promise<Recorder> {
  const dir = journalDir(options.dir, options.gatewayId);
  await recoverJournal(dir, options.dir, options.logger);
  const open = new Set<FileRecording>();
  const journal = await openJournal({
    dir,
    fsync: options.fsync,
    intervalMs: options.intervalMs,
    segmentBytes: options.segmentBytes ?? 64 * 1024 * 1024,
    logger: options.logger,
    checkpoint: async () => {
      await Promise.all([...open].map((recording) => recording.checkpoint()));
    },
  });
  const flushing = setInterval(() => {
    for (const recording of open) recording.flush();
  }, flushIntervalMs);
  flushing.unref();
  return {
    async open(sessionId, startedAt) {
      const path = recordingPath(options.dir, sessionId, startedAt);
      await mkdir(join(path, ".."), { recursive: true });
      const handle = await openFile(path, "wx", 0o600);
      const recording = new FileRecording(path, relative(options.dir, path), handle, genesisHash(sessionId), journal, options, () => open.delete(recording));
      open.add(recording);
      return recording;
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
    async flush(path) {
      const resolved = resolve(path);
      for (const recording of open) if (resolve(recording.path) === resolved) await recording.flush();
    },
    async close() {
      clearInterval(flushing);
      await journal.close();
    },
  };
}

class FileRecording implements SessionRecording {
  readonly path: string;
  /** The path relative to the recordings dir, as the journal names it. */
  readonly #file: string;
  readonly #handle: FileHandle;
  readonly #journal: Journal;
  readonly #options: RecorderOptions;
  readonly #onClose: () => void;
  #seq = 0;
  #prev: string;
  /** Lines the journal has and this file does not yet: written behind it, in order. */
  #pending: string[] = [];
  #pendingBytes = 0;
  /** The file write in progress; each takes every line pending when it starts. */
  #tail: Promise<void> = Promise.resolve();
  #failed = false;
  #closed = false;

  constructor(path: string, file: string, handle: FileHandle, genesis: string, journal: Journal, options: RecorderOptions, onClose: () => void) {
    this.path = path;
    this.#file = file;
    this.#handle = handle;
    this.#prev = genesis;
    this.#journal = journal;
    this.#options = options;
    this.#onClose = onClose;
  }

  get failed(): boolean {
    return this.#failed || this.#journal.failed;
  }

  /** Seals an event, hands its line to the journal and queues it for this file; returns the journal's ticket. */
  #write(event: Readonly<Record<string, unknown>>): number {
    if (this.#closed) throw new Error("the recording is closed");
    const { text, hash } = sealLine(++this.#seq, this.#options.now(), this.#prev, event);
    this.#prev = hash;
    const ticket = this.#journal.add(this.#file, text);
    this.#pending.push(text);
    this.#pendingBytes += text.length + 1;
    if (this.#pendingBytes >= flushBytes) this.flush();
    return ticket;
  }

  /** Writes the pending lines to this file (no sync: the journal holds them durably). */
  flush(): Promise<void> {
    if (this.#pending.length === 0) return this.#tail;
    const text = `${this.#pending.join("\n")}\n`;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#tail = this.#tail.then(async () => {
      if (this.#failed) return;
      try {
        await this.#handle.write(text);
      } catch (error) {
        this.#failed = true;
        this.#options.logger.error({ path: this.path, err: (error as Error).message }, "cannot write the recording");
      }
    });
    return this.#tail;
  }

  /** For a journal checkpoint: everything so far is in this file and on disk. */
  async checkpoint(): Promise<void> {
    await this.flush();
    if (this.#failed) throw new Error(`the recording ${this.path} cannot be written`);
    await this.#handle.datasync();
  }

  async append(event: Readonly<Record<string, unknown>>): Promise<void> {
    await this.#journal.durable(this.#write(event));
  }

  note(event: Readonly<Record<string, unknown>>): void {
    try {
      this.#write(event);
    } catch {
      // A closed recording: the session is ending and its end event was written.
    }
  }

  async sync(): Promise<void> {
    if (this.failed) throw new Error("the recording cannot be written");
    await this.#journal.durable(this.#journal.last);
  }

  async finish(event: Readonly<Record<string, unknown>>): Promise<{ records: number; lastHash: string }> {
    let written = true;
    try {
      this.#write(event);
    } catch {
      written = false;
    }
    this.#closed = true;
    this.#onClose();
    await this.flush();
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
