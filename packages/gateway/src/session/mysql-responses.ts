/**
 * The gateway's view of a MySQL connection's command phase: which response each command the client
 * sends expects, where that response ends, and what it says (result sets and their columns, rows,
 * OK, ERR, prepared statements and their cursors). Pure: no I/O, no clock, no logs.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_command_phase.html
 * https://mariadb.com/kb/en/clientserver-protocol/
 */
import {
  mariadbCapabilities,
  mysql,
  mysqlCapabilities,
  mysqlColumnTypes,
  mysqlCommandName,
  mysqlCommands,
  mysqlCursorTypes,
  mysqlResponseHeaders,
  mysqlServerStatus,
  WireError,
  type MysqlPacket,
} from "@airlock/wire";

const C = mysqlCapabilities;
const M = mysqlCommands;
const H = mysqlResponseHeaders;
const S = mysqlServerStatus;
const T = mysqlColumnTypes;

/** MariaDB's "the statement prepared last" in COM_STMT_EXECUTE and friends (pipelined PREPARE + EXECUTE). */
const LAST_PREPARED = 0xffffffff;
/** MariaDB's progress report: an ERR packet with this code that does not end the command. */
const PROGRESS_CODE = 0xffff;
/** A column count no server sends (MySQL and MariaDB cap a table and a select list at 4096 columns). */
const MAX_COLUMNS = 0xffff;

/** One command the client sent, from {@link MysqlResponseTracker.onCommand} on. */
export interface MysqlCommand {
  /** Increasing per tracker: the session's key for what it knows about the command. */
  readonly id: number;
  /** The command byte, a {@link mysqlCommands} value. */
  readonly code: number;
  /**
   * The statement of COM_STMT_EXECUTE, FETCH, CLOSE, RESET and SEND_LONG_DATA; MariaDB's 0xffffffff
   * ("the statement prepared last") is resolved once the commands before it were answered.
   */
  readonly statementId: number | undefined;
  /** COM_STMT_EXECUTE asking for a read-only cursor. */
  readonly cursor: boolean;
  /** False for COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA and COM_QUIT, which the server never answers. */
  readonly expectsResponse: boolean;
  /** The response is complete (at once for a command without one). */
  readonly done: boolean;
  /** Results (OK packets and result sets) answered so far: a multi-statement string has one per statement. */
  readonly results: number;
}

/** One result set: a column count, its column definitions, rows, a terminator. */
export interface MysqlResultSet {
  readonly command: MysqlCommand;
  /** Its place among the command's results (OK packets count too), from 0. */
  readonly index: number;
  /** Text rows (COM_QUERY) or binary rows (COM_STMT_EXECUTE, COM_STMT_FETCH). */
  readonly format: "text" | "binary";
  readonly columnCount: number;
  /** The column definitions received so far; all of them once the first row arrives. */
  readonly columns: readonly mysql.ColumnDefinition41[];
  /** The column types, for {@link mysql.decodeBinaryRow}. */
  readonly columnTypes: readonly number[];
  /** Rows received so far. */
  readonly rowCount: number;
  /** For the rows of COM_STMT_FETCH: the result set of the COM_STMT_EXECUTE that opened the cursor. */
  readonly cursorOf: MysqlResultSet | undefined;
  /** COM_FIELD_LIST's column definitions (with their default values), which have no rows. */
  readonly fieldList: boolean;
}

/** A statement prepared with COM_STMT_PREPARE and not closed yet. */
export interface MysqlPreparedStatement {
  readonly statementId: number;
  readonly numParams: number;
  readonly numColumns: number;
  readonly warnings: number;
  readonly params: readonly mysql.ColumnDefinition41[];
  readonly columns: readonly mysql.ColumnDefinition41[];
  /** The result set whose rows COM_STMT_FETCH reads, while the statement has an open cursor. */
  readonly cursor: MysqlResultSet | undefined;
}

interface Base {
  readonly command: MysqlCommand;
  /** This packet ends the command's response: the next command may be judged. */
  readonly done: boolean;
}

