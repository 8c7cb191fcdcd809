import { backend, frontend, pg, WireError, type PgField, type PgMessage } from "@airlock/wire";
import type { MaskCatalog, SensitiveColumn } from "./catalog.js";
import { analyzeExposure, type StatementExposure } from "./lineage/index.js";
import { compilePgMask, isPgTextType, maskPgTextPartialInPlace, type PgColumnMask } from "./postgres-values.js";
import { DEFAULT_PARTIAL_KEEP } from "./styles.js";
import type { Detectors } from "./values.js";

/** How one output column is masked. */
interface ColumnMask {
  readonly style: SensitiveColumn["style"];
  readonly keep?: number;
  /** schema.table.column, or `(expression)` when lineage put it there. */
  readonly label: string;
}

/**
 * What a DataRow's value in one column goes through, decided once per result: masked (with the
 * column's options checked once, and the in-place byte path when the style and type allow it), or
 * scanned by the content detectors.
 */
type ColumnStep =
  | {
      readonly kind: "mask";
      readonly label: string;
      readonly mask: PgColumnMask;
      /** Set for `partial` on text types: masks ASCII values in place (postgres-values.ts). */
      readonly inPlace: { readonly typeOid: number; readonly typeModifier: number; readonly keep: number } | undefined;
    }
  | { readonly kind: "scan" };

/** The per-row work of a result, compiled from its plan and fields at its first DataRow. */
interface RowPlan {
  /** By column; undefined passes the value as it is. */
  readonly steps: readonly (ColumnStep | undefined)[];
  /** The step of the columns past the described ones. */
  readonly rest: ColumnStep | undefined;
}

/** A DataRow that goes out as it came (no result plan says otherwise). */
const PASS = "pass";
/** A DataRow whose every value becomes NULL (no RowDescription told the columns). */
const NULL_ROW = "null-row";

/** What the database is expected to answer next, in order. */
type Expected =
  | { readonly kind: "statement"; readonly exposure: StatementExposure }
  | { readonly kind: "parse" | "bind" | "close" | "sync" }
  // Statements and portals as they were when the message was sent: a pipelined Parse or Bind
  // reusing the name (the unnamed ones, above all) must not change what earlier answers belong to.
  | { readonly kind: "describe_statement"; readonly statement: StatementState | undefined }
  | { readonly kind: "describe_portal"; readonly portal: PortalState | undefined }
  | { readonly kind: "execute"; readonly portal: PortalState | undefined };

/** A prepared statement as the masker knows it. */
interface StatementState {
  exposure: StatementExposure;
  fields?: PgField[];
}

/** A portal as the masker knows it, with the statement it was bound from. */
interface PortalState {
  exposure: StatementExposure;
  statement: StatementState | undefined;
  fields?: PgField[];
  plan?: (ColumnMask | undefined)[];
  resultFormats: readonly number[];
}

/** Counters the session turns into metrics. */
export interface MaskEvents {
  masked(label: string): void;
  detected(detector: string): void;
  uncertain(): void;
}

/** Options of {@link PostgresMasker}. */
export interface PostgresMaskerOptions {
  readonly catalog: MaskCatalog;
  readonly detectors: Detectors | undefined;
  readonly key: Buffer | undefined;
  readonly events: MaskEvents;
  /** Exposure of SQL text (cached by the caller). */
  readonly exposureOf: (sql: string) => readonly StatementExposure[] | undefined;
}

const UNCERTAIN: StatementExposure = { exposure: "uncertain", outputs: [], inference: [], copiesSensitive: false, reasons: ["not analysed"] };
const NONE: StatementExposure = { exposure: "none", outputs: [], inference: [], copiesSensitive: false, reasons: [] };
/** Types whose text is scanned by the content detectors. */
const TEXT_TYPES = new Set([25, 1043, 1042, 19, 114, 3802, 142, 705, 0]);
const WITHHELD = "the statement reads masked columns: the database's message is withheld";

