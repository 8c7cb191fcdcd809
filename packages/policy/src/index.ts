/**
 * Airlock's policy decisions: a pure library (no I/O, no clock, no randomness). Input carries the
 * identity, the connection, `now` and the statement's analysis; output is a decision with the rules
 * that made it. Default deny; deny wins over review, review over allow.
 */
export { decideConnection, decideStatement, matchingPolicies } from "./decide.js";
export { windowRemaining } from "./window.js";
export {
  statementClasses,
  type AccessWindow,
  type Action,
  type Grant,
  type Weekday,
  type ConnectionDecision,
  type ConnectionRequest,
  type PolicyRule,
  type Principal,
  type StatementClass,
  type StatementDecision,
  type StatementRequest,
} from "./types.js";
