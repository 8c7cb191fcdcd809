import { isLoopback, Secret } from "@airlock/runtime";
import { mysql, mysqlAuth, mysqlCachingSha2, mysqlCapabilities, mysqlServerStatus, WireError, type MysqlPacket } from "@airlock/wire";
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { TLSSocket, type SecureContext } from "node:tls";

/**
 * The server half of the MySQL login on a gateway listener: the handshake, TLS, and the client's
 * password in clear, which is its OIDC token. The token only arrives in clear through
 * mysql_clear_password or caching_sha2_password's full authentication (in clear over TLS, or
 * RSA-encrypted without it).
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html
 */

const C = mysqlCapabilities;
const { caching_sha2_password, mysql_clear_password } = mysqlAuth.authPluginNames;

/** The plugins a gateway listener announces; the token arrives in clear through either. */
export type MysqlListenerAuthPlugin = typeof caching_sha2_password | typeof mysql_clear_password;

/** An RSA key pair for caching_sha2_password's full authentication without TLS. */
export interface MysqlRsaKey {
  readonly privateKey: KeyObject;
  /** What a client gets when it asks for the key (SPKI PEM). */
  readonly publicKeyPem: string;
  /** The modulus length: the key carries tokens of at most bits / 8 - 43 bytes. */
  readonly bits: number;
}

/** Options of {@link acceptMysqlLogin}. */
export interface MysqlHandshakeOptions {
  /** Announced as the server's version; `<real server version>-airlock`. */
  readonly serverVersion: string;
  /** Announced as the connection id (the client shows it, KILL would name it). */
  readonly connectionId: number;
  /** Offers TLS (CLIENT_SSL) with this context; absent, TLS is not offered. */
  readonly secureContext?: SecureContext;
  /** The client's address, for the loopback rule; the socket's remoteAddress when absent. */
  readonly remoteAddress?: string;
  /**
   * Accepts the token in clear without TLS from addresses that are not loopback (from loopback it
   * always is). The RSA path needs no TLS and is not affected.
   */
  readonly insecureAllowPlaintext?: boolean;
  /** The key of the RSA path; see {@link createMysqlRsaKey}. */
  readonly rsaKey: MysqlRsaKey;
  /** The plugin the greeting names; default caching_sha2_password, which every current client speaks. */
  readonly authPlugin?: MysqlListenerAuthPlugin;
  /**
   * The capabilities announced, to match the real server's where the relay passes packets through;
   * default {@link MYSQL_LISTENER_CAPABILITIES}. CLIENT_SSL is added or removed by `secureContext`.
   */
  readonly capabilities?: number;
  /** The collation id announced; default 45 (utf8mb4_general_ci). */
  readonly characterSet?: number;
  /** Largest packet accepted during the login, under 16 MiB; default 64 KiB. */
  readonly maxPacketBytes?: number;
  /** Longest token accepted, in bytes; default 16 KiB. */
  readonly maxTokenBytes?: number;
  /** The whole login must end within this time; default 10 s. */
  readonly timeoutMs?: number;
}

/** A client that sent its user and token: the caller verifies the token, then calls {@link sendMysqlLoginOk} or {@link refuseMysqlLogin}. */
export interface MysqlClientLogin {
  /**
   * The client's stream: a TLSSocket after TLS, else the socket given; paused, with no listeners of
   * this module left, so the caller attaches its 'error' listener at once.
   */
  readonly socket: Duplex;
  readonly tls: boolean;
  readonly user: string;
  /** The schema of CLIENT_CONNECT_WITH_DB; absent when the client named none. */
  readonly schema?: string;
  /** The password the client sent: its OIDC token. */
  readonly token: Secret;
  /** What the client asked for and the listener announced. */
  readonly capabilities: number;
  /** What the client asked for, as it sent it. */
  readonly clientCapabilities: number;
  /** MariaDB's extended capabilities of the client; the listener announces none, so none are in force. */
  readonly mariadbCapabilities: number;
  /** The collation id the client asked for. */
  readonly characterSet: number;
  readonly maxPacketSize: number;
  /** Connection attributes (CLIENT_CONNECT_ATTRS), empty when the client sent none. */
  readonly attributes: ReadonlyMap<string, string>;
  /** How the token arrived. */
  readonly authPlugin: MysqlListenerAuthPlugin;
  /** The sequence id the listener's next packet, the OK or ERR that ends the login, carries. */
  readonly sequenceId: number;
  /** Bytes the client sent after its last authentication packet (normally none), copied. */
  readonly leftover: Buffer;
}

