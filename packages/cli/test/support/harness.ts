import { createAgentMetrics, loadAgentSettings, startAgent, type Agent } from "@airlock/agent";
import { parseGatewayConfig, startGateway, type Gateway } from "@airlock/gateway";
import { createLogger } from "@airlock/runtime";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { inject } from "vitest";
import { startOidcIssuer, type OidcIssuer } from "../../../gateway/test/support/oidc-issuer.js";
import { startConnect, type ConnectHandle } from "../../src/connect/connect.js";
import { startMongoTestServer, type MongoTestServer } from "@airlock/mongo-test-server";
import { E2E_DATABASE, E2E_ROLE } from "./global-setup.js";

const CLI = resolve(import.meta.dirname, "../../src/bin.ts");

/** Options of {@link startHarness}. */
export interface HarnessOptions {
  /** Run the agent as its own process (so a test can kill it) instead of in the test's process. */
  readonly agentProcess?: boolean;
  /** Extra YAML appended under the orders connection (indented 4 spaces). */
  readonly connectionExtra?: string;
  readonly tls?: { certFile: string; keyFile: string };
  readonly maxMessageBytes?: number;
  readonly maxSession?: string;
  /** Bind the native listener on every address (to test clients that are not on loopback). */
  readonly listenAll?: boolean;
  /** Replaces the policies block (YAML, starting with `policies:`). */
  readonly policies?: string;
  /** Top-level YAML appended to gateway.yaml (reviewers, approvals, ...). */
  readonly extra?: string;
  /** The database the agent logs in to (default the e2e database). */
  readonly database?: string;
  /** The gateway's store (default an SQLite file in the harness folder). */
  readonly store?: string;
  /** The gateway's id in a shared store (default: the host name and the gRPC port). */
  readonly id?: string;
  /** The orders connection's database: the machine's PostgreSQL (default), its MariaDB, or a MongoDB stand-in the harness starts. */
  readonly protocol?: "postgres" | "mysql" | "mongodb";
}

/** A gateway, an agent and a token issuer, wired together against the machine's PostgreSQL. */
export interface Harness {
  readonly issuer: OidcIssuer;
  readonly gateway: Gateway;
  readonly dir: string;
  readonly dbPassword: string;
  readonly agentKey: string;
  /** The MongoDB stand-in behind the orders connection (protocol mongodb). */
  readonly mongo?: MongoTestServer;
  /** Every log line of gateway and agent (JSON). */
  readonly logs: string[];
  /** host and port of the orders connection's native listener. */
  readonly native: { host: string; port: number };
  /** A token of the CI identity (groups: feature-test via the repository rule). */
  token(claims?: Record<string, unknown>, options?: Parameters<OidcIssuer["mint"]>[1]): Promise<string>;
  /** Opens an `airlock connect` port with a fresh token. */
  connect(): Promise<ConnectHandle & { host: string; port: number }>;
  startAgent(): Promise<void>;
  /** Stops the agent: SIGKILL for a process, close() in-process. */
  killAgent(): void;
  restartGateway(): Promise<void>;
  /**
   * Starts another gateway with the same configuration (the same store, reviewers and policies) but
   * its own id and ports, as behind a load balancer; no agent links to it. Closed with the harness.
   */
  startPeer(id: string): Promise<Gateway>;
  close(): Promise<void>;
}

