import { mysql, mysqlCapabilities as C, mysqlColumnTypes as T, mysqlCommands as M, mysqlServerStatus as S, WireError, type MysqlPacket } from "@airlock/wire";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isTrackedMysqlCommand, MysqlResponseTracker, type MysqlResponseEvent } from "../../src/session/mysql-responses.js";
import {
  comStatement,
  comStmtExecute,
  comStmtFetch,
  comStmtPrepare,
  createMaskerFixture,
  MysqlCapture,
  preparedId,
  TYPE_COLUMNS,
  type CapturedExchange,
  type MaskerFixture,
} from "../support/mysql-capture.js";

let fixture: MaskerFixture;

beforeAll(async () => {
  fixture = await createMaskerFixture();
});

afterAll(async () => {
  await fixture.drop();
});

/** Feeds one exchange to the tracker; checks that only the last packet ends the response. */
function feed(tracker: MysqlResponseTracker, exchange: CapturedExchange): MysqlResponseEvent[] {
  const command = tracker.onCommand(exchange.command);
  const events = exchange.packets.map((packet) => tracker.onServerPacket(packet));
  const ends = events.map((event) => event.done);
  if (command.expectsResponse) {
    expect(ends, "only the server's last packet ends the response").toEqual(exchange.packets.map((_, index) => index === exchange.packets.length - 1));
  } else expect(events).toEqual([]);
  expect(command.done).toBe(true);
  expect(tracker.idle).toBe(true);
  return events;
}

function kinds(events: readonly MysqlResponseEvent[]): string[] {
  return events.map((event) => event.kind);
}

/** Collapses runs of the same kind: `row*3`. */
function shape(events: readonly MysqlResponseEvent[]): string {
  const out: string[] = [];
  for (const kind of kinds(events)) {
    const last = out[out.length - 1];
    const match = last === undefined ? null : /^(\w+)(?:\*(\d+))?$/.exec(last);
    if (match?.[1] === kind) out[out.length - 1] = `${kind}*${Number(match[2] ?? 1) + 1}`;
    else out.push(kind);
  }
  return out.join(" ");
}

function fieldList(table: string): Buffer {
  return Buffer.concat([Buffer.from([M.COM_FIELD_LIST]), Buffer.from(`${table}\0`)]);
}

