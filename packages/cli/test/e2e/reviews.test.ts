import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli } from "../support/cli.js";
import { startHarness, type Harness } from "../support/harness.js";

const aliceKey = randomBytes(24).toString("base64url");
const bobKey = randomBytes(24).toString("base64url");
const ciSubject = "repo:acme/api:ref:refs/heads/main";
const sha = (key: string) => createHash("sha256").update(key).digest("hex");

let harness: Harness;
let webhook: Server;
const announced: { text: string; review: { id: string } }[] = [];

beforeAll(async () => {
  webhook = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk));
    request.on("end", () => {
      announced.push(JSON.parse(body) as (typeof announced)[number]);
      response.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, "127.0.0.1", resolve));
  harness = await startHarness({
    policies: `policies:
  - name: ci-writes-reviewed
    groups: [feature-test]
    connections: [orders]
    actions: { read: allow, write: review, ddl: deny, admin: deny, export: allow, dangerous: deny }
    reviewers: [dba]
    review_timeout: 3s`,
    extra: `reviewers:
  - { name: alice, key_sha256: ${sha(aliceKey)}, groups: [dba] }
  - { name: bob, key_sha256: ${sha(bobKey)}, groups: [dba], subjects: ["${ciSubject}"] }
approvals: { webhook_url: "http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hook", public_url: "http://airlock.example" }`,
  });
  const setup = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database: "airlock_e2e" });
  await setup.connect();
  await setup.query("drop table if exists reviewed; create table reviewed (id serial primary key, note text); alter table reviewed owner to airlock_e2e_svc");
  await setup.end();
});
afterAll(async () => {
  await harness?.close();
  webhook?.close();
});

async function client(): Promise<pg.Client & { notices: string[] }> {
  const value = Object.assign(new pg.Client({ ...harness.native, user: "ci", database: "orders", password: await harness.token({}, { subject: ciSubject }) }), { notices: [] as string[] });
  value.on("notice", (notice) => value.notices.push(notice.message ?? ""));
  await value.connect();
  return value;
}

/** Waits for the NOTICE that names the held statement's review. */
async function heldReview(value: { notices: string[] }): Promise<string> {
  for (;;) {
    const notice = value.notices.find((text) => text.startsWith("airlock: statement held for review "));
    if (notice !== undefined) return /review ([0-9a-f-]{36})/.exec(notice)?.[1] ?? "";
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const api = () => `http://${harness.gateway.httpAddress}`;

describe("a statement held for review", () => {
  it("holds one client while another runs, and releases it within a second of approval by the CLI", async () => {
    const held = await client();
    const other = await client();
    const insert = held.query("insert into reviewed (note) values ('approved') returning note");
    const id = await heldReview(held);
    // Another session on the same agent link is not slowed by the held one.
    const started = Date.now();
    expect((await other.query("select count(*)::int as n from reviewed")).rows).toEqual([{ n: 0 }]);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(announced.some((entry) => entry.review.id === id && entry.text.includes("approve"))).toBe(true);

    const listed = await cli(["reviews", "list", "--api", api(), "--json"], { AIRLOCK_REVIEWER_KEY: aliceKey });
    expect(listed.status).toBe(0);
    expect((JSON.parse(listed.out) as { id: string }[]).map((review) => review.id)).toContain(id);

    const approvedAt = Date.now();
    const approved = await cli(["reviews", "approve", id, "--api", api(), "--reason", "looks fine"], { AIRLOCK_REVIEWER_KEY: aliceKey });
    expect(approved).toMatchObject({ status: 0, out: `review ${id}: approved\n` });
    expect((await insert).rows).toEqual([{ note: "approved" }]);
    expect(Date.now() - approvedAt).toBeLessThan(1_000);
    await held.end();
    await other.end();
  });

  it("refuses self-approval, and a rejection reaches the client as 42501 with the reason", async () => {
    const held = await client();
    const insert = held.query("insert into reviewed (note) values ('rejected')").then(
      () => undefined,
      (error: { code?: string; message: string }) => error,
    );
    const id = await heldReview(held);
    const self = await cli(["reviews", "approve", id, "--api", api()], { AIRLOCK_REVIEWER_KEY: bobKey });
    expect(self.status).toBe(1);
    expect(self.err).toMatch(/your own request: someone else must decide it \(HTTP 403, self_approval\)/);
    const noReason = await cli(["reviews", "reject", id, "--api", api()], { AIRLOCK_REVIEWER_KEY: aliceKey });
    expect(noReason).toMatchObject({ status: 2 });
    const rejected = await cli(["reviews", "reject", id, "--api", api(), "--reason", "not on a friday"], { AIRLOCK_REVIEWER_KEY: aliceKey });
    expect(rejected.status).toBe(0);
    expect(await insert).toMatchObject({ code: "42501", message: `statement not approved (review ${id}): rejected by alice: not on a friday` });
    // The session goes on, and nothing was written.
    expect((await held.query("select count(*)::int as n from reviewed where note = 'rejected'")).rows).toEqual([{ n: 0 }]);
    await held.end();
  });

  it("rejects a statement nobody reviews before the timeout", async () => {
    const held = await client();
    const error = await held.query("delete from reviewed where note = 'approved'").then(
      () => undefined,
      (failure: { code?: string; message: string }) => failure,
    );
    expect(error).toMatchObject({ code: "42501", message: expect.stringMatching(/no reviewer decided in time/) });
    expect((await held.query("select count(*)::int as n from reviewed")).rows).toEqual([{ n: 1 }]);
    await held.end();
  });

  it("refuses a wrong reviewer key and an unknown review", async () => {
    expect((await cli(["reviews", "list", "--api", api()], { AIRLOCK_REVIEWER_KEY: "nope" })).err).toMatch(/the reviewer key was refused \(HTTP 401/);
    expect((await cli(["reviews", "approve", "no-such", "--api", api()], { AIRLOCK_REVIEWER_KEY: aliceKey })).err).toMatch(/no review is named `no-such` \(HTTP 404/);
  });
});
