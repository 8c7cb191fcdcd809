/**
 * Lineage for masking (PostgreSQL): from the parse tree and a catalog snapshot, which outputs of
 * a statement may carry values derived from sensitive columns, which predicates infer them, and
 * which statements copy them past masking.
 */
export {
  analyzeExposure,
  valueCatalogs,
  type CatalogRelation,
  type CatalogSnapshot,
  type ExposureAnalysis,
  type ExposureOutput,
  type Inference,
  type InferenceClause,
  type StatementExposure,
} from "./lineage.js";
