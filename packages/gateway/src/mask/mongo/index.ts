/**
 * MongoDB masking: declared sensitive fields by path (nested, inside arrays), lineage through
 * projections and aggregation pipelines, type-keeping masked BSON values, content detectors over
 * every other string, and scrubbed errors and explain output.
 */
export { buildMongoMaskCatalog, parseMongoField, viewsFromListCollections, type MongoMaskCatalog, type MongoSensitiveField, type MongoView } from "./catalog.js";
export { createMongoMasker, type MongoMasker, type MongoMaskerOptions } from "./masker.js";
export type { MongoMaskPlan, ReplyPlan } from "./plan.js";
export { WITHHELD_MESSAGE } from "./reply.js";
export type { TaintNode, Taint } from "./taint.js";
export type { MongoMaskEvents } from "./values.js";
