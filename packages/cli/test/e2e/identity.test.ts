import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintHs256, mintUnsigned } from "../../../gateway/test/support/oidc-issuer.js";
import { startConnect } from "../../src/connect/connect.js";
import { startHarness, type Harness } from "../support/harness.js";

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness();
});
afterAll(async () => {
  await harness?.close();
});

async function connectWith(password: string): Promise<{ code?: string; message: string } | "connected"> {
  const client = new pg.Client({ ...harness.native, user: "ci", database: "orders", password });
  try {
    await client.connect();
    await client.end();
    return "connected";
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    return code === undefined ? { message } : { code, message };
  }
}

const now = () => Math.floor(Date.now() / 1000);
const attacks: [string, (h: Harness) => Promise<string>][] = [
  ["a tampered payload (bad signature)", async (h) => {
    const [header, , signature] = (await h.token()).split(".");
    const payload = Buffer.from(JSON.stringify({ iss: h.issuer.url, aud: "airlock", sub: "admin", repository: "acme/api", exp: now() + 300, iat: now() })).toString("base64url");
    return `${header}.${payload}.${signature}`;
  }],
  ["a foreign key under the issuer's kid", (h) => h.issuer.mintForeign({ repository: "acme/api" })],
  ["alg none", async (h) => mintUnsigned({ repository: "acme/api", sub: "x", aud: "airlock", exp: now() + 300, iat: now() }, { issuer: h.issuer.url })],
  ["HS256 keyed with the public key", async (h) => mintHs256(h.issuer.publicKeyPem, { repository: "acme/api", sub: "x", aud: "airlock", iss: h.issuer.url, exp: now() + 300, iat: now() })],
  ["an expired token", (h) => h.token({}, { issuedAt: now() - 3600, expiresIn: 600 })],
  ["a token not yet valid", (h) => h.token({}, { notBefore: now() + 3600 })],
  ["a foreign issuer", (h) => h.token({}, { issuer: "https://token.actions.githubusercontent.com" })],
  ["a wrong audience", (h) => h.token({}, { audience: "someone-else" })],
  ["a lifetime over max_lifetime", (h) => h.token({}, { expiresIn: 7200 })],
  ["an unknown kid", (h) => h.token({}, { kid: "rotated-away" })],
  ["garbage", async () => "not-a-jwt"],
  ["an empty password", async () => ""],
];

describe("tokens on the native listener", () => {
  it("accepts a valid token", async () => {
    expect(await connectWith(await harness.token())).toBe("connected");
  });

  it.each(attacks)("refuses %s with 28P01, and the log says why", async (_name, mint) => {
    const token = await mint(harness);
    const before = harness.logs.length;
    const result = await connectWith(token);
    expect(result).toEqual({ code: "28P01", message: "password authentication failed: the token was refused" });
    const logged = harness.logs.slice(before).join("");
    expect(logged).toMatch(/token refused/);
    const signature = token.split(".")[2] ?? "";
    if (token.length > 20) expect(logged).not.toContain(token);
    if (signature.length > 0) expect(logged).not.toContain(signature);
  });

  it("refuses an identity no policy grants the connection with 28000", async () => {
    const token = await harness.token({ repository: "someone/else" });
    expect(await connectWith(token)).toMatchObject({ code: "28000", message: "access to connection `orders` is not granted to this identity" });
  });
});

describe("tokens through airlock connect", () => {
  it("refuses a bad token before the local port opens", async () => {
    const token = await harness.token({}, { audience: "someone-else" });
    await expect(
      startConnect({ connection: "orders", gateway: harness.gateway.grpcAddress, host: "127.0.0.1", port: 0, tokens: { kind: "env", description: "test", read: async () => token } }),
    ).rejects.toThrow(/refused connection `orders`: the token was refused/);
  });

  it("refuses an unknown connection and a connection without policy", async () => {
    const token = await harness.token();
    const tokens = { kind: "env" as const, description: "test", read: async () => token };
    await expect(startConnect({ connection: "nope", gateway: harness.gateway.grpcAddress, host: "127.0.0.1", port: 0, tokens })).rejects.toThrow(/no connection is named `nope`/);
    await expect(startConnect({ connection: "billing", gateway: harness.gateway.grpcAddress, host: "127.0.0.1", port: 0, tokens })).rejects.toThrow(
      /access to connection `billing` is not granted/,
    );
  });
});

describe("secrets", () => {
  it("never puts the database password, the agent key or a token in logs or metrics", async () => {
    const token = await harness.token();
    const client = new pg.Client({ ...harness.native, user: "ci", database: "orders", password: token });
    await client.connect();
    await client.query("select 1");
    await client.end();
    await connectWith(`${token}x`);
    const metrics = await (await fetch(`http://${harness.gateway.httpAddress}/metrics`)).text();
    expect(metrics).toMatch(/airlock_startup_refusals_total\{connection="orders",reason="token_bad_signature"\} \d+/);
    expect(metrics).toMatch(/airlock_sessions_total\{connection="orders",transport="native",outcome="terminated"\} \d+/);
    const everything = `${harness.logs.join("")}\n${metrics}`;
    expect(everything).not.toContain(harness.dbPassword);
    expect(everything).not.toContain(harness.agentKey);
    expect(everything).not.toContain(token.split(".")[2]);
  });
});