for (const deprecateEof of [false, true]) {
  describe(deprecateEof ? "MysqlResponseTracker with CLIENT_DEPRECATE_EOF" : "MysqlResponseTracker with EOF packets", () => {
    let capture: MysqlCapture;
    let tracker: MysqlResponseTracker;
    const cols = deprecateEof ? "" : " eof";

    beforeAll(async () => {
      capture = await MysqlCapture.open({ deprecateEof, database: fixture.database });
      expect((capture.capabilities & C.CLIENT_DEPRECATE_EOF) !== 0).toBe(deprecateEof);
      tracker = new MysqlResponseTracker({ capabilities: capture.capabilities });
    });

    afterAll(async () => {
      await capture.quit();
    });

    it("ends a SELECT of every common type after its last row, text rows checked against their columns", async () => {
      const events = feed(tracker, await capture.query("SELECT * FROM types ORDER BY id"));
      const end = TYPE_COLUMNS.length;
      expect(shape(events)).toBe(`result_set column*${end}${cols} row*3 result_end`);
      const last = events.at(-1);
      if (last?.kind !== "result_end") throw new Error("no result_end");
      expect(last.resultSet.rowCount).toBe(3);
      expect(last.resultSet.format).toBe("text");
      expect(last.resultSet.columns.map((column) => column.name)).toEqual(TYPE_COLUMNS.map(([name]) => name));
      expect(last.cursor).toBe(false);
      expect(last.ok === undefined).toBe(!deprecateEof);
      // The same row event object for every row: no allocation per row.
      const rows = events.filter((event) => event.kind === "row");
      expect(new Set(rows).size).toBe(1);
      const columnEvents = events.filter((event) => event.kind === "column");
      expect(columnEvents.map((event) => event.kind === "column" && event.last)).toEqual(TYPE_COLUMNS.map((_, index) => index === end - 1));
    });

    it("follows a multi-statement string to its last result, OK packets included", async () => {
      const events = feed(tracker, await capture.query("SELECT 1 AS one; SET @x = 1; SELECT id FROM types ORDER BY id; DO 1"));
      expect(shape(events)).toBe(`result_set column${cols} row result_end ok result_set column${cols} row*3 result_end ok`);
      const results = events.flatMap((event) => (event.kind === "result_end" ? [event.resultSet.index] : event.kind === "ok" ? [event.resultIndex] : []));
      expect(results).toEqual([0, 1, 2, 3]);
      expect(events[0]?.command.results).toBe(4);
    });

    it("follows CALL of a procedure with two result sets and its final OK", async () => {
      const events = feed(tracker, await capture.query("CALL two_results()"));
      expect(shape(events)).toBe(`result_set column*2${cols} row*3 result_end result_set column*3${cols} row result_end ok`);
      const ok = events.at(-1);
      expect(ok?.kind === "ok" && (ok.ok.statusFlags & S.SERVER_MORE_RESULTS_EXISTS) === 0).toBe(true);
    });

    it("ends at an ERR, also after earlier results of a multi-statement string", async () => {
      const alone = feed(tracker, await capture.query("SELECT * FROM no_such_table"));
      expect(alone).toHaveLength(1);
      expect(alone[0]).toMatchObject({ kind: "err", err: { code: 1146, sqlState: "42S02" }, done: true });
      const events = feed(tracker, await capture.query("SELECT 1; SELECT * FROM no_such_table; SELECT 3"));
      expect(shape(events)).toBe(`result_set column${cols} row result_end err`);
      expect(feed(tracker, await capture.query(""))[0]).toMatchObject({ kind: "err", err: { code: 1065 } });
    });

    it("reports OK info: affected rows, last insert id, warnings, info text, transaction status", async () => {
      const [begin] = feed(tracker, await capture.query("BEGIN"));
      expect(begin?.kind).toBe("ok");
      expect(tracker.inTransaction).toBe(true);
      const [insert] = feed(tracker, await capture.query("INSERT INTO people (email, n) VALUES ('x@example.net', 3), ('y@example.net', 4)"));
      if (insert?.kind !== "ok") throw new Error("no OK");
      expect(insert.ok).toMatchObject({ affectedRows: 2, info: "Records: 2  Duplicates: 0  Warnings: 0" });
      expect(Number(insert.ok.lastInsertId)).toBeGreaterThan(2);
      expect(insert.ok.statusFlags & S.SERVER_STATUS_IN_TRANS).not.toBe(0);
      const [update] = feed(tracker, await capture.query("UPDATE people SET n = n + 1 WHERE email LIKE '%.net'"));
      expect(update).toMatchObject({ kind: "ok", ok: { affectedRows: 2, info: expect.stringMatching(/^Rows matched: 2 {2}Changed: 2/) } });
      feed(tracker, await capture.query("ROLLBACK"));
      expect(tracker.inTransaction).toBe(false);
      const [warned] = feed(tracker, await capture.query("SELECT CAST('12abc' AS SIGNED)")).filter((event) => event.kind === "result_end");
      expect(warned).toMatchObject({ kind: "result_end", warnings: 1 });
    });

    it("follows SHOW WARNINGS, COM_FIELD_LIST, COM_STATISTICS, COM_PING, COM_INIT_DB and COM_SET_OPTION", async () => {
      feed(tracker, await capture.query("SELECT CAST('zz' AS SIGNED)"));
      const warnings = feed(tracker, await capture.query("SHOW WARNINGS"));
      expect(shape(warnings)).toBe(`result_set column*3${cols} row result_end`);
      const fields = feed(tracker, await capture.command(fieldList("people")));
      expect(shape(fields)).toBe("column*4 result_end");
      const fieldsEnd = fields.at(-1);
      expect(fieldsEnd?.kind === "result_end" && fieldsEnd.resultSet.fieldList).toBe(true);
      expect(fieldsEnd?.kind === "result_end" && fieldsEnd.resultSet.columns.map((column) => column.name)).toEqual(["id", "email", "n", "note"]);
      expect(feed(tracker, await capture.command(fieldList("no_such_table")))[0]).toMatchObject({ kind: "err", err: { code: 1146 } });
      const [statistics] = feed(tracker, await capture.command(Buffer.from([M.COM_STATISTICS])));
      expect(statistics?.kind === "statistics" && statistics.text).toMatch(/^Uptime: \d+/);
      expect(kinds(feed(tracker, await capture.command(Buffer.from([M.COM_PING]))))).toEqual(["ok"]);
      expect(kinds(feed(tracker, await capture.command(mysql.encodeCommand(M.COM_INIT_DB, fixture.database))))).toEqual(["ok"]);
      expect(kinds(feed(tracker, await capture.command(mysql.encodeCommand(M.COM_INIT_DB, "no_such_db_airlock"))))).toEqual(["err"]);
      // MYSQL_OPTION_MULTI_STATEMENTS_ON: an EOF without CLIENT_DEPRECATE_EOF, an OK with it.
      expect(kinds(feed(tracker, await capture.command(Buffer.from([M.COM_SET_OPTION, 0, 0]))))).toEqual([deprecateEof ? "ok" : "eof"]);
    });

    it("follows COM_STMT_PREPARE and remembers the statement's parameter and column definitions", async () => {
      const exchange = await capture.command(comStmtPrepare("SELECT id, t_varchar, t_int FROM types WHERE id >= ? AND t_int <> ? ORDER BY id"));
      const events = feed(tracker, exchange);
      expect(shape(events)).toBe(`prepare_ok param*2${cols} prepare_column*3${cols}`);
      const id = preparedId(exchange.packets);
      const statement = tracker.statement(id);
      expect(statement).toMatchObject({ statementId: id, numParams: 2, numColumns: 3 });
      expect(statement?.columns.map((column) => column.name)).toEqual(["id", "t_varchar", "t_int"]);
      expect(statement?.params).toHaveLength(2);
      // Neither parameters nor columns, or only one block.
      expect(shape(feed(tracker, await capture.command(comStmtPrepare("DO 1"))))).toBe("prepare_ok");
      expect(shape(feed(tracker, await capture.command(comStmtPrepare("SELECT 1 AS a"))))).toBe(`prepare_ok prepare_column${cols}`);
      expect(shape(feed(tracker, await capture.command(comStmtPrepare("DO ?"))))).toBe(`prepare_ok param${cols}`);
      expect(shape(feed(tracker, await capture.command(comStmtPrepare("SELEKT nothing"))))).toBe("err");
    });

    it("follows COM_STMT_EXECUTE with binary rows of every type, checked against the column types", async () => {
      const prepared = await capture.command(comStmtPrepare("SELECT * FROM types ORDER BY id"));
      feed(tracker, prepared);
      const id = preparedId(prepared.packets);
      const events = feed(tracker, await capture.command(comStmtExecute(id)));
      expect(shape(events)).toBe(`result_set column*${TYPE_COLUMNS.length}${cols} row*3 result_end`);
      const end = events.at(-1);
      if (end?.kind !== "result_end") throw new Error("no result_end");
      expect(end.resultSet.format).toBe("binary");
      expect(end.resultSet.columnTypes).toContain(T.MYSQL_TYPE_NEWDECIMAL);
      expect(tracker.statement(id)?.cursor).toBeUndefined();
      // Closing has no answer; the statement is forgotten.
      feed(tracker, { command: comStatement(M.COM_STMT_CLOSE, id), packets: [] });
      expect(tracker.statement(id)).toBeUndefined();
    });

    it("follows an EXECUTE that opens a read-only cursor and the COM_STMT_FETCH runs that read it", async () => {
      const prepared = await capture.command(comStmtPrepare("SELECT id, t_varchar, t_date FROM types ORDER BY id"));
      feed(tracker, prepared);
      const id = preparedId(prepared.packets);
      const opened = feed(tracker, await capture.command(comStmtExecute(id, [], 1)));
      expect(shape(opened)).toBe("result_set column*3 result_end");
      const end = opened.at(-1);
      if (end?.kind !== "result_end") throw new Error("no result_end");
      expect(end.cursor).toBe(true);
      expect(end.statusFlags & S.SERVER_STATUS_CURSOR_EXISTS).not.toBe(0);
      expect(tracker.statement(id)?.cursor).toBe(end.resultSet);

      const first = feed(tracker, await capture.command(comStmtFetch(id, 2)));
      expect(shape(first)).toBe("row*2 result_end");
      const row = first[0];
      expect(row?.kind === "row" && row.resultSet.cursorOf).toBe(end.resultSet);
      expect(row?.kind === "row" && row.resultSet.columnTypes).toEqual([T.MYSQL_TYPE_LONG, T.MYSQL_TYPE_VAR_STRING, T.MYSQL_TYPE_DATE]);
      const rest = feed(tracker, await capture.command(comStmtFetch(id, 2)));
      expect(shape(rest)).toBe("row result_end");
      const last = rest.at(-1);
      expect(last?.kind === "result_end" && (last.statusFlags & S.SERVER_STATUS_LAST_ROW_SENT) !== 0).toBe(true);
      expect(tracker.statement(id)?.cursor).toBeUndefined();
      expect(shape(feed(tracker, await capture.command(comStmtFetch(id, 2))))).toBe("err");

      // COM_STMT_RESET closes an open cursor.
      feed(tracker, await capture.command(comStmtExecute(id, [], 1)));
      expect(tracker.statement(id)?.cursor).toBeDefined();
      expect(shape(feed(tracker, await capture.command(comStatement(M.COM_STMT_RESET, id))))).toBe("ok");
      expect(tracker.statement(id)?.cursor).toBeUndefined();
      // An EXECUTE asking for a cursor on a statement without a result set gets a plain OK.
      const insert = await capture.command(comStmtPrepare("DO 1"));
      feed(tracker, insert);
      expect(shape(feed(tracker, await capture.command(comStmtExecute(preparedId(insert.packets), [], 1))))).toBe("ok");
    });

    it("follows a prepared CALL with several binary result sets (CLIENT_PS_MULTI_RESULTS)", async () => {
      const prepared = await capture.command(comStmtPrepare("CALL two_results()"));
      feed(tracker, prepared);
      const events = feed(tracker, await capture.command(comStmtExecute(preparedId(prepared.packets))));
      expect(shape(events)).toBe(`result_set column*2${cols} row*3 result_end result_set column*3${cols} row result_end ok`);
      expect(events.filter((event) => event.kind === "result_end").map((event) => event.kind === "result_end" && event.resultSet.format)).toEqual(["binary", "binary"]);
    });

    it("follows a LOCAL INFILE request, the client's file and the OK", async () => {
      await capture.exec("CREATE TEMPORARY TABLE infile_target (a INT, b VARCHAR(10))");
      const command = mysql.encodeComQuery("LOAD DATA LOCAL INFILE 'airlock.csv' INTO TABLE infile_target FIELDS TERMINATED BY ','");
      const [request] = await capture.raw(command, 1);
      if (request === undefined) throw new Error("no request");
      capture.send(2, Buffer.from("1,one\n2,two\n"));
      capture.send(3, Buffer.alloc(0));
      const ok = await capture.next();
      expect(ok.sequenceId).toBe(4);
      tracker.onCommand(command);
      expect(tracker.onServerPacket(request)).toMatchObject({ kind: "local_infile", filename: "airlock.csv", done: false });
      expect(tracker.onServerPacket(ok)).toMatchObject({ kind: "ok", ok: { affectedRows: 2 }, done: true });
      expect(tracker.idle).toBe(true);
    });

    it("forgets every prepared statement on COM_RESET_CONNECTION", async () => {
      const prepared = await capture.command(comStmtPrepare("SELECT 1"));
      feed(tracker, prepared);
      expect(tracker.statements.size).toBeGreaterThan(0);
      expect(shape(feed(tracker, await capture.command(Buffer.from([M.COM_RESET_CONNECTION]))))).toBe("ok");
      expect(tracker.statements.size).toBe(0);
    });

    it("matches pipelined commands' responses in order, MariaDB's last-prepared statement id included", async () => {
      const exchanges = [
        await capture.command(comStmtPrepare("SELECT id, t_blob FROM types ORDER BY id")),
        await capture.query("SELECT 1; SELECT 2"),
        await capture.command(Buffer.from([M.COM_PING])),
      ];
      const id = preparedId(exchanges[0]?.packets ?? []);
      exchanges.push(await capture.command(comStmtExecute(id, [], 1)), await capture.command(comStmtFetch(id, 10)));
      const fresh = new MysqlResponseTracker({ capabilities: capture.capabilities });
      // All commands first (0xffffffff: the statement prepared last), then every answer.
      const commands = exchanges.map((exchange, index) => fresh.onCommand(index >= 3 ? Buffer.concat([exchange.command.subarray(0, 1), Buffer.alloc(4, 0xff), exchange.command.subarray(5)]) : exchange.command));
      const events = exchanges.flatMap((exchange) => exchange.packets.map((packet) => fresh.onServerPacket(packet)));
      expect(commands.map((command) => command.done)).toEqual([true, true, true, true, true]);
      expect(commands[3]?.statementId).toBe(id);
      expect(events.filter((event) => event.done)).toHaveLength(5);
      expect(events.filter((event) => event.kind === "row" && event.resultSet.cursorOf !== undefined)).toHaveLength(3);
      expect(fresh.idle).toBe(true);
    });
  });
}