/**
 * Why a login failed before the token was obtained.
 *
 * - `bad_handshake`: a packet that is not what the login expects, or not decodable.
 * - `packets_out_of_order`: a packet with the wrong sequence id.
 * - `packet_too_large`: a packet or token over the configured maximum.
 * - `tls_required`: the token would come in clear without TLS from an address that is not loopback.
 * - `tls_failed`: the client asked for TLS that is not offered, or the TLS handshake failed.
 * - `auth_unsupported`: the client cannot send its password by a plugin the listener accepts.
 * - `bad_token`: the RSA-encrypted token does not decrypt with the listener's key.
 * - `timeout`: the login took longer than allowed.
 * - `client_closed`: the client closed the connection, or it failed, during the login.
 */
export type MysqlHandshakeErrorCode =
  | "bad_handshake"
  | "packets_out_of_order"
  | "packet_too_large"
  | "tls_required"
  | "tls_failed"
  | "auth_unsupported"
  | "bad_token"
  | "timeout"
  | "client_closed";

/** The error {@link acceptMysqlLogin} rejects with, after sending the client an ERR where it could, and closing. */
export class MysqlHandshakeError extends Error {
  readonly code: MysqlHandshakeErrorCode;
  /** What the client was sent, when anything. */
  readonly sent?: mysql.ErrPacket;

  constructor(code: MysqlHandshakeErrorCode, message: string, options?: { cause?: unknown; sent?: mysql.ErrPacket | undefined }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MysqlHandshakeError";
    this.code = code;
    if (options?.sent !== undefined) this.sent = options.sent;
  }
}

/**
 * What a listener announces by default: the 4.1 protocol with pluggable authentication, multiple
 * statements and results, session tracking and DEPRECATE_EOF, which MySQL 8 and MariaDB 10.11 both
 * have. Not: LOCAL_FILES (LOAD DATA LOCAL only where policy allows), COMPRESS, QUERY_ATTRIBUTES
 * (MariaDB lacks them), OPTIONAL_RESULTSET_METADATA.
 */
export const MYSQL_LISTENER_CAPABILITIES =
  (C.CLIENT_LONG_PASSWORD |
    C.CLIENT_FOUND_ROWS |
    C.CLIENT_LONG_FLAG |
    C.CLIENT_CONNECT_WITH_DB |
    C.CLIENT_IGNORE_SPACE |
    C.CLIENT_PROTOCOL_41 |
    C.CLIENT_INTERACTIVE |
    C.CLIENT_IGNORE_SIGPIPE |
    C.CLIENT_TRANSACTIONS |
    C.CLIENT_SECURE_CONNECTION |
    C.CLIENT_MULTI_STATEMENTS |
    C.CLIENT_MULTI_RESULTS |
    C.CLIENT_PS_MULTI_RESULTS |
    C.CLIENT_PLUGIN_AUTH |
    C.CLIENT_CONNECT_ATTRS |
    C.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
    C.CLIENT_SESSION_TRACK |
    C.CLIENT_DEPRECATE_EOF) >>>
  0;

/** What the listener cannot do without, whatever the options say. */
const REQUIRED = (C.CLIENT_PROTOCOL_41 | C.CLIENT_SECURE_CONNECTION | C.CLIENT_PLUGIN_AUTH) >>> 0;
const SCRAMBLE_BYTES = 20;
const DEFAULT_CHARACTER_SET = 45;
const DEFAULT_MAX_PACKET = 64 * 1024;
const DEFAULT_MAX_TOKEN = 16 * 1024;
const DEFAULT_TIMEOUT_MS = 10_000;
const EMPTY = Buffer.alloc(0);

