import type { Secret } from "@airlock/runtime";
import { createMongoFramer, mongo, mongoOpcodeName, mongoOpcodes, opMsgFlags, WireError, type MongoFramer, type MongoMessage } from "@airlock/wire";
import { saslprep } from "@mongodb-js/saslprep";
import { Binary, EJSON, Long, type Document } from "bson";
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from "node:crypto";
import type { Socket } from "node:net";
import { arch, platform, release, type as osType } from "node:os";
import { promisify } from "node:util";
import type { CatalogRow } from "./catalog.js";
import { UpstreamError, type UpstreamErrorCode } from "./errors.js";
import { openSocket, SocketTracker, startTls, type SocketErrorCodes } from "./socket.js";

/**
 * The agent's login to a MongoDB server: the connection handshake (`hello`), then SCRAM
 * authentication with the agent's own credentials.
 * https://github.com/mongodb/specifications/blob/master/source/mongodb-handshake/handshake.md
 * https://github.com/mongodb/specifications/blob/master/source/auth/auth.md
 */

/** The SCRAM mechanisms the agent speaks. */
export type MongoScramMechanism = "SCRAM-SHA-256" | "SCRAM-SHA-1";

/** How the agent reaches one MongoDB server, and as whom. */
export interface MongoTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Absent: the agent does not authenticate (a server without access control). */
  readonly password?: Secret;
  /** The default database of the connection; commands carry their own `$db`, so the login does not use it. */
  readonly database?: string;
  /** The database the user is defined in (authSource); usually admin. */
  readonly authSource: string;
  /** Absent: negotiated from the server's `saslSupportedMechs` for the user, as drivers do. */
  readonly mechanism?: MongoScramMechanism;
  /** disable: plaintext; require: TLS without verification; verify-full: TLS checked against ca and the host name. MongoDB speaks TLS from the first byte. */
  readonly tls: { readonly mode: "disable" | "require" | "verify-full"; readonly ca?: Buffer; readonly servername?: string };
  /** The whole login (connect, TLS, hello, authentication) must end within this time. */
  readonly connectTimeoutMs: number;
  /** Largest message accepted from the server. */
  readonly maxMessageBytes: number;
}

/** What the session is for. */
export interface MongoLoginOptions {
  /** `client.application.name` of the handshake, shown in the server's logs and currentOp (at most 128 bytes). */
  readonly appName?: string;
  /** The agent's version, for `client.driver.version`. */
  readonly agentVersion?: string;
}

/** What the server's hello said that a relay must keep consistent towards its client. */
export interface MongoHelloFacts {
  readonly maxWireVersion: number;
  readonly minWireVersion: number;
  readonly maxBsonObjectSize: number;
  readonly maxMessageSizeBytes: number;
  readonly maxWriteBatchSize: number;
  /** Absent when the server does not support sessions. */
  readonly logicalSessionTimeoutMinutes?: number;
  /** `isWritablePrimary`, or `ismaster` of a server without `hello`. */
  readonly isWritablePrimary: boolean;
  readonly secondary?: boolean;
  /** The replica set's name, when the server is a member of one. */
  readonly setName?: string;
  /** `isdbgrid` when the server is a mongos. */
  readonly msg?: string;
  /** The server's id of this connection (as in its logs). */
  readonly connectionId?: number;
}

/** An authenticated server connection, ready for the client's commands. */
export interface MongoSession {
  /** The connection to the server: a TLSSocket with TLS, paused, with no listeners of this module left. */
  readonly socket: Socket;
  readonly tls: boolean;
  /** Bytes the server sent after its last reply of the login (normally none): they come before anything read from `socket`. */
  readonly leftover: Buffer;
  readonly hello: MongoHelloFacts;
  /** The mechanism the login used; undefined when the target has no password. */
  readonly mechanism: MongoScramMechanism | undefined;
}

/** An `ok: 0` reply of the server during the login. */
export class MongoServerError extends UpstreamError {
  /** The server's error code: 18 AuthenticationFailed, 11 UserNotFound, 13 Unauthorized... */
  readonly serverCode: number;
  readonly codeName: string;

