/** Process plumbing shared by the gateway, the agent and the command line: config, logs, secrets, metrics. */
export { ConfigError, deepFreeze, duration, hostPort, isLoopback, loadYamlConfig, parseYamlConfig, splitHostPort, validateConfig } from "./config.js";
export { createLogger, logFile, type Logger, type LoggerOptions } from "./logger.js";
export { metricsHandler, startMetricsServer } from "./metrics-server.js";
export { Secret } from "./secret.js";
