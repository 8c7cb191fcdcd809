import type { Logger } from "@airlock/runtime";
import { mkdir, open, readdir, readFile, unlink, type FileHandle } from "node:fs/promises";
import { constants } from "node:fs";
import { join } from "node:path";

/**
 * The gateway's recording journal: every line of every session's recording goes here first, and a
 * statement waits for this one file's fdatasync, not its own recording's. One sync covers every
 * session that wrote since the last (group commit across sessions, as a database's WAL does), so a
 * busy gateway pays one sync per batch instead of one per statement per session. Session files
 * are written behind it without syncing and synced when they close or at a checkpoint; after a
 * crash, `recoverJournal` appends to each session file what only the journal holds.
 *
 * In interval mode a statement waits only for the journal's write (a killed gateway loses nothing:
 * the kernel has the line) and the journal is synced at most `intervalMs` later, which bounds what a
 * power failure can take.
 *
 * Format: segments `<n>.wal`, lines `<session file, relative to the recordings dir>\t<line>\n`.
 */
export interface Journal {
  /** Queues a line of a session's recording; the returned ticket is durable once `durable(ticket)` resolves. */
  add(file: string, line: string): number;
  /** Resolves once the line of `ticket` (and every line before it) is on disk; rejects if it cannot be. */
  durable(ticket: number): Promise<void>;
  /** The newest ticket handed out. */
  readonly last: number;
  /** True once a write or sync failed: every recording fails closed. */
  readonly failed: boolean;
  /** Writes what is queued, syncs, and closes the segment. */
  close(): Promise<void>;
}

export interface JournalOptions {
  /** The journal's folder (one per gateway id, so gateways sharing the recordings dir keep apart). */
  readonly dir: string;
  readonly fsync: "statement" | "interval";
  readonly intervalMs: number;
  /** A segment past this size is closed and a new one begun; the old one goes after `checkpoint`. */
  readonly segmentBytes: number;
  /** Makes every session file hold everything the journal held before it was called (write + sync). */
  readonly checkpoint: () => Promise<void>;
  readonly logger: Logger;
}

interface Waiter {
  readonly ticket: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

const segmentName = (index: number) => `${String(index).padStart(8, "0")}.wal`;

/**
 * A new segment. In statement mode it is opened O_DSYNC: a write returns once its lines are on
 * disk, so each round is one system call instead of a write and an fdatasync.
 */
function openSegment(options: JournalOptions, index: number): Promise<FileHandle> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_APPEND | (options.fsync === "statement" ? constants.O_DSYNC : 0);
  return open(join(options.dir, segmentName(index)), flags, 0o600);
}
const segmentPattern = /^\d{8}\.wal$/;

/** Opens the journal in `dir`, after any earlier segments there were recovered (they are removed). */
export async function openJournal(options: JournalOptions): Promise<Journal> {
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  const existing = (await readdir(options.dir)).filter((name) => segmentPattern.test(name)).sort();
  if (existing.length > 0) throw new Error(`the journal in ${options.dir} holds unrecovered segments; recover it first`);
  return new FileJournal(options, await openSegment(options, 1), 1);
}

class FileJournal implements Journal {
  readonly #options: JournalOptions;
  #handle: FileHandle;
  #segment: number;
  #segmentSize = 0;
  #ticket = 0;
  #written = 0;
  #synced = 0;
  #queued: string[] = [];
  #queuedTicket = 0;
  #waiters: Waiter[] = [];
  #running = false;
  #failed: unknown;
  #syncDue = false;
  #syncTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Segments waiting for a checkpoint before they can go. */
  #retired: number[] = [];
  #checkpointing = false;

  constructor(options: JournalOptions, handle: FileHandle, segment: number) {
    this.#options = options;
    this.#handle = handle;
    this.#segment = segment;
  }

  get last(): number {
    return this.#ticket;
  }

  get failed(): boolean {
    return this.#failed !== undefined;
  }

