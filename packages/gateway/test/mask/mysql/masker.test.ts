import { createMysqlFramer, mariadbCapabilities, mysql, mysqlCommands as M, type MysqlPacket } from "@airlock/wire";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDetectors } from "../../../src/mask/detectors.js";
import { MysqlMasker, WITHHELD_MESSAGE } from "../../../src/mask/mysql-masker.js";
import { mysqlValueKind } from "../../../src/mask/mysql-values.js";
import type { MaskStyle } from "../../../src/mask/styles.js";
import { MysqlResponseTracker } from "../../../src/session/mysql-responses.js";
import { CANARIES, comStmtExecute, comStmtFetch, comStmtPrepare, createMaskerFixture, MysqlCapture, preparedId, TYPE_COLUMNS, type MaskerFixture } from "../../support/mysql-capture.js";
import { clientView, clientViews, expectCanaries, expectNoCanaries, expectValid, KEY, literalFor, maskAll, maskSteps, parameterFor, type Policy } from "./harness.js";

let fixture: MaskerFixture;
const detectors = createDetectors(["card_number", "email"]);

beforeAll(async () => {
  fixture = await createMaskerFixture();
});

afterAll(async () => {
  await fixture.drop();
});

const STYLES: readonly MaskStyle[] = ["redact", "partial", "pseudonym", "null"];

