import { mysql, mysqlCommands as M } from "@airlock/wire";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDetectors } from "../../../src/mask/detectors.js";
import { MysqlMasker } from "../../../src/mask/mysql-masker.js";
import { MysqlResultRecorder } from "../../../src/recording/mysql-results.js";
import type { SessionRecording } from "../../../src/recording/recorder.js";
import { MysqlResponseTracker } from "../../../src/session/mysql-responses.js";
import { CANARIES, comStmtExecute, comStmtFetch, comStmtPrepare, createMaskerFixture, MysqlCapture, preparedId, type CapturedExchange, type MaskerFixture } from "../../support/mysql-capture.js";
import { expectNoCanaries, KEY, maskAll, type Policy } from "./harness.js";

let fixture: MaskerFixture;
let capture: MysqlCapture;

beforeAll(async () => {
  fixture = await createMaskerFixture();
  capture = await MysqlCapture.open({ deprecateEof: true, database: fixture.database });
});

afterAll(async () => {
  await capture.quit();
  await fixture.drop();
});

/** A recording that keeps its notes in memory. */
function memoryRecording(): SessionRecording & { notes: Record<string, unknown>[] } {
  const notes: Record<string, unknown>[] = [];
  return {
    notes,
    path: "(memory)",
    append: async (event) => {
      notes.push({ ...event });
    },
    note: (event) => notes.push({ ...event }),
    sync: async () => {},
    finish: async () => ({ records: notes.length, lastHash: "" }),
    failed: false,
  };
}

/** Runs steps through tracker, masker and recorder as a session wires them; returns the notes. */
function record(steps: readonly { exchange: CapturedExchange; policy?: Policy; sensitive?: boolean }[], sampleRows = 2): Record<string, unknown>[] {
  const recording = memoryRecording();
  const tracker = new MysqlResponseTracker({ capabilities: capture.capabilities });
  const policies = new Map<number, { policy?: Policy; sensitive?: boolean }>();
  const masker = new MysqlMasker(tracker, {
    columnPolicy: (column, index, resultIndex, command) => policies.get(command.id)?.policy?.(column, index, resultIndex) ?? "clear",
    detectors: createDetectors(["email", "card_number"]),
    key: KEY,
    events: { masked: () => {}, detected: () => {}, uncertain: () => {} },
    readsSensitive: (command) => policies.get(command.id)?.sensitive === true,
  });
  const results = new MysqlResultRecorder(recording, tracker, sampleRows);
  for (const step of steps) {
    const command = tracker.onCommand(step.exchange.command);
    policies.set(command.id, step);
    results.onCommand(step.exchange.command);
    for (const packet of step.exchange.packets) results.onServerPacket(packet, masker.onServerPacket(packet));
  }
  return recording.notes;
}