  constructor(code: UpstreamErrorCode, serverCode: number, codeName: string, message: string, options?: { cause?: unknown }) {
    super(code, String(serverCode), message, options);
    this.name = "MongoServerError";
    this.serverCode = serverCode;
    this.codeName = codeName;
  }
}

/**
 * MongoDB error codes the agent reports for its own failures, as the server names them.
 * https://github.com/mongodb/mongo/blob/master/src/mongo/base/error_codes.yml
 */
export const mongoAgentErrorCodes = {
  HostUnreachable: 6,
  ProtocolError: 17,
  AuthenticationFailed: 18,
  CommandNotFound: 59,
  NetworkTimeout: 89,
  SSLHandshakeFailed: 141,
  MechanismUnavailable: 334,
} as const;

const codeNames = new Map<number, string>(Object.entries(mongoAgentErrorCodes).map(([name, code]) => [code, name]));

/**
 * The MongoDB code and codeName to show the client for an error of {@link connectMongo}: the
 * server's own for a {@link MongoServerError}, else the one this module chose (HostUnreachable for
 * anything it does not know).
 */
export function mongoErrorCode(error: unknown): { readonly code: number; readonly codeName: string } {
  if (error instanceof MongoServerError) return { code: error.serverCode, codeName: error.codeName };
  if (error instanceof UpstreamError) {
    const code = Number(error.sqlstate);
    const codeName = codeNames.get(code);
    if (codeName !== undefined) return { code, codeName };
  }
  return { code: mongoAgentErrorCodes.HostUnreachable, codeName: "HostUnreachable" };
}

const C = mongoAgentErrorCodes;
/** MongoDB's codes for a server that cannot be reached and a TLS handshake that failed. */
const MONGO_SOCKET_CODES: SocketErrorCodes = { unreachable: String(C.HostUnreachable), tls: String(C.SSLHandshakeFailed) };
const UNAUTHORIZED = 13;
/** Server codes that mean the credentials, or the account, were refused: UserNotFound, Unauthorized, AuthenticationFailed. */
const AUTH_CODES = new Set([11, UNAUTHORIZED, C.AuthenticationFailed]);
/** The hello defaults of the SDAM spec, for a server that leaves them out. */
const DEFAULT_MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024;
const DEFAULT_MAX_MESSAGE_SIZE_BYTES = 48_000_000;
const DEFAULT_MAX_WRITE_BATCH_SIZE = 100_000;
/** OP_MSG came with wire version 6 (MongoDB 3.6); the relay speaks nothing older. */
const MIN_WIRE_VERSION = 6;
/** The auth spec's floor for the server's iteration count, and a ceiling so a server cannot make the agent spin. */
const MIN_ITERATIONS = 4096;
const MAX_ITERATIONS = 10_000_000;
const EMPTY = Buffer.alloc(0);
const pbkdf2Async = promisify(pbkdf2);

/**
 * Connects to MongoDB (TLS when the target asks), sends `hello` on the admin database without
 * offering compression (the gateway must read every document), then authenticates by
 * SCRAM-SHA-256 or SCRAM-SHA-1 against the target's authSource and checks the server's signature.
 * Rejects with an {@link UpstreamError} (a {@link MongoServerError} for the server's own errors);
 * messages never carry the password, nor which account was refused.
 */
export async function connectMongo(target: MongoTarget, options: MongoLoginOptions = {}): Promise<MongoSession> {
  const sockets = new SocketTracker();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new UpstreamError("connect_failed", String(C.NetworkTimeout), `the login to the database at ${target.host}:${target.port} took longer than ${target.connectTimeoutMs} ms`));
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

async function logIn(target: MongoTarget, options: MongoLoginOptions, sockets: SocketTracker): Promise<MongoSession> {
  const plain = await openSocket(target, sockets, MONGO_SOCKET_CODES);
  const tls = target.tls.mode !== "disable";
  const socket = tls ? await startTls(plain, target, sockets, MONGO_SOCKET_CODES) : plain;
  const commands = new CommandChannel(socket, createMongoFramer({ maxMessageBytes: target.maxMessageBytes }));
  const password = target.password?.reveal();
  const negotiate = password !== undefined && target.mechanism === undefined;
  const hello = await handshake(commands, target, options, negotiate);
  const facts = helloFacts(hello);
  let mechanism: MongoScramMechanism | undefined;
  if (password !== undefined) {
    mechanism = target.mechanism ?? chooseMechanism(hello.saslSupportedMechs);
    await authenticate(commands, target, mechanism, password);
  }
  return { socket, tls, leftover: commands.release(), hello: facts, mechanism };
}

