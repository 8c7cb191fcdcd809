import { parseArgs } from "node:util";
import { startMongoTestServer } from "./server.js";
import type { MongoTestUser } from "./users.js";

/**
 * Runs the stand-in from the command line, for trying clients by hand:
 *   node dist/main.js --port 27017 --user admin:secret [--user name:password ...] [--standalone]
 */
const usage = "usage: mongo-test-server [--host 127.0.0.1] [--port 27017] [--user name:password]... [--no-auth] [--standalone]";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "27017" },
      user: { type: "string", multiple: true, default: [] },
      "no-auth": { type: "boolean", default: false },
      standalone: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`--port \`${values.port}\` is not a port number`);
  const users: MongoTestUser[] = values.user.map((entry) => {
    const colon = entry.indexOf(":");
    if (colon <= 0) throw new Error(`--user \`${entry}\` is not name:password`);
    return { username: entry.slice(0, colon), password: entry.slice(colon + 1) };
  });
  const server = await startMongoTestServer({
    host: values.host,
    port,
    users,
    requireAuth: !values["no-auth"] && users.length > 0,
    replicaSet: values.standalone ? false : "rs0",
  });
  process.stdout.write(`mongo test server listening on ${server.uri}\n`);
  const stop = (): void => {
    void server.close().then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`mongo-test-server: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
