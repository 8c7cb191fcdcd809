import { createMysqlFramer, mysql, mysqlColumnFlags as F, mysqlColumnTypes as T, type MysqlPacket } from "@airlock/wire";
import { expect } from "vitest";
import type { Detectors } from "../../../src/mask/detectors.js";
import { MysqlMasker, type MysqlColumnDecision } from "../../../src/mask/mysql-masker.js";
import { mysqlValueKind } from "../../../src/mask/mysql-values.js";
import type { MaskStyle } from "../../../src/mask/styles.js";
import { MysqlResponseTracker, type MysqlCommand, type MysqlResponseEvent } from "../../../src/session/mysql-responses.js";
import { CANARIES, type BinaryParameter, type CapturedExchange } from "../../support/mysql-capture.js";

export const KEY = Buffer.alloc(32, 9);

/** A column decision by column and result index. */
export type Policy = (column: mysql.ColumnDefinition41, index: number, resultIndex: number) => MysqlColumnDecision;

/** One command, its captured answer, and how the session would judge it. */
export interface Step {
  readonly exchange: CapturedExchange;
  readonly policy?: Policy;
  /** The session's lineage says the statement reads sensitive columns. */
  readonly sensitive?: boolean;
}

/** What went through the masker for one server packet. */
export interface Output {
  readonly packet: MysqlPacket;
  readonly out: Buffer;
  readonly event: MysqlResponseEvent;
}

/** Masking events, counted. */
export interface Counts {
  masked: Map<string, number>;
  detected: Map<string, number>;
  uncertain: number;
  policyCalls: number;
}

export interface MaskRun {
  readonly outputs: Output[][];
  readonly counts: Counts;
  readonly tracker: MysqlResponseTracker;
}

/** Masks captured steps in order with a fresh tracker and masker; returns what the client got per step. */
export function maskSteps(steps: readonly Step[], options: { capabilities: number; mariadbCapabilities?: number; detectors?: Detectors }): MaskRun {
  const tracker = new MysqlResponseTracker({ capabilities: options.capabilities, ...(options.mariadbCapabilities === undefined ? {} : { mariadbCapabilities: options.mariadbCapabilities }) });
  const byCommand = new Map<number, Step>();
  const counts: Counts = { masked: new Map(), detected: new Map(), uncertain: 0, policyCalls: 0 };
  const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
  const masker = new MysqlMasker(tracker, {
    columnPolicy: (column, index, resultIndex, command: MysqlCommand) => {
      counts.policyCalls++;
      const policy = byCommand.get(command.id)?.policy;
      return policy === undefined ? "clear" : policy(column, index, resultIndex);
    },
    ...(options.detectors === undefined ? {} : { detectors: options.detectors }),
    key: KEY,
    events: {
      masked: (label) => bump(counts.masked, label),
      detected: (detector) => bump(counts.detected, detector),
      uncertain: () => counts.uncertain++,
    },
    readsSensitive: (command) => byCommand.get(command.id)?.sensitive === true,
  });
  const outputs = steps.map((step) => {
    const command = tracker.onCommand(step.exchange.command);
    byCommand.set(command.id, step);
    return step.exchange.packets.map((packet) => {
      const out = masker.onServerPacket(packet);
      const event = tracker.lastEvent;
      if (event === undefined) throw new Error("no event");
      return { packet, out, event };
    });
  });
  return { outputs, counts, tracker };
}

/** Masks every column but `id` (and those named in `clear`) with a style. */
export function maskAll(style: MaskStyle, clear: readonly string[] = ["id"]): Policy {
  return (column) => (clear.includes(column.name) ? "clear" : { style });
}

/** A decoded result set of the masked stream. */
export interface DecodedResult {
  readonly columns: mysql.ColumnDefinition41[];
  readonly format: "text" | "binary";
  readonly rows: mysql.MysqlRow[];
}

/**
 * Reads what the client got for one command as a client would: frames the bytes again (sequence
 * ids checked by a fresh tracker), then decodes every row with the codec.
 */
export function clientView(command: Buffer, outputs: readonly Output[], capabilities: number, mariadbCapabilities = 0): ClientView {
  return clientViews([{ command, outputs }], capabilities, mariadbCapabilities)[0] as ClientView;
}

/** What a client read for one command. */
export interface ClientView {
  readonly results: DecodedResult[];
  readonly events: MysqlResponseEvent[];
}