describe("MysqlResponseTracker refuses what does not fit", () => {
  let capture: MysqlCapture;
  let select: CapturedExchange;
  let execute: CapturedExchange;
  let prepare: CapturedExchange;
  const capabilities = () => capture.capabilities;

  beforeAll(async () => {
    capture = await MysqlCapture.open({ deprecateEof: false, database: fixture.database });
    select = await capture.query("SELECT * FROM types ORDER BY id");
    prepare = await capture.command(comStmtPrepare("SELECT * FROM types ORDER BY id"));
    execute = await capture.command(comStmtExecute(preparedId(prepare.packets)));
  });

  afterAll(async () => {
    await capture.quit();
  });

  function run(exchanges: readonly CapturedExchange[], packets?: readonly MysqlPacket[]): void {
    const tracker = new MysqlResponseTracker({ capabilities: capabilities() });
    for (const exchange of exchanges) tracker.onCommand(exchange.command);
    for (const packet of packets ?? exchanges.flatMap((exchange) => exchange.packets)) tracker.onServerPacket(packet);
  }

  function packet(sequenceId: number, payload: Buffer): MysqlPacket {
    const bytes = mysql.encodePacket(sequenceId, payload);
    return { sequenceId, payload, bytes };
  }

  function expectWireError(action: () => void, code: string, message?: RegExp): void {
    let error: unknown;
    try {
      action();
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(WireError);
    expect((error as WireError).code).toBe(code);
    if (message !== undefined) expect((error as WireError).message).toMatch(message);
  }

  it("refuses options it cannot honour", () => {
    expect(() => new MysqlResponseTracker({ capabilities: 0 })).toThrow(TypeError);
    expect(() => new MysqlResponseTracker({ capabilities: C.CLIENT_PROTOCOL_41 | C.CLIENT_OPTIONAL_RESULTSET_METADATA })).toThrow(/CLIENT_OPTIONAL_RESULTSET_METADATA/);
    expect(() => new MysqlResponseTracker({ capabilities: C.CLIENT_PROTOCOL_41, mariadbCapabilities: 0x10 })).toThrow(/CACHE_METADATA/);
  });

  it("refuses commands it does not follow and packets with no command pending", () => {
    for (const code of [M.COM_CHANGE_USER, M.COM_BINLOG_DUMP, M.COM_REGISTER_SLAVE, M.COM_BINLOG_DUMP_GTID, M.COM_STMT_BULK_EXECUTE, 0x99]) {
      expect(isTrackedMysqlCommand(code)).toBe(false);
      expectWireError(() => new MysqlResponseTracker({ capabilities: capabilities() }).onCommand(Buffer.from([code, 0, 0, 0, 0])), "unexpected_message", /is not followed/);
    }
    expectWireError(() => new MysqlResponseTracker({ capabilities: capabilities() }).onCommand(Buffer.alloc(0)), "malformed_message");
    expectWireError(() => run([], select.packets.slice(0, 1)), "unexpected_message", /no command was pending/);
    // A response that goes on after its end.
    expectWireError(() => run([select], [...select.packets, ...select.packets.slice(-1)]), "unexpected_message");
  });

  it("refuses a wrong sequence id", () => {
    const [first, ...rest] = select.packets;
    if (first === undefined) throw new Error("no packets");
    expectWireError(() => run([select], [packet(2, first.payload), ...rest]), "malformed_message", /sequence id 2, not 1/);
    const swapped = [...select.packets];
    [swapped[3], swapped[4]] = [swapped[4] as MysqlPacket, swapped[3] as MysqlPacket];
    expectWireError(() => run([select], swapped), "malformed_message");
  });

  it("refuses rows that do not fit their columns, text and binary", () => {
    const rowAt = select.packets.length - 2;
    const row = select.packets[rowAt] as MysqlPacket;
    const cases = [row.payload.subarray(0, row.payload.length - 1), Buffer.concat([row.payload, Buffer.from([0])]), Buffer.concat([row.payload, Buffer.from([0xfb])])];
    for (const payload of cases) {
      const packets = [...select.packets];
      packets[rowAt] = packet(row.sequenceId, payload);
      expectWireError(() => run([select], packets), "malformed_message", /text row does not fit/);
    }
    const binaryAt = execute.packets.length - 2;
    const binaryRow = execute.packets[binaryAt] as MysqlPacket;
    for (const payload of [binaryRow.payload.subarray(0, binaryRow.payload.length - 1), Buffer.concat([binaryRow.payload, Buffer.from([1])])]) {
      const packets = [...execute.packets];
      packets[binaryAt] = packet(binaryRow.sequenceId, payload);
      expectWireError(() => run([prepare, execute], [...prepare.packets, ...packets]), "malformed_message", /binary row does not fit/);
    }
  });

  it("refuses a result set that ends before its column definitions, and a column count of 0", () => {
    const eof = select.packets.at(-1) as MysqlPacket;
    expectWireError(() => run([select], [select.packets[0] as MysqlPacket, select.packets[1] as MysqlPacket, packet(3, eof.payload)]), "unexpected_message", /expected a column definition/);
    // 0 in a 3-byte int<lenenc>, and a column count followed by junk.
    expectWireError(() => run([select], [packet(1, Buffer.from([0xfc, 0x00, 0x00]))]), "malformed_message", /announces 0 columns/);
    expectWireError(() => run([select], [packet(1, Buffer.from([0x02, 0x00]))]), "malformed_message");
  });

  it("never throws anything but a WireError, whatever bytes of a real response are changed", () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (const exchanges of [[select], [prepare, execute]]) {
      const packets = exchanges.flatMap((exchange) => exchange.packets);
      for (let round = 0; round < 400; round++) {
        const mutated = packets.map((original) => {
          if (random() % 4 !== 0) return original;
          const payload = Buffer.from(original.payload);
          const at = random() % Math.max(payload.length, 1);
          if (payload.length > 0) payload[at] = random() & 0xff;
          const cut = random() % 8 === 0 ? payload.subarray(0, random() % (payload.length + 1)) : payload;
          return packet(original.sequenceId, cut);
        });
        try {
          run(exchanges, mutated);
        } catch (error) {
          expect(error, String(error)).toBeInstanceOf(WireError);
        }
      }
    }
  });
});
