import { agentServiceDefinition, create, packFrames, SessionRequestSchema, unpackFrames, type OpenSession, type SessionRequest, type SessionResponse } from "@airlock/proto";
import { createMongoFramer, MONGO_HEADER_BYTES, mongoOpcodes, WireError, type MongoMessage } from "@airlock/wire";
import type { ClientDuplexStream } from "@grpc/grpc-js";
import { UpstreamError } from "../upstream/errors.js";
import { connectMongo, mongoAgentErrorCodes, mongoErrorCode, type MongoHelloFacts, type MongoTarget } from "../upstream/mongo.js";
import type { SessionDeps } from "./postgres.js";

/** Dependencies of {@link runMongoSession}: those of a PostgreSQL session, with a MongoDB target. */
export type MongoSessionDeps = Omit<SessionDeps, "target"> & { readonly target: MongoTarget; readonly agentVersion?: string };

/**
 * The `opened` facts of a MongoDB session: what the server's hello said, under hello's own field
 * names, as strings (booleans as `true`/`false`). The gateway answers its client's hello with them,
 * so the client sizes its batches and messages for the server it really talks to.
 */
export function mongoOpenedFacts(hello: MongoHelloFacts): Record<string, string> {
  const facts: Record<string, string> = {
    maxWireVersion: String(hello.maxWireVersion),
    minWireVersion: String(hello.minWireVersion),
    maxBsonObjectSize: String(hello.maxBsonObjectSize),
    maxMessageSizeBytes: String(hello.maxMessageSizeBytes),
    maxWriteBatchSize: String(hello.maxWriteBatchSize),
    isWritablePrimary: String(hello.isWritablePrimary),
  };
  if (hello.logicalSessionTimeoutMinutes !== undefined) facts.logicalSessionTimeoutMinutes = String(hello.logicalSessionTimeoutMinutes);
  if (hello.secondary !== undefined) facts.secondary = String(hello.secondary);
  if (hello.setName !== undefined) facts.setName = hello.setName;
  if (hello.msg !== undefined) facts.msg = hello.msg;
  if (hello.connectionId !== undefined) facts.connectionId = String(hello.connectionId);
  return facts;
}

/**
 * Serves one MongoDB session: opens the Session call, logs in to the server with the agent's own
 * credentials (no compression offered), tells the gateway what the server's hello said (`opened`),
 * then relays whole wire messages both ways with backpressure. Cursors and logical sessions live on
 * this one server connection, so the client's getMore and killCursors reach the connection that
 * owns the cursor by construction. A compressed message in either direction ends the session: none
 * was negotiated, and the gateway must see every document.
 */
export async function runMongoSession(request: OpenSession, deps: MongoSessionDeps): Promise<void> {
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

  /** The SessionError code of a MongoDB session: `code:codeName`, as the server would name them. */
  const errorCode = (code: number, codeName: string) => `${code}:${codeName}`;
  let session;
  try {
    session = await connectMongo(target, {
      appName: `airlock-agent session ${request.sessionId}`,
      ...(deps.agentVersion === undefined ? {} : { agentVersion: deps.agentVersion }),
    });
  } catch (error) {
    const upstream = error instanceof UpstreamError ? error : new UpstreamError("connect_failed", String(mongoAgentErrorCodes.HostUnreachable), "the database session could not be opened", { cause: error });
    const { code, codeName } = mongoErrorCode(upstream);
    logger.warn({ code: upstream.code, mongoCode: code, codeName, err: upstream.message }, "database session refused");
    metrics.sessions.inc({ connection, outcome: "refused" });
    if (!callDone) {
      call.write(create(SessionRequestSchema, { kind: { case: "error", value: { code: errorCode(code, codeName), message: upstream.message } } }));
      call.end();
    }
    return;
  }
  const { socket } = session;
  if (callDone) {
    socket.destroy();
    return;
  }
  metrics.sessionsActive.inc({ connection });
  // killOp would need a second login and the operation's id; the gateway's cancel is PostgreSQL's only.
  deps.live.set(request.sessionId, { cancel: async () => undefined });
  const toGateway = metrics.bytes.labels({ connection, direction: "to_gateway" });
  const toDatabase = metrics.bytes.labels({ connection, direction: "to_database" });
  logger.debug({ mechanism: session.mechanism, maxWireVersion: session.hello.maxWireVersion, serverConnectionId: session.hello.connectionId }, "database session open");

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
  /** Ends the session on a protocol violation, telling the gateway why before the call ends. */
  const refuse = (message: string) => {
    outcome = "protocol_error";
    logger.error({ err: message }, "mongodb session refused a message");
    if (!callDone) {
      const { ProtocolError } = mongoAgentErrorCodes;
      call.write(create(SessionRequestSchema, { kind: { case: "error", value: { code: errorCode(ProtocolError, "ProtocolError"), message } } }));
    }
    finish();
  };

  call.write(create(SessionRequestSchema, { kind: { case: "opened", value: { facts: mongoOpenedFacts(session.hello) } } }));

  const framer = createMongoFramer({ maxMessageBytes: target.maxMessageBytes });
  const fromDatabase = (chunk: Buffer): boolean => {
    let messages: MongoMessage[];
    try {
      messages = framer.push(chunk);
    } catch (error) {
      refuse(`the database sent a malformed message: ${error instanceof WireError ? error.message : String(error)}`);
      return true;
    }
    if (messages.length === 0) return true;
    if (messages.some((message) => message.opCode === mongoOpcodes.OP_COMPRESSED)) {
      refuse("the database sent a compressed message, though no compression was negotiated");
      return true;
    }
    toGateway.inc(chunk.length);
    return call.write(create(SessionRequestSchema, { kind: { case: "frames", value: packFrames(messages) } }));
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
    let frames: Buffer[];
    try {
      frames = unpackFrames(message.kind.value);
    } catch (error) {
      refuse(`the gateway sent a malformed batch: ${(error as Error).message}`);
      return;
    }
    const problem = frames.map(checkClientMessage).find((found) => found !== undefined);
    if (problem !== undefined) {
      refuse(`the gateway sent ${problem}`);
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

/** Why a message of the gateway's batch must not reach the server, or undefined: it must be one whole, uncompressed message. */
function checkClientMessage(frame: Buffer): string | undefined {
  if (frame.length < MONGO_HEADER_BYTES) return `a message of ${frame.length} bytes, shorter than its header`;
  const length = frame.readInt32LE(0);
  if (length !== frame.length) return `a message that announces ${length} bytes but has ${frame.length}`;
  if (frame.readInt32LE(12) === mongoOpcodes.OP_COMPRESSED) return "a compressed message, though no compression was negotiated";
  return undefined;
}
