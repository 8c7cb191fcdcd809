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
