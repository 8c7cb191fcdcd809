import { backend, createPgFramer, pg } from "@airlock/wire";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pgClient from "pg";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import { startOidcIssuer, type OidcIssuer } from "../../../gateway/test/support/oidc-issuer.js";
import { E2E_DATABASE, E2E_ROLE } from "../support/global-setup.js";
import { startAirlock, type AirlockProcess } from "../support/processes.js";
import { openRaw, startupMessage } from "../support/raw-client.js";

/** Size of the slowly read result; AIRLOCK_SLOW_READ_MB=1024 reproduces the 1 GB figure in docs. */
const RESULT_MB = Number(process.env.AIRLOCK_SLOW_READ_MB ?? 256);
const ROW_BYTES = 8_000;

let dir: string;
let issuer: OidcIssuer;
let gateway: AirlockProcess;
let agent: AirlockProcess;
let port: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "airlock-mem-"));
  issuer = await startOidcIssuer({ alg: "ES256" });
  await issuer.writeJwksFile(join(dir, "jwks.json"));
  const agentKey = randomBytes(24).toString("base64url");
  writeFileSync(
    join(dir, "gateway.yaml"),
    `listen: { grpc: 127.0.0.1:0, http: 127.0.0.1:0 }
identity:
  issuers: [ { name: ci, issuer: "${issuer.url}", audience: airlock, jwks_file: ./jwks.json } ]
  group_rules: [ { group: ci, issuer: ci, claims: { repository: acme/api } } ]
agents: [ { name: vpc-a, key_sha256: ${createHash("sha256").update(agentKey).digest("hex")} } ]
connections:
  - name: orders
    protocol: postgres
    agent: vpc-a
    listen: 127.0.0.1:0
    masking: { columns: [ { column: public.bulk_people.email, style: redact }, { column: public.bulk_people.card, style: partial, keep: 4 } ] }
policies: [ { name: ci, groups: [ci], connections: [orders], actions: { read: allow } } ]
`,
  );
  // A million rows of five columns, two of them sensitive, for the masked read.
  const owner = new pgClient.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database: E2E_DATABASE });
  await owner.connect();
  await owner.query(`set role ${E2E_ROLE};
    create table if not exists bulk_people (id int primary key, name text, email text, card text, city text);
    insert into bulk_people select g, 'name ' || g, 'person' || g || '@example.com', '4111 1111 1111 ' || lpad((g % 10000)::text, 4, '0'), 'city ' || (g % 100)
      from generate_series(1, 1000000) g where not exists (select 1 from bulk_people)`);
  await owner.end();
  gateway = startAirlock(["gateway", "--config", join(dir, "gateway.yaml")], {});
  const listening = await gateway.waitForLog("gateway listening");
  port = Number(String((listening.listeners as Record<string, string>).orders).split(":").pop());
  writeFileSync(
    join(dir, "agent.yaml"),
    `gateway: ${String(listening.grpc)}
name: vpc-a
key_env: AIRLOCK_AGENT_KEY
connections: [ { name: orders, host: 127.0.0.1, port: 5432, database: ${E2E_DATABASE}, user: ${E2E_ROLE}, password_env: DB_PASSWORD } ]
`,
  );
  agent = startAirlock(["agent", "--config", join(dir, "agent.yaml")], { AIRLOCK_AGENT_KEY: agentKey, DB_PASSWORD: inject("dbPassword") });
  await agent.waitForLog("link to the gateway is up");
});

