/**
 * The value layer of masking: content detectors and mask styles, pure functions over values with
 * no I/O and no protocol code. The session layer decides which values to mask and calls these.
 */
export { MaskError, type MaskErrorCode } from "./errors.js";
export { createDetectors, detectorNames, type DetectorHit, type DetectorName, type Detectors, type RedactResult } from "./detectors.js";
export {
  DEFAULT_PARTIAL_KEEP,
  MIN_PSEUDONYM_KEY_BYTES,
  PSEUDONYM_PREFIX,
  REDACTED_TEXT,
  maskStyles,
  maskText,
  type MaskStyle,
  type MaskTextOptions,
} from "./styles.js";
export { isPgTypeMaskable, maskPgValue, pgTypeOids, type MaskPgValueOptions, type PgFormat, type PgTypeName } from "./postgres-values.js";
