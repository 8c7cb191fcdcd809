import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { createMysqlFramer, mysql, mysqlAuth, mysqlCapabilities as C, mysqlCommands, type MysqlPacket } from "@airlock/wire";

/**
 * A raw-socket MySQL client for tests: logs in to the machine's MariaDB with mysql_native_password
 * using only the wire codec, sends commands and captures the server's packets exactly as they came.
 *
 * Where a response ends is found without any response parser: each command is followed at once by
 * a marker query (`SELECT '<nonce>' AS <nonce>`), which the server answers only after the command's
 * response; every packet before the marker's column count belongs to the command.
 */

export const MYSQL_HOST = "127.0.0.1";
export const MYSQL_PORT = 3306;

/** Capabilities every capture asks for; CLIENT_DEPRECATE_EOF is chosen per connection. */
export const CAPTURE_CAPABILITIES = (C.CLIENT_LONG_PASSWORD |
  C.CLIENT_LONG_FLAG |
  C.CLIENT_PROTOCOL_41 |
  C.CLIENT_SECURE_CONNECTION |
  C.CLIENT_PLUGIN_AUTH |
  C.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
  C.CLIENT_TRANSACTIONS |
  C.CLIENT_LOCAL_FILES |
  C.CLIENT_MULTI_STATEMENTS |
  C.CLIENT_MULTI_RESULTS |
  C.CLIENT_PS_MULTI_RESULTS) >>> 0;

/** Options of {@link MysqlCapture.open}. */
export interface MysqlCaptureOptions {
  /** Negotiate CLIENT_DEPRECATE_EOF (OK packets in place of EOF). */
  readonly deprecateEof: boolean;
  /** Extra capability bits to ask for. */
  readonly extraCapabilities?: number;
  /** CLIENT_CONNECT_WITH_DB. */
  readonly database?: string;
  /** MariaDB's extended capabilities to ask for (MARIADB_CLIENT_EXTENDED_METADATA...). */
  readonly mariadbCapabilities?: number;
}

/** One command and the server's answer to it. */
export interface CapturedExchange {
  /** The command's payload as sent (sequence id 0). */
  readonly command: Buffer;
  /** The server's packets answering it, in order. */
  readonly packets: MysqlPacket[];
}

/** A logged-in raw connection; see the module comment. */
export class MysqlCapture {
  readonly #socket: Socket;
  readonly #framer = createMysqlFramer({ maxMessageBytes: 1 << 26 });
  readonly #packets: MysqlPacket[] = [];
  #wake: (() => void) | undefined;
  #failure: Error | undefined;
  readonly closed: Promise<void>;
  /** The capabilities both sides agreed. */
  capabilities = 0;
  /** MariaDB's extended capabilities both sides agreed. */
  mariadbCapabilities = 0;

  private constructor(socket: Socket) {
    this.#socket = socket;
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("data", (chunk: Buffer) => {
      try {
        this.#packets.push(...this.#framer.push(chunk));
      } catch (error) {
        this.#failure = error as Error;
        socket.destroy();
      }
      this.#wake?.();
    });
    socket.on("error", (error) => {
      this.#failure ??= error;
      this.#wake?.();
    });
    socket.on("close", () => {
      this.#failure ??= new Error("connection closed");
      this.#wake?.();
    });
  }

  /** Connects and logs in as root with the empty password. */
  static async open(options: MysqlCaptureOptions): Promise<MysqlCapture> {
    const socket = connect(MYSQL_PORT, MYSQL_HOST);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const capture = new MysqlCapture(socket);
    try {
      await capture.#login(options);
    } catch (error) {
      socket.destroy();
      throw error;
    }
    return capture;
  }

