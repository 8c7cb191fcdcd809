import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { connect as netConnect } from "node:net";
import { promisify } from "node:util";
import mysql from "mysql2/promise";
import mysqlCallback from "mysql2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { E2E_DATABASE } from "../support/global-setup.js";
import { startHarness, type Harness } from "../support/harness.js";

const run = promisify(execFile);
let harness: Harness;
let root: mysql.Connection;

const BIG_ROWS = 1_000_000;

beforeAll(async () => {
  root = await mysql.createConnection({ host: "127.0.0.1", port: 3306, user: "root", database: E2E_DATABASE, multipleStatements: true });
  await root.query(`
    drop table if exists big, typed;
    create table big (id int primary key, name varchar(40), amount decimal(12,2), created datetime(3), flag tinyint);
    insert into big select seq, concat('name-', seq), seq / 7, timestamp('2020-01-01') + interval seq second, seq % 2 from seq_1_to_${BIG_ROWS};
    create table typed (
      id int primary key, ti tinyint, si smallint unsigned, mi mediumint, bi bigint unsigned, de decimal(20,6), fl float, db double,
      d date, dt datetime(6), ts timestamp(3) null, t time(3), y year, c char(5), vc varchar(100), tx text, bn binary(4), vb varbinary(20),
      bl blob, js json, en enum('a','b','c'), st set('x','y','z'), bt bit(10))`);
  // A 4 MiB limit on messages, so a header announcing a 16 MiB packet is refused from the header alone.
  harness = await startHarness({ protocol: "mysql", maxMessageBytes: 4 << 20 });
}, 120_000);
afterAll(async () => {
  await harness?.close();
  await root?.query("drop table if exists big, typed");
  await root?.end();
});

/** Where a client connects, and the password it gives (the token, or anything through connect). */
interface Path {
  host: string;
  port: number;
  password: string;
}

const paths: [string, () => Promise<Path>][] = [
  ["native listener", async () => ({ ...harness.native, password: await harness.token() })],
  ["airlock connect", async () => ({ ...(await harness.connect()), password: "" })],
];

function options(path: Path, extra: mysql.ConnectionOptions = {}): mysql.ConnectionOptions {
  return { host: path.host, port: path.port, user: "ci", password: path.password, database: E2E_DATABASE, enableCleartextPlugin: true, ...extra };
}

/** md5 of every row of `sql` in order, streamed (text protocol with query, binary with execute). */
function digest(connection: mysqlCallback.Connection, sql: string, binary: boolean): Promise<{ rows: number; md5: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash("md5");
    let rows = 0;
    const query = binary ? connection.execute({ sql, rowsAsArray: true }) : connection.query({ sql, rowsAsArray: true });
    query
      .on("result", (row: unknown) => {
        rows++;
        hash.update(JSON.stringify(row, (_key, value: unknown) => (typeof value === "bigint" ? String(value) : value instanceof Date ? value.toISOString() : value)));
      })
      .on("error", reject)
      .on("end", () => resolve({ rows, md5: hash.digest("hex") }));
  });
}

function callbackConnection(config: mysql.ConnectionOptions): Promise<mysqlCallback.Connection> {
  return new Promise((resolve, reject) => {
    const connection = mysqlCallback.createConnection(config as mysqlCallback.ConnectionOptions);
    connection.connect((error) => (error ? reject(error) : resolve(connection)));
  });
}

