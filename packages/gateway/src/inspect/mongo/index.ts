/**
 * MongoDB command inspection: what a decoded command does, in the PostgreSQL analyser's terms,
 * for the same policy to decide on.
 */
export { analyzeMongo, type MongoAnalysis, type MongoAnalyzeOptions, type MongoStatementAnalysis } from "./analyze.js";
export { isKnownCommand } from "./commands.js";
export { isDocument, splitNamespace, type BsonDocument, type Namespace } from "./documents.js";
export { alwaysTrue } from "./filters.js";
