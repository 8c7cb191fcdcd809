/**
 * Token sources for `airlock connect`.
 *
 * `airlock connect` runs inside a CI job and authenticates to the Airlock
 * gateway with the job's OIDC token (a JWT). This module finds where that
 * token comes from — an explicit file, the `AIRLOCK_TOKEN` variable, the
 * GitHub Actions OIDC endpoint or a GitLab CI `id_tokens:` variable — and
 * returns a {@link TokenSource} whose {@link TokenSource.read} is called for
 * every new tunnel connection, so that short-lived tokens get refreshed.
 *
 * Error messages never contain a token or the GitHub request token.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import { Buffer } from "node:buffer";

/** Options for {@link findTokenSource}. */
export interface TokenSourceOptions {
  /** Path given with `--token-file`; takes precedence over everything else. */
  tokenFile?: string;
  /** The process environment (pass `process.env`); `process.env` is never read directly. */
  env: Readonly<Record<string, string | undefined>>;
  /** Audience to request from GitHub Actions (default `"airlock"`). */
  audience?: string;
  /** `fetch` implementation used for the GitHub Actions request (default `globalThis.fetch`). */
  fetch?: typeof fetch;
}

/** Where the token comes from. */
export type TokenSourceKind = "file" | "env" | "github-actions" | "gitlab-ci";

/** A source of OIDC tokens for the Airlock gateway. */
export interface TokenSource {
  /** Which kind of source this is. */
  readonly kind: TokenSourceKind;
  /**
   * Human-readable description of the source, suitable for logs, e.g.
   * `--token-file ./t`, `AIRLOCK_TOKEN`, `GitHub Actions OIDC` or
   * `GitLab CI id_token AIRLOCK_ID_TOKEN`. Never contains the token.
   */
  readonly description: string;
  /**
   * Returns a current token. Called each time a tunnel connection is opened:
   * files and variables are re-read, GitHub tokens are fetched anew once the
   * cached one is within 60 s of its `exp`.
   *
   * @throws {@link TokenSourceError} when no token can be obtained.
   */
  read(): Promise<string>;
}

/** Machine-readable reason of a {@link TokenSourceError}. */
export type TokenSourceErrorCode =
  | "no_token_source"
  | "token_file_unreadable"
  | "token_empty"
  | "github_request_failed"
  | "gitlab_token_missing";

/** Error thrown by {@link findTokenSource} and {@link TokenSource.read}. */
export class TokenSourceError extends Error {
  /** Machine-readable reason. */
  readonly code: TokenSourceErrorCode;

  /**
   * @param code - machine-readable reason
   * @param message - lowercase message without trailing period; never contains a token
   * @param options - standard error options (`cause`)
   */
  constructor(code: TokenSourceErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TokenSourceError";
    this.code = code;
  }
}

/** Default audience requested from GitHub Actions. */
export const DEFAULT_AUDIENCE = "airlock";

/** Name of the GitLab CI variable looked up first. */
export const GITLAB_ID_TOKEN_VARIABLE = "AIRLOCK_ID_TOKEN";

/** A cached GitHub token is refreshed this long before its `exp`. */
const EXPIRY_MARGIN_MS = 60_000;

/** Timeout of the GitHub Actions OIDC request. */
const GITHUB_REQUEST_TIMEOUT_MS = 30_000;

const JWT_PATTERN = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * Finds the token source to use, in this order:
 *
 * 1. `--token-file` (`options.tokenFile`), re-read on every `read()`;
 * 2. the `AIRLOCK_TOKEN` environment variable;
 * 3. GitHub Actions, when `ACTIONS_ID_TOKEN_REQUEST_URL` and
 *    `ACTIONS_ID_TOKEN_REQUEST_TOKEN` are set (requires
 *    `permissions: id-token: write`);
 * 4. GitLab CI, when `GITLAB_CI` is `true`: the `AIRLOCK_ID_TOKEN` variable,
 *    or else any `*_ID_TOKEN` variable whose value looks like a JWT.
 *
 * @throws {@link TokenSourceError} `no_token_source` when none applies (the
 *   message lists what was tried), `gitlab_token_missing` when running in
 *   GitLab CI without an id token variable.
 */
export function findTokenSource(options: TokenSourceOptions): TokenSource {
  const { env } = options;

  if (options.tokenFile !== undefined) {
    return fileSource(options.tokenFile);
  }

  if (isSet(env["AIRLOCK_TOKEN"])) {
    return envSource(env, "AIRLOCK_TOKEN");
  }

  const requestUrl = env["ACTIONS_ID_TOKEN_REQUEST_URL"];
  const requestToken = env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"];
  if (isSet(requestUrl) && isSet(requestToken)) {
    return githubSource(requestUrl, requestToken, options.audience ?? DEFAULT_AUDIENCE, options.fetch);
  }

  if (env["GITLAB_CI"] === "true") {
    const variable = findGitlabVariable(env);
    if (variable === undefined) {
      const audience = options.audience ?? DEFAULT_AUDIENCE;
      throw new TokenSourceError(
        "gitlab_token_missing",
        `gitlab ci job has no id token: add \`id_tokens: { ${GITLAB_ID_TOKEN_VARIABLE}: { aud: ${audience} } }\` to the job` +
          ", or pass `--token-file` or set `AIRLOCK_TOKEN`",
      );
    }
    return {
      ...envSource(env, variable),
      kind: "gitlab-ci",
      description: `GitLab CI id_token ${variable}`,
    };
  }

  const tried = [
    "`--token-file` (not given)",
    "`AIRLOCK_TOKEN` (not set)",
    env["GITHUB_ACTIONS"] === "true"
      ? "github actions oidc (`ACTIONS_ID_TOKEN_REQUEST_URL`/`ACTIONS_ID_TOKEN_REQUEST_TOKEN` not set: add `permissions: id-token: write` to the job)"
      : "github actions oidc (`ACTIONS_ID_TOKEN_REQUEST_URL`/`ACTIONS_ID_TOKEN_REQUEST_TOKEN` not set)",
    "gitlab ci (`GITLAB_CI` is not `true`)",
  ];
  throw new TokenSourceError("no_token_source", `no token source found: tried ${tried.join(", ")}`);
}