/**
 * The ERR packets of the login, with the server's own numbers and states.
 * https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html
 */
export const mysqlLoginErrors = {
  /** ER_ACCESS_DENIED_ERROR. */
  accessDenied: (user: string, reason: string): mysql.ErrPacket => ({ code: 1045, sqlState: "28000", message: `access denied for user \`${user}\`: ${reason}` }),
  /** ER_HANDSHAKE_ERROR. */
  badHandshake: (reason: string): mysql.ErrPacket => ({ code: 1043, sqlState: "08S01", message: `bad handshake: ${reason}` }),
  /** ER_NET_PACKETS_OUT_OF_ORDER. */
  packetsOutOfOrder: (): mysql.ErrPacket => ({ code: 1156, sqlState: "08S01", message: "got packets out of order" }),
  /** ER_NET_PACKET_TOO_LARGE. */
  packetTooLarge: (): mysql.ErrPacket => ({ code: 1153, sqlState: "08S01", message: "got a packet bigger than the login allows" }),
  /** ER_NOT_SUPPORTED_AUTH_MODE. */
  notSupportedAuthMode: (reason: string): mysql.ErrPacket => ({ code: 1251, sqlState: "08004", message: `client does not support the authentication the gateway needs: ${reason}` }),
} as const;

/** Generates a key pair for the RSA path (node:crypto, 2048 bits by default); a listener keeps one for its life. */
export function createMysqlRsaKey(bits = 2048): MysqlRsaKey {
  if (!Number.isInteger(bits) || bits < 1024) throw new TypeError("bits must be an integer of at least 1024");
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: bits });
  return { privateKey, publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(), bits };
}

/** A configured RSA private key (PEM) for the RSA path. */
export function mysqlRsaKeyFromPem(privateKeyPem: string | Buffer): MysqlRsaKey {
  const privateKey = createPrivateKey(privateKeyPem);
  const bits = privateKey.asymmetricKeyDetails?.modulusLength;
  if (privateKey.asymmetricKeyType !== "rsa" || bits === undefined) throw new TypeError("privateKeyPem must be an RSA private key");
  return { privateKey, publicKeyPem: createPublicKey(privateKey).export({ type: "spki", format: "pem" }).toString(), bits };
}

/**
 * Runs the server half of the login on a client socket up to the token: sends the handshake,
 * upgrades to TLS on SSLRequest, reads HandshakeResponse41, and obtains the password in clear by
 * mysql_clear_password or caching_sha2_password's full authentication (switching the client to one
 * of them when it answered with another plugin). The clear paths need TLS unless the client is on
 * loopback or `insecureAllowPlaintext` is set; the RSA path does not.
 *
 * On failure it sends the client an ERR where the protocol allows one (1043, 1045, 1153, 1156,
 * 1251), closes the socket and rejects with a {@link MysqlHandshakeError}.
 */
export async function acceptMysqlLogin(socket: Socket, options: MysqlHandshakeOptions): Promise<MysqlClientLogin> {
  const exchange = new LoginExchange(socket, options);
  let timer: NodeJS.Timeout | undefined;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new MysqlHandshakeError("timeout", `the login took longer than ${timeoutMs} ms`)), timeoutMs);
  });
  const login = exchange.run();
  login.catch(() => undefined);
  try {
    return await Promise.race([login, timeout]);
  } catch (error) {
    throw exchange.fail(error);
  } finally {
    clearTimeout(timer);
  }
}

/** Ends a login the caller accepted: the OK, after which the client sends its first command (sequence id 0). */
export function sendMysqlLoginOk(login: MysqlClientLogin, ok: mysql.OkPacketInit = {}): void {
  const packet = mysql.encodeOk({ statusFlags: mysqlServerStatus.SERVER_STATUS_AUTOCOMMIT, ...ok }, login.capabilities);
  login.socket.write(mysql.encodePacket(login.sequenceId, packet));
}

