import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { findTokenSource, TokenSourceError, type TokenSourceErrorCode } from "../src/connect/token-source.js";

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

function makeJwt(claims: Record<string, unknown>): string {
  return `${b64url({ alg: "RS256", typ: "JWT" })}.${b64url(claims)}.${Buffer.from("signature-bytes").toString("base64url")}`;
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

async function expectTokenError(
  promiseOrFn: Promise<unknown> | (() => unknown),
  code: TokenSourceErrorCode,
  secrets: readonly string[] = [],
): Promise<TokenSourceError> {
  let caught: unknown;
  try {
    if (typeof promiseOrFn === "function") promiseOrFn();
    else await promiseOrFn;
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(TokenSourceError);
  const error = caught as TokenSourceError;
  expect(error.code).toBe(code);
  expect(error.message).not.toMatch(/\.$/);
  expect(error.message[0]).toBe(error.message[0]?.toLowerCase());
  for (const secret of secrets) {
    expect(error.message).not.toContain(secret);
    expect(String(error.stack)).not.toContain(secret);
  }
  return error;
}

describe("file source", () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "airlock-token-source-"));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads and trims the file, re-reading it on every read", async () => {
    const path = join(dir, "token");
    await writeFile(path, "  first-token\n");
    const source = findTokenSource({ tokenFile: path, env: { AIRLOCK_TOKEN: "env-token" } });
    expect(source.kind).toBe("file");
    expect(source.description).toBe(`--token-file ${path}`);
    expect(await source.read()).toBe("first-token");

    await writeFile(path, "second-token\n");
    expect(await source.read()).toBe("second-token");
  });

  it("fails with token_empty for an empty file", async () => {
    const path = join(dir, "empty");
    await writeFile(path, " \n\t\n");
    const source = findTokenSource({ tokenFile: path, env: {} });
    const error = await expectTokenError(source.read(), "token_empty");
    expect(error.message).toContain(`\`${path}\``);
  });

  it("fails with token_file_unreadable for a missing file", async () => {
    const path = join(dir, "does-not-exist");
    const source = findTokenSource({ tokenFile: path, env: {} });
    const error = await expectTokenError(source.read(), "token_file_unreadable");
    expect(error.message).toContain(`\`${path}\``);
    expect(error.message).toContain("ENOENT");
  });

  it("does not put the token into the token_empty message after the file was emptied", async () => {
    const path = join(dir, "emptied");
    await writeFile(path, "secret-file-token");
    const source = findTokenSource({ tokenFile: path, env: {} });
    expect(await source.read()).toBe("secret-file-token");
    await writeFile(path, "");
    await expectTokenError(source.read(), "token_empty", ["secret-file-token"]);
  });
});

describe("env source", () => {
  it("uses AIRLOCK_TOKEN before CI sources", async () => {
    const source = findTokenSource({
      env: {
        AIRLOCK_TOKEN: " env-token \n",
        ACTIONS_ID_TOKEN_REQUEST_URL: "http://127.0.0.1:1/?x=1",
        ACTIONS_ID_TOKEN_REQUEST_TOKEN: "request-token",
        GITLAB_CI: "true",
        AIRLOCK_ID_TOKEN: makeJwt({}),
      },
    });
    expect(source.kind).toBe("env");
    expect(source.description).toBe("AIRLOCK_TOKEN");
    expect(source.description).not.toContain("env-token");
    expect(await source.read()).toBe("env-token");
  });

  it("ignores an empty AIRLOCK_TOKEN", async () => {
    await expectTokenError(() => findTokenSource({ env: { AIRLOCK_TOKEN: "" } }), "no_token_source");
  });
});

interface RecordedRequest {
  url: string;
  authorization: string | undefined;
  accept: string | undefined;
}

