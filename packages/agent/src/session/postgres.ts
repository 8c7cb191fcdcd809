import { agentServiceDefinition, create, FramesSchema, packFrames, SessionRequestSchema, unpackFrames, type OpenSession, type SessionRequest, type SessionResponse } from "@airlock/proto";
import type { Logger } from "@airlock/runtime";
import { WireError } from "@airlock/wire";
import type { Client, ClientDuplexStream, Metadata } from "@grpc/grpc-js";
import type { AgentMetrics } from "../metrics.js";
import { UpstreamError } from "../upstream/errors.js";
import { cancelPostgres, connectPostgres, type PostgresTarget } from "../upstream/postgres.js";

/** A batch to the gateway is sent once the socket's reads of one event-loop turn reach this many bytes. */
const COALESCE_BYTES = 256 << 10;

/** What the agent keeps of a live session, to cancel its running statement. */
export interface LiveSession {
  cancel(): Promise<void>;
}

/** Dependencies of {@link runPostgresSession}. */
export interface SessionDeps {
  readonly client: Client;
  readonly metadata: () => Metadata;
  readonly target: PostgresTarget | undefined;
  readonly logger: Logger;
  readonly metrics: AgentMetrics;
  readonly live: Map<string, LiveSession>;
}

/**
 * Serves one session: opens the Session call, connects and authenticates to PostgreSQL, then relays
 * frames both ways. Backpressure: the database socket is read only while the gRPC call accepts
 * writes, and the call is read only while the socket accepts writes.
 */
export async function runPostgresSession(request: OpenSession, deps: SessionDeps): Promise<void> {
  const { logger, metrics } = deps;
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
  if (deps.target === undefined) {
    logger.warn("the gateway asked for a connection this agent does not hold");
    fail("08001", `connection \`${connection}\` is not served by this agent`);
    return;
  }
  const target = deps.target;
  let session;
  try {
    session = await connectPostgres(target, new Map(Object.entries(request.parameters)));
  } catch (error) {
    const upstream = error instanceof UpstreamError ? error : new UpstreamError("connect_failed", "08006", "the database session could not be opened", { cause: error });
    logger.warn({ code: upstream.code, sqlstate: upstream.sqlstate, err: upstream.message, cause: typeof upstream.cause === "string" ? upstream.cause : undefined }, "database session refused");
    fail(upstream.sqlstate, upstream.message);
    return;
  }
  const { socket, framer } = session;
  if (callDone) {
    socket.destroy();
    return;
  }
  metrics.sessionsActive.inc({ connection });
  deps.live.set(request.sessionId, { cancel: () => cancelPostgres(target, session.processId, session.secretKey) });
  const toGateway = metrics.bytes.labels({ connection, direction: "to_gateway" });
  const toDatabase = metrics.bytes.labels({ connection, direction: "to_database" });
  logger.debug({ backendPid: session.processId }, "database session open");

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

  call.write(create(SessionRequestSchema, { kind: { case: "frames", value: packFrames(session.greeting) } }));

  // Database -> gateway. What the socket delivers in one turn of the event loop (libuv reads a
  // busy socket several times in a row) goes as one batch, up to COALESCE_BYTES: a fast result
  // travels in fewer, larger gRPC messages. Nothing waits on a timer: the batch goes out at the
  // end of the turn (setImmediate), so a small result is not delayed.
  let chunks: Buffer[] = [];
  let chunkBytes = 0;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (chunks.length === 0 || !deps.live.has(request.sessionId)) return;
    const input = chunks;
    chunks = [];
    chunkBytes = 0;
    let batch;
    try {
      batch = framer.pushBatch(input);
    } catch (error) {
      outcome = "protocol_error";
      logger.error({ err: error instanceof WireError ? error.message : String(error) }, "the database sent a malformed message");
      finish();
      return;
    }
    if (batch.lengths.length === 0) return;
    toGateway.inc(batch.bytes.length);
    const frames = create(FramesSchema, { data: batch.bytes, lengths: batch.lengths });
    if (!call.write(create(SessionRequestSchema, { kind: { case: "frames", value: frames } }))) {
      socket.pause();
      call.once("drain", () => socket.resume());
    }
  };
  socket.on("data", (chunk: Buffer) => {
    chunks.push(chunk);
    chunkBytes += chunk.length;
    if (chunkBytes >= COALESCE_BYTES) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  });
  socket.on("error", (error) => {
    outcome = "database_error";
    logger.warn({ err: error.message }, "database connection failed");
  });
  // The last reads (a FATAL error before the server hangs up) go out before the call ends.
  socket.on("close", () => {
    flush();
    finish();
  });

  // Gateway -> database.
  call.on("data", (message: SessionResponse) => {
    if (message.kind.case !== "frames") return;
    // The batch is one contiguous buffer of whole messages: checked, then written at once.
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
  // The startup reader left the socket paused; adding a listener does not resume it.
  socket.resume();
}
