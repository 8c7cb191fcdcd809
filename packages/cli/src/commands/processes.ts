import { main as agentMain } from "@airlock/agent";
import { main as gatewayMain } from "@airlock/gateway";
import { parseArgs } from "node:util";
import { UsageError, type Command } from "./command.js";
import { VERSION } from "../version.js";

function configFlag(argv: string[]): string {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { config: { type: "string", short: "c" } } });
  if (positionals.length > 0) throw new UsageError(`unexpected argument \`${positionals[0]}\``);
  if (values.config === undefined) throw new UsageError("--config FILE is required");
  return values.config;
}

export const gatewayCommand: Command = {
  name: "gateway",
  summary: "run the gateway",
  usage: `airlock gateway --config gateway.yaml

Runs the gateway: identity, policy, the agents' links, native listeners, the connect tunnel,
/metrics and /healthz. The file is validated first; every problem is printed with its key path.`,
  async run(argv) {
    await gatewayMain({ configFile: configFlag(argv) });
    return 0;
  },
};

export const agentCommand: Command = {
  name: "agent",
  summary: "run an agent beside the databases",
  usage: `airlock agent --config agent.yaml

Runs an agent: dials the gateway (no inbound port), holds the databases' credentials (from the
environment or files named in agent.yaml) and serves the connections assigned to it.`,
  async run(argv, env) {
    await agentMain({ configFile: configFlag(argv), env, version: VERSION });
    return 0;
  },
};