/**
 * What one server packet was; see {@link MysqlResponseTracker.onServerPacket}.
 *
 * - `ok`: an OK packet that is a result of its own (an INSERT, a SET, the last packet of a CALL).
 * - `err`: an ERR packet; it always ends the response.
 * - `progress`: a MariaDB progress report (only when MARIADB_CLIENT_PROGRESS was agreed).
 * - `local_infile`: the server asks the client for a file (LOAD DATA LOCAL); an OK or ERR follows
 *   once the client sent it.
 * - `result_set`: the column count that starts a result set.
 * - `column`: a column definition of a result set (or of COM_FIELD_LIST); `last` on the last one.
 * - `eof`: the EOF after column or parameter definitions (without CLIENT_DEPRECATE_EOF).
 * - `row`: a row; the same event object for every row of a result set.
 * - `result_end`: the EOF or OK that ends a result set; `cursor` when it opened a cursor instead.
 * - `prepare_ok`, `param`, `prepare_column`: the answer to COM_STMT_PREPARE.
 * - `statistics`: the answer to COM_STATISTICS.
 */
export type MysqlResponseEvent =
  | (Base & { readonly kind: "ok"; readonly ok: mysql.OkPacket; readonly resultIndex: number })
  | (Base & { readonly kind: "err"; readonly err: mysql.ErrPacket })
  | (Base & { readonly kind: "progress" })
  | (Base & { readonly kind: "local_infile"; readonly filename: string })
  | (Base & { readonly kind: "result_set"; readonly resultSet: MysqlResultSet })
  | (Base & { readonly kind: "column"; readonly resultSet: MysqlResultSet; readonly column: mysql.ColumnDefinition41; readonly index: number; readonly last: boolean })
  | (Base & { readonly kind: "eof"; readonly eof: mysql.EofPacket })
  | (Base & { readonly kind: "row"; readonly resultSet: MysqlResultSet })
  | (Base & {
      readonly kind: "result_end";
      readonly resultSet: MysqlResultSet;
      readonly statusFlags: number;
      readonly warnings: number;
      /** The OK that ended it under CLIENT_DEPRECATE_EOF. */
      readonly ok: mysql.OkPacket | undefined;
      /** The server opened a cursor (COM_STMT_EXECUTE with a cursor): the rows come with COM_STMT_FETCH. */
      readonly cursor: boolean;
    })
  | (Base & { readonly kind: "prepare_ok"; readonly statement: MysqlPreparedStatement })
  | (Base & { readonly kind: "param" | "prepare_column"; readonly statement: MysqlPreparedStatement; readonly column: mysql.ColumnDefinition41; readonly index: number })
  | (Base & { readonly kind: "statistics"; readonly text: string });

/** Options of {@link MysqlResponseTracker}. */
export interface MysqlResponseTrackerOptions {
  /** The capability flags both sides agreed; CLIENT_PROTOCOL_41 is required. */
  readonly capabilities: number;
  /** MariaDB's extended capabilities both sides agreed; 0 (the default) for MySQL. */
  readonly mariadbCapabilities?: number;
}

/** Commands the tracker follows; anything else must be refused before it reaches the server. */
const TRACKED: ReadonlySet<number> = new Set([
  M.COM_QUIT,
  M.COM_INIT_DB,
  M.COM_QUERY,
  M.COM_FIELD_LIST,
  M.COM_CREATE_DB,
  M.COM_DROP_DB,
  M.COM_REFRESH,
  M.COM_SHUTDOWN,
  M.COM_STATISTICS,
  M.COM_PROCESS_INFO,
  M.COM_PROCESS_KILL,
  M.COM_DEBUG,
  M.COM_PING,
  M.COM_STMT_PREPARE,
  M.COM_STMT_EXECUTE,
  M.COM_STMT_SEND_LONG_DATA,
  M.COM_STMT_CLOSE,
  M.COM_STMT_RESET,
  M.COM_SET_OPTION,
  M.COM_STMT_FETCH,
  M.COM_RESET_CONNECTION,
]);

/** Commands the server never answers. */
const SILENT: ReadonlySet<number> = new Set([M.COM_QUIT, M.COM_STMT_CLOSE, M.COM_STMT_SEND_LONG_DATA]);

/** Whether {@link MysqlResponseTracker} follows a command; the session refuses the others (COM_CHANGE_USER, COM_BINLOG_DUMP...). */
export function isTrackedMysqlCommand(code: number): boolean {
  return TRACKED.has(code);
}

/**
 * Where the response at the head of the queue is:
 * - `first`: its first packet, or the first of the next result after SERVER_MORE_RESULTS_EXISTS;
 * - `columns`, `columns_eof`: a result set's column definitions and the EOF after them;
 * - `rows`: rows until the terminator;
 * - `params`, `params_eof`, `prepare_columns`, `prepare_columns_eof`: after COM_STMT_PREPARE_OK;
 * - `field_list`: COM_FIELD_LIST's definitions until the EOF;
 * - `infile`: the OK or ERR after the client sent a LOCAL INFILE file.
 */
