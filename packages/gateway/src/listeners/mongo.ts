import { createServer, type Server } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import type { ConnectionConfig } from "../config/schema.js";
import type { GatewayServices } from "../session/context.js";
import { listenOn } from "./listen.js";
import { serveMongo, type MongoListenerContext } from "../session/mongo-session.js";

/**
 * Opens a connection's native MongoDB listener. MongoDB has no in-band TLS upgrade: with the
 * gateway's certificate the listener is a TLS server (clients connect with `tls=true`), without it
 * plain TCP, where the token (MONGODB-OIDC or PLAIN) is taken from loopback only.
 */
export async function listenMongo(connection: ConnectionConfig, address: string, services: GatewayServices, context: MongoListenerContext): Promise<Server> {
  const serve = (socket: import("node:net").Socket, tls: boolean) =>
    serveMongo(socket, { connection, transport: { kind: "native", remoteAddress: socket.remoteAddress ?? "" } }, services, context, tls);
  const server =
    services.tls === undefined
      ? createServer({ noDelay: true }, (socket) => serve(socket, false))
      : createTlsServer({ secureContext: services.tls }, (socket) => serve(socket, true));
  if (services.tls !== undefined) server.on("tlsClientError", (error) => services.logger.info({ connection: connection.name, err: error.message }, "tls handshake failed"));
  return listenOn(server, address);
}
