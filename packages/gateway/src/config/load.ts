import { deepFreeze, loadYamlConfig, parseYamlConfig } from "@airlock/runtime";
import { dirname, isAbsolute, resolve } from "node:path";
import { gatewayConfigSchema, type GatewayConfig } from "./schema.js";

/** Reads and validates gateway.yaml; relative file paths in it are resolved against its folder. */
export function loadGatewayConfig(file: string): GatewayConfig {
  return resolvePaths(file, loadYamlConfig(file, gatewayConfigSchema));
}

/** Validates gateway.yaml text (for tests and `airlock policy explain`). */
export function parseGatewayConfig(file: string, text: string): GatewayConfig {
  return resolvePaths(file, parseYamlConfig(file, text, gatewayConfigSchema));
}

function resolvePaths(file: string, config: GatewayConfig): GatewayConfig {
  const base = dirname(resolve(file));
  const at = (path: string) => (isAbsolute(path) ? path : resolve(base, path));
  const store = config.store.startsWith("sqlite:") ? `sqlite:${at(config.store.slice("sqlite:".length))}` : config.store;
  return deepFreeze({
    ...config,
    store,
    recordings: at(config.recordings),
    ...(config.audit_log === undefined || config.audit_log === "-" ? {} : { audit_log: at(config.audit_log) }),
    masking: { ...config.masking, ...(config.masking.key_file === undefined ? {} : { key_file: at(config.masking.key_file) }) },
    ...(config.tls === undefined ? {} : { tls: { cert_file: at(config.tls.cert_file), key_file: at(config.tls.key_file) } }),
    identity: {
      ...config.identity,
      issuers: config.identity.issuers.map((issuer) => (issuer.jwks_file === undefined ? issuer : { ...issuer, jwks_file: at(issuer.jwks_file) })),
    },
  });
}