/**
 * Masks a PostgreSQL session's results as they stream, one message at a time, in constant memory.
 * It follows the protocol on both sides to know which statement each result belongs to: a simple
 * Query's statements in order, and the extended protocol's statements, portals, Describe and
 * Execute, skipping to Sync after an error as the server does. An output column is masked when it
 * is a declared sensitive column (RowDescription's table OID and column number, checked against
 * the catalog for every row description, whatever lineage says), or an expression lineage says is
 * derived from one, or any expression of a statement whose lineage is uncertain (fail closed).
 * Every text value is also scanned by the content detectors; errors and notices of statements that
 * read masked columns are withheld.
 */
export class PostgresMasker {
  #options: PostgresMaskerOptions;
  readonly #expected: Expected[] = [];
  readonly #statements = new Map<string, StatementState>();
  readonly #portals = new Map<string, PortalState>();
  /** Masks of the result being streamed (simple Query), by column. */
  #plan: (ColumnMask | undefined)[] | undefined;
  #fields: PgField[] | undefined;
  #copyMasked = false;
  #copyBinary = false;
  /** The last compiled row plan and the plan and fields it was compiled from. */
  #rowPlanKey: { plan: (ColumnMask | undefined)[] | undefined; fields: PgField[] | undefined } | undefined;
  #rowPlan: RowPlan | undefined;
  /** Where each value of the row being masked starts (after its length), reused from row to row. */
  #valueAt = new Int32Array(16);
  /** And its length (-1 for NULL). */
  #valueLength = new Int32Array(16);

  constructor(options: PostgresMaskerOptions) {
    this.#options = options;
  }

  /** Uses a fresher catalog from the next result on (after a schema change). */
  setCatalog(catalog: MaskCatalog): void {
    this.#options = { ...this.#options, catalog };
  }