/** {@link clientView} for commands in order on one connection (cursors opened by one are read by the next). */
export function clientViews(commands: readonly { command: Buffer; outputs: readonly Output[] }[], capabilities: number, mariadbCapabilities = 0): ClientView[] {
  const tracker = new MysqlResponseTracker({ capabilities, mariadbCapabilities });
  return commands.map(({ command, outputs }) => {
    const framer = createMysqlFramer({ maxMessageBytes: 1 << 26 });
    const packets = framer.push(Buffer.concat(outputs.map((output) => output.out)));
    expect(framer.buffered).toBe(0);
    tracker.onCommand(command);
    const results: DecodedResult[] = [];
    const events: MysqlResponseEvent[] = [];
    for (const packet of packets) {
      const event = tracker.onServerPacket(packet);
      events.push(event);
      if (event.kind === "row") {
        const { resultSet } = event;
        let current = results.at(-1);
        if (current === undefined || current.columns !== resultSet.columns) {
          current = { columns: resultSet.columns as mysql.ColumnDefinition41[], format: resultSet.format, rows: [] };
          results.push(current);
        }
        current.rows.push(resultSet.format === "binary" ? mysql.decodeBinaryRow(packet.payload, resultSet.columnTypes) : mysql.decodeTextRow(packet.payload, resultSet.columnCount));
      }
    }
    expect(tracker.idle).toBe(true);
    return { results, events };
  });
}

function integerBits(type: number): number {
  return type === T.MYSQL_TYPE_TINY ? 8 : type === T.MYSQL_TYPE_SHORT ? 16 : type === T.MYSQL_TYPE_INT24 ? 24 : type === T.MYSQL_TYPE_LONG ? 32 : 64;
}

/** Checks that a value read from the masked stream is valid for its column type, in its protocol. */
export function expectValid(column: mysql.ColumnDefinition41, value: Buffer | null, format: "text" | "binary"): void {
  const kind = mysqlValueKind(column);
  const where = `${column.name} (${kind}, ${format})`;
  if (value === null) return;
  const text = value.toString("latin1");
  const unsigned = (column.flags & F.UNSIGNED_FLAG) !== 0;
  switch (kind) {
    case "integer": {
      const bits = integerBits(column.type);
      const n = format === "text" ? BigInt(text) : readInteger(value, column.type, unsigned);
      if (format === "text") expect(text, where).toMatch(/^-?\d+$/);
      const [min, max] = unsigned ? [0n, 2n ** BigInt(bits) - 1n] : [-(2n ** BigInt(bits - 1)), 2n ** BigInt(bits - 1) - 1n];
      expect(n >= min && n <= max, where).toBe(true);
      return;
    }
    case "decimal":
      expect(text, where).toMatch(column.decimals > 0 ? new RegExp(`^-?\\d+\\.\\d{${column.decimals}}$`) : /^-?\d+$/);
      return;
    case "float":
    case "double":
      if (format === "text") expect(Number.isFinite(Number(text)), where).toBe(true);
      else expect(value.length, where).toBe(kind === "float" ? 4 : 8);
      return;
    case "year":
      if (format === "text") expect(Number(text) >= 1901 && Number(text) <= 2155, where).toBe(true);
      else expect(value.readUInt16LE() >= 1901 && value.readUInt16LE() <= 2155, where).toBe(true);
      return;
    case "date":
    case "datetime":
      if (format === "text") {
        const fraction = column.decimals > 0 && column.decimals <= 6 ? `\\.\\d{${column.decimals}}` : "";
        expect(text, where).toMatch(kind === "date" ? /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/ : new RegExp(`^\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01]) ([01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d${fraction}$`));
      } else {
        expect([4, 7, 11], where).toContain(value.length);
        expect((value[2] ?? 0) >= 1 && (value[2] ?? 0) <= 12 && (value[3] ?? 0) >= 1 && (value[3] ?? 0) <= 31, where).toBe(true);
      }
      return;
    case "time":
      if (format === "text") expect(text, where).toMatch(new RegExp(`^-?\\d{2,3}:[0-5]\\d:[0-5]\\d${column.decimals > 0 && column.decimals <= 6 ? `\\.\\d{${column.decimals}}` : ""}$`));
      else expect([0, 8, 12], where).toContain(value.length);
      return;
    case "text": {
      const decoded = value.toString("utf8");
      expect(Buffer.from(decoded, "utf8").equals(value), `${where} is UTF-8`).toBe(true);
      expect(Array.from(decoded).length, where).toBeLessThanOrEqual(Math.floor(column.columnLength / 4));
      return;
    }
    case "json":
      expect(() => JSON.parse(value.toString("utf8")), where).not.toThrow();
      return;
    case "enum":
    case "set":
      expect(value.length, where).toBe(0);
      return;
    case "bytes":
      expect(value.length, where).toBeLessThanOrEqual(column.columnLength);
      return;
    case "fixed_bytes":
      expect(value.length, where).toBe(column.columnLength);
      return;
    case "bit":
      expect(value.length, where).toBe(Math.ceil(column.columnLength / 8));
      expect(value.every((byte) => byte === 0), where).toBe(true);
      return;
    default:
      throw new Error(`${where}: a masked ${kind} value must be NULL`);
  }
}

