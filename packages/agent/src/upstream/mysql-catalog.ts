import { createMysqlFramer, mysql, mysqlCapabilities, mysqlCommands, type MysqlPacket } from "@airlock/wire";
import type { Socket } from "node:net";
import type { CatalogRow } from "./catalog.js";
import { UpstreamError } from "./errors.js";
import { connectMysql, type MysqlTarget } from "./mysql.js";

const TABLES_SQL = `select t.table_schema, t.table_name, t.table_type, coalesce(v.view_definition, '')
from information_schema.tables t
left join information_schema.views v on v.table_schema = t.table_schema and v.table_name = t.table_name
where t.table_schema not in ('mysql', 'information_schema', 'performance_schema', 'sys')
order by t.table_schema, t.table_name`;

const COLUMNS_SQL = `select table_schema, table_name, column_name from information_schema.columns
where table_schema not in ('mysql', 'information_schema', 'performance_schema', 'sys')
order by table_schema, table_name, ordinal_position`;

/** information_schema's table types, as the catalog's PostgreSQL-shaped kinds. */
const KINDS: Record<string, string> = { "BASE TABLE": "r", "SYSTEM VERSIONED": "r", VIEW: "v", SEQUENCE: "S", "TEMPORARY": "r" };

/**
 * Reads the server's tables and views on a login of its own (the agent's credentials): schema,
 * name, kind, columns in order, and each view's definition. MySQL has no OIDs: `oid` is 0, and
 * masking names relations by schema and table as the column definitions do.
 */
export async function readMysqlCatalog(target: MysqlTarget): Promise<CatalogRow[]> {
  const session = await connectMysql(target, { connectAttributes: new Map([["program_name", "airlock-agent-catalog"]]) });
  const reader = new QueryReader(session.socket, target.maxMessageBytes, session.capabilities, session.leftover);
  try {
    const tables = await reader.query(TABLES_SQL);
    const columns = await reader.query(COLUMNS_SQL);
    const byTable = new Map<string, string[]>();
    for (const [schema, table, column] of columns) {
      const key = `${schema}\0${table}`;
      let list = byTable.get(key);
      if (list === undefined) byTable.set(key, (list = []));
      list.push(column ?? "");
    }
    return tables.map(([schema = "", name = "", type = "", definition = ""]) => ({
      oid: 0,
      schema,
      name,
      kind: KINDS[type] ?? "r",
      columns: byTable.get(`${schema}\0${name}`) ?? [],
      definition,
    }));
  } finally {
    session.socket.destroy();
  }
}

/** Text-protocol queries on a logged-in socket, one at a time: rows as strings. */
class QueryReader {
  readonly #socket: Socket;
  readonly #framer;
  readonly #capabilities: number;
  readonly #queue: MysqlPacket[] = [];
  #waiting: (() => void) | undefined;
  #failed: Error | undefined;

  constructor(socket: Socket, maxMessageBytes: number, capabilities: number, leftover: Buffer) {
    this.#socket = socket;
    this.#capabilities = capabilities;
    this.#framer = createMysqlFramer({ maxMessageBytes });
    const take = (chunk: Buffer) => {
      try {
        this.#queue.push(...this.#framer.push(chunk));
      } catch (error) {
        this.#failed = error as Error;
      }
      this.#waiting?.();
    };
    if (leftover.length > 0) take(leftover);
    socket.on("data", take);
    socket.on("error", (error) => {
      this.#failed = error;
      this.#waiting?.();
    });
    socket.on("close", () => {
      this.#failed ??= new Error("the connection closed");
      this.#waiting?.();
    });
    socket.resume();
  }

  async #next(): Promise<MysqlPacket> {
    for (;;) {
      const packet = this.#queue.shift();
      if (packet !== undefined) return packet;
      if (this.#failed !== undefined) throw new UpstreamError("connect_failed", "08S01", `reading the catalog failed: ${this.#failed.message}`);
      await new Promise<void>((resolve) => (this.#waiting = resolve));
      this.#waiting = undefined;
    }
  }

  async query(sql: string): Promise<(string | undefined)[][]> {
    this.#socket.write(mysql.encodePacket(0, mysql.encodeCommand(mysqlCommands.COM_QUERY, sql)));
    const first = await this.#next();
    const kind = mysql.classifyResponse(first.payload, this.#capabilities, "command");
    if (kind === "err") throw new UpstreamError("connect_failed", "08S01", `reading the catalog failed: ${mysql.decodeErr(first.payload).message}`);
    if (kind !== "result_set") return [];
    const count = mysql.decodeColumnCount(first.payload);
    for (let i = 0; i < count; i++) await this.#next();
    if (!mysql.hasFlag(this.#capabilities, mysqlCapabilities.CLIENT_DEPRECATE_EOF)) await this.#next(); // the EOF after the definitions
    const rows: (string | undefined)[][] = [];
    for (;;) {
      const packet = await this.#next();
      const rowKind = mysql.classifyResponse(packet.payload, this.#capabilities, "rows");
      if (rowKind === "err") throw new UpstreamError("connect_failed", "08S01", `reading the catalog failed: ${mysql.decodeErr(packet.payload).message}`);
      if (rowKind !== "row") return rows;
      rows.push(mysql.decodeTextRow(packet.payload, count).map((value) => value?.toString("utf8")));
    }
  }
}
