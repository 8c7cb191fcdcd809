import { randomBytes } from "node:crypto";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import mysql2 from "mysql2/promise";
import { afterEach, describe, expect, it } from "vitest";
import {
  mysql,
  mysqlAuth,
  mysqlCapabilities as C,
  mysqlColumnFlags,
  mysqlColumnTypes as T,
  mysqlCommands,
  mysqlServerStatus,
} from "../../src/index.js";
import { PacketStream } from "./packet-stream.js";

// A tiny MySQL server built from the codec's server-side encoders, driven by a real client (mysql2):
// the other half of what the MariaDB test checks from the client side.

const PASSWORD = "s3cret-pässword";
const STORED = mysqlAuth.nativePasswordHash(PASSWORD);
const AUTOCOMMIT = mysqlServerStatus.SERVER_STATUS_AUTOCOMMIT;
const SERVER_CAPABILITIES = (C.CLIENT_LONG_PASSWORD |
  C.CLIENT_PROTOCOL_41 |
  C.CLIENT_SECURE_CONNECTION |
  C.CLIENT_PLUGIN_AUTH |
  C.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
  C.CLIENT_CONNECT_WITH_DB |
  C.CLIENT_CONNECT_ATTRS |
  C.CLIENT_TRANSACTIONS |
  C.CLIENT_MULTI_RESULTS |
  C.CLIENT_QUERY_ATTRIBUTES) >>> 0;

function column(name: string, type: number, characterSet: number, flags = 0): mysql.ColumnDefinition41 {
  return { catalog: "def", schema: "shop", table: "customers", orgTable: "customers", name, orgName: name, characterSet, columnLength: 255, type, flags, decimals: 0 };
}

/** What the server saw, for the assertions. */
interface Seen {
  handshake?: mysql.HandshakeResponse41;
  queries: string[];
  prepared: string[];
  executed: { statementId: number; parameter: number | bigint | string | null }[];
}

/** Writes a result set from sequence id 1: count, definitions, EOF (unless CLIENT_DEPRECATE_EOF), rows, terminator. */
function sendResultSet(stream: PacketStream, capabilities: number, columns: readonly mysql.ColumnDefinition41[], rows: readonly Buffer[]): void {
  let sequenceId = 1;
  const deprecateEof = (capabilities & C.CLIENT_DEPRECATE_EOF) !== 0;
  stream.send(sequenceId++, mysql.encodeColumnCount(columns.length));
  for (const definition of columns) stream.send(sequenceId++, mysql.encodeColumnDefinition41(definition));
  if (!deprecateEof) stream.send(sequenceId++, mysql.encodeEof({ warnings: 0, statusFlags: AUTOCOMMIT }));
  for (const row of rows) stream.send(sequenceId++, row);
  stream.send(sequenceId, deprecateEof ? mysql.encodeOk({ eof: true, statusFlags: AUTOCOMMIT }, capabilities) : mysql.encodeEof({ warnings: 0, statusFlags: AUTOCOMMIT }));
}

/** A parameter's binary value as a JavaScript value. */
function parameterValue(type: number, raw: Buffer): number | bigint | string {
  switch (type) {
    case T.MYSQL_TYPE_TINY:
      return raw.readInt8();
    case T.MYSQL_TYPE_SHORT:
      return raw.readInt16LE();
    case T.MYSQL_TYPE_LONG:
      return raw.readInt32LE();
    case T.MYSQL_TYPE_LONGLONG:
      return raw.readBigInt64LE();
    case T.MYSQL_TYPE_DOUBLE:
      return raw.readDoubleLE();
    default:
      return raw.toString("utf8");
  }
}

