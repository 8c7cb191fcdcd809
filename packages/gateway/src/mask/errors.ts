/**
 * Why a value could not be masked.
 *
 * - `unsupported_binary_type`: the column is in binary format and its type has no masked binary
 *   form here, and the style cannot fall back to NULL (`partial` and `pseudonym` promise something
 *   NULL cannot keep). The caller must fail closed: end the result with an error rather than pass
 *   the value through.
 * - `invalid_value`: the value cannot be decoded as its type (a binary int4 that is not 4 bytes, a
 *   uuid that is not a uuid), so a deterministic pseudonym cannot be derived from it. The caller
 *   must fail closed the same way.
 */
export type MaskErrorCode = "unsupported_binary_type" | "invalid_value";

/**
 * The one error type of the masking value layer. The message names the type and the style, never
 * the value, so it is safe to log and to record.
 */
export class MaskError extends Error {
  /** Why the value could not be masked. */
  readonly code: MaskErrorCode;

  /**
   * @param code - why the value could not be masked
   * @param message - lowercase, no trailing period, never the value
   * @param options - the underlying error, if any
   */
  constructor(code: MaskErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MaskError";
    this.code = code;
  }
}
