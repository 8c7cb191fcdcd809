import {
  create,
  LinkResponseSchema,
  metadataKeys,
  Protocol,
  type CatalogRelation,
  type LinkRequest,
  type LinkResponse,
  type SessionRequest,
  type SessionResponse,
} from "@airlock/proto";
import type { Logger } from "@airlock/runtime";
import { Metadata, status, type ServerDuplexStream } from "@grpc/grpc-js";
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import type { GatewayMetrics } from "../metrics/metrics.js";

/** A database session the agent opened for a client session: the gRPC call that carries its frames. */
export type AgentCall = ServerDuplexStream<SessionRequest, SessionResponse>;

/** Why a session could not get its agent. */
export class AgentUnavailableError extends Error {
  readonly code: "agent_not_connected" | "agent_timeout" | "agent_lost";

  constructor(code: AgentUnavailableError["code"], message: string) {
    super(message);
    this.name = "AgentUnavailableError";
    this.code = code;
  }
}

/** Options of {@link createAgentHub}. */
export interface AgentHubOptions {
  readonly agents: readonly { readonly name: string; readonly key_sha256: string }[];
  /** connection name -> the agent that serves it. */
  readonly assignments: ReadonlyMap<string, string>;
  readonly openTimeoutMs: number;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
}

/** A request to open a database session through the connection's agent. */
export interface OpenRequest {
  readonly sessionId: string;
  readonly connection: string;
  readonly protocol: Protocol;
  readonly parameters: Readonly<Record<string, string>>;
}

/** Tracks agent links, hands sessions to agents and receives their Session calls. */
export interface AgentHub {
  /** grpc-js handler of AgentService.Link. */
  link(call: ServerDuplexStream<LinkRequest, LinkResponse>): void;
  /** grpc-js handler of AgentService.Session. */
  session(call: AgentCall): void;
  /** Asks the connection's agent for a session and waits for its Session call. */
  open(request: OpenRequest): Promise<AgentCall>;
  /** Asks the agent to cancel the statement running in a session. */
  cancel(connection: string, sessionId: string): boolean;
  /** Names of agents linked now. */
  linked(): string[];
  /** Resolves when the agent is linked (at once if it is). */
  waitForAgent(name: string): Promise<void>;
  /** Reads the relations of a connection's database through its agent. */
  catalog(connection: string): Promise<CatalogRelation[]>;
  close(): void;
}

interface Pending {
  readonly agent: string;
  readonly resolve: (call: AgentCall) => void;
  readonly reject: (error: Error) => void;
}

