import { mysql, mysqlCommands, WireError, type MysqlPacket } from "@airlock/wire";
import type { MysqlCommand, MysqlResponseEvent, MysqlResponseTracker, MysqlResultSet } from "../session/mysql-responses.js";
import type { Detectors } from "./detectors.js";
import { MaskError } from "./errors.js";
import { createMysqlValueMasker, isMysqlTextKind, mysqlValueKind, type MysqlRowFormat } from "./mysql-values.js";
import type { MaskEvents } from "./postgres-masker.js";
import type { MaskStyle } from "./styles.js";

/**
 * What the session decided for one output column of a result set:
 * - `{ style, keep?, label? }`: mask with that style (the column is or derives from a declared
 *   sensitive column); `label` names it in metrics, `schema.table.column` by default;
 * - `"uncertain"`: lineage could not tell: masked with `redact` (fail closed) and counted;
 * - `"detect"`: not sensitive: its text values go through the content detectors;
 * - `"clear"`: passed through untouched (an unmasked identity).
 */
export type MysqlColumnDecision = { readonly style: MaskStyle; readonly keep?: number; readonly label?: string } | "detect" | "uncertain" | "clear";

/** Options of {@link MysqlMasker}. */
export interface MysqlMaskerOptions {
  /**
   * Decides each column of each result set, once, when its definitions are complete.
   *
   * @param column - the column definition (schema, org_table, org_name, type...)
   * @param index - its position in the result set
   * @param resultIndex - the result's position among the command's results (OK packets count): the
   *   statement of a multi-statement string it answers
   * @param command - the command it answers
   */
  readonly columnPolicy: (column: mysql.ColumnDefinition41, index: number, resultIndex: number, command: MysqlCommand) => MysqlColumnDecision;
  /** The content detectors; without them `"detect"` passes values through. */
  readonly detectors?: Detectors | undefined;
  /** The pseudonym key; required when a decision uses the `pseudonym` style. */
  readonly key?: Uint8Array | undefined;
  /** Counters the session turns into metrics. */
  readonly events: MaskEvents;
  /**
   * Whether a command's statements read declared sensitive columns (from lineage): its error
   * message and the warnings it leaves are withheld. A command one of whose columns was masked or
   * uncertain counts as reading them whatever this says.
   */
  readonly readsSensitive?: (command: MysqlCommand) => boolean;
}

/** What replaces a withheld error or warning message. */
export const WITHHELD_MESSAGE = "the statement reads masked columns: the database's message is withheld";
const WITHHELD = Buffer.from(WITHHELD_MESSAGE, "utf8");

/** What the masker does to one column's values. */
type ColumnAction =
  | { readonly kind: "mask"; readonly mask: (value: Buffer) => Buffer | null; readonly label: string }
  | { readonly kind: "detect" }
  | { readonly kind: "withhold" };

/** A result set's actions by column; `passthrough` when none, so rows go out as they came. */
interface Plan {
  readonly passthrough: boolean;
  readonly actions: readonly (ColumnAction | undefined)[];
}

const DETECT: ColumnAction = { kind: "detect" };
const WITHHOLD: ColumnAction = { kind: "withhold" };

/**
 * Masks a MySQL session's results as they stream, one packet at a time, in constant memory, on top
 * of the session's {@link MysqlResponseTracker}: the tracker says which result set a packet belongs
 * to, the session's `columnPolicy` says what each column needs, and this rewrites the values of
 * text and binary rows so masked values stay valid for their column type (see
 * {@link createMysqlValueMasker}). Rows of a cursor (COM_STMT_FETCH) follow the decisions made
 * for the result set of the COM_STMT_EXECUTE that opened it.
 *
 * Error messages are scrubbed by the detectors, or withheld (code and SQLSTATE kept) when the
 * command reads sensitive columns. The Message column of SHOW WARNINGS and SHOW ERRORS is withheld
 * while the warnings may come from such a command: from one on, until a command that reads none
 * leaves warnings of its own (the server keeps the last statement's conditions across statements
 * that use no table, so a clean `SELECT 1` does not clear them).
 *
 * A packet nothing changes goes out as the very Buffer that came in (packet.bytes); a changed one
 * is re-encoded with its sequence id. When re-encoding changes how many physical packets a payload
 * of 16 MiB or more takes, the sequence ids of the rest of the response are shifted to match.
 */
