import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import mysql2 from "mysql2/promise";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  mysql,
  mysqlAuth,
  mysqlCapabilities as C,
  mysqlColumnTypes as T,
  mysqlCommands,
  mysqlServerStatus,
} from "../../src/index.js";
import { PacketStream } from "./packet-stream.js";

// The machine's MariaDB, spoken to through a raw socket with nothing but this codec.
const HOST = "127.0.0.1";
const PORT = 3306;
const USER = "airlock_codec_test";
const DATABASE = "airlock_codec_test";
const PASSWORD = randomBytes(15).toString("base64url");

let admin: mysql2.Connection;

beforeAll(async () => {
  admin = await mysql2.createConnection({ host: HOST, port: PORT, user: "root", password: "" });
  await dropFixtures();
  await admin.query(`create database ${DATABASE}`);
  for (const host of ["%", "127.0.0.1"]) {
    await admin.query(`create user '${USER}'@'${host}' identified via mysql_native_password using password(?)`, [PASSWORD]);
    await admin.query(`grant all on ${DATABASE}.* to '${USER}'@'${host}'`);
  }
  const [rows] = await admin.query<mysql2.RowDataPacket[]>("select plugin from mysql.user where user = ?", [USER]);
  expect(rows.map((row) => row.plugin)).toEqual(["mysql_native_password", "mysql_native_password"]);
});

afterAll(async () => {
  await dropFixtures();
  await admin.end();
});

async function dropFixtures(): Promise<void> {
  await admin.query(`drop user if exists '${USER}'@'%', '${USER}'@'127.0.0.1'`);
  await admin.query(`drop database if exists ${DATABASE}`);
}

/** A client connection: a packet stream over a socket to the server, tracked until it is closed. */
class RawConnection extends PacketStream {
  static async open(): Promise<RawConnection> {
    const socket = connect(PORT, HOST);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const connection = new RawConnection(socket);
    open.add(connection);
    return connection;
  }

  /** COM_QUIT; the server closes the connection. */
  async quit(): Promise<void> {
    this.send(0, mysql.encodeCommand(mysqlCommands.COM_QUIT));
    await this.closed;
    open.delete(this);
  }
}

const open = new Set<RawConnection>();

afterEach(async () => {
  const left = [...open];
  open.clear();
  for (const connection of left) connection.destroy();
  await Promise.all(left.map((connection) => connection.closed));
  expect(left, "a test left a connection open").toHaveLength(0);
});

interface LoginOptions {
  readonly password: string;
  readonly capabilities: number;
  /** The plugin the client claims; MariaDB switches to the account's plugin when it differs. */
  readonly pluginName?: string;
}

interface Session {
  readonly connection: RawConnection;
  readonly capabilities: number;
  readonly greeting: mysql.HandshakeV10;
  readonly switchedTo: string | undefined;
  readonly ok: mysql.OkPacket | undefined;
  readonly err: mysql.ErrPacket | undefined;
}

const BASE = (C.CLIENT_LONG_PASSWORD |
  C.CLIENT_PROTOCOL_41 |
  C.CLIENT_SECURE_CONNECTION |
  C.CLIENT_PLUGIN_AUTH |
  C.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
  C.CLIENT_TRANSACTIONS |
  C.CLIENT_CONNECT_WITH_DB |
  C.CLIENT_CONNECT_ATTRS |
  C.CLIENT_MULTI_STATEMENTS |
  C.CLIENT_MULTI_RESULTS |
  C.CLIENT_PS_MULTI_RESULTS) >>> 0;

