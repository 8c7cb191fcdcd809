import { create, SessionRequestSchema, type OpenSession } from "@airlock/proto";
import { createMysqlFramer } from "@airlock/wire";
import { UpstreamError } from "../upstream/errors.js";
import { connectMysql, MysqlServerError, type MysqlTarget } from "../upstream/mysql.js";
import { batchOf, openSessionCall, relaySession, type RelayDeps } from "./relay.js";

/** Dependencies of {@link runMysqlSession}: those of a PostgreSQL session, with a MySQL target. */
export type MysqlSessionDeps = RelayDeps & { readonly target: MysqlTarget };

/**
 * Serves one MySQL session: opens the Session call, logs in to the server with the agent's own
 * credentials and the client's capabilities (those the relay can pass through), tells the gateway
 * what the login settled (`opened`), then relays packets both ways with backpressure. Packets are
 * framed here so every batch holds whole packets; their sequence ids pass through unchanged (both
 * logins end where a command phase starts at 0).
 */
export async function runMysqlSession(request: OpenSession, deps: MysqlSessionDeps): Promise<void> {
  const { logger, target } = deps;
  const session = openSessionCall(request, deps);
  const parameters = request.parameters;
  const schema = parameters.schema;
  const clientCapabilities = Number(parameters.capabilities ?? "0");
  const characterSet = Number(parameters.character_set ?? "45");
  let login;
  try {
    login = await connectMysql(schema === undefined || schema === "" ? target : { ...target, database: schema }, {
      clientCapabilities: Number.isSafeInteger(clientCapabilities) ? clientCapabilities : 0,
      characterSet: Number.isInteger(characterSet) && characterSet > 0 && characterSet < 256 ? characterSet : 45,
      connectAttributes: new Map([["airlock_session", request.sessionId]]),
    });
  } catch (error) {
    const upstream = error instanceof UpstreamError ? error : new UpstreamError("connect_failed", "08S01", "the database session could not be opened", { cause: error });
    const errno = error instanceof MysqlServerError ? String(error.errno) : upstream.code === "auth_failed" ? "1045" : "2013";
    logger.warn({ code: upstream.code, errno, err: upstream.message }, "database session refused");
    // MySQL's error number, then its SQLSTATE: the gateway answers the client with both.
    session.refuse(`${errno}:${upstream.sqlstate}`, upstream.message);
    return;
  }
  if (session.done()) {
    login.socket.destroy();
    return;
  }
  logger.debug({ connectionId: login.connectionId, serverVersion: login.serverVersion }, "database session open");
  session.call.write(
    create(SessionRequestSchema, {
      kind: {
        case: "opened",
        value: {
          facts: {
            server_version: login.serverVersion,
            capabilities: String(login.capabilities),
            connection_id: String(login.connectionId),
            status_flags: String(login.statusFlags),
            character_set: String(login.serverCharacterSet),
          },
        },
      },
    }),
  );
  const framer = createMysqlFramer({ maxMessageBytes: target.maxMessageBytes });
  // MySQL's KILL QUERY would need a second login; the gateway's cancel is PostgreSQL's only.
  relaySession(request, deps, session, login.socket, login.leftover, { frame: (chunks) => batchOf(chunks.flatMap((chunk) => framer.push(chunk))) }, async () => undefined);
}
