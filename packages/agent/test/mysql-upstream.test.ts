import { Secret } from "@airlock/runtime";
import { createMysqlFramer, mysql, mysqlAuth, mysqlCapabilities as C, mysqlCommands, type MysqlPacket } from "@airlock/wire";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSecureContext, type SecureContext } from "node:tls";
import { inspect, promisify } from "node:util";
import mysql2 from "mysql2/promise";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  acceptMysqlLogin,
  createMysqlRsaKey,
  mysqlLoginErrors,
  refuseMysqlLogin,
  sendMysqlLoginOk,
  type MysqlClientLogin,
  type MysqlHandshakeOptions,
  type MysqlRsaKey,
} from "../../gateway/src/listeners/mysql-handshake.js";
import { UpstreamError } from "../src/upstream/errors.js";
import { connectMysql, MysqlServerError, type MysqlSession, type MysqlTarget } from "../src/upstream/mysql.js";

const run = promisify(execFile);
let certDir: string;
let ca: Buffer;
let secureContext: SecureContext;
let rsaKey: MysqlRsaKey;

beforeAll(async () => {
  certDir = mkdtempSync(join(tmpdir(), "airlock-mysql-agent-"));
  await run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", join(certDir, "server.key"), "-out", join(certDir, "server.crt")]);
  ca = readFileSync(join(certDir, "server.crt"));
  secureContext = createSecureContext({ cert: ca, key: readFileSync(join(certDir, "server.key")) });
  rsaKey = createMysqlRsaKey();
});

afterAll(() => {
  rmSync(certDir, { recursive: true, force: true });
});

function target(overrides: Partial<MysqlTarget> & Pick<MysqlTarget, "port">): MysqlTarget {
  return { host: "127.0.0.1", user: "agent", tls: { mode: "disable" }, connectTimeoutMs: 5_000, maxMessageBytes: 1 << 20, ...overrides };
}

const sessions = new Set<MysqlSession>();

/** Connects and keeps the session to close it after the test. */
async function open(to: MysqlTarget, options: Parameters<typeof connectMysql>[1] = {}): Promise<MysqlSession> {
  const session = await connectMysql(to, options);
  // The caller of connectMysql owns the socket's errors (a server closed by another hook resets it).
  session.socket.on("error", () => undefined);
  sessions.add(session);
  return session;
}

afterEach(async () => {
  const left = [...sessions];
  sessions.clear();
  await Promise.all(left.map((session) => quit(session)));
});

/** COM_QUIT, then waits for the server to close. */
async function quit(session: MysqlSession): Promise<void> {
  if (session.socket.destroyed) return;
  const closed = new Promise<void>((resolve) => session.socket.once("close", () => resolve()));
  session.socket.on("error", () => undefined);
  session.socket.resume();
  session.socket.end(mysql.encodePacket(0, mysql.encodeCommand(mysqlCommands.COM_QUIT)));
  await closed;
}

/** Runs one COM_QUERY on a session the agent opened, and returns its rows as strings: proof the session is usable. */
async function query(session: MysqlSession, sql: string): Promise<(string | null)[][]> {
  const framer = createMysqlFramer({ maxMessageBytes: 1 << 20 });
  const queue: MysqlPacket[] = framer.push(session.leftover);
  const socket = session.socket;
  const next = async (): Promise<MysqlPacket> => {
    while (queue.length === 0) {
      const chunk = await new Promise<Buffer>((resolve, reject) => {
        const onData = (data: Buffer) => {
          socket.off("error", reject);
          socket.pause();
          resolve(data);
        };
        socket.once("data", onData);
        socket.once("error", reject);
        socket.resume();
      });
      queue.push(...framer.push(chunk));
    }
    return queue.shift() as MysqlPacket;
  };
  socket.write(mysql.encodePacket(0, mysql.encodeComQuery(sql, session.capabilities)));
  const first = await next();
  if (first.payload[0] === 0xff) throw new Error(mysql.decodeErr(first.payload).message);
  const columns = mysql.decodeColumnCount(first.payload);
  for (let i = 0; i < columns; i++) await next();
  const deprecateEof = mysql.hasFlag(session.capabilities, C.CLIENT_DEPRECATE_EOF);
  if (!deprecateEof) await next();
  const rows: (string | null)[][] = [];
  for (;;) {
    const packet = await next();
    const kind = mysql.classifyResponse(packet.payload, session.capabilities, "rows");
    if (kind !== "row") break;
    rows.push(mysql.decodeTextRow(packet.payload, columns).map((value) => (value === null ? null : value.toString())));
  }
  return rows;
}

