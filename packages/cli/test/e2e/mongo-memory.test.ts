import { startMongoTestServer, type MongoTestServer } from "@airlock/mongo-test-server";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MongoClient, type Document } from "mongodb";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startOidcIssuer, type OidcIssuer } from "../../../gateway/test/support/oidc-issuer.js";
import { startAirlock, type AirlockProcess } from "../support/processes.js";

// 200,000 documents of about 1 KB (200 MB through the gateway), one field masked: gateway and
// agent run as their own processes so their memory can be watched while the client streams.
const DOCUMENTS = 200_000;
const FILLER = 1_000;

let dir: string;
let issuer: OidcIssuer;
let mongo: MongoTestServer;
let gateway: AirlockProcess;
let agent: AirlockProcess;
let port: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "airlock-mongo-mem-"));
  issuer = await startOidcIssuer({ alg: "ES256" });
  await issuer.writeJwksFile(join(dir, "jwks.json"));
  const password = randomBytes(18).toString("base64url");
  mongo = await startMongoTestServer({ users: [{ username: "agent", password, roles: ["root"] }] });
  const filler = "x".repeat(FILLER);
  const documents: Document[] = [];
  for (let i = 0; i < DOCUMENTS; i++) documents.push({ _id: i, email: `person${i}@example.com`, city: `city ${i % 100}`, filler });
  mongo.databases.insert("shop", "big", documents);
  const agentKey = randomBytes(24).toString("base64url");
  writeFileSync(
    join(dir, "gateway.yaml"),
    `listen: { grpc: 127.0.0.1:0, http: 127.0.0.1:0 }
identity:
  issuers: [ { name: ci, issuer: "${issuer.url}", audience: airlock, jwks_file: ./jwks.json } ]
  group_rules: [ { group: ci, issuer: ci, claims: { repository: acme/api } } ]
agents: [ { name: vpc-a, key_sha256: ${createHash("sha256").update(agentKey).digest("hex")} } ]
connections:
  - name: events
    protocol: mongodb
    agent: vpc-a
    listen: 127.0.0.1:0
    masking: { columns: [ { column: shop.big.email, style: redact } ] }
policies: [ { name: ci, groups: [ci], connections: [events], actions: { read: allow } } ]
`,
  );
  gateway = startAirlock(["gateway", "--config", join(dir, "gateway.yaml")], {});
  const listening = await gateway.waitForLog("gateway listening");
  port = Number(String((listening.listeners as Record<string, string>).events).split(":").pop());
  writeFileSync(
    join(dir, "agent.yaml"),
    `gateway: ${String(listening.grpc)}
name: vpc-a
key_env: AIRLOCK_AGENT_KEY
connections: [ { name: events, protocol: mongodb, host: 127.0.0.1, port: ${mongo.port}, user: agent, password_env: DB_PASSWORD } ]
`,
  );
  agent = startAirlock(["agent", "--config", join(dir, "agent.yaml")], { AIRLOCK_AGENT_KEY: agentKey, DB_PASSWORD: password });
  await agent.waitForLog("link to the gateway is up");
}, 120_000);

afterAll(async () => {
  await agent?.stop();
  await gateway?.stop();
  await mongo?.close();
  await issuer?.close();
  rmSync(dir, { recursive: true, force: true });
});

it(`keeps gateway and agent memory flat while a masked find streams ${DOCUMENTS.toLocaleString("en")} documents of 1 KB`, { timeout: 180_000 }, async () => {
  const token = await issuer.mint({ repository: "acme/api" });
  const client = await MongoClient.connect(`mongodb://127.0.0.1:${port}/?authMechanism=MONGODB-OIDC`, {
    serverSelectionTimeoutMS: 10_000,
    authMechanismProperties: { OIDC_CALLBACK: async () => ({ accessToken: token }) },
  });
  try {
    const big = client.db("shop").collection("big");
    await big.findOne({ _id: 0 });
    const baseline = { gateway: gateway.rss(), agent: agent.rss() };
    const peak = { ...baseline };
    const sampler = setInterval(() => {
      peak.gateway = Math.max(peak.gateway, gateway.rss());
      peak.agent = Math.max(peak.agent, agent.rss());
    }, 50);
    let count = 0;
    let bytes = 0;
    let leaked = 0;
    try {
      for await (const document of big.find({}, { batchSize: 1_000 })) {
        count++;
        bytes += String(document.filler).length;
        if (String(document.email).includes("@example.com")) leaked++;
      }
    } finally {
      clearInterval(sampler);
    }
    const growth = { gateway: (peak.gateway - baseline.gateway) / 2 ** 20, agent: (peak.agent - baseline.agent) / 2 ** 20 };
    console.log(`masked find of ${(bytes / 2 ** 20).toFixed(0)} MB: RSS growth gateway ${growth.gateway.toFixed(1)} MB, agent ${growth.agent.toFixed(1)} MB`);
    expect(count).toBe(DOCUMENTS);
    expect(leaked).toBe(0);
    expect(growth.gateway).toBeLessThan(100);
    expect(growth.agent).toBeLessThan(100);
  } finally {
    await client.close();
  }
});