function readInteger(value: Buffer, type: number, unsigned: boolean): bigint {
  if (type === T.MYSQL_TYPE_LONGLONG) return unsigned ? value.readBigUInt64LE() : value.readBigInt64LE();
  return BigInt(unsigned ? value.readUIntLE(0, value.length) : value.readIntLE(0, value.length));
}

function le8(value: bigint, unsigned = false): Buffer {
  const out = Buffer.alloc(8);
  if (unsigned) out.writeBigUInt64LE(value);
  else out.writeBigInt64LE(value);
  return out;
}

/** Every form a canary could leak in: itself, reversed, base64, hex, and numbers' binary forms. */
function canaryForms(): [string, Buffer][] {
  const strings = [CANARIES.varchar, CANARIES.text, CANARIES.char, CANARIES.latin1, CANARIES.binary, CANARIES.varbinary, CANARIES.blob, CANARIES.json, CANARIES.enum, CANARIES.date, CANARIES.datetime, CANARIES.time, CANARIES.decimal, "9876543"];
  const forms: [string, Buffer][] = [];
  for (const value of strings) {
    const bytes = Buffer.from(value, "utf8");
    forms.push([value, bytes], [`reversed ${value}`, Buffer.from([...value].reverse().join(""), "utf8")], [`base64 ${value}`, Buffer.from(bytes.toString("base64").replace(/=+$/, ""))]);
    forms.push([`hex ${value}`, Buffer.from(bytes.toString("hex"))], [`HEX ${value}`, Buffer.from(bytes.toString("hex").toUpperCase())]);
  }
  const int = Buffer.alloc(4);
  int.writeInt32LE(CANARIES.int);
  const double = Buffer.alloc(8);
  double.writeDoubleLE(CANARIES.double);
  const x = Buffer.alloc(8);
  x.writeDoubleLE(12.5);
  const y = Buffer.alloc(8);
  y.writeDoubleLE(48.25);
  forms.push(
    ["int", Buffer.from(String(CANARIES.int))],
    ["int LE", int],
    ["big", Buffer.from(CANARIES.big.toString())],
    ["big LE", le8(CANARIES.big)],
    ["big unsigned", Buffer.from(CANARIES.bigUnsigned.toString())],
    ["big unsigned LE", le8(CANARIES.bigUnsigned, true)],
    ["double", Buffer.from(String(CANARIES.double))],
    ["double LE", double],
    ["date struct", Buffer.from([0xc3, 0x07, 6, 5])],
    ["geometry x", x],
    ["geometry y", y],
  );
  return forms;
}

/** No canary of `types` row 1 in any form in these bytes. */
export function expectNoCanaries(bytes: Buffer, what: string): void {
  for (const [name, form] of canaryForms()) expect(bytes.includes(form), `${what}: ${name}`).toBe(false);
}

/** The canaries are there before masking: the check above means something. */
export function expectCanaries(bytes: Buffer): void {
  for (const value of [CANARIES.varchar, CANARIES.blob, CANARIES.json]) expect(bytes.includes(Buffer.from(value))).toBe(true);
}

/** A binary parameter carrying a binary-row value into a column of this definition. */
export function parameterFor(column: mysql.ColumnDefinition41, value: Buffer | null): BinaryParameter {
  const unsigned = (column.flags & F.UNSIGNED_FLAG) !== 0;
  const kind = mysqlValueKind(column);
  let type: number;
  switch (column.type) {
    case T.MYSQL_TYPE_TINY:
    case T.MYSQL_TYPE_SHORT:
    case T.MYSQL_TYPE_LONG:
    case T.MYSQL_TYPE_LONGLONG:
    case T.MYSQL_TYPE_FLOAT:
    case T.MYSQL_TYPE_DOUBLE:
    case T.MYSQL_TYPE_DATE:
    case T.MYSQL_TYPE_DATETIME:
    case T.MYSQL_TYPE_TIMESTAMP:
    case T.MYSQL_TYPE_TIME:
      type = column.type;
      break;
    case T.MYSQL_TYPE_INT24:
      type = T.MYSQL_TYPE_LONG;
      break;
    case T.MYSQL_TYPE_YEAR:
      type = T.MYSQL_TYPE_SHORT;
      break;
    default:
      type = kind === "bytes" || kind === "fixed_bytes" || kind === "bit" || kind === "other" ? T.MYSQL_TYPE_BLOB : T.MYSQL_TYPE_VAR_STRING;
  }
  return { type, unsigned, value };
}

/** A SQL literal of a text-row value for a column of this definition. */
export function literalFor(column: mysql.ColumnDefinition41, value: Buffer | null): string {
  if (value === null) return "NULL";
  const kind = mysqlValueKind(column);
  if (kind === "integer" || kind === "decimal" || kind === "float" || kind === "double" || kind === "year") return value.toString("latin1");
  if (kind === "bytes" || kind === "fixed_bytes" || kind === "bit" || kind === "other") return value.length === 0 ? "''" : `X'${value.toString("hex")}'`;
  return `'${value.toString("utf8").replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}