type Phase = "first" | "columns" | "columns_eof" | "rows" | "params" | "params_eof" | "prepare_columns" | "prepare_columns_eof" | "field_list" | "infile";

class CommandState implements MysqlCommand {
  readonly id: number;
  readonly code: number;
  statementId: number | undefined;
  readonly cursor: boolean;
  readonly expectsResponse: boolean;
  done = false;
  results = 0;
  /** Sequence id the next server packet must carry; undefined accepts any (after a LOCAL INFILE transfer). */
  nextSequenceId: number | undefined;
  /** Its response is the one being read. */
  started = false;

  constructor(id: number, code: number, payload: Buffer, statementId: number | undefined, cursor: boolean) {
    this.id = id;
    this.code = code;
    this.statementId = statementId;
    this.cursor = cursor;
    this.expectsResponse = !SILENT.has(code);
    // A command of 16 MiB or more spans several physical packets, and the answer counts on from the last.
    this.nextSequenceId = mysql.nextSequenceId({ sequenceId: 0, payload });
  }
}

class ResultSetState implements MysqlResultSet {
  readonly command: CommandState;
  readonly index: number;
  readonly format: "text" | "binary";
  readonly columnCount: number;
  readonly columns: mysql.ColumnDefinition41[];
  readonly columnTypes: number[];
  rowCount = 0;
  readonly cursorOf: MysqlResultSet | undefined;
  readonly fieldList: boolean;
  /** The one event of every row. */
  readonly rowEvent: MysqlResponseEvent;

  constructor(command: CommandState, index: number, format: "text" | "binary", columnCount: number, from?: { cursorOf?: MysqlResultSet; fieldList?: boolean }) {
    this.command = command;
    this.index = index;
    this.format = format;
    this.columnCount = columnCount;
    this.cursorOf = from?.cursorOf;
    this.fieldList = from?.fieldList === true;
    this.columns = from?.cursorOf === undefined ? [] : [...from.cursorOf.columns];
    this.columnTypes = from?.cursorOf === undefined ? [] : [...from.cursorOf.columnTypes];
    this.rowEvent = { kind: "row", command, resultSet: this, done: false };
  }
}

class StatementState implements MysqlPreparedStatement {
  readonly statementId: number;
  readonly numParams: number;
  readonly numColumns: number;
  readonly warnings: number;
  readonly params: mysql.ColumnDefinition41[] = [];
  readonly columns: mysql.ColumnDefinition41[] = [];
  cursor: MysqlResultSet | undefined;

  constructor(ok: mysql.StmtPrepareOk) {
    this.statementId = ok.statementId;
    this.numParams = ok.numParams;
    this.numColumns = ok.numColumns;
    this.warnings = ok.warnings;
  }
}

/**
 * Follows one connection's command phase. The session calls {@link onCommand} for every command
 * packet it forwards to the server (sequence id 0), then {@link onServerPacket} for every packet
 * the server sends back, in order; each call returns what the packet was. Commands may be
 * pipelined: their responses are matched in order. Assumes neither CLIENT_OPTIONAL_RESULTSET_METADATA
 * nor MARIADB_CLIENT_CACHE_METADATA was agreed, so every result set carries its column definitions.
 *
 * A packet that does not fit the response expected (a wrong sequence id, an unexpected header, a
 * row that does not parse for its columns, a packet with no command pending) throws a WireError:
 * the stream can no longer be followed, so the session must end.
 */
export class MysqlResponseTracker {
  readonly #capabilities: number;
  readonly #deprecateEof: boolean;
  readonly #extendedMetadata: boolean;
  readonly #progress: boolean;
  /** Commands sent and not yet fully answered, oldest first. */
  readonly #queue: CommandState[] = [];
  #phase: Phase = "first";
  /** Definitions still to come in the current `columns`, `params` or `prepare_columns` phase. */
  #left = 0;
  #resultSet: ResultSetState | undefined;
  #statement: StatementState | undefined;
  readonly #statements = new Map<number, StatementState>();
  #lastPrepared: number | undefined;
  #nextId = 1;
  #statusFlags = 0;
  #lastEvent: MysqlResponseEvent | undefined;

