import { ConfigError, deepFreeze, loadYamlConfig, Secret } from "@airlock/runtime";
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import type { MongoTarget } from "../upstream/mongo.js";
import type { MysqlTarget } from "../upstream/mysql.js";
import type { PostgresTarget } from "../upstream/postgres.js";
import { agentConfigSchema, type AgentConfig } from "./schema.js";

/** Everything the agent needs, with secrets read and wrapped. */
export interface AgentSettings {
  readonly config: AgentConfig;
  readonly key: Secret;
  readonly gatewayCa?: Buffer;
  readonly targets: ReadonlyMap<string, AgentTarget>;
}

/** A database the agent serves, by protocol. */
export type AgentTarget =
  | { readonly protocol: "postgres"; readonly postgres: PostgresTarget }
  | { readonly protocol: "mysql"; readonly mysql: MysqlTarget }
  | { readonly protocol: "mongodb"; readonly mongodb: MongoTarget };

/**
 * Reads agent.yaml and the secrets it points to (environment or files). Every problem is reported
 * at once; a secret's value never appears in an error.
 */
export function loadAgentSettings(file: string, env: Readonly<Record<string, string | undefined>>): AgentSettings {
  const config = loadYamlConfig(file, agentConfigSchema);
  const base = dirname(resolve(file));
  const at = (path: string) => (isAbsolute(path) ? path : resolve(base, path));
  const problems: string[] = [];
  const readSecret = (path: string, source: { env?: string | undefined; file?: string | undefined }): Secret | undefined => {
    if (source.env !== undefined) {
      const value = env[source.env];
      if (value === undefined || value === "") problems.push(`${path}: environment variable \`${source.env}\` is not set`);
      return value === undefined ? undefined : new Secret(value);
    }
    if (source.file !== undefined) {
      try {
        const value = readFileSync(at(source.file), "utf8").trim();
        if (value === "") problems.push(`${path}: file \`${source.file}\` is empty`);
        return new Secret(value);
      } catch (cause) {
        problems.push(`${path}: cannot read \`${source.file}\`: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`);
      }
    }
    return undefined;
  };
  const readFile = (path: string, name: string): Buffer | undefined => {
    try {
      return readFileSync(at(name));
    } catch (cause) {
      problems.push(`${path}: cannot read \`${name}\`: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`);
      return undefined;
    }
  };

  const key = readSecret(config.key_env === undefined ? "key_file" : "key_env", { env: config.key_env, file: config.key_file });
  const gatewayCa = config.tls?.ca_file === undefined ? undefined : readFile("tls.ca_file", config.tls.ca_file);
  const targets = new Map<string, AgentTarget>();
  config.connections.forEach((connection, index) => {
    const password = readSecret(`connections.${index}.${connection.password_env === undefined ? "password_file" : "password_env"}`, {
      env: connection.password_env,
      file: connection.password_file,
    });
    const ca = connection.tls.ca_file === undefined ? undefined : readFile(`connections.${index}.tls.ca_file`, connection.tls.ca_file);
    const tls = {
      mode: connection.tls.mode,
      ...(ca === undefined ? {} : { ca }),
      ...(connection.tls.server_name === undefined ? {} : { servername: connection.tls.server_name }),
    };
    const common = {
      host: connection.host,
      port: connection.port,
      user: connection.user,
      ...(password === undefined ? {} : { password }),
      tls,
      connectTimeoutMs: config.limits.connect_timeout,
      maxMessageBytes: config.limits.max_message_bytes,
    };
    const mysqlOnly = connection.server_public_key_file !== undefined || connection.get_server_public_key;
    const mongodbOnly = connection.auth_source !== undefined || connection.mechanism !== undefined;
    if (connection.protocol !== "mongodb" && mongodbOnly) problems.push(`connections.${index}: auth_source and mechanism are for protocol mongodb`);
    if (connection.protocol === "mongodb") {
      if (mysqlOnly) problems.push(`connections.${index}: server_public_key_file and get_server_public_key are for protocol mysql`);
      targets.set(connection.name, {
        protocol: "mongodb",
        mongodb: {
          ...common,
          ...(connection.database === undefined ? {} : { database: connection.database }),
          authSource: connection.auth_source ?? "admin",
          ...(connection.mechanism === undefined ? {} : { mechanism: connection.mechanism }),
        },
      });
      return;
    }
    if (connection.protocol === "mysql") {
      const key = connection.server_public_key_file === undefined ? undefined : readFile(`connections.${index}.server_public_key_file`, connection.server_public_key_file);
      targets.set(connection.name, {
        protocol: "mysql",
        mysql: {
          ...common,
          ...(connection.database === undefined ? {} : { database: connection.database }),
          ...(key === undefined ? {} : { serverPublicKey: key }),
          getServerPublicKey: connection.get_server_public_key,
        },
      });
      return;
    }
    if (mysqlOnly) {
      problems.push(`connections.${index}: server_public_key_file and get_server_public_key are for protocol mysql`);
    }
    targets.set(connection.name, { protocol: "postgres", postgres: { ...common, database: connection.database ?? connection.user } });
  });
  if (problems.length > 0 || key === undefined) throw new ConfigError(file, problems.length > 0 ? problems : ["no agent key"]);
  return deepFreeze({ config, key, ...(gatewayCa === undefined ? {} : { gatewayCa }), targets });
}
