import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ABANDONED_OUTCOME,
  StoreError,
  type DecisionRow,
  type GrantRow,
  type ReviewRow,
  type SessionRow,
  type Store,
  type StoreErrorCode,
  type StoreEvent,
} from "../../src/store/index.js";

/** Strings that trip naive array encodings (quotes, separators, braces, NULL, empty, non-ASCII). */
export const AWKWARD_STRINGS = ["plain", "a,b", 'quote"d', "back\\slash", "{brace}", "", "NULL", "ünïcødé ✓", "new\nline", "'single'"];

/** A short unique token, so tests sharing one database never see each other's rows. */
export function unique(): string {
  return randomUUID().replaceAll("-", "").slice(0, 12);
}

/** Awaits the rejection of `promise` and checks it is a well-formed StoreError with `code`. */
export async function storeError(promise: Promise<unknown>, code: StoreErrorCode): Promise<StoreError> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(StoreError);
  const { message } = error as StoreError;
  expect({ code: (error as StoreError).code, message }).toEqual({ code, message: expect.any(String) });
  expect(message).not.toMatch(/\.$/);
  // Our own words come before the first `: `; what follows may quote the driver.
  const own = message.replace(/`[^`]*`/g, "``").split(": ")[0] ?? "";
  const outsideBackticks = own.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, "");
  expect(outsideBackticks).toBe(outsideBackticks.toLowerCase());
  return error as StoreError;
}

/** Resolves with the first event `store` delivers that matches `predicate`; subscribe before acting. */
export function nextEvent(store: Store, predicate: (event: StoreEvent) => boolean, timeoutMs = 10_000): Promise<StoreEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`no matching store event within ${timeoutMs} ms`));
    }, timeoutMs);
    const unsubscribe = store.subscribe((event) => {
      if (!predicate(event)) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(event);
    });
  });
}

type SessionStart = Omit<SessionRow, "endedAt" | "outcome" | "statements" | "denied" | "reviewed">;
type ReviewStart = Omit<ReviewRow, "status" | "actions" | "decidedAt">;

export function sessionStart(overrides: Partial<SessionStart> = {}): SessionStart {
  return {
    id: `s-${unique()}`,
    subject: `repo:acme/api:${unique()}`,
    issuer: "https://token.actions.githubusercontent.com",
    groups: ["feature-test", "dba"],
    connection: "orders",
    transport: "tunnel",
    clientAddress: "127.0.0.1:50432",
    gatewayId: "gw-1",
    startedAt: new Date("2030-01-02T03:04:05.678Z"),
    ...overrides,
  };
}

export function reviewStart(overrides: Partial<ReviewStart> = {}): ReviewStart {
  return {
    id: `r-${unique()}`,
    sessionId: `s-${unique()}`,
    subject: "repo:acme/api",
    connection: "orders",
    sql: "delete from customers where id = 42",
    classes: ["write"],
    rule: "dba",
    reasons: ["write requires review by policy `dba`"],
    reviewerGroups: ["dba"],
    approvalsRequired: 1,
    createdAt: new Date("2030-01-02T03:04:05.001Z"),
    expiresAt: new Date("2030-01-02T03:14:05.001Z"),
    gatewayId: "gw-1",
    kind: "statement",
    ...overrides,
  };
}

function minutes(base: Date, count: number): Date {
  return new Date(base.getTime() + count * 60_000);
}

/**
 * The behaviour every store backend must have. `open` opens a new store instance on the same
 * underlying database each time it is called (a second gateway, or the same one restarted).
 */
export function describeStoreContract(name: string, open: () => Promise<Store>): void {
  describe(`${name} store contract`, () => {
    let store: Store;
    const extra: Store[] = [];
    const openExtra = async (): Promise<Store> => {
      const opened = await open();
      extra.push(opened);
      return opened;
    };

    beforeAll(async () => {
      store = await open();
    });

    afterAll(async () => {
      await Promise.all([store?.close(), ...extra.map((opened) => opened.close())]);
    });

    it(`is a ${name} store`, () => {
      expect(store.kind).toBe(name);
    });

    it("opens again on the same database: migrations are idempotent and data is shared", async () => {
      const row = sessionStart();
      await store.startSession(row);
      const again = await openExtra();
      const third = await openExtra();
      expect(await again.getSession(row.id)).toMatchObject({ id: row.id, subject: row.subject });
      expect(await third.getSession(row.id)).toMatchObject({ id: row.id });
    });

    describe("sessions", () => {
      it("starts, reads and ends a session, round-tripping every field to the millisecond", async () => {
        const row = sessionStart({ groups: AWKWARD_STRINGS, transport: "native", clientAddress: "[::1]:61000" });
        await store.startSession(row);
        const started = await store.getSession(row.id);
        expect(started).toStrictEqual({ ...row, groups: AWKWARD_STRINGS, statements: 0, denied: 0, reviewed: 0 });
        expect(started?.startedAt.getTime()).toBe(row.startedAt.getTime());

        const endedAt = new Date("2030-01-02T03:09:59.999Z");
        await store.endSession(row.id, endedAt, "client_closed");
        const ended = await store.getSession(row.id);
        expect(ended).toStrictEqual({ ...row, statements: 0, denied: 0, reviewed: 0, endedAt, outcome: "client_closed" });

        // The first end stays.
        await store.endSession(row.id, new Date("2030-01-02T04:00:00.000Z"), "max_session");
        expect(await store.getSession(row.id)).toMatchObject({ endedAt, outcome: "client_closed" });
      });

      it("refuses a duplicate id, and ending an unknown session", async () => {
        const row = sessionStart();
        await store.startSession(row);
        const duplicate = await storeError(store.startSession({ ...row, subject: "someone-else" }), "conflict");
        expect(duplicate.message).toContain(row.id);
        expect(await store.getSession(row.id)).toMatchObject({ subject: row.subject });
        await storeError(store.endSession(`missing-${unique()}`, new Date(), "client_closed"), "not_found");
        expect(await store.getSession(`missing-${unique()}`)).toBeUndefined();
      });

      it("refuses misuse with a TypeError naming the argument", async () => {
        await expect(store.startSession(sessionStart({ startedAt: new Date("not a date") }))).rejects.toThrow(/row\.startedAt/);
        await expect(store.startSession({ ...sessionStart(), transport: "carrier-pigeon" as "native" })).rejects.toThrow(TypeError);
        await expect(store.listSessions({ limit: 0 })).rejects.toThrow(/filter\.limit/);
        await expect(store.listSessions({ limit: 1.5 })).rejects.toThrow(TypeError);
      });

      it("lists sessions newest first with every filter", async () => {
        const t = unique();
        const subject = `subject-${t}`;
        const other = `other-${t}`;
        const c1 = `c1-${t}`;
        const c2 = `c2-${t}`;
        const base = new Date("2041-06-01T12:00:00.000Z");
        const a = sessionStart({ id: `a-${t}`, subject, connection: c1, startedAt: minutes(base, 1) });
        const b = sessionStart({ id: `b-${t}`, subject, connection: c2, startedAt: minutes(base, 2) });
        const c = sessionStart({ id: `c-${t}`, subject, connection: c1, startedAt: minutes(base, 3) });
        const d = sessionStart({ id: `d-${t}`, subject, connection: c2, startedAt: minutes(base, 4) });
        const e = sessionStart({ id: `e-${t}`, subject: other, connection: c1, startedAt: new Date(minutes(base, 2).getTime() + 30_000) });
        for (const row of [c, a, e, d, b]) await store.startSession(row);
        const decide = (session: SessionStart, effect: DecisionRow["effect"], offset: number): Promise<void> =>
          store.recordDecision({
            id: `dec-${unique()}`,
            sessionId: session.id,
            at: new Date(session.startedAt.getTime() + offset),
            sql: "select 1",
            classes: ["read"],
            effect,
            reasons: [],
          });
        await decide(a, "allow", 1);
        await decide(b, "deny", 1);
        await decide(c, "review", 1);
        await decide(c, "allow", 2);
        await decide(e, "deny", 1);

        const ids = async (filter: Parameters<Store["listSessions"]>[0]): Promise<string[]> => (await store.listSessions(filter)).map((row) => row.id);
        expect(await ids({ subject })).toEqual([d.id, c.id, b.id, a.id]);
        expect(await ids({ subject: other })).toEqual([e.id]);
        expect(await ids({ connection: c1 })).toEqual([c.id, e.id, a.id]);
        expect(await ids({ subject, connection: c1 })).toEqual([c.id, a.id]);
        expect(await ids({ subject, from: minutes(base, 2) })).toEqual([d.id, c.id, b.id]);
        expect(await ids({ subject, to: minutes(base, 3) })).toEqual([b.id, a.id]);
        expect(await ids({ subject, from: minutes(base, 2), to: minutes(base, 4) })).toEqual([c.id, b.id]);
        expect(await ids({ from: base, to: minutes(base, 10) })).toEqual([d.id, c.id, e.id, b.id, a.id]);
        expect(await ids({ subject, decision: "allow" })).toEqual([c.id, a.id]);
        expect(await ids({ subject, decision: "deny" })).toEqual([b.id]);
        expect(await ids({ subject, decision: "review" })).toEqual([c.id]);
        expect(await ids({ connection: c1, decision: "deny" })).toEqual([e.id]);
        expect(await ids({ subject, limit: 2 })).toEqual([d.id, c.id]);
        expect(await ids({ subject: `nobody-${t}` })).toEqual([]);

        const [newest] = await store.listSessions({ subject, limit: 1 });
        expect(newest).toStrictEqual({ ...d, statements: 0, denied: 0, reviewed: 0 });
      });

      it("returns at most 100 sessions by default", async () => {
        const subject = `many-${unique()}`;
        const base = new Date("2042-01-01T00:00:00.000Z");
        const rows = Array.from({ length: 105 }, (_, index) => sessionStart({ subject, startedAt: new Date(base.getTime() + index * 1000) }));
        for (const row of rows) await store.startSession(row);
        const listed = await store.listSessions({ subject });
        expect(listed).toHaveLength(100);
        expect(listed[0]?.id).toBe(rows[104]?.id);
        expect(listed[99]?.id).toBe(rows[5]?.id);
        expect(await store.listSessions({ subject, limit: 500 })).toHaveLength(105);
      });

      it("keeps the recording's path, and the count and last hash a normal end seals it with", async () => {
        const row = sessionStart();
        await store.startSession(row);
        expect(await store.getSession(row.id)).not.toHaveProperty("recording");
        const path = `/var/lib/airlock/recordings/2030-01-02/${row.id} ünïcødé 'quoted'.jsonl`;
        await store.setSessionRecording(row.id, path);
        expect((await store.getSession(row.id))?.recording).toStrictEqual({ path });

        const endedAt = new Date("2030-01-02T03:09:59.999Z");
        const seal = { records: 2 ** 31 - 1, lastHash: "ab".repeat(32) };
        await store.endSession(row.id, endedAt, "client_closed", seal);
        const ended = { ...row, statements: 0, denied: 0, reviewed: 0, endedAt, outcome: "client_closed", recording: { path, ...seal } };
        expect(await store.getSession(row.id)).toStrictEqual(ended);
        expect(await store.listSessions({ subject: row.subject })).toStrictEqual([ended]);

        // The first end stays, seal and all.
        await store.endSession(row.id, new Date("2030-01-02T04:00:00.000Z"), "max_session", { records: 1, lastHash: "cd".repeat(32) });
        expect(await store.getSession(row.id)).toStrictEqual(ended);
        // A later path (the file was moved) replaces the first, and keeps the seal.
        await store.setSessionRecording(row.id, `${path}.moved`);
        expect((await store.getSession(row.id))?.recording).toStrictEqual({ path: `${path}.moved`, ...seal });
      });

      it("keeps only the path when a session ends without a seal, or was abandoned", async () => {
        const t = unique();
        const plain = sessionStart({ gatewayId: `gw-${t}` });
        const abandoned = sessionStart({ gatewayId: `gw-${t}` });
        for (const row of [plain, abandoned]) {
          await store.startSession(row);
          await store.setSessionRecording(row.id, `/recordings/${row.id}.jsonl`);
        }
        await store.endSession(plain.id, new Date("2030-01-02T03:05:00.000Z"), "client_closed");
        expect(await store.endAbandonedSessions(`gw-${t}`, new Date("2030-01-02T03:06:00.000Z"))).toBe(1);
        expect((await store.getSession(plain.id))?.recording).toStrictEqual({ path: `/recordings/${plain.id}.jsonl` });
        expect(await store.getSession(abandoned.id)).toMatchObject({ outcome: ABANDONED_OUTCOME, recording: { path: `/recordings/${abandoned.id}.jsonl` } });
        expect((await store.getSession(abandoned.id))?.recording).not.toHaveProperty("records");
      });

      it("refuses a recording of an unknown session, and a malformed path or seal with a TypeError naming it", async () => {
        const missing = `missing-${unique()}`;
        expect((await storeError(store.setSessionRecording(missing, "/recordings/x.jsonl"), "not_found")).message).toContain(missing);
        const row = sessionStart();
        await store.startSession(row);
        await expect(store.setSessionRecording(row.id, "")).rejects.toThrow(/path/);
        await expect(store.setSessionRecording(row.id, 42 as unknown as string)).rejects.toThrow(TypeError);
        await expect(store.endSession(row.id, new Date(), "client_closed", { records: -1, lastHash: "ab" })).rejects.toThrow(/recording\.records/);
        await expect(store.endSession(row.id, new Date(), "client_closed", { records: 1.5, lastHash: "ab" })).rejects.toThrow(/recording\.records/);
        await expect(store.endSession(row.id, new Date(), "client_closed", { records: 2 ** 31, lastHash: "ab" })).rejects.toThrow(/recording\.records/);
        await expect(store.endSession(row.id, new Date(), "client_closed", { records: 1, lastHash: "" })).rejects.toThrow(/recording\.lastHash/);
        // Refused calls changed nothing.
        const unchanged = await store.getSession(row.id);
        expect(unchanged?.endedAt).toBeUndefined();
        expect(unchanged).not.toHaveProperty("recording");
        await storeError(store.endSession(missing, new Date(), "client_closed", { records: 1, lastHash: "ab" }), "not_found");
      });

      it("ends the sessions a crashed gateway left open, and only those", async () => {
        const t = unique();
        const gateway = `gw-${t}`;
        const open1 = sessionStart({ gatewayId: gateway });
        const open2 = sessionStart({ gatewayId: gateway });
        const ended = sessionStart({ gatewayId: gateway });
        const elsewhere = sessionStart({ gatewayId: `gw-other-${t}` });
        for (const row of [open1, open2, ended, elsewhere]) await store.startSession(row);
        const endedAt = new Date("2030-01-02T03:05:00.000Z");
        await store.endSession(ended.id, endedAt, "client_closed");

        const at = new Date("2030-01-02T05:00:00.123Z");
        expect(await store.endAbandonedSessions(gateway, at)).toBe(2);
        for (const row of [open1, open2]) expect(await store.getSession(row.id)).toMatchObject({ endedAt: at, outcome: ABANDONED_OUTCOME });
        expect(await store.getSession(ended.id)).toMatchObject({ endedAt, outcome: "client_closed" });
        const untouched = await store.getSession(elsewhere.id);
        expect(untouched?.endedAt).toBeUndefined();
        expect(untouched).not.toHaveProperty("outcome");
        expect(await store.endAbandonedSessions(gateway, at)).toBe(0);
      });
    });

    describe("decisions", () => {
      it("records decisions in time order and bumps the session's counters", async () => {
        const session = sessionStart();
        await store.startSession(session);
        const t0 = session.startedAt.getTime();
        const allow: DecisionRow = {
          id: `d-${unique()}`,
          sessionId: session.id,
          at: new Date(t0 + 10),
          sql: "select * from orders where note = 'a,b\"c'",
          classes: ["read"],
          effect: "allow",
          rule: "tests-read",
          reasons: AWKWARD_STRINGS,
        };
        const deny: DecisionRow = {
          id: `d-${unique()}`,
          sessionId: session.id,
          at: new Date(t0 + 20),
          sql: "drop table orders",
          classes: ["ddl", "dangerous"],
          effect: "deny",
          reasons: ["no policy allows ddl"],
        };
        const review: DecisionRow = {
          id: `d-${unique()}`,
          sessionId: session.id,
          at: new Date(t0 + 30),
          sql: "delete from orders",
          classes: ["write"],
          effect: "review",
          rule: "dba",
          reasons: ["write requires review"],
          reviewId: `r-${unique()}`,
        };
        const earliest: DecisionRow = { ...allow, id: `d-${unique()}`, at: new Date(t0 + 1), classes: [], reasons: [] };
        for (const row of [allow, deny, review, earliest]) await store.recordDecision(row);

        expect(await store.listDecisions(session.id)).toStrictEqual([earliest, allow, deny, review]);
        expect(await store.getSession(session.id)).toMatchObject({ statements: 4, denied: 1, reviewed: 1 });
        expect(await store.listDecisions(`missing-${unique()}`)).toEqual([]);
      });

      it("refuses a duplicate decision and a decision of an unknown session, leaving counters alone", async () => {
        const session = sessionStart();
        await store.startSession(session);
        const row: DecisionRow = { id: `d-${unique()}`, sessionId: session.id, at: new Date(), sql: "select 1", classes: ["read"], effect: "deny", reasons: [] };
        await store.recordDecision(row);
        await storeError(store.recordDecision(row), "conflict");
        await storeError(store.recordDecision({ ...row, id: `d-${unique()}`, sessionId: `missing-${unique()}` }), "not_found");
        expect(await store.getSession(session.id)).toMatchObject({ statements: 1, denied: 1, reviewed: 0 });
      });

      it("records a batch of decisions of several sessions in order, all or none", async () => {
        const a = sessionStart();
        const b = sessionStart();
        await store.startSession(a);
        await store.startSession(b);
        const t0 = Date.now();
        const row = (sessionId: string, n: number, effect: DecisionRow["effect"]): DecisionRow => ({ id: `d-${unique()}`, sessionId, at: new Date(t0), sql: `select ${n}`, classes: ["read"], effect, reasons: effect === "allow" ? [] : [`${effect} ${n}`] });
        const batch = [row(a.id, 1, "allow"), row(b.id, 2, "deny"), row(a.id, 3, "review"), row(a.id, 4, "deny"), row(b.id, 5, "allow")];
        await store.recordDecisions(batch);
        expect((await store.listDecisions(a.id)).map((decision) => decision.sql)).toEqual(["select 1", "select 3", "select 4"]);
        expect((await store.listDecisions(b.id)).map((decision) => decision.sql)).toEqual(["select 2", "select 5"]);
        expect(await store.getSession(a.id)).toMatchObject({ statements: 3, denied: 1, reviewed: 1 });
        expect(await store.getSession(b.id)).toMatchObject({ statements: 2, denied: 1, reviewed: 0 });
        // One row of an unknown session fails the whole batch; nothing of it is kept.
        await storeError(store.recordDecisions([row(a.id, 6, "allow"), row(`missing-${unique()}`, 7, "allow")]), "not_found");
        expect(await store.getSession(a.id)).toMatchObject({ statements: 3 });
        await store.recordDecisions([]);
      });
    });

    describe("reviews", () => {
      it("creates, reads and lists reviews of both kinds", async () => {
        const statement = reviewStart({ reasons: AWKWARD_STRINGS, reviewerGroups: ["dba", "sre"], approvalsRequired: 2 });
        const access = reviewStart({
          kind: "access",
          sql: "access to `orders` for 1h",
          classes: [],
          durationMs: 3_600_000,
          reason: "incident INC-42",
          createdAt: new Date("2030-01-02T03:04:05.002Z"),
        });
        const created = await store.createReview(statement);
        expect(created).toStrictEqual({ ...statement, status: "pending", actions: [] });
        expect(await store.createReview(access)).toStrictEqual({ ...access, status: "pending", actions: [] });
        expect(await store.getReview(statement.id)).toStrictEqual(created);
        expect(await store.getReview(access.id)).toStrictEqual({ ...access, status: "pending", actions: [] });
        expect(await store.getReview(`missing-${unique()}`)).toBeUndefined();
        await storeError(store.createReview(statement), "conflict");

        const all = await store.listReviews({ limit: 10_000 });
        const mine = all.filter((review) => review.id === statement.id || review.id === access.id).map((review) => review.id);
        expect(mine).toEqual([access.id, statement.id]);
        for (let i = 1; i < all.length; i++) {
          expect((all[i - 1] as ReviewRow).createdAt.getTime()).toBeGreaterThanOrEqual((all[i] as ReviewRow).createdAt.getTime());
        }
        expect(await store.listReviews({ limit: 1 })).toHaveLength(1);

        const pending = await store.listReviews({ status: "pending", limit: 10_000 });
        expect(pending.every((review) => review.status === "pending")).toBe(true);
        expect(pending.map((review) => review.id)).toEqual(expect.arrayContaining([statement.id, access.id]));
        expect((await store.listReviews({ status: "approved", limit: 10_000 })).map((review) => review.id)).not.toContain(statement.id);
        await expect(store.listReviews({ status: "maybe" as "pending" })).rejects.toThrow(/filter\.status/);
        await expect(store.createReview({ ...reviewStart(), approvalsRequired: 0 })).rejects.toThrow(/row\.approvalsRequired/);
      });

      it("needs two distinct approving reviewers when approvalsRequired is 2", async () => {
        const review = reviewStart({ approvalsRequired: 2 });
        await store.createReview(review);
        const first = { reviewer: "alice", action: "approve" as const, reason: "looks fine", at: new Date("2030-01-02T03:05:00.100Z") };
        const afterFirst = await store.addReviewAction(review.id, first);
        expect(afterFirst).toStrictEqual({ ...review, status: "pending", actions: [first] });

        const again = await storeError(store.addReviewAction(review.id, { ...first, at: new Date("2030-01-02T03:05:01.000Z") }), "conflict");
        expect(again.message).toContain("alice");

        const second = { reviewer: "bob", action: "approve" as const, reason: "ok, ticket DBA-7", at: new Date("2030-01-02T03:06:00.200Z") };
        const decided = await store.addReviewAction(review.id, second);
        expect(decided).toStrictEqual({ ...review, status: "approved", decidedAt: second.at, actions: [first, second] });
        expect(await store.getReview(review.id)).toStrictEqual(decided);
        expect((await store.listReviews({ status: "approved", limit: 10_000 })).map((row) => row.id)).toContain(review.id);

        await storeError(store.addReviewAction(review.id, { ...second, reviewer: "carol" }), "conflict");
        expect((await store.getReview(review.id))?.actions).toHaveLength(2);
      });

      it("decides at once on a reject, and refuses actions on a decided review", async () => {
        const review = reviewStart({ approvalsRequired: 2 });
        await store.createReview(review);
        const reject = { reviewer: "alice", action: "reject" as const, reason: "not during the freeze", at: new Date("2030-01-02T03:05:00.000Z") };
        const decided = await store.addReviewAction(review.id, reject);
        expect(decided).toStrictEqual({ ...review, status: "rejected", decidedAt: reject.at, actions: [reject] });
        const late = await storeError(store.addReviewAction(review.id, { ...reject, reviewer: "bob", action: "approve" }), "conflict");
        expect(late.message).toContain("rejected");
        expect(await store.getReview(review.id)).toStrictEqual(decided);
      });

      it("refuses an action on an unknown review, and one at or after the review expires", async () => {
        const action = { reviewer: "alice", action: "approve" as const, reason: "ok", at: new Date("2030-01-02T03:05:00.000Z") };
        const missing = `missing-${unique()}`;
        expect((await storeError(store.addReviewAction(missing, action), "not_found")).message).toContain(missing);
        const review = reviewStart();
        await store.createReview(review);
        await storeError(store.addReviewAction(review.id, { ...action, at: review.expiresAt }), "conflict");
        expect(await store.getReview(review.id)).toMatchObject({ status: "pending", actions: [] });
        await expect(store.addReviewAction(review.id, { ...action, action: "maybe" as "approve" })).rejects.toThrow(/action\.action/);
      });

      it("lets exactly one of five racing reviewers decide a review needing one approval", async () => {
        const second = await openExtra();
        const review = reviewStart({ approvalsRequired: 1 });
        await store.createReview(review);
        const reviewers = ["r1", "r2", "r3", "r4", "r5"];
        const results = await Promise.allSettled(
          reviewers.map((reviewer, index) =>
            (index % 2 === 0 ? store : second).addReviewAction(review.id, { reviewer, action: "approve", reason: "race", at: new Date("2030-01-02T03:05:00.000Z") }),
          ),
        );
        const won = results.filter((result) => result.status === "fulfilled");
        const lost = results.filter((result) => result.status === "rejected");
        expect(won).toHaveLength(1);
        for (const result of lost) expect((result.reason as StoreError).code).toBe("conflict");
        const final = await store.getReview(review.id);
        expect(final?.status).toBe("approved");
        expect(final?.actions).toHaveLength(1);
        expect(final).toStrictEqual((won[0] as PromiseFulfilledResult<ReviewRow>).value);
      });

      it("records exactly approvalsRequired approvals when five reviewers race on a review needing two", async () => {
        const second = await openExtra();
        const review = reviewStart({ approvalsRequired: 2 });
        await store.createReview(review);
        const results = await Promise.allSettled(
          ["r1", "r2", "r3", "r4", "r5"].map((reviewer, index) =>
            (index % 2 === 0 ? second : store).addReviewAction(review.id, { reviewer, action: "approve", reason: "race", at: new Date("2030-01-02T03:05:00.000Z") }),
          ),
        );
        expect(results.filter((result) => result.status === "fulfilled")).toHaveLength(2);
        for (const result of results) if (result.status === "rejected") expect((result.reason as StoreError).code).toBe("conflict");
        const final = await store.getReview(review.id);
        expect(final?.status).toBe("approved");
        expect(new Set(final?.actions.map((action) => action.reviewer)).size).toBe(2);
        expect(final?.actions.every((action) => action.action === "approve")).toBe(true);
      });

      it("closes a pending review as expired or cancelled, and leaves a decided one alone", async () => {
        const review = reviewStart();
        await store.createReview(review);
        const at = new Date("2030-01-02T03:14:05.001Z");
        const expired = await store.closeReview(review.id, "expired", at);
        expect(expired).toStrictEqual({ ...review, status: "expired", decidedAt: at, actions: [] });
        expect(await store.closeReview(review.id, "cancelled", new Date("2030-01-02T04:00:00.000Z"))).toStrictEqual(expired);
        await storeError(store.addReviewAction(review.id, { reviewer: "alice", action: "approve", reason: "late", at: new Date("2030-01-02T03:06:00.000Z") }), "conflict");

        const approved = reviewStart();
        await store.createReview(approved);
        const decided = await store.addReviewAction(approved.id, { reviewer: "alice", action: "approve", reason: "ok", at: new Date("2030-01-02T03:05:00.000Z") });
        expect(await store.closeReview(approved.id, "cancelled", at)).toStrictEqual(decided);

        const cancelled = reviewStart();
        await store.createReview(cancelled);
        expect(await store.closeReview(cancelled.id, "cancelled", at)).toMatchObject({ status: "cancelled", decidedAt: at });
        expect(await store.closeReview(`missing-${unique()}`, "expired", at)).toBeUndefined();
      });
    });

    describe("grants", () => {
      it("keeps grants active from grantedAt until expiresAt unless revoked", async () => {
        const t = unique();
        const subject = `subject-${t}`;
        const connection = `orders-${t}`;
        const review = reviewStart({ kind: "access", subject, connection, durationMs: 3_600_000, reason: "incident" });
        await store.createReview(review);
        const grantedAt = new Date("2030-01-02T03:05:00.000Z");
        const expiresAt = new Date("2030-01-02T04:05:00.000Z");
        const row = { id: `g-${unique()}`, subject, connection, reviewId: review.id, grantedAt, expiresAt };
        const grant = await store.createGrant(row);
        expect(grant).toStrictEqual(row);
        expect(await store.getGrant(row.id)).toStrictEqual(row);

        expect(await store.activeGrants(subject, connection, new Date("2030-01-02T03:30:00.000Z"))).toStrictEqual([row]);
        expect(await store.activeGrants(subject, connection, grantedAt)).toStrictEqual([row]);
        expect(await store.activeGrants(subject, connection, new Date(grantedAt.getTime() - 1))).toEqual([]);
        expect(await store.activeGrants(subject, connection, new Date(expiresAt.getTime() - 1))).toStrictEqual([row]);
        expect(await store.activeGrants(subject, connection, expiresAt)).toEqual([]);
        expect(await store.activeGrants(subject, `elsewhere-${t}`, new Date("2030-01-02T03:30:00.000Z"))).toEqual([]);
        expect(await store.activeGrants(`someone-${t}`, connection, new Date("2030-01-02T03:30:00.000Z"))).toEqual([]);

        const longer = reviewStart({ kind: "access", subject, connection });
        await store.createReview(longer);
        const longerRow = { ...row, id: `g-${unique()}`, reviewId: longer.id, expiresAt: new Date("2030-01-02T05:05:00.000Z") };
        await store.createGrant(longerRow);
        expect(await store.activeGrants(subject, connection, new Date("2030-01-02T03:30:00.000Z"))).toStrictEqual([longerRow, row]);

        const revokedAt = new Date("2030-01-02T03:40:00.123Z");
        await store.revokeGrant(row.id, revokedAt);
        expect(await store.getGrant(row.id)).toStrictEqual({ ...row, revokedAt });
        expect(await store.activeGrants(subject, connection, new Date("2030-01-02T03:50:00.000Z"))).toStrictEqual([longerRow]);
        await store.revokeGrant(row.id, new Date("2030-01-02T03:59:00.000Z"));
        expect(await store.getGrant(row.id)).toStrictEqual({ ...row, revokedAt });
      });

      it("refuses a grant of an unknown review, a second grant of one review, a duplicate id, and revoking an unknown grant", async () => {
        const review = reviewStart({ kind: "access" });
        await store.createReview(review);
        const row: Omit<GrantRow, "revokedAt"> = {
          id: `g-${unique()}`,
          subject: review.subject,
          connection: review.connection,
          reviewId: review.id,
          grantedAt: new Date("2030-01-02T03:05:00.000Z"),
          expiresAt: new Date("2030-01-02T04:05:00.000Z"),
        };
        const missingReview = `missing-${unique()}`;
        expect((await storeError(store.createGrant({ ...row, reviewId: missingReview }), "not_found")).message).toContain(missingReview);
        await store.createGrant(row);
        expect((await storeError(store.createGrant({ ...row, id: `g-${unique()}` }), "conflict")).message).toContain(review.id);
        const other = reviewStart({ kind: "access" });
        await store.createReview(other);
        expect((await storeError(store.createGrant({ ...row, reviewId: other.id }), "conflict")).message).toContain(row.id);
        await storeError(store.revokeGrant(`missing-${unique()}`, new Date()), "not_found");
        expect(await store.getGrant(`missing-${unique()}`)).toBeUndefined();
      });
    });

    it("prunes sessions that ended before the cutoff, with their decisions", async () => {
      const old1 = sessionStart({ startedAt: new Date("1971-01-01T00:00:00.000Z") });
      const old2 = sessionStart({ startedAt: new Date("1971-02-01T00:00:00.000Z") });
      const stillOpen = sessionStart({ startedAt: new Date("1971-03-01T00:00:00.000Z") });
      const recent = sessionStart({ startedAt: new Date("1971-12-31T00:00:00.000Z") });
      for (const row of [old1, old2, stillOpen, recent]) await store.startSession(row);
      await store.recordDecision({ id: `d-${unique()}`, sessionId: old1.id, at: old1.startedAt, sql: "select 1", classes: ["read"], effect: "allow", reasons: [] });
      await store.recordDecision({ id: `d-${unique()}`, sessionId: recent.id, at: recent.startedAt, sql: "select 1", classes: ["read"], effect: "allow", reasons: [] });
      await store.endSession(old1.id, new Date("1971-01-01T01:00:00.000Z"), "client_closed");
      await store.endSession(old2.id, new Date("1971-12-31T23:59:59.999Z"), "client_closed");
      await store.endSession(recent.id, new Date("1972-01-01T00:00:00.000Z"), "client_closed");

      expect(await store.pruneSessions(new Date("1972-01-01T00:00:00.000Z"))).toBe(2);
      expect(await store.getSession(old1.id)).toBeUndefined();
      expect(await store.getSession(old2.id)).toBeUndefined();
      expect(await store.listDecisions(old1.id)).toEqual([]);
      expect(await store.getSession(stillOpen.id)).toBeDefined();
      expect(await store.getSession(recent.id)).toBeDefined();
      expect(await store.listDecisions(recent.id)).toHaveLength(1);
      expect(await store.pruneSessions(new Date("1972-01-01T00:00:00.000Z"))).toBe(0);
    });

    it("delivers its own changes to subscribers before the change resolves, once each", async () => {
      const events: StoreEvent[] = [];
      const unsubscribe = store.subscribe((event) => events.push(event));
      // A throwing subscriber does not break the operation or the other subscribers.
      const unsubscribeThrower = store.subscribe(() => {
        throw new Error("subscriber bug");
      });
      const mine = (id: string): StoreEvent[] => events.filter((event) => event.id === id);

      const review = reviewStart({ kind: "access", approvalsRequired: 2 });
      await store.createReview(review);
      expect(mine(review.id)).toEqual([{ type: "review", id: review.id }]);
      await store.addReviewAction(review.id, { reviewer: "alice", action: "approve", reason: "ok", at: new Date("2030-01-02T03:05:00.000Z") });
      expect(mine(review.id)).toHaveLength(2);
      await storeError(store.addReviewAction(review.id, { reviewer: "alice", action: "approve", reason: "ok", at: new Date("2030-01-02T03:05:00.000Z") }), "conflict");
      expect(mine(review.id)).toHaveLength(2);
      await store.addReviewAction(review.id, { reviewer: "bob", action: "approve", reason: "ok", at: new Date("2030-01-02T03:05:01.000Z") });
      expect(mine(review.id)).toHaveLength(3);

      const grant = { id: `g-${unique()}`, subject: review.subject, connection: review.connection, reviewId: review.id, grantedAt: new Date("2030-01-02T03:05:01.000Z"), expiresAt: new Date("2030-01-02T04:05:01.000Z") };
      await store.createGrant(grant);
      expect(mine(grant.id)).toEqual([{ type: "grant", id: grant.id }]);
      await store.revokeGrant(grant.id, new Date("2030-01-02T03:30:00.000Z"));
      expect(mine(grant.id)).toEqual([{ type: "grant", id: grant.id }, { type: "grant", id: grant.id }]);
      await store.revokeGrant(grant.id, new Date("2030-01-02T03:31:00.000Z"));
      expect(mine(grant.id)).toHaveLength(2);

      const closing = reviewStart();
      await store.createReview(closing);
      await store.closeReview(closing.id, "cancelled", new Date("2030-01-02T03:06:00.000Z"));
      expect(mine(closing.id)).toEqual([{ type: "review", id: closing.id }, { type: "review", id: closing.id }]);
      await store.closeReview(closing.id, "expired", new Date("2030-01-02T03:07:00.000Z"));
      expect(mine(closing.id)).toHaveLength(2);

      unsubscribe();
      unsubscribeThrower();
      const after = reviewStart();
      await store.createReview(after);
      expect(mine(after.id)).toEqual([]);
    });

    it("fails with unavailable once closed, and closes twice safely", async () => {
      const closing = await open();
      await closing.close();
      await closing.close();
      await storeError(closing.getSession("any"), "unavailable");
      await storeError(closing.startSession(sessionStart()), "unavailable");
      await storeError(closing.setSessionRecording("any", "/recordings/any.jsonl"), "unavailable");
      await storeError(closing.endSession("any", new Date(), "client_closed", { records: 1, lastHash: "ab" }), "unavailable");
      await storeError(closing.createReview(reviewStart()), "unavailable");
    });
  });
}
