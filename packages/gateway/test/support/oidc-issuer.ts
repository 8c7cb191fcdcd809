/**
 * A real local OIDC issuer for tests: a generated key pair, a discovery document and a JWKS served
 * over HTTP on 127.0.0.1, and helpers to mint honest and forged tokens.
 */
import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JSONWebKeySet } from "jose";

/** Algorithms the fixture can generate keys for. */
export type IssuerAlgorithm = "RS256" | "ES256";

/** Options of a minted token. */
export interface MintOptions {
  /** Seconds from `iat` to `exp`; default 300. */
  expiresIn?: number;
  /** `iat`, unix seconds; default now. */
  issuedAt?: number;
  /** `nbf`, unix seconds; absent by default. */
  notBefore?: number;
  /** `aud`; default `airlock`. */
  audience?: string;
  /** `iss`; default the issuer's URL. */
  issuer?: string;
  /** `sub`; default `repo:acme/api:ref:refs/heads/main`. */
  subject?: string;
  /** Header `kid`; default the issuer's kid. */
  kid?: string;
  /** Header `alg`; default the issuer's algorithm (must suit the signing key). */
  alg?: string;
}

/** A running local OIDC issuer. */
export interface OidcIssuer {
  /** The issuer URL (`iss`), `http://127.0.0.1:PORT`. */
  url: string;
  /** URL of the served JWKS. */
  jwksUrl: string;
  /** The public JWKS served at `/jwks`. */
  jwks: JSONWebKeySet;
  /** The kid of the signing key. */
  kid: string;
  /** The algorithm of the signing key. */
  alg: IssuerAlgorithm;
  /** The public key as SPKI PEM, for key confusion attacks. */
  publicKeyPem: string;
  /** Paths requested so far, in order. */
  requests: string[];
  /** While false, every request answers 503. */
  available: boolean;
  /** Writes the public JWKS to a file. */
  writeJwksFile(path: string): Promise<void>;
  /** Mints a token signed with the issuer's key. Claims override the defaults; an `undefined` claim is left out. */
  mint(claims?: Record<string, unknown>, options?: MintOptions): Promise<string>;
  /** Mints a token signed with a freshly generated foreign key of the same algorithm, under the issuer's kid. */
  mintForeign(claims?: Record<string, unknown>, options?: MintOptions): Promise<string>;
  /** Stops the HTTP server. */
  close(): Promise<void>;
}

/** Starts a local OIDC issuer on 127.0.0.1 with a random port. */
export async function startOidcIssuer(options: { alg?: IssuerAlgorithm } = {}): Promise<OidcIssuer> {
  const alg = options.alg ?? "RS256";
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const kid = randomUUID();
  const jwks: JSONWebKeySet = { keys: [{ ...(await exportJWK(publicKey)), kid, alg, use: "sig" }] };

  const server = createServer((request, response) => {
    const path = request.url ?? "/";
    issuer.requests.push(path);
    if (!issuer.available) return send(response, 503, { error: "unavailable" });
    if (path === "/.well-known/openid-configuration") {
      return send(response, 200, { issuer: issuer.url, jwks_uri: issuer.jwksUrl, id_token_signing_alg_values_supported: [alg] });
    }
    if (path === "/jwks") return send(response, 200, jwks);
    return send(response, 404, { error: "not found" });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const issuer: OidcIssuer = {
    url,
    jwksUrl: `${url}/jwks`,
    jwks,
    kid,
    alg,
    publicKeyPem: await exportSPKI(publicKey),
    requests: [],
    available: true,
    writeJwksFile: (path) => writeFile(path, JSON.stringify(jwks)),
    mint: (claims, mintOptions) => sign(privateKey, claims, { alg, kid, issuer: url, ...mintOptions }),
    async mintForeign(claims, mintOptions) {
      const foreign = await generateKeyPair(alg);
      return sign(foreign.privateKey, claims, { alg, kid, issuer: url, ...mintOptions });
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
  return issuer;
}

/** Mints an HS256 token with the given secret, e.g. the issuer's public key PEM (key confusion attack). */
export async function mintHs256(
  secret: string | Uint8Array,
  claims: Record<string, unknown>,
  options: MintOptions & { issuer: string },
): Promise<string> {
  const key = typeof secret === "string" ? new TextEncoder().encode(secret) : secret;
  return sign(key, claims, { ...options, alg: "HS256" });
}

/** Builds an unsigned `alg: none` token by hand: `header.payload.` with an empty signature. */
export function mintUnsigned(claims: Record<string, unknown>, options: MintOptions & { issuer: string }): string {
  const header = { alg: options.alg ?? "none", typ: "JWT", ...(options.kid === undefined ? {} : { kid: options.kid }) };
  return `${base64url(header)}.${base64url(payloadOf(claims, options))}.`;
}

/** Encodes a value as base64url JSON, as in a JWT segment. */
export function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

async function sign(
  key: CryptoKey | Uint8Array,
  claims: Record<string, unknown> | undefined,
  options: MintOptions & { issuer: string; alg: string },
): Promise<string> {
  const header = { alg: options.alg, typ: "JWT", ...(options.kid === undefined ? {} : { kid: options.kid }) };
  return new SignJWT(payloadOf(claims, options)).setProtectedHeader(header).sign(key);
}

function payloadOf(claims: Record<string, unknown> | undefined, options: MintOptions & { issuer: string }): Record<string, unknown> {
  const iat = options.issuedAt ?? Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    iss: options.issuer,
    sub: options.subject ?? "repo:acme/api:ref:refs/heads/main",
    aud: options.audience ?? "airlock",
    iat,
    exp: iat + (options.expiresIn ?? 300),
    ...(options.notBefore === undefined ? {} : { nbf: options.notBefore }),
    ...claims,
  };
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
  return payload;
}

function send(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}
