/** The Airlock gateway: identity, policy, the agents' links, native listeners and the connect tunnel. */
export { loadGatewayConfig, parseGatewayConfig } from "./config/load.js";
export { gatewayConfigSchema, type ConnectionConfig, type GatewayConfig } from "./config/schema.js";
export { createVerifier, GatewayStartError, policyRules, startGateway, type Gateway, type GatewayOptions } from "./gateway.js";
export { createIdentityVerifier, IdentityError, type Identity, type IdentityVerifier } from "./identity/index.js";
export { main } from "./main.js";
export { explain, type ExplainInput, type Explanation } from "./explain.js";
export { loadAnalyzer } from "./inspect/index.js";
