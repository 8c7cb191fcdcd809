import { agentServiceDefinition, create, packFrames, SessionRequestSchema, unpackFrames, type OpenSession, type SessionRequest, type SessionResponse, type WholeMessage } from "@airlock/proto";
import type { Logger } from "@airlock/runtime";
import { WireError } from "@airlock/wire";
import type { ClientDuplexStream } from "@grpc/grpc-js";
import type { Socket } from "node:net";
import type { SessionDeps } from "./postgres.js";

/** A session's call to the gateway, and whether it ended. */
export interface SessionCall {
  readonly call: ClientDuplexStream<SessionRequest, SessionResponse>;
  /** The call ended or failed: nothing more may be written to it. */
  readonly done: () => boolean;
  /** Tells the gateway the database session could not be opened (a code it shows its client) and ends the call. */
  refuse(code: string, message: string): void;
}

/** Opens the Session call of `request` and attaches it. */
export function openSessionCall(request: OpenSession, deps: Pick<SessionDeps, "client" | "metadata" | "metrics">): SessionCall {
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

/** How a protocol's messages are framed and checked on the way through. */
export interface RelayProtocol {
  /** Whole messages of the database's bytes so far; throws WireError on a malformed one. */
  frame(chunk: Buffer): readonly WholeMessage[];
  /** Why messages from the database must not reach the gateway, or undefined. */
  checkFromDatabase?(messages: readonly WholeMessage[]): string | undefined;
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
  deps: Pick<SessionDeps, "metrics" | "live"> & { readonly logger: Logger },
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

  const fromDatabase = (chunk: Buffer): boolean => {
    let messages: readonly WholeMessage[];
    try {
      messages = protocol.frame(chunk);
    } catch (error) {
      violation(`the database sent a malformed message: ${error instanceof WireError ? error.message : String(error)}`);
      return true;
    }
    if (messages.length === 0) return true;
    const problem = protocol.checkFromDatabase?.(messages);
    if (problem !== undefined) {
      violation(`the database sent ${problem}`);
      return true;
    }
    toGateway.inc(chunk.length);
    return call.write(create(SessionRequestSchema, { kind: { case: "frames", value: packFrames(messages) } }));
  };
  if (leftover.length > 0) fromDatabase(leftover);
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
