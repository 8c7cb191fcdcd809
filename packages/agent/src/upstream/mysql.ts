import type { Secret } from "@airlock/runtime";
import { createMysqlFramer, mysql, mysqlAuth, mysqlCachingSha2, mysqlCapabilities, WireError, type MysqlFramer, type MysqlPacket } from "@airlock/wire";
import { createPublicKey } from "node:crypto";
import type { Socket } from "node:net";
import { UpstreamError, type UpstreamErrorCode } from "./errors.js";
import { openSocket, SocketTracker, startTls, type SocketErrorCodes } from "./socket.js";

/** SQLSTATEs of a server that cannot be reached (08001) and of a connection that failed (08S01). */
const MYSQL_SOCKET_CODES: SocketErrorCodes = { unreachable: "08001", tls: "08S01" };

/**
 * The agent's login to a MySQL or MariaDB server, the connection phase of the protocol:
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html
 */

const C = mysqlCapabilities;
const { mysql_native_password, caching_sha2_password, mysql_clear_password } = mysqlAuth.authPluginNames;

/** The plugins the agent answers with; mysql_clear_password only over TLS. */
export type MysqlAgentAuthPlugin = typeof mysql_native_password | typeof caching_sha2_password;

/** How the agent reaches one MySQL or MariaDB server, and as whom. */
export interface MysqlTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Absent: an empty password. */
  readonly password?: Secret;
  /** The schema selected at login (CLIENT_CONNECT_WITH_DB); none when absent. */
  readonly database?: string;
  /** disable: plaintext; require: TLS without verification; verify-full: TLS checked against ca and the host name. */
  readonly tls: { readonly mode: "disable" | "require" | "verify-full"; readonly ca?: Buffer; readonly servername?: string };
  /**
   * The server's RSA public key (PEM), for caching_sha2_password's full authentication without TLS
   * (the mysql client's --server-public-key-path).
   */
  readonly serverPublicKey?: string | Buffer;
  /**
   * Without TLS and without {@link serverPublicKey}, ask the server for its key (the mysql client's
   * --get-server-public-key). Whoever sits between agent and server could hand over their own key
   * and read the password, so it is off unless set.
   */
  readonly getServerPublicKey?: boolean;
  /**
   * The plugin of the first answer, like the mysql client's --default-auth; absent, the one the
   * server announces when the agent speaks it. The server switches when the account has another.
   */
  readonly defaultAuth?: MysqlAgentAuthPlugin;
  /** The whole login (connect, TLS, authentication) must end within this time. */
  readonly connectTimeoutMs: number;
  /** Largest packet accepted during the login; also announced to the server as the client's max_packet_size. */
  readonly maxMessageBytes: number;
}

/** What the session is for, from the gateway's client. */
export interface MysqlLoginOptions {
  /**
   * The capabilities the client asked the gateway for. Those in {@link RELAYED_CAPABILITIES} are
   * asked of the server (and kept where it has them): the relay passes packets through unchanged,
   * so both sides must agree on them. CLIENT_LOCAL_FILES is passed when the client has it: leave it
   * out unless policy allows LOAD DATA LOCAL.
   */
  readonly clientCapabilities?: number;
  /** The collation id of the connection; default 45 (utf8mb4_general_ci, known to MySQL and MariaDB). */
  readonly characterSet?: number;
  /** Connection attributes to send (CLIENT_CONNECT_ATTRS); `_client_name` is always airlock-agent. */
  readonly connectAttributes?: ReadonlyMap<string, string>;
}

/** An authenticated server session, ready for the client's first command (sequence ids start at 0 again). */
export interface MysqlSession {
  /** The connection to the server: a TLSSocket after TLS, paused, with no listeners of this module left. */
  readonly socket: Socket;
  readonly tls: boolean;
  /** Bytes the server sent after its final OK (normally none): they come before anything read from `socket`. */
  readonly leftover: Buffer;
  /** The capabilities in force: what the agent sent, all of which the server has. */
  readonly capabilities: number;
  /** The server's full set, from its handshake. */
  readonly serverCapabilities: number;
  /** As the server announces it (MariaDB's starts with `5.5.5-`). */
  readonly serverVersion: string;
  readonly connectionId: number;
  /** The server's default collation id, from its handshake. */
  readonly serverCharacterSet: number;
  /** The status flags of the final OK. */
  readonly statusFlags: number;
  /** The plugin the login ended with (after any AuthSwitchRequest). */
  readonly authPlugin: string;
}

