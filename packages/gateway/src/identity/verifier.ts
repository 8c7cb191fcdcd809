import { readFileSync } from "node:fs";
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type CompactJWSHeaderParameters,
  type CryptoKey,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWTPayload,
  type LocalJWKSet,
  type ProtectedHeaderParameters,
} from "jose";
import { IdentityError } from "./errors.js";

/** One trusted OIDC issuer, e.g. GitHub Actions or a GitLab instance. */
export interface IssuerOptions {
  /** Config name, e.g. `ci`; reported as {@link Identity.issuer} and referenced by {@link GroupRule.issuer}. */
  name: string;
  /** Exact `iss` value, e.g. `https://token.actions.githubusercontent.com`. */
  issuer: string;
  /** The `aud` value tokens must carry. */
  audience: string;
  /** Path to a JWKS JSON file, read once when the verifier is created. */
  jwksFile?: string;
  /** JWKS URL. When neither this nor `jwksFile` is set, the URL comes from `{issuer}/.well-known/openid-configuration`. */
  jwksUrl?: string;
  /** Claim holding a group name or an array of group names. */
  groupsClaim?: string;
  /** Longest accepted `exp - iat`, in seconds; when set, tokens must carry an `iat` that is not in the future. */
  maxLifetimeSeconds?: number;
}

/**
 * Grants `group` to tokens of the issuer named `issuer` whose claims all match: a string expects
 * that exact value, an array accepts any of its values, and an array-valued token claim matches if
 * it contains an accepted value. A rule with no claims grants the group to every token of the issuer.
 */
export interface GroupRule {
  /** Group granted. */
  group: string;
  /** Issuer *name* ({@link IssuerOptions.name}) the rule applies to. */
  issuer: string;
  /** Claims the token must have, with their accepted values. */
  claims: Record<string, string | string[]>;
}

/** Who presented a verified token. */
export interface Identity {
  /** The `sub` claim. */
  subject: string;
  /** Issuer name ({@link IssuerOptions.name}). */
  issuer: string;
  /** Issuer URL (the `iss` claim). */
  issuerUrl: string;
  /** Groups from the groups claim and the matching group rules, sorted and unique. */
  groups: string[];
  /** The full verified payload. */
  claims: Record<string, unknown>;
  /** When the token expires (`exp`). */
  expiresAt: Date;
}

/** Options of {@link createIdentityVerifier}. */
export interface IdentityVerifierOptions {
  /** Trusted issuers; each `name` and each `issuer` URL must be unique. */
  issuers: readonly IssuerOptions[];
  /** Rules granting groups from claims. */
  groupRules?: readonly GroupRule[];
  /** Allowed clock skew for `exp`, `nbf` and `iat`, in seconds; default 30. */
  clockToleranceSeconds?: number;
  /** Clock; default `() => new Date()`. */
  now?: () => Date;
}

/** Verifies OIDC JWTs presented as database passwords. */
export interface IdentityVerifier {
  /** Returns the token's identity, or rejects with an {@link IdentityError} saying why it is refused. */
  verify(token: string): Promise<Identity>;
}

/** Longest token accepted; longer input is refused before parsing. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

/** The only accepted signature algorithms: asymmetric ones, never `none` or `HS*`. */
export const ALLOWED_ALGORITHMS: readonly string[] = Object.freeze([
  "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
]);

const DISCOVERY_TIMEOUT_MS = 5_000;