  /**
   * Follows what the client sends (after the policy gate: what the database will answer). A
   * substitute (a refused statement's stand-in) is answered by the gateway's own error.
   */
  onFrontend(message: PgMessage | Buffer, substitute = false): void {
    const bytes = Buffer.isBuffer(message) ? message : message.bytes;
    switch (bytes[0]) {
      case frontend.Query: {
        const statements = substitute ? [] : this.#options.exposureOf(pg.decodeQuery(bytes));
        if (statements === undefined) this.#expected.push({ kind: "statement", exposure: UNCERTAIN });
        else if (statements.length === 0) this.#expected.push({ kind: "statement", exposure: NONE });
        else for (const exposure of statements) this.#expected.push({ kind: "statement", exposure });
        this.#expected.push({ kind: "sync" });
        return;
      }
      case frontend.Parse: {
        const parse = pg.decodeParse(bytes);
        const statements = substitute ? [] : this.#options.exposureOf(parse.query);
        this.#statements.set(parse.name, { exposure: statements?.[0] ?? (statements === undefined ? UNCERTAIN : NONE) });
        this.#expected.push({ kind: "parse" });
        return;
      }
      case frontend.Bind: {
        const bind = pg.decodeBind(bytes);
        const statement = this.#statements.get(bind.statement);
        this.#portals.set(bind.portal, {
          exposure: statement?.exposure ?? UNCERTAIN,
          statement,
          ...(statement?.fields === undefined ? {} : { fields: statement.fields.map((field, index) => ({ ...field, format: formatOf(bind.resultFormats, index) })) }),
          resultFormats: bind.resultFormats,
        });
        this.#expected.push({ kind: "bind" });
        return;
      }
      case frontend.Describe: {
        const target = pg.decodeTarget(bytes);
        this.#expected.push(target.target === "S" ? { kind: "describe_statement", statement: this.#statements.get(target.name) } : { kind: "describe_portal", portal: this.#portals.get(target.name) });
        return;
      }
      case frontend.Execute:
        this.#expected.push({ kind: "execute", portal: this.#portals.get(pg.decodeExecute(bytes).portal) });
        return;
      case frontend.Close:
        this.#expected.push({ kind: "close" });
        return;
      case frontend.Sync:
        this.#expected.push({ kind: "sync" });
        return;
      default:
        return;
    }
  }

  /**
   * A DataRow inside a batch the caller owns, data[start, end) being the whole message: the fast
   * path of {@link onBackend} for rows. Masked fields that keep their length (`partial` on ASCII
   * text) are rewritten in place in `data`; returns undefined when the row's bytes there are what
   * the client gets, or the row to send instead (a new buffer).
   */
  onDataRow(data: Buffer, start: number, end: number): Buffer | undefined {
    const action = this.#rowAction();
    if (action === PASS) return undefined;
    if (action === NULL_ROW) return this.#nullRow(data.subarray(start, end));
    return this.#maskRow(action, data, start, end, true);
  }

  /** Rewrites one message from the database; undefined drops it. The message is not changed. */
  onBackend(message: Buffer): Buffer | undefined {
    switch (message[0]) {
      case backend.ParseComplete:
      case backend.BindComplete:
      case backend.CloseComplete:
        this.#expected.shift();
        return message;
      case backend.NoData:
        this.#expected.shift();
        return message;
      case backend.RowDescription:
        return this.#rowDescription(message);
      case backend.DataRow:
        return this.#dataRow(message);
      case backend.CopyOutResponse:
      case backend.CopyBothResponse: {
        const exposure = this.#current()?.exposure ?? UNCERTAIN;
        this.#copyMasked = exposure.exposure !== "none";
        this.#copyBinary = message[5] === 1;
        return message;
      }
      case backend.CopyData:
        return this.#copyData(message);
      case backend.CommandComplete:
      case backend.EmptyQueryResponse:
      case backend.PortalSuspended: {
        const binaryLeak = this.#copyBinary && this.#copyMasked;
        this.#endResult();
        this.#expected.shift();
        if (binaryLeak) return pg.encodeErrorResponse("42501", "binary COPY of masked columns is not allowed: use the text format");
        return message;
      }
      case backend.ErrorResponse: {
        const exposure = this.#current()?.exposure;
        this.#endResult();
        // The server skips to the next Sync (or the end of the Query string).
        while (this.#expected.length > 0 && this.#expected[0]?.kind !== "sync") this.#expected.shift();
        return this.#scrub(backend.ErrorResponse, message, exposure);
      }
      case backend.NoticeResponse:
        return this.#scrub(backend.NoticeResponse, message, this.#current()?.exposure);
      case backend.NotificationResponse:
        return this.#notification(message);
      case backend.ReadyForQuery:
        this.#endResult();
        while (this.#expected.length > 0) {
          if (this.#expected.shift()?.kind === "sync") break;
        }
        return message;
      default:
        return message;
    }
  }

  /** The statement or execution whose result is streaming now. */
  #current(): { exposure: StatementExposure; fields?: PgField[] } | undefined {
    const head = this.#expected[0];
    if (head?.kind === "statement") return { exposure: head.exposure };
    if (head?.kind === "execute") return head.portal ?? { exposure: UNCERTAIN };
    return undefined;
  }

  #rowDescription(message: Buffer): Buffer {
    const fields = pg.decodeRowDescription(message);
    const head = this.#expected[0];
    if (head?.kind === "describe_statement") {
      if (head.statement !== undefined) head.statement.fields = fields;
      this.#expected.shift();
      return message;
    }
    if (head?.kind === "describe_portal") {
      const portal = head.portal;
      if (portal !== undefined) {
        portal.fields = fields;
        delete portal.plan;
      }
      this.#expected.shift();
      return message;
    }
    this.#fields = fields;
    this.#plan = this.#planFor(fields, this.#current()?.exposure ?? UNCERTAIN);
    return message;
  }

  #planFor(fields: readonly PgField[], exposure: StatementExposure): (ColumnMask | undefined)[] {
    const { catalog, events } = this.#options;
    const precise = exposure.exposure === "columns" && !exposure.outputs.some((output) => output.star) && exposure.outputs.length === fields.length;
    return fields.map((field, index) => {
      if (field.tableOid !== 0) {
        const relation = catalog.byOid.get(field.tableOid);
        if (relation === undefined) {
          if (!catalog.anySensitive) return undefined;
          events.uncertain();
          return { style: "redact", label: "(unknown relation)" };
        }
        if (field.column <= 0) {
          // Column number 0 is a whole-row reference (`SELECT c FROM customers c`): it carries every column.
          return relation.sensitive.size > 0 ? { style: "redact", label: `${relation.schema}.${relation.name}.*` } : undefined;
        }
        const column = relation.columns[field.column - 1];
        if (column === undefined || !relation.sensitive.has(column)) return undefined;
        const declared = relation.styles.get(column);
        return { style: declared?.style ?? "redact", ...(declared?.keep === undefined ? {} : { keep: declared.keep }), label: `${relation.schema}.${relation.name}.${column}` };
      }
      if (exposure.exposure === "none") return undefined;
      if (precise) return exposure.outputs[index]?.sensitive === true ? { style: "redact", label: "(expression)" } : undefined;
      events.uncertain();
      return { style: "redact", label: "(uncertain)" };
    });
  }

  #dataRow(message: Buffer): Buffer {
    const action = this.#rowAction();
    if (action === PASS) return message;
    if (action === NULL_ROW) return this.#nullRow(message);
    return this.#maskRow(action, message, 0, message.length, false) ?? message;
  }

  /** What the current result does to its rows: the plan of a simple Query's result or of the executed portal. */
  #rowAction(): RowPlan | typeof PASS | typeof NULL_ROW {
    let plan = this.#plan;
    let fields = this.#fields;
    const head = this.#expected[0];
    if (head?.kind === "execute") {
      const portal = head.portal;
      // The statement may have been described after the Bind was sent.
      const described = portal?.statement?.fields;
      if (portal !== undefined && portal.fields === undefined && described !== undefined) {
        portal.fields = described.map((field, index) => ({ ...field, format: formatOf(portal.resultFormats, index) }));
      }
      if (portal?.fields !== undefined) {
        fields = portal.fields;
        portal.plan ??= this.#planFor(portal.fields, portal.exposure);
        plan = portal.plan;
      } else {
        // No Describe told us the columns: a statement that may expose anything gets NULLs, valid in any type and format.
        const exposure = portal?.exposure ?? UNCERTAIN;
        if (exposure.exposure === "none" && !this.#options.catalog.anySensitive) return PASS;
        if (exposure.exposure !== "none") return NULL_ROW;
        fields = undefined;
        plan = undefined;
      }
    } else if (plan === undefined && this.#options.catalog.anySensitive) {
      return NULL_ROW;
    }
    const key = this.#rowPlanKey;
    if (key !== undefined && key.plan === plan && key.fields === fields && this.#rowPlan !== undefined) return this.#rowPlan;
    this.#rowPlanKey = { plan, fields };
    this.#rowPlan = this.#compileRowPlan(plan, fields);
    return this.#rowPlan;
  }

  #compileRowPlan(plan: readonly (ColumnMask | undefined)[] | undefined, fields: readonly PgField[] | undefined): RowPlan {
    const scan = this.#options.detectors === undefined ? undefined : ({ kind: "scan" } as const);
    const key = this.#options.key;
    const count = Math.max(plan?.length ?? 0, fields?.length ?? 0);
    const steps: (ColumnStep | undefined)[] = [];
    for (let index = 0; index < count; index++) {
      const mask = plan?.[index];
      const field = fields?.[index];
      if (mask !== undefined) {
        const typeOid = field?.typeOid ?? 25;
        const typeModifier = field?.typeModifier ?? -1;
        const options = { typeOid, typeModifier, format: field?.format === 1 ? (1 as const) : (0 as const), style: mask.style, ...(mask.keep === undefined ? {} : { keep: mask.keep }), ...(key === undefined ? {} : { key }) };
        let compiled: PgColumnMask;
        let valid = true;
        try {
          compiled = compilePgMask(options);
        } catch {
          // Options a value cannot be masked with give NULL, as a failing mask does.
          compiled = { mask: () => null, constant: null };
          valid = false;
        }
        const inPlace = valid && mask.style === "partial" && isPgTextType(typeOid) ? { typeOid, typeModifier, keep: mask.keep ?? DEFAULT_PARTIAL_KEEP } : undefined;
        steps.push({ kind: "mask", label: mask.label, mask: compiled, inPlace });
      } else if (scan !== undefined && TEXT_TYPES.has(field?.typeOid ?? 0) && field?.format !== 1) steps.push(scan);
      else steps.push(undefined);
    }
    // Past the described columns a value has no field: scanned as text, as an undescribed column is.
    return { steps, rest: scan };
  }

  /**
   * Walks one DataRow (bytes[start, end)), checking every length against the message. Masks and
   * scans the values the plan names; with `inPlace`, values whose mask keeps their length are
   * rewritten where they are. Returns undefined when the row's bytes are final, or a new row.
   */
  #maskRow(plan: RowPlan, bytes: Buffer, start: number, end: number, inPlace: boolean): Buffer | undefined {
    // First every length is checked (a malformed row changes nothing and counts nothing), then the values are visited.
    if (end - start < 7) throw malformed("message ends early");
    const count = (((bytes[start + 5] as number) << 24) >> 16) | (bytes[start + 6] as number);
    if (count > this.#valueAt.length) {
      this.#valueAt = new Int32Array(Math.max(count, 2 * this.#valueAt.length));
      this.#valueLength = new Int32Array(this.#valueAt.length);
    }
    const valueAt = this.#valueAt;
    const valueLength = this.#valueLength;
    let offset = start + 7;
    for (let index = 0; index < count; index++) {
      if (offset + 4 > end) throw malformed("message ends early");
      const length = int32(bytes, offset);
      offset += 4;
      valueAt[index] = offset;
      valueLength[index] = length;
      if (length === -1) continue;
      if (length < 0) throw malformed("negative length");
      if (offset + length > end) throw malformed("message ends early");
      offset += length;
    }
    const { steps, rest } = plan;
    let replaced: (Buffer | null | undefined)[] | undefined;
    let changed = false;
    for (let index = 0; index < count; index++) {
      const step = index < steps.length ? steps[index] : rest;
      if (step === undefined) continue;
      const at = (valueAt[index] as number) - 4;
      const length = valueLength[index] as number;
      if (step.kind === "mask") {
        changed = true;
        this.#options.events.masked(step.label);
        // A NULL stays NULL in every style.
        if (length === -1) continue;
        const constant = step.mask.constant;
        if (constant !== undefined) {
          if (inPlace && constant !== null && constant.length === length) copyBytes(constant, 0, length, bytes, at + 4);
          else (replaced ??= [])[index] = constant;
          continue;
        }
        if (inPlace && step.inPlace !== undefined && maskPgTextPartialInPlace(bytes, at + 4, at + 4 + length, step.inPlace)) continue;
        let value: Buffer | null;
        try {
          value = step.mask.mask(bytes.subarray(at + 4, at + 4 + length));
        } catch {
          value = null;
        }
        (replaced ??= [])[index] = value;
        continue;
      }
      if (length === -1) continue;
      const scanned = this.#detect(bytes.toString("utf8", at + 4, at + 4 + length));
      if (scanned === undefined) continue;
      changed = true;
      (replaced ??= [])[index] = Buffer.from(scanned, "utf8");
    }
    if (!changed) return undefined;
    // Rewritten in place; a row with bytes past its values is re-encoded without them.
    if (replaced === undefined && inPlace && offset === end) return undefined;
    return encodeRow(bytes, start, Math.max(count, 0), replaced ?? [], valueAt, valueLength);
  }

  #nullRow(message: Buffer): Buffer {
    const count = message.readInt16BE(5);
    this.#options.events.uncertain();
    return encodeDataRow(new Array<null>(count).fill(null));
  }

  #copyData(message: Buffer): Buffer | undefined {
    if (this.#copyBinary) return this.#copyMasked ? undefined : message;
    const line = message.toString("utf8", 5);
    if (this.#copyMasked) {
      const masked = line.replace(/\n$/, "").split("\t").map((field) => (field === "\\N" ? field : "[masked]")).join("\t");
      this.#options.events.masked("(copy)");
      return pg.encodeMessage(backend.CopyData, Buffer.from(`${masked}\n`, "utf8"));
    }
    const scanned = this.#detect(line);
    return scanned === undefined ? message : pg.encodeMessage(backend.CopyData, Buffer.from(scanned, "utf8"));
  }

  #notification(message: Buffer): Buffer {
    if (this.#options.detectors === undefined) return message;
    const processId = message.readInt32BE(5);
    const channelEnd = message.indexOf(0, 9);
    const channel = message.toString("utf8", 9, channelEnd);
    const payload = message.toString("utf8", channelEnd + 1, message.indexOf(0, channelEnd + 1));
    const scanned = this.#detect(payload);
    if (scanned === undefined) return message;
    const id = Buffer.alloc(4);
    id.writeInt32BE(processId);
    return pg.encodeMessage(backend.NotificationResponse, id, Buffer.from(`${channel}\0${scanned}\0`, "utf8"));
  }

  #scrub(code: typeof backend.ErrorResponse | typeof backend.NoticeResponse, message: Buffer, exposure: StatementExposure | undefined): Buffer {
    const fields = pg.decodeErrorFields(message);
    const touched = exposure !== undefined && exposure.exposure !== "none";
    let changed = false;
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(fields)) {
      if (touched && "DHWqp".includes(key)) {
        changed = true;
        continue;
      }
      if (touched && key === "M") {
        out.M = WITHHELD;
        changed = true;
        continue;
      }
      const scanned = "SVC".includes(key) ? undefined : this.#detect(value);
      if (scanned !== undefined) changed = true;
      out[key] = scanned ?? value;
    }
    return changed ? pg.encodeErrorFields(code, out) : message;
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

  #endResult(): void {
    this.#plan = undefined;
    this.#fields = undefined;
    this.#copyMasked = false;
    this.#copyBinary = false;
  }
}

