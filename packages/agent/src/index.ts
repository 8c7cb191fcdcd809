/** The Airlock agent: runs beside the databases, holds their credentials, dials out to the gateway. */
export { startAgent, type Agent, type AgentOptions } from "./agent.js";
export { loadAgentSettings, type AgentSettings } from "./config/load.js";
export { agentConfigSchema, type AgentConfig } from "./config/schema.js";
export { backoffDelay, type BackoffOptions } from "./link/backoff.js";
export { createAgentMetrics, type AgentMetrics } from "./metrics.js";
export { main } from "./main.js";
