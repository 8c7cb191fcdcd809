/**
 * Wire codecs shared by the gateway and the agent: functions over bytes, no sockets, timers or logs.
 */
export { WireError, type WireErrorCode } from "./errors.js";
export { createPgFramer, type PgFramer, type PgFramerOptions, type PgMessage } from "./postgres/framer.js";
export { authCodes, backend, backendName, frontend, frontendName, startupCodes } from "./postgres/messages.js";
export * as pg from "./postgres/codec.js";
export type { PgAuthentication, PgBind, PgErrorFields, PgField, StartupRequest } from "./postgres/codec.js";
export { createMysqlFramer, type MysqlFramer, type MysqlFramerOptions, type MysqlPacket } from "./mysql/framer.js";
export {
  mariadbCapabilities,
  mysqlCachingSha2,
  mysqlCapabilities,
  mysqlColumnFlags,
  mysqlColumnTypeName,
  mysqlColumnTypes,
  mysqlCommandName,
  mysqlCommands,
  mysqlCursorTypes,
  mysqlResponseHeaders,
  mysqlServerStatus,
} from "./mysql/messages.js";
export * as mysql from "./mysql/codec.js";
export * as mysqlAuth from "./mysql/auth.js";
export { createMongoFramer, MONGO_HEADER_BYTES, type MongoFramer, type MongoFramerOptions, type MongoMessage } from "./mongo/framer.js";
export {
  mongoCompressorName,
  mongoCompressors,
  mongoOpcodeName,
  mongoOpcodes,
  opMsgFlags,
  opMsgSectionKinds,
  opQueryFlags,
  opReplyFlags,
  type MongoOpcode,
} from "./mongo/messages.js";
export * as mongo from "./mongo/codec.js";
export type {
  DocumentInput,
  MongoCompressor,
  MongoDecodeOptions,
  MongoDecompressOptions,
  MongoEncodeOptions,
  MongoFrame,
  MongoHeader,
  OpCompressed,
  OpMsg,
  OpMsgBodySection,
  OpMsgDocumentSequence,
  OpMsgInput,
  OpMsgSection,
  OpQuery,
  OpQueryInput,
  OpReply,
  OpReplyInput,
} from "./mongo/codec.js";
