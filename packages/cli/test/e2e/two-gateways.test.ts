import type { Gateway } from "@airlock/gateway";
import { createHash, randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHarness, type Harness } from "../support/harness.js";
import { E2E_DATABASE } from "../support/global-setup.js";

/**
 * Two gateways behind a load balancer share one PostgreSQL store: a statement held on gateway A is
 * approved through gateway B's API, and A releases it.
 */
const SERVER = { host: "127.0.0.1", port: 5432, user: "postgres" };
const storeDatabase = `airlock_twogw_${randomBytes(5).toString("hex")}`;
const aliceKey = randomBytes(24).toString("base64url");
const ciSubject = "repo:acme/api:ref:refs/heads/main";
const sha = (key: string) => createHash("sha256").update(key).digest("hex");

let harness: Harness;
let peer: Gateway;

async function admin<T>(database: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ ...SERVER, database });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  await admin("postgres", (client) => client.query(`create database ${storeDatabase}`));
  harness = await startHarness({
    id: "gw-a",
    store: `postgres://postgres@127.0.0.1:5432/${storeDatabase}`,
    policies: `policies:
  - name: ci-writes-reviewed
    groups: [feature-test]
    connections: [orders]
    actions: { read: allow, write: review, ddl: deny, admin: deny, export: allow, dangerous: deny }
    reviewers: [dba]
    review_timeout: 20s`,
    extra: `reviewers:
  - { name: alice, key_sha256: ${sha(aliceKey)}, groups: [dba] }`,
  });
  peer = await harness.startPeer("gw-b");
  await admin(E2E_DATABASE, (client) =>
    client.query("drop table if exists twogw_held; create table twogw_held (id serial primary key, note text); alter table twogw_held owner to airlock_e2e_svc"),
  );
});

afterAll(async () => {
  await harness?.close();
  await admin(E2E_DATABASE, (client) => client.query("drop table if exists twogw_held")).catch(() => undefined);
  await admin("postgres", (client) => client.query(`drop database if exists ${storeDatabase} with (force)`));
});

/** A client of gateway A's native listener, collecting NOTICEs. */
async function clientOfA(): Promise<pg.Client & { notices: string[] }> {
  const client = Object.assign(new pg.Client({ ...harness.native, user: "ci", database: "orders", password: await harness.token({}, { subject: ciSubject }) }), { notices: [] as string[] });
  client.on("notice", (notice) => client.notices.push(notice.message ?? ""));
  await client.connect();
  return client;
}

/** The review id of the NOTICE that announces a held statement. */
async function heldReview(client: { notices: string[] }): Promise<string> {
  for (;;) {
    const notice = client.notices.find((text) => text.startsWith("airlock: statement held for review "));
    if (notice !== undefined) return /review ([0-9a-f-]{36})/.exec(notice)?.[1] ?? "";
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Calls gateway B's API as alice. */
async function onB(method: "GET" | "POST", path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`http://${peer.httpAddress}${path}`, {
    method,
    headers: { authorization: `Bearer ${aliceKey}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

describe("two gateways on one PostgreSQL store", () => {
  it("are two gateways with their own ids on the same store", () => {
    expect(harness.gateway.id).toBe("gw-a");
    expect(peer.id).toBe("gw-b");
    expect(harness.gateway.store.kind).toBe("postgres");
    expect(peer.store.kind).toBe("postgres");
    expect(peer.httpAddress).not.toBe(harness.gateway.httpAddress);
  });

  it("releases a statement held on A within a second of its approval through B's API", async () => {
    const held = await clientOfA();
    try {
      const insert = held.query("insert into twogw_held (note) values ('approved on b') returning note");
      const id = await heldReview(held);

      // B sees the review A raised, pending, held by A.
      const seen = await onB("GET", `/api/v1/reviews/${id}`);
      expect(seen.status).toBe(200);
      expect(seen.json.review).toMatchObject({ id, status: "pending", subject: ciSubject, connection: "orders", sql: "insert into twogw_held (note) values ('approved on b') returning note" });
      expect((await harness.gateway.store.getReview(id))?.gatewayId).toBe("gw-a");

      const approvedAt = performance.now();
      const approved = await onB("POST", `/api/v1/reviews/${id}/approve`, { reason: "approved through gateway b" });
      expect(approved).toMatchObject({ status: 200, json: { review: { id, status: "approved", actions: [{ reviewer: "alice", action: "approve", reason: "approved through gateway b" }] } } });
      expect((await insert).rows).toEqual([{ note: "approved on b" }]);
      expect(performance.now() - approvedAt).toBeLessThan(1_000);

      // The statement ran on the database once, and the session goes on.
      expect((await held.query("select note from twogw_held")).rows).toEqual([{ note: "approved on b" }]);
    } finally {
      await held.end();
    }
  });

  it("delivers a rejection through B to A's client as 42501 with the reason", async () => {
    const held = await clientOfA();
    try {
      const insert = held.query("insert into twogw_held (note) values ('rejected on b')").then(
        () => undefined,
        (error: { code?: string; message: string }) => error,
      );
      const id = await heldReview(held);
      const rejectedAt = performance.now();
      expect((await onB("POST", `/api/v1/reviews/${id}/reject`, { reason: "not through b" })).status).toBe(200);
      expect(await insert).toMatchObject({ code: "42501", message: `statement not approved (review ${id}): rejected by alice: not through b` });
      expect(performance.now() - rejectedAt).toBeLessThan(1_000);
      expect((await held.query("select count(*)::int as n from twogw_held where note = 'rejected on b'")).rows).toEqual([{ n: 0 }]);
    } finally {
      await held.end();
    }
  });
});
