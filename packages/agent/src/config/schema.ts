import { duration, hostPort } from "@airlock/runtime";
import { z } from "zod";

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, "expected a name of letters, digits, _ . -");
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected an environment variable name");

const connection = z
  .object({
    name,
    /** The database's protocol; the gateway's connection of this name must say the same. */
    protocol: z.enum(["postgres", "mysql", "mongodb"]).default("postgres"),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535),
    database: z.string().min(1).optional(),
    user: z.string().min(1),
    password_env: envName.optional(),
    password_file: z.string().min(1).optional(),
    tls: z
      .object({ mode: z.enum(["disable", "require", "verify-full"]).default("disable"), ca_file: z.string().min(1).optional(), server_name: z.string().optional() })
      .strict()
      .default({ mode: "disable" }),
    /** MySQL, caching_sha2_password without TLS: the server's RSA public key (PEM), like the mysql client's --server-public-key-path. */
    server_public_key_file: z.string().min(1).optional(),
    /** MySQL, caching_sha2_password without TLS and without a key file: ask the server for its key (trusts the network path). */
    get_server_public_key: z.boolean().default(false),
    /** MongoDB: the database the user is defined in (the driver's authSource); admin when absent. */
    auth_source: z.string().min(1).optional(),
    /** MongoDB: the SCRAM mechanism; absent, negotiated from the server's saslSupportedMechs for the user. */
    mechanism: z.enum(["SCRAM-SHA-256", "SCRAM-SHA-1"]).optional(),
  })
  .strict()
  .refine((value) => value.password_env === undefined || value.password_file === undefined, { message: "set password_env or password_file, not both" });

/** The schema of agent.yaml. */
export const agentConfigSchema = z
  .object({
    gateway: hostPort,
    name,
    key_env: envName.optional(),
    key_file: z.string().min(1).optional(),
    tls: z.object({ ca_file: z.string().min(1).optional(), server_name: z.string().optional() }).strict().optional(),
    metrics: z.object({ listen: hostPort }).strict().optional(),
    connections: z.array(connection).min(1),
    limits: z
      .object({ max_message_bytes: z.number().int().min(1024).max(1 << 30).default(64 << 20), connect_timeout: duration.default(10_000) })
      .strict()
      .default({ max_message_bytes: 64 << 20, connect_timeout: 10_000 }),
    log: z.object({ level: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]).default("info") }).strict().default({ level: "info" }),
  })
  .strict()
  // Checked even when other keys are wrong, so every problem is reported at once.
  .superRefine(
    (config, context) => {
      const value = config as { key_env?: unknown; key_file?: unknown; connections?: unknown };
      if ((value.key_env === undefined) === (value.key_file === undefined)) {
        context.addIssue({ code: "custom", path: ["key_env"], message: "set exactly one of key_env or key_file" });
      }
      const seen = new Set<string>();
      (Array.isArray(value.connections) ? value.connections : []).forEach((connection: unknown, index: number) => {
        const connectionName = connection !== null && typeof connection === "object" ? (connection as { name?: unknown }).name : undefined;
        if (typeof connectionName !== "string") return;
        if (seen.has(connectionName)) context.addIssue({ code: "custom", path: ["connections", index, "name"], message: `duplicate name \`${connectionName}\`` });
        seen.add(connectionName);
      });
    },
    { when: () => true },
  );

/** agent.yaml after validation. */
export type AgentConfig = z.output<typeof agentConfigSchema>;