describe("github actions source", () => {
  const requestToken = "gh-request-token-s3cr3t";
  let server: Server;
  let baseUrl: string;
  let requests: RecordedRequest[] = [];
  let respond: (req: IncomingMessage, res: ServerResponse) => void = () => {};

  beforeAll(async () => {
    server = createServer((req, res) => {
      requests.push({ url: req.url ?? "", authorization: req.headers.authorization, accept: req.headers.accept });
      if (req.headers.authorization !== `bearer ${requestToken}`) {
        res.writeHead(401, { "content-type": "application/json" }).end('{"message":"bad request token"}');
        return;
      }
      respond(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    baseUrl = `http://127.0.0.1:${port}`;
  });

  afterEach(() => {
    requests = [];
    respond = () => {};
    vi.useRealTimers();
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  });

  /** Replies with a fresh token for the requested audience, counting the calls. */
  function issueTokens(lifetimeSeconds: number): string[] {
    const issued: string[] = [];
    respond = (req, res) => {
      const audience = new URL(req.url ?? "/", baseUrl).searchParams.get("audience");
      if (audience === null) {
        res.writeHead(400).end();
        return;
      }
      const token = makeJwt({ aud: audience, n: issued.length, exp: nowSeconds() + lifetimeSeconds });
      issued.push(token);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ count: 1, value: token }));
    };
    return issued;
  }

  function githubEnv(url: string): Record<string, string> {
    return { ACTIONS_ID_TOKEN_REQUEST_URL: url, ACTIONS_ID_TOKEN_REQUEST_TOKEN: requestToken, GITLAB_CI: "true" };
  }

  it("requests a token with the request token and audience", async () => {
    const issued = issueTokens(3600);
    const source = findTokenSource({ env: githubEnv(`${baseUrl}/token?api-version=2.0`), audience: "https://gw.example/a b" });
    expect(source.kind).toBe("github-actions");
    expect(source.description).toBe("GitHub Actions OIDC");

    const token = await source.read();
    expect(token).toBe(issued[0]);
    expect(requests).toHaveLength(1);
    expect(requests[0]?.authorization).toBe(`bearer ${requestToken}`);
    expect(requests[0]?.accept).toBe("application/json");
    expect(requests[0]?.url).toBe(`/token?api-version=2.0&audience=${encodeURIComponent("https://gw.example/a b")}`);
    const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as { aud: string };
    expect(claims.aud).toBe("https://gw.example/a b");
  });

  it("defaults the audience to airlock and adds `?` when the url has no query", async () => {
    issueTokens(3600);
    const source = findTokenSource({ env: githubEnv(`${baseUrl}/token`) });
    await source.read();
    expect(requests[0]?.url).toBe("/token?audience=airlock");
  });

  it("uses the injected fetch", async () => {
    const token = makeJwt({ exp: nowSeconds() + 3600 });
    const fakeFetch = vi.fn<typeof fetch>(async () => Response.json({ value: token }));
    const source = findTokenSource({ env: githubEnv("https://gh.invalid/t?a=1"), fetch: fakeFetch });
    expect(await source.read()).toBe(token);
    expect(fakeFetch).toHaveBeenCalledOnce();
    expect(fakeFetch.mock.calls[0]?.[0]).toBe("https://gh.invalid/t?a=1&audience=airlock");
  });

  it("caches the token until 60 s before exp", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const start = new Date("2030-01-01T00:00:00Z");
    vi.setSystemTime(start);
    const issued = issueTokens(120);
    const source = findTokenSource({ env: githubEnv(`${baseUrl}/token?api-version=2.0`) });

    const first = await source.read();
    expect(await source.read()).toBe(first);
    vi.setSystemTime(start.getTime() + 59_000);
    expect(await source.read()).toBe(first);
    expect(requests).toHaveLength(1);

    vi.setSystemTime(start.getTime() + 60_000);
    const second = await source.read();
    expect(second).not.toBe(first);
    expect(second).toBe(issued[1]);
    expect(requests).toHaveLength(2);
    expect(await source.read()).toBe(second);
    expect(requests).toHaveLength(2);
  });

  it("fetches anew when the token is already within 60 s of exp", async () => {
    issueTokens(30);
    const source = findTokenSource({ env: githubEnv(`${baseUrl}/token?api-version=2.0`) });
    const first = await source.read();
    const second = await source.read();
    expect(second).not.toBe(first);
    expect(requests).toHaveLength(2);
  });

  it("shares one request between concurrent reads", async () => {
    issueTokens(3600);
    const source = findTokenSource({ env: githubEnv(`${baseUrl}/token?api-version=2.0`) });
    const [a, b] = await Promise.all([source.read(), source.read()]);
    expect(a).toBe(b);
    expect(requests).toHaveLength(1);
  });

  it("fails with github_request_failed and the status code on http 500", async () => {
    const leaked = makeJwt({ exp: nowSeconds() + 3600 });
    respond = (_req, res) => {
      res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ value: leaked, requestToken }));
    };
    const source = findTokenSource({ env: githubEnv(`${baseUrl}/token?api-version=2.0`) });
    const error = await expectTokenError(source.read(), "github_request_failed", [requestToken, leaked]);
    expect(error.message).toContain("500");
  });

  it("fails with github_request_failed on a wrong request token without leaking it", async () => {
    const source = findTokenSource({
      env: { ACTIONS_ID_TOKEN_REQUEST_URL: `${baseUrl}/token?x=1`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: "wrong-request-token" },
    });
    const error = await expectTokenError(source.read(), "github_request_failed", ["wrong-request-token", requestToken]);
    expect(error.message).toContain("401");
  });

  it("fails with github_request_failed on a response without value", async () => {
    respond = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" }).end(`{"nope": "${requestToken}"}`);
    };
    const source = findTokenSource({ env: githubEnv(`${baseUrl}/token?api-version=2.0`) });
    await expectTokenError(source.read(), "github_request_failed", [requestToken]);
  });

  it("fails with github_request_failed when the server is unreachable", async () => {
    const unused = createServer();
    await new Promise<void>((resolve) => unused.listen(0, "127.0.0.1", resolve));
    const { port } = unused.address() as AddressInfo;
    await new Promise<void>((resolve) => unused.close(() => resolve()));
    const source = findTokenSource({ env: githubEnv(`http://127.0.0.1:${port}/token?x=1`) });
    await expectTokenError(source.read(), "github_request_failed", [requestToken]);
  });
});

