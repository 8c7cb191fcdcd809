import { createServer, type Server } from "node:net";
import type { ConnectionConfig } from "../config/schema.js";
import type { GatewayServices } from "../session/context.js";
import { listenOn } from "./listen.js";
import { serveMysql, type MysqlListenerContext } from "../session/mysql-session.js";

/**
 * Opens a connection's native MySQL listener: the client sends its OIDC token as the password
 * (caching_sha2_password over TLS, or mysql_clear_password over TLS or from loopback).
 */
export async function listenMysql(connection: ConnectionConfig, address: string, services: GatewayServices, context: MysqlListenerContext): Promise<Server> {
  const server = createServer({ pauseOnConnect: true, noDelay: true }, (socket) => {
    serveMysql(socket, { connection, transport: { kind: "native", remoteAddress: socket.remoteAddress ?? "" } }, services, context);
  });
  return listenOn(server, address);
}

/**
 * What a connection's MySQL sessions share: the listener's RSA key (generated at start) and the
 * server version the handshake announces, learnt from the agent's logins (before the first one,
 * a MySQL 8.0 version clients accept).
 */
export function createMysqlListenerContext(rsaKey: MysqlListenerContext["rsaKey"]): MysqlListenerContext {
  let version = "8.0.40";
  return {
    rsaKey,
    serverVersion: () => `${version}-airlock`,
    learnServerVersion: (learnt) => {
      // MariaDB announces `5.5.5-10.11.x-MariaDB...`; keep the prefix clients look for.
      version = learnt.replace(/-airlock$/, "");
    },
  };
}