/**
 * hello on admin, or isMaster for a server older than hello (4.4.2). No `compression` and no
 * speculative authentication: the relay reads plain messages, and the login is the agent's alone.
 * https://github.com/mongodb/specifications/blob/master/source/mongodb-handshake/handshake.md#hello-command
 */
async function handshake(commands: CommandChannel, target: MongoTarget, options: MongoLoginOptions, negotiate: boolean): Promise<Document> {
  const body: Document = {
    helloOk: true,
    client: clientMetadata(options),
    ...(negotiate ? { saslSupportedMechs: `${target.authSource}.${target.user}` } : {}),
    $db: "admin",
  };
  let reply = await commands.run({ hello: 1, ...body });
  if (reply.ok !== 1 && errorCode(reply) === C.CommandNotFound) reply = await commands.run({ isMaster: 1, ...body });
  if (reply.ok !== 1) throw serverError(reply, "hello");
  return reply;
}

/** client metadata of the handshake; it must stay under 512 bytes. */
function clientMetadata(options: MongoLoginOptions): Document {
  const application = options.appName === undefined ? {} : { application: { name: truncateUtf8(options.appName, 128) } };
  return {
    ...application,
    driver: { name: "airlock-agent", version: options.agentVersion ?? "unknown" },
    os: { type: osType(), name: platform(), architecture: arch(), version: release() },
    platform: `Node.js ${process.version}`,
  };
}

function helloFacts(hello: Document): MongoHelloFacts {
  const maxWireVersion = integerField(hello, "maxWireVersion");
  if (maxWireVersion === undefined) throw protocolError("the server's hello has no maxWireVersion");
  if (maxWireVersion < MIN_WIRE_VERSION) {
    throw new UpstreamError("server_error", String(C.ProtocolError), `the database speaks wire version ${maxWireVersion}; the agent needs ${MIN_WIRE_VERSION} (MongoDB 3.6) or later`);
  }
  const logicalSessionTimeoutMinutes = integerField(hello, "logicalSessionTimeoutMinutes");
  const connectionId = integerField(hello, "connectionId");
  const setName = typeof hello.setName === "string" && hello.setName !== "" ? hello.setName : undefined;
  const msg = typeof hello.msg === "string" && hello.msg !== "" ? hello.msg : undefined;
  return {
    maxWireVersion,
    minWireVersion: integerField(hello, "minWireVersion") ?? 0,
    maxBsonObjectSize: integerField(hello, "maxBsonObjectSize") ?? DEFAULT_MAX_BSON_OBJECT_SIZE,
    maxMessageSizeBytes: integerField(hello, "maxMessageSizeBytes") ?? DEFAULT_MAX_MESSAGE_SIZE_BYTES,
    maxWriteBatchSize: integerField(hello, "maxWriteBatchSize") ?? DEFAULT_MAX_WRITE_BATCH_SIZE,
    isWritablePrimary: hello.isWritablePrimary === true || hello.ismaster === true,
    ...(typeof hello.secondary === "boolean" ? { secondary: hello.secondary } : {}),
    ...(logicalSessionTimeoutMinutes === undefined ? {} : { logicalSessionTimeoutMinutes }),
    ...(setName === undefined ? {} : { setName }),
    ...(msg === undefined ? {} : { msg }),
    ...(connectionId === undefined ? {} : { connectionId }),
  };
}

/**
 * The default mechanism of the auth spec: SCRAM-SHA-256 when the user has it, else SCRAM-SHA-1,
 * also when the server did not list the user's mechanisms (an unknown user then fails as any
 * wrong credentials do). A user with no SCRAM mechanism at all is refused here, clearly.
 * https://github.com/mongodb/specifications/blob/master/source/auth/auth.md#defaults
 */
