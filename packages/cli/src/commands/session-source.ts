import { createSessionsApi, loadGatewayConfig, openStore, type ApiReply } from "@airlock/gateway";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { apiUrl, callApi, callApiText, reviewerKey } from "./api-client.js";
import { UsageError } from "./command.js";

/** The parseArgs options that choose where sessions are read from. */
export const SOURCE_OPTIONS = {
  api: { type: "string" },
  "key-file": { type: "string" },
  config: { type: "string" },
} as const;

/** Usage lines shared by the commands that read sessions. */
export const SOURCE_USAGE = `Sessions are read from the gateway's HTTP API (--api URL or AIRLOCK_API) with a reviewer key
(--key-file FILE or AIRLOCK_REVIEWER_KEY), or offline from the gateway's own store and recordings
folder (--config gateway.yaml).`;

/** Where sessions are read from: the HTTP API, or the store and recordings of gateway.yaml. */
export interface SessionSource {
  /** GETs a JSON endpoint of the sessions API, e.g. `/api/v1/sessions`. */
  json(path: string, query?: URLSearchParams): Promise<Record<string, unknown>>;
  /** GETs a text endpoint (a recording). */
  text(path: string): Promise<string>;
  close(): Promise<void>;
}

/** Opens the source named by the options: `--config` offline, else `--api` (or AIRLOCK_API). */
export async function openSessionSource(
  options: { api?: string | undefined; "key-file"?: string | undefined; config?: string | undefined },
  env: Readonly<Record<string, string | undefined>>,
): Promise<SessionSource> {
  if (options.config !== undefined) {
    if (options.api !== undefined) throw new UsageError("use --api URL or --config gateway.yaml, not both");
    if (options["key-file"] !== undefined) throw new UsageError("--key-file is for --api: --config reads the gateway's store directly");
    return openOffline(options.config);
  }
  if (options.api === undefined && (env.AIRLOCK_API ?? "") === "") {
    throw new UsageError("--api URL (with a reviewer key) or --config gateway.yaml is required");
  }
  const target = { url: apiUrl(options.api, env), credential: reviewerKey(options["key-file"], env) };
  return {
    json: (path, query) => callApi(target, "GET", withQuery(path, query)),
    text: (path) => callApiText(target, path),
    close: async () => undefined,
  };
}

async function openOffline(file: string): Promise<SessionSource> {
  const config = loadGatewayConfig(file);
  if (config.store.startsWith("sqlite:")) {
    // Opening a store creates it; an empty new file would only hide a wrong --config.
    const path = config.store.slice("sqlite:".length);
    if (!path.endsWith(":memory:") && !existsSync(path)) throw new Error(`no store at \`${path}\`: has a gateway run with \`${file}\`?`);
  }
  const store = await openStore(config.store);
  const api = createSessionsApi({ store, recordingsDir: config.recordings });
  const call = async (path: string, query: URLSearchParams): Promise<ApiReply> => {
    const reply = await api.route("GET", path, query);
    if (reply === undefined) throw new TypeError(`no sessions endpoint \`${path}\``);
    if (reply.status >= 400) {
      const error = (reply as { body?: { error?: { message?: string } } }).body?.error;
      throw new Error(error?.message ?? `the request failed with status ${reply.status}`);
    }
    return reply;
  };
  return {
    async json(path, query) {
      const reply = await call(path, query ?? new URLSearchParams());
      if ("file" in reply) throw new TypeError(`\`${path}\` is not a JSON endpoint`);
      return reply.body as Record<string, unknown>;
    },
    async text(path) {
      const reply = await call(path, new URLSearchParams());
      if (!("file" in reply)) throw new TypeError(`\`${path}\` is not a file endpoint`);
      return readFile(reply.file, "utf8");
    },
    close: () => store.close(),
  };
}

function withQuery(path: string, query: URLSearchParams | undefined): string {
  const text = query?.toString() ?? "";
  return text === "" ? path : `${path}?${text}`;
}

/** Runs `work` with the source open, and closes it whatever happens. */
export async function withSessionSource<T>(
  options: Parameters<typeof openSessionSource>[0],
  env: Readonly<Record<string, string | undefined>>,
  work: (source: SessionSource) => Promise<T>,
): Promise<T> {
  const source = await openSessionSource(options, env);
  try {
    return await work(source);
  } finally {
    await source.close();
  }
}

/** The API path of a session, or of one of its sub-resources. */
export function sessionPath(id: string, leaf?: "recording" | "verify"): string {
  return `/api/v1/sessions/${encodeURIComponent(id)}${leaf === undefined ? "" : `/${leaf}`}`;
}
