import { createLogger } from "@airlock/runtime";
import { randomUUID } from "node:crypto";
import { appendFile, cp, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { genesisHash, sealLine, verifyLines } from "../../src/recording/chain.js";
import { recoverJournal } from "../../src/recording/journal.js";
import { createRecorder, journalDir, recordingPath, type RecorderOptions } from "../../src/recording/recorder.js";

const logs: string[] = [];
const logger = createLogger({ name: "recording-test", level: "debug", destination: { write: (line: string) => void logs.push(line) } });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-recording-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const STARTED = new Date("2030-01-02T03:04:05.678Z");

/** A finished recording of a short session: session_start, four statements with their results, session_end (10 records). */
async function recordSession(options: Partial<RecorderOptions> = {}): Promise<{ id: string; path: string; text: string; lines: string[]; seal: { records: number; lastHash: string } }> {
  const recorder = await createRecorder({ gatewayId: `test-${randomUUID()}`, dir, fsync: "statement", intervalMs: 5, logger, now: () => new Date(), ...options });
  const id = `s-${randomUUID()}`;
  const recording = await recorder.open(id, STARTED);
  await recording.append({
    type: "session_start",
    session: id,
    gateway: "gw-1",
    connection: "orders",
    transport: "tunnel",
    client: "127.0.0.1:50432",
    identity: { subject: "repo:acme/api", issuer: "ci", issuerUrl: "https://token.actions.githubusercontent.com", groups: ["feature-test"], claims: { repository: "acme/api" } },
    rules: ["tests-read"],
  });
  for (let n = 1; n <= 4; n++) {
    await recording.append({ type: "statement", protocol: "simple", sql: `select ${n} as n, 'tëxt "quoted"\n' as note`, classes: ["read"], effect: "allow", rule: "tests-read", reasons: [] });
    recording.note({ type: "result", columns: ["n", "note"], rows: [[String(n), 'tëxt "quoted"\n']], rowCount: 1, tag: "SELECT 1", bytes: 60, ms: 0.4 });
  }
  const seal = await recording.finish({ type: "session_end", outcome: "client_closed", statements: 4, ms: 12 });
  const text = await readFile(recording.path, "utf8");
  return { id, path: recording.path, text, lines: text.split("\n").slice(0, -1), seal };
}

/** The lines joined back into a recording's text. */
const asText = (lines: string[]): string => `${lines.join("\n")}\n`;

describe("a recording", () => {
  it("is written under dir/YYYY-MM-DD/<session>.jsonl, privately, as chained JSON lines that verify", async () => {
    const { id, path, text, lines, seal } = await recordSession();
    expect(path).toBe(recordingPath(dir, id, STARTED));
    expect(path).toBe(join(dir, "2030-01-02", `${id}.jsonl`));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(text.endsWith("\n")).toBe(true);
    expect(lines).toHaveLength(10);
    let prev = genesisHash(id);
    lines.forEach((line, index) => {
      const record = JSON.parse(line) as { seq: number; at: string; type: string; prev: string; hash: string };
      expect(record.seq).toBe(index + 1);
      expect(new Date(record.at).toISOString()).toBe(record.at);
      expect(record.prev).toBe(prev);
      // The hash is the last field, so a reader can take it off and recompute it.
      expect(line.endsWith(`,"hash":"${record.hash}"}`)).toBe(true);
      prev = record.hash;
    });
    expect(JSON.parse(lines[0] ?? "{}")).toMatchObject({ type: "session_start", session: id });
    expect(JSON.parse(lines[9] ?? "{}")).toMatchObject({ type: "session_end", outcome: "client_closed", statements: 4, ms: 12 });
    expect(seal).toEqual({ records: 10, lastHash: prev });

    expect(verifyLines(id, text)).toEqual({ ok: true, records: 10, lastHash: seal.lastHash, ended: true });
    expect(verifyLines(id, text, seal)).toEqual({ ok: true, records: 10, lastHash: seal.lastHash, ended: true });
    // Without the trailing newline too.
    expect(verifyLines(id, text.slice(0, -1), seal)).toMatchObject({ ok: true, records: 10 });
  });

  it("is bound to its session: the same lines do not verify as another session's", async () => {
    const { text } = await recordSession();
    expect(verifyLines(`s-${randomUUID()}`, text)).toMatchObject({ ok: false, problem: { line: 1, reason: expect.stringMatching(/prev hash/) } });
  });
});

describe("tampering", () => {
  it("detects a changed byte in the middle of a line, at that line", async () => {
    const { id, lines, seal } = await recordSession();
    const line = lines[3] ?? "";
    expect(line).toContain("select 2 as n");
    const at = line.indexOf("select 2") + "select ".length;
    const changed = [...lines];
    changed[3] = `${line.slice(0, at)}9${line.slice(at + 1)}`;
    for (const expected of [undefined, seal]) {
      expect(verifyLines(id, asText(changed), expected)).toMatchObject({
        ok: false,
        records: 3,
        problem: { line: 4, reason: "its content does not match its hash (the record was changed)" },
      });
    }
  });

  it("detects a change that breaks the JSON of a line", async () => {
    const { id, lines } = await recordSession();
    const changed = [...lines];
    changed[4] = (lines[4] ?? "").replace('"rows":[[', '"rows":[[[');
    expect(verifyLines(id, asText(changed))).toMatchObject({ ok: false, problem: { line: 5, reason: "the line is not valid JSON" } });
  });

  it("detects a removed line, at the line after the gap", async () => {
    const { id, lines } = await recordSession();
    const removed = lines.filter((_, index) => index !== 5);
    expect(verifyLines(id, asText(removed))).toMatchObject({
      ok: false,
      records: 5,
      problem: { line: 6, reason: expect.stringMatching(/^sequence number 7 where 6 was expected/) },
    });
  });

  it("detects two swapped lines, at the first of them", async () => {
    const { id, lines } = await recordSession();
    const swapped = [...lines];
    [swapped[3], swapped[4]] = [lines[4] ?? "", lines[3] ?? ""];
    expect(verifyLines(id, asText(swapped))).toMatchObject({ ok: false, records: 3, problem: { line: 4, reason: expect.stringMatching(/sequence number 5 where 4/) } });
  });

  it("detects swapped lines whose sequence numbers were rewritten, by the chain", async () => {
    const { id, lines } = await recordSession();
    const swapped = [...lines];
    swapped[3] = (lines[4] ?? "").replace('"seq":5,', '"seq":4,');
    swapped[4] = (lines[3] ?? "").replace('"seq":4,', '"seq":5,');
    expect(verifyLines(id, asText(swapped))).toMatchObject({ ok: false, problem: { line: 4, reason: expect.stringMatching(/prev hash/) } });
  });

  it("detects a line appended after session_end, even one chained correctly", async () => {
    const { id, lines, seal } = await recordSession();
    const chained = sealLine(11, new Date(), seal.lastHash, { type: "statement", protocol: "simple", sql: "drop table orders", classes: ["ddl"], effect: "allow", reasons: [] });
    expect(verifyLines(id, asText([...lines, chained.text]))).toMatchObject({ ok: false, records: 10, problem: { line: 11, reason: "a record follows session_end" } });
    expect(verifyLines(id, asText([...lines, '{"seq":11'])).problem).toEqual({ line: 11, reason: "the line is not valid JSON" });
    expect(verifyLines(id, asText([...lines, lines[9] ?? ""])).problem?.line).toBe(11);
  });

  it("detects lines cut from the end only with the count and last hash the store kept", async () => {
    const { id, lines, seal } = await recordSession();
    const cut = asText(lines.slice(0, 8));
    // On its own, a recording cut at a line boundary looks like a crash: it verifies, ended abruptly.
    expect(verifyLines(id, cut)).toMatchObject({ ok: true, records: 8, ended: false });
    expect(verifyLines(id, cut, seal)).toMatchObject({ ok: false, records: 8, ended: false, problem: { line: 8, reason: expect.stringMatching(/says the recording has 10 records.*cut from the end/) } });
    expect(verifyLines(id, "", seal)).toMatchObject({ ok: false, records: 0 });
  });

  it("counts a torn last line without session_end as an abrupt end (a crash mid-write), not tampering", async () => {
    const { id, lines } = await recordSession();
    const torn = `${lines.slice(0, 5).join("\n")}\n${(lines[5] ?? "").slice(0, 40)}`;
    expect(verifyLines(id, torn)).toEqual({ ok: true, records: 5, lastHash: (JSON.parse(lines[4] ?? "{}") as { hash: string }).hash, ended: false });
    // Torn anywhere but last is damage.
    const middle = asText([...lines.slice(0, 5), (lines[5] ?? "").slice(0, 40), ...lines.slice(6)]);
    expect(verifyLines(id, middle)).toMatchObject({ ok: false, problem: { line: 6, reason: "the line is not valid JSON" } });
  });

  it("detects a sealed recording whose last line was cut mid-line: a crash has no excuse once the store sealed it", async () => {
    const { id, lines, seal } = await recordSession();
    const torn = `${lines.slice(0, 9).join("\n")}\n${(lines[9] ?? "").slice(0, 30)}`;
    expect(verifyLines(id, torn)).toMatchObject({ ok: true, records: 9, ended: false });
    expect(verifyLines(id, torn, seal)).toMatchObject({ ok: false, records: 9, problem: { line: 10, reason: "the line is not valid JSON" } });
  });

  it("reports a line of JSON that is not an object as a bad record", async () => {
    const { id, lines } = await recordSession();
    for (const line of ["null", "42", '"text"', "[1,2]"]) {
      expect(verifyLines(id, asText([...lines.slice(0, 3), line, ...lines.slice(4)]))).toMatchObject({ ok: false, records: 3, problem: { line: 4, reason: "the line is not a record" } });
    }
  });
});

describe("fsync modes", () => {
  it.each(["statement", "interval"] as const)("%s: events appended and noted at once land in order and verify", async (fsync) => {
    const gatewayId = `test-${randomUUID()}`;
    const recorder = await createRecorder({ gatewayId, dir, fsync, intervalMs: 20, logger, now: () => new Date() });
    const id = `s-${randomUUID()}`;
    const recording = await recorder.open(id, new Date());
    const appended: Promise<void>[] = [];
    for (let n = 1; n <= 30; n++) {
      appended.push(recording.append({ type: "statement", protocol: "extended", sql: `select ${n}`, classes: ["read"], effect: "allow", reasons: [] }));
      recording.note({ type: "result", rows: [[String(n)]], rowCount: 1, tag: "SELECT 1", bytes: 20, ms: 0.1 });
    }
    await Promise.all(appended);
    // Every awaited append is durable: what is on disk now (the journal and whatever part of the
    // session file was written), recovered as after a crash, verifies up to the last one.
    const snapshot = await mkdtemp(join(tmpdir(), "airlock-crash-"));
    await cp(dir, snapshot, { recursive: true });
    await recoverJournal(journalDir(snapshot, gatewayId), snapshot, logger);
    const before = verifyLines(id, await readFile(join(snapshot, relative(dir, recording.path)), "utf8"));
    expect(before).toMatchObject({ ok: true, ended: false });
    expect(before.records).toBeGreaterThanOrEqual(59);
    await rm(snapshot, { recursive: true, force: true });
    const seal = await recording.finish({ type: "session_end", outcome: "client_closed", statements: 30, ms: 5 });
    expect(seal.records).toBe(61);
    const text = await readFile(recording.path, "utf8");
    expect(verifyLines(id, text, seal)).toEqual({ ok: true, records: 61, lastHash: seal.lastHash, ended: true });
    const sqls = text
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { type: string; sql?: string })
      .filter((record) => record.type === "statement")
      .map((record) => record.sql);
    expect(sqls).toEqual(Array.from({ length: 30 }, (_, index) => `select ${index + 1}`));
  });
});