describe("MysqlResultRecorder", () => {
  it("records columns, the first rows after masking, the row count, bytes and time", async () => {
    const notes = record([{ exchange: await capture.query("SELECT id, t_varchar, t_int, t_blob, t_bit FROM types ORDER BY id"), policy: maskAll("redact") }]);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatchObject({
      type: "result",
      columns: ["id", "t_varchar", "t_int", "t_blob", "t_bit"],
      rows: [
        ["1", "[masked]", "0", "\\x5b6d61736b65645d", "\\x0000"],
        ["2", null, null, null, null],
      ],
      rowCount: 3,
    });
    expect(notes[0]?.bytes).toBeGreaterThan(100);
    expect(typeof notes[0]?.ms).toBe("number");
    expectNoCanaries(Buffer.from(JSON.stringify(notes)), "recording");
  });

  it("renders binary rows as the text protocol shows them", async () => {
    const prepared = await capture.command(comStmtPrepare("SELECT id, t_tiny, t_big_u, t_double, t_date, t_datetime, t_time3, t_year, t_varchar FROM types ORDER BY id"));
    const execute = await capture.command(comStmtExecute(preparedId(prepared.packets)));
    const notes = record([{ exchange: prepared }, { exchange: execute }], 3);
    expect(notes[0]).toMatchObject({ type: "result", tag: `prepared statement ${preparedId(prepared.packets)}`, params: 0, columns: ["id", "t_tiny", "t_big_u", "t_double", "t_date", "t_datetime", "t_time3", "t_year", "t_varchar"] });
    expect(notes[1]).toMatchObject({
      rows: [
        ["1", "77", CANARIES.bigUnsigned.toString(), String(CANARIES.double), CANARIES.date, CANARIES.datetime, "-101:02:03.456", "1987", CANARIES.varchar],
        ["2", null, null, null, null, null, null, null, null],
        ["3", "-128", "18446744073709551615", "-2.25e+100", "1000-01-01", "9999-12-31 23:59:59.999999", "838:59:58.999", "2155", "ünïcødé ✓ 😀"],
      ],
      rowCount: 3,
    });
  });

  it("records one result per statement: OK info, result sets, and the error that ended the string, scrubbed", async () => {
    const notes = record([{ exchange: await capture.query("INSERT INTO people (email, n) VALUES ('r@example.net', 7); SELECT n FROM people WHERE email = 'r@example.net'; INSERT INTO people (n) VALUES ('bob@example.com')") }]);
    expect(notes).toHaveLength(3);
    expect(notes[0]).toMatchObject({ type: "result", tag: "OK", affectedRows: 1, rowCount: 0 });
    expect(Number(notes[0]?.lastInsertId)).toBeGreaterThan(2);
    expect(notes[1]).toMatchObject({ columns: ["n"], rows: [["7"]], rowCount: 1 });
    expect(notes[2]).toMatchObject({ error: { code: "1366", sqlState: "22007", message: expect.stringContaining("[masked:email]") } });
    expect(JSON.stringify(notes)).not.toContain("bob@example.com");
  });

  it("records a cursor's opening and its fetches, the statistics string and a LOCAL INFILE request", async () => {
    const prepared = await capture.command(comStmtPrepare("SELECT id, t_varchar FROM types ORDER BY id"));
    const id = preparedId(prepared.packets);
    const notes = record([
      { exchange: prepared },
      { exchange: await capture.command(comStmtExecute(id, [], 1)), policy: maskAll("pseudonym") },
      { exchange: await capture.command(comStmtFetch(id, 2)) },
      { exchange: await capture.command(comStmtFetch(id, 2)) },
      { exchange: await capture.command(Buffer.from([M.COM_STATISTICS])) },
    ]);
    expect(notes.map((note) => note.tag)).toEqual([`prepared statement ${id}`, "cursor opened", "fetch", "fetch", "statistics"]);
    expect(notes[2]).toMatchObject({ columns: ["id", "t_varchar"], rowCount: 2, rows: [["1", expect.stringMatching(/^psd_/)], ["2", null]] });
    expect(notes[3]).toMatchObject({ rowCount: 1 });
    expect((notes[4]?.rows as string[][])[0]?.[0]).toMatch(/^Uptime: /);
    expectNoCanaries(Buffer.from(JSON.stringify(notes)), "cursor recording");

    const recording = memoryRecording();
    const tracker = new MysqlResponseTracker({ capabilities: capture.capabilities });
    const results = new MysqlResultRecorder(recording, tracker, 2);
    const command = mysql.encodeComQuery("LOAD DATA LOCAL INFILE 'rows.csv' INTO TABLE people (n)");
    tracker.onCommand(command);
    results.onCommand(command);
    const [request] = await capture.raw(command, 1);
    capture.send(2, Buffer.alloc(0));
    const ok = await capture.next();
    for (const packet of [request, ok]) {
      if (packet === undefined) throw new Error("no packet");
      tracker.onServerPacket(packet);
      results.onServerPacket(packet, undefined);
    }
    expect(recording.notes).toEqual([
      { type: "notice", code: "local_infile", message: "rows.csv" },
      expect.objectContaining({ type: "result", tag: "OK", affectedRows: 0 }),
    ]);
  });
});
