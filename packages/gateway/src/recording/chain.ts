import { createHash } from "node:crypto";

/** One line of a session recording: what happened, numbered and chained to the line before. */
export interface RecordLine {
  readonly seq: number;
  readonly at: string;
  readonly type: string;
  readonly prev: string;
  readonly hash: string;
  readonly [field: string]: unknown;
}

/** The `prev` of a recording's first line: bound to its session, so lines cannot move between recordings. */
export function genesisHash(sessionId: string): string {
  return createHash("sha256").update(`airlock-recording:${sessionId}`).digest("hex");
}

/** The hash of a line: sha256 over the previous hash and the line's JSON without its own hash. */
export function lineHash(prev: string, body: string): string {
  return createHash("sha256").update(prev).update("\n").update(body).digest("hex");
}

/** Serialises an event as a chained line (JSON text, without the newline). */
export function sealLine(seq: number, at: Date, prev: string, event: Readonly<Record<string, unknown>>): { text: string; hash: string } {
  const body = JSON.stringify({ seq, at: at.toISOString(), ...event, prev });
  const hash = lineHash(prev, body);
  return { text: `${body.slice(0, -1)},"hash":"${hash}"}`, hash };
}

/** What verifying a recording found. */
export interface VerifyResult {
  readonly ok: boolean;
  readonly records: number;
  readonly lastHash: string;
  /** The session_end record is there; false after a crash (the record verifies up to its last event). */
  readonly ended: boolean;
  /** The first bad line (1-based) and why. */
  readonly problem?: { readonly line: number; readonly reason: string };
}

/**
 * Checks a recording's chain: every line parses, numbers run 1, 2, 3..., each `prev` is the hash of
 * the line before and each `hash` is right. A changed byte, a removed line and two swapped lines
 * each break it at the first line affected. `expected` (count and last hash kept in the store at the
 * session's end) also catches lines cut from the end.
 */
export function verifyLines(sessionId: string, text: string, expected?: { records: number; lastHash: string }): VerifyResult {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  let prev = genesisHash(sessionId);
  let ended = false;
  for (let index = 0; index < lines.length; index++) {
    const raw = lines[index] ?? "";
    const fail = (reason: string): VerifyResult => ({ ok: false, records: index, lastHash: prev, ended, problem: { line: index + 1, reason } });
    let record: RecordLine;
    try {
      record = JSON.parse(raw) as RecordLine;
    } catch {
      // A torn last line is what a crash mid-write leaves; it was never acknowledged. A recording the
      // store knows as sealed has no such excuse.
      if (index === lines.length - 1 && !ended && expected === undefined) return { ok: true, records: index, lastHash: prev, ended: false };
      return fail("the line is not valid JSON");
    }
    if (record === null || typeof record !== "object" || Array.isArray(record)) return fail("the line is not a record");
    if (record.seq !== index + 1) return fail(`sequence number ${String(record.seq)} where ${index + 1} was expected (a record was removed or moved)`);
    if (record.prev !== prev) return fail("its prev hash is not the hash of the record before (a record was removed, moved or changed)");
    const marker = `,"hash":"${record.hash}"}`;
    if (!raw.endsWith(marker) || lineHash(prev, `${raw.slice(0, -marker.length)}}`) !== record.hash) return fail("its content does not match its hash (the record was changed)");
    if (ended) return fail("a record follows session_end");
    if (record.type === "session_end") ended = true;
    prev = record.hash;
  }
  if (expected !== undefined && (expected.records !== lines.length || expected.lastHash !== prev)) {
    return { ok: false, records: lines.length, lastHash: prev, ended, problem: { line: lines.length, reason: `the store says the recording has ${expected.records} records ending in ${expected.lastHash.slice(0, 12)}…: records were cut from the end` } };
  }
  return { ok: true, records: lines.length, lastHash: prev, ended };
}
