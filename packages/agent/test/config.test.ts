import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../runtime/src/index.js";
import { loadAgentSettings, type AgentSettings } from "../src/config/load.js";

/** A PostgreSQL connection's target, or undefined. */
function pgTarget(settings: AgentSettings, name: string) {
  const target = settings.targets.get(name);
  return target?.protocol === "postgres" ? target.postgres : undefined;
}

const dir = mkdtempSync(join(tmpdir(), "airlock-agent-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KEY = "agent-key-7f3a9c1e5b2d8f4a6c0e";
const PASSWORD = "db-password-Zq8#kLm2$vN5";
const OTHER_PASSWORD = "billing-password-Yw4&hJt9";

// The sample agent.yaml of the contract (design.md, "Contract v1"), without its optional tls line.
const sample = `gateway: 127.0.0.1:8443
name: vpc-a
key_env: AIRLOCK_AGENT_KEY          # or key_file
connections:
  - { name: orders, host: 127.0.0.1, port: 5432, database: test, user: airlock_svc,
      password_env: ORDERS_DB_PASSWORD }   # or password_file
`;

let files = 0;
/** Writes `text` as agent.yaml in a new folder of the temp dir, with `extra` files beside it; returns its path. */
function write(text: string, extra: Readonly<Record<string, string>> = {}): string {
  const folder = join(dir, String(files++));
  mkdirSync(folder);
  const file = join(folder, "agent.yaml");
  writeFileSync(file, text);
  for (const [name, content] of Object.entries(extra)) writeFileSync(join(folder, name), content);
  return file;
}

/** Loads, expecting a ConfigError naming the file; returns its problems. */
function problems(file: string, env: Readonly<Record<string, string | undefined>>): readonly string[] {
  let error: unknown;
  try {
    loadAgentSettings(file, env);
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(ConfigError);
  const { message, problems: found } = error as ConfigError;
  expect(message.startsWith(`${file}: `)).toBe(true);
  return found;
}

/** Asserts no secret value appears in the error's message, problems or stack. */
function leaksNothing(file: string, env: Readonly<Record<string, string | undefined>>, secrets: readonly string[]): void {
  let error: unknown;
  try {
    loadAgentSettings(file, env);
  } catch (caught) {
    error = caught;
  }
  const text = `${(error as Error).message}\n${(error as Error).stack ?? ""}\n${inspect(error, { depth: Infinity })}\n${JSON.stringify(error)}`;
  for (const secret of secrets) expect(text).not.toContain(secret);
}

function expectRedacted(settings: AgentSettings, secrets: readonly string[]): void {
  const printed = [
    JSON.stringify(settings),
    JSON.stringify([...settings.targets]),
    JSON.stringify(settings.key),
    String(settings.key),
    `${settings.key}`,
    inspect(settings, { depth: Infinity, showHidden: true }),
    inspect(settings.targets, { depth: Infinity }),
    inspect([...settings.targets.values()], { depth: Infinity }),
  ];
  for (const text of printed) for (const secret of secrets) expect(text).not.toContain(secret);
}

describe("loadAgentSettings", () => {
  it("reads the contract's agent.yaml with key_env and password_env", () => {
    const file = write(sample);
    const settings = loadAgentSettings(file, { AIRLOCK_AGENT_KEY: KEY, ORDERS_DB_PASSWORD: PASSWORD });
    expect(settings.key.reveal()).toBe(KEY);
    expect(settings.config).toMatchObject({ gateway: "127.0.0.1:8443", name: "vpc-a", key_env: "AIRLOCK_AGENT_KEY" });
    expect(settings.config.limits).toEqual({ max_message_bytes: 64 << 20, connect_timeout: 10_000 });
    expect(settings.gatewayCa).toBeUndefined();
    expect([...settings.targets.keys()]).toEqual(["orders"]);
    const target = settings.targets.get("orders");
    expect(target?.protocol).toBe("postgres");
    const orders = target?.protocol === "postgres" ? target.postgres : undefined;
    expect(orders).toMatchObject({
      host: "127.0.0.1",
      port: 5432,
      database: "test",
      user: "airlock_svc",
      tls: { mode: "disable" },
      connectTimeoutMs: 10_000,
      maxMessageBytes: 64 << 20,
    });
    expect(orders?.password?.reveal()).toBe(PASSWORD);
    expect(Object.isFrozen(settings)).toBe(true);
    expect(Object.isFrozen(settings.config)).toBe(true);
  });

  // BUG (reported): the contract's optional `tls: { ca_file: ca.crt }` makes loadAgentSettings throw
  // "TypeError: Cannot freeze array buffer views with elements": deepFreeze (runtime/src/config.ts)
  // calls Object.freeze on the gatewayCa Buffer (agent/src/config/load.ts, the final deepFreeze).
  // Marked `fails` so the suite documents the expected behaviour; turn it into `it` once fixed.
  it("reads the gateway CA of tls.ca_file, relative to the config file", () => {
    const file = write(sample.replace("connections:", "tls: { ca_file: ca.crt }            # optional\nconnections:"), { "ca.crt": "CA PEM\n" });
    const settings = loadAgentSettings(file, { AIRLOCK_AGENT_KEY: KEY, ORDERS_DB_PASSWORD: PASSWORD });
    expect(settings.gatewayCa?.toString()).toBe("CA PEM\n");
  });

  it("reads a connection's CA without trouble (it sits in the targets map)", () => {
    const file = write(sample.replace("password_env: ORDERS_DB_PASSWORD }", "password_env: ORDERS_DB_PASSWORD, tls: { mode: verify-full, ca_file: db-ca.pem, server_name: db.internal } }"), {
      "db-ca.pem": "DB CA\n",
    });
    const target = loadAgentSettings(file, { AIRLOCK_AGENT_KEY: KEY, ORDERS_DB_PASSWORD: PASSWORD }).targets.get("orders");
    const orders = target?.protocol === "postgres" ? target.postgres : undefined;
    expect(orders?.tls.mode).toBe("verify-full");
    expect(orders?.tls.servername).toBe("db.internal");
    expect(orders?.tls.ca?.toString()).toBe("DB CA\n");
  });

  it("reads the key from key_file (trimmed, relative to the config file) and a password from password_file", () => {
    const text = `gateway: gw.internal:8443
name: vpc-a
key_file: ./agent-key
connections:
  - { name: orders, host: db, port: 5432, user: airlock_svc, password_file: secrets/orders }
  - { name: billing, host: db, port: 5433, user: billing_svc }
limits: { connect_timeout: 3s }
`;
    const file = write(text, { "agent-key": `${KEY}\n` });
    mkdirSync(join(file, "..", "secrets"));
    writeFileSync(join(file, "..", "secrets", "orders"), `  ${PASSWORD}\n`);
    const settings = loadAgentSettings(file, {});
    expect(settings.key.reveal()).toBe(KEY);
    expect(pgTarget(settings, "orders")?.password?.reveal()).toBe(PASSWORD);
    expect(pgTarget(settings, "orders")?.database).toBe("airlock_svc");
    expect(pgTarget(settings, "billing")?.password).toBeUndefined();
    expect(pgTarget(settings, "billing")?.connectTimeoutMs).toBe(3000);
  });

  it("reports a missing environment variable with its key path, never another secret", () => {
    const file = write(sample);
    expect(problems(file, { ORDERS_DB_PASSWORD: PASSWORD })).toEqual(["key_env: environment variable `AIRLOCK_AGENT_KEY` is not set"]);
    leaksNothing(file, { ORDERS_DB_PASSWORD: PASSWORD }, [PASSWORD]);

    expect(problems(file, { AIRLOCK_AGENT_KEY: KEY })).toEqual(["connections.0.password_env: environment variable `ORDERS_DB_PASSWORD` is not set"]);
    leaksNothing(file, { AIRLOCK_AGENT_KEY: KEY }, [KEY]);

    expect(problems(file, { AIRLOCK_AGENT_KEY: "", ORDERS_DB_PASSWORD: PASSWORD })).toEqual(["key_env: environment variable `AIRLOCK_AGENT_KEY` is not set"]);
  });

  it("reports every missing secret at once", () => {
    const text = `${sample}  - { name: billing, host: db, port: 5432, user: billing, password_env: BILLING_DB_PASSWORD }
  - { name: audit, host: db, port: 5432, user: audit, password_file: ./missing }
`;
    const file = write(text);
    const env = { ORDERS_DB_PASSWORD: PASSWORD, UNRELATED: OTHER_PASSWORD };
    expect(problems(file, env)).toEqual([
      "key_env: environment variable `AIRLOCK_AGENT_KEY` is not set",
      "connections.1.password_env: environment variable `BILLING_DB_PASSWORD` is not set",
      "connections.2.password_file: cannot read `./missing`: ENOENT",
    ]);
    leaksNothing(file, env, [PASSWORD, OTHER_PASSWORD]);
  });

  it("reports an empty or unreadable key_file without its content", () => {
    const empty = write(sample.replace("key_env: AIRLOCK_AGENT_KEY", "key_file: agent-key"), { "agent-key": "\n" });
    expect(problems(empty, { ORDERS_DB_PASSWORD: PASSWORD })).toEqual(["key_file: file `agent-key` is empty"]);
    const missing = write(sample.replace("key_env: AIRLOCK_AGENT_KEY", "key_file: agent-key"));
    expect(problems(missing, { ORDERS_DB_PASSWORD: PASSWORD })).toEqual(["key_file: cannot read `agent-key`: ENOENT"]);
    leaksNothing(missing, { ORDERS_DB_PASSWORD: PASSWORD }, [PASSWORD]);
  });

  it("refuses both key_env and key_file, and neither", () => {
    const both = write(sample.replace("key_env: AIRLOCK_AGENT_KEY", "key_env: AIRLOCK_AGENT_KEY\nkey_file: ./agent-key"), { "agent-key": KEY });
    expect(problems(both, { AIRLOCK_AGENT_KEY: KEY, ORDERS_DB_PASSWORD: PASSWORD })).toEqual(["key_env: set exactly one of key_env or key_file"]);
    leaksNothing(both, { AIRLOCK_AGENT_KEY: KEY, ORDERS_DB_PASSWORD: PASSWORD }, [KEY, PASSWORD]);
    const neither = write(sample.replace("key_env: AIRLOCK_AGENT_KEY          # or key_file\n", ""));
    expect(problems(neither, { ORDERS_DB_PASSWORD: PASSWORD })).toEqual(["key_env: set exactly one of key_env or key_file"]);
  });

  it("refuses both password_env and password_file", () => {
    const file = write(sample.replace("password_env: ORDERS_DB_PASSWORD }", "password_env: ORDERS_DB_PASSWORD, password_file: ./pw }"));
    expect(problems(file, { AIRLOCK_AGENT_KEY: KEY, ORDERS_DB_PASSWORD: PASSWORD })).toEqual(["connections.0: set password_env or password_file, not both"]);
  });

  it("refuses unknown keys, naming their path", () => {
    expect(problems(write(`${sample}metrix: { listen: 127.0.0.1:9465 }\n`), { AIRLOCK_AGENT_KEY: KEY, ORDERS_DB_PASSWORD: PASSWORD })).toEqual([
      "metrix: unknown key",
    ]);
    expect(problems(write(sample.replace("password_env:", "pasword_env:")), { AIRLOCK_AGENT_KEY: KEY })).toEqual([
      "connections.0.pasword_env: unknown key",
    ]);
  });

  it("refuses a bad environment variable name and a wrong type", () => {
    const found = problems(write(sample.replace("key_env: AIRLOCK_AGENT_KEY", "key_env: AIRLOCK-KEY").replace("port: 5432", "port: '5432'")), {});
    expect(found).toHaveLength(2);
    expect(found).toEqual(
      expect.arrayContaining(["key_env: expected an environment variable name", expect.stringMatching(/^connections\.0\.port: .*expected number/)]),
    );
  });

  it("reports a missing file", () => {
    const file = join(dir, "nowhere", "agent.yaml");
    expect(problems(file, {})).toEqual(["cannot read the file: ENOENT"]);
  });

  it("never prints the key or a password: JSON and inspect are redacted", () => {
    const text = `${sample}  - { name: billing, host: db, port: 5432, user: billing, password_file: billing-pw }\n`;
    const file = write(text, { "billing-pw": OTHER_PASSWORD });
    const settings = loadAgentSettings(file, { AIRLOCK_AGENT_KEY: KEY, ORDERS_DB_PASSWORD: PASSWORD });
    expect(pgTarget(settings, "billing")?.password?.reveal()).toBe(OTHER_PASSWORD);
    expectRedacted(settings, [KEY, PASSWORD, OTHER_PASSWORD]);
    expect(JSON.stringify(settings.key)).toBe('"[redacted]"');
    expect(inspect(settings.targets.get("orders"), { depth: Infinity })).toContain("[redacted]");
  });

  it("never prints a key read from key_file", () => {
    const file = write(sample.replace("key_env: AIRLOCK_AGENT_KEY", "key_file: agent-key"), { "agent-key": KEY });
    const settings = loadAgentSettings(file, { ORDERS_DB_PASSWORD: PASSWORD });
    expect(settings.key.reveal()).toBe(KEY);
    expectRedacted(settings, [KEY, PASSWORD]);
  });
});

describe("mysql connections", () => {
  it("reads a mysql connection into a MySQL target, its schema optional, the server key from a file", () => {
    const file = write(
      `gateway: 127.0.0.1:8443
name: vpc-a
key_env: AIRLOCK_AGENT_KEY
connections:
  - { name: shop, protocol: mysql, host: 127.0.0.1, port: 3306, user: airlock_svc, password_env: ORDERS_DB_PASSWORD, server_public_key_file: server.pem }
  - { name: orders, host: 127.0.0.1, port: 5432, user: airlock_svc, get_server_public_key: true }
`,
      { "server.pem": "PUBLIC KEY\n" },
    );
    expect(() => loadAgentSettings(file, { AIRLOCK_AGENT_KEY: KEY, ORDERS_DB_PASSWORD: PASSWORD })).toThrow(/connections\.1: server_public_key_file and get_server_public_key are for protocol mysql/);
    const fixed = write(
      `gateway: 127.0.0.1:8443
name: vpc-a
key_env: AIRLOCK_AGENT_KEY
connections:
  - { name: shop, protocol: mysql, host: 127.0.0.1, port: 3306, user: airlock_svc, password_env: ORDERS_DB_PASSWORD, server_public_key_file: server.pem }
`,
      { "server.pem": "PUBLIC KEY\n" },
    );
    const target = loadAgentSettings(fixed, { AIRLOCK_AGENT_KEY: KEY, ORDERS_DB_PASSWORD: PASSWORD }).targets.get("shop");
    expect(target?.protocol).toBe("mysql");
    const shop = target?.protocol === "mysql" ? target.mysql : undefined;
    expect(shop).toMatchObject({ host: "127.0.0.1", port: 3306, user: "airlock_svc", getServerPublicKey: false, tls: { mode: "disable" } });
    expect(shop?.database).toBeUndefined();
    expect(shop?.serverPublicKey?.toString()).toBe("PUBLIC KEY\n");
    expect(shop?.password?.reveal()).toBe(PASSWORD);
  });
});

describe("mongodb connections", () => {
  const head = `gateway: 127.0.0.1:8443
name: vpc-a
key_env: AIRLOCK_AGENT_KEY
connections:
`;
  const env = { AIRLOCK_AGENT_KEY: KEY, ORDERS_DB_PASSWORD: PASSWORD };

  it("reads a mongodb connection into a MongoDB target: auth_source admin and a negotiated mechanism by default", () => {
    const file = write(`${head}  - { name: docs, protocol: mongodb, host: 127.0.0.1, port: 27017, user: airlock_svc, password_env: ORDERS_DB_PASSWORD }\n`);
    const target = loadAgentSettings(file, env).targets.get("docs");
    expect(target?.protocol).toBe("mongodb");
    const docs = target?.protocol === "mongodb" ? target.mongodb : undefined;
    expect(docs).toMatchObject({ host: "127.0.0.1", port: 27017, user: "airlock_svc", authSource: "admin", tls: { mode: "disable" }, connectTimeoutMs: 10_000, maxMessageBytes: 64 << 20 });
    expect(docs?.mechanism).toBeUndefined();
    expect(docs?.database).toBeUndefined();
    expect(docs?.password?.reveal()).toBe(PASSWORD);
    expectRedacted(loadAgentSettings(file, env), [KEY, PASSWORD]);
  });

  it("reads auth_source, mechanism, the default database and TLS", () => {
    const file = write(
      `${head}  - name: docs
    protocol: mongodb
    host: mongo.internal
    port: 27017
    database: shop
    user: airlock_svc
    password_file: mongo-pw
    auth_source: shop
    mechanism: SCRAM-SHA-1
    tls: { mode: verify-full, ca_file: mongo-ca.pem, server_name: mongo.internal }
`,
      { "mongo-pw": `${OTHER_PASSWORD}\n`, "mongo-ca.pem": "MONGO CA\n" },
    );
    const target = loadAgentSettings(file, { AIRLOCK_AGENT_KEY: KEY }).targets.get("docs");
    const docs = target?.protocol === "mongodb" ? target.mongodb : undefined;
    expect(docs).toMatchObject({ host: "mongo.internal", database: "shop", authSource: "shop", mechanism: "SCRAM-SHA-1", tls: { mode: "verify-full", servername: "mongo.internal" } });
    expect(docs?.tls.ca?.toString()).toBe("MONGO CA\n");
    expect(docs?.password?.reveal()).toBe(OTHER_PASSWORD);
  });

  it("refuses an unknown mechanism and an empty auth_source, naming their path", () => {
    const found = problems(
      write(`${head}  - { name: docs, protocol: mongodb, host: db, port: 27017, user: u, mechanism: MONGODB-CR, auth_source: "" }\n`),
      env,
    );
    expect(found).toHaveLength(2);
    expect(found).toEqual(expect.arrayContaining([expect.stringMatching(/^connections\.0\.mechanism: /), expect.stringMatching(/^connections\.0\.auth_source: /)]));
    expect(problems(write(`${head}  - { name: docs, protocol: mongo, host: db, port: 27017, user: u }\n`), env)).toEqual([expect.stringMatching(/^connections\.0\.protocol: /)]);
  });

  it("refuses mysql-only keys on a mongodb connection and mongodb-only keys on the others, all at once", () => {
    const file = write(
      `${head}  - { name: docs, protocol: mongodb, host: db, port: 27017, user: u, get_server_public_key: true }
  - { name: docs2, protocol: mongodb, host: db, port: 27017, user: u, server_public_key_file: key.pem }
  - { name: orders, host: db, port: 5432, user: u, auth_source: admin }
  - { name: shop, protocol: mysql, host: db, port: 3306, user: u, mechanism: SCRAM-SHA-256 }
`,
      { "key.pem": "PUBLIC KEY\n" },
    );
    expect(problems(file, env)).toEqual([
      "connections.0: server_public_key_file and get_server_public_key are for protocol mysql",
      "connections.1: server_public_key_file and get_server_public_key are for protocol mysql",
      "connections.2: auth_source and mechanism are for protocol mongodb",
      "connections.3: auth_source and mechanism are for protocol mongodb",
    ]);
    leaksNothing(file, env, [KEY, PASSWORD]);
  });
});