type KeySet = (header: CompactJWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

interface TrustedIssuer {
  options: IssuerOptions;
  keySet: () => Promise<KeySet>;
  rules: GroupRule[];
  requiredClaims: string[];
}

/**
 * Creates a verifier for the given issuers. Reads `jwksFile`s now and throws on invalid options;
 * remote key sets and discovery documents are fetched on first use.
 */
export function createIdentityVerifier(options: IdentityVerifierOptions): IdentityVerifier {
  const clockTolerance = options.clockToleranceSeconds ?? 30;
  if (!Number.isFinite(clockTolerance) || clockTolerance < 0) {
    throw new TypeError("clockToleranceSeconds must be a non-negative number");
  }
  const now = options.now ?? (() => new Date());
  const issuers = trustIssuers(options.issuers, options.groupRules ?? []);

  return {
    async verify(token) {
      const { header, payload } = decode(token);
      if (typeof header.alg !== "string") throw new IdentityError("malformed", "token header has no `alg`");
      if (!ALLOWED_ALGORITHMS.includes(header.alg)) {
        throw new IdentityError("algorithm_not_allowed", `algorithm ${q(header.alg)} is not allowed`);
      }
      if (payload.iss === undefined) throw new IdentityError("missing_claim", "token has no `iss` claim");
      if (typeof payload.iss !== "string") throw new IdentityError("malformed", "claim `iss` is not a string");
      const trusted = issuers.get(payload.iss);
      if (!trusted) throw new IdentityError("issuer_unknown", `issuer ${q(payload.iss)} is not trusted`);

      const { name, issuer, audience, maxLifetimeSeconds } = trusted.options;
      const currentDate = now();
      let verified: JWTPayload;
      try {
        const keySet = await trusted.keySet();
        ({ payload: verified } = await jwtVerify(token, keySet, {
          algorithms: [...ALLOWED_ALGORITHMS],
          issuer,
          audience,
          clockTolerance,
          currentDate,
          requiredClaims: trusted.requiredClaims,
        }));
      } catch (error) {
        throw toIdentityError(error, trusted.options, header);
      }

      const { sub, exp, iat } = verified;
      if (typeof sub !== "string") throw new IdentityError("malformed", "claim `sub` is not a string");
      if (sub === "") throw new IdentityError("missing_claim", "claim `sub` is empty");
      if (exp === undefined) throw new IdentityError("missing_claim", "token has no `exp` claim");
      if (maxLifetimeSeconds !== undefined && iat !== undefined) {
        if (exp - iat > maxLifetimeSeconds) {
          throw new IdentityError(
            "lifetime_exceeded",
            `token lifetime of ${exp - iat}s exceeds the ${maxLifetimeSeconds}s allowed by issuer ${q(name)}`,
          );
        }
        if (iat > currentDate.getTime() / 1000 + clockTolerance) {
          throw new IdentityError("not_yet_valid", `token is issued in the future, at ${time(iat)}`);
        }
      }

      return {
        subject: sub,
        issuer: name,
        issuerUrl: issuer,
        groups: groupsOf(trusted, verified),
        claims: verified,
        expiresAt: new Date(exp * 1000),
      };
    },
  };
}

function trustIssuers(list: readonly IssuerOptions[], rules: readonly GroupRule[]): Map<string, TrustedIssuer> {
  const byUrl = new Map<string, TrustedIssuer>();
  const names = new Set<string>();
  for (const options of list) {
    if (names.has(options.name)) throw new Error(`issuer name ${q(options.name)} is configured more than once`);
    if (byUrl.has(options.issuer)) throw new Error(`issuer ${q(options.issuer)} is configured more than once`);
    const { maxLifetimeSeconds } = options;
    if (maxLifetimeSeconds !== undefined && !(Number.isFinite(maxLifetimeSeconds) && maxLifetimeSeconds > 0)) {
      throw new Error(`maxLifetimeSeconds of issuer ${q(options.name)} must be a positive number`);
    }
    names.add(options.name);
    byUrl.set(options.issuer, {
      options,
      keySet: keySetOf(options),
      rules: rules.filter((rule) => rule.issuer === options.name),
      requiredClaims: maxLifetimeSeconds === undefined ? ["sub", "exp"] : ["sub", "exp", "iat"],
    });
  }
  for (const rule of rules) {
    if (!names.has(rule.issuer)) throw new Error(`group rule ${q(rule.group)} names unknown issuer ${q(rule.issuer)}`);
  }
  return byUrl;
}

/** Returns how to get the issuer's key set: from its file (read now), its URL, or OIDC discovery (cached once it succeeds). */
function keySetOf(options: IssuerOptions): () => Promise<KeySet> {
  const { name, jwksFile, jwksUrl } = options;
  if (jwksFile !== undefined && jwksUrl !== undefined) {
    throw new Error(`issuer ${q(name)} sets both jwksFile and jwksUrl`);
  }
  if (jwksFile !== undefined) {
    let local: LocalJWKSet;
    try {
      local = createLocalJWKSet(JSON.parse(readFileSync(jwksFile, "utf8")) as JSONWebKeySet);
    } catch (cause) {
      throw new Error(`cannot load jwks file ${q(jwksFile)} of issuer ${q(name)}: ${reason(cause)}`, { cause });
    }
    const keySet = guarded(local, name, jwksFile);
    return () => Promise.resolve(keySet);
  }
  if (jwksUrl !== undefined) {
    const keySet = guarded(createRemoteJWKSet(parseUrl(jwksUrl, name)), name, jwksUrl);
    return () => Promise.resolve(keySet);
  }
  let pending: Promise<KeySet> | undefined;
  return () => {
    if (!pending) {
      const attempt = discoverJwksUrl(options).then((url) => guarded(createRemoteJWKSet(url), name, url.href));
      attempt.catch(() => {
        if (pending === attempt) pending = undefined;
      });
      pending = attempt;
    }
    return pending;
  };
}

function parseUrl(url: string, name: string): URL {
  try {
    return new URL(url);
  } catch (cause) {
    throw new Error(`jwksUrl ${q(url)} of issuer ${q(name)} is not a url`, { cause });
  }
}

/** Fetches `{issuer}/.well-known/openid-configuration` and returns its `jwks_uri`. */
async function discoverJwksUrl({ name, issuer }: IssuerOptions): Promise<URL> {
  const url = `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
  const fail = (detail: string, cause?: unknown) =>
    new IdentityError("jwks_unavailable", `discovery of issuer ${q(name)} at ${q(url)} failed: ${detail}`, { cause });

  const response = await fetch(url, {
    headers: { accept: "application/json" },
    signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS),
  }).catch((cause: unknown) => {
    throw fail(reason(cause), cause);
  });
  if (response.status !== 200) throw fail(`http status ${response.status}`);
  const document: unknown = await response.json().catch((cause: unknown) => {
    throw fail("response is not json", cause);
  });
  if (!isRecord(document)) throw fail("response is not a json object");
  if (document.issuer !== issuer) throw fail(`document names issuer ${q(document.issuer)}`);
  if (typeof document.jwks_uri !== "string") throw fail("document has no `jwks_uri`");
  try {
    return new URL(document.jwks_uri);
  } catch (cause) {
    throw fail(`jwks_uri ${q(document.jwks_uri)} is not a url`, cause);
  }
}

/** Turns key-set failures other than "no (single) matching key" into `jwks_unavailable`. */
function guarded(keySet: KeySet, name: string, source: string): KeySet {
  return async (header, token) => {
    try {
      return await keySet(header, token);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) throw error;
      throw new IdentityError(
        "jwks_unavailable",
        `cannot load keys of issuer ${q(name)} from ${q(source)}: ${reason(error)}`,
        { cause: error },
      );
    }
  };
}

function decode(token: string): { header: ProtectedHeaderParameters; payload: JWTPayload } {
  if (typeof token !== "string" || token === "") throw new IdentityError("malformed", "token is empty");
  if (token.length > MAX_TOKEN_LENGTH) {
    throw new IdentityError("malformed", `token is longer than ${MAX_TOKEN_LENGTH} bytes`);
  }
  const segments = token.split(".").length;
  if (segments !== 3) {
    throw new IdentityError("malformed", `token must have 3 dot-separated segments, not ${segments}`);
  }
  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(token);
  } catch (cause) {
    throw new IdentityError("malformed", "token header is not a base64url-encoded json object", { cause });
  }
  try {
    return { header, payload: decodeJwt(token) };
  } catch (cause) {
    throw new IdentityError("malformed", "token payload is not a base64url-encoded json object", { cause });
  }
}

/** Maps what `jwtVerify` (or the key set) threw to an {@link IdentityError} saying why. */
function toIdentityError(error: unknown, issuer: IssuerOptions, header: ProtectedHeaderParameters): IdentityError {
  if (error instanceof IdentityError) return error;
  const key = `key ${header.kid === undefined ? "without kid" : q(header.kid)} for ${q(header.alg)}`;
  if (error instanceof errors.JWTExpired) {
    return new IdentityError("expired", `token expired at ${time(error.payload.exp)}`, { cause: error });
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    const { claim, payload } = error;
    if (error.reason === "missing") {
      return new IdentityError("missing_claim", `token has no ${q(claim)} claim`, { cause: error });
    }
    if (claim === "nbf" && error.reason !== "invalid") {
      return new IdentityError("not_yet_valid", `token is not valid before ${time(payload.nbf)}`, { cause: error });
    }
    if (claim === "aud") {
      const audience = Array.isArray(payload.aud)
        ? `audiences ${payload.aud.map(q).join(", ") || "[]"} do not include`
        : `audience ${q(payload.aud)} is not`;
      return new IdentityError("audience_mismatch", `${audience} ${q(issuer.audience)}`, { cause: error });
    }
    if (claim === "iss") {
      return new IdentityError("issuer_unknown", `issuer ${q(payload.iss)} is not ${q(issuer.issuer)}`, { cause: error });
    }
    return new IdentityError("malformed", `claim ${q(claim)} is invalid: ${reason(error)}`, { cause: error });
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return new IdentityError("bad_signature", `signature does not verify with ${key} of issuer ${q(issuer.name)}`, {
      cause: error,
    });
  }
  if (error instanceof errors.JWKSNoMatchingKey) {
    return new IdentityError("unknown_key", `issuer ${q(issuer.name)} has no ${key}`, { cause: error });
  }
  if (error instanceof errors.JWKSMultipleMatchingKeys) {
    return new IdentityError("unknown_key", `issuer ${q(issuer.name)} has more than one ${key}`, { cause: error });
  }
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return new IdentityError("algorithm_not_allowed", `algorithm ${q(header.alg)} is not allowed`, { cause: error });
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) {
    return new IdentityError("malformed", `token is malformed: ${reason(error)}`, { cause: error });
  }
  return new IdentityError(
    "jwks_unavailable",
    `${key} of issuer ${q(issuer.name)} cannot verify tokens: ${reason(error)}`,
    { cause: error },
  );
}

function groupsOf(trusted: TrustedIssuer, payload: JWTPayload): string[] {
  return groupsFromClaims(trusted.options.groupsClaim, trusted.rules, payload);
}

/**
 * The groups claims give: the groups claim's values, and the group of every rule (of this issuer)
 * whose claims all match. Used by verification and by `airlock policy explain` on given claims.
 */
export function groupsFromClaims(groupsClaim: string | undefined, rules: readonly GroupRule[], payload: Readonly<Record<string, unknown>>): string[] {
  const groups = new Set(groupsClaim === undefined ? [] : claimStrings(payload, groupsClaim));
  for (const rule of rules) {
    const matches = Object.entries(rule.claims).every(([claim, accepted]) => {
      const acceptedValues = typeof accepted === "string" ? [accepted] : accepted;
      return claimStrings(payload, claim).some((value) => acceptedValues.includes(value));
    });
    if (matches) groups.add(rule.group);
  }
  return [...groups].sort();
}

/** The string values of a claim: itself if a string, its string elements if an array, else none. */
function claimStrings(payload: Readonly<Record<string, unknown>>, claim: string): string[] {
  const value = Object.hasOwn(payload, claim) ? payload[claim] : undefined;
  if (typeof value === "string") return [value];
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Quotes user input for a message: in backticks, clipped, without control characters. */
function q(value: unknown): string {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  const clipped = text.length > 100 ? `${text.slice(0, 100)}…` : text;
  return `\`${clipped.replace(/[\u0000-\u001f\u007f`]/g, "?")}\``;
}

/** A NumericDate as ISO 8601, or as given if it is not a representable date. */
function time(seconds: unknown): string {
  const date = typeof seconds === "number" ? new Date(seconds * 1000) : new Date(Number.NaN);
  return Number.isNaN(date.getTime()) ? q(seconds) : date.toISOString();
}

/** An error's message as a message fragment: lowercase, no trailing period. */
function reason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.toLowerCase().replace(/\.+$/, "") || "unknown error";
}