for (const deprecateEof of [false, true]) {
  describe(`MysqlMasker on MariaDB ${deprecateEof ? "with CLIENT_DEPRECATE_EOF" : "with EOF packets"}`, () => {
    let capture: MysqlCapture;
    let statementId: number;
    let insertId: number;
    const caps = () => capture.capabilities;

    beforeAll(async () => {
      capture = await MysqlCapture.open({ deprecateEof, database: fixture.database });
      await capture.exec("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO'");
      const table = `types_rt_${deprecateEof ? "d" : "e"}`;
      // What the client sees of MariaDB's JSON is LONGTEXT: the copy has no json_valid check.
      await capture.exec(`CREATE TABLE ${table} LIKE types`);
      await capture.exec(`ALTER TABLE ${table} MODIFY t_json LONGTEXT`);
      const prepared = await capture.command(comStmtPrepare("SELECT * FROM types ORDER BY id"));
      statementId = preparedId(prepared.packets);
      const insert = await capture.command(comStmtPrepare(`INSERT INTO ${table} VALUES (${TYPE_COLUMNS.map(() => "?").join(", ")})`));
      insertId = preparedId(insert.packets);
    });

    afterAll(async () => {
      await capture.quit();
    });

    /** Inserts masked rows into the copy table in strict mode; the server must take them without a warning. */
    async function roundTrip(columns: readonly mysql.ColumnDefinition41[], rows: readonly mysql.MysqlRow[], format: "text" | "binary"): Promise<void> {
      const table = `types_rt_${deprecateEof ? "d" : "e"}`;
      await capture.exec(`DELETE FROM ${table}`);
      for (const row of rows) {
        // ENUM's '' is its error value: readable, but strict mode refuses to store it (checked below).
        const values = row.map((value, index) => (mysqlValueKind(columns[index] as mysql.ColumnDefinition41) === "enum" ? null : value));
        const exchange =
          format === "binary"
            ? await capture.command(comStmtExecute(insertId, values.map((value, index) => parameterFor(columns[index] as mysql.ColumnDefinition41, value))))
            : await capture.query(`INSERT INTO ${table} VALUES (${values.map((value, index) => literalFor(columns[index] as mysql.ColumnDefinition41, value)).join(", ")})`);
        const [answer] = exchange.packets;
        if (answer === undefined) throw new Error("no answer");
        if (answer.payload[0] === 0xff) throw new Error(`the server refused a masked ${format} row: ${mysql.decodeErr(answer.payload).message}`);
        expect(mysql.decodeOk(answer.payload, caps())).toMatchObject({ affectedRows: 1, warnings: 0 });
      }
    }

    for (const format of ["text", "binary"] as const) {
      for (const style of STYLES) {
        it(`masks ${format} rows of every common type with \`${style}\`: valid for the type, accepted back by the server, no canary left`, async () => {
          const exchange = format === "text" ? await capture.query("SELECT * FROM types ORDER BY id") : await capture.command(comStmtExecute(statementId));
          expectCanaries(Buffer.concat(exchange.packets.map((packet) => packet.bytes)));
          const run = maskSteps([{ exchange, policy: maskAll(style) }], { capabilities: caps(), detectors });
          const outputs = run.outputs[0] ?? [];
          const bytes = Buffer.concat(outputs.map((output) => output.out));
          expectNoCanaries(bytes, `${format} ${style}`);
          const { results } = clientView(exchange.command, outputs, caps());
          expect(results).toHaveLength(1);
          const [{ columns, rows } = { columns: [], rows: [] }] = results;
          expect(rows).toHaveLength(3);
          for (const row of rows) {
            row.forEach((value, index) => {
              const column = columns[index] as mysql.ColumnDefinition41;
              if (style === "null" && column.name !== "id") expect(value, column.name).toBeNull();
              expectValid(column, value, format);
            });
          }
          // Row 2 is all NULL and stays so.
          expect(rows[1]?.slice(1).every((value) => value === null)).toBe(true);
          // Masked values counted by column; the clear id column not at all.
          expect(run.counts.masked.get(`${fixture.database}.types.t_varchar`)).toBe(style === "null" ? 2 : 2);
          expect(run.counts.masked.has(`${fixture.database}.types.id`)).toBe(false);
          await roundTrip(columns, rows, format);
          // Only the rows changed: the column definitions went out as they came.
          for (const output of outputs) if (output.event.kind !== "row") expect(output.out).toBe(output.packet.bytes);
        });
      }
    }

    it("masks ENUM to '', the value MySQL reads as ENUM's error value (index 0)", async () => {
      await capture.exec("CREATE TEMPORARY TABLE enum_check (e ENUM('red', 'green'))");
      await capture.exec("SET SESSION sql_mode = ''");
      await capture.exec("INSERT INTO enum_check VALUES ('')");
      await capture.exec("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO'");
      const exchange = await capture.query("SELECT e, e + 0 FROM enum_check");
      const rows = clientView(exchange.command, maskSteps([{ exchange }], { capabilities: caps() }).outputs[0] ?? [], caps()).results[0]?.rows;
      expect(rows?.map((row) => row.map((value) => value?.toString()))).toEqual([["", "0"]]);
      const masked = maskSteps([{ exchange: await capture.query("SELECT t_enum FROM types WHERE id = 1"), policy: maskAll("pseudonym") }], { capabilities: caps() });
      expect(masked.outputs[0]?.find((output) => output.event.kind === "row")?.out.subarray(4)).toEqual(Buffer.from([0]));
    });

    it("gives the same pseudonyms in text and binary rows, and the same for the same value (joins and GROUP BY hold)", async () => {
      const sql = "SELECT email, n FROM people WHERE id <= 2 UNION ALL SELECT email, n FROM people WHERE id <= 2";
      const text = await capture.query(sql);
      const prepared = await capture.command(comStmtPrepare(sql));
      const binary = await capture.command(comStmtExecute(preparedId(prepared.packets)));
      const policy: Policy = () => ({ style: "pseudonym" });
      const read = (exchange: typeof text) => {
        const run = maskSteps([{ exchange, policy }], { capabilities: caps() });
        return clientView(exchange.command, run.outputs[0] ?? [], caps()).results[0]?.rows ?? [];
      };
      const fromText = read(text).map((row) => [row[0]?.toString(), row[1]?.toString()]);
      const fromBinary = read(binary).map((row) => [row[0]?.toString(), String(row[1]?.readInt32LE())]);
      expect(fromBinary).toEqual(fromText);
      expect(fromText[0]).toEqual(fromText[2]);
      expect(fromText[0]).not.toEqual(fromText[1]);
      expect(fromText[0]?.[0]).toMatch(/^psd_[a-z2-7]{16}$/);
    });

    it("passes untouched result sets through as the very same Buffers: clear, and detect without a hit", async () => {
      const steps = [
        { exchange: await capture.query("SELECT * FROM types ORDER BY id"), policy: (() => "clear") as Policy },
        { exchange: await capture.command(comStmtExecute(statementId)), policy: (() => "clear") as Policy },
        { exchange: await capture.query("SELECT id, t_int, t_date, t_blob, t_short FROM types ORDER BY id"), policy: (() => "detect") as Policy },
        { exchange: await capture.query("SELECT 1; SELECT * FROM no_such_table") },
        { exchange: await capture.command(Buffer.from([M.COM_STATISTICS])) },
      ];
      const run = maskSteps(steps, { capabilities: caps(), detectors });
      for (const outputs of run.outputs) for (const output of outputs) expect(output.out).toBe(output.packet.bytes);
      expect(run.counts.masked.size).toBe(0);
      expect(run.counts.detected.size).toBe(0);
    });

    it("runs the content detectors over text columns decided `detect`, and only those", async () => {
      const exchange = await capture.query("SELECT id, email, note, n FROM people WHERE id <= 2 ORDER BY id");
      const run = maskSteps([{ exchange, policy: (column) => (column.name === "email" ? "clear" : "detect") }], { capabilities: caps(), detectors });
      const rows = clientView(exchange.command, run.outputs[0] ?? [], caps()).results[0]?.rows ?? [];
      expect(rows.map((row) => row.map((value) => value?.toString() ?? null))).toEqual([
        ["1", CANARIES.varchar, "card [masked:card_number] and [masked:email]", "1"],
        ["2", "carol@example.org", "nothing to see", "2"],
      ]);
      expect(Object.fromEntries(run.counts.detected)).toEqual({ card_number: 1, email: 1 });
      // The untouched second row went out as it came.
      const rowOutputs = (run.outputs[0] ?? []).filter((output) => output.event.kind === "row");
      expect(rowOutputs[0]?.out).not.toBe(rowOutputs[0]?.packet.bytes);
      expect(rowOutputs[1]?.out).toBe(rowOutputs[1]?.packet.bytes);
    });

    it("masks `uncertain` columns with redact, fail closed, and counts them once per result set", async () => {
      const exchange = await capture.query("SELECT id, CONCAT(t_varchar, '!') AS c, t_int + 1 AS n FROM types ORDER BY id");
      const run = maskSteps([{ exchange, policy: (column) => (column.name === "id" ? "clear" : "uncertain") }], { capabilities: caps() });
      const rows = clientView(exchange.command, run.outputs[0] ?? [], caps()).results[0]?.rows ?? [];
      expect(rows[0]?.map((value) => value?.toString() ?? null)).toEqual(["1", "[masked]", "0"]);
      expect(run.counts.uncertain).toBe(2);
      expect(run.counts.masked.get("(uncertain)")).toBe(4);
      expectNoCanaries(Buffer.concat((run.outputs[0] ?? []).map((output) => output.out)), "uncertain");
    });

    it("decides each result of a multi-statement string and of a CALL on its own", async () => {
      const multi = await capture.query("SELECT t_varchar FROM types WHERE id = 1; SELECT t_varchar FROM types WHERE id = 1; SELECT t_blob FROM types WHERE id = 1");
      const call = await capture.query("CALL two_results()");
      const seen: number[] = [];
      const policy: Policy = (column, _index, resultIndex) => {
        seen.push(resultIndex);
        return resultIndex === 1 || column.name === "id" ? "clear" : { style: "redact" };
      };
      const run = maskSteps([{ exchange: multi, policy }, { exchange: call, policy }], { capabilities: caps() });
      const [multiView, callView] = [clientView(multi.command, run.outputs[0] ?? [], caps()), clientView(call.command, run.outputs[1] ?? [], caps())];
      expect(multiView.results.map((result) => result.rows[0]?.[0]?.toString())).toEqual(["[masked]", CANARIES.varchar, "[masked]"]);
      expect(callView.results.map((result) => result.rows.map((row) => row.map((value) => value?.toString() ?? null)))).toEqual([
        [
          ["1", "[masked]"],
          ["2", null],
          ["3", "[masked]"],
        ],
        [[CANARIES.int.toString(), CANARIES.date, CANARIES.blob]],
      ]);
      expect(seen).toEqual([0, 1, 2, 0, 0, 1, 1, 1]);
    });

    it("masks the rows of a cursor (COM_STMT_FETCH) as the EXECUTE that opened it decided", async () => {
      const prepared = await capture.command(comStmtPrepare("SELECT id, t_varchar, t_date, t_json, t_blob FROM types ORDER BY id"));
      const id = preparedId(prepared.packets);
      const steps = [
        { exchange: prepared },
        { exchange: await capture.command(comStmtExecute(id, [], 1)), policy: maskAll("pseudonym") },
        { exchange: await capture.command(comStmtFetch(id, 2)) },
        { exchange: await capture.command(comStmtFetch(id, 2)) },
      ];
      expectCanaries(Buffer.concat(steps.flatMap((step) => step.exchange.packets.map((packet) => packet.bytes))));
      const run = maskSteps(steps, { capabilities: caps() });
      expect(run.counts.policyCalls).toBe(5);
      const views = clientViews(steps.map((step, index) => ({ command: step.exchange.command, outputs: run.outputs[index] ?? [] })), caps());
      const fetched = views.slice(2).flatMap((view) => view.results);
      expect(fetched.map((result) => result.rows.length)).toEqual([2, 1]);
      for (const result of fetched) for (const row of result.rows) row.forEach((value, index) => expectValid(result.columns[index] as mysql.ColumnDefinition41, value, "binary"));
      expectNoCanaries(Buffer.concat(run.outputs.flat().map((output) => output.out)), "cursor");
    });

    it("scrubs error messages with the detectors, and withholds them for a statement that reads sensitive columns", async () => {
      const refused = await capture.query("INSERT INTO people (n) VALUES ('bob@example.com')");
      const [packet] = refused.packets;
      expect(mysql.decodeErr(packet?.payload ?? Buffer.alloc(0)).message).toContain("bob@example.com");
      const run = maskSteps([{ exchange: refused }, { exchange: refused, sensitive: true }], { capabilities: caps(), detectors });
      const [scrubbed, withheld] = run.outputs.map((outputs) => {
        const out = outputs[0]?.out ?? Buffer.alloc(0);
        expect(out[3]).toBe(1);
        return mysql.decodeErr(out.subarray(4));
      });
      expect(scrubbed).toMatchObject({ code: 1366, sqlState: "22007" });
      expect(scrubbed?.message).toMatch(/^Incorrect integer value: '\[masked:email\]' for column/);
      expect(withheld).toEqual({ code: 1366, sqlState: "22007", message: WITHHELD_MESSAGE });
      // Without detectors and not sensitive, the ERR goes out untouched.
      const plain = maskSteps([{ exchange: refused }], { capabilities: caps() });
      expect(plain.outputs[0]?.[0]?.out).toBe(refused.packets[0]?.bytes);
    });

    it("withholds SHOW WARNINGS messages while the warnings may come from a statement that read sensitive columns", async () => {
      const sensitiveCast = "SELECT CAST(email AS SIGNED) AS x FROM people WHERE id = 1";
      const maskX: Policy = () => ({ style: "redact" });
      const steps = [
        { exchange: await capture.query(sensitiveCast), policy: maskX, sensitive: true },
        { exchange: await capture.query("SHOW WARNINGS"), policy: (() => "detect") as Policy },
        { exchange: await capture.query("SELECT 1"), policy: (() => "detect") as Policy },
        { exchange: await capture.query("SHOW WARNINGS"), policy: (() => "detect") as Policy },
        { exchange: await capture.query("SELECT CAST('dave@example.com' AS SIGNED)"), policy: (() => "detect") as Policy },
        { exchange: await capture.query("SHOW WARNINGS"), policy: (() => "detect") as Policy },
        // The masked column alone marks the statement, whatever lineage said.
        { exchange: await capture.query(`${sensitiveCast}; SHOW WARNINGS`), policy: ((_c, _i, resultIndex) => (resultIndex === 0 ? { style: "redact" } : "detect")) as Policy },
      ];
      // The server keeps the sensitive statement's warning across `SELECT 1`: withholding it matters.
      expect(steps[3]?.exchange.packets.some((packet) => packet.payload.includes(Buffer.from(CANARIES.varchar)))).toBe(true);
      const run = maskSteps(steps, { capabilities: caps(), detectors });
      const message = (index: number, result = 0) => clientView(steps[index]?.exchange.command ?? Buffer.alloc(0), run.outputs[index] ?? [], caps()).results[result]?.rows.map((row) => row.map((value) => value?.toString() ?? null));
      expect(message(1)).toEqual([["Warning", "1292", WITHHELD_MESSAGE]]);
      expect(message(3)).toEqual([["Warning", "1292", WITHHELD_MESSAGE]]);
      expect(message(5)).toEqual([["Warning", "1292", "Truncated incorrect INTEGER value: '[masked:email]'"]]);
      expect(message(6, 1)).toEqual([["Warning", "1292", WITHHELD_MESSAGE]]);
      expectNoCanaries(Buffer.concat(run.outputs.flat().map((output) => output.out)), "warnings");
    });
  });
}

