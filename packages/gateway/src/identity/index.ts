/**
 * OIDC identity: verifies short-lived OIDC JWTs (e.g. from CI jobs) presented as database passwords
 * and maps them to an {@link Identity} with groups.
 */
export { IdentityError, type IdentityErrorCode } from "./errors.js";
export {
  ALLOWED_ALGORITHMS,
  MAX_TOKEN_LENGTH,
  createIdentityVerifier,
  groupsFromClaims,
  type GroupRule,
  type Identity,
  type IdentityVerifier,
  type IdentityVerifierOptions,
  type IssuerOptions,
} from "./verifier.js";
