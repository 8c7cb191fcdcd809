import { backend, createPgFramer, pg as wire } from "@airlock/wire";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { E2E_ROLE } from "../support/global-setup.js";
import { startHarness, type Harness } from "../support/harness.js";
import { openRaw, startupMessage } from "../support/raw-client.js";

const database = `airlock_mask_${randomBytes(4).toString("hex")}`;
const admin = () => new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database: "postgres" });
/** Values that occur nowhere else, and that no content detector recognises: only lineage can mask them. */
const canaries = Array.from({ length: 6 }, () => `CANARYq${randomBytes(8).toString("hex")}`);
const forms = (value: string) => [value, Buffer.from(value).toString("base64"), Buffer.from(value).toString("hex"), [...value].reverse().join(""), value.toLowerCase(), value.toUpperCase()];
const forbidden = canaries.flatMap(forms);
let harness: Harness;

beforeAll(async () => {
  const client = admin();
  await client.connect();
  await client.query(`create database ${database} owner ${E2E_ROLE}`);
  await client.end();
  const owner = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database });
  await owner.connect();
  await owner.query(`set role ${E2E_ROLE};
    create table customers (id int primary key, name text, email text, card_number text, note text);
    create table orders (id int primary key, customer_id int, total numeric, status text);
    create table audit (id serial, note text);
    insert into customers values (1, 'Ann', '${canaries[0]}', '${canaries[1]}', '${canaries[2]}'), (2, 'Bob', '${canaries[3]}', '${canaries[4]}', '${canaries[5]}');
    insert into orders values (10, 1, 12.50, 'paid'), (11, 2, 99.00, 'new');
    create view v_contacts as select id, email from customers;
    create view v_names as select id, name from customers;
    analyze customers;`);
  await owner.end();
  harness = await startHarness({
    database,
    connectionExtra: `    masking:
      columns:
        - { column: public.customers.email, style: redact }
        - { column: public.customers.card_number, style: redact }
        - { column: public.customers.note, style: redact }
      detectors: [email, card_number, secret]
      inference: deny`,
    policies: `policies:
  - name: masked
    groups: [feature-test]
    connections: [orders]
    actions: { read: allow, write: allow, ddl: deny, admin: deny, export: allow, dangerous: deny }
  - name: unmasked
    groups: [dba]
    connections: [orders]
    actions: { read: allow, write: deny, ddl: deny, admin: deny, export: allow, dangerous: deny }
    unmasked: true`,
  });
});
afterAll(async () => {
  await harness?.close();
  const client = admin();
  await client.connect();
  await client.query(`drop database if exists ${database} with (force)`);
  await client.end();
});

/** A raw client session that collects every byte the client receives. */
interface RawSession {
  send(bytes: Buffer): Promise<Buffer>;
  close(): void;
}

async function rawSession(claims: Record<string, unknown> = {}): Promise<RawSession> {
  const socket = await openRaw(harness.native.port);
  const framer = createPgFramer({ maxMessageBytes: 64 << 20 });
  let chunks: Buffer[] = [];
  let waiting: { resolve: (bytes: Buffer) => void } | undefined;
  let closed = false;
  socket.on("data", (chunk: Buffer) => {
    chunks.push(chunk);
    if (framer.push(chunk).some((message) => message.code === backend.ReadyForQuery) && waiting !== undefined) {
      const done = waiting;
      waiting = undefined;
      const bytes = Buffer.concat(chunks);
      chunks = [];
      done.resolve(bytes);
    }
  });
  socket.on("close", () => {
    closed = true;
    waiting?.resolve(Buffer.concat(chunks));
  });
  const send = (bytes: Buffer) =>
    new Promise<Buffer>((resolve) => {
      if (closed) return resolve(Buffer.alloc(0));
      waiting = { resolve };
      socket.write(bytes);
    });
  await send(Buffer.concat([startupMessage(), wire.encodePasswordMessage(await harness.token(claims))]));
  return { send, close: () => socket.destroy() };
}