/** Starts a harness; close it in afterAll. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), "airlock-e2e-"));
  const issuer = await startOidcIssuer({ alg: "ES256" });
  const jwksFile = join(dir, "jwks.json");
  await issuer.writeJwksFile(jwksFile);
  const dbPassword = inject("dbPassword");
  const agentKey = randomBytes(24).toString("base64url");
  const logs: string[] = [];
  const destination = { write: (line: string) => void logs.push(line) };
  const logger = createLogger({ name: "airlock-gateway", level: "debug", destination });

  const gatewayYaml = (grpc: string, listen: string, id = options.id) => `
${id === undefined ? "" : `id: ${id}`}
listen: { grpc: ${grpc}, http: 127.0.0.1:0 }
${options.tls === undefined ? "" : `tls: { cert_file: ${options.tls.certFile}, key_file: ${options.tls.keyFile} }`}
identity:
  issuers:
    - { name: ci, issuer: "${issuer.url}", audience: airlock, jwks_file: ./jwks.json, groups_claim: groups, max_lifetime: 1h }
  group_rules:
    - { group: feature-test, issuer: ci, claims: { repository: acme/api } }
agents:
  - { name: vpc-a, key_sha256: ${createHash("sha256").update(agentKey).digest("hex")} }
connections:
  - name: orders
    protocol: ${options.protocol ?? "postgres"}
    agent: vpc-a
    listen: ${listen}
${options.connectionExtra ?? ""}
  - { name: billing, protocol: postgres, agent: vpc-a }
${options.policies ?? `policies:
  - name: tests-read
    groups: [feature-test]
    connections: [orders]
    actions: { read: allow, write: allow, ddl: allow, admin: deny, export: allow, dangerous: deny }
    unbounded_write: allow
    ${options.maxSession === undefined ? "" : `max_session: ${options.maxSession}`}`}
${options.extra ?? ""}
store: ${options.store ?? "sqlite:./airlock.db"}
recordings: ./recordings
limits: { max_message_bytes: ${options.maxMessageBytes ?? 64 << 20}, agent_timeout: 5s }
`;
  const configFile = join(dir, "gateway.yaml");
  let gateway = await startGateway({ config: parseGatewayConfig(configFile, gatewayYaml("127.0.0.1:0", options.listenAll === true ? "0.0.0.0:0" : "127.0.0.1:0")), logger });
  const grpc = gateway.grpcAddress;
  const nativeAddress = gateway.listeners.get("orders") ?? "";
  const native = { host: "127.0.0.1", port: Number(nativeAddress.slice(nativeAddress.lastIndexOf(":") + 1)) };

  // The MongoDB stand-in (no mongod can be had here): a user for the agent, with the e2e password.
  const mongo = options.protocol === "mongodb" ? await startMongoTestServer({ users: [{ username: E2E_ROLE, password: dbPassword, roles: ["root"] }], requireAuth: true }) : undefined;
  const agentYaml = join(dir, "agent.yaml");
  writeFileSync(
    agentYaml,
    `gateway: ${grpc}
name: vpc-a
key_env: AIRLOCK_AGENT_KEY
${options.tls === undefined ? "" : `tls: { ca_file: ${options.tls.certFile}, server_name: localhost }`}
connections:
  - { name: orders, ${options.protocol === "mysql" ? "protocol: mysql, port: 3306" : options.protocol === "mongodb" ? `protocol: mongodb, port: ${mongo?.port ?? 0}` : "port: 5432"}, host: 127.0.0.1, database: ${options.database ?? E2E_DATABASE}, user: ${E2E_ROLE}, password_env: ORDERS_DB_PASSWORD }
log: { level: debug }
`,
  );
  const agentEnv = { AIRLOCK_AGENT_KEY: agentKey, ORDERS_DB_PASSWORD: dbPassword };
  let agent: Agent | undefined;
  let child: ChildProcess | undefined;
  const connects: ConnectHandle[] = [];
  const peers: Gateway[] = [];

  const harness: Harness = {
    issuer,
    ...(mongo === undefined ? {} : { mongo }),
    get gateway() {
      return gateway;
    },
    dir,
    dbPassword,
    agentKey,
    logs,
    native,
    token: (claims = {}, mintOptions) => issuer.mint({ repository: "acme/api", ref: "refs/heads/main", ...claims }, mintOptions),
    async connect() {
      const token = await harness.token();
      const handle = await startConnect({
        connection: "orders",
        gateway: grpc,
        host: "127.0.0.1",
        port: 0,
        tokens: { kind: "env", description: "test", read: async () => token },
        ...(options.tls === undefined ? {} : { ca: readFileSync(options.tls.certFile), serverName: "localhost" }),
      });
      connects.push(handle);
      const port = Number(handle.address.slice(handle.address.lastIndexOf(":") + 1));
      return Object.assign(handle, { host: "127.0.0.1", port });
    },
    async startAgent() {
      const linked = gateway.hub.waitForAgent("vpc-a");
      if (options.agentProcess === true) {
        child = spawn(process.execPath, ["--conditions=@airlock/source", "--import", "tsx", CLI, "agent", "--config", agentYaml], {
          env: { ...process.env, ...agentEnv },
          stdio: ["ignore", "ignore", "pipe"],
        });
        child.stderr?.on("data", (chunk: Buffer) => logs.push(chunk.toString()));
      } else {
        agent = startAgent({
          settings: loadAgentSettings(agentYaml, agentEnv),
          logger: createLogger({ name: "airlock-agent", level: "debug", destination }),
          metrics: createAgentMetrics(),
          version: "test",
          backoff: { baseMs: 50, maxMs: 500 },
        });
      }
      await linked;
    },
    killAgent() {
      child?.kill("SIGKILL");
      child = undefined;
      agent?.close();
      agent = undefined;
    },
    async restartGateway() {
      await gateway.close();
      gateway = await startGateway({ config: parseGatewayConfig(configFile, gatewayYaml(grpc, nativeAddress)), logger });
    },
    async startPeer(id) {
      const peer = await startGateway({ config: parseGatewayConfig(configFile, gatewayYaml("127.0.0.1:0", "127.0.0.1:0", id)), logger });
      peers.push(peer);
      return peer;
    },
    async close() {
      for (const handle of connects) await handle.close();
      harness.killAgent();
      for (const peer of peers) await peer.close();
      await gateway.close();
      await issuer.close();
      await mongo?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await harness.startAgent();
  return harness;
}
