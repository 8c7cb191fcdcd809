import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli } from "../support/cli.js";
import { startHarness, type Harness } from "../support/harness.js";

const reviewerKey = randomBytes(24).toString("base64url");
let harness: Harness;

beforeAll(async () => {
  harness = await startHarness({
    policies: `policies:
  - name: break-glass
    groups: [feature-test]
    connections: [orders]
    access: jit
    actions: { read: allow, write: deny, ddl: deny, admin: deny, export: deny, dangerous: deny }
    reviewers: [dba]
    max_grant: 10m`,
    extra: `reviewers:
  - { name: alice, key_sha256: ${createHash("sha256").update(reviewerKey).digest("hex")}, groups: [dba] }`,
  });
});
afterAll(async () => {
  await harness?.close();
});

describe("just-in-time access", () => {
  it("refuses sessions until a request is approved, then grants access that ends by itself", async () => {
    const tokenFile = join(harness.dir, "job-token");
    writeFileSync(tokenFile, await harness.token());
    const api = `http://${harness.gateway.httpAddress}`;
    const connect = async () => {
      const client = new pg.Client({ ...harness.native, user: "ci", database: "orders", password: await harness.token() });
      client.on("error", () => undefined);
      return client.connect().then(
        () => client,
        (error: { code?: string }) => error.code,
      );
    };
    expect(await connect()).toBe("28000");

    const tooLong = await cli(["access", "request", "orders", "--duration", "2h", "--reason", "incident 42", "--api", api, "--token-file", tokenFile], {});
    expect(tooLong).toMatchObject({ status: 1, err: expect.stringMatching(/at most 10m may be asked for/) });
    const asked = await cli(["access", "request", "orders", "--duration", "3s", "--reason", "incident 42", "--api", api, "--token-file", tokenFile, "--json"], {});
    expect(asked.status).toBe(0);
    const request = JSON.parse(asked.out) as { id: string; status: string; kind: string };
    expect(request).toMatchObject({ status: "pending", kind: "access" });

    const approved = await cli(["reviews", "approve", request.id, "--api", api], { AIRLOCK_REVIEWER_KEY: reviewerKey });
    expect(approved.status).toBe(0);
    const client = await connect();
    if (typeof client === "string") throw new Error(`no session after approval: ${client}`);
    expect((await client.query("select 'granted' as s")).rows).toEqual([{ s: "granted" }]);
    // The session relies on the 3 s grant, so it ends when the grant does.
    const ended = new Promise<{ code?: string; message: string }>((resolve) => client.on("error", resolve));
    expect(await ended).toMatchObject({ code: "57P01" });

    // --wait follows a request to its decision: a rejection exits 1.
    const waiting = cli(["access", "request", "orders", "--duration", "1m", "--reason", "second", "--api", api, "--token-file", tokenFile, "--wait"], {});
    let second: { id: string } | undefined;
    while (second === undefined) {
      const listed = await cli(["reviews", "list", "--api", api, "--json"], { AIRLOCK_REVIEWER_KEY: reviewerKey });
      second = (JSON.parse(listed.out) as { id: string; reason?: string }[]).find((review) => review.reason === "second");
    }
    expect((await cli(["reviews", "reject", second.id, "--api", api, "--reason", "one grant is enough"], { AIRLOCK_REVIEWER_KEY: reviewerKey })).status).toBe(0);
    expect(await waiting).toMatchObject({ status: 1, out: expect.stringMatching(new RegExp(`access request ${second.id}: rejected`)) });

  });

  it("refuses a request without a reason, for an unknown connection, or with a bad token", async () => {
    const api = `http://${harness.gateway.httpAddress}`;
    const tokenFile = join(harness.dir, "job-token-2");
    writeFileSync(tokenFile, await harness.token());
    expect(await cli(["access", "request", "orders", "--duration", "5m", "--api", api, "--token-file", tokenFile], {})).toMatchObject({ status: 2 });
    expect(await cli(["access", "request", "nope", "--duration", "5m", "--reason", "x", "--api", api, "--token-file", tokenFile], {})).toMatchObject({
      status: 1,
      err: expect.stringMatching(/no connection is named `nope` \(HTTP 404/),
    });
    writeFileSync(tokenFile, "not-a-token");
    expect(await cli(["access", "request", "orders", "--duration", "5m", "--reason", "x", "--api", api, "--token-file", tokenFile], {})).toMatchObject({
      status: 1,
      err: expect.stringMatching(/the token was refused \(HTTP 401/),
    });
  });
});