  constructor(options: MysqlResponseTrackerOptions) {
    const { capabilities } = options;
    if (!Number.isInteger(capabilities) || capabilities < 0 || capabilities > 0xffffffff) throw new TypeError("options.capabilities must be a 32-bit set of flags");
    if (!mysql.hasFlag(capabilities, C.CLIENT_PROTOCOL_41)) throw new TypeError("options.capabilities must include CLIENT_PROTOCOL_41");
    if (mysql.hasFlag(capabilities, C.CLIENT_OPTIONAL_RESULTSET_METADATA)) throw new TypeError("options.capabilities must not include CLIENT_OPTIONAL_RESULTSET_METADATA");
    const mariadb = options.mariadbCapabilities ?? 0;
    if (mysql.hasFlag(mariadb, mariadbCapabilities.MARIADB_CLIENT_CACHE_METADATA)) throw new TypeError("options.mariadbCapabilities must not include MARIADB_CLIENT_CACHE_METADATA");
    this.#capabilities = capabilities;
    this.#deprecateEof = mysql.hasFlag(capabilities, C.CLIENT_DEPRECATE_EOF);
    this.#extendedMetadata = mysql.hasFlag(mariadb, mariadbCapabilities.MARIADB_CLIENT_EXTENDED_METADATA);
    this.#progress = mysql.hasFlag(mariadb, mariadbCapabilities.MARIADB_CLIENT_PROGRESS);
  }

  /** No command is waiting for (more of) its response. */
  get idle(): boolean {
    return this.#queue.length === 0;
  }

  /** The command whose response comes next, if any. */
  get pending(): MysqlCommand | undefined {
    return this.#queue[0];
  }

  /** What the last packet given to {@link onServerPacket} was, for layers that share the tracker (masking, recording). */
  get lastEvent(): MysqlResponseEvent | undefined {
    return this.#lastEvent;
  }

  /** The server status flags of the last OK or EOF (SERVER_STATUS_IN_TRANS, SERVER_STATUS_AUTOCOMMIT...). */
  get statusFlags(): number {
    return this.#statusFlags;
  }

  /** A transaction is open, as the last OK or EOF said. */
  get inTransaction(): boolean {
    return mysql.hasFlag(this.#statusFlags, S.SERVER_STATUS_IN_TRANS);
  }

  /** The prepared statements, by id. */
  get statements(): ReadonlyMap<number, MysqlPreparedStatement> {
    return this.#statements;
  }

  /** A prepared statement, by id (0xffffffff: the statement prepared last). */
  statement(statementId: number): MysqlPreparedStatement | undefined {
    return this.#statements.get(statementId === LAST_PREPARED ? (this.#lastPrepared ?? -1) : statementId);
  }

  /**
   * A command packet's payload the client sent with sequence id 0, after the session let it through.
   *
   * @throws WireError `unexpected_message` for a command the tracker does not follow (see
   *   {@link isTrackedMysqlCommand}: refuse those before they reach the server), `malformed_message`
   *   for a statement command too short for its statement id
   */
  onCommand(payload: Buffer): MysqlCommand {
    const code = mysql.commandOf(payload);
    if (!TRACKED.has(code)) throw new WireError("unexpected_message", `command \`${mysqlCommandName(code)}\` is not followed by the gateway`);
    let statementId: number | undefined;
    let cursor = false;
    if (code === M.COM_STMT_EXECUTE) {
      const header = mysql.decodeStmtExecuteHeader(payload);
      statementId = header.statementId;
      cursor = (header.flags & (mysqlCursorTypes.CURSOR_TYPE_READ_ONLY | mysqlCursorTypes.CURSOR_TYPE_FOR_UPDATE | mysqlCursorTypes.CURSOR_TYPE_SCROLLABLE)) !== 0;
    } else if (code === M.COM_STMT_CLOSE || code === M.COM_STMT_RESET || code === M.COM_STMT_SEND_LONG_DATA || code === M.COM_STMT_FETCH) {
      statementId = mysql.decodeStatementId(payload);
    }
    if (code === M.COM_STMT_FETCH && payload.length < 9) throw new WireError("malformed_message", "COM_STMT_FETCH is shorter than 9 bytes");
    const command = new CommandState(this.#nextId++, code, payload, statementId, cursor);
    this.#queue.push(command);
    this.#settle();
    return command;
  }

  /**
   * A packet from the server, in order. Returns what it was; `done` says the command's response is
   * complete.
   *
   * @throws WireError when the packet does not fit (see the class comment)
   */
  onServerPacket(packet: MysqlPacket): MysqlResponseEvent {
    this.#lastEvent = undefined;
    const command = this.#queue[0];
    if (command === undefined) throw new WireError("unexpected_message", "the server sent a packet while no command was pending");
    if (command.nextSequenceId !== undefined && packet.sequenceId !== command.nextSequenceId) {
      throw new WireError("malformed_message", `server packet has sequence id ${packet.sequenceId}, not ${command.nextSequenceId}`);
    }
    command.nextSequenceId = mysql.nextSequenceId(packet);
    const event = this.#step(command, packet.payload);
    this.#lastEvent = event;
    if (event.done) {
      command.done = true;
      this.#queue.shift();
      this.#phase = "first";
      this.#resultSet = undefined;
      this.#statement = undefined;
      this.#settle();
    }
    return event;
  }

  /** Starts the commands now at the head of the queue: applies those without a response, resolves statement ids. */
  #settle(): void {
    for (;;) {
      const head = this.#queue[0];
      if (head === undefined || head.started) return;
      head.started = true;
      if (head.statementId === LAST_PREPARED) head.statementId = this.#lastPrepared ?? LAST_PREPARED;
      if (head.expectsResponse) {
        this.#begin(head);
        return;
      }
      if (head.code === M.COM_STMT_CLOSE && head.statementId !== undefined) this.#statements.delete(head.statementId);
      head.done = true;
      this.#queue.shift();
    }
  }

  /** The phase a response starts in. */
  #begin(command: CommandState): void {
    this.#phase = "first";
    if (command.code === M.COM_FIELD_LIST) {
      this.#phase = "field_list";
      this.#resultSet = new ResultSetState(command, command.results++, "text", 0, { fieldList: true });
    } else if (command.code === M.COM_STMT_FETCH) {
      const cursor = command.statementId === undefined ? undefined : this.#statements.get(command.statementId)?.cursor;
      this.#phase = "rows";
      this.#resultSet = cursor === undefined ? undefined : new ResultSetState(command, command.results++, "binary", cursor.columnCount, { cursorOf: cursor });
    }
  }