describe("gitlab ci source", () => {
  it("uses AIRLOCK_ID_TOKEN first", async () => {
    const token = makeJwt({ aud: "airlock" });
    const env: Record<string, string | undefined> = {
      GITLAB_CI: "true",
      AAA_ID_TOKEN: makeJwt({ aud: "other" }),
      AIRLOCK_ID_TOKEN: `${token}\n`,
    };
    const source = findTokenSource({ env });
    expect(source.kind).toBe("gitlab-ci");
    expect(source.description).toBe("GitLab CI id_token AIRLOCK_ID_TOKEN");
    expect(source.description).not.toContain(token);
    expect(await source.read()).toBe(token);

    env["AIRLOCK_ID_TOKEN"] = "";
    await expectTokenError(source.read(), "token_empty", [token]);
  });

  it("falls back to another *_ID_TOKEN variable that looks like a jwt", async () => {
    const token = makeJwt({ aud: "airlock" });
    const source = findTokenSource({
      env: { GITLAB_CI: "true", SOME_ID_TOKEN: "not-a-jwt", GATEWAY_ID_TOKEN: token, CI_JOB_TOKEN: "job-token" },
    });
    expect(source.kind).toBe("gitlab-ci");
    expect(source.description).toBe("GitLab CI id_token GATEWAY_ID_TOKEN");
    expect(await source.read()).toBe(token);
  });

  it("fails with gitlab_token_missing when the job has no id token", async () => {
    const error = await expectTokenError(
      () =>
        findTokenSource({
          env: { GITLAB_CI: "true", CI_JOB_TOKEN: "glcbt-job-secret", OTHER_ID_TOKEN: "plain-secret-value" },
        }),
      "gitlab_token_missing",
      ["glcbt-job-secret", "plain-secret-value"],
    );
    expect(error.message).toContain("id_tokens: { AIRLOCK_ID_TOKEN: { aud: airlock } }");
  });

  it("is not used unless GITLAB_CI is true", async () => {
    await expectTokenError(
      () => findTokenSource({ env: { GITLAB_CI: "false", AIRLOCK_ID_TOKEN: makeJwt({}) } }),
      "no_token_source",
    );
  });
});

describe("no token source", () => {
  it("fails with no_token_source listing what was tried", async () => {
    const error = await expectTokenError(
      () =>
        findTokenSource({
          env: { ACTIONS_ID_TOKEN_REQUEST_TOKEN: "lonely-request-token", HOME: "/home/ci" },
        }),
      "no_token_source",
      ["lonely-request-token"],
    );
    expect(error.message).toContain("--token-file");
    expect(error.message).toContain("AIRLOCK_TOKEN");
    expect(error.message).toContain("ACTIONS_ID_TOKEN_REQUEST_URL");
    expect(error.message).toContain("GITLAB_CI");
  });

  it("hints at the id-token permission inside github actions", async () => {
    const error = await expectTokenError(
      () => findTokenSource({ env: { GITHUB_ACTIONS: "true" } }),
      "no_token_source",
    );
    expect(error.message).toContain("permissions: id-token: write");
  });
});