describe("the journal", () => {
  it("recovery drops a torn line of a session file and of the journal, and appends only the missing lines", async () => {
    const root = await mkdtemp(join(tmpdir(), "airlock-journal-"));
    try {
      const gatewayId = `test-${randomUUID()}`;
      const recorder = await createRecorder({ gatewayId, dir: root, fsync: "statement", intervalMs: 5, logger, now: () => new Date() });
      const id = `s-${randomUUID()}`;
      const recording = await recorder.open(id, new Date());
      for (let n = 1; n <= 5; n++) await recording.append({ type: "statement", sql: `select ${n}`, classes: ["read"], effect: "allow", reasons: [] });
      await recorder.close();
      // The crash: the session file holds the first two lines and half of the third; the journal ends with a torn line.
      const lines = (await readdir(journalDir(root, gatewayId))).map((name) => join(journalDir(root, gatewayId), name));
      expect(lines).toHaveLength(1);
      const fileLines = (await readFile(lines[0] ?? "", "utf8")).trim().split("\n").map((entry) => entry.slice(entry.indexOf("\t") + 1));
      expect(fileLines).toHaveLength(5);
      await writeFile(recording.path, `${fileLines.slice(0, 2).join("\n")}\n${(fileLines[2] ?? "").slice(0, 40)}`);
      await appendFile(lines[0] ?? "", `${relative(root, recording.path)}\t{"seq":6,"at":"torn`);

      expect(await recoverJournal(journalDir(root, gatewayId), root, logger)).toEqual({ sessions: 1, lines: 3 });
      const text = await readFile(recording.path, "utf8");
      expect(text).toBe(`${fileLines.join("\n")}\n`);
      expect(verifyLines(id, text)).toMatchObject({ ok: true, records: 5, ended: false });
      expect(await readdir(journalDir(root, gatewayId))).toEqual([]);
      // Nothing left to do a second time.
      expect(await recoverJournal(journalDir(root, gatewayId), root, logger)).toEqual({ sessions: 0, lines: 0 });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("begins new segments and removes old ones once every open session file holds their lines", async () => {
    const root = await mkdtemp(join(tmpdir(), "airlock-journal-"));
    try {
      const gatewayId = `test-${randomUUID()}`;
      const recorder = await createRecorder({ gatewayId, dir: root, fsync: "statement", intervalMs: 5, segmentBytes: 4096, logger, now: () => new Date() });
      const sessions = await Promise.all([1, 2, 3].map(async (n) => ({ id: `s-${n}-${randomUUID()}`, recording: await recorder.open(`s-${n}-${randomUUID()}`, new Date()) })));
      for (let n = 1; n <= 100; n++) {
        await Promise.all(sessions.map(({ recording }) => recording.append({ type: "statement", sql: `select ${n}, '${"x".repeat(50)}'`, classes: ["read"], effect: "allow", reasons: [] })));
      }
      // 300 lines of ~250 bytes: about 18 segments were begun; the checkpoints removed all but the newest few.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const segments = await readdir(journalDir(root, gatewayId));
      expect(segments.length).toBeLessThanOrEqual(3);
      expect(Math.max(...segments.map((name) => Number.parseInt(name, 10)))).toBeGreaterThan(10);
      // A crash now loses nothing: the files plus what is left of the journal hold all 100 statements of each.
      const snapshot = await mkdtemp(join(tmpdir(), "airlock-crash-"));
      await cp(root, snapshot, { recursive: true });
      await recoverJournal(journalDir(snapshot, gatewayId), snapshot, logger);
      for (const { recording } of sessions) {
        const text = await readFile(join(snapshot, relative(root, recording.path)), "utf8");
        expect(text.trim().split("\n")).toHaveLength(100);
      }
      await rm(snapshot, { recursive: true, force: true });
      for (const { recording } of sessions) await recording.finish({ type: "session_end", outcome: "client_closed", statements: 100, ms: 1 });
      await recorder.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe("retention", () => {
  it("prune removes day folders past the cutoff only, and counts their recordings", async () => {
    const root = await mkdtemp(join(tmpdir(), "airlock-prune-"));
    try {
      const now = new Date("2030-03-10T12:00:00.000Z");
      const recorder = await createRecorder({ gatewayId: `test-${randomUUID()}`, dir: root, fsync: "statement", intervalMs: 5, logger, now: () => now });
      const days = ["2030-01-01T08:00:00.000Z", "2030-03-01T23:59:59.999Z", "2030-03-01T01:00:00.000Z", "2030-03-02T10:00:00.000Z", "2030-03-03T00:00:00.000Z", "2030-03-09T00:00:00.000Z", "2030-03-10T11:00:00.000Z"];
      for (const day of days) {
        const recording = await recorder.open(`s-${randomUUID()}`, new Date(day));
        await recording.finish({ type: "session_end", outcome: "client_closed", statements: 0, ms: 0 });
      }
      // Things that are not day folders stay whatever their age.
      await mkdir(join(root, "archive"));
      await writeFile(join(root, "archive", "old.jsonl"), "");
      await writeFile(join(root, "README"), "operator notes");
      await mkdir(join(root, "2030-1-1"));

      // 7 days: the cutoff is 2030-03-03T12:00Z; a folder goes once its whole day is before it.
      expect(await recorder.prune(7 * 86_400_000)).toBe(4);
      expect((await readdir(root)).sort()).toEqual([".journal", "2030-03-03", "2030-03-09", "2030-03-10", "2030-1-1", "README", "archive"]);
      expect(await readdir(join(root, "archive"))).toEqual(["old.jsonl"]);
      expect(await recorder.prune(7 * 86_400_000)).toBe(0);
      expect(await (await createRecorder({ gatewayId: `test-${randomUUID()}`, dir: join(root, "missing"), fsync: "statement", intervalMs: 5, logger, now: () => now })).prune(1)).toBe(0);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
