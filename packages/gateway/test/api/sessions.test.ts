import { createLogger } from "@airlock/runtime";
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSessionsApi, verifySessionRecording, writeApiReply, type ApiReply, type SessionsApi } from "../../src/api/sessions.js";
import { createRecorder, type Recorder } from "../../src/recording/recorder.js";
import { openStore, type SessionRow, type Store } from "../../src/store/index.js";

const logger = createLogger({ name: "sessions-api-test", level: "silent", destination: { write: () => undefined } });

let root: string;
let recordings: string;
let store: Store;
let api: SessionsApi;
/** Recordings of sessions left open, finished (their files closed) when the tests end. */
const recorders: Recorder[] = [];
const unfinished: { finish(event: Record<string, unknown>): Promise<unknown> }[] = [];

/** A recorded session in the store: started, recorded, and (unless `open`) ended and sealed. */
async function session(options: { subject?: string; connection?: string; startedAt?: Date; effects?: ("allow" | "deny" | "review")[]; end?: "normal" | "abandoned" | "open" } = {}): Promise<{ id: string; path: string; seal?: { records: number; lastHash: string } }> {
  const id = `s-${randomUUID()}`;
  const startedAt = options.startedAt ?? new Date("2030-01-02T03:04:05.000Z");
  const gatewayId = `gw-${id}`;
  await store.startSession({ id, subject: options.subject ?? "repo:acme/api", issuer: "ci", groups: ["feature-test"], connection: options.connection ?? "orders", transport: "tunnel", clientAddress: "127.0.0.1:5000", gatewayId, startedAt });
  const recorder = await createRecorder({ gatewayId: `test-${randomUUID()}`, dir: recordings, fsync: "statement", intervalMs: 5, logger, now: () => new Date(startedAt.getTime() + 5) });
  recorders.push(recorder);
  const recording = await recorder.open(id, startedAt);
  await store.setSessionRecording(id, recording.path);
  await recording.append({ type: "session_start", session: id, connection: options.connection ?? "orders" });
  for (const [index, effect] of (options.effects ?? ["allow"]).entries()) {
    const sql = `select ${index}`;
    await recording.append({ type: "statement", protocol: "simple", sql, classes: ["read"], effect, reasons: [] });
    await store.recordDecision({ id: `d-${randomUUID()}`, sessionId: id, at: new Date(startedAt.getTime() + index + 1), sql, classes: ["read"], effect, ...(effect === "allow" ? { rule: "tests-read" } : {}), reasons: effect === "allow" ? [] : [`read: ${effect} by policy`] });
  }
  if (options.end === "open") {
    unfinished.push(recording);
    return { id, path: recording.path };
  }
  if (options.end === "abandoned") {
    await recording.finish({ type: "session_end", outcome: "x", statements: 0, ms: 0 });
    // A crash: the file stops before session_end, and the store marks the session abandoned at restart.
    const lines = (await readFile(recording.path, "utf8")).split("\n");
    await writeFile(recording.path, `${lines.slice(0, -2).join("\n")}\n${(lines.at(-2) ?? "").slice(0, 25)}`);
    await store.endAbandonedSessions(gatewayId, new Date(startedAt.getTime() + 60_000));
    return { id, path: recording.path };
  }
  const seal = await recording.finish({ type: "session_end", outcome: "client_closed", statements: options.effects?.length ?? 1, ms: 20 });
  await store.endSession(id, new Date(startedAt.getTime() + 60_000), "client_closed", seal);
  return { id, path: recording.path, seal };
}

async function get(path: string, query = ""): Promise<ApiReply> {
  const reply = await api.route("GET", path, new URLSearchParams(query));
  if (reply === undefined) throw new Error(`no route for ${path}`);
  return reply;
}

function body(reply: ApiReply): Record<string, unknown> {
  if ("file" in reply) throw new Error("a file reply");
  return reply.body as Record<string, unknown>;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "airlock-sessions-api-"));
  recordings = join(root, "recordings");
  await mkdir(recordings);
  store = await openStore(`sqlite:${join(root, "airlock.db")}`);
  api = createSessionsApi({ store, recordingsDir: recordings, flush: async (path) => { for (const recorder of recorders) await recorder.flush(path); } });
});
afterAll(async () => {
  for (const recording of unfinished) await recording.finish({ type: "session_end", outcome: "test_over", statements: 0, ms: 0 });
  await store?.close();
  await rm(root, { recursive: true, force: true });
});

