import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import pg from "pg";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHarness, type Harness } from "../support/harness.js";

const run = promisify(execFile);
let harness: Harness;

beforeAll(async () => {
  harness = await startHarness();
});
afterAll(async () => {
  await harness?.close();
});

/** Where a client connects, and the password it gives (the token, or nothing through connect). */
interface Path {
  host: string;
  port: number;
  password: string | undefined;
}

const paths: [string, () => Promise<Path>][] = [
  ["native listener", async () => ({ ...harness.native, password: await harness.token() })],
  ["airlock connect", async () => ({ ...(await harness.connect()), password: undefined })],
];

function psqlEnv(path: Path): NodeJS.ProcessEnv {
  return { ...process.env, PGHOST: path.host, PGPORT: String(path.port), PGUSER: "ci", PGDATABASE: "orders", PGSSLMODE: "disable", PGPASSWORD: path.password ?? "" };
}

describe.each(paths)("through the %s", (name, open) => {
  let path: Path;
  const table = `items_${name.replace(/\W/g, "_")}`;

  beforeAll(async () => {
    path = await open();
  });

  it("runs SELECT, INSERT ... RETURNING and a multi-statement string with node-postgres", async () => {
    const client = new pg.Client({ host: path.host, port: path.port, user: "ci", database: "orders", password: path.password ?? "x" });
    await client.connect();
    try {
      await client.query(`drop table if exists ${table}; create table ${table} (id serial primary key, name text, n int)`);
      const inserted = await client.query(`insert into ${table} (name, n) values ($1, $2), ($3, $4) returning id, name`, ["a", 1, "b", 2]);
      expect(inserted.rows).toEqual([{ id: 1, name: "a" }, { id: 2, name: "b" }]);
      const multi = (await client.query(`select count(*)::int as c from ${table}; select max(n) as m from ${table}`)) as unknown as pg.QueryResult[];
      expect(multi.map((result) => result.rows[0])).toEqual([{ c: 2 }, { m: 2 }]);
      // Prepared statements of the extended protocol, named and reused, with binary-capable types.
      for (const n of [1, 2]) {
        const row = await client.query({ name: "by-n", text: `select name, n + 0.5 as half, now() is not null as t from ${table} where n = $1`, values: [n] });
        expect(row.rows).toEqual([{ name: n === 1 ? "a" : "b", half: `${n}.5`, t: true }]);
      }
      // An error does not end the session.
      await expect(client.query("select * from no_such_table")).rejects.toMatchObject({ code: "42P01" });
      expect((await client.query("select 41 + 1 as x")).rows).toEqual([{ x: 42 }]);
      // Notices and LISTEN/NOTIFY pass through.
      const notices: string[] = [];
      client.on("notice", (notice) => notices.push(notice.message ?? ""));
      await client.query("do $$ begin raise notice 'hello from %', 'plpgsql'; end $$");
      expect(notices).toEqual(["hello from plpgsql"]);
      const notified = new Promise<pg.Notification>((resolve) => client.once("notification", resolve));
      await client.query("listen airlock_channel");
      await client.query("select pg_notify('airlock_channel', 'payload-1')");
      expect((await notified).payload).toBe("payload-1");
    } finally {
      await client.end();
    }
  });

  it("streams a 1,000,000-row SELECT exactly as the database sends it", async () => {
    const { stdout } = await run("sh", ["-c", "psql -AtX -c 'select g, md5(g::text) from generate_series(1, 1000000) g' | md5sum && psql -AtX -c 'select count(*) from generate_series(1, 1000000)'"], {
      env: psqlEnv(path),
      maxBuffer: 1 << 20,
    });
    const direct = await run("sh", ["-c", "psql -AtX -h 127.0.0.1 -U postgres -d test -c 'select g, md5(g::text) from generate_series(1, 1000000) g' | md5sum"]);
    expect(stdout.split("\n")[0]).toBe(direct.stdout.trim());
    expect(stdout.split("\n")[1]).toBe("1000000");
  });

  it("copies in and out with COPY FROM STDIN and COPY TO STDOUT", async () => {
    const rows = Array.from({ length: 5000 }, (_, i) => `${i}\tname ${i}\t${i * 2}`).join("\n");
    const script = `drop table if exists ${table}_copy; create table ${table}_copy (id int, name text, n int);
\\copy ${table}_copy from stdin
${rows}
\\.
select count(*), sum(n) from ${table}_copy;`;
    const copyIn = await new Promise<string>((resolve, reject) => {
      const child = spawn("psql", ["-AtXq", "-v", "ON_ERROR_STOP=1"], { env: psqlEnv(path) });
      let out = "";
      let err = "";
      child.stdout.on("data", (chunk: Buffer) => (out += chunk));
      child.stderr.on("data", (chunk: Buffer) => (err += chunk));
      child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`psql exited ${code}: ${err}`))));
      child.stdin.end(script);
    });
    expect(copyIn.trim()).toBe(`5000|${(4999 * 5000) / 2 * 2}`);
    const { stdout } = await run("psql", ["-AtX", "-c", `copy (select * from ${table}_copy order by id) to stdout`], { env: psqlEnv(path), maxBuffer: 16 << 20 });
    expect(stdout.trimEnd()).toBe(rows);
  });

  it("cancels a running pg_sleep through the cancel key, with postgres.js", async () => {
    const sql = postgres({ host: path.host, port: path.port, user: "ci", database: "orders", ...(path.password === undefined ? {} : { password: path.password }), max: 1, ssl: false });
    try {
      // postgres.js pipelines and uses the extended protocol with portals.
      const [a, b] = await Promise.all([sql`select ${1}::int as v`, sql`select ${"two"}::text as v`]);
      expect([a[0]?.v, b[0]?.v]).toEqual([1, "two"]);
      const started = Date.now();
      const sleeping = sql`select pg_sleep(30)`;
      const cancelled = sleeping.then(
        () => undefined,
        (error: { code?: string }) => error.code,
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      sleeping.cancel();
      expect(await cancelled).toBe("57014");
      expect(Date.now() - started).toBeLessThan(10_000);
      // Portals with a row limit: a cursor fetches 100 rows at a time.
      let seen = 0;
      await sql`select g from generate_series(1, 1000) g`.cursor(100, (rows) => {
        seen += rows.length;
      });
      expect(seen).toBe(1000);
      expect((await sql`select 'still usable' as s`)[0]?.s).toBe("still usable");
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  it("runs pgbench (initialise through COPY, then select-only in all three protocols)", async () => {
    const env = psqlEnv(path);
    // Drop, create, generate client-side (COPY) and add primary keys; no VACUUM (an admin statement).
    await run("pgbench", ["-i", "-I", "dtgp", "-s", "1", "-q"], { env });
    for (const mode of ["simple", "extended", "prepared"]) {
      const { stdout } = await run("pgbench", ["-n", "-S", "-M", mode, "-c", "4", "-j", "2", "-t", "50"], { env });
      expect(stdout).toMatch(/number of transactions actually processed: 200\/200/);
      expect(stdout).toMatch(/number of failed transactions: 0 /);
    }
  });
});