// ---- the machine's MariaDB -------------------------------------------------------------------------

const MARIADB = { host: "127.0.0.1", port: 3306 };
const USER = "airlock_mysql_agent";
const DATABASE = "airlock_mysql_agent";
const PASSWORD = randomBytes(18).toString("base64url");

describe("against the machine's MariaDB 10.11", () => {
  let admin: mysql2.Connection;
  let haveSsl: string;

  beforeAll(async () => {
    admin = await mysql2.createConnection({ ...MARIADB, user: "root", password: "" });
    await dropFixtures();
    await admin.query(`create database ${DATABASE}`);
    await admin.query(`create user '${USER}'@'%' identified via mysql_native_password using password(?)`, [PASSWORD]);
    await admin.query(`grant all on ${DATABASE}.* to '${USER}'@'%'`);
    const [rows] = await admin.query<mysql2.RowDataPacket[]>("show variables like 'have_ssl'");
    haveSsl = String(rows[0]?.Value);
  });

  afterAll(async () => {
    await dropFixtures();
    await admin.end();
  });

  async function dropFixtures(): Promise<void> {
    await admin.query(`drop user if exists '${USER}'@'%'`);
    await admin.query(`drop database if exists ${DATABASE}`);
  }

  const mariadb = (overrides: Partial<MysqlTarget> = {}) => target({ ...MARIADB, user: USER, password: new Secret(PASSWORD), database: DATABASE, ...overrides });

  it("logs in with mysql_native_password and hands over a usable session with the negotiated facts", async () => {
    const session = await open(mariadb(), { clientCapabilities: C.CLIENT_MULTI_STATEMENTS | C.CLIENT_COMPRESS });
    expect(session.serverVersion).toMatch(/^5\.5\.5-10\.11\./);
    expect(session.connectionId).toBeGreaterThan(0);
    expect(session.authPlugin).toBe("mysql_native_password");
    expect(session.tls).toBe(false);
    expect(session.leftover.length).toBe(0);
    expect(session.serverCharacterSet).toBeGreaterThan(0);
    for (const flag of [C.CLIENT_PROTOCOL_41, C.CLIENT_SECURE_CONNECTION, C.CLIENT_PLUGIN_AUTH, C.CLIENT_CONNECT_WITH_DB, C.CLIENT_MULTI_STATEMENTS]) {
      expect(mysql.hasFlag(session.capabilities, flag)).toBe(true);
    }
    // Never relayed: the relay reads packets uncompressed.
    expect(mysql.hasFlag(session.capabilities, C.CLIENT_COMPRESS)).toBe(false);
    expect(mysql.hasFlag(session.capabilities, C.CLIENT_DEPRECATE_EOF)).toBe(false);
    expect(await query(session, "select current_user(), database(), connection_id()")).toEqual([[`${USER}@%`, DATABASE, String(session.connectionId)]]);
  });

  it("asks for CLIENT_DEPRECATE_EOF only when the client has it, and MariaDB agrees", async () => {
    const session = await open(mariadb(), { clientCapabilities: C.CLIENT_DEPRECATE_EOF });
    expect(mysql.hasFlag(session.serverCapabilities, C.CLIENT_DEPRECATE_EOF)).toBe(true);
    expect(mysql.hasFlag(session.capabilities, C.CLIENT_DEPRECATE_EOF)).toBe(true);
    expect(await query(session, "select 1, 'two'")).toEqual([["1", "two"]]);
  });

  it("follows MariaDB's AuthSwitchRequest when it answered with caching_sha2_password, and logs in without a schema", async () => {
    const session = await open(target({ ...MARIADB, user: USER, password: new Secret(PASSWORD), defaultAuth: "caching_sha2_password" }));
    expect(session.authPlugin).toBe("mysql_native_password");
    expect(mysql.hasFlag(session.capabilities, C.CLIENT_CONNECT_WITH_DB)).toBe(false);
    expect(await query(session, "select database()")).toEqual([[null]]);
  });

  it("refuses a wrong password with 1045, the password nowhere in the error", async () => {
    const wrong = `${PASSWORD}-wrong`;
    const error = await connectMysql(mariadb({ password: new Secret(wrong) })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MysqlServerError);
    expect(error).toMatchObject({ code: "auth_failed", errno: 1045, sqlstate: "28000", message: "the database refused the agent's credentials: error 1045 (28000)" });
    expect(String((error as Error).cause)).toMatch(/^Access denied for user 'airlock_mysql_agent'/);
    for (const text of [String(error), (error as Error).message, String((error as Error).cause), JSON.stringify(error), inspect(error, { depth: 5 })]) {
      expect(text).not.toContain(wrong);
      expect(text).not.toContain(PASSWORD);
    }
  });

  it("reports a schema it may not use with the server's error", async () => {
    const error = await connectMysql(mariadb({ database: "airlock_mysql_agent_none" })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MysqlServerError);
    expect(error).toMatchObject({ errno: 1044, code: "auth_failed", sqlstate: "42000" });
  });

  it("refuses TLS when the server does not offer it (have_ssl is DISABLED here)", async () => {
    if (haveSsl === "YES") return; // covered by the throwaway server below either way
    const error = await connectMysql(mariadb({ tls: { mode: "require" } })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "tls_refused", message: "the database at 127.0.0.1:3306 does not offer TLS" });
  });
});