describe.each(paths)("through the %s", (name, open) => {
  let path: Path;
  const table = `items_${name.replace(/\W/g, "_")}`;
  const rowId = name === "native listener" ? 1 : 2;

  beforeAll(async () => {
    path = await open();
  });

  it("runs queries, multi-statement strings, prepared statements and errors with mysql2", async () => {
    const connection = await mysql.createConnection(options(path, { multipleStatements: true }));
    try {
      await connection.query(`drop table if exists ${table}; create table ${table} (id int auto_increment primary key, name varchar(20), n int)`);
      const [inserted] = await connection.execute<mysql.ResultSetHeader>(`insert into ${table} (name, n) values (?, ?), (?, ?)`, ["a", 1, "b", 2]);
      expect(inserted).toMatchObject({ affectedRows: 2, insertId: 1 });
      const [multi] = await connection.query<mysql.RowDataPacket[][]>(`select count(*) as c from ${table}; select max(n) as m from ${table}`);
      expect(multi.map((rows) => rows[0])).toEqual([{ c: 2 }, { m: 2 }]);
      for (const n of [1, 2]) {
        const [rows] = await connection.execute<mysql.RowDataPacket[]>(`select name, n + 0.5 as half from ${table} where n = ?`, [n]);
        expect(rows).toEqual([{ name: n === 1 ? "a" : "b", half: `${n}.5` }]);
      }
      await expect(connection.query("select * from no_such_table")).rejects.toMatchObject({ errno: 1146 });
      const [after] = await connection.query<mysql.RowDataPacket[]>("select 41 + 1 as x");
      expect(after).toEqual([{ x: 42 }]);
      await connection.ping();
      await connection.changeUser({ database: E2E_DATABASE }).then(
        () => expect.unreachable("COM_CHANGE_USER must be refused"),
        (error: { errno?: number }) => expect(error.errno).toBe(1227),
      );
    } finally {
      await connection.end().catch(() => undefined);
    }
  });

  it("serves a mysql2 pool: concurrent queries and prepared statements on several connections", async () => {
    const pool = mysql.createPool({ ...options(path), connectionLimit: 4 });
    try {
      const results = await Promise.all(
        Array.from({ length: 24 }, async (_, index) => {
          const [rows] = index % 2 === 0 ? await pool.query<mysql.RowDataPacket[]>("select ? * 2 as n", [index]) : await pool.execute<mysql.RowDataPacket[]>("select ? * 2 as n", [index]);
          return Number(rows[0]?.n);
        }),
      );
      expect(results).toEqual(Array.from({ length: 24 }, (_, index) => index * 2));
    } finally {
      await pool.end();
    }
  });

  it("round-trips every common type through prepared statements (binary protocol) and queries (text)", async () => {
    const values = [rowId, -5, 65_000, -8_000_000, "18446744073709551615", "-12345.678901", 1.5, 2.25, "2024-02-29", "2024-02-29 23:59:59.123456", "2024-03-01 00:00:00.123", "-12:34:56.789", 2024, "abc", "varchar ✓", "text ✓".repeat(50), Buffer.from([0, 1, 2, 3]), Buffer.from([255, 0, 7]), Buffer.alloc(3000, 9), '{"k": [1, "v"]}', "b", "x,z", Buffer.from([0x02, 0x01])];
    const columns = "id, ti, si, mi, bi, de, fl, db, d, dt, ts, t, y, c, vc, tx, bn, vb, bl, js, en, st, bt";
    const gateway = await mysql.createConnection(options(path, { supportBigNumbers: true, bigNumberStrings: true, dateStrings: true }));
    const direct = await mysql.createConnection({ host: "127.0.0.1", port: 3306, user: "root", database: E2E_DATABASE, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true });
    try {
      await gateway.execute(`insert into typed (${columns}) values (${columns.split(",").map(() => "?").join(", ")})`, values);
      const sql = `select ${columns} from typed where id = ?`;
      // MariaDB marks JSON in its extended metadata, which the gateway does not relay (it announces
      // no MariaDB capabilities): through it a JSON column reads as the text it is on the wire.
      const json = (rows: unknown) => (rows as Record<string, unknown>[]).map((row) => ({ ...row, js: typeof row.js === "string" ? JSON.parse(row.js) : row.js }));
      const [viaBinary] = await gateway.execute(sql, [rowId]);
      const [directBinary] = await direct.execute(sql, [rowId]);
      expect(json(viaBinary)).toEqual(json(directBinary));
      const [viaText] = await gateway.query(sql, [rowId]);
      const [directText] = await direct.query(sql, [rowId]);
      expect(json(viaText)).toEqual(json(directText));
    } finally {
      await gateway.end();
      await direct.end();
    }
  });

  it(`returns a ${BIG_ROWS.toLocaleString("en")}-row SELECT exactly as directly, in text and binary protocol`, { timeout: 240_000 }, async () => {
    const sql = "select id, name, amount, created, flag from big order by id";
    const direct = await callbackConnection({ host: "127.0.0.1", port: 3306, user: "root", database: E2E_DATABASE });
    const gateway = await callbackConnection(options(path));
    try {
      for (const binary of [false, true]) {
        const expected = await digest(direct, sql, binary);
        expect(expected.rows).toBe(BIG_ROWS);
        expect(await digest(gateway, sql, binary)).toEqual(expected);
      }
    } finally {
      direct.end();
      gateway.end();
    }
  });

  it("serves the mariadb command line client", async () => {
    const args = ["-h", path.host, "-P", String(path.port), "-u", "ci", `--password=${path.password}`, "--skip-ssl", "--batch", "-D", E2E_DATABASE, "-e", "select 6 * 7 as answer; select count(*) from big"];
    const { stdout } = await run("mariadb", args);
    expect(stdout).toBe(`answer\n42\ncount(*)\n${BIG_ROWS}\n`);
  });

  it("dumps the database with mysqldump exactly as directly", { timeout: 120_000 }, async () => {
    const common = ["--skip-comments", "--skip-dump-date", "--skip-ssl", "--single-transaction", "--skip-lock-tables", "--ignore-table", `${E2E_DATABASE}.big`];
    const direct = await run("mysqldump", ["-h", "127.0.0.1", "-P", "3306", "-u", "root", ...common, E2E_DATABASE], { maxBuffer: 1 << 28 });
    const through = await run("mysqldump", ["-h", path.host, "-P", String(path.port), "-u", "ci", `--password=${path.password}`, ...common, E2E_DATABASE], { maxBuffer: 1 << 28 });
    expect(through.stdout.length).toBeGreaterThan(1000);
    expect(through.stdout).toBe(direct.stdout);
  });
});