async function serve(socket: Socket, seen: Seen): Promise<void> {
  const stream = new PacketStream(socket);
  // Like MySQL's, a scramble of printable bytes.
  const scramble = Buffer.from(randomBytes(20).map((byte) => 0x21 + (byte % 94)));
  stream.send(
    0,
    mysql.encodeHandshakeV10({
      serverVersion: "8.0.36-airlock-test",
      connectionId: 7,
      authPluginData: scramble,
      capabilities: SERVER_CAPABILITIES,
      characterSet: 255,
      statusFlags: AUTOCOMMIT,
      authPluginName: "mysql_native_password",
    }),
  );
  const first = await stream.next();
  const handshake = mysql.decodeHandshakeResponse41(first.payload);
  seen.handshake = handshake;
  const capabilities = (handshake.capabilities & SERVER_CAPABILITIES) >>> 0;
  if (!mysqlAuth.verifyNativeScramble(handshake.authResponse, scramble, STORED)) {
    stream.send(mysql.nextSequenceId(first), mysql.encodeErr({ code: 1045, sqlState: "28000", message: `Access denied for user '${handshake.username}'` }));
    stream.end();
    return;
  }
  stream.send(mysql.nextSequenceId(first), mysql.encodeOk({ statusFlags: AUTOCOMMIT }, capabilities));

  const statements = new Map<number, number>(); // statement id -> parameter count
  for (;;) {
    const packet = await stream.next();
    const command = mysql.commandOf(packet.payload);
    switch (command) {
      case mysqlCommands.COM_QUIT:
        stream.end();
        return;
      case mysqlCommands.COM_PING:
        stream.send(1, mysql.encodeOk({ statusFlags: AUTOCOMMIT }, capabilities));
        break;
      case mysqlCommands.COM_QUERY: {
        const sql = mysql.decodeComQuery(packet.payload, capabilities);
        seen.queries.push(sql);
        if (sql === "update customers set plan = 'pro'") {
          stream.send(1, mysql.encodeOk({ affectedRows: 3, lastInsertId: 0, statusFlags: AUTOCOMMIT, info: "Rows matched: 3  Changed: 3  Warnings: 0" }, capabilities));
          break;
        }
        if (sql !== "select id, email, note from customers") {
          stream.send(1, mysql.encodeErr({ code: 1064, sqlState: "42000", message: `the test server does not know \`${sql}\`` }));
          break;
        }
        sendResultSet(stream, capabilities, [column("id", T.MYSQL_TYPE_LONG, 63, mysqlColumnFlags.NOT_NULL_FLAG), column("email", T.MYSQL_TYPE_VAR_STRING, 255), column("note", T.MYSQL_TYPE_VAR_STRING, 255)], [
          mysql.encodeTextRow(["1", "alice@example.com", null]),
          mysql.encodeTextRow(["2", "bob@example.com", "ünïcode"]),
        ]);
        break;
      }
      case mysqlCommands.COM_STMT_PREPARE: {
        const sql = mysql.decodeComStmtPrepare(packet.payload);
        seen.prepared.push(sql);
        const statementId = statements.size + 1;
        statements.set(statementId, 1);
        const deprecateEof = (capabilities & C.CLIENT_DEPRECATE_EOF) !== 0;
        let sequenceId = 1;
        stream.send(sequenceId++, mysql.encodeStmtPrepareOk({ statementId, numColumns: 3, numParams: 1, warnings: 0 }));
        stream.send(sequenceId++, mysql.encodeColumnDefinition41({ ...column("?", T.MYSQL_TYPE_VAR_STRING, 63), schema: "", table: "", orgTable: "", orgName: "" }));
        if (!deprecateEof) stream.send(sequenceId++, mysql.encodeEof({ warnings: 0, statusFlags: AUTOCOMMIT }));
        for (const definition of [column("id", T.MYSQL_TYPE_LONGLONG, 63), column("email", T.MYSQL_TYPE_VAR_STRING, 255), column("created", T.MYSQL_TYPE_DATETIME, 63)]) {
          stream.send(sequenceId++, mysql.encodeColumnDefinition41(definition));
        }
        if (!deprecateEof) stream.send(sequenceId++, mysql.encodeEof({ warnings: 0, statusFlags: AUTOCOMMIT }));
        break;
      }
      case mysqlCommands.COM_STMT_EXECUTE: {
        const header = mysql.decodeStmtExecuteHeader(packet.payload);
        const numParams = statements.get(header.statementId) ?? 0;
        expect(numParams).toBe(1);
        const parameters = mysql.decodeStmtExecuteParameters(packet.payload, numParams, capabilities);
        const [type = 0] = parameters.types;
        const [raw = null] = parameters.values;
        const parameter = raw === null ? null : parameterValue(type & 0xff, raw);
        seen.executed.push({ statementId: header.statementId, parameter });
        const id = Buffer.alloc(8);
        id.writeBigInt64LE(BigInt(parameter ?? 0));
        const created = Buffer.from("e807010203040500000000", "hex");
        created.writeUInt32LE(250000, 7);
        const columns = [column("id", T.MYSQL_TYPE_LONGLONG, 63), column("email", T.MYSQL_TYPE_VAR_STRING, 255), column("created", T.MYSQL_TYPE_DATETIME, 63)];
        const types = columns.map((definition) => definition.type);
        sendResultSet(stream, capabilities, columns, [
          mysql.encodeBinaryRow(types, [id, Buffer.from("***"), created]),
          mysql.encodeBinaryRow(types, [id, null, null]),
        ]);
        break;
      }
      case mysqlCommands.COM_STMT_CLOSE:
        statements.delete(mysql.decodeStatementId(packet.payload));
        break;
      default:
        stream.send(1, mysql.encodeErr({ code: 1047, sqlState: "08S01", message: "unknown command" }));
    }
  }
}

