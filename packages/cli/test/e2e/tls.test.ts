import { pg as wire } from "@airlock/wire";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exchange, openRaw, startupMessage } from "../support/raw-client.js";
import { startHarness, type Harness } from "../support/harness.js";

const run = promisify(execFile);
let harness: Harness;
let certDir: string;

/** The first address of this machine that is not loopback, if it has one. */
async function externalAddress(): Promise<string | undefined> {
  const { networkInterfaces } = await import("node:os");
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) if (address.family === "IPv4" && !address.internal) return address.address;
  }
  return undefined;
}

beforeAll(async () => {
  certDir = mkdtempSync(join(tmpdir(), "airlock-tls-"));
  await run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", join(certDir, "gw.key"), "-out", join(certDir, "gw.crt")]);
  harness = await startHarness({ tls: { certFile: join(certDir, "gw.crt"), keyFile: join(certDir, "gw.key") }, listenAll: true });
});
afterAll(async () => {
  await harness?.close();
  rmSync(certDir, { recursive: true, force: true });
});

describe("TLS on the native listener", () => {
  it("serves psql with sslmode=require and node-postgres over TLS", async () => {
    const env = { ...process.env, PGHOST: "127.0.0.1", PGPORT: String(harness.native.port), PGUSER: "ci", PGDATABASE: "orders", PGSSLMODE: "require", PGPASSWORD: await harness.token() };
    const { stdout } = await run("psql", ["-AtX", "-c", "select ssl from pg_stat_ssl where pid = pg_backend_pid()", "-c", "select 'over tls'"], { env });
    // The gateway terminates the client's TLS; the agent's own link to the database is its own choice.
    expect(stdout.trim().split("\n")[1]).toBe("over tls");
    const client = new pg.Client({ ...harness.native, user: "ci", database: "orders", password: await harness.token(), ssl: { rejectUnauthorized: false } });
    await client.connect();
    expect((await client.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
    await client.end();
  });

  it("rejects bytes sent after SSLRequest before the TLS handshake (CVE-2021-23214)", async () => {
    const socket = await openRaw(harness.native.port);
    const result = await exchange(socket, Buffer.concat([wire.encodeSSLRequest(), startupMessage()]));
    expect(result.closed).toBe(true);
    expect(result.error).toMatchObject({ S: "FATAL", C: "08P01", M: "data received after SSLRequest before the TLS handshake" });
    expect(result.messages.some((message) => message.code === 0x53 && message.bytes.length === 1)).toBe(false);
  });

  it("refuses plaintext from an address that is not loopback, and accepts TLS from it", async () => {
    const address = await externalAddress();
    if (address === undefined) throw new Error("this machine has no non-loopback IPv4 address to test from");
    const plaintext = new pg.Client({ host: address, port: harness.native.port, user: "ci", database: "orders", password: await harness.token() });
    await expect(plaintext.connect()).rejects.toMatchObject({ code: "28000", message: "tls is required: connect with sslmode=require" });
    const secure = new pg.Client({ host: address, port: harness.native.port, user: "ci", database: "orders", password: await harness.token(), ssl: { rejectUnauthorized: false } });
    await secure.connect();
    expect((await secure.query("select 'tls from afar' as s")).rows).toEqual([{ s: "tls from afar" }]);
    await secure.end();
  });
});

describe("TLS on the HTTP API", () => {
  it("serves the API over HTTPS when the gateway has a certificate", async () => {
    const { request } = await import("node:https");
    const { readFileSync } = await import("node:fs");
    const body = await new Promise<string>((resolve, reject) => {
      const [host, port] = [harness.gateway.httpAddress.split(":")[0], Number(harness.gateway.httpAddress.split(":").pop())];
      request({ host, port, path: "/healthz", ca: readFileSync(join(certDir, "gw.crt")), servername: "localhost" }, (response) => {
        let text = "";
        response.on("data", (chunk: Buffer) => (text += chunk));
        response.on("end", () => resolve(text));
      })
        .on("error", reject)
        .end();
    });
    expect(JSON.parse(body)).toMatchObject({ status: "ok", agents: ["vpc-a"] });
  });

  it("refuses to serve the API in plaintext beyond loopback", async () => {
    const { parseGatewayConfig, startGateway, GatewayStartError } = await import("@airlock/gateway");
    const { createLogger } = await import("@airlock/runtime");
    const config = parseGatewayConfig(join(certDir, "gateway.yaml"), `
listen: { grpc: 127.0.0.1:0, http: 0.0.0.0:0 }
store: "sqlite::memory:"
identity: { issuers: [ { name: ci, issuer: "https://issuer.example", audience: airlock, jwks_file: ./none.json } ] }
agents: [ { name: a, key_sha256: "${"0".repeat(64)}" } ]
connections: [ { name: c, protocol: postgres, agent: a } ]
`);
    await expect(startGateway({ config, logger: createLogger({ name: "t", level: "fatal" }) })).rejects.toThrow(GatewayStartError);
    await expect(startGateway({ config, logger: createLogger({ name: "t", level: "fatal" }) })).rejects.toThrow(/listen.http: `0.0.0.0:0` is not a loopback address/);
  });
});
