import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MaskError, isPgTypeMaskable, maskPgValue, pgTypeOids, type MaskPgValueOptions, type MaskStyle } from "../../src/mask/values.js";

const KEY = Buffer.alloc(32, 7);
const STYLES: readonly MaskStyle[] = ["redact", "partial", "pseudonym"];

const text = (value: string): Buffer => Buffer.from(value, "utf8");
const mask = (value: Buffer | null, options: Omit<MaskPgValueOptions, "key">): Buffer | null => maskPgValue(value, { key: KEY, ...options });

describe("maskPgValue without a database", () => {
  it("gives NULL for the null style and for NULL, whatever the type and format", () => {
    for (const typeOid of [...Object.values(pgTypeOids), 600, 1009]) {
      for (const format of [0, 1] as const) {
        expect(mask(text("x"), { typeOid, format, style: "null" })).toBeNull();
        for (const style of STYLES) expect(mask(null, { typeOid, format, style })).toBeNull();
      }
    }
  });

  it("masks other types with the style's text in text format", () => {
    const point = 600;
    expect(isPgTypeMaskable(point)).toBe(false);
    expect(mask(text("(1,2)"), { typeOid: point, format: 0, style: "redact" })?.toString()).toBe("[masked]");
    expect(mask(text("alice"), { typeOid: point, format: 0, style: "pseudonym" })?.toString()).toMatch(/^psd_[a-z2-7]{16}$/);
  });

  it("gives NULL for redact and a coded error for partial and pseudonym on other types in binary format", () => {
    const point = 600;
    expect(mask(Buffer.alloc(16), { typeOid: point, format: 1, style: "redact" })).toBeNull();
    for (const style of ["partial", "pseudonym"] as const) {
      let error: unknown;
      try {
        mask(Buffer.alloc(16), { typeOid: point, format: 1, style });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(MaskError);
      expect((error as MaskError).code).toBe("unsupported_binary_type");
      expect((error as MaskError).message).toBe(`type oid 600 in binary format has no masked value for the \`${style}\` style`);
    }
  });

  it("refuses to derive a pseudonym from a value that is not of its type", () => {
    const cases: [number, 0 | 1, Buffer][] = [
      [pgTypeOids.int4, 1, Buffer.alloc(3)],
      [pgTypeOids.int8, 0, text("12abc")],
      [pgTypeOids.uuid, 0, text("not-a-uuid")],
      [pgTypeOids.uuid, 1, Buffer.alloc(15)],
      [pgTypeOids.numeric, 1, Buffer.alloc(5)],
      [pgTypeOids.numeric, 0, text("1.2.3")],
      [pgTypeOids.jsonb, 1, Buffer.from([2, 0x7b, 0x7d])],
      [pgTypeOids.bytea, 0, text("\\xabc")],
    ];
    for (const [typeOid, format, value] of cases) {
      expect(() => mask(value, { typeOid, format, style: "pseudonym" }), `${typeOid}/${format}`).toThrow(MaskError);
      // The other styles do not read the value, so they cannot fail on it.
      expect(() => mask(value, { typeOid, format, style: "redact" })).not.toThrow();
    }
  });

  it("keeps bpchar lengths and varchar limits", () => {
    const char10 = { typeOid: pgTypeOids.bpchar, format: 0 } as const;
    expect(mask(text("ab        "), { ...char10, style: "redact" })?.toString()).toBe("[masked]  ");
    expect(mask(text("abc"), { ...char10, style: "redact" })?.toString()).toBe("***");
    expect(mask(text("abcdef    "), { ...char10, style: "partial", keep: 2 })?.toString()).toBe("****ef    ");
    expect(mask(text("ab        "), { ...char10, style: "pseudonym" })?.toString()).toMatch(/^[a-z2-7]{10}$/);
    const varchar5 = { typeOid: pgTypeOids.varchar, format: 0, typeModifier: 5 + 4 } as const;
    expect(mask(text("alice"), { ...varchar5, style: "redact" })?.toString()).toBe("*****");
    expect(mask(text("alice"), { ...varchar5, style: "pseudonym" })?.toString()).toMatch(/^[a-z2-7]{5}$/);
  });

  it("gives equal values equal pseudonyms across formats and spellings", () => {
    const pseudonym = (typeOid: number, format: 0 | 1, value: Buffer): string | undefined => mask(value, { typeOid, format, style: "pseudonym" })?.toString("hex");
    // bpchar(24) compares without its padding: its pseudonym is the token of the unpadded text, padded.
    const padded = mask(text("ab".padEnd(24)), { typeOid: pgTypeOids.bpchar, format: 0, style: "pseudonym" })?.toString();
    expect(padded).toBe(`${mask(text("ab"), { typeOid: pgTypeOids.text, format: 0, style: "pseudonym" })?.toString()}    `);
    expect(pseudonym(pgTypeOids.text, 0, text("ab"))).toBe(pseudonym(pgTypeOids.varchar, 1, text("ab")));
    expect(pseudonym(pgTypeOids.numeric, 0, text("1.50"))).toBe(pseudonym(pgTypeOids.numeric, 0, text("001.5")));
    expect(pseudonym(pgTypeOids.uuid, 0, text("550E8400-E29B-41D4-A716-446655440000"))).toBe(pseudonym(pgTypeOids.uuid, 0, text("550e8400-e29b-41d4-a716-446655440000")));
    expect(pseudonym(pgTypeOids.bytea, 0, text("\\x68690a5c"))).toBe(pseudonym(pgTypeOids.bytea, 0, text("hi\\012\\\\")));
    const byteaText = mask(text("\\x6869"), { typeOid: pgTypeOids.bytea, format: 0, style: "pseudonym" })?.toString();
    expect(byteaText).toBe(`\\x${mask(text("hi"), { typeOid: pgTypeOids.bytea, format: 1, style: "pseudonym" })?.toString("hex")}`);
    const int4 = Buffer.alloc(4);
    int4.writeInt32BE(-42);
    expect(pseudonym(pgTypeOids.int4, 1, int4)).not.toBe(pseudonym(pgTypeOids.int4, 0, text("42")));
    expect(mask(int4, { typeOid: pgTypeOids.int4, format: 1, style: "pseudonym" })?.readInt32BE()).toBe(Number(mask(text("-42"), { typeOid: pgTypeOids.int4, format: 0, style: "pseudonym" })?.toString()));
  });

  it("refuses invalid options with a TypeError naming the option", () => {
    expect(() => maskPgValue(text("x"), { typeOid: 25, format: 2 as 0, style: "redact" })).toThrow(new TypeError("options.format: expected 0 (text) or 1 (binary)"));
    expect(() => maskPgValue(text("x"), { typeOid: -1, format: 0, style: "redact" })).toThrow(new TypeError("options.typeOid: expected a type oid"));
    expect(() => maskPgValue(text("x"), { typeOid: 25, format: 0, style: "pseudonym" })).toThrow(new TypeError("options.key: the pseudonym style needs a key"));
  });
});

/**
 * Every supported type, as a column of a real table: the column's declared type (with its
 * modifier), and an original value.
 */
const COLUMNS: readonly [name: string, type: string, original: string][] = [
  ["c_text", "text", "alice@example.com"],
  ["c_varchar", "varchar(30)", "alice@example.com"],
  ["c_name", "name", "alice"],
  ["c_bpchar", "char(24)", "alice@example.com"],
  ["c_bpchar_short", "char(3)", "abc"],
  ["c_int2", "int2", "12345"],
  ["c_int4", "int4", "-123456789"],
  ["c_int8", "int8", "1234567890123"],
  ["c_numeric", "numeric", "-1234.5600"],
  ["c_numeric_scaled", "numeric(10,2)", "1234.56"],
  ["c_numeric_negative_scale", "numeric(4,-2)", "123400"],
  ["c_float4", "float4", "1.5"],
  ["c_float8", "float8", "2.25"],
  ["c_bool", "bool", "true"],
  ["c_date", "date", "2024-01-15"],
  ["c_time", "time", "12:30:45"],
  ["c_timetz", "timetz", "12:30:45+02"],
  ["c_timestamp", "timestamp", "2024-01-15 12:30:45.123456"],
  ["c_timestamptz", "timestamptz", "2024-01-15 12:30:45+00"],
  ["c_interval", "interval", "1 day 02:00:00"],
  ["c_uuid", "uuid", "550e8400-e29b-41d4-a716-446655440000"],
  ["c_bytea", "bytea", "\\x68656c6c6f"],
  ["c_json", "json", '{"email": "alice@example.com"}'],
  ["c_jsonb", "jsonb", '{"email": "alice@example.com"}'],
  ["c_inet", "inet", "10.1.2.3"],
  ["c_cidr", "cidr", "10.1.0.0/16"],
];

/** Raw text in, raw text out: no type parsing by node-postgres. */
const raw = { getTypeParser: () => (value: string) => value };

describe("maskPgValue against PostgreSQL", () => {
  let client: pg.Client;
  /** Per column: what RowDescription says, the original in text and in binary (the type's send function). */
  const columns: { name: string; type: string; typeOid: number; typeModifier: number; send: string; text: string; binary: Buffer }[] = [];

  beforeAll(async () => {
    client = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database: "test", types: raw });
    await client.connect();
    await client.query("set timezone = 'UTC'; set datestyle = 'ISO, MDY'; set intervalstyle = 'postgres'; set bytea_output = 'hex'");
    await client.query(`create temp table masked_types (${COLUMNS.map(([name, type]) => `${name} ${type}`).join(", ")})`);
    await client.query(
      `insert into masked_types values (${COLUMNS.map((_, i) => `$${i + 1}`).join(", ")})`,
      COLUMNS.map(([, , original]) => original),
    );
    const result = await client.query<Record<string, string>>("select * from masked_types");
    const row = result.rows[0] as Record<string, string>;
    for (const [index, field] of result.fields.entries()) {
      const [name, type] = COLUMNS[index] as (typeof COLUMNS)[number];
      const send = (await client.query<{ typsend: string }>("select typsend::text from pg_type where oid = $1", [field.dataTypeID])).rows[0]?.typsend as string;
      const binary = (await client.query<{ b: string }>(`select ${send}(${name}) as b from masked_types`)).rows[0]?.b as string;
      columns.push({ name, type, typeOid: field.dataTypeID, typeModifier: field.dataTypeModifier, send, text: row[name] as string, binary: Buffer.from(binary.slice(2), "hex") });
    }
  });

  afterAll(async () => {
    await client?.end();
  });

  it("names the OIDs as pg_type does", async () => {
    const names = Object.keys(pgTypeOids);
    const result = await client.query<{ typname: string; oid: string }>("select typname, oid::int::text as oid from pg_type where typname = any($1) and typnamespace = 'pg_catalog'::regnamespace", [names]);
    const fromCatalog = Object.fromEntries(result.rows.map((row) => [row.typname, Number(row.oid)]));
    expect(fromCatalog).toEqual({ ...pgTypeOids });
  });

  it("covers every supported type", () => {
    expect(new Set(columns.map((column) => column.typeOid))).toEqual(new Set(Object.values(pgTypeOids)));
    for (const column of columns) expect(isPgTypeMaskable(column.typeOid), column.type).toBe(true);
  });

  for (const style of STYLES) {
    it(`${style}: text and binary masked values are valid for PostgreSQL, equal to each other and to its own binary encoding`, async () => {
      for (const column of columns) {
        const options = { typeOid: column.typeOid, typeModifier: column.typeModifier, style } as const;
        const label = `${column.type} ${style}`;
        const maskedText = mask(text(column.text), { ...options, format: 0 });
        const maskedBinary = mask(column.binary, { ...options, format: 1 });
        if (maskedText === null || maskedBinary === null) throw new Error(`${label}: unexpected NULL`);

        // The text form is accepted by the type's input function, unchanged by the column's type
        // modifier, and differs from the original (results come back in text format, raw).
        const fromText = await client.query<{ v: string; b: string }>(`select $1::${column.type} as v, ${column.send}($1::${column.type}) as b`, [maskedText.toString("utf8")]);
        const canonical = fromText.rows[0]?.v as string;
        expect(canonical, label).not.toBe(column.text);
        // The type's output function gives back exactly our text (numeric normalises -0 and the like).
        if (column.typeOid !== pgTypeOids.numeric) expect(canonical, label).toBe(maskedText.toString("utf8"));

        // PostgreSQL's own binary encoding of the masked value is byte for byte ours, so the
        // binary form was derived from the binary original exactly as the text form from the text.
        expect(Buffer.from((fromText.rows[0]?.b as string).slice(2), "hex").toString("hex"), label).toBe(maskedBinary.toString("hex"));

        // The binary form is accepted by the type's receive function (node-postgres sends a Buffer
        // parameter in binary format) and means the same value.
        const fromBinary = await client.query<{ v: string }>(`select $1::${column.type} as v`, [maskedBinary]);
        expect(fromBinary.rows[0]?.v, label).toBe(canonical);
      }
    });
  }

  it("gives the documented fixed values", async () => {
    const fixed = Object.fromEntries(columns.map((column) => [column.type, mask(text(column.text), { typeOid: column.typeOid, typeModifier: column.typeModifier, format: 0, style: "redact" })?.toString()]));
    expect(fixed).toEqual({
      text: "[masked]",
      "varchar(30)": "[masked]",
      name: "[masked]",
      "char(24)": "[masked]                ",
      "char(3)": "***",
      int2: "0",
      int4: "0",
      int8: "0",
      numeric: "0",
      "numeric(10,2)": "0.00",
      "numeric(4,-2)": "0",
      float4: "0",
      float8: "0",
      bool: "f",
      date: "2000-01-01",
      time: "00:00:00",
      timetz: "00:00:00+00",
      timestamp: "2000-01-01 00:00:00",
      timestamptz: "2000-01-01 00:00:00+00",
      interval: "00:00:00",
      uuid: "00000000-0000-0000-0000-000000000000",
      bytea: "\\x",
      json: '"[masked]"',
      jsonb: '"[masked]"',
      inet: "0.0.0.0",
      cidr: "0.0.0.0/0",
    });
  });

  it("keeps pseudonyms within the column's type and deterministic", async () => {
    for (const column of columns) {
      const options = { typeOid: column.typeOid, typeModifier: column.typeModifier, style: "pseudonym" } as const;
      const once = mask(text(column.text), { ...options, format: 0 })?.toString();
      expect(mask(text(column.text), { ...options, format: 0 })?.toString(), column.type).toBe(once);
    }
    const pick = (type: string): string => {
      const column = columns.find((candidate) => candidate.type === type);
      if (column === undefined) throw new Error(type);
      return mask(text(column.text), { typeOid: column.typeOid, typeModifier: column.typeModifier, format: 0, style: "pseudonym" })?.toString() ?? "";
    };
    expect(Number(pick("int2"))).toBeLessThanOrEqual(32767);
    expect(pick("numeric(10,2)")).toMatch(/^\d{1,8}\.00$/);
    expect(pick("numeric(4,-2)")).toMatch(/^\d{1,4}00$|^0$/);
    expect(pick("uuid")).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(pick("text")).toMatch(/^psd_[a-z2-7]{16}$/);
    expect(pick("char(24)")).toMatch(/^psd_[a-z2-7]{16} {4}$/);
    expect(JSON.parse(pick("jsonb"))).toMatch(/^psd_[a-z2-7]{16}$/);
  });
});