  #step(command: CommandState, payload: Buffer): MysqlResponseEvent {
    const header = payload[0];
    if (header === undefined) throw new WireError("malformed_message", "server packet is empty");
    if (header === H.ERR) return this.#err(command, payload);
    switch (this.#phase) {
      case "first":
        return this.#first(command, payload);
      case "infile":
        if (header !== H.OK) throw unexpected("OK or ERR after a LOCAL INFILE transfer", header);
        return this.#ok(command, payload);
      case "columns": {
        const resultSet = this.#current();
        const column = this.#column(payload);
        resultSet.columns.push(column);
        resultSet.columnTypes.push(column.type);
        const index = resultSet.columns.length - 1;
        const last = --this.#left === 0;
        if (last) this.#phase = this.#deprecateEof ? "rows" : "columns_eof";
        return { kind: "column", command, resultSet, column, index, last, done: false };
      }
      case "columns_eof": {
        const eof = this.#eof(payload, "the EOF after column definitions");
        // An EXECUTE with a cursor ends here when the server opened one.
        if (command.cursor && mysql.hasFlag(eof.statusFlags, S.SERVER_STATUS_CURSOR_EXISTS)) return this.#end(command, eof.statusFlags, eof.warnings, undefined);
        this.#phase = "rows";
        return { kind: "eof", command, eof, done: false };
      }
      case "rows":
        return this.#row(command, payload);
      case "params":
      case "prepare_columns": {
        const statement = this.#prepared();
        const column = this.#column(payload);
        const params = this.#phase === "params";
        (params ? statement.params : statement.columns).push(column);
        const index = (params ? statement.params : statement.columns).length - 1;
        if (--this.#left === 0) this.#phase = this.#deprecateEof ? this.#afterParams(params) : params ? "params_eof" : "prepare_columns_eof";
        return { kind: params ? "param" : "prepare_column", command, statement, column, index, done: this.#phase === "first" };
      }
      case "params_eof":
      case "prepare_columns_eof": {
        const eof = this.#eof(payload, "the EOF after prepared statement definitions");
        this.#phase = this.#afterParams(this.#phase === "params_eof");
        return { kind: "eof", command, eof, done: this.#phase === "first" };
      }
      case "field_list":
        return this.#fieldList(command, payload);
    }
  }

  /** After a PREPARE's parameter (true) or column (false) block: its columns, or the end ("first"). */
  #afterParams(params: boolean): Phase {
    const statement = this.#prepared();
    if (params && statement.numColumns > 0) {
      this.#left = statement.numColumns;
      return "prepare_columns";
    }
    return "first";
  }

  #first(command: CommandState, payload: Buffer): MysqlResponseEvent {
    const header = payload[0] as number;
    switch (command.code) {
      case M.COM_STATISTICS:
        return { kind: "statistics", command, text: payload.toString("utf8"), done: true };
      case M.COM_STMT_PREPARE: {
        if (header !== H.OK) throw unexpected("COM_STMT_PREPARE_OK", header);
        if (payload.length < 12) throw new WireError("malformed_message", `COM_STMT_PREPARE_OK has ${payload.length} bytes, not 12`);
        const statement = new StatementState(mysql.decodeStmtPrepareOk(payload));
        this.#statements.set(statement.statementId, statement);
        this.#lastPrepared = statement.statementId;
        this.#statement = statement;
        if (statement.numParams > 0) {
          this.#phase = "params";
          this.#left = statement.numParams;
        } else this.#phase = this.#afterParams(true);
        return { kind: "prepare_ok", command, statement, done: this.#phase === "first" };
      }
      case M.COM_QUERY:
      case M.COM_PROCESS_INFO:
      case M.COM_STMT_EXECUTE: {
        if (header === H.OK) return this.#ok(command, payload);
        if (header === H.LocalInfile && command.code === M.COM_QUERY) {
          this.#phase = "infile";
          // The client's file comes in between, with sequence ids the tracker does not see.
          command.nextSequenceId = undefined;
          return { kind: "local_infile", command, filename: payload.toString("utf8", 1), done: false };
        }
        if (header === H.EOF || header === H.LocalInfile) throw unexpected("a result", header);
        const count = mysql.decodeColumnCount(payload);
        if (count === 0 || count > MAX_COLUMNS || payload.length !== lenencSize(payload)) {
          throw new WireError("malformed_message", `result set announces ${count} columns in a packet of ${payload.length} bytes`);
        }
        const resultSet = new ResultSetState(command, command.results++, command.code === M.COM_STMT_EXECUTE ? "binary" : "text", count);
        this.#resultSet = resultSet;
        this.#phase = "columns";
        this.#left = count;
        return { kind: "result_set", command, resultSet, done: false };
      }
      default: {
        // OK, ERR, or EOF (COM_SET_OPTION, COM_DEBUG, COM_SHUTDOWN) and nothing else.
        const kind = mysql.classifyResponse(payload, this.#capabilities);
        if (kind === "ok") return this.#ok(command, payload);
        if (kind === "eof") {
          const eof = mysql.decodeEof(payload);
          this.#statusFlags = eof.statusFlags;
          return { kind: "eof", command, eof, done: true };
        }
        throw unexpected(`the answer to ${mysqlCommandName(command.code)}`, header);
      }
    }
  }

  #ok(command: CommandState, payload: Buffer): MysqlResponseEvent {
    const ok = mysql.decodeOk(payload, this.#capabilities);
    this.#statusFlags = ok.statusFlags;
    const resultIndex = command.results++;
    const more = this.#more(command, ok.statusFlags);
    this.#phase = "first";
    if (!more) this.#applyOk(command);
    return { kind: "ok", command, ok, resultIndex, done: !more };
  }

  /** State an OK changes: a reset cursor, a reset connection. */
  #applyOk(command: CommandState): void {
    if (command.code === M.COM_STMT_RESET && command.statementId !== undefined) {
      const statement = this.#statements.get(command.statementId);
      if (statement !== undefined) statement.cursor = undefined;
    } else if (command.code === M.COM_RESET_CONNECTION) {
      this.#statements.clear();
      this.#lastPrepared = undefined;
    }
  }

  /** SERVER_MORE_RESULTS_EXISTS: another result follows (multi-statements, CALL); only COM_QUERY and COM_STMT_EXECUTE have several. */
  #more(command: CommandState, statusFlags: number): boolean {
    return mysql.hasFlag(statusFlags, S.SERVER_MORE_RESULTS_EXISTS) && (command.code === M.COM_QUERY || command.code === M.COM_STMT_EXECUTE || command.code === M.COM_PROCESS_INFO);
  }

