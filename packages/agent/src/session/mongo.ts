import { create, SessionRequestSchema, type OpenSession } from "@airlock/proto";
import { createMongoFramer, MONGO_HEADER_BYTES, mongoOpcodes } from "@airlock/wire";
import { UpstreamError } from "../upstream/errors.js";
import { connectMongo, mongoAgentErrorCodes, mongoErrorCode, type MongoHelloFacts, type MongoTarget } from "../upstream/mongo.js";
import { batchOf, openSessionCall, relaySession, type RelayDeps } from "./relay.js";

/** Dependencies of {@link runMongoSession}: those of a PostgreSQL session, with a MongoDB target. */
export type MongoSessionDeps = RelayDeps & { readonly target: MongoTarget; readonly agentVersion?: string };

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
  const { logger, target } = deps;
  const session = openSessionCall(request, deps);
  /** The SessionError code of a MongoDB session: `code:codeName`, as the server would name them. */
  const errorCode = (code: number, codeName: string) => `${code}:${codeName}`;
  let login;
  try {
    login = await connectMongo(target, {
      appName: `airlock-agent session ${request.sessionId}`,
      ...(deps.agentVersion === undefined ? {} : { agentVersion: deps.agentVersion }),
    });
  } catch (error) {
    const upstream = error instanceof UpstreamError ? error : new UpstreamError("connect_failed", String(mongoAgentErrorCodes.HostUnreachable), "the database session could not be opened", { cause: error });
    const { code, codeName } = mongoErrorCode(upstream);
    logger.warn({ code: upstream.code, mongoCode: code, codeName, err: upstream.message }, "database session refused");
    session.refuse(errorCode(code, codeName), upstream.message);
    return;
  }
  if (session.done()) {
    login.socket.destroy();
    return;
  }
  logger.debug({ mechanism: login.mechanism, maxWireVersion: login.hello.maxWireVersion, serverConnectionId: login.hello.connectionId }, "database session open");
  session.call.write(create(SessionRequestSchema, { kind: { case: "opened", value: { facts: mongoOpenedFacts(login.hello) } } }));
  const framer = createMongoFramer({ maxMessageBytes: target.maxMessageBytes });
  // killOp would need a second login and the operation's id; the gateway's cancel is PostgreSQL's only.
  relaySession(
    request,
    deps,
    session,
    login.socket,
    login.leftover,
    {
      frame: (chunks) => batchOf(chunks.flatMap((chunk) => framer.push(chunk))),
      checkFromDatabase: (batch) => {
        let offset = 0;
        for (const length of batch.lengths) {
          if (batch.bytes.readInt32LE(offset + 12) === mongoOpcodes.OP_COMPRESSED) return "a compressed message, though no compression was negotiated";
          offset += length;
        }
        return undefined;
      },
      checkFromGateway: (frames) => frames.map(checkClientMessage).find((found) => found !== undefined),
      violationCode: errorCode(mongoAgentErrorCodes.ProtocolError, "ProtocolError"),
    },
    async () => undefined,
  );
}

/** Why a message of the gateway's batch must not reach the server, or undefined: it must be one whole, uncompressed message. */
function checkClientMessage(frame: Buffer): string | undefined {
  if (frame.length < MONGO_HEADER_BYTES) return `a message of ${frame.length} bytes, shorter than its header`;
  const length = frame.readInt32LE(0);
  if (length !== frame.length) return `a message that announces ${length} bytes but has ${frame.length}`;
  if (frame.readInt32LE(12) === mongoOpcodes.OP_COMPRESSED) return "a compressed message, though no compression was negotiated";
  return undefined;
}