describe("GET /api/v1/sessions", () => {
  it("lists sessions newest first with ISO dates, by every filter", async () => {
    const subject = `subject-${randomUUID()}`;
    const a = await session({ subject, startedAt: new Date("2031-05-01T10:00:00.000Z"), effects: ["allow"] });
    const b = await session({ subject, connection: "billing", startedAt: new Date("2031-05-02T10:00:00.000Z"), effects: ["allow", "deny"] });
    const c = await session({ subject, startedAt: new Date("2031-05-03T10:00:00.000Z"), effects: ["review"], end: "open" });
    const ids = async (query: string): Promise<string[]> => {
      const listed = body(await get("/api/v1/sessions", `subject=${encodeURIComponent(subject)}&${query}`)).sessions as { id: string }[];
      return listed.map((row) => row.id);
    };

    const listed = body(await get("/api/v1/sessions", `subject=${encodeURIComponent(subject)}`)).sessions as Record<string, unknown>[];
    expect(listed.map((row) => row.id)).toEqual([c.id, b.id, a.id]);
    expect(listed[1]).toEqual({
      id: b.id,
      subject,
      issuer: "ci",
      groups: ["feature-test"],
      connection: "billing",
      transport: "tunnel",
      clientAddress: "127.0.0.1:5000",
      gatewayId: `gw-${b.id}`,
      startedAt: "2031-05-02T10:00:00.000Z",
      endedAt: "2031-05-02T10:01:00.000Z",
      outcome: "client_closed",
      statements: 2,
      denied: 1,
      reviewed: 0,
      recording: { records: 4, lastHash: b.seal?.lastHash },
    });
    // The recording's path stays on the gateway; an open session has no end yet.
    expect(JSON.stringify(listed)).not.toContain(recordings);
    expect(listed[0]).not.toHaveProperty("endedAt");
    expect(listed[0]?.recording).toEqual({});

    expect(await ids("connection=billing")).toEqual([b.id]);
    expect(await ids("from=2031-05-02")).toEqual([c.id, b.id]);
    expect(await ids("to=2031-05-02T10:00:00Z")).toEqual([a.id]);
    expect(await ids("from=2031-05-01T12:00:00%2B01:00&to=2031-05-03T00:00:00Z")).toEqual([b.id]);
    expect(await ids("decision=deny")).toEqual([b.id]);
    expect(await ids("decision=review")).toEqual([c.id]);
    expect(await ids("limit=2")).toEqual([c.id, b.id]);
  });

  it("refuses bad filters with 400 and says which", async () => {
    for (const [query, message] of [
      ["from=yesterday", /from `yesterday` is not an ISO 8601/],
      ["to=2031-05-02T10:00:00", /to `2031-05-02T10:00:00` is not an ISO 8601 date, or date and time with Z or an offset/],
      ["decision=maybe", /decision `maybe` is not one of allow, deny, review/],
      ["limit=0", /limit `0` is not an integer from 1 to 10000/],
      ["limit=1.5", /limit/],
      ["limit=10001", /limit/],
      ["subject=", /subject: expected a value/],
      ["user=alice", /unknown filter `user`/],
    ] as const) {
      const reply = await get("/api/v1/sessions", query);
      expect(reply.status, query).toBe(400);
      expect(body(reply), query).toEqual({ error: { code: "bad_request", message: expect.stringMatching(message) } });
    }
  });

  it("answers only its own paths, and only GET", async () => {
    expect(await api.route("GET", "/api/v1/reviews", new URLSearchParams())).toBeUndefined();
    expect(await api.route("GET", "/api/v1/sessionsx", new URLSearchParams())).toBeUndefined();
    expect(await api.route("GET", "/api/v1/sessions/x/recording/more", new URLSearchParams())).toBeUndefined();
    expect(await api.route("GET", "/api/v1/sessions/x/other", new URLSearchParams())).toBeUndefined();
    expect(await api.route("DELETE", "/api/v1/sessions/x", new URLSearchParams())).toMatchObject({ status: 405, body: { error: { code: "method_not_allowed" } } });
    expect((await api.route("GET", "/api/v1/sessions/", new URLSearchParams()))?.status).toBe(200);
  });
});

describe("GET /api/v1/sessions/:id", () => {
  it("gives the session and its decisions", async () => {
    const { id } = await session({ effects: ["allow", "deny"] });
    const reply = await get(`/api/v1/sessions/${encodeURIComponent(id)}`);
    expect(reply.status).toBe(200);
    const { session: row, decisions } = body(reply) as { session: { id: string }; decisions: Record<string, unknown>[] };
    expect(row.id).toBe(id);
    expect(decisions).toEqual([
      { id: expect.any(String), at: "2030-01-02T03:04:05.001Z", sql: "select 0", classes: ["read"], effect: "allow", rule: "tests-read", reasons: [] },
      { id: expect.any(String), at: "2030-01-02T03:04:05.002Z", sql: "select 1", classes: ["read"], effect: "deny", reasons: ["read: deny by policy"] },
    ]);
  });

  it("answers 404 for an unknown session on every endpoint, and 400 for a malformed id", async () => {
    for (const leaf of ["", "/recording", "/verify"]) {
      expect(await get(`/api/v1/sessions/no-such${leaf}`)).toEqual({ status: 404, body: { error: { code: "not_found", message: "no session is named `no-such`" } } });
    }
    expect((await get("/api/v1/sessions/%E0%A4%A")).status).toBe(400);
  });
});

