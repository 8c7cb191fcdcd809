import { createMysqlFramer, mysql, mysqlAuth, mysqlCapabilities as C, mysqlColumnTypes as T, mysqlCommands, type MysqlPacket } from "@airlock/wire";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSecureContext, connect as tlsConnect, type SecureContext } from "node:tls";
import { promisify } from "node:util";
import { authPlugins as mysql2Plugins } from "mysql2";
import mysql2 from "mysql2/promise";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  acceptMysqlLogin,
  createMysqlRsaKey,
  MysqlHandshakeError,
  mysqlLoginErrors,
  mysqlRsaKeyFromPem,
  refuseMysqlLogin,
  sendMysqlLoginOk,
  type MysqlClientLogin,
  type MysqlHandshakeOptions,
  type MysqlRsaKey,
} from "../src/listeners/mysql-handshake.js";

const run = promisify(execFile);
let certDir: string;
let secureContext: SecureContext;
let ca: Buffer;
let rsaKey: MysqlRsaKey;
let bigRsaKey: MysqlRsaKey;

/** A token shaped like a JWT (three base64url parts), `size` bytes long. */
function jwtLike(size: number): string {
  const header = Buffer.from(JSON.stringify({ alg: "ES256", typ: "JWT", kid: "test" })).toString("base64url");
  const signature = randomBytes(64).toString("base64url");
  const room = size - header.length - signature.length - 2;
  const payload = randomBytes(Math.ceil((room * 3) / 4)).toString("base64url").slice(0, room);
  return `${header}.${payload}.${signature}`;
}

beforeAll(async () => {
  certDir = mkdtempSync(join(tmpdir(), "airlock-mysql-tls-"));
  await run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", join(certDir, "gw.key"), "-out", join(certDir, "gw.crt")]);
  ca = readFileSync(join(certDir, "gw.crt"));
  secureContext = createSecureContext({ cert: ca, key: readFileSync(join(certDir, "gw.key")) });
  rsaKey = createMysqlRsaKey();
  // 4096 bits carry tokens up to 469 bytes on the RSA path; 2048 bits only 213.
  await run("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096", "-out", join(certDir, "rsa4096.key")]);
  bigRsaKey = mysqlRsaKeyFromPem(readFileSync(join(certDir, "rsa4096.key")));
});

afterAll(() => {
  rmSync(certDir, { recursive: true, force: true });
});

/** What the test server saw of one connection. */
interface Outcome {
  readonly login?: MysqlClientLogin;
  readonly error?: MysqlHandshakeError;
  /** The token as the server got it, to compare. */
  readonly token?: string;
}

interface TestServer {
  readonly port: number;
  /** The outcome of the n-th connection (0-based), when its login ended. */
  outcome(index: number): Promise<Outcome>;
  close(): Promise<void>;
}

const servers = new Set<TestServer>();

afterEach(async () => {
  const left = [...servers];
  servers.clear();
  await Promise.all(left.map((server) => server.close()));
});

/**
 * A listener made of acceptMysqlLogin: it checks the token against `token`, then serves COM_PING,
 * COM_INIT_DB, COM_QUIT and answers every COM_QUERY with one row saying what the login saw.
 */