function formatOf(formats: readonly number[], index: number): number {
  if (formats.length === 0) return 0;
  return formats.length === 1 ? (formats[0] ?? 0) : (formats[index] ?? 0);
}

/** Encodes a DataRow from its values. */
function encodeDataRow(values: readonly (Buffer | null)[]): Buffer {
  let length = 4 + 2;
  for (const value of values) length += 4 + (value?.length ?? 0);
  const out = Buffer.allocUnsafe(length + 1);
  out[0] = backend.DataRow;
  out.writeInt32BE(length, 1);
  out.writeInt16BE(values.length, 5);
  let offset = 7;
  for (const value of values) {
    if (value === null) {
      out.writeInt32BE(-1, offset);
      offset += 4;
    } else {
      out.writeInt32BE(value.length, offset);
      offset += 4 + value.copy(out, offset + 4);
    }
  }
  return out;
}

/**
 * Encodes a DataRow from a checked one (bytes[start...], `count` values starting at valueAt, of
 * valueLength bytes or -1) with some values replaced (by column; undefined keeps the original):
 * the runs of kept values are copied whole.
 */
function encodeRow(bytes: Buffer, start: number, count: number, replaced: readonly (Buffer | null | undefined)[], valueAt: Int32Array, valueLength: Int32Array): Buffer {
  let length = 4 + 2;
  for (let index = 0; index < count; index++) {
    const value = replaced[index];
    length += 4 + (value === undefined ? Math.max(valueLength[index] as number, 0) : (value?.length ?? 0));
  }
  const out = Buffer.allocUnsafe(length + 1);
  out[0] = backend.DataRow;
  out.writeInt32BE(length, 1);
  out.writeInt16BE(count, 5);
  let at = 7;
  let kept = start + 7;
  for (let index = 0; index < count; index++) {
    const value = replaced[index];
    if (value === undefined) continue;
    const field = (valueAt[index] as number) - 4;
    at = copyBytes(bytes, kept, field, out, at);
    if (value === null) {
      out.writeInt32BE(-1, at);
      at += 4;
    } else {
      out.writeInt32BE(value.length, at);
      at = copyBytes(value, 0, value.length, out, at + 4);
    }
    kept = field + 4 + Math.max(valueLength[index] as number, 0);
  }
  const last = count - 1;
  copyBytes(bytes, kept, count === 0 ? kept : (valueAt[last] as number) + Math.max(valueLength[last] as number, 0), out, at);
  return out;
}

/** Copies source[from, to) to target at `at` and returns the end; short runs byte by byte (cheaper than a view). */
function copyBytes(source: Uint8Array, from: number, to: number, target: Uint8Array, at: number): number {
  if (to - from < 48) {
    for (let i = from; i < to; i++) target[at++] = source[i] as number;
    return at;
  }
  target.set(source.subarray(from, to), at);
  return at + (to - from);
}

/** A big-endian int32 at `at` (the caller checked the bounds). */
function int32(bytes: Uint8Array, at: number): number {
  return ((bytes[at] as number) << 24) | ((bytes[at + 1] as number) << 16) | ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number);
}

function malformed(message: string): WireError {
  return new WireError("malformed_message", message);
}
