import { createLogger } from "@airlock/runtime";
import { loadGatewayConfig } from "./config/load.js";
import { startGateway } from "./gateway.js";

/** Options of {@link main}: what the command line passes in. */
export interface GatewayMainOptions {
  readonly configFile: string;
}

/** `airlock gateway --config gateway.yaml`: reads the config once, starts, stops on SIGINT/SIGTERM. */
export async function main(options: GatewayMainOptions): Promise<void> {
  const config = loadGatewayConfig(options.configFile);
  const logger = createLogger({ name: "airlock-gateway", level: config.log.level });
  const statementRules = config.policies.some((policy) => Object.values(policy.actions).some((action) => action !== "allow") || policy.max_rows !== undefined);
  const masking = config.connections.some((connection) => (connection.masking?.columns.length ?? 0) > 0 || (connection.masking?.detectors.length ?? 0) > 0);
  if (statementRules || masking) {
    logger.warn("this build enforces identity and connection-level policy only: statement actions, max_rows and masking are not enforced yet");
  }
  const gateway = await startGateway({ config, logger });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, "stopping");
      gateway.close().then(resolve, resolve);
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
}