/** The client's messages for `sql` over the simple or the extended protocol (text or binary results). */
function request(sql: string, protocol: "simple" | "extended-text" | "extended-binary"): Buffer {
  if (protocol === "simple") return wire.encodeQuery(sql);
  return Buffer.concat([
    wire.encodeMessage(0x50, Buffer.from(`\0${sql}\0`), Buffer.from([0, 0])),
    wire.encodeMessage(0x42, Buffer.from("\0\0"), Buffer.from([0, 0, 0, 0, 0, 1, 0, protocol === "extended-binary" ? 1 : 0])),
    wire.encodeMessage(0x44, Buffer.from("P\0")),
    wire.encodeMessage(0x45, Buffer.from("\0"), Buffer.from([0, 0, 0, 0])),
    wire.encodeMessage(0x53),
  ]);
}

const leaks = [
  "select email from customers", "select c.email from customers c", "select email as e from customers", "select * from customers", "table customers",
  "select c from customers c", "select c.* from customers c", "select row_to_json(c) from customers c", "select to_jsonb(c) from customers c", "select to_json(c)::text from customers c",
  "select json_agg(c) from customers c", "select jsonb_agg(c.*) from customers c", "select array_agg(email) from customers", "select string_agg(email, ',') from customers", "select string_agg(note, '') from customers",
  "select row(c.*) from customers c", "select row(email, name) from customers", "select (c).email from customers c", "select lower(email) from customers", "select upper(email) from customers",
  "select email || '' from customers", "select 'x' || email from customers", "select concat(email, card_number) from customers", "select concat_ws(',', name, note) from customers", "select substring(email from 1 for 40) from customers",
  "select substr(email, 2) from customers", "select left(email, 30) from customers", "select right(email, 30) from customers", "select reverse(email) from customers", "select encode(email::bytea, 'base64') from customers",
  "select encode(email::bytea, 'hex') from customers", "select encode(convert_to(note, 'UTF8'), 'escape') from customers", "select format('%s', email) from customers", "select format('%I', note) from customers", "select email::text from customers",
  "select cast(email as varchar(100)) from customers", "select email::bytea from customers", "select translate(email, 'C', 'C') from customers", "select replace(email, 'ANARY', 'ANARY') from customers", "select split_part(email, 'q', 2) from customers",
  "select regexp_replace(email, 'x', 'y') from customers", "select overlay(email placing 'C' from 1 for 1) from customers", "select repeat(email, 2) from customers", "select quote_literal(email) from customers", "select quote_ident(note) from customers",
  "select to_json(email) from customers", "select json_build_object('e', email) from customers", "select jsonb_build_array(card_number) from customers", "select xmlelement(name e, email) from customers", "select array[email, note] from customers",
  "select case when id > 0 then email end from customers", "select coalesce(null, email) from customers", "select greatest(email, 'A') from customers", "select nullif(email, '') from customers", "select (select email from customers where id = 1)",
  "select x from (select email as x from customers) s", "with t as (select email from customers) select * from t", "with t(e) as (select note from customers) select e from t", "with recursive r(e, n) as (select email, 1 from customers union all select e, n + 1 from r where n < 2) select e from r", "select email from customers union select 'a'",
  "select 'a' union all select note from customers", "select name from customers union all select card_number from customers", "select o.id, l.email from orders o join lateral (select email from customers c where c.id = o.customer_id) l on true", "select * from v_contacts", "select email from v_contacts",
  "select e from (values ((select email from customers limit 1))) v(e)", "select email from customers where id = 1 for share", "select distinct email from customers", "select email from customers order by id limit 1 offset 1", "select max(email) from customers",
  "select min(note) from customers", "select (array_agg(card_number))[1] from customers", "select jsonb_object_agg(name, email) from customers", "select hstore(c) from customers c", "select t.* from customers t join orders o on o.customer_id = t.id",
  "select c.email, o.total from customers c join orders o on o.customer_id = c.id", "select * from customers natural join orders", "select string_to_array(email, 'q') from customers", "select unnest(array[email]) from customers", "select generate_series(1,1), email from customers",
  "begin; declare cur cursor for select email from customers; fetch all from cur; commit", "prepare leak as select note from customers; execute leak", "copy (select email from customers) to stdout", "copy customers to stdout", "copy customers (email) to stdout",
  "select email::int from customers", "select cast(note as date) from customers", "select (card_number || 'x')::numeric from customers", "select 1 / (length(email) - length(email)) from customers", "select email::json from customers",
  "do $$ begin raise exception '%', (select email from customers limit 1); end $$", "do $$ begin raise notice '%', (select note from customers limit 1); end $$", "select most_common_vals::text from pg_stats where tablename = 'customers'", "select histogram_bounds::text from pg_stats where tablename = 'customers'", "select * from pg_stats where tablename = 'customers'",
  "create temp table stolen as select email from customers", "select email into temp stolen2 from customers", "insert into audit (note) select email from customers returning note", "update customers set name = name where id = 1 returning email", "delete from audit where note = 'none' returning (select email from customers limit 1)",
  "select email from customers where email like 'C%'", "select name from customers order by email", "select count(*) from customers group by card_number", "select name from customers where substring(note, 1, 1) = 'C'", "select md5(email) = md5(email), email from customers",
];