async function startServer(token: string, { tls = true, ...options }: Partial<MysqlHandshakeOptions> & { tls?: boolean } = {}): Promise<TestServer> {
  const outcomes: Promise<Outcome>[] = [];
  const waiters: ((outcome: Promise<Outcome>) => void)[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    const outcome = acceptMysqlLogin(socket, { serverVersion: "8.0.36-airlock", connectionId: 7, ...(tls ? { secureContext } : {}), rsaKey, ...options }).then(
      (login): Outcome => {
        const received = login.token.reveal();
        if (received !== token) {
          refuseMysqlLogin(login, mysqlLoginErrors.accessDenied(login.user, "the token was refused"));
        } else {
          sendMysqlLoginOk(login);
          serveCommands(login, received);
        }
        return { login, token: received };
      },
      (error: unknown): Outcome => {
        expect(error).toBeInstanceOf(MysqlHandshakeError);
        return { error: error as MysqlHandshakeError };
      },
    );
    outcomes.push(outcome);
    waiters.shift()?.(outcome);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const test: TestServer = {
    port: (server.address() as AddressInfo).port,
    outcome: (index) => outcomes[index] ?? new Promise<Outcome>((resolve) => waiters.push((outcome) => resolve(outcome))),
    close: async () => {
      // Connections the test ended close by themselves; any still open after a moment were left open.
      const deadline = Date.now() + 2_000;
      while (sockets.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      const open = sockets.size;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      expect(open, "a test left a connection open").toBe(0);
    },
  };
  servers.add(test);
  return test;
}

/** A minimal command phase, enough to prove the session after the login is usable. */
function serveCommands(login: MysqlClientLogin, token: string): void {
  const socket = login.socket;
  const framer = createMysqlFramer({ maxMessageBytes: 1 << 20 });
  const caps = login.capabilities;
  const write = (sequenceId: number, payload: Buffer) => socket.write(mysql.encodePacket(sequenceId, payload));
  const onPacket = (packet: MysqlPacket) => {
    const command = packet.payload[0];
    switch (command) {
      case mysqlCommands.COM_QUIT:
        socket.end();
        return;
      case mysqlCommands.COM_PING:
      case mysqlCommands.COM_INIT_DB:
        write(1, mysql.encodeOk({ statusFlags: 2 }, caps));
        return;
      case mysqlCommands.COM_QUERY: {
        const values = [login.user, String(Buffer.byteLength(token)), login.tls ? "tls" : "plain", login.authPlugin, login.schema ?? ""];
        const names = ["user", "token_bytes", "transport", "plugin", "schema"];
        let sequenceId = 1;
        write(sequenceId++, mysql.encodeColumnCount(names.length));
        for (const name of names) {
          write(
            sequenceId++,
            mysql.encodeColumnDefinition41({ catalog: "def", schema: "", table: "", orgTable: "", name, orgName: "", characterSet: 45, columnLength: 1024, type: T.MYSQL_TYPE_VAR_STRING, flags: 0, decimals: 0 }),
          );
        }
        const deprecateEof = mysql.hasFlag(caps, C.CLIENT_DEPRECATE_EOF);
        if (!deprecateEof) write(sequenceId++, mysql.encodeEof({ warnings: 0, statusFlags: 2 }));
        write(sequenceId++, mysql.encodeTextRow(values));
        write(sequenceId++, deprecateEof ? mysql.encodeOk({ eof: true, statusFlags: 2 }, caps) : mysql.encodeEof({ warnings: 0, statusFlags: 2 }));
        return;
      }
      default:
        write(1, mysql.encodeErr({ code: 1047, sqlState: "08S01", message: "unknown command" }));
    }
  };
  const onData = (chunk: Buffer) => {
    for (const packet of framer.push(chunk)) onPacket(packet);
  };
  socket.on("error", () => socket.destroy());
  socket.on("data", onData);
  if (login.leftover.length > 0) onData(login.leftover);
  socket.resume();
}

// ---- real clients ----------------------------------------------------------------------------------

describe("mysql2 sends its token through the listener", () => {
  it("by caching_sha2_password full authentication over TLS, a 1 KB token", async () => {
    const token = jwtLike(1100);
    const server = await startServer(token);
    const client = await mysql2.createConnection({ host: "127.0.0.1", port: server.port, user: "ci", password: token, database: "orders", ssl: { ca } });
    const [rows] = await client.query<mysql2.RowDataPacket[]>("select 1");
    expect(rows).toEqual([{ user: "ci", token_bytes: "1100", transport: "tls", plugin: "caching_sha2_password", schema: "orders" }]);
    await client.ping();
    await client.end();
    const { login } = await server.outcome(0);
    expect(login).toMatchObject({ tls: true, user: "ci", schema: "orders", authPlugin: "caching_sha2_password", leftover: Buffer.alloc(0) });
    expect(login?.attributes.get("_client_name")).toBe("Node-MySQL-2");
    expect(mysql.hasFlag(login?.capabilities ?? 0, C.CLIENT_SSL)).toBe(true);
  });

  it("by caching_sha2_password's RSA path without TLS, asking for the public key", async () => {
    const token = jwtLike(200);
    const server = await startServer(token, { remoteAddress: "192.0.2.10" });
    const client = await mysql2.createConnection({ host: "127.0.0.1", port: server.port, user: "ci", password: token });
    const [rows] = await client.query<mysql2.RowDataPacket[]>("select 1");
    expect(rows).toEqual([{ user: "ci", token_bytes: "200", transport: "plain", plugin: "caching_sha2_password", schema: "" }]);
    await client.end();
  });

  it("by the RSA path with a 4096-bit key for a token over 255 bytes, and with the key configured in the client", async () => {
    const token = jwtLike(460);
    const server = await startServer(token, { rsaKey: bigRsaKey, remoteAddress: "192.0.2.10" });
    const asking = await mysql2.createConnection({ host: "127.0.0.1", port: server.port, user: "ci", password: token });
    expect((await asking.query<mysql2.RowDataPacket[]>("select 1"))[0][0]).toMatchObject({ token_bytes: "460", transport: "plain" });
    await asking.end();
    // A client with its own caching_sha2_password plugin answers the greeting with mysql_native_password;
    // from an address that is not loopback the listener switches it to caching_sha2_password, and the
    // client sends the encrypted token at once, without asking for the key.
    const remote = await startServer(token, { rsaKey: bigRsaKey, remoteAddress: "192.0.2.10" });
    const knowing = await mysql2.createConnection({
      host: "127.0.0.1",
      port: remote.port,
      user: "ci",
      password: token,
      authPlugins: { caching_sha2_password: mysql2Plugins.caching_sha2_password({ serverPublicKey: bigRsaKey.publicKeyPem }) },
    });
    expect((await knowing.query<mysql2.RowDataPacket[]>("select 1"))[0][0]).toMatchObject({ token_bytes: "460", plugin: "caching_sha2_password" });
    await knowing.end();
  });

  it("switches a caching_sha2_password client on loopback without TLS to mysql_clear_password: a 1 KB token does not fit RSA", async () => {
    const token = jwtLike(1000);
    const server = await startServer(token);
    // mysql2 sends a clear password only when told to (as the mysql client's --enable-cleartext-plugin).
    await expect(mysql2.createConnection({ host: "127.0.0.1", port: server.port, user: "ci", password: token })).rejects.toThrow(/enableCleartextPlugin/);
    const client = await mysql2.createConnection({ host: "127.0.0.1", port: server.port, user: "ci", password: token, enableCleartextPlugin: true });
    expect((await client.query<mysql2.RowDataPacket[]>("select 1"))[0][0]).toMatchObject({ token_bytes: "1000", transport: "plain", plugin: "mysql_clear_password" });
    await client.end();
  });

  it("cannot fit a 1 KB token in the RSA path of a 2048-bit key: the client fails, the listener only sees it leave", async () => {
    const token = jwtLike(1000);
    const server = await startServer(token, { remoteAddress: "192.0.2.10" });
    await expect(mysql2.createConnection({ host: "127.0.0.1", port: server.port, user: "ci", password: token })).rejects.toThrow(/too large|too long/i);
    expect((await server.outcome(0)).error?.code).toBe("client_closed");
    expect(mysqlAuth.maxRsaPasswordBytes(rsaKey.bits)).toBe(213);
  });

  it("by mysql_clear_password after an AuthSwitchRequest, in plaintext from loopback and over TLS", async () => {
    const token = jwtLike(1200);
    const server = await startServer(token, { authPlugin: "mysql_clear_password" });
    // Without TLS mysql2 will not answer mysql_clear_password at once: it answers mysql_native_password and is switched.
    const plain = await mysql2.createConnection({ host: "127.0.0.1", port: server.port, user: "ci", password: token, enableCleartextPlugin: true });
    expect((await plain.query<mysql2.RowDataPacket[]>("select 1"))[0][0]).toMatchObject({ token_bytes: "1200", transport: "plain", plugin: "mysql_clear_password" });
    await plain.end();
    // Over TLS it sends the token in its HandshakeResponse41 directly.
    const secure = await mysql2.createConnection({ host: "127.0.0.1", port: server.port, user: "ci", password: token, enableCleartextPlugin: true, ssl: { ca } });
    expect((await secure.query<mysql2.RowDataPacket[]>("select 1"))[0][0]).toMatchObject({ token_bytes: "1200", transport: "tls", plugin: "mysql_clear_password" });
    await secure.end();
    // With an authPlugins handler of its own.
    const custom = await mysql2.createConnection({
      host: "127.0.0.1",
      port: server.port,
      user: "ci",
      password: "unused",
      authPlugins: { mysql_clear_password: () => () => Buffer.from(`${token}\0`) },
    });
    expect((await custom.query<mysql2.RowDataPacket[]>("select 1"))[0][0]).toMatchObject({ token_bytes: "1200", plugin: "mysql_clear_password" });
    await custom.end();
    expect((await server.outcome(0)).login?.authPlugin).toBe("mysql_clear_password");
  });

  it("from an address that is not loopback: switched to the RSA path without TLS, never to the clear one", async () => {
    const token = jwtLike(200);
    const server = await startServer(token, { authPlugin: "mysql_clear_password", remoteAddress: "192.0.2.10" });
    const client = await mysql2.createConnection({ host: "127.0.0.1", port: server.port, user: "ci", password: token, enableCleartextPlugin: true });
    expect((await client.query<mysql2.RowDataPacket[]>("select 1"))[0][0]).toMatchObject({ transport: "plain", plugin: "caching_sha2_password" });
    await client.end();
  });

  it("is refused with 1045 when the caller refuses the token", async () => {
    const server = await startServer(jwtLike(300));
    const error = await mysql2.createConnection({ host: "127.0.0.1", port: server.port, user: "ci", password: "wrong-token", ssl: { ca } }).catch((e: unknown) => e);
    expect(error).toMatchObject({ errno: 1045, sqlState: "28000", message: "access denied for user `ci`: the token was refused" });
    expect((await server.outcome(0)).token).toBe("wrong-token");
  });
});

describe("the mariadb command line client sends its token through the listener", () => {
  const cli = async (port: number, token: string, ...flags: string[]) => {
    const { stdout } = await run("mariadb", ["-h127.0.0.1", `-P${port}`, "-uci", `--password=${token}`, "-N", "-B", ...flags, "-e", "select 1"], { timeout: 20_000 });
    // MariaDB's client prints a warning about obsolete options on stdout before the result.
    return (stdout.replace(/\n$/, "").split("\n").pop() ?? "").split("\t");
  };

  it("with caching_sha2_password over TLS (--ssl, --ssl-ca and --ssl-verify-server-cert)", async () => {
    const token = jwtLike(1100);
    const server = await startServer(token);
    expect(await cli(server.port, token, "--ssl", `--ssl-ca=${join(certDir, "gw.crt")}`, "--ssl-verify-server-cert", "-Dorders")).toEqual(["ci", "1100", "tls", "caching_sha2_password", "orders"]);
  });

  it("with mysql_clear_password in plaintext from loopback (--skip-ssl): MariaDB's client needs no flag, and accepts the obsolete --enable-cleartext-plugin", async () => {
    const token = jwtLike(1100);
    const server = await startServer(token, { authPlugin: "mysql_clear_password" });
    expect(await cli(server.port, token, "--skip-ssl")).toEqual(["ci", "1100", "plain", "mysql_clear_password", ""]);
    expect(await cli(server.port, token, "--skip-ssl", "--enable-cleartext-plugin")).toEqual(["ci", "1100", "plain", "mysql_clear_password", ""]);
  });

  it("with mysql_clear_password over TLS (--ssl --enable-cleartext-plugin)", async () => {
    const token = jwtLike(1100);
    const server = await startServer(token, { authPlugin: "mysql_clear_password" });
    expect(await cli(server.port, token, "--ssl", "--enable-cleartext-plugin")).toEqual(["ci", "1100", "tls", "mysql_clear_password", ""]);
  });

  it("with caching_sha2_password's RSA path without TLS (--skip-ssl), for a token the key can carry", async () => {
    const token = jwtLike(200);
    const server = await startServer(token, { remoteAddress: "192.0.2.10" });
    expect(await cli(server.port, token, "--skip-ssl")).toEqual(["ci", "200", "plain", "caching_sha2_password", ""]);
  });
});

// ---- raw sockets ----------------------------------------------------------------------------------

/** A client of raw packets. */
class RawClient {
  readonly #framer = createMysqlFramer({ maxMessageBytes: 1 << 20 });
  readonly #packets: MysqlPacket[] = [];
  readonly closed: Promise<void>;
  #wake: (() => void) | undefined;
  #done = false;
  socket: Socket;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    this.#listen(socket);
  }

  static async open(port: number): Promise<RawClient> {
    const socket = connect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return new RawClient(socket);
  }

  #listen(stream: Socket): void {
    stream.on("data", (chunk: Buffer) => {
      this.#packets.push(...this.#framer.push(chunk));
      this.#wake?.();
    });
    stream.on("error", () => undefined);
    stream.on("close", () => {
      this.#done = true;
      this.#wake?.();
    });
  }

  /** Starts TLS over the connection (after an SSLRequest). */
  async startTls(): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners("data");
    const secure = tlsConnect({ socket: plain, ca, servername: "localhost" });
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", resolve);
      secure.once("error", reject);
    });
    this.socket = secure;
    this.#listen(secure);
  }

  /** The next packet, or undefined once the connection closed with nothing left. */
  async next(): Promise<MysqlPacket | undefined> {
    for (;;) {
      const packet = this.#packets.shift();
      if (packet !== undefined) return packet;
      if (this.#done) return undefined;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  send(sequenceId: number, payload: Buffer): void {
    this.socket.write(mysql.encodePacket(sequenceId, payload));
  }

  /** Reads the greeting and returns it. */
  async greeting(): Promise<mysql.HandshakeV10> {
    const packet = await this.next();
    if (packet === undefined) throw new Error("no greeting");
    return mysql.decodeHandshakeV10(packet.payload);
  }

  /** The ERR the listener ended with, after which the connection must close. */
  async expectErrAndClose(): Promise<mysql.ErrPacket> {
    const packet = await this.next();
    if (packet === undefined) throw new Error("closed without an ERR");
    const err = mysql.decodeErr(packet.payload);
    expect(await this.next()).toBeUndefined();
    await this.closed;
    return err;
  }
}

const CLIENT_CAPS = (C.CLIENT_PROTOCOL_41 | C.CLIENT_SECURE_CONNECTION | C.CLIENT_PLUGIN_AUTH | C.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | C.CLIENT_CONNECT_WITH_DB) >>> 0;

function response(init: Partial<mysql.HandshakeResponse41Init> = {}): Buffer {
  return mysql.encodeHandshakeResponse41({
    capabilities: CLIENT_CAPS,
    maxPacketSize: 1 << 24,
    characterSet: 45,
    username: "ci",
    authResponse: Buffer.alloc(0),
    authPluginName: "mysql_clear_password",
    database: "orders",
    ...init,
  });
}

describe("the listener against raw sockets", () => {
  it("announces a version, a 7-bit scramble of 20 bytes without NUL or $, its plugin and capabilities", async () => {
    const server = await startServer("t");
    const client = await RawClient.open(server.port);
    const greeting = await client.greeting();
    expect(greeting).toMatchObject({ serverVersion: "8.0.36-airlock", connectionId: 7, authPluginName: "caching_sha2_password", characterSet: 45 });
    expect(greeting.authPluginData.length).toBe(20);
    expect([...greeting.authPluginData].every((byte) => byte > 0 && byte < 0x80 && byte !== 0x24)).toBe(true);
    expect(mysql.hasFlag(greeting.capabilities, C.CLIENT_SSL)).toBe(true);
    expect(mysql.hasFlag(greeting.capabilities, C.CLIENT_LOCAL_FILES)).toBe(false);
    client.socket.destroy();
    expect((await server.outcome(0)).error?.code).toBe("client_closed");
  });

  it("takes a token longer than 255 bytes from a HandshakeResponse41 with mysql_clear_password, and keeps bytes sent after it", async () => {
    const token = jwtLike(3000);
    const server = await startServer(token);
    const client = await RawClient.open(server.port);
    await client.greeting();
    const ping = mysql.encodePacket(0, mysql.encodeCommand(mysqlCommands.COM_PING));
    client.socket.write(Buffer.concat([mysql.encodePacket(1, response({ authResponse: mysqlAuth.encodeClearPassword(token) })), ping]));
    const ok = await client.next();
    expect(ok?.sequenceId).toBe(2);
    expect(ok?.payload[0]).toBe(0x00);
    // The COM_PING sent before the OK came back was handed over as leftover and answered.
    expect((await client.next())?.payload[0]).toBe(0x00);
    const { login } = await server.outcome(0);
    expect(login).toMatchObject({ user: "ci", schema: "orders", tls: false, authPlugin: "mysql_clear_password", sequenceId: 2 });
    expect(login?.leftover.equals(ping)).toBe(true);
    client.send(0, mysql.encodeCommand(mysqlCommands.COM_QUIT));
    await client.closed;
  });

  it("refuses a garbage HandshakeResponse41 with 1043 and closes", async () => {
    const server = await startServer("t");
    const client = await RawClient.open(server.port);
    await client.greeting();
    client.send(1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 33]));
    expect(await client.expectErrAndClose()).toMatchObject({ code: 1043, sqlState: "08S01" });
    expect((await server.outcome(0)).error?.code).toBe("bad_handshake");
  });

  it("refuses a client without CLIENT_PROTOCOL_41 with 1043", async () => {
    const server = await startServer("t");
    const client = await RawClient.open(server.port);
    await client.greeting();
    client.send(1, Buffer.from([0x05, 0xa6, 0, 0, 0, 0x63, 0x69, 0]));
    expect(await client.expectErrAndClose()).toMatchObject({ code: 1043 });
  });

  it("refuses a wrong sequence id with 1156 and closes", async () => {
    const server = await startServer("t");
    const client = await RawClient.open(server.port);
    await client.greeting();
    client.send(5, response({ authResponse: mysqlAuth.encodeClearPassword("t") }));
    expect(await client.expectErrAndClose()).toMatchObject({ code: 1156, sqlState: "08S01" });
    expect((await server.outcome(0)).error?.code).toBe("packets_out_of_order");
  });

  it("refuses a packet announcing more than the maximum with 1153 from its header alone", async () => {
    const server = await startServer("t", { maxPacketBytes: 4096 });
    const client = await RawClient.open(server.port);
    await client.greeting();
    client.socket.write(Buffer.from([0xff, 0xff, 0xff, 1]));
    expect(await client.expectErrAndClose()).toMatchObject({ code: 1153, sqlState: "08S01" });
    expect((await server.outcome(0)).error?.code).toBe("packet_too_large");
  });

  it("refuses a token over the maximum with 1045", async () => {
    const server = await startServer("t", { maxTokenBytes: 2048 });
    const client = await RawClient.open(server.port);
    await client.greeting();
    client.send(1, response({ authResponse: mysqlAuth.encodeClearPassword(jwtLike(2049)) }));
    expect(await client.expectErrAndClose()).toMatchObject({ code: 1045, sqlState: "28000" });
    expect((await server.outcome(0)).error?.code).toBe("packet_too_large");
  });

  it("survives a client that closes mid-packet, and one that closes before answering", async () => {
    const server = await startServer("t");
    const half = await RawClient.open(server.port);
    await half.greeting();
    half.socket.end(mysql.encodePacket(1, response()).subarray(0, 20));
    expect((await server.outcome(0)).error?.code).toBe("client_closed");
    const silent = await RawClient.open(server.port);
    await silent.greeting();
    silent.socket.destroy();
    expect((await server.outcome(1)).error?.code).toBe("client_closed");
    await Promise.all([half.closed, silent.closed]);
  });

  it("times out a client that says nothing, with 1043", async () => {
    const server = await startServer("t", { timeoutMs: 200 });
    const client = await RawClient.open(server.port);
    await client.greeting();
    expect(await client.expectErrAndClose()).toMatchObject({ code: 1043, message: "bad handshake: the login took too long" });
    expect((await server.outcome(0)).error?.code).toBe("timeout");
  });

  it("reads plaintext sent after an SSLRequest as TLS records: the handshake fails, nothing is taken as the login", async () => {
    const server = await startServer("t");
    const client = await RawClient.open(server.port);
    await client.greeting();
    const ssl = mysql.encodeSSLRequest({ capabilities: (CLIENT_CAPS | C.CLIENT_SSL) >>> 0, maxPacketSize: 1 << 24, characterSet: 45 });
    client.socket.write(Buffer.concat([mysql.encodePacket(1, ssl), mysql.encodePacket(2, response({ authResponse: mysqlAuth.encodeClearPassword("t") }))]));
    const outcome = await server.outcome(0);
    expect(outcome.error?.code).toBe("tls_failed");
    expect(outcome.login).toBeUndefined();
    await client.closed;
  });

  it("refuses an SSLRequest where TLS is not offered", async () => {
    const server = await startServer("t", { tls: false });
    const client = await RawClient.open(server.port);
    expect(mysql.hasFlag((await client.greeting()).capabilities, C.CLIENT_SSL)).toBe(false);
    client.send(1, mysql.encodeSSLRequest({ capabilities: (CLIENT_CAPS | C.CLIENT_SSL) >>> 0, maxPacketSize: 1 << 24, characterSet: 45 }));
    expect(await client.expectErrAndClose()).toMatchObject({ code: 1043 });
    expect((await server.outcome(0)).error?.code).toBe("tls_failed");
  });

  it("takes the token in clear over TLS, the response numbered after the SSLRequest", async () => {
    const token = jwtLike(900);
    const server = await startServer(token, { remoteAddress: "192.0.2.10" });
    const client = await RawClient.open(server.port);
    await client.greeting();
    const caps = (CLIENT_CAPS | C.CLIENT_SSL) >>> 0;
    client.send(1, mysql.encodeSSLRequest({ capabilities: caps, maxPacketSize: 1 << 24, characterSet: 45 }));
    await client.startTls();
    client.send(2, response({ capabilities: caps, authResponse: mysqlAuth.encodeClearPassword(token) }));
    expect((await client.next())?.payload[0]).toBe(0x00);
    expect((await server.outcome(0)).login).toMatchObject({ tls: true, sequenceId: 3 });
    client.socket.destroy();
  });

  it("takes a TLS handshake that arrives in the same chunk as the SSLRequest", async () => {
    const token = jwtLike(1100);
    const server = await startServer(token);
    // A proxy that holds the client's bytes until the SSLRequest (36 bytes) and a TLS record header have come, then sends them as one chunk.
    const piped = new Set<Socket>();
    const sslRequests: boolean[] = [];
    const proxy = createServer((inbound) => {
      const outbound = connect(server.port, "127.0.0.1");
      piped.add(inbound).add(outbound);
      outbound.pipe(inbound);
      let held = Buffer.alloc(0);
      const hold = (chunk: Buffer) => {
        held = Buffer.concat([held, chunk]);
        // The client's HandshakeResponse41 would come instead of TLS without an SSLRequest: forward what is held then too.
        if (held.length < 36 + 5) return;
        inbound.off("data", hold);
        sslRequests.push(mysql.isSSLRequest(held.subarray(4, 36)));
        outbound.write(held);
        inbound.pipe(outbound);
      };
      inbound.on("data", hold);
      inbound.on("error", () => outbound.destroy());
      outbound.on("error", () => inbound.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    try {
      const client = await mysql2.createConnection({ host: "127.0.0.1", port: (proxy.address() as AddressInfo).port, user: "ci", password: token, ssl: { ca }, connectTimeout: 5_000 });
      expect((await client.query<mysql2.RowDataPacket[]>("select 1"))[0][0]).toMatchObject({ token_bytes: "1100", transport: "tls" });
      await client.end();
      expect(sslRequests).toEqual([true]);
    } finally {
      for (const socket of piped) socket.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });

  it("refuses the token in clear without TLS from an address that is not loopback, unless allowed", async () => {
    const server = await startServer("t", { remoteAddress: "192.0.2.10" });
    const client = await RawClient.open(server.port);
    await client.greeting();
    client.send(1, response({ authResponse: mysqlAuth.encodeClearPassword("t") }));
    expect(await client.expectErrAndClose()).toMatchObject({ code: 1045, sqlState: "28000", message: "access denied for user `ci`: the token may be sent in clear only over tls: connect with ssl" });
    expect((await server.outcome(0)).error?.code).toBe("tls_required");

    const allowed = await startServer("t", { remoteAddress: "192.0.2.10", insecureAllowPlaintext: true });
    const other = await RawClient.open(allowed.port);
    await other.greeting();
    other.send(1, response({ authResponse: mysqlAuth.encodeClearPassword("t") }));
    expect((await other.next())?.payload[0]).toBe(0x00);
    other.socket.destroy();
  });

  it("switches a mysql_native_password client to mysql_clear_password on loopback", async () => {
    const server = await startServer("tok");
    const client = await RawClient.open(server.port);
    const greeting = await client.greeting();
    client.send(1, response({ authPluginName: "mysql_native_password", authResponse: mysqlAuth.scrambleNativePassword("tok", greeting.authPluginData) }));
    const request = await client.next();
    expect(request?.sequenceId).toBe(2);
    expect(mysql.decodeAuthSwitchRequest(request?.payload ?? Buffer.alloc(0))).toEqual({ pluginName: "mysql_clear_password", pluginData: Buffer.alloc(0) });
    client.send(3, mysqlAuth.encodeClearPassword("tok"));
    const ok = await client.next();
    expect(ok?.sequenceId).toBe(4);
    expect(ok?.payload[0]).toBe(0x00);
    client.socket.destroy();
  });

  it("refuses an RSA answer that does not decrypt with 1045", async () => {
    const server = await startServer("t", { remoteAddress: "192.0.2.10" });
    const client = await RawClient.open(server.port);
    const greeting = await client.greeting();
    client.send(1, response({ authPluginName: "caching_sha2_password", authResponse: mysqlAuth.scrambleCachingSha2("t", greeting.authPluginData) }));
    expect(mysql.decodeAuthMoreData((await client.next())?.payload ?? Buffer.alloc(0))).toEqual(Buffer.from([4]));
    client.send(3, Buffer.from([2]));
    const key = await client.next();
    expect(mysql.decodeAuthMoreData(key?.payload ?? Buffer.alloc(0)).toString()).toBe(rsaKey.publicKeyPem);
    client.send(5, randomBytes(256));
    expect(await client.expectErrAndClose()).toMatchObject({ code: 1045, sqlState: "28000" });
    expect((await server.outcome(0)).error?.code).toBe("bad_token");
  });

  it("refuses a client without CLIENT_PLUGIN_AUTH with 1251", async () => {
    const server = await startServer("t");
    const client = await RawClient.open(server.port);
    await client.greeting();
    client.send(1, response({ capabilities: (C.CLIENT_PROTOCOL_41 | C.CLIENT_SECURE_CONNECTION) >>> 0, authResponse: Buffer.alloc(20) }));
    expect(await client.expectErrAndClose()).toMatchObject({ code: 1251, sqlState: "08004" });
    expect((await server.outcome(0)).error?.code).toBe("auth_unsupported");
  });
});
