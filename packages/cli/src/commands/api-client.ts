import { readFileSync } from "node:fs";
import { UsageError } from "./command.js";

/** Where the gateway's HTTP API is, and the credential to send. */
export interface ApiTarget {
  readonly url: string;
  readonly credential: string;
}

/** The reviewer key: --key-file, or AIRLOCK_REVIEWER_KEY. */
export function reviewerKey(keyFile: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  if (keyFile !== undefined) {
    const key = readFileSync(keyFile, "utf8").trim();
    if (key === "") throw new UsageError(`--key-file \`${keyFile}\` is empty`);
    return key;
  }
  const key = env.AIRLOCK_REVIEWER_KEY;
  if (key === undefined || key === "") throw new UsageError("a reviewer key is needed: --key-file FILE or AIRLOCK_REVIEWER_KEY");
  return key;
}

/** The API base URL: --api, or AIRLOCK_API. */
export function apiUrl(api: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  const url = api ?? env.AIRLOCK_API;
  if (url === undefined || url === "") throw new UsageError("--api URL is required (or AIRLOCK_API), e.g. --api http://127.0.0.1:8080");
  return url.replace(/\/+$/, "");
}

/** The API answered with an error; its message is the server's. */
export class ApiError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls the API and returns its JSON body; an error status becomes an ApiError with the server's message. */
export async function callApi(target: ApiTarget, method: "GET" | "POST", path: string, body?: unknown): Promise<Record<string, unknown>> {
  let response: Response;
  try {
    response = await fetch(`${target.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${target.credential}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    throw new ApiError(0, "unreachable", `cannot reach ${target.url}: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}`);
  }
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // fall through to the status check with an empty body
  }
  if (!response.ok) {
    const error = (json.error ?? {}) as { code?: string; message?: string };
    throw new ApiError(response.status, error.code ?? "http_error", error.message ?? `HTTP ${response.status}`);
  }
  return json;
}

/** GETs a text endpoint (a recording); an error status becomes an ApiError with the server's message. */
export async function callApiText(target: ApiTarget, path: string): Promise<string> {
  let response: Response;
  try {
    response = await fetch(`${target.url}${path}`, {
      headers: { authorization: `Bearer ${target.credential}` },
      signal: AbortSignal.timeout(120_000),
    });
  } catch (error) {
    throw new ApiError(0, "unreachable", `cannot reach ${target.url}: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}`);
  }
  const text = await response.text();
  if (!response.ok) {
    let error: { code?: string; message?: string } = {};
    try {
      error = ((JSON.parse(text) as Record<string, unknown>).error ?? {}) as typeof error;
    } catch {
      // not a JSON error body: the status says it
    }
    throw new ApiError(response.status, error.code ?? "http_error", error.message ?? `HTTP ${response.status}`);
  }
  return text;
}
