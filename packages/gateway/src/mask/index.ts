/** Masking of results as they stream: the catalog of sensitive columns, lineage, the PostgreSQL masker. */
export { buildMaskCatalog, createMaskCatalogCache, type MaskCatalog, type MaskCatalogCache, type SensitiveColumn } from "./catalog.js";
export { PostgresMasker, type MaskEvents, type PostgresMaskerOptions } from "./postgres-masker.js";
