import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../runtime/src/index.js";
import { parseGatewayConfig } from "../src/config/load.js";

const FILE = "/etc/airlock/gateway.yaml";
const ALICE = "a".repeat(64);
const VPC_A = "0123456789abcdef".repeat(4);

// The sample gateway.yaml of the contract (design.md, "Contract v1"), with real digests.
const sample = `
listen: { grpc: 127.0.0.1:8443, http: 127.0.0.1:8080 }
store: sqlite:./data/airlock.db                   # or postgres://...
recordings: ./data/recordings
identity:
  issuers:
    - name: ci
      issuer: https://token.actions.githubusercontent.com
      audience: airlock
      jwks_file: ./jwks.json        # or jwks_url; neither: OIDC discovery
      groups_claim: groups          # optional
      max_lifetime: 1h
  group_rules:                      # claims -> groups, for issuers without a groups claim
    - { group: migration, issuer: ci, claims: { repository: acme/api, ref: refs/heads/main } }
reviewers:
  - { name: alice, key_sha256: ${ALICE}, groups: [dba] }
agents:
  - { name: vpc-a, key_sha256: ${VPC_A} }
connections:
  - name: orders
    protocol: postgres              # postgres | mysql | mongodb
    agent: vpc-a
    listen: 127.0.0.1:15432         # optional native listener: the token is the password
    masking:
      columns: [ { column: public.customers.email, style: redact } ]
      detectors: [card_number, email, ssn]
policies:
  - name: tests-read
    groups: [feature-test]
    connections: [orders]
    actions: { read: allow, write: deny, ddl: deny, admin: deny, export: review, dangerous: deny }
    max_rows: 1000
    max_session: 15m
  - name: dba
    groups: [dba]
    connections: [orders]
    actions: { read: allow, write: review, ddl: review, admin: review, export: allow, dangerous: deny }
    unmasked: true                  # these groups see real values
  - name: migrations
    groups: [migration]
    connections: [orders]
    actions: { read: allow, write: allow, ddl: review, admin: deny, export: allow, dangerous: deny }
    reviewers: [dba]
    review_timeout: 10m
`;

/** Replaces one exact piece of the sample, failing loudly if it is not there. */
function edit(from: string, to: string, text = sample): string {
  expect(text).toContain(from);
  return text.replace(from, to);
}

