import { describe, expect, it } from "vitest";
import { buildMaskCatalog } from "../../src/mask/catalog.js";
import type { StatementExposure } from "../../src/mask/lineage/index.js";
import { PostgresMasker } from "../../src/mask/postgres-masker.js";

// A client that pipelines (postgres.js, pgx) sends every message of several extended-protocol
// statements before the first answer, reusing the unnamed statement and portal. Each answer must
// be masked as the statement it answers, not the one that took the name last.

function message(code: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header[0] = code.charCodeAt(0);
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}
const cstring = (text: string) => Buffer.from(`${text}\0`);
const int16 = (value: number) => Buffer.from([(value >> 8) & 0xff, value & 0xff]);
const int32 = (value: number) => {
  const out = Buffer.alloc(4);
  out.writeInt32BE(value);
  return out;
};
const parse = (name: string, sql: string) => message("P", Buffer.concat([cstring(name), cstring(sql), int16(0)]));
const bind = (portal: string, statement: string) => message("B", Buffer.concat([cstring(portal), cstring(statement), int16(0), int16(0), int16(0)]));
const describeTarget = (target: "S" | "P", name: string) => message("D", Buffer.concat([Buffer.from(target), cstring(name)]));
const execute = (portal: string) => message("E", Buffer.concat([cstring(portal), int32(0)]));
const sync = () => message("S", Buffer.alloc(0));
const rowDescription = (fields: { name: string; tableOid: number; column: number }[]) =>
  message("T", Buffer.concat([int16(fields.length), ...fields.map((field) => Buffer.concat([cstring(field.name), int32(field.tableOid), int16(field.column), int32(25), int16(-1), int32(-1), int16(0)]))]));
const dataRow = (values: string[]) => message("D", Buffer.concat([int16(values.length), ...values.map((value) => Buffer.concat([int32(Buffer.byteLength(value)), Buffer.from(value)]))]));
const parameterDescription = () => message("t", int16(0));
const simple = (code: string) => message(code, Buffer.alloc(0));

const catalog = buildMaskCatalog(
  [
    { oid: 1000, schema: "public", name: "customers", kind: "r", columns: ["id", "email"], definition: "" },
    { oid: 2000, schema: "public", name: "things", kind: "r", columns: ["n"], definition: "" },
  ] as never,
  [{ schema: "public", table: "customers", column: "email", style: "redact" }],
);
const sensitive: StatementExposure = { exposure: "columns", outputs: [{ sensitive: true, star: false }], inference: [], copiesSensitive: false, reasons: [] } as never;
const none: StatementExposure = { exposure: "none", outputs: [], inference: [], copiesSensitive: false, reasons: [] } as never;

function masker(): PostgresMasker {
  return new PostgresMasker({
    catalog,
    detectors: undefined,
    key: undefined,
    events: { masked: () => undefined, detected: () => undefined, uncertain: () => undefined },
    exposureOf: (sql) => [sql.includes("customers") ? sensitive : none],
  });
}

/** What the client gets for each DataRow of `answers`. */
function rows(subject: PostgresMasker, answers: Buffer[]): string[] {
  const out: string[] = [];
  for (const answer of answers) {
    const sent = answer[0] === 0x44 ? (subject.onDataRow(answer, 0, answer.length) ?? answer) : subject.onBackend(answer);
    if (answer[0] === 0x44 && sent !== undefined) out.push(sent.toString("latin1"));
  }
  return out;
}

describe("pipelined extended protocol", () => {
  it("masks the rows of an unnamed portal bound before a later Bind reused the name", () => {
    const subject = masker();
    for (const bytes of [parse("", "select upper(email) from customers"), bind("", ""), describeTarget("P", ""), execute(""), parse("", "select n from things"), bind("", ""), describeTarget("P", ""), execute(""), sync()]) subject.onFrontend(bytes);
    const seen = rows(subject, [
      simple("1"), simple("2"), rowDescription([{ name: "upper", tableOid: 0, column: 0 }]), dataRow(["ALICE@EXAMPLE.COM"]), message("C", cstring("SELECT 1")),
      simple("1"), simple("2"), rowDescription([{ name: "n", tableOid: 2000, column: 1 }]), dataRow(["42"]), message("C", cstring("SELECT 1")), message("Z", Buffer.from("I")),
    ]);
    expect(seen[0]).not.toContain("ALICE");
    expect(seen[1]).toContain("42");
  });

  it("uses the description of the statement each portal was bound from, even when the name was parsed again", () => {
    const subject = masker();
    for (const bytes of [parse("", "select upper(email) from customers"), describeTarget("S", ""), bind("", ""), execute(""), parse("", "select n from things"), describeTarget("S", ""), bind("", ""), execute(""), sync()]) subject.onFrontend(bytes);
    const seen = rows(subject, [
      simple("1"), parameterDescription(), rowDescription([{ name: "upper", tableOid: 0, column: 0 }]), simple("2"), dataRow(["ALICE@EXAMPLE.COM"]), message("C", cstring("SELECT 1")),
      simple("1"), parameterDescription(), rowDescription([{ name: "n", tableOid: 2000, column: 1 }]), simple("2"), dataRow(["42"]), message("C", cstring("SELECT 1")), message("Z", Buffer.from("I")),
    ]);
    expect(seen[0]).not.toContain("ALICE");
    expect(seen[1]).toContain("42");
  });
});
