import { duration, hostPort } from "@airlock/runtime";
import { z } from "zod";

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, "expected a name of letters, digits, _ . -");
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "expected the lowercase hex of a sha256 digest (64 characters)");
const action = z.enum(["allow", "deny", "review"]);

const issuer = z
  .object({
    name,
    issuer: z.url(),
    audience: z.string().min(1),
    jwks_file: z.string().min(1).optional(),
    jwks_url: z.url().optional(),
    groups_claim: z.string().min(1).optional(),
    max_lifetime: duration.optional(),
  })
  .strict()
  .refine((value) => value.jwks_file === undefined || value.jwks_url === undefined, {
    message: "set jwks_file or jwks_url, not both",
  });

const groupRule = z
  .object({
    group: name,
    issuer: name,
    claims: z.record(z.string(), z.union([z.string(), z.array(z.string()).min(1)])),
  })
  .strict();

const maskColumn = z
  .object({
    /** schema.table.column; for mongodb database.collection.path, where the path may go on (`address.street`). */
    column: z.string().regex(/^[^.\s]+\.[^.\s]+\.[^\s]+$/, "expected schema.table.column"),
    style: z.enum(["redact", "partial", "null", "pseudonym"]).default("redact"),
    keep: z.number().int().min(0).max(64).optional(),
  })
  .strict();

const connection = z
  .object({
    name,
    protocol: z.enum(["postgres", "mysql", "mongodb"]),
    agent: name,
    listen: hostPort.optional(),
    /** Accept plaintext passwords (tokens) from non-loopback clients on the native listener. */
    insecure_plaintext: z.boolean().default(false),
    /** User functions known to only read (schema.name or name); other user functions count as writes. */
    safe_functions: z.array(z.string().min(1)).default([]),
    masking: z
      .object({
        columns: z.array(maskColumn).default([]),
        detectors: z.array(z.enum(["card_number", "email", "ssn", "national_id", "iban", "phone", "secret"])).default([]),
        /** Predicates on sensitive columns (WHERE email LIKE 'a%'...) let a masked reader learn values. */
        inference: action.default("deny"),
      })
      .strict()
      .optional(),
  })
  .strict();

const policy = z
  .object({
    name,
    groups: z.array(name).min(1),
    connections: z.array(name).min(1),
    actions: z
      .object({
        read: action.default("deny"),
        write: action.default("deny"),
        ddl: action.default("deny"),
        admin: action.default("deny"),
        export: action.default("deny"),
        dangerous: action.default("deny"),
      })
      .strict(),
    max_rows: z.number().int().positive().optional(),
    max_session: duration.optional(),
    unmasked: z.boolean().default(false),
    /** Reviewer groups whose members may approve this policy's reviews. */
    reviewers: z.array(name).optional(),
    review_timeout: duration.optional(),
    /** Approvals a review needs, from distinct reviewers of the reviewer groups. */
    approvals: z.number().int().min(1).max(10).default(1),
    /** UPDATE/DELETE without a real WHERE, and TRUNCATE. */
    unbounded_write: action.default("deny"),
    /** standing: the groups are enough; jit: an approved `airlock access request` grant is needed too. */
    access: z.enum(["standing", "jit"]).default("standing"),
    windows: z
      .array(
        z
          .object({
            days: z.array(z.enum(["mon", "tue", "wed", "thu", "fri", "sat", "sun"])).min(1),
            from: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "expected HH:MM"),
            to: z.string().regex(/^([01]\d|2[0-4]):[0-5]\d$/, "expected HH:MM"),
            timezone: z.string().refine(validTimezone, "expected an IANA time zone such as UTC or Europe/Paris").default("UTC"),
          })
          .strict(),
      )
      .optional(),
    /** Longest just-in-time grant a request may ask for. */
    max_grant: duration.default(3_600_000),
  })
  .strict();

