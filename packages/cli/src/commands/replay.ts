import { verifyLines } from "@airlock/gateway";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { UsageError, type Command } from "./command.js";
import { SOURCE_OPTIONS, SOURCE_USAGE, sessionPath, withSessionSource } from "./session-source.js";
import { count, formatDuration, type SessionJson } from "./sessions.js";

/** One record of a recording, as parsed; fields by record type. */
type RecordJson = Readonly<Record<string, unknown>> & { readonly seq?: unknown; readonly at?: unknown; readonly type?: unknown };

/** Rows of a result shown (the recording keeps up to 20). */
const SHOWN_ROWS = 10;
/** Columns of a result shown. */
const SHOWN_COLUMNS = 8;
/** Characters of a value shown in a table cell or a parameter. */
const CELL = 40;
/** Characters of a statement shown; the recording and --json keep all of it. */
const STATEMENT = 4_000;
/** Where the text of a record starts, after its time offset. */
const INDENT = " ".repeat(12);

/** A value cut to `max` characters, control characters made visible so one value stays on one line. */
function cut(value: string, max: number): string {
  const visible = value.replace(/\r/g, "\\r").replace(/\n/g, "\\n").replace(/\t/g, "\\t");
  return visible.length > max ? `${visible.slice(0, max - 1)}…` : visible;
}

function text(value: unknown): string {
  return typeof value === "string" ? value : value === undefined || value === null ? "" : JSON.stringify(value);
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.map(text) : [];
}

