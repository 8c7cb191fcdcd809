import { Protocol } from "@airlock/proto";
import type { Logger } from "@airlock/runtime";
import type { AgentSettings } from "./config/load.js";
import { startLink, type Link } from "./link/link.js";
import type { AgentMetrics } from "./metrics.js";
import { runPostgresSession } from "./session/postgres.js";
import type { LiveSession } from "./session/relay.js";
import { runMongoSession } from "./session/mongo.js";
import { runMysqlSession } from "./session/mysql.js";
import { readCatalog } from "./upstream/catalog.js";
import { readMongoCatalog } from "./upstream/mongo.js";
import { readMysqlCatalog } from "./upstream/mysql-catalog.js";

/** Options of {@link startAgent}. */
export interface AgentOptions {
  readonly settings: AgentSettings;
  readonly logger: Logger;
  readonly metrics: AgentMetrics;
  readonly version: string;
  readonly backoff?: { baseMs: number; maxMs: number };
}

/** A running agent. */
export interface Agent {
  readonly link: Link;
  /** Sessions open now. */
  readonly sessions: number;
  close(): void;
}

/** Starts the agent: the link to the gateway, and a session for every one the gateway assigns. */
export function startAgent(options: AgentOptions): Agent {
  const { settings, logger, metrics } = options;
  const live = new Map<string, LiveSession>();
  const link = startLink({
    gateway: settings.config.gateway,
    name: settings.config.name,
    key: settings.key,
    ...(settings.gatewayCa === undefined ? {} : { ca: settings.gatewayCa }),
    ...(settings.config.tls?.server_name === undefined ? {} : { serverName: settings.config.tls.server_name }),
    connections: [...settings.targets.keys()],
    maxMessageBytes: settings.config.limits.max_message_bytes,
    version: options.version,
    logger,
    metrics,
    ...(options.backoff === undefined ? {} : { backoff: options.backoff }),
    onOpenSession(request, client, metadata) {
      const child = logger.child({ session: request.sessionId, connection: request.connection });
      const target = settings.targets.get(request.connection);
      const failed = (error: unknown) => child.error({ err: String(error) }, "session failed");
      if (target?.protocol === "mysql") {
        if (request.protocol !== Protocol.MYSQL) child.warn({ protocol: request.protocol }, "the gateway opened a mysql connection with another protocol");
        runMysqlSession(request, { client, metadata, target: target.mysql, logger: child, metrics, live }).catch(failed);
        return;
      }
      if (target?.protocol === "mongodb") {
        if (request.protocol !== Protocol.MONGODB) child.warn({ protocol: request.protocol }, "the gateway opened a mongodb connection with another protocol");
        runMongoSession(request, { client, metadata, target: target.mongodb, logger: child, metrics, live, agentVersion: options.version }).catch(failed);
        return;
      }
      runPostgresSession(request, { client, metadata, target: target?.postgres, logger: child, metrics, live }).catch(failed);
    },
    async onCatalog(request) {
      const target = settings.targets.get(request.connection);
      if (target === undefined) return { error: `connection \`${request.connection}\` is not served by this agent` };
      // MongoDB: collections and views (with their pipelines), which field masking follows through views.
      const relations =
        target.protocol === "mysql"
          ? await readMysqlCatalog(target.mysql)
          : target.protocol === "mongodb"
            ? await readMongoCatalog(target.mongodb, { agentVersion: options.version })
            : await readCatalog(target.postgres);
      logger.debug({ connection: request.connection, relations: relations.length }, "catalog read");
      return { relations };
    },
    onCancelSession(sessionId) {
      const session = live.get(sessionId);
      if (session === undefined) return;
      session.cancel().catch((error: unknown) => logger.warn({ session: sessionId, err: String(error) }, "cancel request failed"));
    },
  });
  return {
    link,
    get sessions() {
      return live.size;
    },
    close() {
      link.close();
    },
  };
}