/** Reads the greeting, answers with a HandshakeResponse41, follows an AuthSwitchRequest, returns OK or ERR. */
async function login(options: LoginOptions): Promise<Session> {
  const connection = await RawConnection.open();
  const first = await connection.next();
  expect(first.sequenceId).toBe(0);
  const greeting = mysql.decodeHandshakeV10(first.payload);
  // Re-encoding the server's own greeting gives its bytes back.
  expect(mysql.encodeHandshakeV10(greeting).equals(first.payload)).toBe(true);
  const capabilities = (options.capabilities & greeting.capabilities) >>> 0;
  const pluginName = options.pluginName ?? "mysql_native_password";
  const authResponse =
    pluginName === "caching_sha2_password"
      ? mysqlAuth.scrambleCachingSha2(options.password, greeting.authPluginData)
      : mysqlAuth.scrambleNativePassword(options.password, greeting.authPluginData);
  const response = mysql.encodeHandshakeResponse41({
    capabilities,
    maxPacketSize: 1 << 24,
    characterSet: 45, // utf8mb4_general_ci
    username: USER,
    authResponse,
    database: DATABASE,
    authPluginName: pluginName,
    connectAttributes: new Map([["_client_name", "airlock-wire-test"]]),
  });
  connection.send(mysql.nextSequenceId(first), response);
  let switchedTo: string | undefined;
  for (;;) {
    const packet = await connection.next();
    const kind = mysql.classifyResponse(packet.payload, capabilities, "auth");
    if (kind === "auth_switch") {
      const request = mysql.decodeAuthSwitchRequest(packet.payload);
      expect(mysql.encodeAuthSwitchRequest(request).equals(packet.payload)).toBe(true);
      switchedTo = request.pluginName;
      expect(request.pluginName).toBe("mysql_native_password");
      connection.send(mysql.nextSequenceId(packet), mysqlAuth.scrambleNativePassword(options.password, request.pluginData));
      continue;
    }
    if (kind === "ok") {
      const ok = mysql.decodeOk(packet.payload, capabilities);
      expect(mysql.encodeOk(ok, capabilities).equals(packet.payload)).toBe(true);
      return { connection, capabilities, greeting, switchedTo, ok, err: undefined };
    }
    expect(kind).toBe("err");
    const err = mysql.decodeErr(packet.payload);
    expect(mysql.encodeErr(err).equals(packet.payload)).toBe(true);
    await connection.closed;
    open.delete(connection);
    return { connection, capabilities, greeting, switchedTo, ok: undefined, err };
  }
}

interface ResultSet {
  readonly columns: mysql.ColumnDefinition41[];
  readonly rows: mysql.MysqlRow[];
  /** The terminator's status flags. */
  readonly statusFlags: number;
  readonly terminator: "eof" | "ok";
}

type Result = { readonly ok: mysql.OkPacket } | { readonly err: mysql.ErrPacket } | { readonly resultSet: ResultSet };

/** Reads column definitions and, without CLIENT_DEPRECATE_EOF, the EOF after them. */
async function readColumns(connection: RawConnection, capabilities: number, count: number): Promise<mysql.ColumnDefinition41[]> {
  const columns: mysql.ColumnDefinition41[] = [];
  for (let i = 0; i < count; i++) {
    const packet = await connection.next();
    const column = mysql.decodeColumnDefinition41(packet.payload);
    expect(mysql.encodeColumnDefinition41(column).equals(packet.payload)).toBe(true);
    columns.push(column);
  }
  if ((capabilities & C.CLIENT_DEPRECATE_EOF) === 0) {
    const eof = await connection.next();
    expect(mysql.classifyResponse(eof.payload, capabilities, "rows")).toBe("eof");
    expect(mysql.encodeEof(mysql.decodeEof(eof.payload)).equals(eof.payload)).toBe(true);
  }
  return columns;
}

/** Reads every result of a command (several with CLIENT_MULTI_RESULTS), text or binary rows. */
async function readResults(connection: RawConnection, capabilities: number, format: "text" | "binary"): Promise<Result[]> {
  const results: Result[] = [];
  for (;;) {
    const first = await connection.next();
    const kind = mysql.classifyResponse(first.payload, capabilities);
    let statusFlags: number;
    if (kind === "ok") {
      const ok = mysql.decodeOk(first.payload, capabilities);
      expect(mysql.encodeOk(ok, capabilities).equals(first.payload)).toBe(true);
      results.push({ ok });
      statusFlags = ok.statusFlags;
    } else if (kind === "err") {
      results.push({ err: mysql.decodeErr(first.payload) });
      return results;
    } else {
      expect(kind).toBe("result_set");
      const columns = await readColumns(connection, capabilities, mysql.decodeColumnCount(first.payload));
      const types = columns.map((column) => column.type);
      const rows: mysql.MysqlRow[] = [];
      for (;;) {
        const packet = await connection.next();
        const rowKind = mysql.classifyResponse(packet.payload, capabilities, "rows");
        if (rowKind === "row") {
          const row = format === "text" ? mysql.decodeTextRow(packet.payload, columns.length) : mysql.decodeBinaryRow(packet.payload, types);
          const again = format === "text" ? mysql.encodeTextRow(row) : mysql.encodeBinaryRow(types, row);
          expect(again.equals(packet.payload)).toBe(true);
          rows.push(row);
          continue;
        }
        if (rowKind === "eof") {
          const eof = mysql.decodeEof(packet.payload);
          results.push({ resultSet: { columns, rows, statusFlags: eof.statusFlags, terminator: "eof" } });
          statusFlags = eof.statusFlags;
        } else {
          expect(rowKind).toBe("ok");
          const ok = mysql.decodeOk(packet.payload, capabilities);
          expect(ok.eof).toBe(true);
          expect(mysql.encodeOk(ok, capabilities).equals(packet.payload)).toBe(true);
          results.push({ resultSet: { columns, rows, statusFlags: ok.statusFlags, terminator: "ok" } });
          statusFlags = ok.statusFlags;
        }
        break;
      }
    }
    if ((statusFlags & mysqlServerStatus.SERVER_MORE_RESULTS_EXISTS) === 0) return results;
  }
}