export class MysqlMasker {
  readonly #tracker: MysqlResponseTracker;
  readonly #options: MysqlMaskerOptions;
  readonly #plans = new WeakMap<MysqlResultSet, Plan>();
  /** The result set and plan of the last row: rows come in runs. */
  #lastSet: MysqlResultSet | undefined;
  #lastPlan: Plan | undefined;
  /** Commands whose results had a masked or uncertain column. */
  readonly #touched = new WeakSet<MysqlCommand>();
  /** The server's diagnostics area may hold conditions of a command that read sensitive columns. */
  #diagnosticsSensitive = false;
  #command: MysqlCommand | undefined;
  #commandWarnings = 0;
  /** Extra physical packets (mod 256) that re-encoding added to the current response. */
  #shift = 0;

  constructor(tracker: MysqlResponseTracker, options: MysqlMaskerOptions) {
    if (typeof options.columnPolicy !== "function") throw new TypeError("options.columnPolicy: expected a function");
    this.#tracker = tracker;
    this.#options = options;
  }

  /**
   * Whether the server's diagnostics area may hold conditions of a command that read sensitive
   * columns (what SHOW WARNINGS then withholds): GET DIAGNOSTICS must not copy them into variables.
   */
  get diagnosticsSensitive(): boolean {
    return this.#diagnosticsSensitive;
  }

  /**
   * Steps the tracker with a server packet (do not also call the tracker's onServerPacket) and
   * returns the bytes the client gets for it.
   *
   * @throws WireError when the tracker cannot follow the packet (the session must end)
   */
  onServerPacket(packet: MysqlPacket): Buffer {
    const event = this.#tracker.onServerPacket(packet);
    if (event.command !== this.#command) {
      this.#command = event.command;
      this.#commandWarnings = 0;
    }
    const out = this.#rewrite(packet, event);
    if (event.done) this.#finish(event);
    return out;
  }

  #rewrite(packet: MysqlPacket, event: MysqlResponseEvent): Buffer {
    switch (event.kind) {
      case "row":
        return this.#row(packet, event.resultSet);
      case "column":
        if (event.last) this.#plan(event.resultSet);
        return this.#emit(packet, undefined);
      case "err":
        return this.#emit(packet, this.#err(event.err, event.command));
      case "ok":
        this.#commandWarnings += event.ok.warnings;
        return this.#emit(packet, undefined);
      case "result_end":
        this.#commandWarnings += event.warnings;
        return this.#emit(packet, undefined);
      case "local_infile":
        // The client answers with sequence ids counted from this packet's: they cannot be shifted.
        if (this.#shift !== 0) throw new WireError("unexpected_message", "a masked row changed the packet count before a LOCAL INFILE request");
        return packet.bytes;
      default:
        return this.#emit(packet, undefined);
    }
  }

  /** A command's response is complete: what it leaves in the diagnostics area. */
  #finish(event: MysqlResponseEvent): void {
    this.#shift = 0;
    const { command } = event;
    if (command.code === mysqlCommands.COM_RESET_CONNECTION && event.kind === "ok") this.#diagnosticsSensitive = false;
    else if (this.#sensitive(command)) this.#diagnosticsSensitive = true;
    else if (this.#commandWarnings > 0 || event.kind === "err") this.#diagnosticsSensitive = false;
  }

  #sensitive(command: MysqlCommand): boolean {
    return this.#touched.has(command) || this.#options.readsSensitive?.(command) === true;
  }

