/**
 * Why a token was refused.
 *
 * - `malformed`: not a compact JWS JWT, too large, or a claim of the wrong type.
 * - `algorithm_not_allowed`: `alg` is not one of the asymmetric algorithms accepted (`none` and `HS*` never are).
 * - `bad_signature`: the signature does not verify with the issuer's key.
 * - `unknown_key`: no key (or more than one) in the issuer's key set matches the token's `kid` and `alg`.
 * - `expired`: `exp` is in the past.
 * - `not_yet_valid`: `nbf` (or, with a maximum lifetime, `iat`) is in the future.
 * - `issuer_unknown`: `iss` is not a configured issuer.
 * - `audience_mismatch`: `aud` does not name the issuer's configured audience.
 * - `lifetime_exceeded`: `exp - iat` is longer than the issuer allows.
 * - `missing_claim`: a required claim (`iss`, `sub`, `aud`, `exp`, `iat`) is absent.
 * - `jwks_unavailable`: the issuer's discovery document or key set could not be fetched or used.
 */
export type IdentityErrorCode =
  | "malformed"
  | "algorithm_not_allowed"
  | "bad_signature"
  | "unknown_key"
  | "expired"
  | "not_yet_valid"
  | "issuer_unknown"
  | "audience_mismatch"
  | "lifetime_exceeded"
  | "missing_claim"
  | "jwks_unavailable";

/**
 * The one error type of token verification. The message says exactly why the token was refused
 * and never contains the token or its signature, so it is safe to log and to return to the client.
 */
export class IdentityError extends Error {
  /** Why the token was refused. */
  readonly code: IdentityErrorCode;

  /**
   * @param code - why the token was refused
   * @param message - lowercase, no trailing period, user input in backticks, never the token
   * @param options - the underlying error, if any
   */
  constructor(code: IdentityErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "IdentityError";
    this.code = code;
  }
}
