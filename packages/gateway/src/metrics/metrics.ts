import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** The gateway's Prometheus metrics. Labels never carry identities' tokens, statements or values. */
export interface GatewayMetrics {
  readonly registry: Registry;
  readonly sessionsActive: Gauge<"connection" | "transport">;
  readonly sessions: Counter<"connection" | "transport" | "outcome">;
  readonly startupRefusals: Counter<"connection" | "reason">;
  readonly bytes: Counter<"connection" | "direction">;
  readonly messages: Counter<"connection" | "type">;
  readonly agentLinkUp: Gauge<"agent">;
  readonly sessionOpenSeconds: Histogram<"connection">;
  readonly statements: Counter<"connection" | "class" | "decision">;
  readonly reviewsPending: Gauge;
  readonly reviewWaitSeconds: Histogram<"outcome">;
  readonly maskedValues: Counter<"connection" | "column">;
  readonly detectorHits: Counter<"connection" | "detector">;
  readonly uncertainLineage: Counter<"connection">;
}

/** Creates the gateway's metrics on their own registry. */
export function createGatewayMetrics(): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "airlock_gateway_" });
  const registers = [registry];
  return {
    registry,
    sessionsActive: new Gauge({ name: "airlock_sessions_active", help: "Client sessions open now", labelNames: ["connection", "transport"], registers }),
    sessions: new Counter({ name: "airlock_sessions_total", help: "Client sessions by how they ended", labelNames: ["connection", "transport", "outcome"], registers }),
    startupRefusals: new Counter({ name: "airlock_startup_refusals_total", help: "Sessions refused before they started, by reason", labelNames: ["connection", "reason"], registers }),
    bytes: new Counter({ name: "airlock_bytes_total", help: "Bytes relayed, by direction (to_client, to_database)", labelNames: ["connection", "direction"], registers }),
    messages: new Counter({ name: "airlock_client_messages_total", help: "Protocol messages from clients, by type", labelNames: ["connection", "type"], registers }),
    agentLinkUp: new Gauge({ name: "airlock_agent_link_up", help: "1 while the agent's link is established", labelNames: ["agent"], registers }),
    sessionOpenSeconds: new Histogram({
      name: "airlock_session_open_seconds",
      help: "Time from client startup to a ready database session (token check, policy, agent, database auth)",
      labelNames: ["connection"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    statements: new Counter({ name: "airlock_statements_total", help: "Client statements by class and decision (a statement with several classes counts once per class)", labelNames: ["connection", "class", "decision"], registers }),
    reviewsPending: new Gauge({ name: "airlock_reviews_pending", help: "Reviews waiting for a reviewer on this gateway", registers }),
    reviewWaitSeconds: new Histogram({
      name: "airlock_review_wait_seconds",
      help: "Time from a review's request to its decision",
      labelNames: ["outcome"],
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    }),
    maskedValues: new Counter({ name: "airlock_masked_values_total", help: "Values masked in results, by sensitive column (or (expression), (uncertain), (copy))", labelNames: ["connection", "column"], registers }),
    detectorHits: new Counter({ name: "airlock_detector_hits_total", help: "Values masked by a content detector", labelNames: ["connection", "detector"], registers }),
    uncertainLineage: new Counter({ name: "airlock_uncertain_lineage_total", help: "Output columns masked because their lineage was uncertain (fail closed)", labelNames: ["connection"], registers }),
  };
}