function chooseMechanism(listed: unknown): MongoScramMechanism {
  if (!Array.isArray(listed)) return "SCRAM-SHA-1";
  if (listed.includes("SCRAM-SHA-256")) return "SCRAM-SHA-256";
  if (listed.includes("SCRAM-SHA-1") || listed.length === 0) return "SCRAM-SHA-1";
  const names = listed.filter((name): name is string => typeof name === "string").map((name) => `\`${name}\``);
  throw new UpstreamError("auth_unsupported", String(C.MechanismUnavailable), `the database offers the agent's account only ${names.join(", ")}; the agent speaks SCRAM-SHA-256 and SCRAM-SHA-1`);
}

/**
 * saslStart and saslContinue until the server is done; the server must prove it knows the
 * credentials (`v=`) before the session is used.
 * https://github.com/mongodb/specifications/blob/master/source/auth/auth.md#scram-sha-1
 */
async function authenticate(commands: CommandChannel, target: MongoTarget, mechanism: MongoScramMechanism, password: string): Promise<void> {
  const $db = target.authSource;
  const scram = createMongoScramClient(mechanism, target.user, password);
  const start = await commands.run({ saslStart: 1, mechanism, payload: new Binary(scram.clientFirst), autoAuthorize: 1, options: { skipEmptyExchange: true }, $db });
  if (start.ok !== 1) throw serverError(start, "saslStart");
  const conversationId = start.conversationId;
  const clientFinal = await scram.final(payloadOf(start, "saslStart"));
  let reply = await commands.run({ saslContinue: 1, conversationId, payload: new Binary(clientFinal), $db });
  if (reply.ok !== 1) throw serverError(reply, "saslContinue");
  scram.verify(payloadOf(reply, "saslContinue"));
  // A server that ignores skipEmptyExchange wants one more, empty, step.
  for (let round = 0; reply.done !== true; round++) {
    if (round === 2) throw protocolError("the server's SCRAM conversation did not end");
    reply = await commands.run({ saslContinue: 1, conversationId, payload: new Binary(EMPTY), $db });
    if (reply.ok !== 1) throw serverError(reply, "saslContinue");
  }
}

/** The client side of one SCRAM exchange as MongoDB runs it. */
export interface MongoScramClient {
  /** client-first-message, the payload of saslStart. */
  readonly clientFirst: Buffer;
  /** client-final-message (with the proof) from server-first-message, the payload of saslContinue. */
  final(serverFirst: Buffer): Promise<Buffer>;
  /** Checks server-final-message: the server must prove it knows the password too. */
  verify(serverFinal: Buffer): void;
}

/**
 * Creates the client state of one SCRAM-SHA-256 or SCRAM-SHA-1 exchange (RFC 5802, RFC 7677) with
 * MongoDB's rules: the user name is not SASLprepped (`=` and `,` escaped), SCRAM-SHA-256 SASLpreps
 * the password, SCRAM-SHA-1 uses hex md5(`user:mongo:password`) instead of it; the iteration count
 * must be at least 4096. `nonce` is injectable for test vectors. Its errors are UpstreamErrors.
 */
