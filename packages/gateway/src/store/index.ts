/**
 * The gateway's state store: the sessions index, statement decisions, reviews with reviewers' actions
 * and just-in-time access grants, in embedded SQLite or in PostgreSQL shared by several gateways.
 */
export { openStore } from "./open.js";
export {
  ABANDONED_OUTCOME,
  StoreError,
  type DecisionRow,
  type GrantRow,
  type RecordingSeal,
  type ReviewAction,
  type ReviewRow,
  type ReviewStatus,
  type SessionFilter,
  type SessionRecordingRow,
  type SessionRow,
  type SessionStartRow,
  type Store,
  type StoreErrorCode,
  type StoreEvent,
  type StoreLogger,
  type StoreOptions,
} from "./types.js";
export { redactStoreUrl } from "./url.js";
