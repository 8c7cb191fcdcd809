import { createSessionsApi, openStore, writeApiReply, type Store } from "@airlock/gateway";
import { createLogger } from "@airlock/runtime";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRecorder } from "../../gateway/src/recording/recorder.js";
import { cli } from "./support/cli.js";

const dir = mkdtempSync(join(tmpdir(), "airlock-sessions-cli-"));
const config = join(dir, "gateway.yaml");
const recordings = join(dir, "recordings");
const logger = createLogger({ name: "sessions-cli-test", level: "silent", destination: { write: () => undefined } });
const reviewerKey = randomBytes(18).toString("base64url");

/** The sessions the tests read: one of each kind of ending. */
const ids = { full: "s-full-0001", crashed: "s-crashed-0002", tampered: "s-tampered-0003" };
/** Time between two records of the full session. */
const STEP_MS = 40;

const offline = (...args: string[]) => cli([...args, "--config", config]);

/** A clock that moves `stepMs` on every reading: the recording's `at` of each record. */
function clock(start: Date, stepMs: number): () => Date {
  let time = start.getTime() - stepMs;
  return () => new Date((time += stepMs));
}

/** A session with the statements of a CI job: a read with rows, a denied DROP, a reviewed insert. */
async function recordFull(store: Store): Promise<void> {
  const id = ids.full;
  const startedAt = new Date("2030-01-02T03:04:05.000Z");
  await store.startSession({ id, subject: "repo:acme/api:ref:refs/heads/main", issuer: "ci", groups: ["feature-test"], connection: "orders", transport: "tunnel", clientAddress: "127.0.0.1:50432", gatewayId: "gw-1", startedAt });
  const recording = await (await createRecorder({ gatewayId: `test-${randomUUID()}`, dir: recordings, fsync: "statement", intervalMs: 5, logger, now: clock(startedAt, STEP_MS) })).open(id, startedAt);
  await store.setSessionRecording(id, recording.path);
  await recording.append({
    type: "session_start",
    session: id,
    gateway: "gw-1",
    connection: "orders",
    transport: "tunnel",
    client: "127.0.0.1:50432",
    identity: { subject: "repo:acme/api:ref:refs/heads/main", issuer: "ci", issuerUrl: "https://token.actions.githubusercontent.com", groups: ["feature-test"], claims: { repository: "acme/api", ref: "refs/heads/main" } },
    rules: ["tests-read", "ci-writes"],
  });
  const decide = async (at: number, sql: string, effect: "allow" | "deny" | "review", classes: string[], reasons: string[], reviewId?: string) =>
    store.recordDecision({ id: `d-${at}`, sessionId: id, at: new Date(startedAt.getTime() + at), sql, classes, effect, rule: "tests-read", reasons, ...(reviewId === undefined ? {} : { reviewId }) });

  await recording.append({ type: "statement", protocol: "simple", sql: "select id, email, note\n  from customers", classes: ["read"], effect: "allow", rule: "tests-read", reasons: [] });
  await decide(1, "select id, email, note from customers", "allow", ["read"], []);
  const rows = Array.from({ length: 12 }, (_, index) => [String(index + 1), "[redacted]", index === 0 ? `long ${"x".repeat(100)}` : index === 1 ? null : "short"]);
  recording.note({ type: "result", columns: ["id", "email", "note"], rows, rowCount: 25, tag: "SELECT 25", bytes: 1234, ms: 1.5 });

  await recording.append({ type: "statement", protocol: "simple", sql: "drop table customers", classes: ["ddl"], effect: "deny", rule: "tests-read", reasons: ["ddl: deny by policy `tests-read`"] });
  await decide(2, "drop table customers", "deny", ["ddl"], ["ddl: deny by policy `tests-read`"]);
  recording.note({ type: "result", rows: [], rowCount: 0, error: { code: "42501", message: "statement denied by policy" }, bytes: 80, ms: 0 });

  await recording.append({ type: "statement", protocol: "extended", sql: "insert into orders (note) values ($1)", classes: ["write"], effect: "review", rule: "ci-writes", reasons: ["write requires review by policy `ci-writes`"] });
  await decide(3, "insert into orders (note) values ($1)", "review", ["write"], ["write requires review by policy `ci-writes`"], "r-1");
  recording.note({ type: "bind", portal: "", statement: "s1", params: ["hello", null] });
  recording.note({ type: "notice", code: "01000", message: "airlock: statement held for review r-1" });
  recording.note({ type: "review", review: "r-1", status: "approved", actions: [{ reviewer: "alice", action: "approve", reason: "looks fine", at: "2030-01-02T03:04:06.000Z" }] });
  recording.note({ type: "result", rows: [], rowCount: 1, tag: "INSERT 0 1", bytes: 20, ms: 3 });
  const seal = await recording.finish({ type: "session_end", outcome: "client_closed", statements: 3, ms: 400 });
  await store.endSession(id, new Date(startedAt.getTime() + 400), "client_closed", seal);
}

