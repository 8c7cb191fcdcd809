import { splitHostPort } from "@airlock/runtime";
import type { Server } from "node:net";

/** Starts `server` on `address` (host:port); resolves once it listens, rejects if it cannot. */
export async function listenOn<T extends Server>(server: T, address: string): Promise<T> {
  const { host, port } = splitHostPort(address);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}