const benign: [string, unknown[][]][] = [
  ["select id, name from customers order by id", [["1", "Ann"], ["2", "Bob"]]],
  ["select count(*) from customers", [["2"]]],
  ["select sum(total) from orders", [["111.50"]]],
  ["select c.name, o.total from customers c join orders o on o.customer_id = c.id order by o.id", [["Ann", "12.50"], ["Bob", "99.00"]]],
  ["select * from v_names order by id", [["1", "Ann"], ["2", "Bob"]]],
  ["select upper(name) from customers order by id", [["ANN"], ["BOB"]]],
  ["select status, count(*) from orders group by status order by status", [["new", "1"], ["paid", "1"]]],
  ["with t as (select id from customers) select count(*) from t", [["2"]]],
];

describe("masking through the gateway", () => {
  it(`leaks no canary, nor its base64, hex or reversed form, through ${leaks.length} queries over the simple and extended protocols`, async () => {
    expect(leaks.length).toBeGreaterThanOrEqual(100);
    const found: string[] = [];
    for (const protocol of ["simple", "extended-text", "extended-binary"] as const) {
      let session = await rawSession();
      for (const sql of leaks) {
        if (protocol !== "simple" && (sql.includes(";") || sql.startsWith("copy") || sql.startsWith("do "))) continue;
        const text = (await session.send(request(sql, protocol))).toString("latin1");
        const leaked = forbidden.find((form) => text.includes(form));
        if (leaked !== undefined) found.push(`${protocol}: ${sql}`);
        if (leaked !== undefined && process.env.AIRLOCK_DEBUG_LEAKS === "1") console.log(sql, JSON.stringify(text));
        // Rolled back, a failed transaction block does not poison the next query; a FATAL needs a new session.
        await session.send(wire.encodeQuery("rollback"));
        if (text.length === 0) {
          session.close();
          session = await rawSession();
        }
      }
      session.close();
    }
    expect(found).toEqual([]);
  }, 300_000);

  it("returns exact results for queries on columns that are not sensitive", async () => {
    for (const [sql, rows] of benign) {
      const client = new pg.Client({ ...harness.native, user: "ci", database: "orders", password: await harness.token(), types: { getTypeParser: () => (value: string) => value } });
      await client.connect();
      const result = await client.query({ text: sql, rowMode: "array" });
      await client.end();
      expect(result.rows, sql).toEqual(rows);
    }
  });

  it("tells a masked identity why a statement was denied, and withholds the database's message about sensitive values", async () => {
    const client = new pg.Client({ ...harness.native, user: "ci", database: "orders", password: await harness.token() });
    await client.connect();
    await expect(client.query("alter table orders add column x int")).rejects.toMatchObject({ code: "42501", message: "statement denied by policy `masked`" });
    client.on("error", () => undefined);
    await expect(client.query("insert into audit (note) select email from customers")).rejects.toMatchObject({ code: "42501", message: "statement denied by policy `masking`", detail: "the statement copies sensitive columns past masking" });
    await expect(client.query("select email::int from customers")).rejects.toMatchObject({ code: "22P02", message: "the statement reads masked columns: the database's message is withheld" });
    await expect(client.query("select id from customers where email like 'C%'")).rejects.toMatchObject({ code: "42501", message: "statement denied by policy `masking`" });
    await client.end();
  });

  it("shows the real values to an unmasked group, through the same queries", async () => {
    const client = new pg.Client({ ...harness.native, user: "ci", database: "orders", password: await harness.token({ groups: ["dba"], repository: "other/repo" }) });
    await client.connect();
    const rows = (await client.query("select email, lower(note) as n, row_to_json(c)::text as j from customers c order by id")).rows;
    await client.end();
    expect(rows[0]).toMatchObject({ email: canaries[0], n: canaries[2]?.toLowerCase() });
    expect(String(rows[1]?.j)).toContain(canaries[3]);
  });
});

