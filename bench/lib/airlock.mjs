// Airlock as processes: a local token issuer (ES256 key, jwks.json, minted tokens), gateway.yaml
// and agent.yaml in the temp dir, `airlock gateway`, `airlock agent` and `airlock connect`.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { findLogLine, freePort, progress, runAsync, startProcess, tail, waitFor } from "./util.mjs";
import { BENCH_DB, BULK_TABLE } from "./postgres.mjs";

export const ROOT = resolve(import.meta.dirname, "../..");
export const CLI = join(ROOT, "packages/cli/bin/airlock.js");
const ISSUER = "https://bench.airlock.invalid";

/** jose, from the gateway package's dependencies (no install of our own). */
async function loadJose() {
  const require = createRequire(join(ROOT, "packages/gateway/package.json"));
  return import(pathToFileURL(require.resolve("jose")).href);
}

/** A local OIDC issuer: an ES256 key pair, its JWKS written to `jwksFile`, and mint(). */
export async function createIssuer(jwksFile) {
  const { SignJWT, exportJWK, generateKeyPair } = await loadJose();
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const kid = "bench-1";
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" }] }));
  return {
    issuer: ISSUER,
    /** A token for the bench identity (groups: `bench`, masked; `bench-unmasked` sees real values), valid `seconds`. */
    mint: (seconds = 4 * 3600, groups = ["bench"]) =>
      new SignJWT({ groups, repository: "acme/bench", ref: "refs/heads/main" })
        .setProtectedHeader({ alg: "ES256", kid, typ: "JWT" })
        .setIssuer(ISSUER)
        .setAudience("airlock")
        .setSubject("repo:acme/bench:ref:refs/heads/main")
        .setIssuedAt()
        .setExpirationTime(`${seconds}s`)
        .sign(privateKey),
  };
}

/** True when `pnpm build` has made the packages' dist/ (the CLI runs from it). */
export function checkBuilt() {
  const needed = ["cli", "gateway", "agent", "wire", "policy", "proto", "runtime"].map((name) => join(ROOT, "packages", name, "dist", "index.js"));
  const missing = needed.filter((file) => !existsSync(file));
  if (missing.length > 0) throw new Error(`the workspace is not built (${missing.map((file) => file.slice(ROOT.length + 1)).join(", ")} missing): run \`pnpm build\` (or scripts/bootstrap.sh) first`);
}

/**
 * The bench connections: `bench` on 5432, `bench_many` on the server of the 200-session workload,
 * and, with `mysql`, a MySQL connection (`mysql.name`) to the machine's MariaDB, its listener at
 * `listeners[mysql.name]`, masking the same two columns (schema = the MySQL database); with `mongo`,
 * a MongoDB connection (`mongo.name`) to the stand-in, masking the same two fields of its bulk
 * collection (database.collection.field).
 */
function gatewayYaml({ grpcPort, httpPort, agentKeyHash, listeners, fsync, masking, mysql, mongo }) {
  const connections = Object.entries(listeners)
    .map(([name, port]) => {
      const isMysql = mysql !== undefined && name === mysql.name;
      const isMongo = mongo !== undefined && name === mongo.name;
      const lines = [`  - name: ${name}`, `    protocol: ${isMysql ? "mysql" : isMongo ? "mongodb" : "postgres"}`, "    agent: bench-agent", `    listen: 127.0.0.1:${port}`];
      if (masking) {
        const prefix = isMongo ? `${mongo.database}.${mongo.collection}` : `${isMysql ? mysql.database : "public"}.${BULK_TABLE}`;
        lines.push(
          "    masking:",
          "      columns:",
          `        - { column: ${prefix}.email, style: partial, keep: 4 }`,
          `        - { column: ${prefix}.card_number, style: partial, keep: 4 }`,
        );
      }
      return lines.join("\n");
    })
    .join("\n");
  return `# Written by bench/run.mjs: identity (local ES256 issuer), statement policy and recording on.
listen: { grpc: 127.0.0.1:${grpcPort}, http: 127.0.0.1:${httpPort} }
store: sqlite:./airlock.db
recordings: ./recordings
recording: { fsync: ${fsync}, interval: 10ms, fail_closed: true, sample_rows: 20 }
identity:
  issuers:
    - { name: bench, issuer: ${ISSUER}, audience: airlock, jwks_file: ./jwks.json, groups_claim: groups }
agents:
  - { name: bench-agent, key_sha256: ${agentKeyHash} }
connections:
${connections}
policies:
  - name: bench-read
    groups: [bench]
    connections: [${Object.keys(listeners).join(", ")}]
    actions: { read: allow, write: deny, ddl: deny, admin: deny, export: allow, dangerous: deny }
  - name: bench-unmasked
    groups: [bench-unmasked]
    connections: [${Object.keys(listeners).join(", ")}]
    actions: { read: allow, write: deny, ddl: deny, admin: deny, export: allow, dangerous: deny }
    unmasked: true
log: { level: info }
`;
}

/**
 * Starts a gateway and an agent as processes in `dir` (SQLite store and recordings there too).
 * `backends`: connection name -> PostgreSQL port. `mysql`: { name, port, database, user,
 * passwordFile } adds a MySQL connection (protocol: mysql) carried by the same gateway and agent;
 * `mongo`: { name, port, database, collection, user, passwordFile } a MongoDB one (protocol:
 * mongodb, the agent logs in by SCRAM with authSource admin), masking `collection`'s two fields.
 * `cpuProf`: a folder for node --cpu-prof.
 * Returns { gateway, agent, listeners: { name: port }, grpc, dir, stop() }.
 */