export function createMongoScramClient(mechanism: MongoScramMechanism, user: string, password: string, nonce: string = randomBytes(24).toString("base64")): MongoScramClient {
  const hash = mechanism === "SCRAM-SHA-1" ? "sha1" : "sha256";
  const keyLength = hash === "sha1" ? 20 : 32;
  const clientFirstBare = `n=${user.replaceAll("=", "=3D").replaceAll(",", "=2C")},r=${nonce}`;
  let serverSignature: Buffer | undefined;
  const secret = (): string => {
    if (mechanism === "SCRAM-SHA-1") return createHash("md5").update(`${user}:mongo:${password}`, "utf8").digest("hex");
    try {
      return saslprep(password);
    } catch (cause) {
      // The password has characters SASLprep prohibits: the reason, never the password.
      throw new UpstreamError("auth_failed", String(C.AuthenticationFailed), "the agent's password cannot be used with SCRAM-SHA-256: it has characters SASLprep prohibits", { cause });
    }
  };
  return {
    clientFirst: Buffer.from(`n,,${clientFirstBare}`, "utf8"),
    async final(serverFirstBytes) {
      const serverFirst = serverFirstBytes.toString("utf8");
      const attributes = parseAttributes(serverFirst);
      const serverNonce = attributes.get("r");
      const salt = attributes.get("s");
      const iterations = Number(attributes.get("i"));
      if (attributes.has("m")) throw protocolError("the server's SCRAM message has a mandatory extension the agent does not know");
      if (serverNonce === undefined || !serverNonce.startsWith(nonce) || serverNonce.length === nonce.length) {
        throw protocolError("the server's SCRAM nonce does not extend the agent's");
      }
      if (salt === undefined || salt === "" || !Number.isInteger(iterations)) throw protocolError("the server's SCRAM message lacks a salt or an iteration count");
      if (iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
        throw new UpstreamError("auth_failed", String(C.AuthenticationFailed), `the database's SCRAM iteration count ${iterations} is outside ${MIN_ITERATIONS}..${MAX_ITERATIONS}`);
      }
      const withoutProof = `c=biws,r=${serverNonce}`;
      const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
      const salted = await pbkdf2Async(secret(), Buffer.from(salt, "base64"), iterations, keyLength, hash);
      const clientKey = hmac(hash, salted, "Client Key");
      const storedKey = createHash(hash).update(clientKey).digest();
      const clientSignature = hmac(hash, storedKey, authMessage);
      const proof = Buffer.alloc(clientKey.length);
      for (let index = 0; index < proof.length; index++) proof[index] = (clientKey[index] ?? 0) ^ (clientSignature[index] ?? 0);
      serverSignature = hmac(hash, hmac(hash, salted, "Server Key"), authMessage);
      return Buffer.from(`${withoutProof},p=${proof.toString("base64")}`, "utf8");
    },
    verify(serverFinalBytes) {
      const attributes = parseAttributes(serverFinalBytes.toString("utf8"));
      const error = attributes.get("e");
      if (error !== undefined) throw new UpstreamError("auth_failed", String(C.AuthenticationFailed), "the database refused the agent's SCRAM proof", { cause: error });
      const signature = Buffer.from(attributes.get("v") ?? "", "base64");
      if (serverSignature === undefined || signature.length !== serverSignature.length || !timingSafeEqual(signature, serverSignature)) {
        throw new UpstreamError("auth_failed", String(C.AuthenticationFailed), "the database's SCRAM signature does not match: it did not prove it knows the agent's credentials");
      }
    },
  };
}

function hmac(hash: "sha1" | "sha256", key: Buffer, text: string): Buffer {
  return createHmac(hash, key).update(text, "utf8").digest();
}

function parseAttributes(message: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const part of message.split(",")) {
    const index = part.indexOf("=");
    if (index > 0) attributes.set(part.slice(0, index), part.slice(index + 1));
  }
  return attributes;
}

/**
 * Reads the database's namespaces for the gateway's catalog, on a connection of its own (the agent's
 * credentials): every collection (kind `r`) and view (kind `v`) of every database the account may
 * list (`local` and `config` left out; only `target.database` when the account may not list
 * databases; a database whose collections it may not list is skipped, as its views are then out of
 * its reach too). A view's definition is canonical Extended JSON of `{ viewOn, pipeline }`, which field
 * masking follows. MongoDB has no OIDs: `oid` is a sequence number, `columns` is empty.
 */
export async function readMongoCatalog(target: MongoTarget, options: MongoLoginOptions = {}): Promise<CatalogRow[]> {
  const session = await connectMongo(target, { appName: "airlock-agent catalog", ...options });
  const { socket } = session;
  socket.on("error", () => undefined);
  let timer: NodeJS.Timeout | undefined;
  try {
    const commands = new CommandChannel(socket, createMongoFramer({ maxMessageBytes: target.maxMessageBytes }), session.leftover);
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UpstreamError("server_error", String(C.NetworkTimeout), "the catalog commands timed out")), target.connectTimeoutMs * 3);
    });
    const read = readNamespaces(commands, target);
    read.catch(() => undefined);
    return await Promise.race([read, timeout]);
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}

