import type { Secret } from "@airlock/runtime";
import { authCodes, backend, createPgFramer, pg, type PgFramer, type PgMessage } from "@airlock/wire";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import { UpstreamError } from "./errors.js";
import { createScramClient, md5Password } from "./scram.js";

/** How the agent reaches one PostgreSQL server. */
export interface PostgresTarget {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password?: Secret;
  /** disable: plaintext; require: TLS without verification; verify-full: TLS checked against ca. */
  readonly tls: { readonly mode: "disable" | "require" | "verify-full"; readonly ca?: Buffer; readonly servername?: string };
  readonly connectTimeoutMs: number;
  readonly maxMessageBytes: number;
}

/** An authenticated server session, ready for the client's first query. */
export interface PostgresSession {
  readonly socket: Socket;
  readonly framer: PgFramer;
  /** What the server sent after AuthenticationOk up to and including ReadyForQuery. */
  readonly greeting: PgMessage[];
  /** Messages already read past the greeting (normally none). */
  readonly pending: PgMessage[];
  readonly processId: number;
  readonly secretKey: Buffer;
}

/**
 * Connects to PostgreSQL and authenticates with the agent's own credentials: trust, cleartext, md5
 * and SCRAM-SHA-256. The client's allowed startup parameters are passed on; user and database are
 * always the agent's.
 */
export async function connectPostgres(target: PostgresTarget, parameters: ReadonlyMap<string, string>): Promise<PostgresSession> {
  const socket = await openSocket(target);
  try {
    return await authenticate(socket, target, parameters);
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

/** Sends a CancelRequest for a backend on a new connection, as the protocol requires. */
export async function cancelPostgres(target: PostgresTarget, processId: number, secretKey: Buffer): Promise<void> {
  const socket = await openSocket(target);
  await new Promise<void>((resolve) => {
    socket.once("close", () => resolve());
    socket.end(pg.encodeCancelRequest(processId, secretKey));
    setTimeout(() => socket.destroy(), target.connectTimeoutMs).unref();
  });
}

async function openSocket(target: PostgresTarget): Promise<Socket> {
  const plain = await new Promise<Socket>((resolve, reject) => {
    const socket = netConnect({ host: target.host, port: target.port });
    const timer = setTimeout(() => socket.destroy(new Error("connect timeout")), target.connectTimeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.off("error", onError);
      resolve(socket);
    });
    const onError = (cause: Error) => {
      clearTimeout(timer);
      reject(new UpstreamError("connect_failed", "08001", `cannot reach the database at ${target.host}:${target.port}: ${(cause as NodeJS.ErrnoException).code ?? cause.message}`, { cause }));
    };
    socket.once("error", onError);
  });
  plain.setNoDelay(true);
  if (target.tls.mode === "disable") return plain;
  plain.write(pg.encodeSSLRequest());
  const answer = await readBytes(plain, 1);
  if (answer[0] !== 0x53) {
    plain.destroy();
    throw new UpstreamError("tls_refused", "08001", `the database at ${target.host}:${target.port} does not accept TLS`);
  }
  const options: ConnectionOptions = {
    socket: plain,
    servername: target.tls.servername ?? target.host,
    rejectUnauthorized: target.tls.mode === "verify-full",
    ...(target.tls.ca === undefined ? {} : { ca: target.tls.ca }),
  };
  return await new Promise<Socket>((resolve, reject) => {
    const secure = tlsConnect(options, () => {
      secure.off("error", reject);
      resolve(secure);
    });
    secure.once("error", (cause) => reject(new UpstreamError("tls_refused", "08001", `tls to the database failed: ${cause.message}`, { cause })));
  });
}

function readBytes(socket: Socket, count: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      socket.off("data", onData);
      socket.off("error", reject);
      socket.pause();
      if (chunk.length > count) socket.unshift(chunk.subarray(count));
      resolve(chunk.subarray(0, count));
    };
    socket.on("data", onData);
    socket.once("error", reject);
  });
}

/** Reads messages one at a time during startup; the socket stays paused in between. */
function createMessageReader(socket: Socket, framer: PgFramer): () => Promise<PgMessage> {
  const queue: PgMessage[] = [];
  return async () => {
    while (queue.length === 0) {
      const chunk = await new Promise<Buffer>((resolve, reject) => {
        const cleanup = () => {
          socket.off("data", onData);
          socket.off("error", onError);
          socket.off("close", onClose);
        };
        const onData = (data: Buffer) => {
          cleanup();
          socket.pause();
          resolve(data);
        };
        const onError = (cause: Error) => {
          cleanup();
          reject(new UpstreamError("connect_failed", "08006", `the database connection failed: ${cause.message}`, { cause }));
        };
        const onClose = () => {
          cleanup();
          reject(new UpstreamError("connect_failed", "08006", "the database closed the connection during startup"));
        };
        socket.on("data", onData);
        socket.once("error", onError);
        socket.once("close", onClose);
        socket.resume();
      });
      queue.push(...framer.push(chunk));
    }
    return queue.shift() as PgMessage;
  };
}

