import { createLogger, splitHostPort, startMetricsServer } from "@airlock/runtime";
import { startAgent } from "./agent.js";
import { loadAgentSettings } from "./config/load.js";
import { createAgentMetrics } from "./metrics.js";

/** Options of {@link main}: what the command line passes in. */
export interface AgentMainOptions {
  readonly configFile: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly version: string;
}

/**
 * `airlock agent --config agent.yaml`: reads config and env once, starts the link and /metrics, and
 * stops cleanly on SIGINT/SIGTERM.
 */
export async function main(options: AgentMainOptions): Promise<void> {
  const settings = loadAgentSettings(options.configFile, options.env);
  const logger = createLogger({ name: "airlock-agent", level: settings.config.log.level }).child({ agent: settings.config.name });
  const metrics = createAgentMetrics();
  const metricsServer =
    settings.config.metrics === undefined
      ? undefined
      : await startMetricsServer(metrics.registry, splitHostPort(settings.config.metrics.listen).host, splitHostPort(settings.config.metrics.listen).port);
  if (metricsServer !== undefined) logger.info({ address: metricsServer.address() }, "metrics listening");
  const agent = startAgent({ settings, logger, metrics, version: options.version });
  logger.info({ gateway: settings.config.gateway, connections: [...settings.targets.keys()] }, "agent started");
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, "stopping");
      agent.close();
      metricsServer?.close();
      resolve();
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
}
