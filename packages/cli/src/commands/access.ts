import { parseArgs } from "node:util";
import { findTokenSource } from "../connect/token-source.js";
import { apiUrl, callApi } from "./api-client.js";
import { UsageError, type Command } from "./command.js";

export const accessCommand: Command = {
  name: "access",
  summary: "request just-in-time access to a connection",
  usage: `airlock access request <connection> --duration 15m --reason TEXT [--wait] [--json]

Asks for access to a connection for a while, with a reason, under a policy with access: jit. Once a
reviewer approves, the job's identity holds a grant until it expires; sessions that rely on it end
then. The token is found as for airlock connect (--token-file, AIRLOCK_TOKEN, GitHub Actions,
GitLab CI). --wait waits for the decision and exits 0 only if approved.

Options:
  --api URL          the gateway's HTTP API (or AIRLOCK_API)
  --token-file FILE  the job's OIDC token
  --wait             wait until the request is decided`,
  async run(argv, env, io) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        api: { type: "string" },
        "token-file": { type: "string" },
        duration: { type: "string" },
        reason: { type: "string" },
        wait: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
      },
    });
    const [action, connection, ...rest] = positionals;
    if (action !== "request") throw new UsageError(action === undefined ? "expected `request`" : `unknown action \`${action}\``);
    if (connection === undefined || rest.length > 0) throw new UsageError("expected exactly one connection name");
    if (values.duration === undefined) throw new UsageError("--duration is required, e.g. --duration 15m");
    if (values.reason === undefined || values.reason.trim() === "") throw new UsageError("--reason TEXT is required");
    const tokens = findTokenSource({ env, ...(values["token-file"] === undefined ? {} : { tokenFile: values["token-file"] }) });
    const target = { url: apiUrl(values.api, env), credential: await tokens.read() };
    const body = await callApi(target, "POST", "/api/v1/access-requests", { connection, duration: values.duration, reason: values.reason });
    let request = body.request as { id: string; status: string; expiresAt: string };
    if (!values.json) io.out(`access request ${request.id} is ${request.status}: a reviewer approves it with ${String(body.approve)}`);
    while (values.wait && request.status === "pending") {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      target.credential = await tokens.read();
      request = (await callApi(target, "GET", `/api/v1/access-requests/${encodeURIComponent(request.id)}`)).request as typeof request;
    }
    if (values.json) io.out(JSON.stringify(request));
    else if (values.wait) io.out(`access request ${request.id}: ${request.status}`);
    return values.wait && request.status !== "approved" ? 1 : 0;
  },
};