async function readNamespaces(commands: CommandChannel, target: MongoTarget): Promise<CatalogRow[]> {
  const listed = await commands.run({ listDatabases: 1, nameOnly: true, authorizedDatabases: true, $db: "admin" });
  let databases: string[];
  if (listed.ok === 1 && Array.isArray(listed.databases)) {
    databases = (listed.databases as unknown[])
      .map((entry) => (entry !== null && typeof entry === "object" ? (entry as Document).name : undefined))
      .filter((name): name is string => typeof name === "string" && name !== "local" && name !== "config");
  } else if (target.database !== undefined) {
    databases = [target.database];
  } else {
    throw serverError(listed, "listDatabases");
  }
  const rows: CatalogRow[] = [];
  for (const database of databases.sort()) {
    const reply = await commands.run({ listCollections: 1, nameOnly: false, cursor: {}, $db: database });
    if (reply.ok !== 1 && errorCode(reply) === UNAUTHORIZED) continue;
    if (reply.ok !== 1) throw serverError(reply, "listCollections");
    for await (const info of drainCursor(commands, reply, database)) {
      if (typeof info.name !== "string") continue;
      const options = (info.options ?? {}) as Document;
      const view = info.type === "view";
      rows.push({
        oid: rows.length + 1,
        schema: database,
        name: info.name,
        kind: view ? "v" : "r",
        columns: [],
        definition: view ? EJSON.stringify({ viewOn: options.viewOn, pipeline: options.pipeline ?? [] }, { relaxed: false }) : "",
      });
    }
  }
  return rows;
}

/** The documents of a command cursor: firstBatch, then getMore until the id is 0. */
async function* drainCursor(commands: CommandChannel, reply: Document, database: string): AsyncGenerator<Document> {
  let cursor = reply.cursor as Document | undefined;
  for (let batch = cursor?.firstBatch; cursor !== undefined; batch = cursor?.nextBatch) {
    if (!Array.isArray(batch)) throw protocolError("the server's cursor reply has no batch");
    for (const document of batch as unknown[]) if (document !== null && typeof document === "object") yield document as Document;
    const id = cursorId(cursor.id);
    if (id === 0n) return;
    const ns = typeof cursor.ns === "string" ? cursor.ns : "";
    const next = await commands.run({ getMore: Long.fromBigInt(id), collection: ns.slice(ns.indexOf(".") + 1), $db: database });
    if (next.ok !== 1) throw serverError(next, "getMore");
    cursor = next.cursor as Document | undefined;
  }
}

function cursorId(value: unknown): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  if (Long.isLong(value)) return value.toBigInt();
  throw protocolError("the server's cursor id is not an integer");
}

/**
 * One command at a time over the login connection: each OP_MSG request waits for the reply that
 * answers it. The socket is read only while a reply is awaited, and the wire bytes not yet handed
 * out are kept, so none are lost when the caller takes the socket over.
 */
class CommandChannel {
  readonly #socket: Socket;
  readonly #framer: MongoFramer;
  readonly #queue: MongoMessage[] = [];
  /** Wire bytes received and not yet returned: the queued messages, then the framer's partial one. */
  #unconsumed: Buffer = EMPTY;
  #nextRequestId = 1;

  constructor(socket: Socket, framer: MongoFramer, leftover: Buffer = EMPTY) {
    this.#socket = socket;
    this.#framer = framer;
    if (leftover.length > 0) this.#take(leftover);
  }

  /** Sends a command (its body has `$db`) and returns the reply's body, `ok` normalised to 1 or 0. */
  async run(body: Document): Promise<Document> {
    const requestID = this.#nextRequestId++;
    this.#socket.write(mongo.encodeOpMsg({ requestID, body }));
    const message = await this.#next();
    if (message.opCode === mongoOpcodes.OP_COMPRESSED) throw protocolError("the server sent a compressed message, though the agent offered no compression");
    if (message.opCode !== mongoOpcodes.OP_MSG) throw protocolError(`the server answered with ${mongoOpcodeName(message.opCode) ?? `opcode ${message.opCode}`}, not OP_MSG`);
    const reply = decode(() => mongo.decodeOpMsg(message.bytes));
    if (reply.responseTo !== requestID) throw protocolError(`the server's reply answers request ${reply.responseTo}, not ${requestID}`);
    if ((reply.flagBits & opMsgFlags.moreToCome) !== 0) throw protocolError("the server's reply has moreToCome, which the agent did not allow");
    const document = decode(() => mongo.opMsgCommand(reply));
    return { ...document, ok: isOk(document.ok) ? 1 : 0 };
  }

