import { frontend, frontendName, pg, WireError, type PgMessage } from "@airlock/wire";
import type { GatewayMetrics } from "../metrics/metrics.js";

/** What the relay does with a client message. */
export type FrontendVerdict = "forward" | "refuse_fastpath";

const KNOWN = new Set<number>(Object.values(frontend));

/**
 * Sees every client message of the simple and extended protocol before it reaches the agent:
 * decodes those that carry statements or names (so a malformed one stops here), counts them by
 * type, and refuses what must not pass. Statement policy (its own issue) plugs in here.
 */
export function inspectFrontend(message: PgMessage, metrics: GatewayMetrics, connection: string): FrontendVerdict {
  const code = message.code;
  if (!KNOWN.has(code) || code === frontend.PasswordMessage) {
    throw new WireError("unexpected_message", `unexpected ${frontendName(code)} message`);
  }
  counter(metrics, connection, code).inc();
  switch (code) {
    case frontend.Query:
      pg.decodeQuery(message.bytes);
      return "forward";
    case frontend.Parse:
      pg.decodeParse(message.bytes);
      return "forward";
    case frontend.Bind:
      // Parameters included: every length inside must fit the message before anything reads it.
      pg.decodeBind(message.bytes);
      return "forward";
    case frontend.Execute:
      pg.decodeExecute(message.bytes);
      return "forward";
    case frontend.Describe:
    case frontend.Close:
      pg.decodeTarget(message.bytes);
      return "forward";
    case frontend.FunctionCall:
      // The fastpath interface calls a function by OID, past any statement inspection.
      return "refuse_fastpath";
    default:
      return "forward";
  }
}

/** The labelled child of the message counter, looked up once per connection and type, not per message. */
const counters = new WeakMap<GatewayMetrics, Map<string, { inc(): void }>>();

function counter(metrics: GatewayMetrics, connection: string, code: number): { inc(): void } {
  let byKey = counters.get(metrics);
  if (byKey === undefined) {
    byKey = new Map();
    counters.set(metrics, byKey);
  }
  const key = `${connection}\0${code}`;
  let child = byKey.get(key);
  if (child === undefined) {
    child = metrics.messages.labels({ connection, type: frontendName(code) });
    byKey.set(key, child);
  }
  return child;
}