const servers: Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Starts the server on port 0; closing it in afterEach waits for every connection to end. */
async function start(): Promise<{ port: number; seen: Seen; failures: unknown[] }> {
  const seen: Seen = { queries: [], prepared: [], executed: [] };
  const failures: unknown[] = [];
  const server = createServer((socket) => {
    serve(socket, seen).catch((error: unknown) => {
      if (!(error instanceof Error && error.message === "connection closed")) failures.push(error);
      socket.destroy();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as AddressInfo).port, seen, failures };
}

describe("a server built from the codec, with mysql2 as the client", () => {
  it("authenticates mysql_native_password and reads the HandshakeResponse41 mysql2 sends", async () => {
    const { port, seen, failures } = await start();
    const client = await mysql2.createConnection({ host: "127.0.0.1", port, user: "ci_bot", password: PASSWORD, database: "shop" });
    await client.ping();
    await client.end();
    expect(seen.handshake).toMatchObject({ username: "ci_bot", database: "shop", authPluginName: "mysql_native_password" });
    expect(seen.handshake?.connectAttributes?.get("_client_name")).toBe("Node-MySQL-2");
    expect(failures).toEqual([]);
  });

  it("refuses a wrong password with ERR 1045 / 28000, as mysql2 reads it", async () => {
    const { port, failures } = await start();
    const attempt = mysql2.createConnection({ host: "127.0.0.1", port, user: "ci_bot", password: "wrong" });
    await expect(attempt).rejects.toMatchObject({ errno: 1045, sqlState: "28000", code: "ER_ACCESS_DENIED_ERROR" });
    expect(failures).toEqual([]);
  });

  it("answers COM_QUERY with a text result set, an OK with info, and an ERR", async () => {
    const { port, seen, failures } = await start();
    const client = await mysql2.createConnection({ host: "127.0.0.1", port, user: "ci_bot", password: PASSWORD });
    const [rows, fields] = await client.query<mysql2.RowDataPacket[]>("select id, email, note from customers");
    expect(rows.map((row) => ({ ...row }))).toEqual([
      { id: 1, email: "alice@example.com", note: null },
      { id: 2, email: "bob@example.com", note: "ünïcode" },
    ]);
    expect(fields.map((field) => [field.name, field.orgTable, field.type])).toEqual([
      ["id", "customers", T.MYSQL_TYPE_LONG],
      ["email", "customers", T.MYSQL_TYPE_VAR_STRING],
      ["note", "customers", T.MYSQL_TYPE_VAR_STRING],
    ]);
    const [update] = await client.query<mysql2.ResultSetHeader>("update customers set plan = 'pro'");
    expect(update).toMatchObject({ affectedRows: 3, changedRows: 3 });
    await expect(client.query("drop table customers")).rejects.toMatchObject({ errno: 1064, sqlState: "42000" });
    // mysql2 sends query attributes before the SQL when the server announces CLIENT_QUERY_ATTRIBUTES.
    expect((seen.handshake?.capabilities ?? 0) & C.CLIENT_QUERY_ATTRIBUTES).not.toBe(0);
    await client.query({ sql: "select id, email, note from customers", attributes: { trace: "abc", n: 5, gone: null } } as mysql2.QueryOptions);
    expect(seen.queries).toEqual(["select id, email, note from customers", "update customers set plan = 'pro'", "drop table customers", "select id, email, note from customers"]);
    await client.end();
    expect(failures).toEqual([]);
  });

  it("answers COM_STMT_PREPARE and COM_STMT_EXECUTE with binary rows mysql2 decodes", async () => {
    const { port, seen, failures } = await start();
    const client = await mysql2.createConnection({ host: "127.0.0.1", port, user: "ci_bot", password: PASSWORD, dateStrings: true, supportBigNumbers: true });
    const [rows] = await client.execute<mysql2.RowDataPacket[]>("select id, email, created from customers where id = ?", [42]);
    expect(rows.map((row) => ({ ...row }))).toEqual([
      { id: 42, email: "***", created: "2024-01-02 03:04:05.250000" },
      { id: 42, email: null, created: null },
    ]);
    await client.unprepare("select id, email, created from customers where id = ?");
    await client.ping();
    await client.end();
    expect(seen.prepared).toEqual(["select id, email, created from customers where id = ?"]);
    expect(seen.executed).toHaveLength(1);
    expect(Number(seen.executed[0]?.parameter)).toBe(42);
    expect(failures).toEqual([]);
  });
});
