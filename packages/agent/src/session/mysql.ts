import { agentServiceDefinition, create, packFrames, SessionRequestSchema, unpackFrames, type OpenSession, type SessionRequest, type SessionResponse } from "@airlock/proto";
import { createMysqlFramer, WireError } from "@airlock/wire";
import type { ClientDuplexStream } from "@grpc/grpc-js";
import { UpstreamError } from "../upstream/errors.js";
import { connectMysql, MysqlServerError, type MysqlTarget } from "../upstream/mysql.js";
import type { SessionDeps } from "./postgres.js";

/** Dependencies of {@link runMysqlSession}: those of a PostgreSQL session, with a MySQL target. */
export type MysqlSessionDeps = Omit<SessionDeps, "target"> & { readonly target: MysqlTarget };

/**
 * Serves one MySQL session: opens the Session call, logs in to the server with the agent's own
 * credentials and the client's capabilities (those the relay can pass through), tells the gateway
 * what the login settled (`opened`), then relays packets both ways with backpressure. Packets are
 * framed here so every batch holds whole packets; their sequence ids pass through unchanged (both
 * logins end where a command phase starts at 0).
 */
export async function runMysqlSession(request: OpenSession, deps: MysqlSessionDeps): Promise<void> {
  const { logger, metrics, target } = deps;
  const connection = request.connection;
  const metadata = deps.metadata();
  metadata.set("x-airlock-session", request.sessionId);
  const call: ClientDuplexStream<SessionRequest, SessionResponse> = deps.client.makeBidiStreamRequest(
    agentServiceDefinition.session.path,
    agentServiceDefinition.session.requestSerialize,
    agentServiceDefinition.session.responseDeserialize,
    metadata,
  );
  let callDone = false;
  call.on("error", () => {
    callDone = true;
  });
  call.write(create(SessionRequestSchema, { kind: { case: "attach", value: { sessionId: request.sessionId } } }));

  const fail = (code: string, message: string) => {
    metrics.sessions.inc({ connection, outcome: "refused" });
    if (!callDone) {
      call.write(create(SessionRequestSchema, { kind: { case: "error", value: { code, message } } }));
      call.end();
    }
  };
  const parameters = request.parameters;
  const schema = parameters.schema;
  const clientCapabilities = Number(parameters.capabilities ?? "0");
  const characterSet = Number(parameters.character_set ?? "45");
  let session;
  try {
    session = await connectMysql(schema === undefined || schema === "" ? target : { ...target, database: schema }, {
      clientCapabilities: Number.isSafeInteger(clientCapabilities) ? clientCapabilities : 0,
      characterSet: Number.isInteger(characterSet) && characterSet > 0 && characterSet < 256 ? characterSet : 45,
      connectAttributes: new Map([["airlock_session", request.sessionId]]),
    });
  } catch (error) {
    const upstream = error instanceof UpstreamError ? error : new UpstreamError("connect_failed", "08S01", "the database session could not be opened", { cause: error });
    const errno = error instanceof MysqlServerError ? String(error.errno) : upstream.code === "auth_failed" ? "1045" : "2013";
    logger.warn({ code: upstream.code, errno, err: upstream.message }, "database session refused");
    // MySQL's error number, then its SQLSTATE: the gateway answers the client with both.
    fail(`${errno}:${upstream.sqlstate}`, upstream.message);
    return;
  }
  const { socket } = session;
  if (callDone) {
    socket.destroy();
    return;
  }
  metrics.sessionsActive.inc({ connection });
  // MySQL's KILL QUERY would need a second login; the gateway's cancel is PostgreSQL's only.
  deps.live.set(request.sessionId, { cancel: async () => undefined });
  const toGateway = metrics.bytes.labels({ connection, direction: "to_gateway" });
  const toDatabase = metrics.bytes.labels({ connection, direction: "to_database" });
  logger.debug({ connectionId: session.connectionId, serverVersion: session.serverVersion }, "database session open");

  let outcome = "closed";
  const finish = () => {
    if (!deps.live.delete(request.sessionId)) return;
    metrics.sessionsActive.dec({ connection });
    metrics.sessions.inc({ connection, outcome });
    socket.destroy();
    if (!callDone) {
      callDone = true;
      call.end();
    }
  };

  call.write(
    create(SessionRequestSchema, {
      kind: {
        case: "opened",
        value: {
          facts: {
            server_version: session.serverVersion,
            capabilities: String(session.capabilities),
            connection_id: String(session.connectionId),
            status_flags: String(session.statusFlags),
            character_set: String(session.serverCharacterSet),
          },
        },
      },
    }),
  );

  const framer = createMysqlFramer({ maxMessageBytes: target.maxMessageBytes });
  const fromDatabase = (chunk: Buffer): boolean => {
    let packets;
    try {
      packets = framer.push(chunk);
    } catch (error) {
      outcome = "protocol_error";
      logger.error({ err: error instanceof WireError ? error.message : String(error) }, "the database sent a malformed packet");
      finish();
      return true;
    }
    if (packets.length === 0) return true;
    toGateway.inc(chunk.length);
    return call.write(create(SessionRequestSchema, { kind: { case: "frames", value: packFrames(packets) } }));
  };
  if (session.leftover.length > 0) fromDatabase(session.leftover);
  socket.on("data", (chunk: Buffer) => {
    if (!fromDatabase(chunk)) {
      socket.pause();
      call.once("drain", () => socket.resume());
    }
  });
  socket.on("error", (error) => {
    outcome = "database_error";
    logger.warn({ err: error.message }, "database connection failed");
  });
  socket.on("close", finish);

  call.on("data", (message: SessionResponse) => {
    if (message.kind.case !== "frames") return;
    try {
      unpackFrames(message.kind.value);
    } catch (error) {
      outcome = "protocol_error";
      logger.error({ err: (error as Error).message }, "the gateway sent a malformed batch");
      finish();
      return;
    }
    const data = message.kind.value.data;
    toDatabase.inc(data.length);
    if (!socket.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength))) {
      call.pause();
      socket.once("drain", () => call.resume());
    }
  });
  call.on("end", () => {
    callDone = true;
    socket.end();
  });
  call.on("error", () => {
    outcome = "link_lost";
    finish();
  });
  socket.resume();
}