describe("GET /api/v1/sessions/:id/recording", () => {
  it("gives the recording's file as JSON lines", async () => {
    const { id, path } = await session();
    const reply = await get(`/api/v1/sessions/${id}/recording`);
    expect(reply).toEqual({ status: 200, file: path, contentType: "application/x-ndjson" });
  });

  it("never serves a file outside the recordings folder, whatever the store says", async () => {
    const outside = join(root, "secret.txt");
    await writeFile(outside, "not a recording");
    const { id } = await session();
    const link = join(recordings, "link.jsonl");
    await symlink(outside, link);
    for (const path of [outside, join(recordings, "..", "secret.txt"), link, recordings, join(recordings, "missing.jsonl"), "/etc/passwd"]) {
      await store.setSessionRecording(id, path);
      for (const leaf of ["recording", "verify"]) {
        const reply = await get(`/api/v1/sessions/${id}/${leaf}`);
        expect({ path, reply }).toEqual({ path, reply: { status: 404, body: { error: { code: "not_found", message: `the recording of session \`${id}\` is not available on this gateway` } } } });
      }
    }
  });

  it("answers 404 for a session without a recording", async () => {
    const id = `s-${randomUUID()}`;
    await store.startSession({ id, subject: "s", issuer: "i", groups: [], connection: "orders", transport: "native", clientAddress: "127.0.0.1:1", gatewayId: "gw", startedAt: new Date() });
    expect(body(await get(`/api/v1/sessions/${id}/recording`))).toEqual({ error: { code: "not_found", message: `session \`${id}\` has no recording` } });
  });
});

describe("GET /api/v1/sessions/:id/verify", () => {
  it("verifies an untouched recording against the store's seal", async () => {
    const { id } = await session({ effects: ["allow", "allow"] });
    expect(await get(`/api/v1/sessions/${id}/verify`)).toEqual({ status: 200, body: { ok: true, records: 4, ended: true, sealed: true } });
  });

  it("names the first bad record of a changed recording", async () => {
    const { id, path } = await session({ effects: ["allow", "allow"] });
    const text = await readFile(path, "utf8");
    await writeFile(path, text.replace("select 1", "select 7"));
    expect(body(await get(`/api/v1/sessions/${id}/verify`))).toEqual({
      ok: false,
      records: 2,
      ended: false,
      sealed: true,
      problem: { record: 3, reason: "its content does not match its hash (the record was changed)" },
    });
  });

  it("catches records cut from the end of a sealed recording, at a line boundary or mid-line", async () => {
    const whole = await session({ effects: ["allow", "allow"] });
    const lines = (await readFile(whole.path, "utf8")).split("\n");
    await writeFile(whole.path, `${lines.slice(0, 3).join("\n")}\n`);
    expect(body(await get(`/api/v1/sessions/${whole.id}/verify`))).toMatchObject({ ok: false, records: 3, ended: false, problem: { record: 3, reason: expect.stringMatching(/cut from the end/) } });

    const torn = await session({ effects: ["allow", "allow"] });
    const text = await readFile(torn.path, "utf8");
    await writeFile(torn.path, text.slice(0, text.length - 20));
    expect(body(await get(`/api/v1/sessions/${torn.id}/verify`))).toEqual({ ok: false, records: 3, ended: false, sealed: true, problem: { record: 4, reason: "the line is not valid JSON" } });
  });

  it("passes a crashed session's recording as ended abruptly, torn last line and all", async () => {
    const { id } = await session({ end: "abandoned" });
    expect(await get(`/api/v1/sessions/${id}/verify`)).toEqual({ status: 200, body: { ok: true, records: 2, ended: false, sealed: false } });
    const open = await session({ end: "open" });
    expect(body(await get(`/api/v1/sessions/${open.id}/verify`))).toEqual({ ok: true, records: 2, ended: false, sealed: false });
  });

  it("verifySessionRecording checks the chain alone when the store kept no seal", () => {
    const row = { id: "s-1", recording: { path: "/x" } } as SessionRow;
    expect(verifySessionRecording(row, "")).toEqual({ ok: true, records: 0, ended: false, sealed: false });
    expect(verifySessionRecording({ ...row, recording: { path: "/x", records: 2, lastHash: "ab" } }, "")).toMatchObject({ ok: false, sealed: true, problem: { record: expect.any(Number) } });
  });
});

describe("writeApiReply", () => {
  let server: Server;
  let replies: ApiReply[] = [];
  let base = "";
  beforeAll(async () => {
    server = createServer((_request, response) => writeApiReply(response, replies.shift() ?? { status: 500, body: {} }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it("sends JSON, streams a file with its content type, and turns a vanished file into a 404", async () => {
    const { path } = await session();
    replies = [{ status: 200, body: { ok: true } }, { status: 200, file: path, contentType: "application/x-ndjson" }, { status: 200, file: join(recordings, "gone.jsonl"), contentType: "application/x-ndjson" }];
    const json = await fetch(base);
    expect([json.status, json.headers.get("content-type"), json.headers.get("cache-control"), await json.json()]).toEqual([200, "application/json", "no-store", { ok: true }]);
    const file = await fetch(base);
    expect([file.status, file.headers.get("content-type"), await file.text()]).toEqual([200, "application/x-ndjson", await readFile(path, "utf8")]);
    const gone = await fetch(base);
    expect(gone.status).toBe(404);
    expect(await gone.json()).toMatchObject({ error: { code: "not_found" } });
  });
});