export async function startAirlock({ dir, jwksFile, backends, fsync = "interval", cpuProfDir, masking = false, mysql, mongo }) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "jwks.json"), readFileSync(jwksFile));
  const agentKey = randomBytes(32).toString("base64url");
  const grpcPort = await freePort();
  const httpPort = await freePort();
  const listeners = {};
  for (const name of Object.keys(backends)) listeners[name] = await freePort();
  if (mysql !== undefined) listeners[mysql.name] = await freePort();
  if (mongo !== undefined) listeners[mongo.name] = await freePort();
  writeFileSync(join(dir, "gateway.yaml"), gatewayYaml({ grpcPort, httpPort, agentKeyHash: createHash("sha256").update(agentKey).digest("hex"), listeners, fsync, masking, mysql, mongo }));
  const agentConnections = Object.entries(backends).map(([name, port]) => `  - { name: ${name}, host: 127.0.0.1, port: ${port}, database: ${BENCH_DB}, user: postgres }`);
  if (mysql !== undefined) {
    agentConnections.push(`  - { name: ${mysql.name}, protocol: mysql, host: 127.0.0.1, port: ${mysql.port}, database: ${mysql.database}, user: ${mysql.user}, password_file: ${JSON.stringify(mysql.passwordFile)} }`);
  }
  if (mongo !== undefined) {
    agentConnections.push(`  - { name: ${mongo.name}, protocol: mongodb, host: 127.0.0.1, port: ${mongo.port}, user: ${mongo.user}, password_file: ${JSON.stringify(mongo.passwordFile)}, auth_source: admin, mechanism: SCRAM-SHA-256 }`);
  }
  writeFileSync(
    join(dir, "agent.yaml"),
    `gateway: 127.0.0.1:${grpcPort}
name: bench-agent
key_env: AIRLOCK_AGENT_KEY
connections:
${agentConnections.join("\n")}
log: { level: info }
`,
  );
  const nodeArgs = (name) => (cpuProfDir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", cpuProfDir, "--cpu-prof-name", `${name}.cpuprofile`]);
  const gateway = startProcess("airlock gateway", process.execPath, [...nodeArgs("gateway"), CLI, "gateway", "--config", join(dir, "gateway.yaml")], {
    logFile: join(dir, "gateway.log"),
    cwd: dir,
  });
  const listening = await waitFor("the gateway to listen", () => findLogLine(gateway.logFile, "gateway listening"), 30_000, gateway);
  const agent = startProcess("airlock agent", process.execPath, [...nodeArgs("agent"), CLI, "agent", "--config", join(dir, "agent.yaml")], {
    logFile: join(dir, "agent.log"),
    cwd: dir,
    env: { ...process.env, AIRLOCK_AGENT_KEY: agentKey },
  });
  await waitFor("the agent's link to the gateway", () => findLogLine(agent.logFile, "link to the gateway is up"), 30_000, agent);
  const ports = {};
  for (const [name, address] of Object.entries(listening.listeners)) ports[name] = Number(String(address).split(":").pop());
  return {
    gateway,
    agent,
    listeners: ports,
    grpc: String(listening.grpc),
    dir,
    async stop() {
      await agent.stop();
      await gateway.stop();
    },
  };
}

/** `airlock connect <connection>` as a process: resolves with { handle, port } once it listens. */
export async function startConnect({ dir, grpc, connection, tokenFile, cpuProfDir }) {
  const nodeArgs = cpuProfDir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", cpuProfDir, "--cpu-prof-name", `connect-${connection}.cpuprofile`];
  const handle = startProcess(`airlock connect ${connection}`, process.execPath, [...nodeArgs, CLI, "connect", connection, "--gateway", grpc, "--token-file", tokenFile, "--port", "0", "--json"], {
    logFile: join(dir, `connect-${connection}.log`),
    cwd: dir,
    pipeStdout: true,
  });
  let stdout = "";
  handle.child.stdout.setEncoding("utf8").on("data", (text) => (stdout += text));
  const line = await waitFor(`airlock connect ${connection} to listen`, () => stdout.split("\n").find((text) => text.startsWith("{")), 30_000, handle);
  const { address } = JSON.parse(line);
  return { handle, port: Number(address.split(":").pop()) };
}

/**
 * Does a gateway configured to mask start? Masking is not built yet: such a gateway refuses to
 * start. Returns { available, message }.
 */
export async function probeMasking({ dir, jwksFile, backendPort }) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "jwks.json"), readFileSync(jwksFile));
  const agentKey = randomBytes(32).toString("base64url");
  writeFileSync(
    join(dir, "gateway.yaml"),
    gatewayYaml({ grpcPort: await freePort(), httpPort: await freePort(), agentKeyHash: createHash("sha256").update(agentKey).digest("hex"), listeners: { bench: await freePort() }, fsync: "interval", masking: true }),
  );
  void backendPort;
  const gateway = startProcess("airlock gateway (masking probe)", process.execPath, [CLI, "gateway", "--config", join(dir, "gateway.yaml")], { logFile: join(dir, "gateway.log"), cwd: dir });
  try {
    await waitFor("the masking probe gateway", () => gateway.exited || findLogLine(gateway.logFile, "gateway listening"), 30_000);
  } catch {}
  if (gateway.exited) {
    const text = tail(gateway.logFile, 5);
    let message = text;
    for (const line of text.split("\n").reverse()) {
      try {
        message = JSON.parse(line).msg ?? line;
      } catch {
        message = line;
      }
      if (message) break;
    }
    return { available: false, message: message.trim() };
  }
  await gateway.stop();
  return { available: true, message: "a gateway configured to mask email and card_number started" };
}

/** Writes the token for `airlock connect --token-file` and the native listener's PGPASSWORD. */
export async function writeToken(issuer, file, groups = ["bench"]) {
  const token = await issuer.mint(4 * 3600, groups);
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return token;
}

void progress;
void runAsync;