  /** The bytes received past the last reply, copied; the channel is done. */
  release(): Buffer {
    return Buffer.from(this.#unconsumed);
  }

  #take(chunk: Buffer): void {
    this.#unconsumed = Buffer.concat([this.#unconsumed, chunk]);
    try {
      this.#queue.push(...this.#framer.push(chunk));
    } catch (error) {
      if (error instanceof WireError) throw protocolError(`the server sent a malformed message: ${error.message}`, error);
      throw error;
    }
  }

  async #next(): Promise<MongoMessage> {
    while (this.#queue.length === 0) this.#take(await this.#read());
    const message = this.#queue.shift() as MongoMessage;
    this.#unconsumed = this.#unconsumed.subarray(message.bytes.length);
    return message;
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
        reject(new UpstreamError("connect_failed", String(C.HostUnreachable), `the database connection failed during login: ${(cause as NodeJS.ErrnoException).code ?? cause.message}`, { cause }));
      };
      const onClose = () => {
        cleanup();
        reject(new UpstreamError("connect_failed", String(C.HostUnreachable), "the database closed the connection during login"));
      };
      socket.on("data", onData);
      socket.once("error", onError);
      socket.once("close", onClose);
      socket.once("end", onClose);
      socket.resume();
    });
  }
}



/**
 * An `ok: 0` reply: credentials and account errors are auth_failed with the server's words kept as
 * the cause only (they may name the account); others keep the server's message.
 */
function serverError(reply: Document, command: string): MongoServerError {
  const code = errorCode(reply) ?? 8;
  const codeName = typeof reply.codeName === "string" && reply.codeName !== "" ? reply.codeName : (codeNames.get(code) ?? "UnknownError");
  const errmsg = typeof reply.errmsg === "string" ? reply.errmsg : "";
  // Only the SASL commands judge credentials; Unauthorized elsewhere is a missing privilege.
  if (AUTH_CODES.has(code) && command.startsWith("sasl")) {
    return new MongoServerError("auth_failed", code, codeName, `the database refused the agent's credentials: error ${code} (${codeName})`, { cause: errmsg });
  }
  if (code === C.MechanismUnavailable) {
    return new MongoServerError("auth_unsupported", code, codeName, `the database does not offer the agent's authentication mechanism: error ${code} (${codeName})`, { cause: errmsg });
  }
  return new MongoServerError("server_error", code, codeName, `the database refused \`${command}\`: error ${code} (${codeName})${errmsg === "" ? "" : `: ${errmsg}`}`);
}

function errorCode(reply: Document): number | undefined {
  return integerField(reply, "code");
}

function isOk(value: unknown): boolean {
  return value === 1 || value === true || (typeof value === "object" && value !== null && Number(value.valueOf()) === 1);
}

/** An integer field as a number, whether the server sent int32, int64 or double. */
function integerField(document: Document, name: string): number | undefined {
  const value: unknown = document[name];
  const number = typeof value === "number" ? value : typeof value === "bigint" ? Number(value) : Long.isLong(value) ? value.toNumber() : undefined;
  return number !== undefined && Number.isSafeInteger(number) ? number : undefined;
}

/** The bytes of a SASL payload (BinData). */
function payloadOf(reply: Document, command: string): Buffer {
  const value: unknown = reply.payload;
  if (value instanceof Uint8Array) return Buffer.from(value);
  if (value !== null && typeof value === "object" && (value as { _bsontype?: unknown })._bsontype === "Binary") {
    const binary = value as Binary;
    return Buffer.from(binary.buffer.subarray(0, binary.position));
  }
  throw protocolError(`the server's ${command} reply has no payload`);
}

function truncateUtf8(text: string, maxBytes: number): string {
  let out = text;
  while (Buffer.byteLength(out, "utf8") > maxBytes) out = out.slice(0, -1);
  return out;
}

function protocolError(message: string, cause?: unknown): UpstreamError {
  return new UpstreamError("protocol_error", String(C.ProtocolError), message, cause === undefined ? undefined : { cause });
}

/** Runs a decoder on the server's bytes; its WireError becomes a protocol_error. */
function decode<T>(step: () => T): T {
  try {
    return step();
  } catch (error) {
    if (error instanceof WireError) throw protocolError(`the server sent a malformed message: ${error.message}`, error);
    throw error;
  }
}
