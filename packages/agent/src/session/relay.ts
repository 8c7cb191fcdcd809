import { agentServiceDefinition, create, FramesSchema, packFrames, SessionRequestSchema, unpackFrames, type OpenSession, type SessionRequest, type SessionResponse, type WholeMessage } from "@airlock/proto";
import type { Logger } from "@airlock/runtime";
import { WireError } from "@airlock/wire";
import type { Socket } from "node:net";
import type { AgentMetrics } from "../metrics.js";
import type { Client, ClientDuplexStream, Metadata } from "@grpc/grpc-js";

/** What the agent keeps of a live session, to cancel its running statement. */
export interface LiveSession {
  cancel(): Promise<void>;
}

/** What every protocol's session needs of the agent. */
export interface RelayDeps {
  readonly client: Client;
  readonly metadata: () => Metadata;
  readonly logger: Logger;
  readonly metrics: AgentMetrics;
  readonly live: Map<string, LiveSession>;
}

/** A batch to the gateway is sent once the socket's reads of one event-loop turn reach this many bytes. */
const COALESCE_BYTES = 256 << 10;

/** A session's call to the gateway, and whether it ended. */
export interface SessionCall {
  readonly call: ClientDuplexStream<SessionRequest, SessionResponse>;
  /** The call ended or failed: nothing more may be written to it. */
  readonly done: () => boolean;
  /** Tells the gateway the database session could not be opened (a code it shows its client) and ends the call. */
  refuse(code: string, message: string): void;
}

/** Opens the Session call of `request` and attaches it. */
export function openSessionCall(request: OpenSession, deps: Pick<RelayDeps, "client" | "metadata" | "metrics">): SessionCall {
  const metadata = deps.metadata();
  metadata.set("x-airlock-session", request.sessionId);
  const call: ClientDuplexStream<SessionRequest, SessionResponse> = deps.client.makeBidiStreamRequest(
    agentServiceDefinition.session.path,
    agentServiceDefinition.session.requestSerialize,
    agentServiceDefinition.session.responseDeserialize,
    metadata,
  );
  let done = false;
  call.on("error", () => {
    done = true;
  });
  call.write(create(SessionRequestSchema, { kind: { case: "attach", value: { sessionId: request.sessionId } } }));
  return {
    call,
    done: () => done,
    refuse(code, message) {
      deps.metrics.sessions.inc({ connection: request.connection, outcome: "refused" });
      if (done) return;
      done = true;
      call.write(create(SessionRequestSchema, { kind: { case: "error", value: { code, message } } }));
      call.end();
    },
  };
}

/** Whole messages back to back, and the length of each. */
export interface MessageBatch {
  readonly bytes: Buffer;
  readonly lengths: readonly number[];
}

/** A framer's messages as a batch (copied once when they are not contiguous already). */
export function batchOf(messages: readonly WholeMessage[]): MessageBatch {
  const frames = packFrames(messages);
  return { bytes: Buffer.from(frames.data.buffer, frames.data.byteOffset, frames.data.byteLength), lengths: frames.lengths };
}

/** How a protocol's messages are framed and checked on the way through. */
export interface RelayProtocol {
  /** The whole messages of the database's bytes read so far; throws WireError on a malformed one. */
  frame(chunks: readonly Buffer[]): MessageBatch;
  /** Why messages from the database must not reach the gateway, or undefined. */
  checkFromDatabase?(batch: MessageBatch): string | undefined;
  /** Why messages of the gateway's batch must not reach the database, or undefined. */
  checkFromGateway?(messages: readonly Buffer[]): string | undefined;
  /** The SessionError code of a protocol violation, told to the gateway before the call ends; none: the call just ends. */
  readonly violationCode?: string;
}

/**
 * Relays an open database session: whole messages from the database to the gateway in batches,
 * and the gateway's batches to the database, each side read only while the other accepts writes
 * (backpressure both ways). Ends both sides when either ends, and counts the session's outcome.
 */
export function relaySession(
  request: OpenSession,
  deps: Pick<RelayDeps, "metrics" | "live" | "logger">,
  session: SessionCall,
  socket: Socket,
  leftover: Buffer,
  protocol: RelayProtocol,
  cancel: () => Promise<void>,
): void {
  const { logger, metrics } = deps;
  const { call } = session;
  const connection = request.connection;
  metrics.sessionsActive.inc({ connection });
  deps.live.set(request.sessionId, { cancel });
  const toGateway = metrics.bytes.labels({ connection, direction: "to_gateway" });
  const toDatabase = metrics.bytes.labels({ connection, direction: "to_database" });

  let outcome = "closed";
  let ended = false;
  const finish = () => {
    if (!deps.live.delete(request.sessionId)) return;
    metrics.sessionsActive.dec({ connection });
    metrics.sessions.inc({ connection, outcome });
    socket.destroy();
    if (!ended && !session.done()) {
      ended = true;
      call.end();
    }
  };
  const violation = (message: string) => {
    outcome = "protocol_error";
    logger.error({ err: message }, "the session refused a message");
    if (protocol.violationCode !== undefined && !ended && !session.done()) {
      call.write(create(SessionRequestSchema, { kind: { case: "error", value: { code: protocol.violationCode, message } } }));
    }
    finish();
  };

  // Database -> gateway. What the socket delivers in one turn of the event loop (libuv reads a
  // busy socket several times in a row) goes as one batch, up to COALESCE_BYTES: a fast result
  // travels in fewer, larger gRPC messages. Nothing waits on a timer: the batch goes out at the
  // end of the turn (setImmediate), so a small answer is not delayed.
  let chunks: Buffer[] = leftover.length > 0 ? [leftover] : [];
  let chunkBytes = leftover.length;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (chunks.length === 0 || !deps.live.has(request.sessionId)) return;
    const input = chunks;
    chunks = [];
    chunkBytes = 0;
    let batch: MessageBatch;
    try {
      batch = protocol.frame(input);
    } catch (error) {
      violation(`the database sent a malformed message: ${error instanceof WireError ? error.message : String(error)}`);
      return;
    }
    if (batch.lengths.length === 0) return;
    const problem = protocol.checkFromDatabase?.(batch);
    if (problem !== undefined) {
      violation(`the database sent ${problem}`);
      return;
    }
    toGateway.inc(batch.bytes.length);
    const frames = create(FramesSchema, { data: batch.bytes, lengths: [...batch.lengths] });
    if (!call.write(create(SessionRequestSchema, { kind: { case: "frames", value: frames } }))) {
      socket.pause();
      call.once("drain", () => socket.resume());
    }
  };
  if (chunks.length > 0) setImmediate(flush);
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
  // The last reads (an error before the server hangs up) go out before the call ends.
  socket.on("close", () => {
    flush();
    finish();
  });

  call.on("data", (message: SessionResponse) => {
    if (message.kind.case !== "frames") return;
    let frames: Buffer[];
    try {
      frames = unpackFrames(message.kind.value);
    } catch (error) {
      violation(`the gateway sent a malformed batch: ${(error as Error).message}`);
      return;
    }
    const problem = protocol.checkFromGateway?.(frames);
    if (problem !== undefined) {
      violation(`the gateway sent ${problem}`);
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
    ended = true;
    socket.end();
  });
  call.on("error", () => {
    outcome = "link_lost";
    finish();
  });
  socket.resume();
}