function resultSet(result: Result | undefined): ResultSet {
  if (result === undefined || !("resultSet" in result)) throw new Error(`expected a result set, got ${JSON.stringify(result)}`);
  return result.resultSet;
}

function okOf(result: Result | undefined): mysql.OkPacket {
  if (result === undefined || !("ok" in result)) throw new Error(`expected an OK, got ${JSON.stringify(result)}`);
  return result.ok;
}

function texts(rows: readonly mysql.MysqlRow[]): (string | null)[][] {
  return rows.map((row) => row.map((value) => (value === null ? null : value.toString("utf8"))));
}

function u32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32LE(value);
  return out;
}

/** COM_STMT_EXECUTE built by hand from the spec, independently of the codec: values already in their binary form. */
function encodeExecute(statementId: number, parameters: readonly { type: number; value: Buffer | null }[]): Buffer {
  const parts = [Buffer.from([mysqlCommands.COM_STMT_EXECUTE]), u32(statementId), Buffer.from([0]), u32(1)];
  if (parameters.length > 0) {
    const bitmap = Buffer.alloc(Math.floor((parameters.length + 7) / 8));
    parameters.forEach((parameter, index) => {
      if (parameter.value === null) bitmap[index >> 3] = (bitmap[index >> 3] ?? 0) | (1 << (index & 7));
    });
    parts.push(bitmap, Buffer.from([1]));
    for (const parameter of parameters) parts.push(Buffer.from([parameter.type, 0]));
    for (const parameter of parameters) if (parameter.value !== null) parts.push(parameter.value);
  }
  return Buffer.concat(parts);
}

