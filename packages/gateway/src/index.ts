/** The Airlock gateway: identity, policy, the agents' links, native listeners and the connect tunnel. */
export { loadGatewayConfig, parseGatewayConfig } from "./config/load.js";
export { gatewayConfigSchema, type ConnectionConfig, type GatewayConfig } from "./config/schema.js";
export { createVerifier, GatewayStartError, policyRules, startGateway, type Gateway, type GatewayOptions } from "./gateway.js";
export { createIdentityVerifier, IdentityError, type Identity, type IdentityVerifier } from "./identity/index.js";
export { main } from "./main.js";
export { explain, type ExplainInput, type Explanation } from "./explain.js";
export { loadAnalyzer } from "./inspect/index.js";
export {
  ABANDONED_OUTCOME,
  openStore,
  StoreError,
  type DecisionRow,
  type RecordingSeal,
  type SessionFilter,
  type SessionRecordingRow,
  type SessionRow,
  type Store,
  type StoreErrorCode,
} from "./store/index.js";
export { genesisHash, verifyLines, type RecordLine, type VerifyResult } from "./recording/chain.js";
export {
  createSessionsApi,
  decisionJson,
  sessionJson,
  verifySessionRecording,
  writeApiReply,
  type ApiReply,
  type SessionsApi,
  type SessionsApiOptions,
  type SessionVerification,
} from "./api/sessions.js";
