import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { protocolName, startConnect } from "../connect/connect.js";
import { findTokenSource } from "../connect/token-source.js";
import { UsageError, type Command } from "./command.js";

export const connectCommand: Command = {
  name: "connect",
  summary: "open a local port to a connection, through the gateway, with the job's token",
  usage: `airlock connect <connection> --gateway HOST:PORT [options]

Opens a local port that speaks the connection's own protocol (PostgreSQL) and tunnels every client
connection to the gateway with the job's OIDC token. The token comes from --token-file, AIRLOCK_TOKEN,
GitHub Actions (permissions: id-token: write) or GitLab CI (id_tokens: AIRLOCK_ID_TOKEN).

Options:
  --gateway HOST:PORT   the gateway's gRPC address (or AIRLOCK_GATEWAY)
  --port N              local port (default 0: any free port)
  --host ADDRESS        local address (default 127.0.0.1)
  --token-file FILE     read the token from FILE (re-read for every new client connection)
  --audience AUD        audience to request from GitHub Actions (default airlock)
  --ca-file FILE        CA certificate of the gateway's TLS; without it the link is plaintext
  --server-name NAME    TLS server name to expect (default: the gateway host)
  --json                print the listening address as JSON`,
  async run(argv, env, io) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        gateway: { type: "string" },
        port: { type: "string", default: "0" },
        host: { type: "string", default: "127.0.0.1" },
        "token-file": { type: "string" },
        audience: { type: "string" },
        "ca-file": { type: "string" },
        "server-name": { type: "string" },
        json: { type: "boolean", default: false },
      },
    });
    const connection = positionals[0];
    if (connection === undefined || positionals.length > 1) throw new UsageError("expected exactly one connection name");
    const gateway = values.gateway ?? env.AIRLOCK_GATEWAY;
    if (gateway === undefined) throw new UsageError("--gateway HOST:PORT is required (or AIRLOCK_GATEWAY)");
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port \`${values.port}\` is not a port number`);
    const tokens = findTokenSource({
      env,
      ...(values["token-file"] === undefined ? {} : { tokenFile: values["token-file"] }),
      ...(values.audience === undefined ? {} : { audience: values.audience }),
    });
    const handle = await startConnect({
      connection,
      gateway,
      host: values.host,
      port,
      tokens,
      ...(values["ca-file"] === undefined ? {} : { ca: readFileSync(values["ca-file"]) }),
      ...(values["server-name"] === undefined ? {} : { serverName: values["server-name"] }),
      log: (line) => io.err(`airlock connect: ${line}`),
    });
    const protocol = protocolName(handle.description.protocol);
    if (values.json) {
      io.out(JSON.stringify({ address: handle.address, connection, protocol, subject: handle.description.subject, groups: handle.description.groups }));
    } else {
      const [host, listenPort] = [handle.address.slice(0, handle.address.lastIndexOf(":")), handle.address.slice(handle.address.lastIndexOf(":") + 1)];
      io.out(`airlock connect: ${connection} (${protocol}) as ${handle.description.subject} [${handle.description.groups.join(", ")}], token from ${tokens.description}`);
      io.out(`listening on ${handle.address}`);
      if (protocol === "postgres") io.out(`  psql "host=${host} port=${listenPort} dbname=${connection} user=airlock sslmode=disable"`);
    }
    await io.untilSignal();
    await handle.close();
    return 0;
  },
};