  async #login(options: MysqlCaptureOptions): Promise<void> {
    const first = await this.next();
    const greeting = mysql.decodeHandshakeV10(first.payload);
    let wanted = CAPTURE_CAPABILITIES | (options.extraCapabilities ?? 0);
    if (options.deprecateEof) wanted |= C.CLIENT_DEPRECATE_EOF;
    if (options.database !== undefined) wanted |= C.CLIENT_CONNECT_WITH_DB;
    // MariaDB clears CLIENT_LONG_PASSWORD (its CLIENT_MYSQL bit); keep what the server has.
    this.capabilities = (wanted & greeting.capabilities) >>> 0;
    this.mariadbCapabilities = ((options.mariadbCapabilities ?? 0) & greeting.mariadbCapabilities) >>> 0;
    const response = mysql.encodeHandshakeResponse41({
      capabilities: this.capabilities,
      maxPacketSize: 1 << 24,
      characterSet: 45, // utf8mb4_general_ci
      mariadbCapabilities: this.mariadbCapabilities,
      username: "root",
      authResponse: mysqlAuth.scrambleNativePassword("", greeting.authPluginData),
      ...(options.database === undefined ? {} : { database: options.database }),
      authPluginName: "mysql_native_password",
    });
    this.send(mysql.nextSequenceId(first), response);
    for (;;) {
      const packet = await this.next();
      const kind = mysql.classifyResponse(packet.payload, this.capabilities, "auth");
      if (kind === "ok") return;
      if (kind === "auth_switch") {
        const request = mysql.decodeAuthSwitchRequest(packet.payload);
        this.send(mysql.nextSequenceId(packet), mysqlAuth.scrambleNativePassword("", request.pluginData));
        continue;
      }
      if (kind === "err") throw new Error(`login refused: ${mysql.decodeErr(packet.payload).message}`);
      throw new Error(`unexpected login packet ${kind}`);
    }
  }

  /** The next packet from the server. */
  async next(): Promise<MysqlPacket> {
    for (;;) {
      const packet = this.#packets.shift();
      if (packet !== undefined) return packet;
      if (this.#failure !== undefined) throw this.#failure;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /** Writes one logical packet. */
  send(sequenceId: number, payload: Buffer): void {
    this.#socket.write(mysql.encodePacket(sequenceId, payload));
  }

  /** Sends a command and captures every packet of the server's answer. */
  async command(payload: Buffer): Promise<CapturedExchange> {
    const nonce = `airlock_end_${randomBytes(8).toString("hex")}`;
    this.send(0, payload);
    this.send(0, mysql.encodeComQuery(`SELECT '${nonce}' AS ${nonce}`));
    return { command: payload, packets: await this.#until(nonce) };
  }

  /** COM_QUERY. */
  query(sql: string): Promise<CapturedExchange> {
    return this.command(mysql.encodeComQuery(sql));
  }

  /** Runs SQL for its side effects; throws on an ERR anywhere in its answer. */
  async exec(sql: string): Promise<void> {
    const { packets } = await this.query(sql);
    for (const packet of packets) {
      if (packet.payload[0] === 0xff && packet.payload.length > 3) {
        const err = mysql.decodeErr(packet.payload);
        if (err.sqlState !== undefined) throw new Error(`${sql}: ${err.message}`);
      }
    }
  }

  /**
   * Sends a command whose answer the marker cannot follow (LOCAL INFILE: the server waits for the
   * file), and returns the first `count` packets of the answer.
   */
  async raw(payload: Buffer, count: number): Promise<MysqlPacket[]> {
    this.send(0, payload);
    const out: MysqlPacket[] = [];
    for (let i = 0; i < count; i++) out.push(await this.next());
    return out;
  }

  /** Reads up to and through the marker's answer; returns what came before it. */
  async #until(nonce: string): Promise<MysqlPacket[]> {
    const seen: MysqlPacket[] = [];
    const name = Buffer.from(nonce);
    let marker = -1;
    for (;;) {
      const packet = await this.next();
      seen.push(packet);
      // The marker's column definition names the nonce: its column count is the packet before.
      if (marker === -1 && packet.sequenceId === 2 && packet.payload.includes(name) && packet.payload.subarray(0, 4).equals(Buffer.from("\x03def", "latin1"))) {
        marker = seen.length - 2;
      }
      // Then its row, and its terminator (0xfe), end the marker's answer.
      if (marker !== -1 && packet.payload[0] === 0xfe && seen.length - marker >= (this.#deprecateEof ? 4 : 5)) {
        return seen.slice(0, marker);
      }
    }
  }

  get #deprecateEof(): boolean {
    return (this.capabilities & C.CLIENT_DEPRECATE_EOF) !== 0;
  }

  /** COM_QUIT and wait for the server to close. */
  async quit(): Promise<void> {
    this.send(0, mysql.encodeCommand(mysqlCommands.COM_QUIT));
    await this.closed;
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

/** COM_STMT_PREPARE. */
export function comStmtPrepare(sql: string): Buffer {
  return mysql.encodeCommand(mysqlCommands.COM_STMT_PREPARE, sql);
}

function u32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32LE(value);
  return out;
}

/** A binary parameter of {@link comStmtExecute}: its type and its value already in binary form. */
export interface BinaryParameter {
  readonly type: number;
  readonly unsigned?: boolean;
  readonly value: Buffer | null;
}

/** COM_STMT_EXECUTE built from the spec; `flags` is the cursor type byte. */
export function comStmtExecute(statementId: number, parameters: readonly BinaryParameter[] = [], flags = 0): Buffer {
  const parts = [Buffer.from([mysqlCommands.COM_STMT_EXECUTE]), u32(statementId), Buffer.from([flags]), u32(1)];
  if (parameters.length > 0) {
    const bitmap = Buffer.alloc(Math.floor((parameters.length + 7) / 8));
    parameters.forEach((parameter, index) => {
      if (parameter.value === null) bitmap[index >> 3] = (bitmap[index >> 3] ?? 0) | (1 << (index & 7));
    });
    parts.push(bitmap, Buffer.from([1]));
    for (const parameter of parameters) parts.push(Buffer.from([parameter.type, parameter.unsigned === true ? 0x80 : 0]));
    for (const parameter of parameters) {
      if (parameter.value === null) continue;
      const fixed = [1, 2, 3, 4, 5, 8, 9, 13].includes(parameter.type);
      const temporal = [7, 10, 11, 12].includes(parameter.type);
      if (fixed) parts.push(parameter.value);
      else if (temporal) parts.push(Buffer.from([parameter.value.length]), parameter.value);
      else parts.push(mysql.encodeLenencString(parameter.value));
    }
  }
  return Buffer.concat(parts);
}

/** COM_STMT_FETCH. */
export function comStmtFetch(statementId: number, rows: number): Buffer {
  return Buffer.concat([Buffer.from([mysqlCommands.COM_STMT_FETCH]), u32(statementId), u32(rows)]);
}

/** COM_STMT_CLOSE, COM_STMT_RESET and the other commands that carry just a statement id. */
export function comStatement(command: number, statementId: number): Buffer {
  return Buffer.concat([Buffer.from([command]), u32(statementId)]);
}

/** The statement id of a COM_STMT_PREPARE_OK among captured packets. */
export function preparedId(packets: readonly MysqlPacket[]): number {
  const first = packets[0];
  if (first === undefined || first.payload[0] !== 0) throw new Error("no COM_STMT_PREPARE_OK");
  return mysql.decodeStmtPrepareOk(first.payload).statementId;
}

/** A throwaway database name of this suite. */
export function maskerDatabase(): string {
  return `airlock_mysql_masker_${randomBytes(5).toString("hex")}`;
}

/** Values of row 1 of `types` that must never reach a client once their columns are masked. */
export const CANARIES = {
  int: 987654321,
  big: 8765432109876n,
  bigUnsigned: 12345678901234567n,
  decimal: "98765.43",
  double: 1234.5678,
  float: 3.25,
  date: "1987-06-05",
  datetime: "1987-06-05 04:03:02.123456",
  time: "13:57:31",
  year: 1987,
  char: "cnryCHAR",
  varchar: "canary-alice@example.com",
  short: "abcde",
  text: "canary text secret value",
  latin1: "canary-latin",
  binary: "cnrybin8",
  varbinary: "canary-varbinary",
  blob: "canary-blob-bytes",
  json: "json-secret-canary",
  enum: "green",
  set: "a,c",
  bit: 0b1011001110,
  geometry: "POINT(12.5 48.25)",
} as const;

/** Every common column type, as `types` declares them: name, SQL type. */
export const TYPE_COLUMNS: readonly (readonly [string, string])[] = [
  ["id", "INT PRIMARY KEY"],
  ["t_tiny", "TINYINT"],
  ["t_tiny_u", "TINYINT UNSIGNED"],
  ["t_small", "SMALLINT"],
  ["t_medium", "MEDIUMINT"],
  ["t_int", "INT"],
  ["t_int_u", "INT UNSIGNED"],
  ["t_big", "BIGINT"],
  ["t_big_u", "BIGINT UNSIGNED"],
  ["t_zerofill", "INT(8) UNSIGNED ZEROFILL"],
  ["t_decimal", "DECIMAL(10,2)"],
  ["t_decimal_u", "DECIMAL(12,0) UNSIGNED"],
  ["t_float", "FLOAT"],
  ["t_double", "DOUBLE"],
  ["t_date", "DATE"],
  ["t_datetime", "DATETIME(6)"],
  ["t_datetime0", "DATETIME"],
  ["t_timestamp", "TIMESTAMP NULL"],
  ["t_time", "TIME"],
  ["t_time3", "TIME(3)"],
  ["t_year", "YEAR"],
  ["t_char", "CHAR(10)"],
  ["t_varchar", "VARCHAR(64)"],
  ["t_short", "VARCHAR(5)"],
  ["t_text", "TEXT"],
  ["t_latin1", "VARCHAR(20) CHARACTER SET latin1"],
  ["t_binary", "BINARY(8)"],
  ["t_varbinary", "VARBINARY(32)"],
  ["t_blob", "BLOB"],
  ["t_json", "JSON"],
  ["t_enum", "ENUM('red','green','blue')"],
  ["t_set", "SET('a','b','c')"],
  ["t_bit", "BIT(10)"],
  ["t_geo", "GEOMETRY"],
];

const ROWS = [
  `(1, 77, 201, 30001, 7000001, ${CANARIES.int}, 4000000001, ${CANARIES.big}, ${CANARIES.bigUnsigned}, 4242, ${CANARIES.decimal}, 999999999999, ${CANARIES.float}, ${CANARIES.double},
    '${CANARIES.date}', '${CANARIES.datetime}', '1987-06-05 04:03:02', '1999-12-31 23:59:58', '${CANARIES.time}', '-101:02:03.456', ${CANARIES.year},
    '${CANARIES.char}', '${CANARIES.varchar}', '${CANARIES.short}', '${CANARIES.text}', '${CANARIES.latin1}', '${CANARIES.binary}', '${CANARIES.varbinary}', '${CANARIES.blob}',
    '{"canary": "${CANARIES.json}"}', '${CANARIES.enum}', '${CANARIES.set}', ${CANARIES.bit}, ST_GeomFromText('${CANARIES.geometry}'))`,
  "(2" + ", NULL".repeat(TYPE_COLUMNS.length - 1) + ")",
  `(3, -128, 255, -32768, -8388608, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615, 1, -12345678.99, 0, -1.5, -2.25e100,
    '1000-01-01', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07', '2038-01-19 03:14:07', '-838:59:59', '838:59:58.999', 2155,
    'x', 'ünïcødé ✓ 😀', '😀😀😀😀😀', REPEAT('long ', 40), 'çà', X'00FF00FF00FF00FF', X'00', X'DEADBEEF', '[1, 2, {"a": null}]', 'blue', 'a,b,c', b'1111111111',
    ST_GeomFromText('LINESTRING(0 0, 1 1)'))`,
];

/** A throwaway database with `types` (every common type, row 1 full of canaries), `people` and a procedure with two result sets. */
export interface MaskerFixture {
  readonly database: string;
  /** Drops the database. */
  drop(): Promise<void>;
}

/** Creates the fixture database on the machine's MariaDB. */
export async function createMaskerFixture(): Promise<MaskerFixture> {
  const database = maskerDatabase();
  const admin = await MysqlCapture.open({ deprecateEof: true });
  try {
    await admin.exec(`CREATE DATABASE ${database} CHARACTER SET utf8mb4`);
    await admin.exec(`USE ${database}`);
    await admin.exec(`CREATE TABLE types (${TYPE_COLUMNS.map(([name, type]) => `${name} ${type}`).join(", ")}) DEFAULT CHARSET utf8mb4`);
    await admin.exec(`INSERT INTO types VALUES ${ROWS.join(", ")}`);
    await admin.exec("CREATE TABLE people (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(64), n INT, note TEXT) DEFAULT CHARSET utf8mb4");
    await admin.exec(`INSERT INTO people (email, n, note) VALUES ('${CANARIES.varchar}', 1, 'card 4111 1111 1111 1111 and bob@example.com'), ('carol@example.org', 2, 'nothing to see')`);
    await admin.exec("CREATE PROCEDURE two_results() BEGIN SELECT id, t_varchar FROM types ORDER BY id; SELECT t_int, t_date, t_blob FROM types WHERE id = 1; END");
  } finally {
    await admin.quit();
  }
  return {
    database,
    async drop() {
      const again = await MysqlCapture.open({ deprecateEof: true });
      try {
        await again.exec(`DROP DATABASE IF EXISTS ${database}`);
      } finally {
        await again.quit();
      }
    },
  };
}
