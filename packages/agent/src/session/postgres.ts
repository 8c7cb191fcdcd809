import { create, packFrames, SessionRequestSchema, type OpenSession } from "@airlock/proto";
import { UpstreamError } from "../upstream/errors.js";
import { cancelPostgres, connectPostgres, type PostgresTarget } from "../upstream/postgres.js";
import { openSessionCall, relaySession, type RelayDeps } from "./relay.js";

const EMPTY = Buffer.alloc(0);

/** Dependencies of {@link runPostgresSession}. */
export type SessionDeps = RelayDeps & { readonly target: PostgresTarget | undefined };

/**
 * Serves one session: opens the Session call, connects and authenticates to PostgreSQL, sends the
 * greeting, then relays frames both ways (session/relay.ts). Backpressure: the database socket is
 * read only while the gRPC call accepts writes, and the call is read only while the socket accepts
 * writes.
 */
export async function runPostgresSession(request: OpenSession, deps: SessionDeps): Promise<void> {
  const { logger } = deps;
  const session = openSessionCall(request, deps);
  if (deps.target === undefined) {
    logger.warn("the gateway asked for a connection this agent does not hold");
    session.refuse("08001", `connection \`${request.connection}\` is not served by this agent`);
    return;
  }
  const target = deps.target;
  let login;
  try {
    login = await connectPostgres(target, new Map(Object.entries(request.parameters)));
  } catch (error) {
    const upstream = error instanceof UpstreamError ? error : new UpstreamError("connect_failed", "08006", "the database session could not be opened", { cause: error });
    logger.warn({ code: upstream.code, sqlstate: upstream.sqlstate, err: upstream.message, cause: typeof upstream.cause === "string" ? upstream.cause : undefined }, "database session refused");
    session.refuse(upstream.sqlstate, upstream.message);
    return;
  }
  const { socket, framer } = login;
  if (session.done()) {
    socket.destroy();
    return;
  }
  logger.debug({ backendPid: login.processId }, "database session open");
  session.call.write(create(SessionRequestSchema, { kind: { case: "frames", value: packFrames(login.greeting) } }));
  relaySession(request, deps, session, socket, EMPTY, { frame: (chunks) => framer.pushBatch(chunks) }, () => cancelPostgres(target, login.processId, login.secretKey));
}
