import type { PolicyRule } from "@airlock/policy";
import { agentServiceDefinition, channelOptions, tunnelServiceDefinition } from "@airlock/proto";
import { isLoopback, splitHostPort, type Logger } from "@airlock/runtime";
import { Server as GrpcServer, ServerCredentials, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { createServer, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Server as NetServer } from "node:net";
import { createSecureContext } from "node:tls";
import type { GatewayConfig } from "./config/schema.js";
import { createApiHandler } from "./api/http.js";
import { createApprovals } from "./approvals/index.js";
import { createIdentityVerifier, type IdentityVerifier } from "./identity/index.js";
import { createAnalysisCache, createMysqlAnalysisCache, loadAnalyzer, loadMysqlAnalyzer } from "./inspect/index.js";
import { createRecorder } from "./recording/index.js";
import { createDecisionLog } from "./session/decision-log.js";
import { createMysqlListenerContext, listenMysql } from "./listeners/mysql.js";
import { listenMongo } from "./listeners/mongo.js";
import { createMongoListenerContext } from "./session/mongo-session.js";
import { createMysqlRsaKey } from "./listeners/mysql-handshake.js";
import { createMaskCatalogCache } from "./mask/index.js";
import { analyzeExposure, type CatalogSnapshot, type StatementExposure } from "./mask/lineage/index.js";
import { createDetectors } from "./mask/values.js";
import type { ConnectionMasking } from "./session/context.js";
import { openStore, type Store } from "./store/index.js";
import { createWriteStream } from "node:fs";
import { hostname } from "node:os";
import { createAgentHub, type AgentHub } from "./link/agent-hub.js";
import { listenPostgres } from "./listeners/postgres.js";
import { createGatewayMetrics, type GatewayMetrics } from "./metrics/metrics.js";
import { createCancelKeys } from "./session/cancel-keys.js";
import type { GatewayServices } from "./session/context.js";
import { createTunnelService } from "./tunnel/tunnel-service.js";

/** Options of {@link startGateway}. */
export interface GatewayOptions {
  readonly config: GatewayConfig;
  readonly logger: Logger;
  /** Injected clock for identity and policy; defaults to the system clock. */
  readonly now?: () => Date;
}

/** A running gateway. */
export interface Gateway {
  readonly grpcAddress: string;
  readonly httpAddress: string;
  /** connection name -> address of its native listener. */
  readonly listeners: ReadonlyMap<string, string>;
  readonly hub: AgentHub;
  readonly metrics: GatewayMetrics;
  readonly store: Store;
  readonly id: string;
  close(): Promise<void>;
}

/** The error raised when the configuration is sound but cannot run here. */
export class GatewayStartError extends Error {
  readonly code = "start_failed";
}

/** Policies of gateway.yaml in the policy library's terms. */
export function policyRules(config: GatewayConfig): PolicyRule[] {
  return config.policies.map((policy) => ({
    name: policy.name,
    groups: policy.groups,
    connections: policy.connections,
    actions: policy.actions,
    ...(policy.max_rows === undefined ? {} : { maxRows: policy.max_rows }),
    ...(policy.max_session === undefined ? {} : { maxSessionMs: policy.max_session }),
    unmasked: policy.unmasked,
    ...(policy.reviewers === undefined ? {} : { reviewers: policy.reviewers }),
    reviewTimeoutMs: policy.review_timeout ?? config.approvals.default_timeout,
    approvals: policy.approvals,
    unboundedWrite: policy.unbounded_write,
    access: policy.access,
    ...(policy.windows === undefined ? {} : { windows: policy.windows }),
  }));
}

/** The identity verifier configured by gateway.yaml. */
export function createVerifier(config: GatewayConfig, now?: () => Date): IdentityVerifier {
  return createIdentityVerifier({
    issuers: config.identity.issuers.map((issuer) => ({
      name: issuer.name,
      issuer: issuer.issuer,
      audience: issuer.audience,
      ...(issuer.jwks_file === undefined ? {} : { jwksFile: issuer.jwks_file }),
      ...(issuer.jwks_url === undefined ? {} : { jwksUrl: issuer.jwks_url }),
      ...(issuer.groups_claim === undefined ? {} : { groupsClaim: issuer.groups_claim }),
      ...(issuer.max_lifetime === undefined ? {} : { maxLifetimeSeconds: issuer.max_lifetime / 1000 }),
    })),
    groupRules: config.identity.group_rules.map((rule) => ({ group: rule.group, issuer: rule.issuer, claims: rule.claims })),
    clockToleranceSeconds: config.identity.clock_tolerance / 1000,
    ...(now === undefined ? {} : { now }),
  });
}

/**
 * Starts the gateway: the gRPC server (agents' links and `airlock connect` tunnels), the HTTP server
 * (/metrics, /healthz) and a native listener for each connection that has one.
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { config, logger } = options;
  const now = options.now ?? (() => new Date());
  const usesPseudonyms = config.connections.some((connection) => connection.masking?.columns.some((column) => column.style === "pseudonym") === true);
  if (usesPseudonyms && config.masking.key_file === undefined) {
    throw new GatewayStartError("masking.key_file: a connection masks with the pseudonym style, which needs a key (at least 32 random bytes in a file)");
  }
  const maskKey = config.masking.key_file === undefined ? undefined : readFileSync(config.masking.key_file);
  if (maskKey !== undefined && maskKey.length < 16) throw new GatewayStartError("masking.key_file: the key is shorter than 16 bytes");
  const grpcListen = splitHostPort(config.listen.grpc);
  if (config.tls === undefined && !isLoopback(grpcListen.host)) {
    throw new GatewayStartError(`listen.grpc: \`${config.listen.grpc}\` is not a loopback address; configure tls to listen beyond this machine`);
  }
  if (config.tls === undefined && !isLoopback(splitHostPort(config.listen.http).host)) {
    throw new GatewayStartError(`listen.http: \`${config.listen.http}\` is not a loopback address; configure tls (the API carries reviewer keys and tokens) to listen beyond this machine`);
  }
  const tls =
    config.tls === undefined ? undefined : { cert: readFileSync(config.tls.cert_file), key: readFileSync(config.tls.key_file) };
  const metrics = createGatewayMetrics();
  const hub = createAgentHub({
    agents: config.agents,
    assignments: new Map(config.connections.map((connection) => [connection.name, connection.agent])),
    openTimeoutMs: config.limits.agent_timeout,
    logger,
    metrics,
  });
  await loadAnalyzer();
  const store = await openStore(config.store, { logger });
  const gatewayId = config.id ?? `${hostname()}-${grpcListen.port}`;
  const abandoned = await store.endAbandonedSessions(gatewayId, now());
  if (abandoned > 0) logger.warn({ sessions: abandoned }, "sessions of an earlier run of this gateway ended abruptly");
  // Statements an earlier run held for review are gone with their clients: their reviews end too.
  for (const review of await store.listReviews({ status: "pending", limit: 10_000 })) {
    if (review.gatewayId === gatewayId && review.kind === "statement") await store.closeReview(review.id, "cancelled", now());
  }
  const approvals = createApprovals({
    store,
    reviewers: config.reviewers.map((reviewer) => ({ name: reviewer.name, groups: reviewer.groups, subjects: reviewer.subjects })),
    gatewayId,
    ...(config.approvals.webhook_url === undefined ? {} : { webhookUrl: config.approvals.webhook_url }),
    ...(config.approvals.public_url === undefined ? {} : { publicUrl: config.approvals.public_url }),
    logger,
    metrics,
    now,
  });
  // One cache for every connection; each connection's options object (its safe functions) keys it apart.
  const cache = createAnalysisCache({ max: 10_000 });
  const analyzers = new Map(
    config.connections.map((connection) => {
      const analyzeOptions = { safeFunctions: connection.safe_functions.map((name) => name.toLowerCase()) };
      return [connection.name, { analyze: (sql: string) => cache.analyze(sql, analyzeOptions) }] as const;
    }),
  );
  const masking = new Map<string, ConnectionMasking>();
  for (const connection of config.connections) {
    if (connection.masking === undefined) continue;
    const declared = connection.masking.columns.map((column) => {
      const [schema = "", table = "", name = ""] = column.column.split(".");
      return { schema, table, column: name, style: column.style, ...(column.keep === undefined ? {} : { keep: column.keep }) };
    });
    masking.set(connection.name, {
      catalog: createMaskCatalogCache(() => hub.catalog(connection.name), declared, config.masking.catalog_ttl, undefined, connection.protocol === "mysql" ? "mysql" : undefined),
      detectors: connection.masking.detectors.length === 0 ? undefined : createDetectors(connection.masking.detectors),
      inference: connection.masking.inference,
      key: maskKey,
      exposureOf: createExposureCache(),
    });
  }
  const recorder = await createRecorder({ dir: config.recordings, gatewayId, fsync: config.recording.fsync, intervalMs: config.recording.interval, logger, now });
  const prune = () => {
    const cutoff = new Date(now().getTime() - config.recording.retention);
    Promise.all([recorder.prune(config.recording.retention), store.pruneSessions(cutoff)]).catch((error: unknown) => logger.error({ err: String(error) }, "retention failed"));
  };
  prune();
  const pruning = setInterval(prune, 3_600_000);
  pruning.unref();
  const auditStream = config.audit_log === undefined ? undefined : config.audit_log === "-" ? process.stdout : createWriteStream(config.audit_log, { flags: "a", mode: 0o600 });
  auditStream?.on("error", (error) => logger.error({ err: error.message }, "cannot write the audit log"));
  const audit = auditStream === undefined ? () => undefined : (event: Readonly<Record<string, unknown>>) => void auditStream.write(`${JSON.stringify(event)}\n`);
  const decisions = createDecisionLog(store, logger);
  const mysqlConnections = new Map(
    config.connections
      .filter((connection) => connection.protocol === "mysql")
      .map((connection) => [connection.name, { listener: createMysqlListenerContext(createMysqlRsaKey()), safeFunctions: connection.safe_functions.map((name) => name.toLowerCase()) }] as const),
  );
  if (mysqlConnections.size > 0) await loadMysqlAnalyzer();
  const services: GatewayServices = {
    hub,
    decisions,
    verifier: createVerifier(config, now),
    policies: policyRules(config),
    metrics,
    logger,
    cancelKeys: createCancelKeys(),
    maxMessageBytes: config.limits.max_message_bytes,
    ...(tls === undefined ? {} : { tls: createSecureContext(tls) }),
    now,
    store,
    approvals,
    gatewayId,
    analyzers,
    mysql: { analyses: createMysqlAnalysisCache({ max: 10_000 }), connections: mysqlConnections },
    mongo: new Map(config.connections.filter((connection) => connection.protocol === "mongodb").map((connection) => [connection.name, createMongoListenerContext()] as const)),
    recorder,
    masking,
    recording: { failClosed: config.recording.fail_closed, sampleRows: config.recording.sample_rows },
    audit,
  };

  const grpc = new GrpcServer(channelOptions(config.limits.max_message_bytes));
  grpc.addService(agentServiceDefinition, { link: hub.link, session: hub.session } as unknown as UntypedServiceImplementation);
  const tunnel = createTunnelService(new Map(config.connections.map((connection) => [connection.name, connection])), services);
  grpc.addService(tunnelServiceDefinition, tunnel as unknown as UntypedServiceImplementation);
  const credentials = tls === undefined ? ServerCredentials.createInsecure() : ServerCredentials.createSsl(null, [{ cert_chain: tls.cert, private_key: tls.key }]);
  const grpcPort = await new Promise<number>((resolve, reject) => {
    grpc.bindAsync(config.listen.grpc, credentials, (error, port) => (error ? reject(new GatewayStartError(`listen.grpc: cannot listen on \`${config.listen.grpc}\`: ${error.message}`)) : resolve(port)));
  });

  // Reviewer keys and job tokens cross this API: it is HTTPS whenever the gateway has a certificate.
  const apiHandler = createApiHandler({
    reviewers: config.reviewers.map((reviewer) => ({ name: reviewer.name, groups: reviewer.groups, subjects: reviewer.subjects, keySha256: reviewer.key_sha256 })),
    approvals,
    store,
    recordingsDir: config.recordings,
    flushRecording: (path) => recorder.flush(path),
    verifier: services.verifier,
    policies: services.policies,
    connections: new Set(config.connections.map((connection) => connection.name)),
    maxGrantMs: new Map(config.policies.map((policy) => [policy.name, policy.max_grant])),
    registry: metrics.registry,
    health: () => ({ agents: hub.linked(), gateway: gatewayId }),
    logger,
    now,
  });
  const http: HttpServer = tls === undefined ? createServer(apiHandler) : createHttpsServer({ cert: tls.cert, key: tls.key }, apiHandler);
  const httpListen = splitHostPort(config.listen.http);
  await new Promise<void>((resolve, reject) => {
    http.once("error", (error) => reject(new GatewayStartError(`listen.http: cannot listen on \`${config.listen.http}\`: ${error.message}`)));
    http.listen(httpListen.port, httpListen.host, () => resolve());
  });

  const listeners = new Map<string, string>();
  const servers: NetServer[] = [];
  try {
    for (const connection of config.connections) {
      if (connection.listen === undefined) continue;
      const mysqlContext = services.mysql.connections.get(connection.name)?.listener;
      const mongoContext = services.mongo.get(connection.name);
      const listening =
        mysqlContext !== undefined
          ? listenMysql(connection, connection.listen, services, mysqlContext)
          : mongoContext !== undefined
            ? listenMongo(connection, connection.listen, services, mongoContext)
            : listenPostgres(connection, connection.listen, services);
      const server = await listening.catch((error: Error) => {
        throw new GatewayStartError(`connections.${connection.name}.listen: cannot listen on \`${connection.listen}\`: ${error.message}`);
      });
      servers.push(server);
      const address = server.address() as AddressInfo;
      listeners.set(connection.name, `${address.address}:${address.port}`);
    }
  } catch (error) {
    for (const server of servers) server.close();
    http.close();
    grpc.forceShutdown();
    throw error;
  }
  const httpAddress = http.address() as AddressInfo;
  logger.info({ grpc: `${grpcListen.host}:${grpcPort}`, http: `${httpAddress.address}:${httpAddress.port}`, listeners: Object.fromEntries(listeners) }, "gateway listening");

  return {
    grpcAddress: `${grpcListen.host}:${grpcPort}`,
    httpAddress: `${httpAddress.address}:${httpAddress.port}`,
    listeners,
    hub,
    metrics,
    store,
    id: gatewayId,
    async close() {
      for (const server of servers) server.close();
      hub.close();
      approvals.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          grpc.forceShutdown();
          resolve();
        }, 2_000);
        grpc.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      clearInterval(pruning);
      await recorder.close();
      await decisions.flush();
      if (auditStream !== undefined && auditStream !== process.stdout) auditStream.end();
      await store.close();
    },
  };
}

/** Exposure analyses by SQL text, kept per catalog snapshot (a new snapshot starts afresh). */
function createExposureCache(max = 5_000): (sql: string, snapshot: CatalogSnapshot) => readonly StatementExposure[] | undefined {
  const bySnapshot = new WeakMap<CatalogSnapshot, Map<string, readonly StatementExposure[] | undefined>>();
  return (sql, snapshot) => {
    let cache = bySnapshot.get(snapshot);
    if (cache === undefined) {
      cache = new Map();
      bySnapshot.set(snapshot, cache);
    }
    if (cache.has(sql)) return cache.get(sql);
    const result = analyzeExposure(sql, snapshot);
    const value = result.ok ? result.statements : undefined;
    if (cache.size >= max) cache.delete(cache.keys().next().value as string);
    cache.set(sql, value);
    return value;
  };
}
