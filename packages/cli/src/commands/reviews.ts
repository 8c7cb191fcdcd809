import { parseArgs } from "node:util";
import { apiUrl, callApi, reviewerKey } from "./api-client.js";
import { UsageError, type Command } from "./command.js";

interface ReviewJson {
  id: string;
  kind: string;
  status: string;
  subject: string;
  connection: string;
  sql: string;
  rule: string;
  reasons: string[];
  reviewers: string[];
  approvalsRequired: number;
  actions: { reviewer: string; action: string; reason: string }[];
  createdAt: string;
  expiresAt: string;
  durationMs?: number;
  reason?: string;
}

function describe(review: ReviewJson): string {
  const what = review.kind === "access" ? `access for ${Math.round((review.durationMs ?? 0) / 60_000)}m: ${review.reason ?? ""}` : review.sql.replace(/\s+/g, " ").slice(0, 120);
  const approvals = review.actions.filter((action) => action.action === "approve").length;
  return `${review.id}  ${review.status.padEnd(8)}  ${review.connection}  ${review.subject}  [${approvals}/${review.approvalsRequired}]  ${what}`;
}

export const reviewsCommand: Command = {
  name: "reviews",
  summary: "list, approve or reject held statements and access requests",
  usage: `airlock reviews list [--status pending|approved|rejected|expired|cancelled|all] [--json]
airlock reviews approve <id> [--reason TEXT]
airlock reviews reject <id> --reason TEXT

Against the gateway's HTTP API (--api URL or AIRLOCK_API) with a reviewer key (--key-file FILE or
AIRLOCK_REVIEWER_KEY). Nobody approves their own request; a policy may need several approvals.`,
  async run(argv, env, io) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        api: { type: "string" },
        "key-file": { type: "string" },
        status: { type: "string", default: "pending" },
        reason: { type: "string" },
        json: { type: "boolean", default: false },
      },
    });
    const [action, id, ...rest] = positionals;
    if (rest.length > 0) throw new UsageError(`unexpected argument \`${rest[0]}\``);
    const target = { url: apiUrl(values.api, env), credential: reviewerKey(values["key-file"], env) };
    switch (action) {
      case "list": {
        const query = values.status === "all" ? "" : `?status=${encodeURIComponent(values.status)}`;
        const body = await callApi(target, "GET", `/api/v1/reviews${query}`);
        const reviews = body.reviews as ReviewJson[];
        if (values.json) io.out(JSON.stringify(reviews));
        else if (reviews.length === 0) io.out(`no ${values.status === "all" ? "" : `${values.status} `}reviews`);
        else for (const review of reviews) io.out(describe(review));
        return 0;
      }
      case "approve":
      case "reject": {
        if (id === undefined) throw new UsageError(`expected the id of the review to ${action}`);
        if (action === "reject" && (values.reason === undefined || values.reason.trim() === "")) throw new UsageError("a rejection needs --reason TEXT");
        const body = await callApi(target, "POST", `/api/v1/reviews/${encodeURIComponent(id)}/${action}`, { reason: values.reason ?? "" });
        const review = body.review as ReviewJson;
        if (values.json) io.out(JSON.stringify(review));
        else io.out(`review ${review.id}: ${review.status}${review.status === "pending" ? ` (${review.actions.filter((entry) => entry.action === "approve").length}/${review.approvalsRequired} approvals)` : ""}`);
        return 0;
      }
      default:
        throw new UsageError(action === undefined ? "expected list, approve or reject" : `unknown action \`${action}\``);
    }
  },
};
