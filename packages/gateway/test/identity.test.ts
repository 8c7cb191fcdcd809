import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  IdentityError,
  MAX_TOKEN_LENGTH,
  createIdentityVerifier,
  type IdentityErrorCode,
  type IdentityVerifier,
  type IssuerOptions,
} from "../src/identity/index.js";
import { base64url, mintHs256, mintUnsigned, startOidcIssuer, type OidcIssuer } from "./support/oidc-issuer.js";

const now = () => Math.floor(Date.now() / 1000);

/** Asserts the token is refused with `code` and a well-formed message that does not leak the token. */
async function refused(verifier: IdentityVerifier, token: string, code: IdentityErrorCode): Promise<IdentityError> {
  const error: unknown = await verifier.verify(token).then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(IdentityError);
  const { message } = error as IdentityError;
  expect({ code: (error as IdentityError).code, message }).toEqual({ code, message: expect.any(String) });
  if (token.length >= 8) expect(message).not.toContain(token);
  const signature = token.split(".")[2];
  if (signature !== undefined && signature.length > 8) expect(message).not.toContain(signature);
  const outsideBackticks = message.replace(/`[^`]*`|\d{4}-\d\d-\d\dT[\d:.]+Z/g, "");
  expect(outsideBackticks).toBe(outsideBackticks.toLowerCase());
  expect(message).not.toMatch(/\.$/);
  return error as IdentityError;
}

/** Replaces the payload of a signed token, keeping its header and signature. */
function tamper(token: string, change: (payload: Record<string, unknown>) => void): string {
  const [header, payload, signature] = token.split(".") as [string, string, string];
  const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
  change(claims);
  return `${header}.${base64url(claims)}.${signature}`;
}

let github: OidcIssuer;
let gitlab: OidcIssuer;
let dir: string;
let jwksFile: string;
const transient: OidcIssuer[] = [];

beforeAll(async () => {
  github = await startOidcIssuer();
  gitlab = await startOidcIssuer({ alg: "ES256" });
  dir = await mkdtemp(join(tmpdir(), "airlock-identity-"));
  jwksFile = join(dir, "jwks.json");
  await github.writeJwksFile(jwksFile);
});

afterEach(async () => {
  await Promise.all(transient.splice(0).map((issuer) => issuer.close()));
});

afterAll(async () => {
  await Promise.all([github.close(), gitlab.close(), rm(dir, { recursive: true, force: true })]);
});

function fileIssuer(overrides: Partial<IssuerOptions> = {}): IssuerOptions {
  return { name: "ci", issuer: github.url, audience: "airlock", jwksFile, ...overrides };
}

async function freshIssuer(): Promise<OidcIssuer> {
  const issuer = await startOidcIssuer();
  transient.push(issuer);
  return issuer;
}

describe("valid tokens", () => {
  it("verifies a token against a jwks file", async () => {
    const verifier = createIdentityVerifier({ issuers: [fileIssuer()] });
    const iat = now();
    const token = await github.mint({ repository: "acme/api" }, { issuedAt: iat, expiresIn: 600 });

    const identity = await verifier.verify(token);

    expect(identity).toEqual({
      subject: "repo:acme/api:ref:refs/heads/main",
      issuer: "ci",
      issuerUrl: github.url,
      groups: [],
      claims: {
        iss: github.url,
        sub: "repo:acme/api:ref:refs/heads/main",
        aud: "airlock",
        iat,
        exp: iat + 600,
        repository: "acme/api",
      },
      expiresAt: new Date((iat + 600) * 1000),
    });
  });

  it("verifies an ES256 token against a jwks url", async () => {
    const verifier = createIdentityVerifier({
      issuers: [{ name: "gitlab", issuer: gitlab.url, audience: "airlock", jwksUrl: gitlab.jwksUrl }],
    });
    const identity = await verifier.verify(await gitlab.mint({}, { subject: "project_path:acme/db:ref_type:branch:ref:main" }));
    expect(identity.subject).toBe("project_path:acme/db:ref_type:branch:ref:main");
    expect(identity.issuer).toBe("gitlab");
  });

  it("finds the jwks by oidc discovery, once", async () => {
    const issuer = await freshIssuer();
    const verifier = createIdentityVerifier({ issuers: [{ name: "ci", issuer: issuer.url, audience: "airlock" }] });

    await verifier.verify(await issuer.mint());
    const identity = await verifier.verify(await issuer.mint({}, { subject: "repo:acme/web:ref:refs/heads/main" }));

    expect(identity.subject).toBe("repo:acme/web:ref:refs/heads/main");
    expect(issuer.requests).toEqual(["/.well-known/openid-configuration", "/jwks"]);
  });

  it("uses the injected clock with the clock tolerance", async () => {
    const token = await github.mint({}, { issuedAt: 1_800_000_000, expiresIn: 300 });
    const at = (seconds: number) => () => new Date(seconds * 1000);

    const lenient = createIdentityVerifier({ issuers: [fileIssuer()], now: at(1_800_000_300 + 29) });
    await expect(lenient.verify(token)).resolves.toMatchObject({ issuer: "ci" });

    const late = createIdentityVerifier({ issuers: [fileIssuer()], now: at(1_800_000_300 + 31) });
    const error = await refused(late, token, "expired");
    expect(error.message).toBe(`token expired at ${new Date(1_800_000_300_000).toISOString()}`);

    const strict = createIdentityVerifier({ issuers: [fileIssuer()], now: at(1_800_000_301), clockToleranceSeconds: 0 });
    await refused(strict, token, "expired");
  });
});

describe("groups", () => {
  const verifier = () =>
    createIdentityVerifier({
      issuers: [
        fileIssuer({ groupsClaim: "groups" }),
        { name: "gitlab", issuer: gitlab.url, audience: "airlock", jwksUrl: gitlab.jwksUrl },
      ],
      groupRules: [
        { group: "deployers", issuer: "ci", claims: { repository: "acme/api", ref: ["refs/heads/main", "refs/tags/v1"] } },
        { group: "readers", issuer: "ci", claims: { repository_owner: "acme" } },
        { group: "db-admins", issuer: "gitlab", claims: { project_path: "acme/db", ref_protected: "true" } },
        { group: "gitlab-only", issuer: "gitlab", claims: {} },
      ],
    });

  it("takes groups from the groups claim, ignoring non-strings", async () => {
    const fromArray = await verifier().verify(await github.mint({ groups: ["ops", 7, "dev", null, "ops"] }));
    expect(fromArray.groups).toEqual(["dev", "ops"]);
    const fromString = await verifier().verify(await github.mint({ groups: "ops" }));
    expect(fromString.groups).toEqual(["ops"]);
  });

  it("grants groups by github-style rules on repository and ref", async () => {
    const main = await github.mint({ repository: "acme/api", repository_owner: "acme", ref: "refs/heads/main", groups: ["readers"] });
    expect((await verifier().verify(main)).groups).toEqual(["deployers", "readers"]);

    const tag = await github.mint({ repository: "acme/api", ref: "refs/tags/v1" });
    expect((await verifier().verify(tag)).groups).toEqual(["deployers"]);

    const branch = await github.mint({ repository: "acme/api", repository_owner: "acme", ref: "refs/heads/feature" });
    expect((await verifier().verify(branch)).groups).toEqual(["readers"]);

    const fork = await github.mint({ repository: "evil/api", ref: "refs/heads/main" });
    expect((await verifier().verify(fork)).groups).toEqual([]);
  });

  it("matches an array-valued token claim that contains the value", async () => {
    const token = await github.mint({ repository: ["acme/web", "acme/api"], ref: "refs/heads/main" });
    expect((await verifier().verify(token)).groups).toEqual(["deployers"]);
  });

  it("grants groups by gitlab-style rules on project_path and ref_protected", async () => {
    const protectedRef = await gitlab.mint({ project_path: "acme/db", ref_protected: "true" });
    expect((await verifier().verify(protectedRef)).groups).toEqual(["db-admins", "gitlab-only"]);

    const unprotected = await gitlab.mint({ project_path: "acme/db", ref_protected: "false" });
    expect((await verifier().verify(unprotected)).groups).toEqual(["gitlab-only"]);

    const booleanClaim = await gitlab.mint({ project_path: "acme/db", ref_protected: true });
    expect((await verifier().verify(booleanClaim)).groups).toEqual(["gitlab-only"]);
  });

  it("applies rules only to their own issuer", async () => {
    const token = await gitlab.mint({ repository: "acme/api", ref: "refs/heads/main", repository_owner: "acme" });
    expect((await verifier().verify(token)).groups).toEqual(["gitlab-only"]);
  });
});

describe("attacks", () => {
  const verifier = () => createIdentityVerifier({ issuers: [fileIssuer()] });

  it("refuses a token whose payload was tampered with", async () => {
    const token = tamper(await github.mint(), (claims) => {
      claims.sub = "repo:acme/api:ref:refs/heads/prod";
    });
    const error = await refused(verifier(), token, "bad_signature");
    expect(error.message).toBe(`signature does not verify with key \`${github.kid}\` for \`RS256\` of issuer \`ci\``);
  });

  it("refuses a token signed by a foreign key under the issuer's kid", async () => {
    await refused(verifier(), await github.mintForeign(), "bad_signature");
    const es = createIdentityVerifier({
      issuers: [{ name: "gitlab", issuer: gitlab.url, audience: "airlock", jwksUrl: gitlab.jwksUrl }],
    });
    await refused(es, await gitlab.mintForeign(), "bad_signature");
  });

  it("refuses alg none before any key lookup", async () => {
    const issuer = await freshIssuer();
    const discovering = createIdentityVerifier({ issuers: [{ name: "ci", issuer: issuer.url, audience: "airlock" }] });
    for (const alg of ["none", "None", "NONE"]) {
      const token = mintUnsigned({}, { issuer: issuer.url, alg, kid: issuer.kid });
      const error = await refused(discovering, token, "algorithm_not_allowed");
      expect(error.message).toBe(`algorithm \`${alg}\` is not allowed`);
      await refused(discovering, `${token}${(await issuer.mint()).split(".")[2]}`, "algorithm_not_allowed");
    }
    expect(issuer.requests).toEqual([]);
  });

  it("refuses HS256 signed with the issuer's public key (key confusion) or a plain secret", async () => {
    const issuer = await freshIssuer();
    const discovering = createIdentityVerifier({ issuers: [{ name: "ci", issuer: issuer.url, audience: "airlock" }] });
    const secrets = [issuer.publicKeyPem, JSON.stringify(issuer.jwks.keys[0]), "correct horse battery staple"];
    for (const secret of secrets) {
      const token = await mintHs256(secret, {}, { issuer: issuer.url, kid: issuer.kid });
      const error = await refused(discovering, token, "algorithm_not_allowed");
      expect(error.message).toBe("algorithm `HS256` is not allowed");
      await refused(verifier(), await mintHs256(secret, {}, { issuer: github.url, kid: github.kid }), "algorithm_not_allowed");
    }
    expect(issuer.requests).toEqual([]);
  });

  it("refuses an expired token", async () => {
    const exp = now() - 3600;
    const error = await refused(verifier(), await github.mint({}, { issuedAt: exp - 300 }), "expired");
    expect(error.message).toBe(`token expired at ${new Date(exp * 1000).toISOString()}`);
  });

  it("refuses a token that is not yet valid", async () => {
    const nbf = now() + 3600;
    const error = await refused(verifier(), await github.mint({}, { notBefore: nbf, expiresIn: 7200 }), "not_yet_valid");
    expect(error.message).toBe(`token is not valid before ${new Date(nbf * 1000).toISOString()}`);
  });

  it("refuses an untrusted issuer", async () => {
    const error = await refused(verifier(), await github.mint({}, { issuer: "https://evil.example" }), "issuer_unknown");
    expect(error.message).toBe("issuer `https://evil.example` is not trusted");
  });

  it("refuses a wrong audience", async () => {
    const error = await refused(verifier(), await github.mint({}, { audience: "postgres" }), "audience_mismatch");
    expect(error.message).toBe("audience `postgres` is not `airlock`");
    const list = await refused(verifier(), await github.mint({ aud: ["a", "b"] }), "audience_mismatch");
    expect(list.message).toBe("audiences `a`, `b` do not include `airlock`");
  });

  it("refuses a lifetime over the maximum, and a missing iat when a maximum is set", async () => {
    const capped = createIdentityVerifier({ issuers: [fileIssuer({ maxLifetimeSeconds: 600 })] });
    await expect(capped.verify(await github.mint({}, { expiresIn: 600 }))).resolves.toMatchObject({ issuer: "ci" });

    const error = await refused(capped, await github.mint({}, { expiresIn: 3600 }), "lifetime_exceeded");
    expect(error.message).toBe("token lifetime of 3600s exceeds the 600s allowed by issuer `ci`");

    const noIat = await refused(capped, await github.mint({ iat: undefined }), "missing_claim");
    expect(noIat.message).toBe("token has no `iat` claim");

    const future = await refused(capped, await github.mint({}, { issuedAt: now() + 3600 }), "not_yet_valid");
    expect(future.message).toMatch(/^token is issued in the future, at /);
  });

  it("refuses an unknown kid, from a file and from a url", async () => {
    const token = await github.mint({}, { kid: "rotated-away" });
    const error = await refused(verifier(), token, "unknown_key");
    expect(error.message).toBe("issuer `ci` has no key `rotated-away` for `RS256`");

    const remote = createIdentityVerifier({
      issuers: [{ name: "ci", issuer: github.url, audience: "airlock", jwksUrl: github.jwksUrl }],
    });
    await refused(remote, token, "unknown_key");
  });

  it("refuses malformed tokens", async () => {
    const valid = await github.mint();
    const [header, payload] = valid.split(".") as [string, string, string];
    const cases: Array<[string, string]> = [
      ["", "token is empty"],
      ["garbage", "token must have 3 dot-separated segments, not 1"],
      [`${header}.${payload}`, "token must have 3 dot-separated segments, not 2"],
      ["a.b.c.d.e", "token must have 3 dot-separated segments, not 5"],
      ["!!!.e30.c2ln", "token header is not a base64url-encoded json object"],
      [`${header}.bm90IGpzb24.c2ln`, "token payload is not a base64url-encoded json object"],
      ["x".repeat(MAX_TOKEN_LENGTH + 1), `token is longer than ${MAX_TOKEN_LENGTH} bytes`],
    ];
    for (const [token, message] of cases) {
      expect((await refused(verifier(), token, "malformed")).message).toBe(message);
    }
    const huge = await github.mint({ padding: "p".repeat(MAX_TOKEN_LENGTH) });
    expect((await refused(verifier(), huge, "malformed")).message).toBe(`token is longer than ${MAX_TOKEN_LENGTH} bytes`);
    const noAlg = await refused(verifier(), `${base64url({ typ: "JWT" })}.${payload}.c2ln`, "malformed");
    expect(noAlg.message).toBe("token header has no `alg`");
  });

  it("refuses a token without sub or exp", async () => {
    const noSub = await refused(verifier(), await github.mint({ sub: undefined }), "missing_claim");
    expect(noSub.message).toBe("token has no `sub` claim");
    const noExp = await refused(verifier(), await github.mint({ exp: undefined }), "missing_claim");
    expect(noExp.message).toBe("token has no `exp` claim");
    expect((await refused(verifier(), await github.mint({ sub: "" }), "missing_claim")).message).toBe("claim `sub` is empty");
    expect((await refused(verifier(), await github.mint({ sub: 42 }), "malformed")).message).toBe("claim `sub` is not a string");
  });

  it("refuses with jwks_unavailable while discovery is down, and retries later", async () => {
    const issuer = await freshIssuer();
    const discovering = createIdentityVerifier({ issuers: [{ name: "ci", issuer: issuer.url, audience: "airlock" }] });
    const token = await issuer.mint();

    issuer.available = false;
    const error = await refused(discovering, token, "jwks_unavailable");
    expect(error.message).toBe(
      `discovery of issuer \`ci\` at \`${issuer.url}/.well-known/openid-configuration\` failed: http status 503`,
    );

    issuer.available = true;
    await expect(discovering.verify(token)).resolves.toMatchObject({ issuer: "ci" });
  });

  it("refuses with jwks_unavailable when the issuer is unreachable", async () => {
    const issuer = await startOidcIssuer();
    const token = await issuer.mint();
    await issuer.close();
    const discovering = createIdentityVerifier({ issuers: [{ name: "ci", issuer: issuer.url, audience: "airlock" }] });
    await refused(discovering, token, "jwks_unavailable");
    const byUrl = createIdentityVerifier({
      issuers: [{ name: "ci", issuer: issuer.url, audience: "airlock", jwksUrl: issuer.jwksUrl }],
    });
    const error = await refused(byUrl, token, "jwks_unavailable");
    expect(error.message).toMatch(/^cannot load keys of issuer `ci` from `http:\/\/127\.0\.0\.1:\d+\/jwks`: /);
  });
});

describe("configuration", () => {
  it("rejects invalid options when created", () => {
    expect(() => createIdentityVerifier({ issuers: [fileIssuer(), fileIssuer({ name: "other" })] })).toThrow(
      /is configured more than once/,
    );
    expect(() => createIdentityVerifier({ issuers: [fileIssuer({ jwksUrl: github.jwksUrl })] })).toThrow(
      "issuer `ci` sets both jwksFile and jwksUrl",
    );
    expect(() =>
      createIdentityVerifier({ issuers: [fileIssuer()], groupRules: [{ group: "g", issuer: "nope", claims: {} }] }),
    ).toThrow("group rule `g` names unknown issuer `nope`");
    expect(() => createIdentityVerifier({ issuers: [fileIssuer({ jwksFile: join(dir, "missing.json") })] })).toThrow(
      /cannot load jwks file/,
    );
  });
});