/** An ERR packet the server answered the login with. */
export class MysqlServerError extends UpstreamError {
  /** The server's error number: 1045 access denied, 1049 unknown database, 1130 host not allowed... */
  readonly errno: number;

  constructor(code: UpstreamErrorCode, sqlstate: string, errno: number, message: string, options?: { cause?: unknown }) {
    super(code, sqlstate, message, options);
    this.name = "MysqlServerError";
    this.errno = errno;
  }
}

/**
 * Capabilities the agent passes on from the client when the server has them. Not passed: COMPRESS
 * and ZSTD (the relay reads plain packets), SSL and CONNECT_WITH_DB (the agent's own),
 * OPTIONAL_RESULTSET_METADATA (result sets without column definitions cannot be masked),
 * CAN_HANDLE_EXPIRED_PASSWORDS, MULTI_FACTOR_AUTHENTICATION and REMEMBER_OPTIONS.
 */
export const RELAYED_CAPABILITIES =
  (C.CLIENT_FOUND_ROWS |
    C.CLIENT_LONG_FLAG |
    C.CLIENT_LOCAL_FILES |
    C.CLIENT_IGNORE_SPACE |
    C.CLIENT_INTERACTIVE |
    C.CLIENT_MULTI_STATEMENTS |
    C.CLIENT_MULTI_RESULTS |
    C.CLIENT_PS_MULTI_RESULTS |
    C.CLIENT_SESSION_TRACK |
    C.CLIENT_DEPRECATE_EOF |
    C.CLIENT_QUERY_ATTRIBUTES) >>>
  0;

/** What the agent always asks for: the 4.1 protocol and pluggable authentication are the only login it speaks. */
const REQUIRED = (C.CLIENT_PROTOCOL_41 | C.CLIENT_SECURE_CONNECTION | C.CLIENT_PLUGIN_AUTH | C.CLIENT_TRANSACTIONS) >>> 0;
/** Asked for when the server has them: longer auth answers and attributes are the agent's own business. */
const WANTED = (C.CLIENT_LONG_PASSWORD | C.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | C.CLIENT_CONNECT_ATTRS) >>> 0;
/** Server errors that mean the credentials, or the account, were refused. */
const AUTH_ERRNOS = new Set([1044, 1045, 1251, 1275, 1698, 1820, 1862, 3118, 3159]);
/** Answers (AuthMoreData, AuthSwitchRequest) a login may take before it is a loop. */
const MAX_ROUNDS = 8;
const DEFAULT_CHARACTER_SET = 45;
const SCRAMBLE_BYTES = 20;
const EMPTY = Buffer.alloc(0);

/**
 * Connects to MySQL or MariaDB and logs in with the agent's own credentials: mysql_native_password,
 * caching_sha2_password (fast path; full authentication in clear over TLS or RSA-encrypted without
 * it) and, over TLS only, mysql_clear_password, following AuthSwitchRequest to any of them. Rejects
 * with an {@link UpstreamError} (a {@link MysqlServerError} for the server's ERR packets); messages
 * never carry the password.
 */
export async function connectMysql(target: MysqlTarget, options: MysqlLoginOptions = {}): Promise<MysqlSession> {
  const sockets = new SocketTracker();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new UpstreamError("connect_failed", "08S01", `the login to the database at ${target.host}:${target.port} took longer than ${target.connectTimeoutMs} ms`));
    }, target.connectTimeoutMs);
  });
  const login = logIn(target, options, sockets);
  // Whichever loses the race must not surface as an unhandled rejection.
  login.catch(() => undefined);
  try {
    return await Promise.race([login, timeout]);
  } catch (error) {
    sockets.abort();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}