describe("bad input on the native listener", () => {
  /** Logs in with mysql_clear_password over a raw socket and returns it ready for commands. */
  async function rawSession(): Promise<{ send(bytes: Buffer): void; next(): Promise<Buffer>; closed: Promise<void> }> {
    const socket = netConnect(harness.native.port, harness.native.host);
    const chunks: Buffer[] = [];
    let wake: (() => void) | undefined;
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      wake?.();
    });
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    let buffer = Buffer.alloc(0);
    const next = async (): Promise<Buffer> => {
      for (;;) {
        buffer = Buffer.concat([buffer, ...chunks.splice(0)]);
        if (buffer.length >= 4) {
          const length = buffer.readUIntLE(0, 3);
          if (buffer.length >= 4 + length) {
            const packet = buffer.subarray(0, 4 + length);
            buffer = buffer.subarray(4 + length);
            return packet;
          }
        }
        await Promise.race([new Promise<void>((resolve) => (wake = resolve)), closed]);
        if (socket.destroyed && chunks.length === 0) throw new Error("closed");
      }
    };
    const send = (bytes: Buffer) => socket.write(bytes);
    await next(); // greeting
    const token = Buffer.from(`${await harness.token()}\0`);
    // HandshakeResponse41: PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH | PLUGIN_AUTH_LENENC, user "ci", clear password.
    const caps = 0x200 | 0x8000 | 0x80000 | 0x200000;
    const head = Buffer.alloc(32);
    head.writeUInt32LE(caps, 0);
    head.writeUInt32LE(1 << 24, 4);
    head[8] = 45;
    const body = Buffer.concat([head, Buffer.from("ci\0"), lenenc(token.length), token, Buffer.from("mysql_clear_password\0")]);
    send(packet(1, body));
    const ok = await next();
    expect(ok[4]).toBe(0x00);
    return { send, next, closed };
  }

  it("ends the session on a command with the wrong sequence id, an oversized length, or garbage; the gateway keeps serving", async () => {
    const wrongSequence = await rawSession();
    wrongSequence.send(packet(3, Buffer.from([0x03, ...Buffer.from("select 1")])));
    const error = await wrongSequence.next();
    expect(error[4]).toBe(0xff);
    await wrongSequence.closed;

    const oversized = await rawSession();
    const header = Buffer.from([0xff, 0xff, 0xff, 0x00]);
    oversized.send(Buffer.concat([header, Buffer.alloc(16)]));
    const tooLarge = await oversized.next();
    expect(tooLarge[4]).toBe(0xff);
    await oversized.closed;

    const unknown = await rawSession();
    unknown.send(packet(0, Buffer.from([0x7e, 1, 2, 3])));
    const refused = await unknown.next();
    expect(refused[4]).toBe(0xff);
    expect(refused.readUInt16LE(5)).toBe(1047);

    const connection = await mysql.createConnection(options({ ...harness.native, password: await harness.token() }));
    const [rows] = await connection.query("select 1 as ok");
    expect(rows).toEqual([{ ok: 1 }]);
    await connection.end();
  });
});

function lenenc(value: number): Buffer {
  if (value < 251) return Buffer.from([value]);
  const out = Buffer.alloc(3);
  out[0] = 0xfc;
  out.writeUInt16LE(value, 1);
  return out;
}

function packet(sequence: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUIntLE(payload.length, 0, 3);
  header[3] = sequence;
  return Buffer.concat([header, payload]);
}

describe("a database or agent that vanishes", () => {
  // The agent as its own process, so it can be killed with SIGKILL.
  let killable: Harness;
  beforeAll(async () => {
    killable = await startHarness({ protocol: "mysql", agentProcess: true });
  }, 60_000);
  afterAll(async () => {
    await killable?.close();
  });

  it("ends a session whose agent is killed mid-result with an error the client sees", { timeout: 60_000 }, async () => {
    const harness = killable;
    const connection = await callbackConnection(options({ ...harness.native, password: await harness.token() }));
    const outcome = new Promise<{ rows: number; error: unknown }>((resolve) => {
      let rows = 0;
      // A lost connection is fatal: mysql2 reports it on the connection.
      connection.on("error", (error) => resolve({ rows, error }));
      let killed = false;
      connection
        .query({ sql: "select * from big", rowsAsArray: true })
        .on("result", () => {
          rows++;
          if (rows === 1000 && !killed) {
            killed = true;
            harness.killAgent();
          }
        })
        .on("error", (error) => resolve({ rows, error }))
        .on("end", () => resolve({ rows, error: undefined }));
    });
    const { rows, error } = await outcome;
    expect(error).toBeDefined();
    expect(rows).toBeLessThan(BIG_ROWS);
    connection.destroy();
    await harness.startAgent();
    const again = await mysql.createConnection(options({ ...harness.native, password: await harness.token() }));
    expect((await again.query("select 1 as ok"))[0]).toEqual([{ ok: 1 }]);
    await again.end();
  });
});
