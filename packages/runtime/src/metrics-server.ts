import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Registry } from "prom-client";

/** Serves a prom-client registry at GET /metrics; other paths are 404. */
export function metricsHandler(registry: Registry) {
  return (request: IncomingMessage, response: ServerResponse): boolean => {
    if (request.method !== "GET" || request.url?.split("?")[0] !== "/metrics") return false;
    registry
      .metrics()
      .then((body) => {
        response.writeHead(200, { "content-type": registry.contentType });
        response.end(body);
      })
      .catch(() => {
        response.writeHead(500).end();
      });
    return true;
  };
}

/** Starts an HTTP server that serves only /metrics (and /healthz). */
export async function startMetricsServer(registry: Registry, host: string, port: number): Promise<Server> {
  const handle = metricsHandler(registry);
  const server = createServer((request, response) => {
    if (handle(request, response)) return;
    if (request.url === "/healthz") {
      response.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}