/** A session on another connection whose gateway was killed mid-write. */
async function recordCrashed(store: Store): Promise<void> {
  const id = ids.crashed;
  const startedAt = new Date("2030-01-03T10:00:00.000Z");
  await store.startSession({ id, subject: "repo:acme/web", issuer: "ci", groups: [], connection: "billing", transport: "native", clientAddress: "10.0.0.7:41000", gatewayId: "gw-2", startedAt });
  const recording = await (await createRecorder({ gatewayId: `test-${randomUUID()}`, dir: recordings, fsync: "statement", intervalMs: 5, logger, now: clock(startedAt, 10) })).open(id, startedAt);
  await store.setSessionRecording(id, recording.path);
  await recording.append({ type: "session_start", session: id, gateway: "gw-2", connection: "billing", transport: "native", client: "10.0.0.7:41000", identity: { subject: "repo:acme/web", issuer: "ci", groups: [], claims: {} }, rules: ["web-read"] });
  await recording.append({ type: "statement", protocol: "simple", sql: "select 1", classes: ["read"], effect: "allow", rule: "web-read", reasons: [] });
  await store.recordDecision({ id: "d-crashed", sessionId: id, at: startedAt, sql: "select 1", classes: ["read"], effect: "allow", rule: "web-read", reasons: [] });
  recording.note({ type: "result", columns: ["?column?"], rows: [["1"]], rowCount: 1, tag: "SELECT 1", bytes: 40, ms: 0.2 });
  await recording.finish({ type: "session_end", outcome: "client_closed", statements: 1, ms: 30 });
  // The kill: the last record is torn, and the gateway's next start marks the session abandoned.
  const text = readFileSync(recording.path, "utf8");
  writeFileSync(recording.path, text.slice(0, text.lastIndexOf("\n", text.length - 2) + 30));
  await store.endAbandonedSessions("gw-2", new Date("2030-01-03T11:00:00.000Z"));
}

/** A session whose seventh record was changed after the fact. */
async function recordTampered(store: Store): Promise<void> {
  const id = ids.tampered;
  const startedAt = new Date("2030-01-04T08:00:00.000Z");
  await store.startSession({ id, subject: "repo:acme/api:ref:refs/heads/main", issuer: "ci", groups: ["feature-test"], connection: "orders", transport: "tunnel", clientAddress: "127.0.0.1:50999", gatewayId: "gw-1", startedAt });
  const recording = await (await createRecorder({ gatewayId: `test-${randomUUID()}`, dir: recordings, fsync: "statement", intervalMs: 5, logger, now: clock(startedAt, 10) })).open(id, startedAt);
  await store.setSessionRecording(id, recording.path);
  await recording.append({ type: "session_start", session: id, gateway: "gw-1", connection: "orders", transport: "tunnel", client: "127.0.0.1:50999", identity: { subject: "repo:acme/api:ref:refs/heads/main", issuer: "ci", groups: ["feature-test"], claims: {} }, rules: ["tests-read"] });
  for (let n = 1; n <= 5; n++) {
    await recording.append({ type: "statement", protocol: "simple", sql: `select balance from accounts where id = ${n}`, classes: ["read"], effect: "allow", rule: "tests-read", reasons: [] });
    recording.note({ type: "result", columns: ["balance"], rows: [[`${n}00`]], rowCount: 1, tag: "SELECT 1", bytes: 40, ms: 0.3 });
  }
  await store.recordDecision({ id: "d-tampered", sessionId: id, at: startedAt, sql: "select balance from accounts where id = 1", classes: ["read"], effect: "allow", rule: "tests-read", reasons: [] });
  const seal = await recording.finish({ type: "session_end", outcome: "client_closed", statements: 5, ms: 120 });
  await store.endSession(id, new Date("2030-01-04T08:01:00.000Z"), "client_closed", seal);
  // Record 7 is the third result: someone edits what the client saw.
  writeFileSync(recording.path, readFileSync(recording.path, "utf8").replace('[["300"]]', '[["999"]]'));
}