/** Client parameters the database may see; others (options, replication, user, database) are the agent's to set. */
const PASSED_PARAMETERS = new Set(["application_name", "client_encoding", "DateStyle", "TimeZone", "extra_float_digits", "search_path", "IntervalStyle", "standard_conforming_strings"]);

async function authenticate(socket: Socket, target: PostgresTarget, parameters: ReadonlyMap<string, string>): Promise<PostgresSession> {
  const framer = createPgFramer({ maxMessageBytes: target.maxMessageBytes });
  const next = createMessageReader(socket, framer);
  const startup: [string, string][] = [
    ["user", target.user],
    ["database", target.database],
  ];
  for (const [key, value] of parameters) if (PASSED_PARAMETERS.has(key)) startup.push([key, value]);
  socket.write(pg.encodeStartupMessage(startup));

  const password = () => {
    if (target.password === undefined) throw new UpstreamError("auth_failed", "28P01", "the database asks for a password and none is configured for this connection");
    return target.password.reveal();
  };
  let scram: ReturnType<typeof createScramClient> | undefined;
  for (;;) {
    const message = await next();
    if (message.code === backend.ErrorResponse) throw serverError(message);
    if (message.code === backend.NegotiateProtocolVersion) continue;
    if (message.code !== backend.Authentication) throw new UpstreamError("protocol_error", "08P01", `unexpected message 0x${message.code.toString(16)} during authentication`);
    const auth = pg.decodeAuthentication(message.bytes);
    switch (auth.type) {
      case authCodes.Ok:
        return await readGreeting(socket, framer, next);
      case authCodes.CleartextPassword:
        socket.write(pg.encodePasswordMessage(password()));
        break;
      case authCodes.MD5Password:
        socket.write(pg.encodePasswordMessage(md5Password(target.user, password(), auth.data.subarray(0, 4))));
        break;
      case authCodes.SASL: {
        const mechanisms = auth.data.toString("utf8").split("\0").filter(Boolean);
        if (!mechanisms.includes("SCRAM-SHA-256")) {
          throw new UpstreamError("auth_unsupported", "28000", `the database offers SASL mechanisms ${mechanisms.join(", ")}; the agent speaks SCRAM-SHA-256`);
        }
        scram = createScramClient(password());
        socket.write(pg.encodeSASLInitialResponse("SCRAM-SHA-256", Buffer.from(scram.clientFirst)));
        break;
      }
      case authCodes.SASLContinue:
        if (scram === undefined) throw new UpstreamError("protocol_error", "08P01", "SASLContinue before SASL");
        socket.write(pg.encodeSASLResponse(Buffer.from(wrapScram(() => scram!.final(auth.data.toString("utf8"))))));
        break;
      case authCodes.SASLFinal:
        if (scram === undefined) throw new UpstreamError("protocol_error", "08P01", "SASLFinal before SASL");
        wrapScram(() => scram!.verify(auth.data.toString("utf8")));
        break;
      default:
        throw new UpstreamError("auth_unsupported", "28000", `the database asks for authentication method ${auth.type}, which the agent does not support`);
    }
  }
}

function wrapScram<T>(step: () => T): T {
  try {
    return step();
  } catch (cause) {
    throw new UpstreamError("auth_failed", "28P01", (cause as Error).message, { cause });
  }
}

async function readGreeting(socket: Socket, framer: PgFramer, next: () => Promise<PgMessage>): Promise<PostgresSession> {
  const greeting: PgMessage[] = [];
  let key: { processId: number; secretKey: Buffer } | undefined;
  for (;;) {
    const message = await next();
    if (message.code === backend.ErrorResponse) throw serverError(message);
    if (message.code === backend.BackendKeyData) key = pg.decodeBackendKeyData(message.bytes);
    greeting.push(message);
    if (message.code === backend.ReadyForQuery) break;
  }
  if (key === undefined) throw new UpstreamError("protocol_error", "08P01", "the database sent no BackendKeyData");
  return { socket, framer, greeting, pending: [], processId: key.processId, secretKey: key.secretKey };
}

function serverError(message: PgMessage): UpstreamError {
  const fields = pg.decodeErrorFields(message.bytes);
  const sqlstate = fields.C ?? "08006";
  // Which role the agent logs in as, and why the database refused it, is the agent's business.
  if (sqlstate.startsWith("28")) return new UpstreamError("auth_failed", sqlstate, "the database refused the agent's credentials", { cause: fields.M });
  return new UpstreamError("server_error", sqlstate, `the database refused the session: ${fields.M ?? "no message"}`);
}
