import Database from "better-sqlite3";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqliteMigrations } from "../../src/store/migrations.js";
import { openStore } from "../../src/store/index.js";
import { describeStoreContract, reviewStart, sessionStart, storeError } from "./store-contract.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-store-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// A folder that does not exist yet: openStore creates it.
describeStoreContract("sqlite", () => openStore(`sqlite:${join(dir, "contract", "nested", "airlock.db")}`));

describe("sqlite store", () => {
  it("keeps its data across close and reopen", async () => {
    const url = `sqlite:${join(dir, "reopen.db")}`;
    const first = await openStore(url);
    const session = sessionStart();
    const review = reviewStart({ approvalsRequired: 2 });
    await first.startSession(session);
    await first.recordDecision({ id: "d-1", sessionId: session.id, at: session.startedAt, sql: "select 1", classes: ["read"], effect: "deny", reasons: ["no"] });
    await first.createReview(review);
    const action = { reviewer: "alice", action: "approve" as const, reason: "ok", at: new Date("2030-01-02T03:05:00.000Z") };
    const pending = await first.addReviewAction(review.id, action);
    await first.close();

    const second = await openStore(url);
    try {
      expect(await second.getSession(session.id)).toStrictEqual({ ...session, statements: 1, denied: 1, reviewed: 0 });
      expect(await second.listDecisions(session.id)).toHaveLength(1);
      expect(await second.getReview(review.id)).toStrictEqual(pending);
    } finally {
      await second.close();
    }
  });

  it("records each migration once in schema_migrations, in WAL mode with foreign keys, in a private file", async () => {
    const file = join(dir, "fresh", "state.db");
    await (await openStore(`sqlite:${file}`)).close();
    await (await openStore(`sqlite:${file}`)).close();
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, "fresh"))).mode & 0o777).toBe(0o700);
    const db = new Database(file, { readonly: true });
    try {
      const rows = db.prepare("select version, applied_at from schema_migrations order by version").all() as { version: number; applied_at: string }[];
      expect(rows.map((row) => row.version)).toEqual([1, 2]);
      expect(new Date(rows[0]?.applied_at ?? "").getTime()).not.toBeNaN();
      expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    } finally {
      db.close();
    }
  });

  it("upgrades a version 1 file in place, keeping its sessions", async () => {
    const file = join(dir, "v1.db");
    const session = sessionStart();
    const db = new Database(file);
    db.exec("create table schema_migrations (version integer primary key, name text not null, applied_at text not null) strict");
    db.exec(sqliteMigrations.find((migration) => migration.version === 1)?.sql ?? "");
    db.prepare("insert into schema_migrations (version, name, applied_at) values (1, 'initial', ?)").run(new Date().toISOString());
    db.prepare(
      `insert into sessions (id, subject, issuer, subject_groups, connection, transport, client_address, gateway_id, started_at, ended_at, outcome)
       values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(session.id, session.subject, session.issuer, JSON.stringify(session.groups), session.connection, session.transport, session.clientAddress, session.gatewayId, session.startedAt.toISOString(), "2030-01-02T04:00:00.000Z", "client_closed");
    db.close();

    const store = await openStore(`sqlite:${file}`);
    try {
      const ended = { ...session, statements: 0, denied: 0, reviewed: 0, endedAt: new Date("2030-01-02T04:00:00.000Z"), outcome: "client_closed" };
      expect(await store.getSession(session.id)).toStrictEqual(ended);
      await store.setSessionRecording(session.id, "/recordings/old.jsonl");
      expect(await store.getSession(session.id)).toStrictEqual({ ...ended, recording: { path: "/recordings/old.jsonl" } });
    } finally {
      await store.close();
    }
    const check = new Database(file, { readonly: true });
    try {
      expect(check.prepare("select version from schema_migrations order by version").pluck().all()).toEqual([1, 2]);
    } finally {
      check.close();
    }
  });

  it("refuses a schema newer than it knows", async () => {
    const file = join(dir, "newer.db");
    await (await openStore(`sqlite:${file}`)).close();
    const db = new Database(file);
    db.prepare("insert into schema_migrations (version, name, applied_at) values (999, 'future', ?)").run(new Date().toISOString());
    db.close();
    const error = await storeError(openStore(`sqlite:${file}`), "migration_failed");
    expect(error.message).toContain("999");
  });

  it("opens an in-memory store with sqlite::memory:", async () => {
    const store = await openStore("sqlite::memory:");
    try {
      const session = sessionStart();
      await store.startSession(session);
      expect(await store.getSession(session.id)).toMatchObject({ id: session.id });
    } finally {
      await store.close();
    }
  });
});