let server: Server;
let api = "";

beforeAll(async () => {
  writeFileSync(
    config,
    `store: sqlite:./state/airlock.db
recordings: ./recordings
identity:
  issuers:
    - { name: ci, issuer: "https://token.actions.githubusercontent.com", audience: airlock, jwks_file: ./jwks.json }
agents:
  - { name: vpc-a, key_sha256: ${"ab".repeat(32)} }
connections:
  - { name: orders, protocol: postgres, agent: vpc-a }
  - { name: billing, protocol: postgres, agent: vpc-a }
`,
  );
  const store = await openStore(`sqlite:${join(dir, "state", "airlock.db")}`);
  try {
    await recordFull(store);
    await recordCrashed(store);
    await recordTampered(store);
  } finally {
    await store.close();
  }

  // The same endpoints over HTTP, as the gateway serves them to reviewers.
  const served = await openStore(`sqlite:${join(dir, "state", "airlock.db")}`);
  const sessions = createSessionsApi({ store: served, recordingsDir: recordings });
  server = createServer((request, response) => {
    if (request.headers.authorization !== `Bearer ${reviewerKey}`) {
      writeApiReply(response, { status: 401, body: { error: { code: "unauthenticated", message: "the reviewer key was refused" } } });
      return;
    }
    const url = new URL(request.url ?? "/", "http://gateway");
    sessions.route(request.method ?? "GET", url.pathname, url.searchParams).then(
      (reply) => writeApiReply(response, reply ?? { status: 404, body: { error: { code: "not_found", message: "not found" } } }),
      (error: unknown) => writeApiReply(response, { status: 500, body: { error: { code: "internal", message: String(error) } } }),
    );
  });
  server.on("close", () => void served.close());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  if (server !== undefined) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  rmSync(dir, { recursive: true, force: true });
});

/** The session ids of `sessions list --json`. */
async function listed(...filters: string[]): Promise<string[]> {
  const result = await offline("sessions", "list", "--json", ...filters);
  expect(result).toMatchObject({ status: 0, err: "" });
  return (JSON.parse(result.out) as { id: string }[]).map((session) => session.id);
}

