import {
  agentServiceDefinition,
  channelOptions,
  create,
  LinkRequestSchema,
  metadataKeys,
  type CatalogRequest,
  type CatalogResponseSchema,
  type LinkRequest,
  type LinkResponse,
  type OpenSession,
} from "@airlock/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Logger, Secret } from "@airlock/runtime";
import { Client, credentials, Metadata, status, type ClientDuplexStream, type ServiceError } from "@grpc/grpc-js";
import type { AgentMetrics } from "../metrics.js";
import { backoffDelay } from "./backoff.js";

/** Options of {@link startLink}. */
export interface LinkOptions {
  readonly gateway: string;
  readonly name: string;
  readonly key: Secret;
  readonly ca?: Buffer;
  readonly serverName?: string;
  readonly connections: readonly string[];
  readonly maxMessageBytes: number;
  readonly version: string;
  readonly logger: Logger;
  readonly metrics: AgentMetrics;
  readonly onOpenSession: (request: OpenSession, client: Client, metadata: () => Metadata) => void;
  readonly onCancelSession: (sessionId: string) => void;
  /** Answers a catalog request; the reply goes back on the link. */
  readonly onCatalog: (request: CatalogRequest) => Promise<Omit<MessageInitShape<typeof CatalogResponseSchema>, "$typeName">>;
  readonly backoff?: { baseMs: number; maxMs: number };
}

/** A running link; it reconnects by itself until closed. */
export interface Link {
  /** Resolves once the gateway has accepted the link (again, after a reconnect). */
  ready(): Promise<void>;
  close(): void;
}

/**
 * Dials the gateway and keeps the control link up: hello, heartbeats, session requests. On any loss
 * it reconnects with exponential backoff and full jitter.
 */
export function startLink(options: LinkOptions): Link {
  const { logger, metrics } = options;
  const client = new Client(
    options.gateway,
    options.ca === undefined ? credentials.createInsecure() : credentials.createSsl(options.ca),
    {
      ...channelOptions(options.maxMessageBytes),
      "grpc.initial_reconnect_backoff_ms": 200,
      "grpc.max_reconnect_backoff_ms": 5_000,
      ...(options.serverName === undefined ? {} : { "grpc.ssl_target_name_override": options.serverName }),
    },
  );
  const metadata = () => {
    const value = new Metadata();
    value.set(metadataKeys.agent, options.name);
    value.set(metadataKeys.authorization, `Bearer ${options.key.reveal()}`);
    return value;
  };
  const backoff = options.backoff ?? { baseMs: 500, maxMs: 30_000 };
  let closed = false;
  let attempt = 0;
  let call: ClientDuplexStream<LinkRequest, LinkResponse> | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let retry: NodeJS.Timeout | undefined;
  let waiters: (() => void)[] = [];
  let up = false;

  const dial = () => {
    if (closed) return;
    const current = client.makeBidiStreamRequest(
      agentServiceDefinition.link.path,
      agentServiceDefinition.link.requestSerialize,
      agentServiceDefinition.link.responseDeserialize,
      metadata(),
    );
    call = current;
    current.write(create(LinkRequestSchema, { kind: { case: "hello", value: { version: options.version, connections: [...options.connections] } } }));
    current.on("data", (message: LinkResponse) => {
      switch (message.kind.case) {
        case "accepted":
          attempt = 0;
          up = true;
          metrics.linkUp.set({ gateway: options.gateway }, 1);
          logger.info({ gateway: options.gateway, connections: message.kind.value.connections }, "link to the gateway is up");
          for (const waiter of waiters) waiter();
          waiters = [];
          break;
        case "openSession":
          options.onOpenSession(message.kind.value, client, metadata);
          break;
        case "cancelSession":
          options.onCancelSession(message.kind.value.sessionId);
          break;
        case "catalog": {
          const request = message.kind.value;
          options.onCatalog(request).then(
            (reply) => current.write(create(LinkRequestSchema, { kind: { case: "catalog", value: { ...reply, requestId: request.requestId } } })),
            (error: unknown) => current.write(create(LinkRequestSchema, { kind: { case: "catalog", value: { requestId: request.requestId, error: (error as Error).message } } })),
          );
          break;
        }
        default:
          break;
      }
    });
    let ended = false;
    const lost = (reason: string, error?: ServiceError) => {
      if (ended) return;
      ended = true;
      if (heartbeat !== undefined) clearInterval(heartbeat);
      metrics.linkUp.set({ gateway: options.gateway }, 0);
      const wasUp = up;
      up = false;
      if (closed) return;
      if (error?.code === status.UNAUTHENTICATED || error?.code === status.PERMISSION_DENIED) {
        logger.error({ gateway: options.gateway, code: error.code }, `the gateway refused the agent: ${error.details}`);
      }
      const delay = backoffDelay(attempt++, backoff);
      metrics.linkReconnects.inc();
      logger[wasUp ? "warn" : "info"]({ gateway: options.gateway, reason, retryInMs: delay }, "link to the gateway lost; reconnecting");
      retry = setTimeout(dial, delay);
    };
    current.on("error", (error: ServiceError) => lost(error.details || error.message, error));
    current.on("end", () => lost("the gateway ended the link"));
    heartbeat = setInterval(() => {
      current.write(create(LinkRequestSchema, { kind: { case: "heartbeat", value: { unixMs: BigInt(Date.now()) } } }));
    }, 15_000);
    heartbeat.unref();
  };
  dial();

  return {
    ready() {
      return up ? Promise.resolve() : new Promise((resolve) => waiters.push(resolve));
    },
    close() {
      closed = true;
      if (retry !== undefined) clearTimeout(retry);
      if (heartbeat !== undefined) clearInterval(heartbeat);
      call?.cancel();
      client.close();
      metrics.linkUp.set({ gateway: options.gateway }, 0);
    },
  };
}