async function logIn(target: MysqlTarget, options: MysqlLoginOptions, sockets: SocketTracker): Promise<MysqlSession> {
  const plain = await openSocket(target, sockets, MYSQL_SOCKET_CODES);
  let reader = new PacketReader(plain, createMysqlFramer({ maxMessageBytes: target.maxMessageBytes }));
  const first = await reader.next();
  if (first.sequenceId !== 0) throw protocolError(`the server's greeting has sequence id ${first.sequenceId}, not 0`);
  if (first.payload[0] === 0xff) throw serverError(decode(() => mysql.decodeErr(first.payload)));
  const greeting = decode(() => mysql.decodeHandshakeV10(first.payload));
  const serverCaps = greeting.capabilities;
  for (const [flag, name] of [
    [C.CLIENT_PROTOCOL_41, "CLIENT_PROTOCOL_41"],
    [C.CLIENT_SECURE_CONNECTION, "CLIENT_SECURE_CONNECTION"],
    [C.CLIENT_PLUGIN_AUTH, "CLIENT_PLUGIN_AUTH"],
  ] as const) {
    if (!mysql.hasFlag(serverCaps, flag)) throw new UpstreamError("auth_unsupported", "08004", `the database does not support ${name}, which the agent needs`);
  }

  let capabilities = (REQUIRED | (WANTED & serverCaps) | ((options.clientCapabilities ?? 0) & RELAYED_CAPABILITIES & serverCaps)) >>> 0;
  if (target.database !== undefined && target.database !== "") {
    if (!mysql.hasFlag(serverCaps, C.CLIENT_CONNECT_WITH_DB)) throw new UpstreamError("auth_unsupported", "08004", "the database cannot select a schema at login (no CLIENT_CONNECT_WITH_DB)");
    capabilities = (capabilities | C.CLIENT_CONNECT_WITH_DB) >>> 0;
  }
  const characterSet = options.characterSet ?? DEFAULT_CHARACTER_SET;
  const maxPacketSize = Math.min(target.maxMessageBytes, 0xffffffff);
  let sequenceId = 1;
  let socket: Socket = plain;
  const tls = target.tls.mode !== "disable";
  if (tls) {
    if (!mysql.hasFlag(serverCaps, C.CLIENT_SSL)) throw new UpstreamError("tls_refused", "08004", `the database at ${target.host}:${target.port} does not offer TLS`);
    capabilities = (capabilities | C.CLIENT_SSL) >>> 0;
    plain.write(mysql.encodePacket(sequenceId++, mysql.encodeSSLRequest({ capabilities, maxPacketSize, characterSet })));
    // A server says nothing between its greeting and the TLS handshake: bytes read past the greeting are not its own.
    if (reader.hasBuffered()) throw protocolError("the server sent data before the TLS handshake");
    socket = await startTls(plain, target, sockets, MYSQL_SOCKET_CODES);
    reader = new PacketReader(socket, createMysqlFramer({ maxMessageBytes: target.maxMessageBytes }));
  }

  const password = target.password?.reveal() ?? "";
  const auth = new AuthExchange(password, tls, target);
  let plugin = initialPlugin(greeting.authPluginName, target.defaultAuth);
  const attributes = new Map<string, string>([["_client_name", "airlock-agent"], ...(options.connectAttributes ?? [])]);
  const response = mysql.encodeHandshakeResponse41({
    capabilities,
    maxPacketSize,
    characterSet,
    username: target.user,
    authResponse: auth.start(plugin, greeting.authPluginData),
    ...(mysql.hasFlag(capabilities, C.CLIENT_CONNECT_WITH_DB) ? { database: target.database ?? "" } : {}),
    authPluginName: plugin,
    ...(mysql.hasFlag(capabilities, C.CLIENT_CONNECT_ATTRS) ? { connectAttributes: attributes } : {}),
  });
  socket.write(mysql.encodePacket(sequenceId, response));
  let expected = (sequenceId + 1) & 0xff;
  let switched = false;

  for (let round = 0; round < MAX_ROUNDS; round++) {
    const packet = await reader.next();
    if (packet.sequenceId !== expected) throw protocolError(`the server's packet has sequence id ${packet.sequenceId}, not ${expected}`);
    const reply = mysql.nextSequenceId(packet);
    // The server's next packet follows this one, or the agent's answer when there is one.
    expected = reply;
    const send = (payload: Buffer) => {
      socket.write(mysql.encodePacket(reply, payload));
      expected = (reply + 1) & 0xff;
    };
    switch (decode(() => mysql.classifyResponse(packet.payload, capabilities, "auth"))) {
      case "ok": {
        const ok = decode(() => mysql.decodeOk(packet.payload, capabilities));
        return {
          socket,
          tls,
          leftover: reader.release(),
          capabilities,
          serverCapabilities: serverCaps,
          serverVersion: greeting.serverVersion,
          connectionId: greeting.connectionId,
          serverCharacterSet: greeting.characterSet,
          statusFlags: ok.statusFlags,
          authPlugin: plugin,
        };
      }
      case "err":
        throw serverError(decode(() => mysql.decodeErr(packet.payload)));
      case "auth_switch": {
        // https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_auth_switch_request.html
        if (switched) throw protocolError("the server asked to switch the authentication plugin twice");
        switched = true;
        const request = decode(() => mysql.decodeAuthSwitchRequest(packet.payload));
        plugin = request.pluginName;
        send(auth.start(plugin, request.pluginData));
        break;
      }
      case "auth_more_data": {
        const answer = auth.more(plugin, decode(() => mysql.decodeAuthMoreData(packet.payload)));
        if (answer !== undefined) send(answer);
        break;
      }
      case "auth_next_factor":
        throw new UpstreamError("auth_unsupported", "28000", "the database asks for a second authentication factor, which the agent does not support");
      default:
        throw protocolError("unexpected packet during authentication");
    }
  }
  throw protocolError(`the login did not end after ${MAX_ROUNDS} exchanges`);
}

