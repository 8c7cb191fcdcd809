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
