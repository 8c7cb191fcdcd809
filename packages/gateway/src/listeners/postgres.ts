import { createServer, type Server } from "node:net";
import type { ConnectionConfig } from "../config/schema.js";
import type { GatewayServices } from "../session/context.js";
import { listenOn } from "./listen.js";
import { servePostgres } from "../session/postgres-session.js";

/**
 * Opens a connection's native PostgreSQL listener: the client sends its OIDC token as the password
 * (over TLS through SSLRequest, or in plaintext from loopback).
 */
export async function listenPostgres(connection: ConnectionConfig, address: string, services: GatewayServices): Promise<Server> {
  const server = createServer({ pauseOnConnect: false, noDelay: true }, (socket) => {
    servePostgres(socket, { connection, transport: { kind: "native", remoteAddress: socket.remoteAddress ?? "" } }, services);
  });
  return listenOn(server, address);
}
