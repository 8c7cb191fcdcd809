import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";

/** The agent's Prometheus metrics. */
export interface AgentMetrics {
  readonly registry: Registry;
  readonly linkUp: Gauge<"gateway">;
  readonly linkReconnects: Counter;
  readonly sessionsActive: Gauge<"connection">;
  readonly sessions: Counter<"connection" | "outcome">;
  readonly bytes: Counter<"connection" | "direction">;
}

/** Creates the agent's metrics on their own registry. */
export function createAgentMetrics(): AgentMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "airlock_agent_" });
  return {
    registry,
    linkUp: new Gauge({ name: "airlock_agent_link_up", help: "1 while the link to the gateway is established", labelNames: ["gateway"], registers: [registry] }),
    linkReconnects: new Counter({ name: "airlock_agent_link_reconnects_total", help: "Link attempts after the first", registers: [registry] }),
    sessionsActive: new Gauge({ name: "airlock_agent_sessions_active", help: "Database sessions open now", labelNames: ["connection"], registers: [registry] }),
    sessions: new Counter({ name: "airlock_agent_sessions_total", help: "Database sessions by outcome", labelNames: ["connection", "outcome"], registers: [registry] }),
    bytes: new Counter({ name: "airlock_agent_bytes_total", help: "Bytes relayed, by direction (to_database, to_gateway)", labelNames: ["connection", "direction"], registers: [registry] }),
  };
}
