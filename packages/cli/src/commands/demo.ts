import { createAgentMetrics, loadAgentSettings, startAgent } from "@airlock/agent";
import { loadGatewayConfig, startGateway } from "@airlock/gateway";
import { createLogger, logFile } from "@airlock/runtime";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { VERSION } from "../version.js";
import type { Command } from "./command.js";

const DEMO_ISSUER = "https://demo.airlock.invalid";
const DEMO_ROLE = "airlock_demo_svc";
const DEMO_DATABASE = "airlock_demo";

export const demoCommand: Command = {
  name: "demo",
  summary: "run a gateway and an agent against the local PostgreSQL, with sample data",
  usage: `airlock demo [options]

Creates a sample database (${DEMO_DATABASE}) and a service role with a SCRAM password on the local
PostgreSQL, a local token issuer, gateway.yaml and agent.yaml under --dir, then runs a gateway and
an agent on the embedded default and prints how to connect with psql.

Options:
  --admin-url URL   PostgreSQL URL with rights to create roles and databases
                    (default postgres://postgres@127.0.0.1:5432/postgres, or AIRLOCK_DEMO_ADMIN_URL)
  --dir DIR         where the demo keeps its files (default ./data/demo)
  --port N          native PostgreSQL listener of the demo connection (default 15432)
  --grpc-port N     the gateway's gRPC port (default 8443)
  --http-port N     the gateway's HTTP port: /metrics, /healthz (default 8080)`,
  async run(argv, env, io) {
    const { values } = parseArgs({
      args: argv,
      options: {
        "admin-url": { type: "string" },
        dir: { type: "string", default: "./data/demo" },
        port: { type: "string", default: "15432" },
        "grpc-port": { type: "string", default: "8443" },
        "http-port": { type: "string", default: "8080" },
      },
    });
    const dir = resolve(values.dir);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const adminUrl = values["admin-url"] ?? env.AIRLOCK_DEMO_ADMIN_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

    io.out(`airlock demo: preparing ${DEMO_DATABASE} on ${redactUrl(adminUrl)}`);
    const dbPassword = readOrCreate(resolve(dir, "db-password"), () => randomBytes(18).toString("base64url"));
    await prepareDatabase(adminUrl, dbPassword);

    const agentKey = readOrCreate(resolve(dir, "agent-key"), () => randomBytes(32).toString("base64url"));
    const { token, jwksFile } = await demoIssuer(dir);
    writeFileSync(resolve(dir, "jwks.json"), jwksFile);
    const tokenFile = resolve(dir, "token");
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    const adminHost = new URL(adminUrl);
    writeFileSync(resolve(dir, "gateway.yaml"), gatewayYaml(values, sha256(agentKey)));
    writeFileSync(
      resolve(dir, "agent.yaml"),
      `gateway: 127.0.0.1:${values["grpc-port"]}
name: demo-agent
key_file: ./agent-key
metrics: { listen: 127.0.0.1:9465 }
connections:
  - { name: orders, host: ${adminHost.hostname || "127.0.0.1"}, port: ${adminHost.port || 5432}, database: ${DEMO_DATABASE}, user: ${DEMO_ROLE}, password_file: ./db-password }
`,
    );

    const destination = logFile(resolve(dir, "airlock.log"));
    const gatewayLogger = createLogger({ name: "airlock-gateway", destination });
    const agentLogger = createLogger({ name: "airlock-agent", destination });
    const gateway = await startGateway({ config: loadGatewayConfig(resolve(dir, "gateway.yaml")), logger: gatewayLogger });
    const agent = startAgent({ settings: loadAgentSettings(resolve(dir, "agent.yaml"), env), logger: agentLogger, metrics: createAgentMetrics(), version: VERSION });
    await agent.link.ready();
    const listen = gateway.listeners.get("orders") ?? "";
    const port = listen.slice(listen.lastIndexOf(":") + 1);
    io.out(`airlock demo: gateway on ${gateway.grpcAddress} (gRPC), http://${gateway.httpAddress}/metrics; agent linked`);
    io.out(`  files:  ${dir} (gateway.yaml, agent.yaml, token; logs in airlock.log)`);
    io.out(`  token:  ${tokenFile} (identity demo-ci, groups feature-test and dba, valid 1h)`);
    io.out("");
    io.out("Connect with psql, the token as password, to the native listener:");
    io.out(`  PGPASSWORD="$(cat ${tokenFile})" psql "host=127.0.0.1 port=${port} dbname=orders user=demo-ci sslmode=disable" -c "select * from customers limit 3"`);
    io.out("  (email and card_number are masked; a DELETE is denied; an INSERT waits for a reviewer)");
    io.out("");
    io.out("or through a local port opened by airlock connect (as a CI job would):");
    io.out(`  npx --no airlock connect orders --gateway ${gateway.grpcAddress} --token-file ${tokenFile} --port 25432`);
    io.out(`  psql "host=127.0.0.1 port=25432 dbname=orders user=demo-ci sslmode=disable"`);
    io.out("");
    io.out(`Recorded sessions: npx --no airlock sessions list --config ${resolve(dir, "gateway.yaml")}`);
    io.out("");
    io.out("Ctrl-C stops the demo.");
    await io.untilSignal();
    agent.close();
    await gateway.close();
    destination.flushSync();
    return 0;
  },
};

