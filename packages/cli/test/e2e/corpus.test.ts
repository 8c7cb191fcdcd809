import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { corpus } from "../../../gateway/test/inspect/corpus.js";
import { E2E_ROLE } from "../support/global-setup.js";
import { startHarness, type Harness } from "../support/harness.js";

const run = promisify(execFile);
const database = `airlock_corpus_${randomBytes(4).toString("hex")}`;
const admin = () => new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database: "postgres" });
let harness: Harness;

/** Everything a statement could have changed: the whole database, the roles, server-level settings. */
async function snapshot(): Promise<string> {
  const { stdout } = await run("pg_dump", ["-h", "127.0.0.1", "-U", "postgres", "--no-comments", database], { maxBuffer: 64 << 20 });
  const client = admin();
  await client.connect();
  try {
    const roles = await client.query("select rolname, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin from pg_roles order by rolname");
    const settings = await client.query("select name, setting from pg_file_settings order by name, seqno");
    const databases = await client.query("select datname from pg_database order by 1");
    const objects = await client.query("select count(*)::int as n from pg_largeobject_metadata");
    // The restrict lines carry a random key of each pg_dump run.
    return JSON.stringify({ dump: stdout.replace(/^--.*$/gm, "").replace(/^\\(un)?restrict .*$/gm, ""), roles: roles.rows, settings: settings.rows, databases: databases.rows.map((row) => row.datname).filter((name: string) => !name.startsWith("airlock_")), objects: objects.rows });
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  const client = admin();
  await client.connect();
  await client.query(`create database ${database} owner ${E2E_ROLE}`);
  await client.end();
  const owner = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database });
  await owner.connect();
  await owner.query(`set role ${E2E_ROLE};
    create table customers (id serial primary key, name text, email text, "delete" int, "drop" text, card_number text);
    create table orders (id serial primary key, customer_id int, total numeric, status text);
    create table audit (id serial, note text);
    create sequence seq1;
    create view v_customers as select id, name from customers;
    create function public.touch() returns int language sql as 'select 1';
    insert into customers (name, email, "delete", "drop", card_number) select 'c' || g, 'c' || g || '@example.com', g, 'd' || g, '4111111111111111' from generate_series(1, 20) g;
    insert into orders (customer_id, total, status) select g, g * 10, 'new' from generate_series(1, 20) g;
    insert into audit (note) values ('first');`);
  await owner.end();
  harness = await startHarness({
    database,
    policies: `policies:
  - name: read-only
    groups: [feature-test]
    connections: [orders]
    actions: { read: allow, write: deny, ddl: deny, admin: deny, export: deny, dangerous: deny }`,
  });
});

afterAll(async () => {
  await harness?.close();
  const client = admin();
  await client.connect();
  await client.query(`drop database if exists ${database} with (force)`);
  await client.end();
});

const readOnly = (entry: (typeof corpus)[number]) => entry.classes.every((statementClass) => statementClass === "read");

describe("the statement corpus through the gateway, for a read-only group", () => {
  it(`changes nothing on the database (${corpus.length} statements, simple and extended protocol), and every benign look-alike runs`, async () => {
    expect(corpus.length).toBeGreaterThanOrEqual(150);
    expect(corpus.filter((entry) => entry.benign === true).length).toBeGreaterThanOrEqual(40);
    const before = await snapshot();
    const failures: string[] = [];
    for (const [index, entry] of corpus.entries()) {
      for (const protocol of ["simple", "extended"] as const) {
        const client = new pg.Client({ ...harness.native, user: "ci", database: "orders", password: await harness.token() });
        client.on("error", () => undefined);
        await client.connect();
        const outcome = await client.query(protocol === "simple" ? entry.sql : { text: entry.sql, name: `corpus_${index}` }).then(
          () => "ran",
          (error: { code?: string; message: string }) => `${error.code ?? "?"} ${error.message}`,
        );
        await client.end().catch(() => undefined);
        if (readOnly(entry)) {
          // A read may still fail on the database (a multi-statement string in the extended protocol, say), never by policy.
          if (outcome.startsWith("42501")) failures.push(`${protocol}: read denied: ${entry.sql} -> ${outcome}`);
          if (entry.benign === true && protocol === "simple" && outcome !== "ran") failures.push(`benign did not run: ${entry.sql} -> ${outcome}`);
        } else if (!outcome.startsWith("42501")) {
          failures.push(`${protocol}: not denied: ${entry.sql} -> ${outcome}`);
        }
      }
    }
    expect(failures).toEqual([]);
    expect(await snapshot()).toBe(before);
  }, 300_000);
});
