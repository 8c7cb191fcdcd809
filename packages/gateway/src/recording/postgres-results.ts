import { backend, pg } from "@airlock/wire";
import type { SessionRecording } from "./recorder.js";

const MAX_VALUE = 200;

/** A value as the recording keeps it: text as text (cut when long), binary as \x hex. */
function show(value: Buffer | null, binary: boolean): string | null {
  if (value === null) return null;
  const text = binary ? `\\x${value.subarray(0, MAX_VALUE / 2).toString("hex")}` : value.toString("utf8", 0, Math.min(value.length, MAX_VALUE * 4));
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE)}…` : text;
}

/**
 * Turns what the database sends back into result events of the recording: columns, the first
 * rows, the row count, the command tag or the error, bytes and time. Only the first rows of a
 * result are decoded; the rest are counted, so the cost per row stays a byte comparison.
 */
export class PostgresResultRecorder {
  readonly #recording: SessionRecording;
  readonly #sampleRows: number;
  #columns: string[] | undefined;
  #binary: boolean[] = [];
  #rows: (string | null)[][] = [];
  #rowCount = 0;
  #bytes = 0;
  #started = performance.now();

  constructor(recording: SessionRecording, sampleRows: number) {
    this.#recording = recording;
    this.#sampleRows = sampleRows;
  }

  /** A statement went to the database: its result's clock starts. */
  started(): void {
    if (this.#rowCount === 0 && this.#columns === undefined) this.#started = performance.now();
  }

  /**
   * A DataRow inside a larger buffer (bytes[start, end) is the whole message), as {@link observe}
   * takes it: counted, and decoded only while the result's first rows are being kept.
   */
  observeDataRow(bytes: Buffer, start: number, end: number): void {
    this.#bytes += end - start;
    this.#rowCount++;
    if (this.#rows.length < this.#sampleRows) this.#rows.push(pg.decodeDataRow(bytes.subarray(start, end)).map((value, index) => show(value, this.#binary[index] === true)));
  }

  observe(message: Buffer): void {
    if (message[0] === backend.DataRow) {
      this.observeDataRow(message, 0, message.length);
      return;
    }
    this.#bytes += message.length;
    switch (message[0]) {
      case backend.RowDescription: {
        const fields = pg.decodeRowDescription(message);
        this.#columns = fields.map((field) => field.name);
        this.#binary = fields.map((field) => field.format === 1);
        return;
      }
      case backend.CopyData:
        this.#rowCount++;
        if (this.#rows.length < this.#sampleRows) this.#rows.push([show(message.subarray(5), false)]);
        return;
      case backend.CommandComplete:
        this.#flush({ tag: pg.decodeCommandComplete(message) });
        return;
      case backend.EmptyQueryResponse:
        this.#flush({ tag: "" });
        return;
      case backend.PortalSuspended:
        this.#flush({ tag: "(portal suspended)" });
        return;
      case backend.ErrorResponse: {
        const fields = pg.decodeErrorFields(message);
        this.#flush({ error: { code: fields.C ?? "", message: fields.M ?? "" } });
        return;
      }
      case backend.NoticeResponse: {
        const fields = pg.decodeErrorFields(message);
        this.#recording.note({ type: "notice", code: fields.C ?? "", message: fields.M ?? "" });
        return;
      }
      default:
        return;
    }
  }

  #flush(end: { tag: string } | { error: { code: string; message: string } }): void {
    this.#recording.note({
      type: "result",
      ...(this.#columns === undefined ? {} : { columns: this.#columns }),
      rows: this.#rows,
      rowCount: this.#rowCount,
      ...end,
      bytes: this.#bytes,
      ms: Math.round((performance.now() - this.#started) * 100) / 100,
    });
    this.#columns = undefined;
    this.#binary = [];
    this.#rows = [];
    this.#rowCount = 0;
    this.#bytes = 0;
    this.#started = performance.now();
  }
}