/** Creates the hub; see {@link AgentHub}. */
export function createAgentHub(options: AgentHubOptions): AgentHub {
  const { logger, metrics } = options;
  const keys = new Map(options.agents.map((agent) => [agent.name, Buffer.from(agent.key_sha256, "hex")]));
  const links = new Map<string, ServerDuplexStream<LinkRequest, LinkResponse>>();
  const pending = new Map<string, Pending>();
  const linkWaiters = new Map<string, (() => void)[]>();
  const catalogs = new Map<string, { resolve: (relations: CatalogRelation[]) => void; reject: (error: Error) => void }>();
  for (const agent of options.agents) metrics.agentLinkUp.set({ agent: agent.name }, 0);

  /** The agent's name if the call carries a known name and its key; undefined otherwise. */
  const authenticate = (metadata: Metadata): string | undefined => {
    const name = metadata.get(metadataKeys.agent)[0];
    const header = metadata.get(metadataKeys.authorization)[0];
    if (typeof name !== "string" || typeof header !== "string" || !header.startsWith("Bearer ")) return undefined;
    const expected = keys.get(name);
    if (expected === undefined) return undefined;
    const actual = createHash("sha256").update(header.slice("Bearer ".length)).digest();
    return timingSafeEqual(actual, expected) ? name : undefined;
  };

  const refuse = (call: { destroy(error?: Error): void; metadata: Metadata }, what: string) => {
    const error = Object.assign(new Error("agent authentication failed"), { code: status.UNAUTHENTICATED, details: "agent authentication failed" });
    logger.warn({ agent: String(call.metadata.get(metadataKeys.agent)[0] ?? "") }, `${what}: agent authentication failed (unknown name or wrong key)`);
    call.destroy(error);
  };

  return {
    link(call) {
      const agent = authenticate(call.metadata);
      if (agent === undefined) {
        refuse(call, "link refused");
        return;
      }
      const child = logger.child({ agent });
      call.once("data", (first: LinkRequest) => {
        if (first.kind.case !== "hello") {
          call.destroy(Object.assign(new Error("first message must be hello"), { code: status.INVALID_ARGUMENT }));
          return;
        }
        const offered = new Set(first.kind.value.connections);
        const assigned = [...options.assignments].filter(([connection, owner]) => owner === agent && offered.has(connection)).map(([connection]) => connection);
        const missing = [...options.assignments].filter(([connection, owner]) => owner === agent && !offered.has(connection)).map(([connection]) => connection);
        if (missing.length > 0) child.warn({ missing }, "the agent holds no credentials for connections assigned to it");
        const previous = links.get(agent);
        links.set(agent, call);
        if (previous !== undefined) previous.end();
        metrics.agentLinkUp.set({ agent }, 1);
        child.info({ connections: assigned, version: first.kind.value.version, peer: call.getPeer() }, "agent linked");
        call.write(create(LinkResponseSchema, { kind: { case: "accepted", value: { connections: assigned } } }));
        for (const waiter of linkWaiters.get(agent) ?? []) waiter();
        linkWaiters.delete(agent);
      });
      const gone = () => {
        if (links.get(agent) !== call) return;
        links.delete(agent);
        metrics.agentLinkUp.set({ agent }, 0);
        child.warn("agent link closed");
      };
      call.on("data", (message: LinkRequest) => {
        if (message.kind.case !== "catalog") return;
        const waiting = catalogs.get(message.kind.value.requestId);
        if (waiting === undefined) return;
        catalogs.delete(message.kind.value.requestId);
        if (message.kind.value.error !== "") waiting.reject(new AgentUnavailableError("agent_lost", message.kind.value.error));
        else waiting.resolve(message.kind.value.relations);
      });
      call.on("end", () => {
        gone();
        call.end();
      });
      call.on("error", gone);
      call.on("close", gone);
      call.on("cancelled", gone);
    },

    session(call) {
      const agent = authenticate(call.metadata);
      if (agent === undefined) {
        refuse(call, "session refused");
        return;
      }
      const sessionId = call.metadata.get(metadataKeys.session)[0];
      const waiting = typeof sessionId === "string" ? pending.get(sessionId) : undefined;
      if (waiting === undefined || waiting.agent !== agent || typeof sessionId !== "string") {
        call.destroy(Object.assign(new Error("no such session"), { code: status.NOT_FOUND, details: "no such session" }));
        return;
      }
      pending.delete(sessionId);
      // The first message is the attach; the caller reads from the second on.
      call.once("data", (first: SessionRequest) => {
        if (first.kind.case !== "attach" || first.kind.value.sessionId !== sessionId) {
          call.destroy(Object.assign(new Error("first message must attach the session"), { code: status.INVALID_ARGUMENT }));
          waiting.reject(new AgentUnavailableError("agent_lost", "the agent sent a bad attach"));
          return;
        }
        call.pause();
        waiting.resolve(call);
      });
    },

    open(request) {
      const agent = options.assignments.get(request.connection);
      const link = agent === undefined ? undefined : links.get(agent);
      if (agent === undefined || link === undefined) {
        return Promise.reject(new AgentUnavailableError("agent_not_connected", `agent \`${agent ?? "?"}\` of connection \`${request.connection}\` is not connected`));
      }
      return new Promise<AgentCall>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(request.sessionId);
          reject(new AgentUnavailableError("agent_timeout", `agent \`${agent}\` did not open a session within ${options.openTimeoutMs} ms`));
        }, options.openTimeoutMs);
        const onLinkLost = () => {
          clearTimeout(timer);
          pending.delete(request.sessionId);
          reject(new AgentUnavailableError("agent_lost", `agent \`${agent}\` disconnected`));
        };
        link.once("close", onLinkLost);
        link.once("cancelled", onLinkLost);
        pending.set(request.sessionId, {
          agent,
          resolve: (call) => {
            clearTimeout(timer);
            link.off("close", onLinkLost);
            link.off("cancelled", onLinkLost);
            resolve(call);
          },
          reject: (error) => {
            clearTimeout(timer);
            link.off("close", onLinkLost);
            link.off("cancelled", onLinkLost);
            reject(error);
          },
        });
        link.write(
          create(LinkResponseSchema, {
            kind: { case: "openSession", value: { sessionId: request.sessionId, connection: request.connection, protocol: request.protocol, parameters: { ...request.parameters } } },
          }),
        );
      });
    },

    cancel(connection, sessionId) {
      const agent = options.assignments.get(connection);
      const link = agent === undefined ? undefined : links.get(agent);
      if (link === undefined) return false;
      link.write(create(LinkResponseSchema, { kind: { case: "cancelSession", value: { sessionId } } }));
      return true;
    },

    catalog(connection) {
      const agent = options.assignments.get(connection);
      const link = agent === undefined ? undefined : links.get(agent);
      if (agent === undefined || link === undefined) {
        return Promise.reject(new AgentUnavailableError("agent_not_connected", `agent \`${agent ?? "?"}\` of connection \`${connection}\` is not connected`));
      }
      const requestId = randomUUID();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          catalogs.delete(requestId);
          reject(new AgentUnavailableError("agent_timeout", `agent \`${agent}\` did not answer the catalog request`));
        }, options.openTimeoutMs * 2);
        catalogs.set(requestId, {
          resolve: (relations) => {
            clearTimeout(timer);
            resolve(relations);
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        });
        link.write(create(LinkResponseSchema, { kind: { case: "catalog", value: { requestId, connection } } }));
      });
    },

    linked() {
      return [...links.keys()];
    },

    waitForAgent(name) {
      if (links.has(name)) return Promise.resolve();
      return new Promise((resolve) => linkWaiters.set(name, [...(linkWaiters.get(name) ?? []), resolve]));
    },

    close() {
      for (const link of links.values()) link.end();
      links.clear();
      for (const [id, waiting] of pending) {
        pending.delete(id);
        waiting.reject(new AgentUnavailableError("agent_lost", "the gateway is shutting down"));
      }
    },
  };
}