describe("MysqlMasker with MariaDB's extended metadata", () => {
  it("masks MariaDB's JSON (LONGTEXT with format json) to valid JSON the json_valid check accepts", async () => {
    const capture = await MysqlCapture.open({ deprecateEof: true, database: fixture.database, mariadbCapabilities: mariadbCapabilities.MARIADB_CLIENT_EXTENDED_METADATA });
    try {
      expect(capture.mariadbCapabilities).toBe(mariadbCapabilities.MARIADB_CLIENT_EXTENDED_METADATA);
      const exchange = await capture.query("SELECT t_json, t_varchar FROM types ORDER BY id");
      const options = { capabilities: capture.capabilities, mariadbCapabilities: capture.mariadbCapabilities };
      const run = maskSteps([{ exchange, policy: maskAll("redact", []) }], options);
      const { results } = clientView(exchange.command, run.outputs[0] ?? [], capture.capabilities, capture.mariadbCapabilities);
      const [first] = results;
      expect(first?.columns[0]?.extendedMetadata?.toString("latin1")).toContain("json");
      expect(first?.rows.map((row) => row[0]?.toString() ?? null)).toEqual(['"[masked]"', null, '"[masked]"']);
      expect(first?.rows[0]?.[1]?.toString()).toBe("[masked]");
      await capture.exec("CREATE TEMPORARY TABLE json_copy (j JSON)");
      await capture.exec(`INSERT INTO json_copy VALUES ('${first?.rows[0]?.[0]?.toString() ?? ""}')`);
    } finally {
      await capture.quit();
    }
  });
});