describe("airlock sessions list", () => {
  it("prints a table of sessions newest first", async () => {
    const result = await offline("sessions", "list");
    expect(result.err).toBe("");
    expect(result.status).toBe(0);
    const lines = result.out.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^SESSION\s+STARTED\s+DURATION\s+OUTCOME\s+CONNECTION\s+STATEMENTS\s+SUBJECT$/);
    expect(lines.slice(1).map((line) => line.split(/\s+/)[0])).toEqual([ids.tampered, ids.crashed, ids.full]);
    expect(lines[3]).toMatch(/^s-full-0001\s+2030-01-02T03:04:05Z\s+400ms\s+client_closed\s+orders\s+3 \(1 denied, 1 reviewed\)\s+repo:acme\/api:ref:refs\/heads\/main$/);
    expect(lines[2]).toMatch(/^s-crashed-0002\s+2030-01-03T10:00:00Z\s+1h00m\s+abandoned\s+billing\s+1\s+repo:acme\/web$/);
  });

  it("filters by subject, connection, time, decision and count", async () => {
    expect(await listed()).toEqual([ids.tampered, ids.crashed, ids.full]);
    expect(await listed("--subject", "repo:acme/web")).toEqual([ids.crashed]);
    expect(await listed("--connection", "orders")).toEqual([ids.tampered, ids.full]);
    expect(await listed("--from", "2030-01-03T00:00:00Z")).toEqual([ids.tampered, ids.crashed]);
    expect(await listed("--to", "2030-01-03T00:00:00Z")).toEqual([ids.full]);
    expect(await listed("--from", "2030-01-03T00:00:00Z", "--to", "2030-01-04T00:00:00Z")).toEqual([ids.crashed]);
    expect(await listed("--decision", "deny")).toEqual([ids.full]);
    expect(await listed("--decision", "review")).toEqual([ids.full]);
    expect(await listed("--decision", "allow", "--connection", "billing")).toEqual([ids.crashed]);
    expect(await listed("--limit", "1")).toEqual([ids.tampered]);
    expect(await offline("sessions", "list", "--subject", "nobody")).toEqual({ status: 0, out: "no sessions\n", err: "" });
  });

  it("prints sessions as JSON with ISO dates", async () => {
    const result = await offline("sessions", "list", "--json", "--subject", "repo:acme/web");
    expect(JSON.parse(result.out)).toEqual([
      {
        id: ids.crashed,
        subject: "repo:acme/web",
        issuer: "ci",
        groups: [],
        connection: "billing",
        transport: "native",
        clientAddress: "10.0.0.7:41000",
        gatewayId: "gw-2",
        startedAt: "2030-01-03T10:00:00.000Z",
        endedAt: "2030-01-03T11:00:00.000Z",
        outcome: "abandoned",
        statements: 1,
        denied: 0,
        reviewed: 0,
        recording: {},
      },
    ]);
  });

  it("refuses bad filters with one line and status 2", async () => {
    for (const [args, message] of [
      [["--decision", "maybe"], /--decision `maybe` is not one of allow, deny, review/],
      [["--from", "last week"], /--from `last week` is not an ISO 8601 time/],
      [["--limit", "0"], /--limit `0` is not an integer from 1 to 10000/],
      [["--color"], /Unknown option '--color'/],
    ] as const) {
      const result = await offline("sessions", "list", ...args);
      expect(result.status).toBe(2);
      expect(result.err).toMatch(message);
      expect(result.err.trimEnd().split("\n")).toHaveLength(1);
    }
  });
});

describe("airlock sessions verify", () => {
  it("passes an untouched recording that ended normally", async () => {
    expect(await offline("sessions", "verify", ids.full)).toEqual({ status: 0, out: "ok: 11 records, ended normally\n", err: "" });
  });

  it("passes a crashed session's recording as ended abruptly", async () => {
    expect(await offline("sessions", "verify", ids.crashed)).toEqual({ status: 0, out: "ok: 3 records, ended abruptly (no session_end)\n", err: "" });
  });

  it("fails a changed recording with status 1, naming the first bad record", async () => {
    const result = await offline("sessions", "verify", ids.tampered);
    expect(result.status).toBe(1);
    expect(result.out).toBe("");
    expect(result.err).toBe(`airlock sessions: the recording of session \`${ids.tampered}\` is not intact: record 7: its content does not match its hash (the record was changed)\n`);
    const json = await offline("sessions", "verify", ids.tampered, "--json");
    expect(json.status).toBe(1);
    expect(JSON.parse(json.out)).toEqual({ ok: false, records: 6, ended: false, sealed: true, problem: { record: 7, reason: "its content does not match its hash (the record was changed)" } });
    expect(JSON.parse((await offline("sessions", "verify", ids.full, "--json")).out)).toEqual({ ok: true, records: 11, ended: true, sealed: true });
  });

  it("says so when there is no such session", async () => {
    expect(await offline("sessions", "verify", "s-nope")).toEqual({ status: 1, out: "", err: "airlock sessions: no session is named `s-nope`\n" });
    expect(await offline("sessions", "verify")).toMatchObject({ status: 2, err: expect.stringMatching(/expected the id of the session to verify/) });
  });
});

