import { isLoopback, Secret } from "@airlock/runtime";
import { createMongoFramer, mongo, mongoOpcodes, opMsgFlags, opReplyFlags, WireError, type MongoFramer, type MongoMessage, type OpMsg, type OpQuery } from "@airlock/wire";
import { Binary, serialize, type Document } from "bson";
import { randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";

/**
 * The server half of the MongoDB login on a gateway listener. Before the database session exists,
 * the gateway answers the client's handshake itself, as a standalone server (no replica set, no
 * hosts, so a driver never discovers another address and connects past the gateway), without
 * compression (the gateway must see every document), and takes the client's OIDC token by
 * MONGODB-OIDC or PLAIN. MongoDB has no in-band TLS upgrade: the listener is plain TCP or a TLS
 * server, and says which.
 * https://github.com/mongodb/specifications/blob/master/source/mongodb-handshake/handshake.md
 * https://github.com/mongodb/specifications/blob/master/source/auth/auth.md#mongodb-oidc
 */

/** The SASL mechanisms a gateway listener takes, named as the auth spec names them. */
export const mongoListenerMechanisms = {
  /** The OIDC token in `{ jwt }`, in saslStart, saslContinue after the principal step, or hello's speculativeAuthenticate. */
  MONGODB_OIDC: "MONGODB-OIDC",
  /** `\0user\0password`, the password being the token, for clients without MONGODB-OIDC. */
  PLAIN: "PLAIN",
} as const;

/** One of {@link mongoListenerMechanisms}. */
export type MongoListenerMechanism = (typeof mongoListenerMechanisms)[keyof typeof mongoListenerMechanisms];

/**
 * Server error codes of the login's replies, named as MongoDB names them (codeName).
 * https://www.mongodb.com/docs/manual/reference/error-codes/
 */
export const mongoLoginErrorCodes = {
  BadValue: 2,
  Unauthorized: 13,
  ProtocolError: 17,
  AuthenticationFailed: 18,
  MechanismUnavailable: 334,
  UnsupportedOpQueryCommand: 352,
} as const;

/** A codeName of {@link mongoLoginErrorCodes}. */
export type MongoLoginErrorCodeName = keyof typeof mongoLoginErrorCodes;

/** A command's failure as a server reports it. */
export interface MongoErrorReply {
  readonly ok: 0;
  readonly errmsg: string;
  readonly code: number;
  readonly codeName: MongoLoginErrorCodeName;
}

function errorReply(codeName: MongoLoginErrorCodeName, errmsg: string): MongoErrorReply {
  return { ok: 0, errmsg, code: mongoLoginErrorCodes[codeName], codeName };
}

/** The error replies of the login: short and generic; the full cause stays in {@link MongoHandshakeError}. */
export const mongoLoginErrors = {
  /** 18: a token refused, a malformed SASL payload, or a token sent in clear where that is not allowed. */
  authenticationFailed: (reason = "authentication failed"): MongoErrorReply => errorReply("AuthenticationFailed", reason),
  /** 334: a mechanism the gateway does not take (SCRAM-SHA-1, SCRAM-SHA-256, MONGODB-X509, GSSAPI...). */
  mechanismUnavailable: (mechanism: string, offered: readonly MongoListenerMechanism[]): MongoErrorReply =>
    errorReply("MechanismUnavailable", `authentication mechanism \`${mechanism}\` is not available on this gateway: ${describeMechanisms(offered)}`),
  /** 13: a command before authentication. */
  unauthorized: (command: string): MongoErrorReply => errorReply("Unauthorized", `command \`${command}\` requires authentication`),
  /** 17: a message the gateway cannot take; the connection is closed after it. */
  protocolError: (reason: string): MongoErrorReply => errorReply("ProtocolError", reason),
  /** 2: a command with an argument missing or of the wrong type. */
  badValue: (reason: string): MongoErrorReply => errorReply("BadValue", reason),
  /** 352: a legacy OP_QUERY that is not the handshake. */
  unsupportedOpQuery: (command: string): MongoErrorReply =>
    errorReply("UnsupportedOpQueryCommand", `unsupported OP_QUERY command \`${command}\`: the client driver may require an upgrade`),
} as const;

function describeMechanisms(offered: readonly MongoListenerMechanism[]): string {
  const ways: string[] = [];
  if (offered.includes("MONGODB-OIDC")) ways.push("use MONGODB-OIDC with the job's OIDC token");
  if (offered.includes("PLAIN")) ways.push("PLAIN with the OIDC token as the password");
  return ways.length === 0 ? "it takes no mechanism" : ways.join(", or ");
}

/**
 * What the handshake tells a client about the server, learnt from the agent's login to the real
 * server; {@link MONGO_LISTENER_SERVER_DEFAULTS} before that.
 */
export interface MongoServerFacts {
  readonly minWireVersion: number;
  readonly maxWireVersion: number;
  readonly maxBsonObjectSize: number;
  readonly maxMessageSizeBytes: number;
  readonly maxWriteBatchSize: number;
  /** Sessions and transactions are used by drivers only when the server reports it. */
  readonly logicalSessionTimeoutMinutes: number;
  /** What buildInfo reports, `major.minor.patch`. */
  readonly version: string;
}

/** MongoDB 7.0's values: wire versions 0 to 21, 16 MiB documents, 48 MB messages, 100,000 writes a batch, 30-minute sessions. */
export const MONGO_LISTENER_SERVER_DEFAULTS: MongoServerFacts = Object.freeze({
  minWireVersion: 0,
  maxWireVersion: 21,
  maxBsonObjectSize: 16 * 1024 * 1024,
  maxMessageSizeBytes: 48_000_000,
  maxWriteBatchSize: 100_000,
  logicalSessionTimeoutMinutes: 30,
  version: "7.0.0",
});

/** What the human flow of MONGODB-OIDC needs to obtain a token: the identity provider the client logs in to. */
export interface MongoOidcProviderInfo {
  readonly issuer: string;
  readonly clientId: string;
  readonly requestScopes?: readonly string[];
}

/** Options of {@link acceptMongoLogin}. */
export interface MongoHandshakeOptions {
  /** Whether the stream is a TLS connection (the listener is a TLS server); the token may come in clear otherwise only from loopback. */
  readonly tls: boolean;
  /** Announced as hello's connectionId: a positive int32, unique per connection of the listener. */
  readonly connectionId: number;
  /** The client's address, for the loopback rule; the socket's remoteAddress when absent. */
  readonly remoteAddress?: string;
  /**
   * Accepts the token without TLS from addresses that are not loopback (from loopback it always is).
   * Both mechanisms carry the token as it is, so the rule holds for both.
   */
  readonly insecureAllowPlaintext?: boolean;
  /** The mechanisms taken; both when absent. */
  readonly mechanisms?: readonly MongoListenerMechanism[];
  /** Where the MONGODB-OIDC human flow sends the client to log in; absent, the principal step is refused and a token is required. */
  readonly oidcProvider?: MongoOidcProviderInfo;
  /** Overrides of {@link MONGO_LISTENER_SERVER_DEFAULTS}. */
  readonly server?: Partial<MongoServerFacts>;
  /** Largest message accepted before authentication, header included, checked before it is buffered; default 64 KiB. */
  readonly maxMessageBytes?: number;
  /** Longest token accepted, in bytes; default 16 KiB. */
  readonly maxTokenBytes?: number;
  /** Tokens a connection may present before it is closed; default 3 (a driver retries once with a fresh token after a stale one). */
  readonly maxAttempts?: number;
  /** The client's first message must arrive within this time; default 10 s. */
  readonly timeoutMs?: number;
  /**
   * Longest wait for the client's next message before authentication; default 120 s. Driver
   * monitors never authenticate: they send hello every heartbeatFrequencyMS (10 s by default). The
   * human flow of MONGODB-OIDC waits here for a person to log in.
   */
  readonly idleTimeoutMs?: number;
  /** The clock of hello's localTime. */
  readonly now?: () => Date;
}

/** What the client says about itself in its first hello (`client`), each value cut to 256 characters. */
export interface MongoClientMetadata {
  readonly driverName?: string;
  readonly driverVersion?: string;
  readonly applicationName?: string;
  readonly platform?: string;
  readonly osType?: string;
}

/** How the reply that ends an authentication attempt is sent. */
export interface MongoLoginReply {
  /**
   * saslStart or saslContinue: an OP_MSG answering that command. speculative: the answer to the
   * hello that carried speculativeAuthenticate (an OP_REPLY when it came as a legacy OP_QUERY).
   */
  readonly via: "saslStart" | "saslContinue" | "speculative";
  /** The requestID of the message the reply answers (its responseTo). */
  readonly requestID: number;
  /** The opcode of that message: OP_MSG, or OP_QUERY for a legacy hello. */
  readonly opCode: typeof mongoOpcodes.OP_MSG | typeof mongoOpcodes.OP_QUERY;
  /** Whether the message carried a CRC-32C, which the reply then carries too. */
  readonly checksum: boolean;
  readonly conversationId: number;
}

/**
 * A client that presented a token: the caller verifies it, then calls {@link finishMongoLogin}.
 * Until then the stream is paused and no timer of the login runs: the caller bounds its verification.
 */
export interface MongoClientLogin {
  /** The client's stream. After a successful finish it is paused, with no listeners of this module left: attach an 'error' listener at once. */
  readonly socket: Duplex;
  readonly tls: boolean;
  /** The token the client presented. */
  readonly token: Secret;
  readonly mechanism: MongoListenerMechanism;
  /** PLAIN's user, or the principal name of MONGODB-OIDC's human flow; the token says who the client is, not this. */
  readonly user?: string;
  /** The database the client authenticates against: saslStart's $db, or speculativeAuthenticate's db (`$external` from drivers). */
  readonly authSource: string;
  /** From the client's first hello, when it sent any. */
  readonly clientMetadata?: MongoClientMetadata;
  readonly connectionId: number;
  readonly reply: MongoLoginReply;
  /** 1 for the connection's first token, 2 after a refused one, ... */
  readonly attempt: number;
  /** Bytes the client sent after the message that carried the token (normally none), copied. */
  readonly leftover: Buffer;
}

/**
 * Why a login failed before a token was accepted.
 *
 * - `bad_handshake`: a message that does not decode, a malformed SASL payload, a SASL step out of order.
 * - `message_too_large`: a message over the login's maximum, or a token over its own.
 * - `unsupported_protocol`: an unknown or removed opcode, OP_COMPRESSED (compression is never agreed), unknown required OP_MSG flags.
 * - `tls_required`: the token would come in clear without TLS from an address that is not loopback.
 * - `auth_unsupported`: a mechanism the gateway does not take, or the human flow without a configured provider.
 * - `auth_failed`: the client presented more refused tokens than allowed.
 * - `timeout`: the client sent nothing for longer than allowed.
 * - `client_closed`: the client closed the connection, or it failed, before authenticating.
 */
export type MongoHandshakeErrorCode =
  | "bad_handshake"
  | "message_too_large"
  | "unsupported_protocol"
  | "tls_required"
  | "auth_unsupported"
  | "auth_failed"
  | "timeout"
  | "client_closed";

/** The error a login rejects with, after sending the client an error reply where it could, and closing. */
export class MongoHandshakeError extends Error {
  readonly code: MongoHandshakeErrorCode;
  /** What the client was sent, when anything. */
  readonly sent?: MongoErrorReply;

  constructor(code: MongoHandshakeErrorCode, message: string, options?: { cause?: unknown; sent?: MongoErrorReply | undefined }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MongoHandshakeError";
    this.code = code;
    if (options?.sent !== undefined) this.sent = options.sent;
  }
}

const DEFAULT_MAX_MESSAGE = 64 * 1024;
const DEFAULT_MAX_TOKEN = 16 * 1024;
const DEFAULT_MAX_ATTEMPTS = 3;
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_IDLE_TIMEOUT_MS = 120_000;
const METADATA_CHARS = 256;
const ALL_MECHANISMS: readonly MongoListenerMechanism[] = [mongoListenerMechanisms.MONGODB_OIDC, mongoListenerMechanisms.PLAIN];
const EMPTY = Buffer.alloc(0);
const BSON_OPTIONS = { bson: { ignoreUndefined: true } } as const;
const HELLO_COMMANDS = new Set(["hello", "isMaster", "ismaster"]);

/** The exchange behind each login handed out, for {@link finishMongoLogin}. */
const exchanges = new WeakMap<MongoClientLogin, LoginExchange>();

/**
 * Runs the server half of the login on a client stream until the client presents a token: answers
 * hello / isMaster (OP_MSG, or OP_REPLY to a legacy OP_QUERY) as a standalone server without
 * compression, ping, buildInfo, getnonce and endSessions, refuses every other command with 13
 * Unauthorized, and takes the token from saslStart / saslContinue (MONGODB-OIDC, PLAIN) or from
 * hello's speculativeAuthenticate. A connection that only says hello (a driver's monitor) is
 * answered for as long as it talks.
 *
 * On a message it cannot take (malformed, an unknown opcode, OP_COMPRESSED, over the maximum) it
 * sends an error reply where the message could be answered, closes the stream and rejects with a
 * {@link MongoHandshakeError}; likewise on a mechanism it does not take (334) or a token in clear
 * where that is not allowed (18).
 */
export function acceptMongoLogin(socket: Duplex, options: MongoHandshakeOptions): Promise<MongoClientLogin> {
  return new LoginExchange(socket, options).next();
}

/**
 * Ends the attempt of a login the caller verified.
 *
 * - `ok` true: sends the final reply (saslStart / saslContinue with done: true, or the hello with
 *   `speculativeAuthenticate`); the stream is then the caller's, for the relay, with
 *   `login.leftover` first.
 * - `ok` false: sends AuthenticationFailed (18) with `errmsg`, or the hello without
 *   speculativeAuthenticate (the driver then authenticates again, with a fresh token when its
 *   cached one was stale), and resolves with the connection's next attempt, to verify in turn. After
 *   `maxAttempts` tokens the connection is closed and the promise rejects (`auth_failed`); it also
 *   rejects when the client leaves. Ignoring it is safe: the connection ends by itself.
 */
export function finishMongoLogin(login: MongoClientLogin, ok: true): void;
export function finishMongoLogin(login: MongoClientLogin, ok: false, errmsg?: string): Promise<MongoClientLogin>;
export function finishMongoLogin(login: MongoClientLogin, ok: boolean, errmsg?: string): Promise<MongoClientLogin> | undefined;
export function finishMongoLogin(login: MongoClientLogin, ok: boolean, errmsg?: string): Promise<MongoClientLogin> | undefined {
  const exchange = exchanges.get(login);
  if (exchange === undefined) throw new TypeError("login must be one that acceptMongoLogin or finishMongoLogin gave");
  if (ok) {
    exchange.succeed(login);
    return undefined;
  }
  const next = exchange.refuse(login, errmsg ?? "authentication failed");
  next.catch(() => undefined);
  return next;
}

/** The request a reply answers. */
interface Responder {
  readonly requestID: number;
  readonly opCode: typeof mongoOpcodes.OP_MSG | typeof mongoOpcodes.OP_QUERY;
  readonly checksum: boolean;
  /** An OP_MSG with moreToCome: the client expects no reply. */
  readonly silent: boolean;
}

/** A token found in a SASL step. */
interface FoundToken {
  readonly kind: "token";
  readonly token: string;
  readonly mechanism: MongoListenerMechanism;
  readonly user?: string;
  readonly authSource: string;
  readonly conversationId: number;
}

/** What a saslStart (or speculativeAuthenticate) leads to. */
type SaslOutcome =
  | FoundToken
  /** MONGODB-OIDC's principal step: the provider's details are sent and the token awaited in saslContinue. */
  | { readonly kind: "principal"; readonly conversationId: number; readonly user?: string; readonly authSource: string; readonly reply: Document }
  | { readonly kind: "refuse"; readonly code: MongoHandshakeErrorCode; readonly reply: MongoErrorReply };

/**
 * The login's lifecycle. `open`: answering, no conversation; `principal`: the human flow's token is
 * awaited in saslContinue; `verifying`: a token is with the caller, the stream paused; `done`:
 * handed to the caller or closed.
 */
type ExchangeState =
  | { readonly kind: "open" }
  | { readonly kind: "principal"; readonly conversationId: number; readonly user?: string; readonly authSource: string }
  | { readonly kind: "verifying"; readonly login: MongoClientLogin; readonly hello?: Document }
  | { readonly kind: "done"; readonly failure?: MongoHandshakeError };

const TRANSITIONS: Record<ExchangeState["kind"], readonly ExchangeState["kind"][]> = {
  open: ["open", "principal", "verifying", "done"],
  principal: ["open", "principal", "verifying", "done"],
  verifying: ["open", "done"],
  done: [],
};

/** The login of one client connection: reads and answers its messages, and hands tokens to the caller. */
class LoginExchange {
  readonly #stream: Duplex;
  readonly #options: MongoHandshakeOptions;
  readonly #server: MongoServerFacts;
  readonly #mechanisms: readonly MongoListenerMechanism[];
  readonly #maxToken: number;
  readonly #maxAttempts: number;
  readonly #idleTimeoutMs: number;
  readonly #framer: MongoFramer;
  #state: ExchangeState = { kind: "open" };
  /** Messages framed and not yet handled. */
  #queue: MongoMessage[] = [];
  /** The chunks holding the framer's unconsumed bytes (the last `framer.buffered` bytes of them). */
  #tail: Buffer[] = [];
  #writeBlocked = false;
  #listening = false;
  #timer: NodeJS.Timeout | undefined;
  #waiter: { resolve: (login: MongoClientLogin) => void; reject: (error: MongoHandshakeError) => void } | undefined;
  #metadata: MongoClientMetadata | undefined;
  #requestId = 0;
  #conversations = 0;
  #attempts = 0;

  readonly #onData = (chunk: Buffer): void => this.#receive(chunk);
  readonly #onError = (cause: Error): void => this.#fail(new MongoHandshakeError("client_closed", `the connection failed during the login: ${cause.message}`, { cause }));
  readonly #onEnd = (): void => this.#fail(new MongoHandshakeError("client_closed", "the client closed the connection during the login"));
  readonly #onDrain = (): void => {
    this.#writeBlocked = false;
    this.#flow();
  };

  constructor(stream: Duplex, options: MongoHandshakeOptions) {
    if (!Number.isInteger(options.connectionId) || options.connectionId < 1 || options.connectionId > 0x7fffffff) throw new TypeError("options.connectionId must be a positive int32");
    const maxMessage = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE;
    if (!Number.isSafeInteger(maxMessage) || maxMessage < 1024) throw new TypeError("options.maxMessageBytes must be an integer of at least 1024");
    this.#maxToken = options.maxTokenBytes ?? DEFAULT_MAX_TOKEN;
    if (!Number.isSafeInteger(this.#maxToken) || this.#maxToken < 1) throw new TypeError("options.maxTokenBytes must be a positive integer");
    this.#maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    if (!Number.isInteger(this.#maxAttempts) || this.#maxAttempts < 1) throw new TypeError("options.maxAttempts must be a positive integer");
    this.#mechanisms = options.mechanisms ?? ALL_MECHANISMS;
    if (this.#mechanisms.some((mechanism) => !ALL_MECHANISMS.includes(mechanism))) throw new TypeError("options.mechanisms must name only MONGODB-OIDC and PLAIN");
    this.#idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(timeoutMs > 0) || !(this.#idleTimeoutMs > 0)) throw new TypeError("options.timeoutMs and options.idleTimeoutMs must be positive");
    this.#stream = stream;
    this.#options = options;
    this.#server = { ...MONGO_LISTENER_SERVER_DEFAULTS, ...options.server };
    this.#framer = createMongoFramer({ maxMessageBytes: maxMessage });
    stream.on("error", this.#onError);
    stream.on("end", this.#onEnd);
    stream.on("close", this.#onEnd);
    if (stream.destroyed || stream.readableEnded) {
      this.#fail(new MongoHandshakeError("client_closed", "the client closed the connection before the login"));
      return;
    }
    this.#arm(timeoutMs);
    this.#flow();
  }

  /** The next token the client presents. */
  next(): Promise<MongoClientLogin> {
    const state = this.#state;
    if (state.kind === "done") return Promise.reject(state.failure ?? new MongoHandshakeError("client_closed", "the login is over"));
    return new Promise<MongoClientLogin>((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  succeed(login: MongoClientLogin): void {
    const state = this.#verifying(login);
    if (state === undefined) return;
    const accepted = { conversationId: login.reply.conversationId, done: true, payload: new Binary(EMPTY) };
    if (state.hello !== undefined) this.#reply(responderOf(login), { ...state.hello, speculativeAuthenticate: accepted, ok: 1 });
    else this.#reply(responderOf(login), { ...accepted, ok: 1 });
    this.#to({ kind: "done" });
    this.#release();
  }

  refuse(login: MongoClientLogin, errmsg: string): Promise<MongoClientLogin> {
    const state = this.#verifying(login);
    if (state === undefined) return this.next();
    const to = responderOf(login);
    const refused = mongoLoginErrors.authenticationFailed(errmsg);
    if (this.#attempts >= this.#maxAttempts) {
      this.#refuseAndClose("auth_failed", refused, to, `the client presented ${this.#attempts} refused tokens`);
      return this.next();
    }
    // A refused speculative token is not an error: the hello is answered without
    // speculativeAuthenticate and the driver authenticates as if it had not tried.
    this.#reply(to, state.hello === undefined ? refused : { ...state.hello, ok: 1 });
    this.#to({ kind: "open" });
    this.#arm(this.#idleTimeoutMs);
    const next = this.next();
    this.#flow();
    return next;
  }

  /** The state when `login` is the attempt being verified; undefined when the connection already ended. */
  #verifying(login: MongoClientLogin): Extract<ExchangeState, { kind: "verifying" }> | undefined {
    const state = this.#state;
    if (state.kind === "verifying" && state.login === login) return state;
    if (state.kind === "done" && state.failure !== undefined) return undefined;
    throw new TypeError("login was already finished");
  }

  #to(next: ExchangeState): void {
    if (!TRANSITIONS[this.#state.kind].includes(next.kind)) throw new Error(`mongo login: no transition from ${this.#state.kind} to ${next.kind}`);
    this.#state = next;
  }

  #reading(): boolean {
    return this.#state.kind === "open" || this.#state.kind === "principal";
  }

  /** Handles what is queued, then reads from the stream only while the login is reading and the client takes our replies. */
  #flow(): void {
    while (this.#reading() && !this.#writeBlocked) {
      const message = this.#queue.shift();
      if (message === undefined) break;
      this.#handle(message);
      if (this.#reading()) this.#arm(this.#idleTimeoutMs);
    }
    const read = this.#reading() && !this.#writeBlocked;
    if (read && !this.#listening) {
      this.#stream.on("data", this.#onData);
      this.#listening = true;
    } else if (!read && this.#listening) {
      this.#stream.off("data", this.#onData);
      this.#listening = false;
    }
    if (read) this.#stream.resume();
    else this.#stream.pause();
  }

  #receive(chunk: Buffer): void {
    let messages: MongoMessage[];
    try {
      messages = this.#framer.push(chunk);
    } catch (error) {
      // The stream cannot be resynchronised, and no request can be answered: close, as mongod does.
      const code = error instanceof WireError && error.code === "message_too_large" ? "message_too_large" : "bad_handshake";
      this.#fail(new MongoHandshakeError(code, error instanceof Error ? error.message : "the message does not frame", { cause: error }));
      return;
    }
    this.#keepTail(chunk);
    this.#queue.push(...messages);
    this.#flow();
  }

  #keepTail(chunk: Buffer): void {
    const buffered = this.#framer.buffered;
    if (buffered === 0) {
      this.#tail = [];
      return;
    }
    this.#tail.push(chunk);
    let total = this.#tail.reduce((sum, part) => sum + part.length, 0);
    while (this.#tail.length > 1 && total - (this.#tail[0]?.length ?? 0) >= buffered) total -= this.#tail.shift()?.length ?? 0;
  }

  /** Queued messages and the framer's unconsumed bytes, copied. */
  #leftover(): Buffer {
    const tail = Buffer.concat(this.#tail);
    return Buffer.concat([...this.#queue.map((message) => message.bytes), tail.subarray(tail.length - this.#framer.buffered)]);
  }

  #handle(message: MongoMessage): void {
    // A message whose header is whole can be answered even when its body is refused.
    const to: Responder = { requestID: message.requestID, opCode: message.opCode === mongoOpcodes.OP_QUERY ? mongoOpcodes.OP_QUERY : mongoOpcodes.OP_MSG, checksum: false, silent: false };
    if (message.opCode === mongoOpcodes.OP_COMPRESSED) {
      // Compression is never agreed in the hello, so the gateway sees every document uncompressed.
      this.#refuseAndClose("unsupported_protocol", mongoLoginErrors.protocolError("OP_COMPRESSED is not accepted: compression was not negotiated"), to);
      return;
    }
    let frame: ReturnType<typeof mongo.decodeMessage>;
    try {
      frame = mongo.decodeMessage(message.bytes);
    } catch (error) {
      if (!(error instanceof WireError)) throw error;
      const code = error.code === "malformed_message" ? "bad_handshake" : "unsupported_protocol";
      this.#refuseAndClose(code, mongoLoginErrors.protocolError(code === "bad_handshake" ? `malformed message: ${error.message}` : error.message), to, error);
      return;
    }
    switch (frame.opCode) {
      case mongoOpcodes.OP_MSG:
        this.#onOpMsg(frame);
        return;
      case mongoOpcodes.OP_QUERY:
        this.#onOpQuery(frame);
        return;
      default:
        this.#refuseAndClose("unsupported_protocol", mongoLoginErrors.protocolError(`a client does not send opcode ${frame.opCode}`), to);
    }
  }

  #onOpMsg(frame: OpMsg): void {
    const to: Responder = { requestID: frame.requestID, opCode: mongoOpcodes.OP_MSG, checksum: frame.checksum !== undefined, silent: (frame.flagBits & opMsgFlags.moreToCome) !== 0 };
    let command: Document;
    try {
      command = mongo.opMsgCommand(frame);
    } catch (error) {
      this.#refuseAndClose("bad_handshake", mongoLoginErrors.protocolError(error instanceof Error ? error.message : "malformed OP_MSG"), to, error);
      return;
    }
    const db = command.$db;
    if (typeof db !== "string" || db === "") {
      this.#reply(to, mongoLoginErrors.badValue("OP_MSG requests require a $db argument"));
      return;
    }
    this.#command(commandName(command), command, db, to);
  }

  /** Legacy OP_QUERY: since MongoDB 5.1 only the connection's handshake, on `<db>.$cmd`. */
  #onOpQuery(frame: OpQuery): void {
    const to: Responder = { requestID: frame.requestID, opCode: mongoOpcodes.OP_QUERY, checksum: false, silent: false };
    const dot = frame.fullCollectionName.indexOf(".");
    const db = dot === -1 ? "" : frame.fullCollectionName.slice(0, dot);
    // A command with a read preference is wrapped: { $query: command, $readPreference }.
    const wrapped = frame.query.$query ?? (commandName(frame.query) === "query" ? frame.query.query : undefined);
    const command = isDocument(wrapped) ? wrapped : frame.query;
    const name = commandName(command);
    if (!frame.fullCollectionName.endsWith(".$cmd") || db === "" || !HELLO_COMMANDS.has(name)) {
      this.#reply(to, mongoLoginErrors.unsupportedOpQuery(frame.fullCollectionName.endsWith(".$cmd") ? name : `query on ${frame.fullCollectionName}`));
      return;
    }
    this.#command(name, command, db, to);
  }

  #command(name: string, command: Document, db: string, to: Responder): void {
    switch (name) {
      case "hello":
      case "isMaster":
      case "ismaster":
        this.#hello(name, command, to);
        return;
      case "ping":
      case "endSessions":
        // No session exists before authentication: there is nothing to end.
        this.#reply(to, { ok: 1 });
        return;
      case "buildInfo":
      case "buildinfo":
        this.#reply(to, this.#buildInfo());
        return;
      case "getnonce":
        this.#reply(to, { nonce: randomBytes(8).toString("hex"), ok: 1 });
        return;
      case "saslStart":
        this.#saslStart(command, db, to);
        return;
      case "saslContinue":
        this.#saslContinue(command, db, to);
        return;
      case "authenticate": {
        // MONGODB-X509 (and the long-removed MONGODB-CR) authenticate without SASL.
        const mechanism = typeof command.mechanism === "string" ? command.mechanism : "MONGODB-X509";
        this.#refuseAndClose("auth_unsupported", mongoLoginErrors.mechanismUnavailable(mechanism, this.#mechanisms), to);
        return;
      }
      default:
        this.#reply(to, mongoLoginErrors.unauthorized(name));
    }
  }

  /**
   * A standalone's hello: no setName, hosts or primary, so drivers stay on this address (with
   * directConnection or without); no topologyVersion, so monitors poll instead of streaming; no
   * compression, whatever the client offers.
   * https://github.com/mongodb/specifications/blob/master/source/mongodb-handshake/handshake.md#hello-command
   */
  #hello(name: string, command: Document, to: Responder): void {
    if (this.#metadata === undefined) this.#metadata = clientMetadata(command.client);
    const reply = mongoHelloReply(name, command, this.#server, this.#options.connectionId, this.#options.now?.() ?? new Date());
    delete reply.ok;
    if (typeof command.saslSupportedMechs === "string") reply.saslSupportedMechs = [...this.#mechanisms];
    const speculative = command.speculativeAuthenticate;
    // Only a SASL start can be speculative here (MONGODB-X509's `authenticate` is not taken). A
    // speculative step that fails is left out of the reply: the driver then authenticates normally
    // and gets the error there.
    // https://github.com/mongodb/specifications/blob/master/source/auth/auth.md#speculative-authentication
    if (isDocument(speculative) && speculative.saslStart !== undefined && !to.silent) {
      const outcome = this.#startConversation(speculative, typeof speculative.db === "string" && speculative.db !== "" ? speculative.db : "admin");
      if (outcome.kind === "token") {
        this.#attempt(outcome, to, "speculative", reply);
        return;
      }
      if (outcome.kind === "principal") {
        const { ok: _ok, ...started } = outcome.reply;
        reply.speculativeAuthenticate = started;
        this.#to({ kind: "principal", conversationId: outcome.conversationId, authSource: outcome.authSource, ...(outcome.user === undefined ? {} : { user: outcome.user }) });
      }
    }
    reply.ok = 1;
    this.#reply(to, reply);
  }

  #buildInfo(): Document {
    const version = this.#server.version;
    const parts = version.split(/[.-]/).slice(0, 3).map((part) => Number.parseInt(part, 10));
    const versionArray = [0, 1, 2].map((index) => (Number.isSafeInteger(parts[index]) ? (parts[index] as number) : 0));
    return { version, versionArray: [...versionArray, 0], bits: 64, debug: false, maxBsonObjectSize: this.#server.maxBsonObjectSize, ok: 1 };
  }

  #saslStart(command: Document, db: string, to: Responder): void {
    if (to.silent) {
      this.#refuseAndClose("bad_handshake", mongoLoginErrors.protocolError("saslStart must not be sent with moreToCome"), to);
      return;
    }
    const outcome = this.#startConversation(command, db);
    switch (outcome.kind) {
      case "token":
        this.#attempt(outcome, to, "saslStart");
        return;
      case "principal":
        this.#to({ kind: "principal", conversationId: outcome.conversationId, authSource: outcome.authSource, ...(outcome.user === undefined ? {} : { user: outcome.user }) });
        this.#reply(to, outcome.reply);
        return;
      case "refuse":
        this.#refuseAndClose(outcome.code, outcome.reply, to);
    }
  }

  /** The step after MONGODB-OIDC's principal step: `{ jwt }` in the conversation the listener started. */
  #saslContinue(command: Document, db: string, to: Responder): void {
    const state = this.#state;
    if (to.silent) {
      this.#refuseAndClose("bad_handshake", mongoLoginErrors.protocolError("saslContinue must not be sent with moreToCome"), to);
      return;
    }
    if (state.kind !== "principal" || numeric(command.conversationId) !== state.conversationId) {
      this.#refuseAndClose("bad_handshake", mongoLoginErrors.protocolError("no sasl conversation in progress: send saslStart first"), to);
      return;
    }
    const step = this.#oidcPayload(command.payload);
    if (step.kind === "refuse") {
      this.#refuseAndClose(step.code, step.reply, to);
      return;
    }
    if (step.jwt === undefined) {
      this.#refuseAndClose("bad_handshake", mongoLoginErrors.authenticationFailed("MONGODB-OIDC expects `jwt` after the principal step"), to);
      return;
    }
    const found: FoundToken = {
      kind: "token",
      token: step.jwt,
      mechanism: mongoListenerMechanisms.MONGODB_OIDC,
      authSource: db === "" ? state.authSource : db,
      conversationId: state.conversationId,
      ...(state.user === undefined ? {} : { user: state.user }),
    };
    this.#attempt(found, to, "saslContinue");
  }

  /** saslStart's mechanism and payload: a token, MONGODB-OIDC's principal step, or a refusal. No state changes here. */
  #startConversation(command: Document, authSource: string): SaslOutcome {
    const mechanism = command.mechanism;
    if (typeof mechanism !== "string" || !this.#mechanisms.includes(mechanism as MongoListenerMechanism)) {
      return { kind: "refuse", code: "auth_unsupported", reply: mongoLoginErrors.mechanismUnavailable(typeof mechanism === "string" ? mechanism : "", this.#mechanisms) };
    }
    if (!this.#clearTransport()) {
      return { kind: "refuse", code: "tls_required", reply: mongoLoginErrors.authenticationFailed(`${mechanism} carries the token in clear: connect with tls`) };
    }
    const conversationId = this.#conversations + 1;
    if (mechanism === mongoListenerMechanisms.PLAIN) {
      const bytes = payloadBytes(command.payload);
      const parts = bytes === undefined ? undefined : splitPlain(bytes);
      if (parts === undefined) return { kind: "refuse", code: "bad_handshake", reply: mongoLoginErrors.authenticationFailed("malformed PLAIN payload") };
      const tooLong = this.#tokenTooLong(parts.password);
      if (tooLong !== undefined) return tooLong;
      this.#conversations = conversationId;
      return { kind: "token", token: parts.password, mechanism, authSource, conversationId, ...(parts.user === "" ? {} : { user: parts.user }) };
    }
    const step = this.#oidcPayload(command.payload);
    if (step.kind === "refuse") return step;
    if (step.jwt !== undefined) {
      this.#conversations = conversationId;
      return { kind: "token", token: step.jwt, mechanism: mongoListenerMechanisms.MONGODB_OIDC, authSource, conversationId, ...(step.user === undefined ? {} : { user: step.user }) };
    }
    // The principal step of the human flow: tell the client where to log in.
    // https://github.com/mongodb/specifications/blob/master/source/auth/auth.md#principal-step-request
    const provider = this.#options.oidcProvider;
    if (provider === undefined) {
      return {
        kind: "refuse",
        code: "auth_unsupported",
        reply: mongoLoginErrors.authenticationFailed("MONGODB-OIDC needs a token here: give the driver OIDC_CALLBACK or an ENVIRONMENT, not the human flow"),
      };
    }
    this.#conversations = conversationId;
    const info: Document = { issuer: provider.issuer, clientId: provider.clientId };
    if (provider.requestScopes !== undefined) info.requestScopes = [...provider.requestScopes];
    return {
      kind: "principal",
      conversationId,
      authSource,
      ...(step.user === undefined ? {} : { user: step.user }),
      reply: { conversationId, done: false, payload: new Binary(serialize(info)), ok: 1 },
    };
  }

  /** MONGODB-OIDC's payload: a BSON document with `jwt` (the token) or `n` (the principal name), or neither. */
  #oidcPayload(payload: unknown): { readonly kind: "step"; readonly jwt?: string; readonly user?: string } | Extract<SaslOutcome, { kind: "refuse" }> {
    const malformed = { kind: "refuse", code: "bad_handshake", reply: mongoLoginErrors.authenticationFailed("malformed MONGODB-OIDC payload") } as const;
    const bytes = payloadBytes(payload);
    if (bytes === undefined) return malformed;
    let document: Document;
    try {
      document = mongo.decodeDocument(bytes);
    } catch {
      return malformed;
    }
    const { jwt, n } = document;
    if (jwt !== undefined) {
      if (typeof jwt !== "string" || jwt === "") return malformed;
      const tooLong = this.#tokenTooLong(jwt);
      if (tooLong !== undefined) return tooLong;
      return { kind: "step", jwt };
    }
    if (n !== undefined && typeof n !== "string") return malformed;
    return n === undefined || n === "" ? { kind: "step" } : { kind: "step", user: n.slice(0, METADATA_CHARS) };
  }

  #tokenTooLong(token: string): Extract<SaslOutcome, { kind: "refuse" }> | undefined {
    if (Buffer.byteLength(token, "utf8") <= this.#maxToken) return undefined;
    return { kind: "refuse", code: "message_too_large", reply: mongoLoginErrors.authenticationFailed(`the token is longer than ${this.#maxToken} bytes`) };
  }

  #clearTransport(): boolean {
    const address = this.#options.remoteAddress ?? (this.#stream as { remoteAddress?: string }).remoteAddress ?? "";
    return this.#options.tls || isLoopback(address) || this.#options.insecureAllowPlaintext === true;
  }

  /** Hands a token to the caller: the stream pauses until {@link finishMongoLogin}. */
  #attempt(found: FoundToken, to: Responder, via: MongoLoginReply["via"], hello?: Document): void {
    this.#attempts++;
    const login: MongoClientLogin = {
      socket: this.#stream,
      tls: this.#options.tls,
      token: new Secret(found.token),
      mechanism: found.mechanism,
      ...(found.user === undefined ? {} : { user: found.user }),
      authSource: found.authSource,
      ...(this.#metadata === undefined ? {} : { clientMetadata: this.#metadata }),
      connectionId: this.#options.connectionId,
      reply: { via, requestID: to.requestID, opCode: to.opCode, checksum: to.checksum, conversationId: found.conversationId },
      attempt: this.#attempts,
      leftover: this.#leftover(),
    };
    exchanges.set(login, this);
    this.#to({ kind: "verifying", login, ...(hello === undefined ? {} : { hello }) });
    this.#disarm();
    this.#flow();
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.resolve(login);
  }

  #reply(to: Responder, document: Document): void {
    if (to.silent) return;
    const requestID = ++this.#requestId;
    const bytes =
      to.opCode === mongoOpcodes.OP_QUERY
        ? mongo.encodeOpReply({ requestID, responseTo: to.requestID, responseFlags: opReplyFlags.AwaitCapable, documents: [document] }, BSON_OPTIONS)
        : mongo.encodeOpMsg({ requestID, responseTo: to.requestID, body: document, checksum: to.checksum }, BSON_OPTIONS);
    const stream = this.#stream;
    if (stream.destroyed || !stream.writable) return;
    if (!stream.write(bytes) && !this.#writeBlocked) {
      // A client that sends and does not read must not grow our write buffer: stop reading until it drains.
      this.#writeBlocked = true;
      stream.once("drain", this.#onDrain);
    }
  }

  /** Sends the error reply (when the request can be answered), closes and fails the login. */
  #refuseAndClose(code: MongoHandshakeErrorCode, reply: MongoErrorReply, to: Responder, cause?: unknown): void {
    const sent = to.silent ? undefined : reply;
    this.#reply(to, reply);
    this.#fail(new MongoHandshakeError(code, typeof cause === "string" ? `${reply.errmsg}: ${cause}` : reply.errmsg, { cause: typeof cause === "string" ? undefined : cause, sent }));
  }

  #fail(error: MongoHandshakeError): void {
    if (this.#state.kind === "done") return;
    this.#to({ kind: "done", failure: error });
    this.#disarm();
    this.#queue = [];
    this.#release();
    endWith(this.#stream);
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(error);
  }

  /** Removes this module's listeners; the stream stays paused for whoever has it next. */
  #release(): void {
    const stream = this.#stream;
    stream.off("data", this.#onData);
    stream.off("error", this.#onError);
    stream.off("end", this.#onEnd);
    stream.off("close", this.#onEnd);
    stream.off("drain", this.#onDrain);
    this.#listening = false;
    stream.pause();
  }

  #arm(ms: number): void {
    this.#disarm();
    this.#timer = setTimeout(() => {
      this.#fail(new MongoHandshakeError("timeout", `the client sent nothing for ${ms} ms during the login`));
    }, ms);
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * A standalone's answer to hello / isMaster: no setName, hosts or primary, so drivers stay on the
 * gateway's address; no topologyVersion, so monitors poll; no compression. The relay answers the
 * hellos of an authenticated session with it too, so the real server's topology never shows.
 */
export function mongoHelloReply(name: string, command: Document, facts: MongoServerFacts, connectionId: number, now: Date): Document {
  const reply: Document = name === "hello" ? { isWritablePrimary: true } : { ismaster: true };
  if (command.helloOk === true) reply.helloOk = true;
  Object.assign(reply, {
    maxBsonObjectSize: facts.maxBsonObjectSize,
    maxMessageSizeBytes: facts.maxMessageSizeBytes,
    maxWriteBatchSize: facts.maxWriteBatchSize,
    localTime: now,
    logicalSessionTimeoutMinutes: facts.logicalSessionTimeoutMinutes,
    connectionId,
    minWireVersion: facts.minWireVersion,
    maxWireVersion: facts.maxWireVersion,
    readOnly: false,
    ok: 1,
  });
  return reply;
}

function responderOf(login: MongoClientLogin): Responder {
  return { requestID: login.reply.requestID, opCode: login.reply.opCode, checksum: login.reply.checksum, silent: false };
}

/** Ends a stream after what was written is flushed, and destroys it then or shortly after at the latest. */
function endWith(stream: Duplex): void {
  if (stream.destroyed) return;
  // The connection is ending either way: a reset by the client now is no one's error to handle.
  stream.on("error", () => undefined);
  const timer = setTimeout(() => stream.destroy(), 1_000);
  timer.unref();
  stream.end(() => {
    clearTimeout(timer);
    stream.destroy();
  });
}

/** A command's name is its first field. */
function commandName(command: Document): string {
  for (const key in command) return key;
  return "";
}

function isDocument(value: unknown): value is Document {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array) && (value as { _bsontype?: unknown })._bsontype === undefined;
}

function numeric(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value === "object" && value !== null && typeof (value as { valueOf?: unknown }).valueOf === "function") {
    const primitive = (value as { valueOf(): unknown }).valueOf();
    if (typeof primitive === "number") return primitive;
    if (typeof primitive === "bigint") return Number(primitive);
  }
  return undefined;
}

/** A SASL payload: BinData as drivers send it, or a string as old shells did. */
function payloadBytes(value: unknown): Buffer | undefined {
  if (typeof value === "string") return Buffer.from(value, "utf8");
  if (typeof value === "object" && value !== null && (value as { _bsontype?: unknown })._bsontype === "Binary") {
    const binary = value as Binary;
    return Buffer.from(binary.buffer.buffer, binary.buffer.byteOffset, binary.position);
  }
  return undefined;
}

/**
 * PLAIN's message: `[authzid] NUL authcid NUL passwd`, UTF-8.
 * https://www.rfc-editor.org/rfc/rfc4616#section-2
 */
function splitPlain(bytes: Buffer): { user: string; password: string } | undefined {
  const first = bytes.indexOf(0);
  const second = first === -1 ? -1 : bytes.indexOf(0, first + 1);
  if (first === -1 || second === -1 || bytes.indexOf(0, second + 1) !== -1) return undefined;
  const decoder = new TextDecoder("utf-8", { fatal: true });
  try {
    const user = decoder.decode(bytes.subarray(first + 1, second));
    const password = decoder.decode(bytes.subarray(second + 1));
    return password === "" ? undefined : { user: user.slice(0, METADATA_CHARS), password };
  } catch {
    return undefined;
  }
}

function clientMetadata(value: unknown): MongoClientMetadata | undefined {
  if (!isDocument(value)) return undefined;
  const text = (field: unknown): string | undefined => (typeof field === "string" && field !== "" ? field.slice(0, METADATA_CHARS) : undefined);
  const nested = (field: unknown): Document => (isDocument(field) ? field : {});
  const driver = nested(value.driver);
  const found: { -readonly [K in keyof MongoClientMetadata]: string | undefined } = {
    driverName: text(driver.name),
    driverVersion: text(driver.version),
    applicationName: text(nested(value.application).name),
    platform: text(value.platform),
    osType: text(nested(value.os).type),
  };
  const metadata: { -readonly [K in keyof MongoClientMetadata]?: string } = {};
  for (const [key, field] of Object.entries(found) as [keyof MongoClientMetadata, string | undefined][]) {
    if (field !== undefined) metadata[key] = field;
  }
  return metadata;
}
