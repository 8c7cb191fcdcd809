/**
 * Statement inspection: what a client's SQL does, from the database's own parser, for the policy
 * to decide on. PostgreSQL only for now.
 */
export {
  analyzePostgres,
  loadAnalyzer,
  type Analysis,
  type AnalyzeOptions,
  type RelationAccess,
  type StatementAnalysis,
  type StatementClass,
  type TransactionKind,
} from "./postgres/analyze.js";
export { createAnalysisCache, type AnalysisCache, type AnalysisCacheOptions } from "./postgres/cache.js";
export {
  analyzeMysql,
  loadMysqlAnalyzer,
  mysqlAnalyzerLoaded,
  type HandlerEffect,
  type MysqlAnalysis,
  type MysqlAnalysisOptions,
  type MysqlAnalyzeOptions,
  type MysqlSqlMode,
  type MysqlServer,
  type MysqlStatementAnalysis,
} from "./mysql/analyze.js";
export { createMysqlAnalysisCache, type MysqlAnalysisCache, type MysqlAnalysisCacheOptions } from "./mysql/cache.js";
export {
  createMysqlSessionState,
  parseServerVersion,
  type HandlerTable,
  type MysqlSessionState,
  type MysqlSessionStateOptions,
} from "./mysql/session.js";
export { isSafeClientCharset } from "./mysql/settings.js";
export { analyzeMongo, isKnownCommand, type MongoAnalysis, type MongoAnalyzeOptions, type MongoStatementAnalysis } from "./mongo/index.js";