function isSet(value: string | undefined): value is string {
  return value !== undefined && value !== "";
}

function nonEmpty(token: string, where: string): string {
  const trimmed = token.trim();
  if (trimmed === "") {
    throw new TokenSourceError("token_empty", `token from ${where} is empty`);
  }
  return trimmed;
}

function fileSource(path: string): TokenSource {
  return {
    kind: "file",
    description: `--token-file ${path}`,
    async read() {
      let contents: string;
      try {
        contents = await readFile(path, "utf8");
      } catch (error) {
        const reason =
          typeof (error as NodeJS.ErrnoException | undefined)?.code === "string"
            ? (error as NodeJS.ErrnoException).code
            : "read error";
        throw new TokenSourceError("token_file_unreadable", `cannot read token file \`${path}\`: ${reason}`, {
          cause: error,
        });
      }
      return nonEmpty(contents, `token file \`${path}\``);
    },
  };
}

function envSource(env: Readonly<Record<string, string | undefined>>, name: string): TokenSource {
  return {
    kind: "env",
    description: name,
    async read() {
      return nonEmpty(env[name] ?? "", `\`${name}\``);
    },
  };
}

function findGitlabVariable(env: Readonly<Record<string, string | undefined>>): string | undefined {
  if (isSet(env[GITLAB_ID_TOKEN_VARIABLE]?.trim())) {
    return GITLAB_ID_TOKEN_VARIABLE;
  }
  return Object.keys(env)
    .filter((name) => name.endsWith("_ID_TOKEN") && looksLikeJwt(env[name]))
    .sort()[0];
}

function looksLikeJwt(value: string | undefined): boolean {
  return value !== undefined && JWT_PATTERN.test(value.trim());
}

/** Returns the `exp` claim of a JWT in milliseconds, or `undefined` if it cannot be decoded. */
function jwtExpiryMs(token: string): number | undefined {
  const payload = token.split(".")[1];
  if (payload === undefined) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    if (typeof claims === "object" && claims !== null && "exp" in claims) {
      const exp = (claims as { exp: unknown }).exp;
      if (typeof exp === "number" && Number.isFinite(exp)) return exp * 1000;
    }
  } catch {
    // not a decodable JWT: treat as having no expiry information
  }
  return undefined;
}

function githubSource(
  requestUrl: string,
  requestToken: string,
  audience: string,
  fetchImpl: typeof fetch | undefined,
): TokenSource {
  const separator = !requestUrl.includes("?") ? "?" : /[?&]$/.test(requestUrl) ? "" : "&";
  const url = `${requestUrl}${separator}audience=${encodeURIComponent(audience)}`;

  let cached: { token: string; refreshAt: number } | undefined;
  let inFlight: Promise<string> | undefined;

  async function request(): Promise<string> {
    const doFetch = fetchImpl ?? globalThis.fetch;
    let response: Response;
    try {
      response = await doFetch(url, {
        method: "GET",
        headers: { Authorization: `bearer ${requestToken}`, Accept: "application/json" },
        signal: AbortSignal.timeout(GITHUB_REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      throw new TokenSourceError(
        "github_request_failed",
        `github actions oidc token request failed: ${describeFetchError(error)}`,
        { cause: error },
      );
    }
    if (!response.ok) {
      // Drain the body so the connection can be reused; its contents are not reported.
      await response.body?.cancel().catch(() => {});
      throw new TokenSourceError(
        "github_request_failed",
        `github actions oidc token request failed with status \`${response.status}\``,
      );
    }
    let body: unknown;
    try {
      body = await response.json();
    } catch {
      throw new TokenSourceError(
        "github_request_failed",
        `github actions oidc token response (status \`${response.status}\`) is not valid json`,
      );
    }
    const value =
      typeof body === "object" && body !== null && "value" in body ? (body as { value: unknown }).value : undefined;
    if (typeof value !== "string" || value.trim() === "") {
      throw new TokenSourceError(
        "github_request_failed",
        `github actions oidc token response (status \`${response.status}\`) has no \`value\``,
      );
    }
    const token = value.trim();
    const expiry = jwtExpiryMs(token);
    cached = expiry === undefined ? undefined : { token, refreshAt: expiry - EXPIRY_MARGIN_MS };
    return token;
  }

  return {
    kind: "github-actions",
    description: "GitHub Actions OIDC",
    read() {
      if (cached !== undefined && Date.now() < cached.refreshAt) {
        return Promise.resolve(cached.token);
      }
      // Concurrent connections share one request.
      inFlight ??= request().finally(() => {
        inFlight = undefined;
      });
      return inFlight;
    },
  };
}

function describeFetchError(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === "TimeoutError") return `timed out after ${GITHUB_REQUEST_TIMEOUT_MS / 1000} s`;
    // undici reports "fetch failed" with the interesting part in `cause`
    const cause = error.cause;
    const code =
      typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
        ? cause.code
        : undefined;
    const message = error.message.toLowerCase().replace(/\.+$/, "");
    return code === undefined ? message : `${message} (\`${code}\`)`;
  }
  return "unknown error";
}
