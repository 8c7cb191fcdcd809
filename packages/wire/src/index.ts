/**
 * Wire codecs shared by the gateway and the agent: functions over bytes, no sockets, timers or logs.
 */
export { WireError, type WireErrorCode } from "./errors.js";
export { createPgFramer, type PgFramer, type PgFramerOptions, type PgMessage } from "./postgres/framer.js";
export { authCodes, backend, backendName, frontend, frontendName, startupCodes } from "./postgres/messages.js";
export * as pg from "./postgres/codec.js";
export type { PgAuthentication, PgErrorFields, StartupRequest } from "./postgres/codec.js";