/** The server's plugin when the agent speaks it, else mysql_native_password (the server will switch). */
function initialPlugin(announced: string, preferred: MysqlAgentAuthPlugin | undefined): string {
  if (preferred !== undefined) return preferred;
  return announced === caching_sha2_password ? caching_sha2_password : mysql_native_password;
}

/** The agent's side of the authentication plugins; one per login. */
class AuthExchange {
  readonly #password: string;
  readonly #tls: boolean;
  readonly #target: MysqlTarget;
  #scramble: Buffer = EMPTY;
  /** caching_sha2_password: waiting for the server's verdict, or for its public key. */
  #sha2: "verdict" | "key" | "done" = "verdict";

  constructor(password: string, tls: boolean, target: MysqlTarget) {
    this.#password = password;
    this.#tls = tls;
    this.#target = target;
  }

  /** The first answer of a plugin to its data (the handshake's or an AuthSwitchRequest's scramble). */
  start(plugin: string, data: Buffer): Buffer {
    switch (plugin) {
      case mysql_native_password:
        return mysqlAuth.scrambleNativePassword(this.#password, this.#nonce(data));
      case caching_sha2_password:
        this.#sha2 = "verdict";
        return mysqlAuth.scrambleCachingSha2(this.#password, this.#nonce(data));
      case mysql_clear_password:
        // https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_authentication_methods_clear_text_password.html
        if (!this.#tls) throw new UpstreamError("auth_unsupported", "28000", "the database asks for mysql_clear_password, which the agent sends only over TLS");
        return mysqlAuth.encodeClearPassword(this.#password);
      default:
        throw new UpstreamError("auth_unsupported", "28000", `the database asks for authentication plugin \`${plugin}\`, which the agent does not support`);
    }
  }

  /**
   * The answer to AuthMoreData, or undefined when none is due (fast authentication succeeded and an
   * OK follows).
   * https://dev.mysql.com/doc/dev/mysql-server/latest/page_caching_sha2_authentication_exchanges.html
   */
  more(plugin: string, data: Buffer): Buffer | undefined {
    if (plugin !== caching_sha2_password || this.#sha2 === "done") throw protocolError(`unexpected AuthMoreData for ${plugin}`);
    if (this.#sha2 === "key") {
      this.#sha2 = "done";
      return this.#encrypt(data);
    }
    if (data.length === 1 && data[0] === mysqlCachingSha2.FAST_AUTH_SUCCESS) {
      this.#sha2 = "done";
      return undefined;
    }
    if (data.length !== 1 || data[0] !== mysqlCachingSha2.PERFORM_FULL_AUTHENTICATION) throw protocolError("unexpected AuthMoreData for caching_sha2_password");
    if (this.#tls) {
      this.#sha2 = "done";
      return mysqlAuth.encodeClearPassword(this.#password);
    }
    if (this.#target.serverPublicKey !== undefined) {
      this.#sha2 = "done";
      return this.#encrypt(this.#target.serverPublicKey);
    }
    if (this.#target.getServerPublicKey !== true) {
      throw new UpstreamError(
        "auth_unsupported",
        "28000",
        "the database needs the password itself (caching_sha2_password full authentication): connect with TLS, or configure the server's RSA public key",
      );
    }
    this.#sha2 = "key";
    return Buffer.from([mysqlCachingSha2.REQUEST_PUBLIC_KEY]);
  }

  #encrypt(publicKey: string | Buffer): Buffer {
    try {
      return mysqlAuth.encryptPasswordRsa(this.#password, this.#scramble, publicKey);
    } catch (cause) {
      const keyBits = publicKeyBits(publicKey);
      if (keyBits !== undefined && Buffer.byteLength(this.#password) > mysqlAuth.maxRsaPasswordBytes(keyBits)) {
        throw new UpstreamError("auth_failed", "28000", `the password is too long for the server's ${keyBits}-bit RSA key: connect with TLS`, { cause });
      }
      throw new UpstreamError("protocol_error", "08S01", "the server's RSA public key cannot be used", { cause });
    }
  }

  #nonce(data: Buffer): Buffer {
    if (data.length < SCRAMBLE_BYTES) throw protocolError(`the server's scramble has ${data.length} bytes, not ${SCRAMBLE_BYTES}`);
    this.#scramble = Buffer.from(data.subarray(0, SCRAMBLE_BYTES));
    return this.#scramble;
  }
}

/** The modulus length of an RSA public key, or undefined when it is not one. */
function publicKeyBits(key: string | Buffer): number | undefined {
  try {
    return createPublicKey(key).asymmetricKeyDetails?.modulusLength;
  } catch {
    return undefined;
  }
}

/**
 * Reads whole packets from a socket during the login, one at a time: the socket is resumed only
 * while a packet is awaited. It keeps the wire bytes not yet handed out, so none are lost when the
 * caller takes the socket over.
 */
class PacketReader {
  readonly #socket: Socket;
  readonly #framer: MysqlFramer;
  readonly #queue: MysqlPacket[] = [];
  /** Wire bytes received and not yet returned by next(): the queued packets, then the framer's partial one. */
  #unconsumed: Buffer = EMPTY;

  constructor(socket: Socket, framer: MysqlFramer) {
    this.#socket = socket;
    this.#framer = framer;
  }

  hasBuffered(): boolean {
    return this.#unconsumed.length > 0;
  }

  async next(): Promise<MysqlPacket> {
    while (this.#queue.length === 0) {
      const chunk = await this.#read();
      this.#unconsumed = Buffer.concat([this.#unconsumed, chunk]);
      try {
        this.#queue.push(...this.#framer.push(chunk));
      } catch (error) {
        if (error instanceof WireError) throw protocolError(`the server sent a malformed packet: ${error.message}`, error);
        throw error;
      }
    }
    const packet = this.#queue.shift() as MysqlPacket;
    this.#unconsumed = this.#unconsumed.subarray(packet.bytes.length);
    return packet;
  }

  /** The bytes received past the last packet returned, copied; the reader is done. */
  release(): Buffer {
    return Buffer.from(this.#unconsumed);
  }

  #read(): Promise<Buffer> {
    const socket = this.#socket;
    return new Promise<Buffer>((resolve, reject) => {
      const cleanup = () => {
        socket.off("data", onData);
        socket.off("error", onError);
        socket.off("close", onClose);
        socket.off("end", onClose);
        socket.pause();
      };
      const onData = (data: Buffer) => {
        cleanup();
        resolve(data);
      };
      const onError = (cause: Error) => {
        cleanup();
        reject(new UpstreamError("connect_failed", "08S01", `the database connection failed during login: ${(cause as NodeJS.ErrnoException).code ?? cause.message}`, { cause }));
      };
      const onClose = () => {
        cleanup();
        reject(new UpstreamError("connect_failed", "08S01", "the database closed the connection during login"));
      };
      socket.on("data", onData);
      socket.once("error", onError);
      socket.once("close", onClose);
      socket.once("end", onClose);
      socket.resume();
    });
  }
}


/** The server's ERR: credentials and account errors are auth_failed, with the server's words kept as the cause only. */
function serverError(error: mysql.ErrPacket): MysqlServerError {
  const sqlstate = error.sqlState ?? "HY000";
  if (AUTH_ERRNOS.has(error.code)) {
    // Which account the agent logs in as, and why it was refused, is the agent's business: the cause, not the message.
    return new MysqlServerError("auth_failed", sqlstate, error.code, `the database refused the agent's credentials: error ${error.code} (${sqlstate})`, { cause: error.message });
  }
  return new MysqlServerError("server_error", sqlstate, error.code, `the database refused the session: error ${error.code} (${sqlstate}): ${error.message}`);
}

function protocolError(message: string, cause?: unknown): UpstreamError {
  return new UpstreamError("protocol_error", "08S01", message, cause === undefined ? undefined : { cause });
}

/** Runs a decoder on the server's bytes; its WireError becomes a protocol_error. */
function decode<T>(step: () => T): T {
  try {
    return step();
  } catch (error) {
    if (error instanceof WireError) throw protocolError(`the server sent a malformed packet: ${error.message}`, error);
    throw error;
  }
}