function validTimezone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The schema of gateway.yaml. */
export const gatewayConfigSchema = z
  .object({
    /** This gateway's id in a shared store; default: the host name and the gRPC address. */
    id: name.optional(),
    listen: z
      .object({ grpc: hostPort.default("127.0.0.1:8443"), http: hostPort.default("127.0.0.1:8080") })
      .strict()
      .default({ grpc: "127.0.0.1:8443", http: "127.0.0.1:8080" }),
    tls: z.object({ cert_file: z.string().min(1), key_file: z.string().min(1) }).strict().optional(),
    store: z.string().regex(/^(sqlite:.+|postgres(ql)?:\/\/.+)$/, "expected sqlite:PATH or postgres://...").default("sqlite:./data/airlock.db"),
    recordings: z.string().min(1).default("./data/recordings"),
    recording: z
      .object({
        /** statement: each statement is synced to disk before it reaches the database; interval: written before, synced at most `interval` later. */
        fsync: z.enum(["statement", "interval"]).default("statement"),
        interval: duration.default(10),
        /** Recordings (and ended sessions in the store) older than this are deleted. */
        retention: duration.default(90 * 86_400_000),
        /** Refuse statements when the recording cannot be written (true), or go on and log (false). */
        fail_closed: z.boolean().default(true),
        /** Rows of each result kept in the recording (the rest is counted). */
        sample_rows: z.number().int().min(0).max(1000).default(20),
      })
      .strict()
      .default({ fsync: "statement", interval: 10, retention: 90 * 86_400_000, fail_closed: true, sample_rows: 20 }),
    masking: z
      .object({
        /** Key of the pseudonym style (HMAC-SHA256); needed when a column uses it. */
        key_file: z.string().min(1).optional(),
        /** How long a connection's catalog (tables, views, sensitive columns) is kept before it is read again. */
        catalog_ttl: duration.default(60_000),
      })
      .strict()
      .default({ catalog_ttl: 60_000 }),
    /** Audit events, one JSON line per decision, for a SIEM: a file path, or `-` for stdout. */
    audit_log: z.string().min(1).optional(),
    identity: z
      .object({
        issuers: z.array(issuer).min(1),
        group_rules: z.array(groupRule).default([]),
        clock_tolerance: duration.default(30_000),
      })
      .strict(),
    reviewers: z
      .array(
        z
          .object({
            name,
            key_sha256: sha256Hex,
            groups: z.array(name).default([]),
            /** OIDC subjects that are this same person: they cannot approve their own requests. */
            subjects: z.array(z.string().min(1)).default([]),
          })
          .strict(),
      )
      .default([]),
    approvals: z
      .object({
        /** Slack-compatible incoming webhook announcing new reviews. */
        webhook_url: z.url().optional(),
        /** Where reviewers reach this gateway's API (named in notices and webhooks). */
        public_url: z.url().optional(),
        /** Review timeout when the policy sets none. */
        default_timeout: duration.default(600_000),
      })
      .strict()
      .default({ default_timeout: 600_000 }),
    agents: z.array(z.object({ name, key_sha256: sha256Hex }).strict()).min(1),
    connections: z.array(connection).min(1),
    policies: z.array(policy).default([]),
    limits: z
      .object({
        /** Largest protocol message accepted from a client or an agent. */
        max_message_bytes: z.number().int().min(1024).max(1 << 30).default(64 << 20),
        /** How long a new session waits for its agent to open the database session. */
        agent_timeout: duration.default(15_000),
      })
      .strict()
      .default({ max_message_bytes: 64 << 20, agent_timeout: 15_000 }),
    log: z.object({ level: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]).default("info") }).strict().default({ level: "info" }),
  })
  .strict()
  // References are checked even when other keys are wrong, so every problem is reported at once;
  // the value may then be partly invalid, hence the defensive reads.
  .superRefine((config, context) => checkReferences(config as unknown, context), { when: () => true });

type Entry = Readonly<Record<string, unknown>>;
const entries = (value: unknown): Entry[] => (Array.isArray(value) ? value.map((item) => (item !== null && typeof item === "object" ? (item as Entry) : {})) : []);
const field = (value: unknown, key: string): unknown => (value !== null && typeof value === "object" ? (value as Entry)[key] : undefined);

function checkReferences(config: unknown, context: z.core.$RefinementCtx<unknown>): void {
  const issue = (path: (string | number)[], message: string) => context.addIssue({ code: "custom", path, message });
  const unique = (path: string[], items: Entry[]) => {
    const seen = new Set<string>();
    items.forEach((item, index) => {
      const itemName = item.name;
      if (typeof itemName !== "string") return;
      if (seen.has(itemName)) issue([...path, index, "name"], `duplicate name \`${itemName}\``);
      seen.add(itemName);
    });
    return seen;
  };
  const identity = field(config, "identity");
  const issuers = unique(["identity", "issuers"], entries(field(identity, "issuers")));
  const agents = unique(["agents"], entries(field(config, "agents")));
  const connectionList = entries(field(config, "connections"));
  const connections = unique(["connections"], connectionList);
  unique(["policies"], entries(field(config, "policies")));
  unique(["reviewers"], entries(field(config, "reviewers")));
  entries(field(identity, "group_rules")).forEach((rule, index) => {
    if (typeof rule.issuer === "string" && !issuers.has(rule.issuer)) issue(["identity", "group_rules", index, "issuer"], `no issuer is named \`${rule.issuer}\``);
  });
  const listens = new Set<string>();
  connectionList.forEach((connection, index) => {
    if (typeof connection.agent === "string" && !agents.has(connection.agent)) issue(["connections", index, "agent"], `no agent is named \`${connection.agent}\``);
    if (typeof connection.listen === "string") {
      if (listens.has(connection.listen)) issue(["connections", index, "listen"], `\`${connection.listen}\` is used by another connection`);
      listens.add(connection.listen);
    }
    // Only a MongoDB field path goes deeper than schema.table.column.
    if (connection.protocol !== "mongodb") {
      entries(field(field(connection, "masking"), "columns")).forEach((column, columnIndex) => {
        if (typeof column.column === "string" && column.column.split(".").length > 3) issue(["connections", index, "masking", "columns", columnIndex, "column"], "expected schema.table.column");
      });
    }
  });
  entries(field(config, "policies")).forEach((policy, index) => {
    const names = Array.isArray(policy.connections) ? policy.connections : [];
    names.forEach((name: unknown, inner: number) => {
      if (typeof name === "string" && !connections.has(name)) issue(["policies", index, "connections", inner], `no connection is named \`${name}\``);
    });
  });
}

/** gateway.yaml after validation, with defaults filled in and durations in milliseconds. */
export type GatewayConfig = z.output<typeof gatewayConfigSchema>;
/** One entry of connections[]. */
export type ConnectionConfig = GatewayConfig["connections"][number];
