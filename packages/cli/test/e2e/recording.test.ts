import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { verifyLines } from "../../../gateway/src/recording/index.js";
import { openStore } from "../../../gateway/src/store/index.js";
import { startOidcIssuer, type OidcIssuer } from "../../../gateway/test/support/oidc-issuer.js";
import { E2E_DATABASE, E2E_ROLE } from "../support/global-setup.js";
import { startHarness, type Harness } from "../support/harness.js";
import { startAirlock, type AirlockProcess } from "../support/processes.js";

interface Line {
  type: string;
  [field: string]: unknown;
}

function recordingOf(dir: string, session: string): { text: string; lines: Line[] } {
  for (const day of readdirSync(join(dir, "recordings"))) {
    const file = join(dir, "recordings", day, `${session}.jsonl`);
    try {
      const text = readFileSync(file, "utf8");
      return { text, lines: text.trim().split("\n").map((line) => JSON.parse(line) as Line) };
    } catch {
      // not this day
    }
  }
  throw new Error(`no recording of session ${session}`);
}

describe("a recorded session", () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({
      policies: `policies:
  - name: ci
    groups: [feature-test]
    connections: [orders]
    actions: { read: allow, write: allow, ddl: allow, admin: deny, export: allow, dangerous: deny }`,
      extra: "audit_log: ./audit.jsonl",
    });
  });
  afterAll(async () => {
    await harness?.close();
  });

  it("holds exactly what the client sent and saw, in order, and verifies", async () => {
    const client = new pg.Client({ ...harness.native, user: "ci", database: "orders", password: await harness.token() });
    await client.connect();
    await client.query("drop table if exists recorded; create table recorded (id int primary key, name text)");
    const inserted = await client.query("insert into recorded values ($1, $2), (2, 'two') returning id, name", [1, "one"]);
    const selected = await client.query("select id, name from recorded order by id");
    await expect(client.query("select pg_read_file('/etc/passwd')")).rejects.toMatchObject({ code: "42501" });
    await expect(client.query("select * from recorded where id = 'x'")).rejects.toMatchObject({ code: "22P02" });
    await client.end();

    const sessions = await harness.gateway.store.listSessions({ limit: 1 });
    const session = sessions[0];
    if (session === undefined) throw new Error("no session in the store");
    // The store writes the end after the recording is sealed; wait for it.
    for (let i = 0; i < 100 && (await harness.gateway.store.getSession(session.id))?.endedAt === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    const ended = await harness.gateway.store.getSession(session.id);
    const { text, lines } = recordingOf(harness.dir, session.id);
    expect(verifyLines(session.id, text, { records: ended?.recording?.records ?? -1, lastHash: ended?.recording?.lastHash ?? "" })).toMatchObject({ ok: true, ended: true });

    expect(lines[0]).toMatchObject({ type: "session_start", connection: "orders", identity: { subject: "repo:acme/api:ref:refs/heads/main", groups: ["feature-test"], claims: { repository: "acme/api" } } });
    expect(JSON.stringify(lines[0])).not.toContain(".ey");
    const kinds = lines.map((line) => (line.type === "statement" ? `statement:${String(line.effect)}` : line.type));
    expect(kinds).toEqual([
      "session_start",
      "statement:allow", "result", "result", // drop + create
      "statement:allow", "bind", "result", // insert ... returning, extended protocol
      "statement:allow", "result", // select
      "statement:deny", "result", // pg_read_file: the client's 42501
      "statement:allow", "result", // the database's 22P02
      "session_end",
    ]);
    const results = lines.filter((line) => line.type === "result");
    expect(lines.find((line) => line.type === "bind")).toMatchObject({ params: ["1", "one"] });
    expect(results[2]).toMatchObject({ columns: ["id", "name"], rows: inserted.rows.map((row) => [String(row.id), row.name]), rowCount: 2, tag: "INSERT 0 2" });
    expect(results[3]).toMatchObject({ columns: ["id", "name"], rows: selected.rows.map((row) => [String(row.id), row.name]), rowCount: 2, tag: "SELECT 2" });
    expect(results[4]).toMatchObject({ error: { code: "42501", message: "statement denied by policy `ci`" } });
    expect(results[5]).toMatchObject({ error: { code: "22P02" } });
    expect(lines.at(-1)).toMatchObject({ type: "session_end", outcome: "terminated", statements: 5 });

    // One audit line per decision, for a SIEM.
    const audit = readFileSync(join(harness.dir, "audit.jsonl"), "utf8").trim().split("\n").map((line) => JSON.parse(line) as Line).filter((line) => line.session === session.id);
    expect(audit.map((line) => [line.type, line.effect])).toEqual([["decision", "allow"], ["decision", "allow"], ["decision", "allow"], ["decision", "deny"], ["decision", "allow"]]);
    expect(audit[3]).toMatchObject({ subject: "repo:acme/api:ref:refs/heads/main", connection: "orders", rule: "ci", classes: ["dangerous"], sql: "select pg_read_file('/etc/passwd')" });
  });
});