afterAll(async () => {
  await agent?.stop();
  await gateway?.stop();
  await issuer?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("a client that reads slowly", () => {
  it(`keeps gateway and agent memory flat while it reads ${RESULT_MB} MB`, async () => {
    const rows = Math.ceil((RESULT_MB << 20) / ROW_BYTES);
    const socket = await openRaw(port);
    const framer = createPgFramer({ maxMessageBytes: 1 << 20 });
    // Warm up first: the first statement grows the parser's WebAssembly memory once, for good.
    let warm: () => void = () => undefined;
    const warmed = new Promise<void>((resolve) => (warm = resolve));
    let baseline = { gateway: 0, agent: 0 };
    let peak = { ...baseline };
    let received = 0;
    let dataRows = 0;
    let done = false;
    let warming = true;
    let readies = 0;
    const finished = new Promise<void>((resolve, reject) => {
      socket.on("data", (chunk: Buffer) => {
        if (warming) {
          // Two ReadyForQuery: one after startup, one after the warm-up query.
          readies += framer.push(chunk).filter((message) => message.code === backend.ReadyForQuery).length;
          if (readies === 2) {
            warming = false;
            warm();
          }
          return;
        }
        received += chunk.length;
        for (const message of framer.push(chunk)) {
          if (message.code === backend.DataRow) dataRows++;
          else if (message.code === backend.ErrorResponse) reject(new Error(pg.decodeErrorFields(message.bytes).M));
          else if (message.code === backend.ReadyForQuery && dataRows > 0) {
            done = true;
            resolve();
          }
        }
        // Read slowly: take one chunk, then pause so that the gateway's writes back up.
        socket.pause();
        setTimeout(() => socket.resume(), 1);
      });
      socket.on("close", () => (done ? resolve() : reject(new Error("closed early"))));
    });
    socket.write(Buffer.concat([startupMessage(), pg.encodePasswordMessage(await issuer.mint({ repository: "acme/api" })), pg.encodeQuery("select 1 as warm")]));
    await warmed;
    baseline = { gateway: gateway.rss(), agent: agent.rss() };
    peak = { ...baseline };
    socket.write(pg.encodeQuery(`select g, repeat('x', ${ROW_BYTES - 40}) from generate_series(1, ${rows}) g`));
    const sampler = setInterval(() => {
      peak.gateway = Math.max(peak.gateway, gateway.rss());
      peak.agent = Math.max(peak.agent, agent.rss());
    }, 50);
    await finished;
    clearInterval(sampler);
    socket.destroy();
    const growth = { gateway: (peak.gateway - baseline.gateway) / 2 ** 20, agent: (peak.agent - baseline.agent) / 2 ** 20 };
    console.log(`slow read of ${(received / 2 ** 20).toFixed(0)} MB: RSS growth gateway ${growth.gateway.toFixed(1)} MB, agent ${growth.agent.toFixed(1)} MB`);
    expect(dataRows).toBe(rows);
    expect(received).toBeGreaterThan((RESULT_MB << 20) * 0.99);
    expect(growth.gateway).toBeLessThan(100);
    expect(growth.agent).toBeLessThan(100);
  });

  it("stops reading from the database while the client reads nothing", async () => {
    const socket = await openRaw(port);
    socket.pause();
    socket.write(Buffer.concat([startupMessage(), pg.encodePasswordMessage(await issuer.mint({ repository: "acme/api" }))]));
    socket.write(pg.encodeQuery(`select g, repeat('y', 8000) from generate_series(1, 200000) g`));
    const baseline = { gateway: gateway.rss(), agent: agent.rss() };
    // The backend ends up blocked writing to the agent: the agent stopped reading its socket
    // because the gateway stopped taking frames because the client stopped reading.
    const admin = new pgClient.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database: "postgres" });
    await admin.connect();
    let waits = 0;
    for (let i = 0; i < 200 && waits < 10; i++) {
      const found = await admin.query("select wait_event from pg_stat_activity where usename = $1 and query like '%repeat(''y''%'", [E2E_ROLE]);
      waits = found.rows[0]?.wait_event === "ClientWrite" ? waits + 1 : 0;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await admin.end();
    const growth = { gateway: (gateway.rss() - baseline.gateway) / 2 ** 20, agent: (agent.rss() - baseline.agent) / 2 ** 20 };
    socket.destroy();
    expect(waits).toBe(10);
    expect(growth.gateway).toBeLessThan(100);
    expect(growth.agent).toBeLessThan(100);
  });

  it("masks a read of 1,000,000 rows as it streams, with flat memory", async () => {
    const socket = await openRaw(port);
    const framer = createPgFramer({ maxMessageBytes: 1 << 20 });
    let readies = 0;
    let rows = 0;
    let first: (Buffer | null)[] | undefined;
    let peak = { gateway: 0, agent: 0 };
    let baseline = { gateway: 0, agent: 0 };
    let warm: () => void = () => undefined;
    const warmed = new Promise<void>((resolve) => (warm = resolve));
    const finished = new Promise<void>((resolve, reject) => {
      socket.on("data", (chunk: Buffer) => {
        for (const message of framer.push(chunk)) {
          if (message.code === backend.ReadyForQuery && ++readies === 2) warm();
          if (readies < 2) continue;
          if (message.code === backend.DataRow) {
            rows++;
            first ??= pg.decodeDataRow(message.bytes).map((value) => (value === null ? null : Buffer.from(value)));
          } else if (message.code === backend.ErrorResponse) reject(new Error(pg.decodeErrorFields(message.bytes).M));
          else if (message.code === backend.ReadyForQuery && readies === 3) resolve();
        }
      });
    });
    socket.write(Buffer.concat([startupMessage(), pg.encodePasswordMessage(await issuer.mint({ repository: "acme/api" })), pg.encodeQuery("select 1 from bulk_people limit 1")]));
    await warmed;
    baseline = { gateway: gateway.rss(), agent: agent.rss() };
    peak = { ...baseline };
    const sampler = setInterval(() => {
      peak.gateway = Math.max(peak.gateway, gateway.rss());
      peak.agent = Math.max(peak.agent, agent.rss());
    }, 50);
    const started = performance.now();
    socket.write(pg.encodeQuery("select id, name, email, card, city from bulk_people"));
    await finished;
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    socket.destroy();
    const growth = { gateway: (peak.gateway - baseline.gateway) / 2 ** 20, agent: (peak.agent - baseline.agent) / 2 ** 20 };
    console.log(`masked read of ${rows} rows in ${seconds.toFixed(1)} s (${Math.round(rows / seconds)} rows/s): RSS growth gateway ${growth.gateway.toFixed(1)} MB, agent ${growth.agent.toFixed(1)} MB`);
    expect(rows).toBe(1_000_000);
    expect(first?.map((value) => value?.toString())).toEqual([expect.any(String), expect.stringMatching(/^name /), "[masked]", expect.stringMatching(/^\*{4} \*{4} \*{4} \d{4}$/), expect.stringMatching(/^city /)]);
    expect(growth.gateway).toBeLessThan(100);
    expect(growth.agent).toBeLessThan(100);
  });
});