describe("airlock replay", () => {
  it("shows the session as it happened: who, statements, decisions, results, reviews, timings, the end", async () => {
    const result = await offline("replay", ids.full);
    expect(result.err).toBe("");
    expect(result.status).toBe(0);
    const out = result.out;
    expect(out).toContain(`session ${ids.full}\n`);
    expect(out).toMatch(/^identity: +repo:acme\/api:ref:refs\/heads\/main$/m);
    expect(out).toMatch(/^issuer: +ci \(https:\/\/token\.actions\.githubusercontent\.com\)$/m);
    expect(out).toMatch(/^groups: +feature-test$/m);
    expect(out).toMatch(/^claims: +\{"repository":"acme\/api","ref":"refs\/heads\/main"\}$/m);
    expect(out).toMatch(/^connection: +orders \(airlock connect\)$/m);
    expect(out).toMatch(/^client: +127\.0\.0\.1:50432$/m);
    expect(out).toMatch(/^policies: +tests-read, ci-writes$/m);
    // Each record at its offset from the session's start.
    expect(out).toMatch(/^ +\+0\.040s {2}statement \(simple\):\n {14}select id, email, note\n {16}from customers\n {12}=> ALLOW by tests-read \[read\]$/m);
    expect(out).toMatch(/^ +\+0\.080s {2}result SELECT 25: 25 rows, 1\.5 ms, 1234 bytes$/m);
    expect(out).toMatch(/^ {14}id +\| email +\| note$/m);
    expect(out).toMatch(/^ {14}1 +\| \[redacted\] \| long x+…$/m);
    expect(out).toMatch(/^ {14}2 +\| \[redacted\] \| NULL$/m);
    expect(out).toMatch(/^ {14}… 15 more rows$/m);
    expect(out).not.toMatch(/^ {14}11 /m);
    expect(out).toMatch(/=> DENY by tests-read \[ddl\]\n {15}ddl: deny by policy `tests-read`/);
    expect(out).toMatch(/error 42501: statement denied by policy \(0 rows, 0 ms, 80 bytes\)/);
    expect(out).toMatch(/statement \(extended\):\n {14}insert into orders \(note\) values \(\$1\)\n {12}=> REVIEW by ci-writes \[write\]/);
    expect(out).toContain("bind unnamed portal to statement `s1`: ('hello', NULL)");
    expect(out).toContain("notice 01000: airlock: statement held for review r-1");
    expect(out).toMatch(/review r-1: approved\n {15}alice approved: looks fine/);
    expect(out).toMatch(/result INSERT 0 1: 1 row, 3 ms, 20 bytes/);
    expect(out).toMatch(/^ +\+0\.400s {2}session ended: client_closed, 3 statements, 400ms$/m);
    // Statements in the order the client sent them.
    expect(out.indexOf("select id, email")).toBeLessThan(out.indexOf("drop table"));
    expect(out.indexOf("drop table")).toBeLessThan(out.indexOf("insert into orders"));
  });

  it("prints the whole recording as a JSON array with --json", async () => {
    const result = await offline("replay", ids.full, "--json");
    expect(result.status).toBe(0);
    const records = JSON.parse(result.out) as { seq: number; type: string; hash: string; prev: string }[];
    expect(records.map((record) => record.type)).toEqual(["session_start", "statement", "result", "statement", "result", "statement", "bind", "notice", "review", "result", "session_end"]);
    expect(records.map((record) => record.seq)).toEqual(Array.from({ length: 11 }, (_, index) => index + 1));
    expect(records[2]).toMatchObject({ rows: expect.arrayContaining([["2", "[redacted]", null]]), rowCount: 25 });
    expect(records[1]?.hash).toBe(records[2]?.prev);
  });

  it("says when a session ended abruptly, and warns when its recording does not verify", async () => {
    const crashed = await offline("replay", ids.crashed);
    expect(crashed.status).toBe(0);
    expect(crashed.err).toBe("");
    expect(crashed.out).toMatch(/connection: +billing \(native listener\)/);
    expect(crashed.out).toContain("result SELECT 1: 1 row");
    expect(crashed.out).toContain("the recording stops without session_end: the session ended abruptly (the store says: abandoned)");
    expect(crashed.out).not.toContain("session ended:");

    const tampered = await offline("replay", ids.tampered);
    expect(tampered.status).toBe(0);
    expect(tampered.err).toBe("airlock replay: warning: the recording does not verify: record 7: its content does not match its hash (the record was changed)\n");
    expect(tampered.out).toContain("999");
  });

  it("replays in real time with --speed 1, proportionally faster with more", async () => {
    // The full session spans 400 ms of recorded time.
    let started = performance.now();
    expect((await offline("replay", ids.full, "--speed", "2")).status).toBe(0);
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
    started = performance.now();
    expect((await offline("replay", ids.full, "--speed", "1")).status).toBe(0);
    expect(performance.now() - started).toBeGreaterThanOrEqual(390);
    expect(await offline("replay", ids.full, "--speed=-1")).toMatchObject({ status: 2, err: expect.stringMatching(/--speed `-1` is not a number of 0 or more/) });
    expect(await offline("replay", ids.full, "--speed", "fast")).toMatchObject({ status: 2, err: expect.stringMatching(/--speed `fast` is not a number/) });
    expect(await offline("replay", ids.full, "--speed", "2", "--json")).toMatchObject({ status: 2 });
  });
});

