import { mysql, mysqlColumnFlags, mysqlColumnTypes, mysqlCommands, type MysqlPacket } from "@airlock/wire";
import { mysqlValueKind, type MysqlValueKind } from "../mask/mysql-values.js";
import type { MysqlPreparedStatement, MysqlResponseEvent, MysqlResponseTracker } from "../session/mysql-responses.js";
import type { SessionRecording } from "./recorder.js";

const T = mysqlColumnTypes;
const MAX_VALUE = 200;

/** How a value reads in the recording: text as text (cut when long), bytes as \x hex. */
function show(text: string): string {
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE)}…` : text;
}

function showBytes(value: Buffer): string {
  return show(`\\x${value.subarray(0, MAX_VALUE / 2).toString("hex")}`);
}

/** Kinds of values that are bytes, not text: shown as hex. */
const BYTE_KINDS: ReadonlySet<MysqlValueKind> = new Set(["bytes", "fixed_bytes", "bit", "other"]);

/** A text-protocol value: UTF-8, or hex for binary strings, BIT and geometry. */
function textValue(value: Buffer | null, column: mysql.ColumnDefinition41 | undefined): string | null {
  if (value === null) return null;
  if (column !== undefined && BYTE_KINDS.has(mysqlValueKind(column))) return showBytes(value);
  return show(value.toString("utf8", 0, Math.min(value.length, MAX_VALUE * 4)));
}

const pad = (n: number, width = 2): string => String(n).padStart(width, "0");

/** Fractional seconds as the text protocol shows them: the column's decimals (1 to 6) of the microseconds. */
function fraction(microseconds: number, decimals: number): string {
  return decimals >= 1 && decimals <= 6 ? `.${pad(microseconds, 6).slice(0, decimals)}` : "";
}

/** A binary-protocol value as the text protocol would show it. */
function binaryValue(value: Buffer | null, column: mysql.ColumnDefinition41 | undefined): string | null {
  if (value === null) return null;
  const type = column?.type ?? T.MYSQL_TYPE_BLOB;
  const unsigned = ((column?.flags ?? 0) & mysqlColumnFlags.UNSIGNED_FLAG) !== 0;
  switch (type) {
    case T.MYSQL_TYPE_TINY:
    case T.MYSQL_TYPE_SHORT:
    case T.MYSQL_TYPE_LONG:
    case T.MYSQL_TYPE_INT24:
      return String(unsigned ? value.readUIntLE(0, value.length) : value.readIntLE(0, value.length));
    case T.MYSQL_TYPE_LONGLONG:
      return (unsigned ? value.readBigUInt64LE() : value.readBigInt64LE()).toString();
    case T.MYSQL_TYPE_YEAR:
      return String(value.readUInt16LE());
    case T.MYSQL_TYPE_FLOAT:
      return String(value.readFloatLE());
    case T.MYSQL_TYPE_DOUBLE:
      return String(value.readDoubleLE());
    case T.MYSQL_TYPE_DATE:
    case T.MYSQL_TYPE_DATETIME:
    case T.MYSQL_TYPE_TIMESTAMP: {
      if (value.length === 0) return type === T.MYSQL_TYPE_DATE ? "0000-00-00" : "0000-00-00 00:00:00";
      const date = `${pad(value.readUInt16LE(0), 4)}-${pad(value[2] ?? 0)}-${pad(value[3] ?? 0)}`;
      if (type === T.MYSQL_TYPE_DATE) return date;
      const time = value.length >= 7 ? `${pad(value[4] ?? 0)}:${pad(value[5] ?? 0)}:${pad(value[6] ?? 0)}` : "00:00:00";
      return `${date} ${time}${fraction(value.length === 11 ? value.readUInt32LE(7) : 0, column?.decimals ?? 0)}`;
    }
    case T.MYSQL_TYPE_TIME: {
      const decimals = column?.decimals ?? 0;
      if (value.length === 0) return `00:00:00${fraction(0, decimals)}`;
      const hours = value.readUInt32LE(1) * 24 + (value[5] ?? 0);
      const text = `${value[0] === 1 ? "-" : ""}${pad(hours)}:${pad(value[6] ?? 0)}:${pad(value[7] ?? 0)}`;
      return `${text}${fraction(value.length === 12 ? value.readUInt32LE(8) : 0, decimals)}`;
    }
    default:
      return textValue(value, column);
  }
}

/** Wire bytes back to the payload: headers removed, physical packets joined. */
function payloadOf(bytes: Buffer): Buffer {
  const first = bytes.readUIntLE(0, 3);
  if (first + 4 === bytes.length) return bytes.subarray(4);
  const parts: Buffer[] = [];
  for (let offset = 0; offset + 4 <= bytes.length; ) {
    const length = bytes.readUIntLE(offset, 3);
    parts.push(bytes.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return Buffer.concat(parts);
}

/** A JSON-safe count: a number, or its decimal text above 2^53. */
function count(value: number | bigint): number | string {
  return typeof value === "bigint" ? value.toString() : value;
}

/**
 * Turns what a MySQL server sends back into result events of the recording, from the session's
 * {@link MysqlResponseTracker}: columns, the first rows as the client got them (after masking),
 * the row count, the OK's affected rows, last insert id, warnings and info, or the error's code,
 * SQLSTATE and (scrubbed) message, bytes and time. Only the first rows of a result are decoded;
 * the rest are counted, so the cost per row stays a comparison.
 *
 * Call {@link onCommand} after the tracker's, and {@link onServerPacket} after the tracker (or the
 * masker that steps it) read the packet, with the bytes the client got.
 */
export class MysqlResultRecorder {
  readonly #recording: SessionRecording;
  readonly #tracker: MysqlResponseTracker;
  readonly #sampleRows: number;
  #columns: mysql.ColumnDefinition41[] | undefined;
  #binary = false;
  #rows: (string | null)[][] = [];
  #rowCount = 0;
  #bytes = 0;
  #started = performance.now();
  /** The statement a COM_STMT_PREPARE's answer describes, until the answer ends. */
  #preparing: MysqlPreparedStatement | undefined;

  constructor(recording: SessionRecording, tracker: MysqlResponseTracker, sampleRows: number) {
    if (!Number.isSafeInteger(sampleRows) || sampleRows < 0) throw new TypeError("sampleRows: expected a non-negative integer");
    this.#recording = recording;
    this.#tracker = tracker;
    this.#sampleRows = sampleRows;
  }

  /** A command went to the server: its result's clock starts, unless an earlier command's answer is still being recorded. */
  onCommand(_payload: Buffer): void {
    if (this.#bytes === 0) this.#started = performance.now();
  }

  /**
   * A server packet the tracker just read, and what the client got for it (the masker's output);
   * `sent` undefined means the packet went out as it came.
   */
  onServerPacket(packet: MysqlPacket, sent: Buffer | undefined): void {
    const event = this.#tracker.lastEvent;
    if (event === undefined) return;
    this.observe(event, sent ?? packet.bytes);
  }

  /** The same, given the tracker's event explicitly. */
  observe(event: MysqlResponseEvent, sent: Buffer): void {
    this.#bytes += sent.length;
    switch (event.kind) {
      case "result_set":
        this.#columns = [];
        this.#binary = event.resultSet.format === "binary";
        return;
      case "column":
        if (event.index === 0) {
          this.#columns = [];
          this.#binary = event.resultSet.format === "binary";
        }
        this.#columns?.push(event.column);
        return;
      case "row":
        if (this.#columns === undefined) {
          // The rows of COM_STMT_FETCH: the columns are the cursor's.
          this.#columns = [...event.resultSet.columns];
          this.#binary = true;
        }
        this.#rowCount++;
        if (this.#rows.length < this.#sampleRows) this.#rows.push(this.#sample(payloadOf(sent), event.resultSet.columnTypes));
        return;
      case "result_end": {
        this.#columns ??= [...event.resultSet.columns];
        const fetch = event.command.code === mysqlCommands.COM_STMT_FETCH;
        const tag = event.cursor ? "cursor opened" : event.resultSet.fieldList ? "field list" : fetch ? "fetch" : "";
        this.#flush({ ...(tag === "" ? {} : { tag }), ...(event.warnings > 0 ? { warnings: event.warnings } : {}) });
        return;
      }
      case "ok": {
        const { ok } = event;
        this.#flush({
          tag: "OK",
          affectedRows: count(ok.affectedRows),
          ...(ok.lastInsertId === 0 ? {} : { lastInsertId: count(ok.lastInsertId) }),
          ...(ok.warnings > 0 ? { warnings: ok.warnings } : {}),
          ...(ok.info === "" ? {} : { info: ok.info }),
        });
        return;
      }
      case "eof":
        if (!event.done) return;
        // Without CLIENT_DEPRECATE_EOF a PREPARE's answer ends with the EOF after its definitions.
        if (event.command.code === mysqlCommands.COM_STMT_PREPARE && this.#preparing !== undefined) this.#flushPrepared(this.#preparing);
        else this.#flush({ tag: "EOF" });
        return;
      case "err": {
        const err = mysql.decodeErr(payloadOf(sent));
        this.#flush({ error: { code: String(err.code), ...(err.sqlState === undefined ? {} : { sqlState: err.sqlState }), message: err.message } });
        return;
      }
      case "prepare_ok":
      case "param":
      case "prepare_column":
        this.#preparing = event.statement;
        if (event.done) this.#flushPrepared(event.statement);
        return;
      case "statistics":
        this.#columns = undefined;
        this.#rows = [[show(event.text)]];
        this.#flush({ tag: "statistics" });
        return;
      case "local_infile":
        this.#recording.note({ type: "notice", code: "local_infile", message: show(event.filename) });
        return;
      case "progress":
        return;
    }
  }

  /**
   * An answer the gateway gave itself instead of the server's (a statement denied, a review
   * rejected, a command refused): the ERR the client got, as a result.
   */
  refused(error: mysql.ErrPacket, bytes: number): void {
    this.#reset();
    this.#bytes = bytes;
    this.#flush({ error: { code: String(error.code), ...(error.sqlState === undefined ? {} : { sqlState: error.sqlState }), message: error.message } });
  }

  #flushPrepared(statement: MysqlPreparedStatement): void {
    this.#preparing = undefined;
    this.#columns = [...statement.columns];
    this.#flush({ tag: `prepared statement ${statement.statementId}`, params: statement.numParams });
  }

  #sample(payload: Buffer, types: readonly number[]): (string | null)[] {
    const columns = this.#columns ?? [];
    if (this.#binary) return mysql.decodeBinaryRow(payload, types).map((value, index) => binaryValue(value, columns[index]));
    return mysql.decodeTextRow(payload, columns.length).map((value, index) => textValue(value, columns[index]));
  }

  #flush(end: Readonly<Record<string, unknown>>): void {
    this.#recording.note({
      type: "result",
      ...(this.#columns === undefined ? {} : { columns: this.#columns.map((column) => column.name) }),
      rows: this.#rows,
      rowCount: this.#rowCount,
      ...end,
      bytes: this.#bytes,
      ms: Math.round((performance.now() - this.#started) * 100) / 100,
    });
    this.#reset();
  }

  #reset(): void {
    this.#columns = undefined;
    this.#binary = false;
    this.#rows = [];
    this.#rowCount = 0;
    this.#bytes = 0;
    this.#started = performance.now();
  }
}