describe("MysqlMasker and 16 MiB packets", () => {
  const capabilities = 0x01000000 | 0x200 | 0x8000 | 0x80000; // DEPRECATE_EOF, PROTOCOL_41, SECURE_CONNECTION, PLUGIN_AUTH
  const column = (name: string, type: number, columnLength: number): Buffer =>
    mysql.encodeColumnDefinition41({ catalog: "def", schema: "s", table: "t", orgTable: "t", name, orgName: name, characterSet: 45, columnLength, type, flags: 0, decimals: 0 });

  /** A server answer as the framer gives it: column count, two definitions, rows, the OK that ends it. */
  function response(rows: readonly (readonly Buffer[])[]): MysqlPacket[] {
    const payloads = [mysql.encodeColumnCount(2), column("a", 253, 256), column("b", 251, 0xffffffff), ...rows.map((row) => mysql.encodeTextRow(row)), mysql.encodeOk({ eof: true, statusFlags: 2 }, capabilities)];
    let sequenceId = 1;
    const wire = Buffer.concat(
      payloads.map((payload) => {
        const bytes = mysql.encodePacket(sequenceId, payload);
        sequenceId = mysql.nextSequenceId({ sequenceId, payload });
        return bytes;
      }),
    );
    return createMysqlFramer({ maxMessageBytes: 1 << 26 }).push(wire);
  }

  function physicalSequenceIds(bytes: Buffer): number[] {
    const ids: number[] = [];
    for (let offset = 0; offset < bytes.length; offset += 4 + bytes.readUIntLE(offset, 3)) ids.push(bytes[offset + 3] ?? -1);
    return ids;
  }

  for (const [name, a, filler, style] of [
    ["grows past 16 MiB", Buffer.from("x"), 0xffffff - 10, "pseudonym"],
    ["shrinks under 16 MiB", Buffer.alloc(0xffffff, 0x61), 10, "redact"],
  ] as const) {
    it(`renumbers the rest of the response when a masked row ${name}`, () => {
      const command = mysql.encodeComQuery("SELECT a, b FROM t");
      const packets = response([[a, Buffer.alloc(filler, 0x62)], [Buffer.from("y"), Buffer.from("z")]]);
      const tracker = new MysqlResponseTracker({ capabilities });
      const masker = new MysqlMasker(tracker, { columnPolicy: (definition) => (definition.name === "a" ? { style } : "clear"), key: KEY, events: { masked: () => {}, detected: () => {}, uncertain: () => {} } });
      tracker.onCommand(command);
      const out = Buffer.concat(packets.map((packet) => masker.onServerPacket(packet)));
      // Every physical packet counts on from the last, as a client checks.
      const ids = physicalSequenceIds(out);
      expect(ids).toEqual(ids.map((_, index) => index + 1));
      expect(ids.length).not.toBe(physicalSequenceIds(Buffer.concat(packets.map((packet) => packet.bytes))).length);
      const { results, events } = clientView(command, [{ packet: packets[0] as MysqlPacket, out, event: tracker.lastEvent as never }], capabilities);
      expect(events.at(-1)?.done).toBe(true);
      expect(results[0]?.rows[1]?.map((value) => value?.toString())).toEqual([style === "redact" ? "[masked]" : expect.stringMatching(/^psd_/), "z"]);
      expect(results[0]?.rows[0]?.[1]?.length).toBe(filler);
    });
  }
});