describe("mask styles and detectors through the gateway", () => {
  let styled: Harness;
  beforeAll(async () => {
    const owner = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database });
    await owner.connect();
    await owner.query(`set role ${E2E_ROLE};
      create table people (id int primary key, email text, card text, phone text, age int, born date, bio text);
      insert into people values
        (1, 'ann@example.com', '4111 1111 1111 1111', '+44 20 7946 0958', 41, '1985-02-03', 'write to ann@example.com or call'),
        (2, 'bob@example.com', '5500 0000 0000 0004', '+1 415 555 0100', 35, '1990-07-08', 'no contact'),
        (3, 'ann@example.com', '4111 1111 1111 1111', '+44 20 7946 0958', 41, '1985-02-03', 'card 4111 1111 1111 1111 on file');`);
    await owner.end();
    const keyFile = join(tmpdir(), `airlock-mask-key-${randomBytes(4).toString("hex")}`);
    writeFileSync(keyFile, randomBytes(32));
    styled = await startHarness({
      database,
      connectionExtra: `    masking:
      columns:
        - { column: public.people.email, style: pseudonym }
        - { column: public.people.card, style: partial, keep: 4 }
        - { column: public.people.phone, style: "null" }
        - { column: public.people.age, style: redact }
        - { column: public.people.born, style: redact }
      detectors: [email, card_number]
      inference: allow`,
      extra: `masking: { key_file: ${keyFile} }`,
      policies: `policies:
  - { name: masked, groups: [feature-test], connections: [orders], actions: { read: allow, write: allow } }`,
    });
  });
  afterAll(async () => {
    await styled?.close();
  });

  it("applies each style with values valid for the column's type, and the detectors to other text", async () => {
    const client = new pg.Client({ ...styled.native, user: "ci", database: "orders", password: await styled.token() });
    await client.connect();
    const rows = (await client.query("select id, email, card, phone, age, born, bio from people order by id")).rows;
    expect(rows[0]?.email).toMatch(/^psd_/);
    expect(rows[2]?.email).toBe(rows[0]?.email);
    expect(rows[1]?.email).not.toBe(rows[0]?.email);
    expect(rows[0]?.card).toBe("**** **** **** 1111");
    expect(rows[0]?.phone).toBeNull();
    expect(rows[0]?.age).toBe(0);
    expect(rows[0]?.born).toBeInstanceOf(Date);
    expect(rows[0]?.bio).toBe("write to [masked:email] or call");
    expect(rows[2]?.bio).toBe("card [masked:card_number] on file");
    // Pseudonyms keep joins and GROUP BY working for a reader who never sees the values.
    const grouped = (await client.query("select email, count(*)::int as n from people group by email order by n desc")).rows;
    expect(grouped).toEqual([{ email: rows[0]?.email, n: 2 }, { email: rows[1]?.email, n: 1 }]);
    // Binary results stay valid for their types (node-postgres asks for text; postgres.js takes binary for some).
    const sql = postgres({ ...styled.native, user: "ci", database: "orders", password: await styled.token(), max: 1, ssl: false });
    const [typed] = await sql`select age, born, email from people where id = ${1}`;
    expect(typed).toMatchObject({ age: 0, email: rows[0]?.email });
    await sql.end();
    // NOTIFY payloads are scanned by the detectors too.
    const notified = new Promise<pg.Notification>((resolve) => client.once("notification", resolve));
    await client.query("listen people_channel");
    await client.query("select pg_notify('people_channel', 'reach me at carol@example.com')");
    expect((await notified).payload).toBe("reach me at [masked:email]");
    // The recording holds what the client saw, never the value.
    await client.end();
    for (let i = 0; i < 100 && (await styled.gateway.store.listSessions({ limit: 5 })).some((session) => session.endedAt === undefined); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    const recordings = readdirSync(join(styled.dir, "recordings"), { recursive: true }).map(String).filter((name) => name.endsWith(".jsonl"));
    const all = recordings.map((name) => readFileSync(join(styled.dir, "recordings", name), "utf8")).join("\n");
    expect(all).toContain("psd_");
    expect(all).not.toContain("ann@example.com");
    expect(all).not.toContain("4111 1111 1111 1111");
  });
});