describe("against MariaDB on 127.0.0.1:3306", () => {
  it("reads the greeting: protocol 10, a 20-byte scramble, mysql_native_password, MariaDB's extended capabilities", async () => {
    const session = await login({ password: PASSWORD, capabilities: BASE });
    const { greeting } = session;
    expect(greeting.protocolVersion).toBe(10);
    expect(greeting.serverVersion).toMatch(/MariaDB/);
    expect(greeting.authPluginData).toHaveLength(20);
    expect(greeting.authPluginName).toBe("mysql_native_password");
    expect(greeting.capabilities & C.CLIENT_PROTOCOL_41).not.toBe(0);
    // MariaDB clears CLIENT_LONG_PASSWORD (CLIENT_MYSQL) and announces its own capabilities instead.
    expect(greeting.capabilities & C.CLIENT_LONG_PASSWORD).toBe(0);
    expect(greeting.mariadbCapabilities).not.toBe(0);
    expect(session.switchedTo).toBeUndefined();
    expect(session.ok?.statusFlags ?? 0).toBeGreaterThan(0);
    await session.connection.quit();
  });

  it("refuses a wrong password with ERR 1045 and SQLSTATE 28000", async () => {
    const session = await login({ password: "not the password", capabilities: BASE });
    expect(session.ok).toBeUndefined();
    expect(session.err).toMatchObject({ code: 1045, sqlState: "28000" });
    expect(session.err?.message).toMatch(/^Access denied for user 'airlock_codec_test'@'127\.0\.0\.1'/);
  });

  it("answers an AuthSwitchRequest when the client starts with another plugin", async () => {
    const session = await login({ password: PASSWORD, capabilities: BASE, pluginName: "caching_sha2_password" });
    expect(session.switchedTo).toBe("mysql_native_password");
    expect(session.ok).toBeDefined();
    await session.connection.quit();
  });

  for (const deprecateEof of [false, true]) {
    describe(deprecateEof ? "with CLIENT_DEPRECATE_EOF and CLIENT_SESSION_TRACK" : "with EOF packets", () => {
      const capabilities = deprecateEof ? (BASE | C.CLIENT_DEPRECATE_EOF | C.CLIENT_SESSION_TRACK) >>> 0 : BASE;

      it("runs COM_QUERY and decodes the column definitions and the text row", async () => {
        const session = await login({ password: PASSWORD, capabilities });
        const { connection } = session;
        expect((session.capabilities & C.CLIENT_DEPRECATE_EOF) !== 0).toBe(deprecateEof);
        connection.send(0, mysql.encodeComQuery("select 1 as a, 'x' as b, null as c"));
        const results = await readResults(connection, session.capabilities, "text");
        expect(results).toHaveLength(1);
        const set = resultSet(results[0]);
        expect(set.terminator).toBe(deprecateEof ? "ok" : "eof");
        expect(set.columns.map((column) => column.name)).toEqual(["a", "b", "c"]);
        expect(set.columns.map((column) => column.catalog)).toEqual(["def", "def", "def"]);
        expect(set.columns.map((column) => column.type)).toEqual([T.MYSQL_TYPE_LONG, T.MYSQL_TYPE_VAR_STRING, T.MYSQL_TYPE_NULL]);
        expect(set.columns[1]?.characterSet).toBe(45);
        expect(texts(set.rows)).toEqual([["1", "x", null]]);
        await connection.quit();
      });

      it("prepares and executes a statement with parameters and decodes the binary row", async () => {
        const session = await login({ password: PASSWORD, capabilities });
        const { connection } = session;
        const sql = [
          "select ? + 1 as n, concat('v', ?) as s, ? as z, 3.5e0 as f,",
          "cast('2024-01-02 03:04:05.123456' as datetime(6)) as dt11, cast('2024-01-02 03:04:05' as datetime) as dt7,",
          "cast('2024-01-02 00:00:00' as datetime) as dt4, cast('2024-01-02' as date) as d4,",
          "cast('-838:59:58.5' as time(1)) as t12, cast('27:04:05' as time) as t8, cast('00:00:00' as time) as t0",
        ].join(" ");
        connection.send(0, mysql.encodeCommand(mysqlCommands.COM_STMT_PREPARE, sql));
        const prepared = await connection.next();
        expect(mysql.classifyResponse(prepared.payload, session.capabilities)).toBe("ok");
        const ok = mysql.decodeStmtPrepareOk(prepared.payload);
        expect(mysql.encodeStmtPrepareOk(ok).equals(prepared.payload)).toBe(true);
        expect(ok).toMatchObject({ numParams: 3, numColumns: 11, warnings: 0 });
        const parameterDefinitions = await readColumns(connection, session.capabilities, ok.numParams);
        expect(parameterDefinitions).toHaveLength(3);
        const columns = await readColumns(connection, session.capabilities, ok.numColumns);
        expect(columns.map((column) => column.name)).toEqual(["n", "s", "z", "f", "dt11", "dt7", "dt4", "d4", "t12", "t8", "t0"]);

        const n = Buffer.alloc(8);
        n.writeBigInt64LE(41n);
        const execute = encodeExecute(ok.statementId, [
          { type: T.MYSQL_TYPE_LONGLONG, value: n },
          { type: T.MYSQL_TYPE_VAR_STRING, value: Buffer.from("\x03abc", "latin1") },
          { type: T.MYSQL_TYPE_LONGLONG, value: null },
        ]);
        expect(mysql.decodeStmtExecuteHeader(execute)).toMatchObject({ statementId: ok.statementId, flags: 0, iterationCount: 1 });
        const parameters = mysql.decodeStmtExecuteParameters(execute, ok.numParams, session.capabilities);
        expect(parameters.values.map((value) => value?.toString("latin1") ?? null)).toEqual([n.toString("latin1"), "abc", null]);
        connection.send(0, execute);
        const results = await readResults(connection, session.capabilities, "binary");
        const set = resultSet(results[0]);
        expect(set.columns.map((column) => column.type)).toEqual([
          T.MYSQL_TYPE_LONGLONG,
          T.MYSQL_TYPE_VAR_STRING,
          T.MYSQL_TYPE_LONGLONG,
          T.MYSQL_TYPE_DOUBLE,
          T.MYSQL_TYPE_DATETIME,
          T.MYSQL_TYPE_DATETIME,
          T.MYSQL_TYPE_DATETIME,
          T.MYSQL_TYPE_DATE,
          T.MYSQL_TYPE_TIME,
          T.MYSQL_TYPE_TIME,
          T.MYSQL_TYPE_TIME,
        ]);
        expect(set.rows).toHaveLength(1);
        const [row = []] = set.rows;
        expect(row[0]?.readBigInt64LE()).toBe(42n);
        expect(row[1]?.toString()).toBe("vabc");
        expect(row[2]).toBeNull();
        expect(row[3]?.readDoubleLE()).toBe(3.5);
        // DATETIME: year int<2>, month, day, hour, minute, second, then microseconds int<4>.
        expect(row[4]?.toString("hex")).toBe(`e8070102030405${u32(123456).toString("hex")}`);
        expect(row[5]?.toString("hex")).toBe("e8070102030405");
        expect(row[6]?.toString("hex")).toBe("e8070102");
        expect(row[7]?.toString("hex")).toBe("e8070102");
        // TIME: is_negative, days int<4>, hour, minute, second, then microseconds int<4>.
        expect(row[8]?.toString("hex")).toBe(`01${u32(34).toString("hex")}163b3a${u32(500000).toString("hex")}`);
        expect(row[9]?.toString("hex")).toBe(`00${u32(1).toString("hex")}030405`);
        expect(row[10]?.toString("hex")).toBe("");

        connection.send(0, mysql.encodeCommand(mysqlCommands.COM_STMT_CLOSE, u32(ok.statementId)));
        // COM_STMT_CLOSE has no answer; a ping shows the stream is still in step.
        connection.send(0, mysql.encodeCommand(mysqlCommands.COM_PING));
        const pong = await connection.next();
        expect(pong.sequenceId).toBe(1);
        expect(mysql.classifyResponse(pong.payload, session.capabilities)).toBe("ok");
        await connection.quit();
      });

      it("gives two result sets for two statements with CLIENT_MULTI_STATEMENTS", async () => {
        const session = await login({ password: PASSWORD, capabilities });
        const { connection } = session;
        connection.send(0, mysql.encodeComQuery("select 1 as one; select 'two' as two, 2 as n union all select 'three', 3"));
        const results = await readResults(connection, session.capabilities, "text");
        expect(results).toHaveLength(2);
        const [first, second] = [resultSet(results[0]), resultSet(results[1])];
        expect(first.statusFlags & mysqlServerStatus.SERVER_MORE_RESULTS_EXISTS).not.toBe(0);
        expect(second.statusFlags & mysqlServerStatus.SERVER_MORE_RESULTS_EXISTS).toBe(0);
        expect(first.columns.map((column) => column.name)).toEqual(["one"]);
        expect(texts(first.rows)).toEqual([["1"]]);
        expect(second.columns.map((column) => column.name)).toEqual(["two", "n"]);
        expect(texts(second.rows)).toEqual([
          ["two", "2"],
          ["three", "3"],
        ]);
        await connection.quit();
      });

      it("decodes OK packets with affected rows and info, and a statement error", async () => {
        const session = await login({ password: PASSWORD, capabilities });
        const { connection } = session;
        connection.send(0, mysql.encodeComQuery("create temporary table t (id int auto_increment primary key, a int); insert into t (a) values (1), (2)"));
        const results = await readResults(connection, session.capabilities, "text");
        expect(results).toHaveLength(2);
        expect(okOf(results[0])).toMatchObject({ affectedRows: 0, eof: false });
        expect(okOf(results[1])).toMatchObject({ affectedRows: 2, lastInsertId: 1, info: "Records: 2  Duplicates: 0  Warnings: 0" });
        connection.send(0, mysql.encodeComQuery("select * from no_such_table"));
        const [error] = await readResults(connection, session.capabilities, "text");
        expect(error).toMatchObject({ err: { code: 1146, sqlState: "42S02" } });
        await connection.quit();
      });

      if (deprecateEof) {
        it("decodes the session state change of COM_INIT_DB under CLIENT_SESSION_TRACK", async () => {
          const session = await login({ password: PASSWORD, capabilities });
          const { connection } = session;
          connection.send(0, mysql.encodeCommand(mysqlCommands.COM_INIT_DB, "information_schema"));
          const ok = okOf((await readResults(connection, session.capabilities, "text"))[0]);
          expect(ok.statusFlags & mysqlServerStatus.SERVER_SESSION_STATE_CHANGED).not.toBe(0);
          expect(ok.sessionStateChanges?.includes(Buffer.from("information_schema"))).toBe(true);
          await connection.quit();
        });
      }
    });
  }
});