function number(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

/** A result's sample rows as a small aligned table. */
function resultTable(columns: string[], rows: unknown[][], rowCount: number): string[] {
  const width = Math.max(columns.length, ...rows.map((row) => row.length));
  const shownColumns = Math.min(width, SHOWN_COLUMNS);
  const header = Array.from({ length: shownColumns }, (_, index) => cut(columns[index] ?? `column${index + 1}`, CELL));
  const body = rows.slice(0, SHOWN_ROWS).map((row) => Array.from({ length: shownColumns }, (_, index) => (row[index] === null ? "NULL" : cut(text(row[index]), CELL))));
  if (header.length === 0) return [];
  const widths = header.map((title, index) => Math.max(title.length, ...body.map((row) => (row[index] ?? "").length)));
  const line = (cells: string[]) => cells.map((cell, index) => cell.padEnd(widths[index] ?? 0)).join(" | ").trimEnd();
  const more = width > shownColumns ? ` | … ${count(width - shownColumns, "more column")}` : "";
  const lines = [`${line(header)}${more}`, widths.map((w) => "-".repeat(w)).join("-+-")];
  lines.push(...body.map(line));
  const hidden = rowCount - body.length;
  if (hidden > 0) lines.push(`… ${count(hidden, "more row")}`);
  return lines;
}

/** Characters of a document shown on one line of a MongoDB result. */
const DOCUMENT = 200;
/** Fields of a MongoDB command shown one per line; the rest are counted. */
const COMMAND_FIELDS = 12;

/** An Extended JSON value on one line. */
function json(value: unknown): string {
  return JSON.stringify(value) ?? "null";
}

/**
 * A MongoDB command as the recording keeps it (Extended JSON of the decoded BSON), one top-level
 * field a line: `find: "people"`, `filter: {...}`. A command cut at the recording's limit (no
 * longer JSON) is shown as it is.
 */
function renderMongoCommand(record: RecordJson): string[] {
  const recorded = text(record.sql);
  let command: unknown;
  try {
    command = JSON.parse(recorded);
  } catch {
    command = undefined;
  }
  if (command === null || typeof command !== "object" || Array.isArray(command)) return ["command:", `  ${cut(recorded, STATEMENT)}`];
  const fields = Object.entries(command as Record<string, unknown>);
  const [name = ""] = fields[0] ?? [];
  const database = (command as Record<string, unknown>).$db;
  const lines = [`command ${name}${typeof database === "string" ? ` on ${database}` : ""}:`];
  for (const [key, value] of fields.filter(([key]) => key !== "$db").slice(0, COMMAND_FIELDS)) lines.push(`  ${key}: ${cut(json(value), STATEMENT)}`);
  const hidden = fields.filter(([key]) => key !== "$db").length - COMMAND_FIELDS;
  if (hidden > 0) lines.push(`  … ${count(hidden, "more field")}`);
  return lines;
}

/** A MongoDB reply as the recording keeps it (after masking): ok or the error, counts, the first documents of a batch, write errors. */
function renderMongoResult(record: RecordJson): string[] {
  const command = text(record.command) || "?";
  if (record.ok === false) return [`error${record.code === undefined ? "" : ` ${text(record.code)}`} (${command}): ${text(record.error)}`];
  const documents = number(record.documents);
  const sample = Array.isArray(record.sample) ? record.sample : [];
  const writeErrors = Array.isArray(record.writeErrors) ? (record.writeErrors as Record<string, unknown>[]) : [];
  const facts: string[] = [];
  if (documents !== undefined) facts.push(count(documents, "document"));
  const n = number(record.n);
  if (n !== undefined) facts.push(`n ${n}`);
  const modified = number(record.nModified);
  if (modified !== undefined) facts.push(`${modified} modified`);
  if (writeErrors.length > 0) facts.push(count(writeErrors.length, "write error"));
  const lines = [`result of ${command}: ${facts.length === 0 ? "ok" : facts.join(", ")}`];
  for (const document of sample.slice(0, SHOWN_ROWS)) lines.push(`  ${cut(json(document), DOCUMENT)}`);
  const hidden = (documents ?? sample.length) - Math.min(sample.length, SHOWN_ROWS);
  if (hidden > 0) lines.push(`  … ${count(hidden, "more document")}`);
  for (const error of writeErrors.slice(0, SHOWN_ROWS)) lines.push(`  write error ${text(error.code)}${error.index === undefined ? "" : ` at ${text(error.index)}`}: ${cut(text(error.errmsg), DOCUMENT)}`);
  return lines;
}

/** A statement's decision: the effect, the rule, the classes, then the reasons. */
function decisionLines(record: RecordJson): string[] {
  const classes = strings(record.classes);
  const rule = typeof record.rule === "string" ? ` by ${record.rule}` : " (no rule: default deny)";
  const lines = [`=> ${text(record.effect).toUpperCase()}${record.effect === "deny" || typeof record.rule === "string" ? rule : ""}${classes.length > 0 ? ` [${classes.join(", ")}]` : ""}`];
  for (const reason of strings(record.reasons)) lines.push(`   ${reason}`);
  return lines;
}

/** The lines of one record, without its time offset; `protocol` is the session's (session_start). */
function renderRecord(record: RecordJson, protocol = ""): string[] {
  const mongo = protocol === "mongodb";
  switch (record.type) {
    case "session_start":
      return ["session started"];
    case "statement": {
      if (mongo) return [...renderMongoCommand(record), ...decisionLines(record)];
      const sql = text(record.sql);
      const shown = sql.length > STATEMENT ? `${sql.slice(0, STATEMENT)}… (${sql.length - STATEMENT} more characters)` : sql;
      return [`statement (${text(record.protocol) || "simple"}):`, ...shown.split("\n").map((line) => `  ${line}`), ...decisionLines(record)];
    }
    case "bind": {
      const params = Array.isArray(record.params) ? record.params : [];
      const shown = params.slice(0, 10).map((param) => (param === null ? "NULL" : `'${cut(text(param), CELL)}'`));
      const more = params.length > shown.length ? `, … ${count(params.length - shown.length, "more parameter")}` : "";
      const portal = text(record.portal) === "" ? "unnamed portal" : `portal \`${text(record.portal)}\``;
      const statement = text(record.statement) === "" ? "unnamed statement" : `statement \`${text(record.statement)}\``;
      return [`bind ${portal} to ${statement}: (${shown.join(", ")}${more})`];
    }
    case "review": {
      const actions = Array.isArray(record.actions) ? (record.actions as Record<string, unknown>[]) : [];
      const lines = [`review ${text(record.review)}: ${text(record.status)}`];
      for (const action of actions) lines.push(`   ${text(action.reviewer)} ${text(action.action)}d${text(action.reason) === "" ? "" : `: ${text(action.reason)}`}`);
      return lines;
    }
    case "result": {
      if (mongo) return renderMongoResult(record);
      const rowCount = number(record.rowCount) ?? 0;
      const ms = number(record.ms);
      const bytes = number(record.bytes);
      const facts = [count(rowCount, "row"), ...(ms === undefined ? [] : [`${ms} ms`]), ...(bytes === undefined ? [] : [count(bytes, "byte")])].join(", ");
      const error = record.error as { code?: unknown; message?: unknown } | undefined;
      if (error !== undefined && error !== null) return [`error ${text(error.code)}: ${text(error.message)} (${facts})`];
      const tag = text(record.tag);
      const lines = [`result${tag === "" ? "" : ` ${tag}`}: ${facts}`];
      const rows = Array.isArray(record.rows) ? (record.rows as unknown[]).filter((row): row is unknown[] => Array.isArray(row)) : [];
      if (Array.isArray(record.columns) || rows.length > 0) lines.push(...resultTable(strings(record.columns), rows, rowCount).map((line) => `  ${line}`));
      return lines;
    }
    case "notice":
      return [`notice ${text(record.code)}: ${text(record.message)}`];
    case "session_end": {
      const statements = number(record.statements);
      const ms = number(record.ms);
      return [`session ended: ${text(record.outcome)}${statements === undefined ? "" : `, ${count(statements, "statement")}`}${ms === undefined ? "" : `, ${formatDuration(ms)}`}`];
    }
    default: {
      const { seq: _seq, at: _at, prev: _prev, hash: _hash, type, ...rest } = record;
      return [`${text(type) || "record"}: ${cut(JSON.stringify(rest), 400)}`];
    }
  }
}

/** The header: who, where, from which client, under which policies. */
function renderHeader(id: string, start: RecordJson | undefined, session: SessionJson | undefined): string[] {
  const identity = (start?.identity ?? {}) as Record<string, unknown>;
  const subject = text(identity.subject) || session?.subject || "";
  const issuer = text(identity.issuer) || session?.issuer || "";
  const issuerUrl = text(identity.issuerUrl);
  const groups = strings(identity.groups).length > 0 ? strings(identity.groups) : (session?.groups ?? []);
  const connection = text(start?.connection) || session?.connection || "";
  const transport = text(start?.transport) || session?.transport || "";
  const gateway = text(start?.gateway) || session?.gatewayId || "";
  const client = text(start?.client) || session?.clientAddress || "";
  const lines = [
    `session ${id}`,
    `identity:   ${subject}`,
    `issuer:     ${issuer}${issuerUrl === "" || issuerUrl === issuer ? "" : ` (${issuerUrl})`}`,
    `groups:     ${groups.join(", ") || "(none)"}`,
  ];
  if (identity.claims !== undefined && identity.claims !== null && Object.keys(identity.claims).length > 0) {
    lines.push(`claims:     ${cut(JSON.stringify(identity.claims), 300)}`);
  }
  const how = [text(start?.protocol), transport === "" ? "" : transport === "tunnel" ? "airlock connect" : "native listener"].filter((part) => part !== "");
  lines.push(`connection: ${connection}${how.length === 0 ? "" : ` (${how.join(", ")})`}`);
  lines.push(`client:     ${client}`, `gateway:    ${gateway}`);
  const rules = strings(start?.rules);
  if (rules.length > 0) lines.push(`policies:   ${rules.join(", ")}`);
  lines.push(`started:    ${text(start?.at) || session?.startedAt || ""}`);
  return lines;
}

/** The records of a recording's text; a torn last line (a crash mid-write) is left out. */
function parseRecords(recording: string): RecordJson[] {
  const records: RecordJson[] = [];
  const lines = recording.split("\n");
  if (lines.at(-1) === "") lines.pop();
  for (const [index, line] of lines.entries()) {
    try {
      const value: unknown = JSON.parse(line);
      if (value !== null && typeof value === "object" && !Array.isArray(value)) records.push(value as RecordJson);
    } catch {
      if (index < lines.length - 1) throw new Error(`line ${index + 1} of the recording is not JSON: run \`airlock sessions verify\``);
    }
  }
  return records;
}

function offset(start: number, at: unknown): string {
  const time = typeof at === "string" ? Date.parse(at) : Number.NaN;
  if (Number.isNaN(time) || Number.isNaN(start)) return "".padEnd(INDENT.length);
  return `+${((time - start) / 1_000).toFixed(3)}s`.padStart(INDENT.length - 2).padEnd(INDENT.length);
}

export const replayCommand: Command = {
  name: "replay",
  summary: "show a recorded session as it happened",
  usage: `airlock replay <session> [--speed X] [--json]

Prints a session's recording: who (identity, groups, claims), which connection, from which client,
then every statement as the client sent it with the decision and its reasons, parameters of the
extended protocol, reviews and reviewers' actions, what the client received (after masking: the
first rows of each result, long values cut, the row count), errors, notices, timings, and how the
session ended. A MongoDB session shows each command field by field and the first documents of each
batch, as Extended JSON. The recording's hash chain is checked on the way; a broken one is reported
on stderr.

--speed 1 replays in real time, 2 twice as fast, 0 (the default) without waiting.
--json prints the whole recording as a JSON array of its records.

${SOURCE_USAGE}

Options:
  --api URL             the gateway's HTTP API (or AIRLOCK_API)
  --key-file FILE       the reviewer key (or AIRLOCK_REVIEWER_KEY)
  --config FILE         read gateway.yaml's store and recordings folder instead of the API
  --speed X             replay at X times real time (0: no waiting)
  --json                print the records as JSON`,
  async run(argv, env, io) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...SOURCE_OPTIONS, speed: { type: "string", default: "0" }, json: { type: "boolean", default: false } },
    });
    const [id, ...rest] = positionals;
    if (id === undefined) throw new UsageError("expected the id of the session to replay");
    if (rest.length > 0) throw new UsageError(`unexpected argument \`${rest[0]}\``);
    const speed = /^\d+(\.\d+)?$/.test(values.speed) ? Number(values.speed) : Number.NaN;
    if (!Number.isFinite(speed) || speed < 0) throw new UsageError(`--speed \`${values.speed}\` is not a number of 0 or more`);
    if (values.json && speed > 0) throw new UsageError("--json prints the records at once: leave out --speed");

    const { session, recording } = await withSessionSource(values, env, async (source) => {
      const detail = await source.json(sessionPath(id));
      return { session: detail.session as SessionJson, recording: await source.text(sessionPath(id, "recording")) };
    });
    const records = parseRecords(recording);
    if (values.json) {
      io.out(JSON.stringify(records));
      return 0;
    }
    const check = verifyLines(session.id, recording);
    if (!check.ok) {
      io.err(`airlock replay: warning: the recording does not verify: record ${check.problem?.line ?? check.records + 1}: ${check.problem?.reason ?? "broken chain"}`);
    }

    const start = records.find((record) => record.type === "session_start");
    for (const line of renderHeader(session.id, start, session)) io.out(line);
    io.out("");
    const origin = Date.parse(text(records[0]?.at));
    let previous = origin;
    for (const record of records) {
      if (record.type === "session_start") continue;
      const at = Date.parse(text(record.at));
      if (speed > 0 && !Number.isNaN(at) && !Number.isNaN(previous) && at > previous) await sleep((at - previous) / speed);
      if (!Number.isNaN(at)) previous = at;
      const [first = "", ...more] = renderRecord(record, text(start?.protocol));
      io.out(`${offset(origin, record.at)}${first}`);
      for (const line of more) io.out(`${INDENT}${line}`);
    }
    if (!records.some((record) => record.type === "session_end")) {
      io.out("");
      if (session.endedAt === undefined) io.out("the session is still open: its recording goes on");
      else io.out(`the recording stops without session_end: the session ended abruptly${session.outcome === undefined ? "" : ` (the store says: ${session.outcome})`}`);
    }
    return 0;
  },
};