  /** The packet as it goes out: its own bytes, or `payload` re-encoded; both renumbered after a shift. */
  #emit(packet: MysqlPacket, payload: Buffer | undefined): Buffer {
    if (payload === undefined) {
      return this.#shift === 0 ? packet.bytes : mysql.encodePacket((packet.sequenceId + this.#shift) & 0xff, packet.payload);
    }
    const out = mysql.encodePacket((packet.sequenceId + this.#shift) & 0xff, payload);
    this.#shift = (this.#shift + physicalPackets(payload.length) - physicalPackets(packet.payload.length)) & 0xff;
    return out;
  }

  #plan(resultSet: MysqlResultSet): Plan {
    if (resultSet === this.#lastSet && this.#lastPlan !== undefined) return this.#lastPlan;
    const origin = resultSet.cursorOf ?? resultSet;
    let plan = this.#plans.get(origin);
    if (plan === undefined) {
      plan = this.#planFor(origin);
      this.#plans.set(origin, plan);
    }
    this.#lastSet = resultSet;
    this.#lastPlan = plan;
    return plan;
  }

  #planFor(resultSet: MysqlResultSet): Plan {
    const { columnPolicy, detectors, key, events } = this.#options;
    const { columns, command } = resultSet;
    const warnings = isWarningsShape(columns);
    const format: MysqlRowFormat = resultSet.format;
    const actions = columns.map((column, index): ColumnAction | undefined => {
      const decision = columnPolicy(column, index, resultSet.index, command);
      if (decision === "clear") return undefined;
      if (decision === "detect") {
        if (warnings && index === 2) return this.#diagnosticsSensitive || this.#sensitive(command) ? WITHHOLD : detectors === undefined ? undefined : DETECT;
        return detectors !== undefined && isMysqlTextKind(mysqlValueKind(column)) ? DETECT : undefined;
      }
      this.#touched.add(command);
      if (decision === "uncertain") {
        events.uncertain();
        return { kind: "mask", mask: createMysqlValueMasker({ column, format, style: "redact" }), label: "(uncertain)" };
      }
      const label = decision.label ?? (column.orgTable === "" ? "(expression)" : `${column.schema}.${column.orgTable}.${column.orgName}`);
      const options = { column, format, style: decision.style, ...(decision.keep === undefined ? {} : { keep: decision.keep }), ...(key === undefined ? {} : { key }) };
      return { kind: "mask", mask: createMysqlValueMasker(options), label };
    });
    return { passthrough: actions.every((action) => action === undefined), actions };
  }

  #row(packet: MysqlPacket, resultSet: MysqlResultSet): Buffer {
    const plan = this.#plan(resultSet);
    if (plan.passthrough) return this.#emit(packet, undefined);
    const binary = resultSet.format === "binary";
    const values = binary ? mysql.decodeBinaryRow(packet.payload, resultSet.columnTypes) : mysql.decodeTextRow(packet.payload, resultSet.columnCount);
    let changed = false;
    for (let index = 0; index < values.length; index++) {
      const action = plan.actions[index];
      const value = values[index];
      if (action === undefined || value === undefined || value === null) continue;
      if (action.kind === "mask") {
        values[index] = maskOrNull(action.mask, value);
        this.#options.events.masked(action.label);
        changed = true;
      } else if (action.kind === "withhold") {
        values[index] = WITHHELD;
        changed = true;
      } else {
        const scanned = this.#detect(value.toString("utf8"));
        if (scanned === undefined) continue;
        values[index] = Buffer.from(scanned, "utf8");
        changed = true;
      }
    }
    if (!changed) return this.#emit(packet, undefined);
    return this.#emit(packet, binary ? mysql.encodeBinaryRow(resultSet.columnTypes, values) : mysql.encodeTextRow(values));
  }

  /** An ERR's message withheld or scrubbed; undefined when it stays as it is. */
  #err(err: mysql.ErrPacket, command: MysqlCommand): Buffer | undefined {
    let message: string | undefined;
    if (this.#sensitive(command)) message = WITHHELD_MESSAGE;
    else message = this.#detect(err.message);
    if (message === undefined) return undefined;
    return mysql.encodeErr({ code: err.code, ...(err.sqlState === undefined ? {} : { sqlState: err.sqlState }), message });
  }

  /** The text with every detector hit replaced; undefined when nothing was found. */
  #detect(text: string): string | undefined {
    const detectors = this.#options.detectors;
    if (detectors === undefined) return undefined;
    const result = detectors.redact(text, (hit) => `[masked:${hit.detector}]`);
    if (result.hits.length === 0) return undefined;
    for (const hit of result.hits) this.#options.events.detected(hit.detector);
    return result.text;
  }
}

/** A value that cannot be read as its type gets NULL, valid for every type: never the value itself. */
function maskOrNull(mask: (value: Buffer) => Buffer | null, value: Buffer): Buffer | null {
  try {
    return mask(value);
  } catch (error) {
    if (error instanceof MaskError) return null;
    throw error;
  }
}

/** Physical packets a payload of this length takes (a multiple of 0xffffff ends with an empty one). */
function physicalPackets(length: number): number {
  return Math.floor(length / 0xffffff) + 1;
}

/** SHOW WARNINGS and SHOW ERRORS: Level, Code, Message, from no table. */
function isWarningsShape(columns: readonly mysql.ColumnDefinition41[]): boolean {
  if (columns.length !== 3) return false;
  const names = ["Level", "Code", "Message"];
  return columns.every((column, index) => column.name === names[index] && column.orgTable === "");
}