describe("where sessions are read from", () => {
  it("reads the same sessions through the HTTP API with a reviewer key", async () => {
    const env = { AIRLOCK_REVIEWER_KEY: reviewerKey };
    const overApi = await cli(["sessions", "list", "--api", api, "--json"], env);
    expect(overApi.status).toBe(0);
    expect(JSON.parse(overApi.out)).toEqual(JSON.parse((await offline("sessions", "list", "--json")).out));
    expect(await cli(["sessions", "verify", ids.full, "--api", api], env)).toEqual({ status: 0, out: "ok: 11 records, ended normally\n", err: "" });
    expect(await cli(["sessions", "verify", ids.tampered, "--api", api], env)).toMatchObject({ status: 1, err: expect.stringMatching(/record 7: its content does not match its hash/) });
    expect((await cli(["replay", ids.full, "--api", api], env)).out).toBe((await offline("replay", ids.full)).out);
    expect((await cli(["replay", ids.full, "--api", api, "--json"], env)).out).toBe((await offline("replay", ids.full, "--json")).out);
    const keyFile = join(dir, "reviewer.key");
    writeFileSync(keyFile, `${reviewerKey}\n`);
    expect((await cli(["sessions", "list", "--api", api, "--key-file", keyFile])).status).toBe(0);
  });

  it("says what is wrong in one line", async () => {
    expect(await cli(["sessions", "list", "--api", api], { AIRLOCK_REVIEWER_KEY: "wrong" })).toEqual({ status: 1, out: "", err: "airlock sessions: the reviewer key was refused (HTTP 401, unauthenticated)\n" });
    expect(await cli(["replay", "s-nope", "--api", api], { AIRLOCK_REVIEWER_KEY: reviewerKey })).toEqual({ status: 1, out: "", err: "airlock replay: no session is named `s-nope` (HTTP 404, not_found)\n" });
    expect(await cli(["sessions", "list"])).toMatchObject({ status: 2, err: expect.stringMatching(/--api URL \(with a reviewer key\) or --config gateway.yaml is required/) });
    expect(await cli(["sessions", "list", "--api", api])).toMatchObject({ status: 2, err: expect.stringMatching(/a reviewer key is needed/) });
    expect(await cli(["sessions", "list", "--api", api, "--config", config])).toMatchObject({ status: 2, err: expect.stringMatching(/not both/) });
    expect(await cli(["sessions", "frobnicate", "--config", config])).toMatchObject({ status: 2, err: expect.stringMatching(/unknown action `frobnicate`/) });
    expect(await cli(["sessions", "list", "--config", join(dir, "missing.yaml")])).toMatchObject({ status: 1, err: expect.stringMatching(/missing\.yaml/) });

    const empty = join(dir, "empty.yaml");
    writeFileSync(empty, readFileSync(config, "utf8").replace("sqlite:./state/airlock.db", "sqlite:./nowhere/airlock.db"));
    const result = await cli(["sessions", "list", "--config", empty]);
    expect(result).toMatchObject({ status: 1, err: expect.stringMatching(/^airlock sessions: no store at `.*nowhere\/airlock\.db`: has a gateway run with `.*empty\.yaml`\?\n$/) });
  });

  it("prints usage with --help", async () => {
    expect((await cli(["sessions", "--help"])).out).toMatch(/airlock sessions verify <session>/);
    expect((await cli(["replay", "--help"])).out).toMatch(/--speed 1 replays in real time/);
    expect((await cli(["help"])).out).toMatch(/sessions +list recorded sessions/);
  });
});