function gatewayYaml(values: Record<string, string | boolean | undefined>, agentKeyHash: string): string {
  return `# Generated by \`airlock demo\`.
listen: { grpc: 127.0.0.1:${values["grpc-port"]}, http: 127.0.0.1:${values["http-port"]} }
store: sqlite:./airlock.db
recordings: ./recordings
identity:
  issuers:
    - name: demo
      issuer: ${DEMO_ISSUER}
      audience: airlock
      jwks_file: ./jwks.json
      groups_claim: groups
      max_lifetime: 1h
agents:
  - { name: demo-agent, key_sha256: ${agentKeyHash} }
connections:
  - name: orders
    protocol: postgres
    agent: demo-agent
    listen: 127.0.0.1:${values.port}
    masking:
      columns:
        - { column: public.customers.email, style: redact }
        - { column: public.customers.card_number, style: partial, keep: 4 }
      detectors: [card_number, email, secret]
      inference: allow
policies:
  - name: tests-read
    groups: [feature-test]
    connections: [orders]
    actions: { read: allow, write: deny, ddl: deny, admin: deny, export: review, dangerous: deny }
    max_session: 1h
  - name: dba
    groups: [dba]
    connections: [orders]
    actions: { read: allow, write: review, ddl: review, admin: review, export: allow, dangerous: deny }
`;
}

function readOrCreate(file: string, make: () => string): string {
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  const value = make();
  writeFileSync(file, `${value}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return value;
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(the admin URL)";
  }
}

/** A signing key kept in the demo folder, its JWKS, and a fresh one-hour token. */
async function demoIssuer(dir: string): Promise<{ token: string; jwksFile: string }> {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: "demo-1", alg: "ES256", use: "sig" };
  const token = await new SignJWT({ groups: ["feature-test", "dba"], repository: "acme/api", ref: "refs/heads/main" })
    .setProtectedHeader({ alg: "ES256", kid: "demo-1" })
    .setIssuer(DEMO_ISSUER)
    .setAudience("airlock")
    .setSubject("demo-ci")
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(privateKey);
  void dir;
  return { token, jwksFile: `${JSON.stringify({ keys: [jwk] }, null, 2)}\n` };
}

async function prepareDatabase(adminUrl: string, password: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const role = await admin.query("select 1 from pg_roles where rolname = $1", [DEMO_ROLE]);
    const escaped = password.replaceAll("'", "''");
    // SET password_encryption so the role gets a SCRAM verifier whatever the server default.
    await admin.query("set password_encryption = 'scram-sha-256'");
    await admin.query(`${role.rowCount === 0 ? "create" : "alter"} role ${DEMO_ROLE} login password '${escaped}'`);
    const database = await admin.query("select 1 from pg_database where datname = $1", [DEMO_DATABASE]);
    if (database.rowCount === 0) await admin.query(`create database ${DEMO_DATABASE} owner ${DEMO_ROLE}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${DEMO_DATABASE}`;
  const owner = new pg.Client({ connectionString: url.toString() });
  await owner.connect();
  try {
    await owner.query(`set role ${DEMO_ROLE}`);
    await owner.query(`
      create table if not exists customers (id serial primary key, name text not null, email text not null, card_number text, created_at timestamptz default now());
      create table if not exists orders (id serial primary key, customer_id int references customers(id), total numeric(10,2) not null, status text not null default 'new');
      insert into customers (name, email, card_number)
        select 'Customer ' || i, 'customer' || i || '@example.com', '4111 1111 1111 ' || lpad((1111 + i)::text, 4, '0')
        from generate_series(1, 100) i where not exists (select 1 from customers);
      insert into orders (customer_id, total, status)
        select 1 + (i % 100), round((random() * 500)::numeric, 2), (array['new','paid','shipped'])[1 + i % 3]
        from generate_series(1, 1000) i where not exists (select 1 from orders);
    `);
  } finally {
    await owner.end();
  }
}