  #err(command: CommandState, payload: Buffer): MysqlResponseEvent {
    if (payload.length < 3) throw new WireError("malformed_message", "ERR packet is shorter than 3 bytes");
    if (this.#progress && payload.readUInt16LE(1) === PROGRESS_CODE) return { kind: "progress", command, done: false };
    // A PREPARE that fails part-way leaves no statement behind.
    if (this.#statement !== undefined) this.#statements.delete(this.#statement.statementId);
    return { kind: "err", command, err: mysql.decodeErr(payload), done: true };
  }

  #row(command: CommandState, payload: Buffer): MysqlResponseEvent {
    const kind = mysql.classifyResponse(payload, this.#capabilities, "rows");
    const resultSet = this.#resultSet;
    if (kind === "row") {
      if (resultSet === undefined) throw new WireError("unexpected_message", `server sent rows for statement ${command.statementId ?? "?"}, which has no open cursor`);
      const valid = resultSet.format === "text" ? isTextRow(payload, resultSet.columnCount) : isBinaryRow(payload, resultSet.columnTypes);
      if (!valid) throw new WireError("malformed_message", `${resultSet.format} row does not fit its ${resultSet.columnCount} columns`);
      resultSet.rowCount++;
      return resultSet.rowEvent;
    }
    let statusFlags: number;
    let warnings: number;
    let ok: mysql.OkPacket | undefined;
    if (kind === "ok") {
      ok = mysql.decodeOk(payload, this.#capabilities);
      ({ statusFlags, warnings } = ok);
    } else {
      ({ statusFlags, warnings } = mysql.decodeEof(payload));
    }
    if (resultSet === undefined) {
      // COM_STMT_FETCH with no cursor the tracker knows of: the server may still end it cleanly.
      this.#statusFlags = statusFlags;
      const empty = new ResultSetState(command, command.results++, "binary", 0);
      return { kind: "result_end", command, resultSet: empty, statusFlags, warnings, ok, cursor: false, done: true };
    }
    return this.#end(command, statusFlags, warnings, ok);
  }

  /** A result set's terminator (or the EOF of an opened cursor). */
  #end(command: CommandState, statusFlags: number, warnings: number, ok: mysql.OkPacket | undefined): MysqlResponseEvent {
    const resultSet = this.#current();
    this.#statusFlags = statusFlags;
    let cursor = false;
    if (command.code === M.COM_STMT_EXECUTE && command.statementId !== undefined) {
      const statement = this.#statements.get(command.statementId);
      cursor = command.cursor && mysql.hasFlag(statusFlags, S.SERVER_STATUS_CURSOR_EXISTS) && resultSet.rowCount === 0;
      if (statement !== undefined) statement.cursor = cursor ? resultSet : undefined;
    } else if (command.code === M.COM_STMT_FETCH && mysql.hasFlag(statusFlags, S.SERVER_STATUS_LAST_ROW_SENT) && command.statementId !== undefined) {
      const statement = this.#statements.get(command.statementId);
      if (statement !== undefined) statement.cursor = undefined;
    }
    const more = !cursor && this.#more(command, statusFlags);
    this.#phase = "first";
    this.#resultSet = undefined;
    return { kind: "result_end", command, resultSet, statusFlags, warnings, ok, cursor, done: !more };
  }

  #fieldList(command: CommandState, payload: Buffer): MysqlResponseEvent {
    const kind = mysql.classifyResponse(payload, this.#capabilities, "rows");
    if (kind === "ok") {
      const ok = mysql.decodeOk(payload, this.#capabilities);
      return this.#end(command, ok.statusFlags, ok.warnings, ok);
    }
    if (kind === "eof") {
      const eof = mysql.decodeEof(payload);
      return this.#end(command, eof.statusFlags, eof.warnings, undefined);
    }
    const resultSet = this.#current();
    const column = this.#column(payload);
    resultSet.columns.push(column);
    resultSet.columnTypes.push(column.type);
    return { kind: "column", command, resultSet, column, index: resultSet.columns.length - 1, last: false, done: false };
  }

  #column(payload: Buffer): mysql.ColumnDefinition41 {
    if (payload[0] === H.ERR || (payload[0] === H.EOF && payload.length < 9)) throw unexpected("a column definition", payload[0]);
    return mysql.decodeColumnDefinition41(payload, { extendedMetadata: this.#extendedMetadata });
  }

  #eof(payload: Buffer, what: string): mysql.EofPacket {
    if (mysql.classifyResponse(payload, this.#capabilities, "rows") !== "eof") throw unexpected(what, payload[0]);
    const eof = mysql.decodeEof(payload);
    this.#statusFlags = eof.statusFlags;
    return eof;
  }

  #current(): ResultSetState {
    if (this.#resultSet === undefined) throw new WireError("unexpected_message", "server packet belongs to no result set");
    return this.#resultSet;
  }

  #prepared(): StatementState {
    if (this.#statement === undefined) throw new WireError("unexpected_message", "server packet belongs to no prepared statement");
    return this.#statement;
  }
}

function unexpected(what: string, header: number | undefined): WireError {
  return new WireError("unexpected_message", `expected ${what}, got a packet with header ${header === undefined ? "(empty)" : `0x${header.toString(16)}`}`);
}

/** Bytes of the int<lenenc> that starts `bytes` (a column count packet is exactly one). */
function lenencSize(bytes: Buffer): number {
  const first = bytes[0] ?? 0;
  if (first < 0xfb) return 1;
  if (first === 0xfc) return 3;
  if (first === 0xfd) return 4;
  if (first === 0xfe) return 9;
  return -1;
}

/** The offset just past the string<lenenc> (or the text row's NULL, 0xfb) at `offset`; -1 when it does not fit. */
function skipLenenc(bytes: Buffer, offset: number): number {
  const first = bytes[offset];
  if (first === undefined) return -1;
  let length: number;
  let prefix: number;
  if (first < 0xfb) {
    length = first;
    prefix = 1;
  } else if (first === 0xfb) {
    return offset + 1;
  } else if (first === 0xfc) {
    if (offset + 3 > bytes.length) return -1;
    length = bytes.readUInt16LE(offset + 1);
    prefix = 3;
  } else if (first === 0xfd) {
    if (offset + 4 > bytes.length) return -1;
    length = bytes.readUIntLE(offset + 1, 3);
    prefix = 4;
  } else if (first === 0xfe) {
    if (offset + 9 > bytes.length) return -1;
    const big = bytes.readBigUInt64LE(offset + 1);
    if (big > BigInt(bytes.length)) return -1;
    length = Number(big);
    prefix = 9;
  } else return -1;
  const end = offset + prefix + length;
  return end > bytes.length ? -1 : end;
}

/** A text row is exactly `count` string<lenenc> or NULL values; checked without allocating. */
function isTextRow(payload: Buffer, count: number): boolean {
  let offset = 0;
  for (let i = 0; i < count; i++) {
    offset = skipLenenc(payload, offset);
    if (offset < 0) return false;
  }
  return offset === payload.length;
}

/** A binary value's size by column type: its fixed width, -1 (date, datetime) or -2 (time) for a 1-byte length, -3 for a string<lenenc>. */
function binaryWidth(type: number): number {
  switch (type) {
    case T.MYSQL_TYPE_TINY:
      return 1;
    case T.MYSQL_TYPE_SHORT:
    case T.MYSQL_TYPE_YEAR:
      return 2;
    case T.MYSQL_TYPE_LONG:
    case T.MYSQL_TYPE_INT24:
    case T.MYSQL_TYPE_FLOAT:
      return 4;
    case T.MYSQL_TYPE_LONGLONG:
    case T.MYSQL_TYPE_DOUBLE:
      return 8;
    case T.MYSQL_TYPE_NULL:
      return 0;
    case T.MYSQL_TYPE_DATE:
    case T.MYSQL_TYPE_DATETIME:
    case T.MYSQL_TYPE_TIMESTAMP:
      return -1;
    case T.MYSQL_TYPE_TIME:
      return -2;
    default:
      return -3;
  }
}

/** A binary row: 0x00, the NULL bitmap (offset 2), then each non-NULL value as its type says; checked without allocating. */
function isBinaryRow(payload: Buffer, types: readonly number[]): boolean {
  if (payload[0] !== 0x00) return false;
  const bitmapBytes = (types.length + 7 + 2) >> 3;
  let offset = 1 + bitmapBytes;
  if (offset > payload.length) return false;
  for (let i = 0; i < types.length; i++) {
    const bit = i + 2;
    if (((payload[1 + (bit >> 3)] as number) & (1 << (bit & 7))) !== 0) continue;
    const width = binaryWidth(types[i] as number);
    if (width >= 0) offset += width;
    else if (width === -1 || width === -2) {
      const length = payload[offset];
      if (length === undefined) return false;
      if (width === -1 ? length !== 0 && length !== 4 && length !== 7 && length !== 11 : length !== 0 && length !== 8 && length !== 12) return false;
      offset += 1 + length;
    } else {
      // A binary value is never NULL by its prefix (0xfb): the bitmap says so.
      if (payload[offset] === 0xfb) return false;
      offset = skipLenenc(payload, offset);
      if (offset < 0) return false;
    }
    if (offset > payload.length) return false;
  }
  return offset === payload.length;
}