describe("a gateway killed with SIGKILL mid-session", () => {
  let dir: string;
  let issuer: OidcIssuer;
  let gateway: AirlockProcess | undefined;
  let agent: AirlockProcess | undefined;
  let agentKey: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "airlock-kill-"));
    issuer = await startOidcIssuer({ alg: "ES256" });
    await issuer.writeJwksFile(join(dir, "jwks.json"));
    agentKey = randomBytes(24).toString("base64url");
  });
  afterAll(async () => {
    await agent?.stop();
    await gateway?.stop();
    await issuer?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("leaves a recording that verifies up to its last acknowledged event, and the store marks the session abandoned", async () => {
    const config = (grpc: string, listen: string) => `id: killed
listen: { grpc: ${grpc}, http: 127.0.0.1:0 }
store: sqlite:./airlock.db
recordings: ./recordings
identity:
  issuers: [ { name: ci, issuer: "${issuer.url}", audience: airlock, jwks_file: ./jwks.json } ]
  group_rules: [ { group: ci, issuer: ci, claims: { repository: acme/api } } ]
agents: [ { name: vpc-a, key_sha256: ${createHash("sha256").update(agentKey).digest("hex")} } ]
connections: [ { name: orders, protocol: postgres, agent: vpc-a, listen: ${listen} } ]
policies: [ { name: ci, groups: [ci], connections: [orders], actions: { read: allow, write: allow } } ]
`;
    writeFileSync(join(dir, "gateway.yaml"), config("127.0.0.1:0", "127.0.0.1:0"));
    gateway = startAirlock(["gateway", "--config", join(dir, "gateway.yaml")], {});
    const listening = await gateway.waitForLog("gateway listening");
    const grpc = String(listening.grpc);
    const port = Number(String((listening.listeners as Record<string, string>).orders).split(":").pop());
    writeFileSync(
      join(dir, "agent.yaml"),
      `gateway: ${grpc}\nname: vpc-a\nkey_env: KEY\nconnections: [ { name: orders, host: 127.0.0.1, port: 5432, database: ${E2E_DATABASE}, user: ${E2E_ROLE}, password_env: DB_PASSWORD } ]\n`,
    );
    agent = startAirlock(["agent", "--config", join(dir, "agent.yaml")], { KEY: agentKey, DB_PASSWORD: inject("dbPassword") });
    await agent.waitForLog("link to the gateway is up");

    const client = new pg.Client({ host: "127.0.0.1", port, user: "ci", database: "orders", password: await issuer.mint({ repository: "acme/api" }) });
    client.on("error", () => undefined);
    await client.connect();
    const acknowledged: string[] = [];
    for (let i = 1; i <= 5; i++) {
      const sql = `select ${i} as n`;
      await client.query(sql);
      acknowledged.push(sql);
    }
    gateway.child.kill("SIGKILL");
    await new Promise((resolve) => gateway?.child.once("exit", resolve));

    // Restarted, the gateway completes the session's file from its journal (what was acknowledged
    // but not yet written to the file) and marks the session of its earlier run as ended abruptly.
    gateway = startAirlock(["gateway", "--config", join(dir, "gateway.yaml")], {});
    await gateway.waitForLog("gateway listening");
    await gateway.stop();
    const day = readdirSync(join(dir, "recordings")).find((name) => /^\d{4}-\d{2}-\d{2}$/.test(name)) ?? "";
    const file = readdirSync(join(dir, "recordings", day))[0] ?? "";
    const session = file.replace(/\.jsonl$/, "");
    const text = readFileSync(join(dir, "recordings", day, file), "utf8");
    const result = verifyLines(session, text);
    expect(result).toMatchObject({ ok: true, ended: false });
    const statements = text.trim().split("\n").map((line) => JSON.parse(line) as Line).filter((line) => line.type === "statement").map((line) => line.sql);
    expect(statements).toEqual(acknowledged);
    const store = await openStore(`sqlite:${join(dir, "airlock.db")}`);
    expect(await store.getSession(session)).toMatchObject({ outcome: "abandoned" });
    await store.close();
  });
});