  add(file: string, line: string): number {
    if (this.#closed) throw new Error("the recording journal is closed");
    this.#queued.push(`${file}\t${line}\n`);
    this.#queuedTicket = ++this.#ticket;
    if (!this.#running) void this.#run();
    return this.#ticket;
  }

  durable(ticket: number): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(new Error("the recording journal failed earlier"));
    if (ticket <= this.#acknowledged()) return Promise.resolve();
    const promise = new Promise<void>((resolve, reject) => this.#waiters.push({ ticket, resolve, reject }));
    if (!this.#running) void this.#run();
    return promise;
  }

  /**
   * What a waiter waits for. statement: the line is synced. interval: the line is written (in the
   * kernel's hands, so a killed gateway loses nothing) and will be synced within the interval (a
   * power failure may lose at most that much).
   */
  #acknowledged(): number {
    return this.#options.fsync === "statement" ? this.#synced : this.#written;
  }

  /**
   * One writer: writes everything queued in one call (O_DSYNC in statement mode, so the write is
   * the sync); lines queued meanwhile go out together in the next round. In interval mode a sync
   * follows at most `intervalMs` after the first unsynced write.
   */
  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (this.#failed === undefined) {
        if (this.#queued.length > 0) {
          const text = this.#queued.join("");
          const upTo = this.#queuedTicket;
          this.#queued = [];
          await this.#handle.write(text);
          this.#written = upTo;
          this.#segmentSize += Buffer.byteLength(text);
          if (this.#options.fsync === "statement") this.#synced = upTo;
          else this.#scheduleSync();
          this.#settle();
          if (this.#segmentSize >= this.#options.segmentBytes && !this.#closed) await this.#rotate();
          continue;
        }
        if (this.#syncDue) {
          this.#syncDue = false;
          const upTo = this.#written;
          await this.#handle.datasync();
          this.#synced = upTo;
          continue;
        }
        break;
      }
    } catch (error) {
      this.#failed = error;
      this.#options.logger.error({ err: (error as Error).message }, "cannot write the recording journal");
    } finally {
      this.#running = false;
    }
    if (this.#failed !== undefined) {
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const waiter of waiters) waiter.reject(new Error("the recording journal cannot be written"));
    }
  }

  /** Interval mode: a sync at most `intervalMs` after the first write it covers, run by the writer. */
  #scheduleSync(): void {
    if (this.#syncTimer !== undefined) return;
    this.#syncTimer = setTimeout(() => {
      this.#syncTimer = undefined;
      this.#syncDue = true;
      if (!this.#running) void this.#run();
    }, this.#options.intervalMs);
    this.#syncTimer.unref();
  }

  #settle(): void {
    const still: Waiter[] = [];
    for (const waiter of this.#waiters) {
      if (waiter.ticket <= this.#acknowledged()) waiter.resolve();
      else still.push(waiter);
    }
    this.#waiters = still;
  }

  /** Begins a new segment; the old one is removed once a checkpoint put its lines in their session files. */
  async #rotate(): Promise<void> {
    const old = this.#handle;
    if (this.#options.fsync === "interval") {
      await old.datasync();
      this.#synced = this.#written;
    }
    this.#retired.push(this.#segment);
    this.#segment += 1;
    this.#handle = await openSegment(this.#options, this.#segment);
    this.#segmentSize = 0;
    await old.close();
    if (!this.#checkpointing) void this.#checkpoint();
  }

  async #checkpoint(): Promise<void> {
    this.#checkpointing = true;
    try {
      while (this.#retired.length > 0) {
        const segments = this.#retired;
        this.#retired = [];
        await this.#options.checkpoint();
        for (const segment of segments) await unlink(join(this.#options.dir, segmentName(segment)));
      }
    } catch (error) {
      // The segments stay; recovery at the next start replays them (appending only what is missing).
      this.#options.logger.error({ err: (error as Error).message }, "recording journal checkpoint failed");
    } finally {
      this.#checkpointing = false;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#last() > this.#written && this.#failed === undefined) await this.durable(this.#last()).catch(() => undefined);
    while (this.#running || this.#checkpointing) await new Promise((resolve) => setTimeout(resolve, 5));
    if (this.#syncTimer !== undefined) clearTimeout(this.#syncTimer);
    if (this.#failed === undefined && this.#synced < this.#written) await this.#handle.datasync().catch(() => undefined);
    await this.#handle.close();
  }

  #last(): number {
    return this.#ticket;
  }
}

/** What recovery did. */
export interface RecoveryResult {
  /** Session files that got lines back from the journal. */
  readonly sessions: number;
  /** Lines appended to them. */
  readonly lines: number;
}

/**
 * Replays the journal's segments in `dir` into the session files under `recordingsDir`: each file
 * loses a torn last line (never acknowledged: a line is acknowledged only once the journal synced it)
 * and gets the journal's lines past its last sequence number, then is synced; the segments are
 * removed. A torn last line of the journal itself was never synced, so never acknowledged: skipped.
 */
export async function recoverJournal(dir: string, recordingsDir: string, logger: Logger): Promise<RecoveryResult> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((name) => segmentPattern.test(name)).sort();
  } catch {
    return { sessions: 0, lines: 0 };
  }
  const byFile = new Map<string, string[]>();
  for (const name of names) {
    const text = await readFile(join(dir, name), "utf8");
    const end = text.lastIndexOf("\n");
    for (const entry of text.slice(0, end + 1).split("\n")) {
      const tab = entry.indexOf("\t");
      if (tab <= 0) continue;
      const file = entry.slice(0, tab);
      if (file.includes("..") || file.startsWith("/")) continue;
      let lines = byFile.get(file);
      if (lines === undefined) byFile.set(file, (lines = []));
      lines.push(entry.slice(tab + 1));
    }
  }
  let sessions = 0;
  let appended = 0;
  for (const [file, lines] of byFile) {
    const path = join(recordingsDir, file);
    await mkdir(join(path, ".."), { recursive: true });
    const handle = await open(path, "a+", 0o600);
    try {
      const current = await handle.readFile("utf8");
      const keep = current.lastIndexOf("\n") + 1;
      if (keep < Buffer.byteLength(current)) await handle.truncate(Buffer.byteLength(current.slice(0, keep)));
      const lastLine = current.slice(0, keep).trimEnd().split("\n").at(-1) ?? "";
      const lastSeq = lastLine === "" ? 0 : seqOf(lastLine);
      const missing = lines.filter((line) => seqOf(line) > lastSeq);
      if (missing.length > 0) {
        await handle.write(`${missing.join("\n")}\n`);
        sessions += 1;
        appended += missing.length;
      }
      await handle.datasync();
    } finally {
      await handle.close();
    }
  }
  for (const name of names) await unlink(join(dir, name));
  if (appended > 0) logger.warn({ sessions, lines: appended }, "recordings completed from the journal after an abrupt stop");
  return { sessions, lines: appended };
}

function seqOf(line: string): number {
  const match = /^\{"seq":(\d+),/.exec(line);
  return match === null ? 0 : Number(match[1]);
}
