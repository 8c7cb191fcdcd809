import { pg as wire } from "@airlock/wire";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exchange, openRaw, startupMessage } from "../support/raw-client.js";
import { startHarness, type Harness } from "../support/harness.js";

async function client(harness: Harness): Promise<pg.Client> {
  const value = new pg.Client({ ...harness.native, user: "ci", database: "orders", password: await harness.token() });
  await value.connect();
  return value;
}

describe("an agent process killed mid-query", () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({ agentProcess: true });
  });
  afterAll(async () => {
    await harness?.close();
  });

  it("gives the client an error within seconds; a new agent process serves new sessions", async () => {
    const victim = await client(harness);
    victim.on("error", () => undefined);
    const running = victim.query("select pg_sleep(60)").then(
      () => "finished",
      (error: { code?: string; message: string }) => error,
    );
    // The query is running once the database reports it.
    const admin = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database: "postgres" });
    await admin.connect();
    for (;;) {
      const found = await admin.query("select 1 from pg_stat_activity where query = 'select pg_sleep(60)' and state = 'active'");
      if (found.rowCount === 1) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const killedAt = Date.now();
    harness.killAgent();
    const outcome = await running;
    expect(Date.now() - killedAt).toBeLessThan(5_000);
    expect(outcome).toMatchObject({ code: "08006", message: "the connection to the database was lost: the agent link closed" });

    await harness.startAgent();
    const next = await client(harness);
    expect((await next.query("select 'back' as s")).rows).toEqual([{ s: "back" }]);
    await next.end();
    await admin.end();
  });
});

describe("the gateway and its clients", () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({ maxMessageBytes: 1 << 20 });
  });
  afterAll(async () => {
    await harness?.close();
  });

  it("the agent reconnects by itself after the gateway restarts", async () => {
    const before = await client(harness);
    before.on("error", () => undefined);
    await harness.restartGateway();
    await harness.gateway.hub.waitForAgent("vpc-a");
    const after = await client(harness);
    expect((await after.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
    await after.end();
  });

  const bad: [string, () => Buffer[]][] = [
    ["a startup length of 2 GiB", () => [Buffer.from([0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0])]],
    ["a startup length below the minimum", () => [Buffer.from([0, 0, 0, 4, 0, 3, 0, 0])]],
    ["an unsupported protocol version", () => [Buffer.from([0, 0, 0, 8, 0, 9, 0, 0])]],
    ["a typed message before startup completes", () => [startupMessage(), wire.encodeQuery("select 1")]],
    ["a password message with a huge length", () => [startupMessage(), Buffer.from([0x70, 0x7f, 0xff, 0xff, 0xff])]],
    ["random bytes", () => [Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n")]],
  ];

  it.each(bad)("answers %s with a FATAL error and closes, and other sessions go on", async (_name, bytes) => {
    const bystander = await client(harness);
    const socket = await openRaw(harness.native.port);
    const result = await exchange(socket, bytes());
    expect(result.closed).toBe(true);
    expect(result.error?.S).toBe("FATAL");
    expect(["08P01", "28P01", "0A000"]).toContain(result.error?.C);
    expect((await bystander.query("select 'untouched' as s")).rows).toEqual([{ s: "untouched" }]);
    await bystander.end();
  });

  it("refuses an oversized message mid-session without allocating it, and keeps serving", async () => {
    const token = await harness.token();
    const socket = await openRaw(harness.native.port);
    const header = Buffer.alloc(5);
    header[0] = 0x51; // Query
    header.writeInt32BE(512 << 20, 1);
    const result = await exchange(socket, [startupMessage(), wire.encodePasswordMessage(token), header]);
    expect(result.closed).toBe(true);
    expect(result.error).toMatchObject({ S: "FATAL", C: "08P01" });
    expect(result.error?.M).toMatch(/length 536870912 is outside/);
    const next = await client(harness);
    expect((await next.query("select 2 as two")).rows).toEqual([{ two: 2 }]);
    await next.end();
  });

  it("answers a Bind whose parameter length runs past the message with FATAL 08P01, and stays up", async () => {
    const token = await harness.token();
    const socket = await openRaw(harness.native.port);
    const parse = wire.encodeMessage(0x50, Buffer.from("\0select $1::text\0"), Buffer.from([0, 0]));
    // Bind: unnamed portal and statement, no formats, one parameter claiming 1,000 bytes but carrying 3.
    const bind = wire.encodeMessage(0x42, Buffer.from("\0\0"), Buffer.from([0, 0, 0, 1, 0, 0, 0x03, 0xe8]), Buffer.from("abc"));
    const result = await exchange(socket, [startupMessage(), wire.encodePasswordMessage(token), parse, bind, wire.encodeMessage(0x53)]);
    expect(result.closed).toBe(true);
    expect(result.error).toMatchObject({ S: "FATAL", C: "08P01", M: "protocol violation: message ends early" });
    const next = await client(harness);
    expect((await next.query("select 3 as three")).rows).toEqual([{ three: 3 }]);
    await next.end();
  });

  it("refuses fastpath function calls and keeps the session", async () => {
    const token = await harness.token();
    const socket = await openRaw(harness.native.port);
    // FunctionCall: function OID, no argument formats, no arguments, text result.
    const call = wire.encodeMessage(0x46, Buffer.from([0, 0, 0x04, 0xd2, 0, 0, 0, 0, 0, 0]));
    const result = await exchange(socket, [startupMessage(), wire.encodePasswordMessage(token), call], 1_000);
    expect(result.closed).toBe(false);
    expect(result.error).toMatchObject({ S: "ERROR", C: "0A000" });
    socket.destroy();
  });

  it("ends a session at max_session with a clear message", async () => {
    const short = await startHarness({ maxSession: "1s" });
    try {
      const value = await client(short);
      // The FATAL error comes first; the closed socket reports itself after it.
      const ended = new Promise<{ code?: string; message: string }>((resolve) => value.on("error", resolve));
      expect(await ended).toMatchObject({ code: "57P01", message: expect.stringMatching(/maximum session length of policy `tests-read`/) });
    } finally {
      await short.close();
    }
  });
});
