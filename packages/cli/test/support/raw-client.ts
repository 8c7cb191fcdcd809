import { backend, createPgFramer, pg, type PgMessage } from "@airlock/wire";
import { connect, type Socket } from "node:net";

/** What a raw connection got back before the server closed it. */
export interface RawResult {
  readonly messages: PgMessage[];
  readonly closed: boolean;
  /** Fields of the first ErrorResponse, if any. */
  readonly error?: Readonly<Record<string, string>>;
}

/** Opens a TCP connection to the gateway. */
export function openRaw(port: number, host = "127.0.0.1"): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/**
 * Writes bytes and collects what the server answers until it closes the connection (or the
 * timeout passes, which a test treats as "the server did not close").
 */
export function exchange(socket: Socket, bytes: Buffer | Buffer[], timeoutMs = 5_000): Promise<RawResult> {
  const framer = createPgFramer({ maxMessageBytes: 1 << 20 });
  const messages: PgMessage[] = [];
  return new Promise((resolve) => {
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      const error = messages.find((message) => message.code === backend.ErrorResponse);
      resolve({ messages, closed, ...(error === undefined ? {} : { error: pg.decodeErrorFields(error.bytes) }) });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on("data", (chunk: Buffer) => {
      // An 'N' or 'S' answer to SSLRequest is a single untyped byte.
      if (messages.length === 0 && chunk.length === 1 && (chunk[0] === 0x4e || chunk[0] === 0x53)) {
        messages.push({ code: chunk[0], bytes: chunk });
        return;
      }
      messages.push(...framer.push(chunk));
    });
    socket.on("close", () => finish(true));
    socket.on("error", () => undefined);
    for (const part of Array.isArray(bytes) ? bytes : [bytes]) socket.write(part);
  });
}

/** A StartupMessage as psql would send it. */
export function startupMessage(): Buffer {
  return pg.encodeStartupMessage([
    ["user", "ci"],
    ["database", "orders"],
  ]);
}