/** Ends a login the caller refused (a token that does not verify: {@link mysqlLoginErrors}.accessDenied): the ERR, then the socket is closed. */
export function refuseMysqlLogin(login: MysqlClientLogin, error: mysql.ErrPacket): void {
  endWith(login.socket, mysql.encodePacket(login.sequenceId, mysql.encodeErr(error)));
}

/** The login of one client, in order; {@link run} reads and answers, {@link fail} cleans up. */
class LoginExchange {
  readonly #raw: Socket;
  readonly #options: MysqlHandshakeOptions;
  readonly #scramble = createScramble();
  readonly #capabilities: number;
  readonly #maxToken: number;
  #stream: Duplex;
  #reader: PacketReader;
  #tls = false;
  #user: string | undefined;
  /** The sequence id of the listener's next packet. */
  #sequenceId = 0;
  /** Whether an ERR may still go out: not twice, and not once the client is gone. */
  #canReply = true;
  readonly #guard = () => undefined;

  constructor(socket: Socket, options: MysqlHandshakeOptions) {
    this.#raw = socket;
    this.#stream = socket;
    this.#options = options;
    const announced = options.capabilities ?? MYSQL_LISTENER_CAPABILITIES;
    const withTls = options.secureContext === undefined ? announced & ~C.CLIENT_SSL : announced | C.CLIENT_SSL;
    this.#capabilities = (withTls | REQUIRED) >>> 0;
    this.#maxToken = options.maxTokenBytes ?? DEFAULT_MAX_TOKEN;
    const maxPacket = options.maxPacketBytes ?? DEFAULT_MAX_PACKET;
    if (!Number.isInteger(maxPacket) || maxPacket < 64 || maxPacket >= 0xffffff) throw new TypeError("options.maxPacketBytes must be an integer from 64 to 16 MiB - 2");
    this.#reader = new PacketReader(socket, maxPacket);
    // An error between two reads must not go unhandled; each read handles it itself.
    socket.on("error", this.#guard);
    socket.pause();
  }

  async run(): Promise<MysqlClientLogin> {
    const options = this.#options;
    const announcedPlugin = options.authPlugin ?? caching_sha2_password;
    this.#send(
      mysql.encodeHandshakeV10({
        serverVersion: options.serverVersion,
        connectionId: options.connectionId,
        authPluginData: this.#scramble,
        capabilities: this.#capabilities,
        characterSet: options.characterSet ?? DEFAULT_CHARACTER_SET,
        statusFlags: mysqlServerStatus.SERVER_STATUS_AUTOCOMMIT,
        authPluginName: announcedPlugin,
      }),
    );
    let packet = await this.#next();
    if (mysql.isSSLRequest(packet.payload)) {
      this.#startTls();
      packet = await this.#next();
    }
    const response = this.#decode(() => mysql.decodeHandshakeResponse41(packet.payload));
    this.#user = response.username;
    if (this.#tls && !mysql.hasFlag(response.capabilities, C.CLIENT_SSL)) throw this.#badHandshake("the response over TLS does not have CLIENT_SSL");
    const capabilities = (response.capabilities & this.#capabilities) >>> 0;
    if (!mysql.hasFlag(capabilities, C.CLIENT_PLUGIN_AUTH) || !mysql.hasFlag(capabilities, C.CLIENT_SECURE_CONNECTION)) {
      throw this.#refuse("auth_unsupported", mysqlLoginErrors.notSupportedAuthMode("the client lacks CLIENT_PLUGIN_AUTH or CLIENT_SECURE_CONNECTION"));
    }
    const { token, plugin } = await this.#obtainToken(response.authPluginName ?? "", response.authResponse);
    const leftover = this.#reader.release();
    this.#stream.off("error", this.#guard);
    this.#raw.off("error", this.#guard);
    this.#stream.pause();
    const schema = mysql.hasFlag(capabilities, C.CLIENT_CONNECT_WITH_DB) && response.database !== undefined && response.database !== "" ? response.database : undefined;
    return {
      socket: this.#stream,
      tls: this.#tls,
      user: response.username,
      ...(schema === undefined ? {} : { schema }),
      token: new Secret(token),
      capabilities,
      clientCapabilities: response.capabilities,
      mariadbCapabilities: response.mariadbCapabilities,
      characterSet: response.characterSet,
      maxPacketSize: response.maxPacketSize,
      attributes: response.connectAttributes ?? new Map(),
      authPlugin: plugin,
      sequenceId: this.#sequenceId,
      leftover,
    };
  }

  /** The client's answer is already the token, or the listener asks for it by full authentication or a switch. */
  async #obtainToken(clientPlugin: string, authResponse: Buffer): Promise<{ token: string; plugin: MysqlListenerAuthPlugin }> {
    if (clientPlugin === mysql_clear_password) {
      this.#requireClearTransport();
      return { token: this.#token(this.#decode(() => mysqlAuth.decodeClearPassword(authResponse))), plugin: mysql_clear_password };
    }
    // Over TLS, caching_sha2's full authentication sends the token in clear. Without TLS it would
    // encrypt it with RSA, which cannot carry a JWT (at most bits / 8 - 43 bytes): where the clear
    // password is acceptable (loopback, or allowed), switch to it instead.
    if (clientPlugin === caching_sha2_password && (this.#tls || !this.#clearTransport())) return { token: await this.#fullAuthentication(), plugin: caching_sha2_password };
    // mysql_native_password and the rest answer with hashes: ask for a plugin that sends the password.
    // https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_auth_switch_request.html
    if (this.#clearTransport()) {
      this.#send(mysql.encodeAuthSwitchRequest({ pluginName: mysql_clear_password, pluginData: EMPTY }));
      const answer = await this.#next();
      return { token: this.#token(this.#decode(() => mysqlAuth.decodeClearPassword(answer.payload))), plugin: mysql_clear_password };
    }
    this.#send(mysql.encodeAuthSwitchRequest({ pluginName: caching_sha2_password, pluginData: Buffer.concat([this.#scramble, Buffer.from([0])]) }));
    await this.#next(); // the fast-path scramble, which the listener cannot check: it does not know the token
    return { token: await this.#fullAuthentication(), plugin: caching_sha2_password };
  }

  /**
   * caching_sha2_password's full authentication: the password in clear over TLS, RSA-encrypted
   * without it (after sending the public key when the client asks for it).
   * https://dev.mysql.com/doc/dev/mysql-server/latest/page_caching_sha2_authentication_exchanges.html
   */
  async #fullAuthentication(): Promise<string> {
    this.#send(mysql.encodeAuthMoreData(Buffer.from([mysqlCachingSha2.PERFORM_FULL_AUTHENTICATION])));
    let answer = await this.#next();
    if (this.#tls) return this.#token(this.#decode(() => mysqlAuth.decodeClearPassword(answer.payload)));
    if (answer.payload.length === 1 && answer.payload[0] === mysqlCachingSha2.REQUEST_PUBLIC_KEY) {
      this.#send(mysql.encodeAuthMoreData(Buffer.from(this.#options.rsaKey.publicKeyPem, "ascii")));
      answer = await this.#next();
    }
    const modulusBytes = Math.ceil(this.#options.rsaKey.bits / 8);
    if (answer.payload.length !== modulusBytes) {
      throw this.#refuse("bad_token", mysqlLoginErrors.accessDenied(this.#user ?? "", `the encrypted password has ${answer.payload.length} bytes, not ${modulusBytes}`));
    }
    let plain: Buffer;
    try {
      plain = mysqlAuth.decryptPasswordRsa(answer.payload, this.#scramble, this.#options.rsaKey.privateKey);
    } catch (cause) {
      throw this.#refuse("bad_token", mysqlLoginErrors.accessDenied(this.#user ?? "", "the encrypted password does not decrypt with the gateway's key"), cause);
    }
    return this.#token(plain);
  }

  #token(bytes: Buffer): string {
    if (bytes.length > this.#maxToken) throw this.#refuse("packet_too_large", mysqlLoginErrors.accessDenied(this.#user ?? "", `the token is longer than ${this.#maxToken} bytes`));
    return bytes.toString("utf8");
  }

  #clearTransport(): boolean {
    const address = this.#options.remoteAddress ?? this.#raw.remoteAddress ?? "";
    return this.#tls || isLoopback(address) || this.#options.insecureAllowPlaintext === true;
  }

  #requireClearTransport(): void {
    if (!this.#clearTransport()) {
      throw this.#refuse("tls_required", mysqlLoginErrors.accessDenied(this.#user ?? "", "the token may be sent in clear only over tls: connect with ssl"));
    }
  }

  #startTls(): void {
    const context = this.#options.secureContext;
    if (context === undefined || this.#tls) throw new MysqlHandshakeError("tls_failed", "the client asked for tls, which is not offered here", { sent: this.#sendErr(mysqlLoginErrors.badHandshake("tls is not offered")) });
    // The client starts TLS right after its SSLRequest, without waiting for an answer: bytes already
    // read past it are the start of the TLS handshake. Put back, TLSSocket reads them first, as TLS
    // records, so nothing sent in plaintext is ever taken as if it came through TLS.
    const early = this.#reader.release();
    if (early.length > 0) this.#raw.unshift(early);
    const secure = new TLSSocket(this.#raw, { isServer: true, secureContext: context });
    secure.on("error", this.#guard);
    this.#stream = secure;
    this.#tls = true;
    this.#reader = new PacketReader(secure, this.#reader.maxPacketBytes);
  }

  async #next(): Promise<MysqlPacket> {
    let packet: MysqlPacket;
    try {
      packet = await this.#reader.next();
    } catch (error) {
      if (error instanceof ReaderError) {
        switch (error.kind) {
          case "closed":
            this.#canReply = false;
            // An error event on the TLS socket is the handshake or a record failing; a close is the client leaving.
            if (this.#tls && error.cause !== undefined) throw new MysqlHandshakeError("tls_failed", `tls failed during the login: ${error.message}`, { cause: error.cause });
            throw new MysqlHandshakeError("client_closed", "the client closed the connection during the login", { cause: error.cause });
          case "too_large":
            throw this.#refuse("packet_too_large", mysqlLoginErrors.packetTooLarge(), error);
        }
      }
      throw error;
    }
    if (packet.sequenceId !== this.#sequenceId) {
      throw this.#refuse("packets_out_of_order", mysqlLoginErrors.packetsOutOfOrder(), `sequence id ${packet.sequenceId}, not ${this.#sequenceId}`);
    }
    this.#sequenceId = mysql.nextSequenceId(packet);
    return packet;
  }

  #send(payload: Buffer): void {
    this.#stream.write(mysql.encodePacket(this.#sequenceId, payload));
    this.#sequenceId = (this.#sequenceId + 1) & 0xff;
  }

  #decode<T>(step: () => T): T {
    try {
      return step();
    } catch (error) {
      if (error instanceof WireError) throw this.#badHandshake(error.message, error);
      throw error;
    }
  }

  #badHandshake(reason: string, cause?: unknown): MysqlHandshakeError {
    return this.#refuse("bad_handshake", mysqlLoginErrors.badHandshake(reason), cause);
  }

  /** Sends the ERR and builds the error; the socket is closed by {@link fail}. */
  #refuse(code: MysqlHandshakeErrorCode, packet: mysql.ErrPacket, cause?: unknown): MysqlHandshakeError {
    const sent = this.#sendErr(packet);
    return new MysqlHandshakeError(code, packet.message, { cause, ...(sent === undefined ? {} : { sent }) });
  }

  #sendErr(packet: mysql.ErrPacket): mysql.ErrPacket | undefined {
    if (!this.#canReply || this.#stream.destroyed || !this.#stream.writable) return undefined;
    this.#canReply = false;
    this.#stream.write(mysql.encodePacket(this.#sequenceId, mysql.encodeErr(packet)));
    return packet;
  }

  /** Closes the client's connection after a failed login; returns the error to reject with. */
  fail(error: unknown): MysqlHandshakeError {
    let failure = error instanceof MysqlHandshakeError ? error : new MysqlHandshakeError("bad_handshake", "the login failed", { cause: error });
    if (failure.code === "timeout") {
      // The client may be waiting for an answer: tell it why the connection ends.
      failure = new MysqlHandshakeError("timeout", failure.message, { sent: this.#sendErr(mysqlLoginErrors.badHandshake("the login took too long")) });
    }
    endWith(this.#stream, EMPTY);
    return failure;
  }
}

/** Ends a stream after what was written (and `last`) is flushed, and destroys it then or shortly after at the latest. */
function endWith(stream: Duplex, last: Buffer): void {
  if (stream.destroyed) return;
  // The connection is ending either way: a reset by the client now is no one's error to handle.
  stream.on("error", () => undefined);
  const timer = setTimeout(() => stream.destroy(), 1_000);
  timer.unref();
  stream.end(last, () => {
    clearTimeout(timer);
    stream.destroy();
  });
}

/** A 20-byte scramble as MySQL makes them: 7-bit, without NUL or `$` (generate_user_salt). */
function createScramble(): Buffer {
  const scramble = randomBytes(SCRAMBLE_BYTES);
  for (let i = 0; i < scramble.length; i++) {
    let byte = (scramble[i] ?? 0) & 0x7f;
    if (byte === 0 || byte === 0x24) byte++;
    scramble[i] = byte;
  }
  return scramble;
}

/** Why {@link PacketReader} could not give a packet. */
class ReaderError extends Error {
  readonly kind: "closed" | "too_large";

  constructor(kind: "closed" | "too_large", message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.kind = kind;
  }
}

/** int<3> payload length and int<1> sequence id. */
const HEADER = 4;

/**
 * Reads the client's packets during the login one at a time, taking from the stream only the bytes
 * of the packet it returns: what follows an SSLRequest is the TLS handshake and goes back to the
 * socket, and what follows the last packet is handed to the caller. The stream is resumed only while
 * a packet is awaited. Login packets are never continued (the maximum is under 16 MB), so a header
 * gives the whole length, checked before the body is awaited.
 */
class PacketReader {
  readonly #stream: Duplex;
  readonly maxPacketBytes: number;
  /** Bytes received and not yet returned as a packet. */
  #unconsumed: Buffer = EMPTY;

  constructor(stream: Duplex, maxPacketBytes: number) {
    this.#stream = stream;
    this.maxPacketBytes = maxPacketBytes;
  }

  async next(): Promise<MysqlPacket> {
    for (;;) {
      const buffered = this.#unconsumed;
      if (buffered.length >= HEADER) {
        const length = buffered.readUIntLE(0, 3);
        if (length > this.maxPacketBytes) throw new ReaderError("too_large", `packet of ${length} bytes is over the maximum of ${this.maxPacketBytes}`);
        if (buffered.length >= HEADER + length) {
          const bytes = buffered.subarray(0, HEADER + length);
          this.#unconsumed = buffered.subarray(HEADER + length);
          return { sequenceId: buffered[3] ?? 0, payload: bytes.subarray(HEADER), bytes };
        }
      }
      const chunk = await this.#read();
      this.#unconsumed = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    }
  }

  /** The bytes received past the last packet returned, copied; the reader is done. */
  release(): Buffer {
    const rest = Buffer.from(this.#unconsumed);
    this.#unconsumed = EMPTY;
    return rest;
  }

  #read(): Promise<Buffer> {
    const stream = this.#stream;
    return new Promise<Buffer>((resolve, reject) => {
      const cleanup = () => {
        stream.off("data", onData);
        stream.off("error", onError);
        stream.off("close", onClose);
        stream.off("end", onClose);
        stream.pause();
      };
      const onData = (data: Buffer) => {
        cleanup();
        resolve(data);
      };
      const onError = (cause: Error) => {
        cleanup();
        reject(new ReaderError("closed", cause.message, cause));
      };
      const onClose = () => {
        cleanup();
        reject(new ReaderError("closed", "closed"));
      };
      if (stream.destroyed || stream.readableEnded) {
        reject(new ReaderError("closed", "closed"));
        return;
      }
      stream.on("data", onData);
      stream.once("error", onError);
      stream.once("close", onClose);
      stream.once("end", onClose);
      stream.resume();
    });
  }
}
