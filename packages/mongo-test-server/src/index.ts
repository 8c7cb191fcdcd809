/**
 * A MongoDB stand-in for tests: the wire protocol over TCP through @airlock/wire's codec, SCRAM-SHA-256
 * and SCRAM-SHA-1, CRUD, cursors, aggregation, sessions, transactions and change streams, with
 * query, update and pipeline semantics from mingo; everything in memory. A test fixture only: no
 * product code imports it.
 */
export { startMongoTestServer, type MongoTestDatabases, type MongoTestServer, type MongoTestServerOptions, type MongoTestServerStats } from "./server.js";
export type { MongoTestRole, MongoTestRoleName, MongoTestUser } from "./users.js";
export type { ScramMechanism } from "./scram.js";
export { mongoErrorCodes, type MongoErrorCodeName } from "./errors.js";
export { MAX_WIRE_VERSION, SERVER_VERSION } from "./commands/admin.js";