// ---- a throwaway MariaDB with TLS ------------------------------------------------------------------

/**
 * The machine's MariaDB runs without TLS and its configuration is not the tests' to change: a second
 * mariadbd with TLS on runs from a temporary data directory for these tests, and is removed after.
 */
describe("against a throwaway MariaDB 10.11 with TLS", () => {
  let dir: string;
  let server: ChildProcess | undefined;
  let port: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "airlock-mariadb-tls-"));
    await run("mariadb-install-db", ["--no-defaults", `--datadir=${join(dir, "data")}`, "--auth-root-authentication-method=normal", "--skip-test-db"]);
    port = await freePort();
    const socketPath = join(dir, "mysqld.sock");
    server = spawn(
      "/usr/sbin/mariadbd",
      ["--no-defaults", `--datadir=${join(dir, "data")}`, `--port=${port}`, "--bind-address=127.0.0.1", `--socket=${socketPath}`, `--pid-file=${join(dir, "mysqld.pid")}`,
        "--user=root", `--ssl-cert=${join(certDir, "server.crt")}`, `--ssl-key=${join(certDir, "server.key")}`, "--skip-log-bin", "--innodb-buffer-pool-size=16M",
        `--log-error=${join(dir, "error.log")}`],
      { stdio: "ignore" },
    );
    for (let attempt = 0; !existsSync(socketPath); attempt++) {
      if (attempt > 300 || server.exitCode !== null) throw new Error(`the throwaway mariadbd did not start: ${readFileSync(join(dir, "error.log"), "utf8").slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const admin = await mysql2.createConnection({ socketPath, user: "root" });
    await admin.query(`create user '${USER}'@'%' identified via mysql_native_password using password(?) require ssl`, [PASSWORD]);
    await admin.query("create database tls_db");
    await admin.query(`grant all on tls_db.* to '${USER}'@'%'`);
    await admin.end();
  }, 120_000);

  afterAll(async () => {
    if (server !== undefined && server.exitCode === null) {
      const exited = new Promise((resolve) => server?.once("exit", resolve));
      server.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const tlsTarget = (tls: MysqlTarget["tls"]) => target({ port, user: USER, password: new Secret(PASSWORD), database: "tls_db", tls });

  it("logs in over TLS verified against the CA (verify-full) to an account that requires SSL", async () => {
    const session = await open(tlsTarget({ mode: "verify-full", ca }));
    expect(session.tls).toBe(true);
    expect(mysql.hasFlag(session.capabilities, C.CLIENT_SSL)).toBe(true);
    const [[cipher]] = (await query(session, "select variable_value from information_schema.session_status where variable_name = 'Ssl_cipher'")) as [[string]];
    expect(cipher.length).toBeGreaterThan(0);
    expect(await query(session, "select current_user(), database()")).toEqual([[`${USER}@%`, "tls_db"]]);
  });

  it("logs in with require (no verification), and refuses a certificate that does not verify", async () => {
    const session = await open(tlsTarget({ mode: "require" }));
    expect(session.tls).toBe(true);
    const error = await connectMysql(tlsTarget({ mode: "verify-full" })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "tls_refused" });
  });

  it("is refused by an account that requires SSL when it connects without", async () => {
    const error = await connectMysql(tlsTarget({ mode: "disable" })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "auth_failed", errno: 1045 });
  });
});

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

// ---- the gateway's listener as the server: caching_sha2_password and mysql_clear_password -------

interface TestServer {
  readonly port: number;
  /** The n-th login's outcome (0-based). */
  login(index: number): Promise<MysqlClientLogin | Error>;
  close(): Promise<void>;
}

const servers = new Set<TestServer>();

afterEach(async () => {
  const left = [...servers];
  servers.clear();
  await Promise.all(left.map((server) => server.close()));
});

/** A server of raw sockets, tracked and closed after the test. */
async function listen(onSocket: (socket: Socket) => Promise<MysqlClientLogin | Error>): Promise<TestServer> {
  const logins: Promise<MysqlClientLogin | Error>[] = [];
  const waiters: ((login: Promise<MysqlClientLogin | Error>) => void)[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    const login = onSocket(socket);
    logins.push(login);
    waiters.shift()?.(login);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const test: TestServer = {
    port: (server.address() as AddressInfo).port,
    login: (index) => logins[index] ?? new Promise((resolve) => waiters.push((login) => resolve(login))),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  servers.add(test);
  return test;
}

/** The gateway's listener, accepting the login when the token is `password`, then answering COM_PING. */
async function gatewayServer(password: string, options: Partial<MysqlHandshakeOptions> = {}): Promise<TestServer> {
  return await listen(async (socket) => {
    try {
      // As a server elsewhere on the network sees the agent: not loopback, so the RSA path is taken without TLS.
      const login = await acceptMysqlLogin(socket, { serverVersion: "8.0.36-airlock", connectionId: 42, secureContext, rsaKey, remoteAddress: "192.0.2.10", ...options });
      if (login.token.reveal() !== password) {
        refuseMysqlLogin(login, mysqlLoginErrors.accessDenied(login.user, "the token was refused"));
        return login;
      }
      sendMysqlLoginOk(login);
      login.socket.on("error", () => undefined);
      login.socket.on("data", (chunk: Buffer) => {
        if (chunk[4] === mysqlCommands.COM_PING) login.socket.write(mysql.encodePacket(1, mysql.encodeOk({ statusFlags: 2 }, login.capabilities)));
        if (chunk[4] === mysqlCommands.COM_QUIT) login.socket.end();
      });
      login.socket.resume();
      return login;
    } catch (error) {
      return error as Error;
    }
  });
}

/** COM_PING on a session: the server's OK proves the socket and its sequence ids are where they should be. */
async function ping(session: MysqlSession): Promise<void> {
  const reply = new Promise<Buffer>((resolve) => session.socket.once("data", resolve));
  session.socket.resume();
  session.socket.write(mysql.encodePacket(0, mysql.encodeCommand(mysqlCommands.COM_PING)));
  const packet = await reply;
  session.socket.pause();
  expect(packet.subarray(3, 5)).toEqual(Buffer.from([1, 0]));
}

describe("caching_sha2_password and mysql_clear_password against the gateway's listener", () => {
  const password = `${randomBytes(12).toString("base64url")}-ünïcode`;

  it("sends the password in clear over TLS for full authentication, the server verified against the CA", async () => {
    const server = await gatewayServer(password);
    const session = await open(target({ port: server.port, password: new Secret(password), database: "orders", tls: { mode: "verify-full", ca, servername: "localhost" } }));
    expect(session).toMatchObject({ tls: true, authPlugin: "caching_sha2_password", serverVersion: "8.0.36-airlock", connectionId: 42, serverCharacterSet: 45 });
    const login = (await server.login(0)) as MysqlClientLogin;
    expect(login).toMatchObject({ user: "agent", schema: "orders", tls: true, authPlugin: "caching_sha2_password" });
    expect(login.attributes.get("_client_name")).toBe("airlock-agent");
    await ping(session);
  });

  it("encrypts the password with the server's RSA key without TLS, fetched when allowed", async () => {
    const server = await gatewayServer(password);
    const session = await open(target({ port: server.port, password: new Secret(password), getServerPublicKey: true }));
    expect(session).toMatchObject({ tls: false, authPlugin: "caching_sha2_password" });
    expect(((await server.login(0)) as MysqlClientLogin).token.reveal()).toBe(password);
    await ping(session);
  });

  it("encrypts the password with a configured RSA key without asking for it", async () => {
    const server = await gatewayServer(password);
    const session = await open(target({ port: server.port, password: new Secret(password), serverPublicKey: rsaKey.publicKeyPem }));
    expect(session.authPlugin).toBe("caching_sha2_password");
    await ping(session);
  });

  it("does not send the password without TLS or an RSA key it may trust", async () => {
    const server = await gatewayServer(password);
    const error = await connectMysql(target({ port: server.port, password: new Secret(password) })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error).toMatchObject({ code: "auth_unsupported", message: expect.stringContaining("connect with TLS, or configure the server's RSA public key") });
    expect(await server.login(0)).toMatchObject({ code: "client_closed" });
  });

  it("says when the password is too long for the server's RSA key", async () => {
    const long = "x".repeat(300);
    const server = await gatewayServer(long);
    const error = await connectMysql(target({ port: server.port, password: new Secret(long), getServerPublicKey: true })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "auth_failed", message: "the password is too long for the server's 2048-bit RSA key: connect with TLS" });
  });

  it("answers an AuthSwitchRequest to mysql_clear_password over TLS only", async () => {
    const server = await gatewayServer(password, { authPlugin: "mysql_clear_password", remoteAddress: "127.0.0.1" });
    const session = await open(target({ port: server.port, password: new Secret(password), tls: { mode: "require" } }));
    expect(session.authPlugin).toBe("mysql_clear_password");
    expect(((await server.login(0)) as MysqlClientLogin).authPlugin).toBe("mysql_clear_password");
    await ping(session);
    const error = await connectMysql(target({ port: server.port, password: new Secret(password) })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "auth_unsupported", message: "the database asks for mysql_clear_password, which the agent sends only over TLS" });
  });

  it("turns the listener's ERR into a MysqlServerError", async () => {
    const server = await gatewayServer("another");
    const error = await connectMysql(target({ port: server.port, password: new Secret(password), tls: { mode: "require" } })).catch((e: unknown) => e);
    expect(error).toMatchObject({ errno: 1045, code: "auth_failed", sqlstate: "28000" });
    expect(JSON.stringify(error) + inspect(error)).not.toContain(password);
  });
});

// ---- scripted servers: the fast path and protocol errors -------------------------------------------

const SCRAMBLE = Buffer.from("0123456789abcdefghij");
const SERVER_CAPS = (C.CLIENT_LONG_PASSWORD | C.CLIENT_PROTOCOL_41 | C.CLIENT_SECURE_CONNECTION | C.CLIENT_PLUGIN_AUTH | C.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
  C.CLIENT_CONNECT_WITH_DB | C.CLIENT_TRANSACTIONS | C.CLIENT_DEPRECATE_EOF) >>> 0;

function greeting(plugin = "caching_sha2_password"): Buffer {
  return mysql.encodeHandshakeV10({ serverVersion: "8.4.0", connectionId: 9, authPluginData: SCRAMBLE, capabilities: SERVER_CAPS, characterSet: 255, statusFlags: 2, authPluginName: plugin });
}

/** A server that plays `script` on each connection: it gets the packets one at a time and writes what it wants. */
async function scripted(script: (socket: Socket, next: () => Promise<MysqlPacket>) => Promise<void>): Promise<TestServer> {
  return await listen(async (socket) => {
    const framer = createMysqlFramer({ maxMessageBytes: 1 << 20 });
    const queue: MysqlPacket[] = [];
    let wake: (() => void) | undefined;
    let closed = false;
    socket.on("data", (chunk: Buffer) => {
      queue.push(...framer.push(chunk));
      wake?.();
    });
    socket.on("close", () => {
      closed = true;
      wake?.();
    });
    const next = async () => {
      for (;;) {
        const packet = queue.shift();
        if (packet !== undefined) return packet;
        if (closed) throw new Error("closed");
        await new Promise<void>((resolve) => (wake = resolve));
      }
    };
    try {
      await script(socket, next);
    } catch (error) {
      return error as Error;
    }
    return new Error("scripted");
  });
}

describe("scripted servers", () => {
  const password = "fast-path-secret";
  const stored = mysqlAuth.cachingSha2PasswordHash(password);

  /** caching_sha2_password with the password in its cache: the scramble is checked and 0x03 sent. */
  const fastPathServer = () =>
    scripted(async (socket, next) => {
      socket.write(mysql.encodePacket(0, greeting()));
      const response = mysql.decodeHandshakeResponse41((await next()).payload);
      if (response.authPluginName !== "caching_sha2_password" || !mysqlAuth.verifyCachingSha2Scramble(response.authResponse, SCRAMBLE, stored)) {
        socket.end(mysql.encodePacket(2, mysql.encodeErr({ code: 1045, sqlState: "28000", message: "Access denied for user 'agent'" })));
        return;
      }
      socket.write(mysql.encodePacket(2, mysql.encodeAuthMoreData(Buffer.from([3]))));
      // The OK and, in the same write, the first bytes of something the server sends next.
      socket.write(Buffer.concat([mysql.encodePacket(3, mysql.encodeOk({ statusFlags: 2 }, SERVER_CAPS)), Buffer.from([9, 0, 0])]));
    });

  it("passes caching_sha2_password's fast path, and hands over the bytes after the OK", async () => {
    const server = await fastPathServer();
    const session = await connectMysql(target({ port: server.port, password: new Secret(password) }), { clientCapabilities: C.CLIENT_DEPRECATE_EOF });
    expect(session).toMatchObject({ authPlugin: "caching_sha2_password", serverVersion: "8.4.0", connectionId: 9, serverCharacterSet: 255, statusFlags: 2 });
    expect(session.leftover).toEqual(Buffer.from([9, 0, 0]));
    expect(mysql.hasFlag(session.capabilities, C.CLIENT_DEPRECATE_EOF)).toBe(true);
    session.socket.destroy();
  });

  it("fails the fast path with a wrong password", async () => {
    const server = await fastPathServer();
    const error = await connectMysql(target({ port: server.port, password: new Secret("not it") })).catch((e: unknown) => e);
    expect(error).toMatchObject({ errno: 1045, code: "auth_failed" });
  });

  it("refuses a packet with the wrong sequence id", async () => {
    const server = await scripted(async (socket, next) => {
      socket.write(mysql.encodePacket(0, greeting("mysql_native_password")));
      await next();
      socket.write(mysql.encodePacket(7, mysql.encodeOk({}, SERVER_CAPS)));
      await next();
    });
    const error = await connectMysql(target({ port: server.port })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "protocol_error", message: "the server's packet has sequence id 7, not 2" });
  });

  it("refuses a packet over the maximum from its header", async () => {
    const server = await scripted(async (socket, next) => {
      socket.write(Buffer.from([0xff, 0xff, 0x0f, 0]));
      await next();
    });
    const error = await connectMysql(target({ port: server.port, maxMessageBytes: 4096 })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "protocol_error", message: expect.stringContaining("over the maximum of 4096") });
  });

  it("refuses a greeting that is not one", async () => {
    const server = await scripted(async (socket, next) => {
      socket.write(mysql.encodePacket(0, Buffer.from([9, 1, 2, 3])));
      await next();
    });
    const error = await connectMysql(target({ port: server.port })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "protocol_error" });
  });

  it("reports a server's ERR instead of a greeting", async () => {
    const server = await scripted(async (socket) => {
      socket.end(mysql.encodePacket(0, mysql.encodeErr({ code: 1040, message: "Too many connections" })));
    });
    const error = await connectMysql(target({ port: server.port })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "server_error", errno: 1040, message: "the database refused the session: error 1040 (HY000): Too many connections" });
  });

  it("refuses a plugin it does not speak, and a second AuthSwitchRequest", async () => {
    const unknown = await scripted(async (socket, next) => {
      socket.write(mysql.encodePacket(0, greeting("mysql_native_password")));
      await next();
      socket.write(mysql.encodePacket(2, mysql.encodeAuthSwitchRequest({ pluginName: "client_ed25519", pluginData: SCRAMBLE })));
      await next();
    });
    expect(await connectMysql(target({ port: unknown.port })).catch((e: unknown) => e)).toMatchObject({
      code: "auth_unsupported",
      message: "the database asks for authentication plugin `client_ed25519`, which the agent does not support",
    });
    const twice = await scripted(async (socket, next) => {
      socket.write(mysql.encodePacket(0, greeting("mysql_native_password")));
      await next();
      socket.write(mysql.encodePacket(2, mysql.encodeAuthSwitchRequest({ pluginName: "mysql_native_password", pluginData: SCRAMBLE })));
      await next();
      socket.write(mysql.encodePacket(4, mysql.encodeAuthSwitchRequest({ pluginName: "mysql_native_password", pluginData: SCRAMBLE })));
      await next();
    });
    expect(await connectMysql(target({ port: twice.port })).catch((e: unknown) => e)).toMatchObject({ code: "protocol_error", message: "the server asked to switch the authentication plugin twice" });
  });

  it("times out a server that never greets, and reports one that cannot be reached", async () => {
    const silent = await scripted(async (_socket, next) => {
      await next();
    });
    const started = Date.now();
    const error = await connectMysql(target({ port: silent.port, connectTimeoutMs: 200 })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "connect_failed", message: `the login to the database at 127.0.0.1:${silent.port} took longer than 200 ms` });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await silent.login(0)).toBeInstanceOf(Error);
    const port = await freePort();
    expect(await connectMysql(target({ port })).catch((e: unknown) => e)).toMatchObject({ code: "connect_failed", message: `cannot reach the database at 127.0.0.1:${port}: ECONNREFUSED` });
  });
});