/** Parses `text`, expecting a ConfigError; returns its problems after checking the message names the file. */
function problems(text: string, file = FILE): readonly string[] {
  let error: unknown;
  try {
    parseGatewayConfig(file, text);
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(ConfigError);
  const configError = error as ConfigError;
  expect(configError.code).toBe("invalid_config");
  expect(configError.message.startsWith(`${file}: `)).toBe(true);
  for (const problem of configError.problems) expect(configError.message).toContain(problem);
  return configError.problems;
}

describe("parseGatewayConfig", () => {
  it("accepts the contract's sample", () => {
    const config = parseGatewayConfig(FILE, sample);
    expect(config.listen).toEqual({ grpc: "127.0.0.1:8443", http: "127.0.0.1:8080" });
    expect(config.identity.issuers).toEqual([
      {
        name: "ci",
        issuer: "https://token.actions.githubusercontent.com",
        audience: "airlock",
        jwks_file: "/etc/airlock/jwks.json",
        groups_claim: "groups",
        max_lifetime: 3_600_000,
      },
    ]);
    expect(config.identity.group_rules).toEqual([{ group: "migration", issuer: "ci", claims: { repository: "acme/api", ref: "refs/heads/main" } }]);
    expect(config.identity.clock_tolerance).toBe(30_000);
    expect(config.reviewers).toEqual([{ name: "alice", key_sha256: ALICE, groups: ["dba"], subjects: [] }]);
    expect(config.agents).toEqual([{ name: "vpc-a", key_sha256: VPC_A }]);
    expect(config.connections).toEqual([
      {
        name: "orders",
        protocol: "postgres",
        agent: "vpc-a",
        listen: "127.0.0.1:15432",
        insecure_plaintext: false,
        safe_functions: [],
        masking: { columns: [{ column: "public.customers.email", style: "redact" }], detectors: ["card_number", "email", "ssn"], inference: "deny" },
      },
    ]);
    expect(config.limits).toEqual({ max_message_bytes: 64 << 20, agent_timeout: 15_000 });
    expect(config.log).toEqual({ level: "info" });
  });

  it("turns durations into milliseconds and fills policy defaults", () => {
    const [testsRead, dba, migrations] = parseGatewayConfig(FILE, sample).policies;
    expect(testsRead).toMatchObject({ name: "tests-read", max_rows: 1000, max_session: 900_000, unmasked: false });
    expect(testsRead?.actions).toEqual({ read: "allow", write: "deny", ddl: "deny", admin: "deny", export: "review", dangerous: "deny" });
    expect(dba).toMatchObject({ name: "dba", unmasked: true });
    expect(dba?.max_session).toBeUndefined();
    expect(migrations).toMatchObject({ name: "migrations", reviewers: ["dba"], review_timeout: 600_000 });
  });

  it("resolves relative paths against the config file's folder and keeps absolute ones", () => {
    const config = parseGatewayConfig(FILE, sample);
    expect(config.store).toBe("sqlite:/etc/airlock/data/airlock.db");
    expect(config.recordings).toBe("/etc/airlock/data/recordings");
    expect(config.identity.issuers[0]?.jwks_file).toBe("/etc/airlock/jwks.json");

    const absolute = parseGatewayConfig(FILE, edit("jwks_file: ./jwks.json", "jwks_file: /srv/keys/jwks.json"));
    expect(absolute.identity.issuers[0]?.jwks_file).toBe("/srv/keys/jwks.json");

    const relativeFile = parseGatewayConfig("conf/gateway.yaml", sample);
    expect(relativeFile.identity.issuers[0]?.jwks_file).toBe(resolve("conf/jwks.json"));

    const postgres = parseGatewayConfig(FILE, edit("store: sqlite:./data/airlock.db", "store: postgres://airlock@db:5432/airlock"));
    expect(postgres.store).toBe("postgres://airlock@db:5432/airlock");
  });

  it("resolves TLS files too", () => {
    const config = parseGatewayConfig(FILE, edit("store:", "tls: { cert_file: gw.crt, key_file: /keys/gw.key }\nstore:"));
    expect(config.tls).toEqual({ cert_file: "/etc/airlock/gw.crt", key_file: "/keys/gw.key" });
  });

  it("returns a frozen config", () => {
    const config = parseGatewayConfig(FILE, sample);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.policies[0]?.actions)).toBe(true);
    expect(Object.isFrozen(config.identity.issuers[0])).toBe(true);
  });

  describe("refuses, naming the file and the key path", () => {
    it("an unknown top-level key", () => {
      expect(problems(`${sample}bogus: 1\n`)).toEqual(["bogus: unknown key"]);
    });

    it("an unknown nested key", () => {
      expect(problems(edit("    agent: vpc-a\n", "    agent: vpc-a\n    lisen: 127.0.0.1:1\n"))).toEqual(["connections.0.lisen: unknown key"]);
      expect(problems(edit("max_rows: 1000", "max_row: 1000"))).toEqual(["policies.0.max_row: unknown key"]);
    });

    it("a wrong type", () => {
      const found = problems(`${sample}limits: { max_message_bytes: big }\n`);
      expect(found).toHaveLength(1);
      expect(found[0]).toMatch(/^limits\.max_message_bytes: .*expected number/);
    });

    it("a value out of its domain", () => {
      expect(problems(edit(`key_sha256: ${VPC_A}`, `key_sha256: ${VPC_A.toUpperCase()}`))).toEqual([
        "agents.0.key_sha256: expected the lowercase hex of a sha256 digest (64 characters)",
      ]);
      expect(problems(edit("protocol: postgres", "protocol: oracle"))[0]).toMatch(/^connections\.0\.protocol: /);
      expect(problems(edit("column: public.customers.email", "column: customers.email"))).toEqual([
        "connections.0.masking.columns.0.column: expected schema.table.column",
      ]);
    });

    it("a connection whose agent is not in agents", () => {
      expect(problems(edit("agent: vpc-a", "agent: vpc-b"))).toEqual(["connections.0.agent: no agent is named `vpc-b`"]);
    });

    it("a policy naming an unknown connection", () => {
      expect(problems(edit("connections: [orders]\n    actions: { read: allow, write: review", "connections: [orders, billing]\n    actions: { read: allow, write: review"))).toEqual([
        "policies.1.connections.1: no connection is named `billing`",
      ]);
    });

    it("a group rule naming an unknown issuer", () => {
      expect(problems(edit("{ group: migration, issuer: ci,", "{ group: migration, issuer: gitlab,"))).toEqual([
        "identity.group_rules.0.issuer: no issuer is named `gitlab`",
      ]);
    });

    it("a duplicate connection name", () => {
      const duplicated = edit("policies:\n", "  - { name: orders, protocol: postgres, agent: vpc-a }\npolicies:\n");
      expect(problems(duplicated)).toEqual(["connections.1.name: duplicate name `orders`"]);
    });

    it("a listen address used by two connections", () => {
      const twice = edit("policies:\n", "  - { name: billing, protocol: postgres, agent: vpc-a, listen: 127.0.0.1:15432 }\npolicies:\n");
      expect(problems(twice)).toEqual(["connections.1.listen: `127.0.0.1:15432` is used by another connection"]);
    });

    it("a bad duration", () => {
      for (const bad of ["15", "15 m", "15min", "-1m", "m"]) {
        expect(problems(edit("max_session: 15m", `max_session: "${bad}"`)), bad).toEqual([
          "policies.0.max_session: expected a duration such as 30s, 15m or 1h",
        ]);
      }
    });

    it("several problems at once", () => {
      const broken = edit(
        "max_session: 15m",
        "max_session: soon",
        edit("    agent: vpc-a\n", "    agent: vpc-a\n    lisen: x\n", `${sample}bogus: 1\nlimits: { max_message_bytes: big }\n`),
      );
      const found = problems(broken);
      expect(found).toHaveLength(4);
      expect(found).toEqual(
        expect.arrayContaining([
          "bogus: unknown key",
          "connections.0.lisen: unknown key",
          "policies.0.max_session: expected a duration such as 30s, 15m or 1h",
          expect.stringMatching(/^limits\.max_message_bytes: /),
        ]),
      );
      expect(() => parseGatewayConfig(FILE, broken)).toThrow(`${FILE}: 4 problems:`);
    });

    it("several dangling references at once", () => {
      const broken = edit("agent: vpc-a", "agent: vpc-b", edit("issuer: ci,", "issuer: gitlab,", edit("connections: [orders]", "connections: [billing]")));
      expect(problems(broken)).toEqual([
        "identity.group_rules.0.issuer: no issuer is named `gitlab`",
        "connections.0.agent: no agent is named `vpc-b`",
        "policies.0.connections.0: no connection is named `billing`",
      ]);
    });

    it("a dangling reference together with a wrong type and an unknown key", () => {
      const broken = edit("agent: vpc-a", "agent: vpc-b", `${sample}bogus: 1\nlimits: { max_message_bytes: big }\n`);
      const found = problems(broken);
      expect(found).toEqual(
        expect.arrayContaining(["bogus: unknown key", "connections.0.agent: no agent is named `vpc-b`", expect.stringMatching(/^limits\.max_message_bytes: /)]),
      );
      expect(found).toHaveLength(3);
    });

    it("missing required sections", () => {
      const found = problems("listen: { grpc: 127.0.0.1:8443 }\n");
      expect(found).toEqual(
        expect.arrayContaining([expect.stringMatching(/^identity: /), expect.stringMatching(/^agents: /), expect.stringMatching(/^connections: /)]),
      );
    });

    it("invalid YAML", () => {
      const found = problems("listen: { grpc: 127.0.0.1:8443\nagents: [\n");
      expect(found.length).toBeGreaterThan(0);
      for (const problem of found) expect(problem).toMatch(/^yaml: /);
    });

    it("duplicate YAML keys", () => {
      const found = problems(edit("recordings: ./data/recordings\n", "recordings: ./data/recordings\nrecordings: /tmp/elsewhere\n"));
      expect(found).toHaveLength(1);
      expect(found[0]).toMatch(/^yaml: .*unique/i);
      expect(problems(edit("      audience: airlock\n", "      audience: airlock\n      audience: other\n"))[0]).toMatch(/^yaml: .*unique/i);
    });

    it("names the file as given", () => {
      expect(problems(`${sample}bogus: 1\n`, "conf/gw.yaml")).toEqual(["bogus: unknown key"]);
    });
  });
});
