import { isIP, connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import { UpstreamError } from "./errors.js";

/** Where a login connects, and how it does TLS (MySQL and MongoDB targets both have these). */
export interface SocketTarget {
  readonly host: string;
  readonly port: number;
  readonly tls: { readonly mode: "disable" | "require" | "verify-full"; readonly ca?: Buffer; readonly servername?: string };
}

/** The protocol's codes for a database that cannot be reached and a TLS handshake that failed. */
export interface SocketErrorCodes {
  readonly unreachable: string;
  readonly tls: string;
}

/** The sockets of one login, destroyed together when it fails, including any opened after that. */
export class SocketTracker {
  readonly #sockets: Socket[] = [];
  #aborted = false;

  add<T extends Socket>(socket: T): T {
    if (this.#aborted) socket.destroy();
    else this.#sockets.push(socket);
    return socket;
  }

  abort(): void {
    this.#aborted = true;
    for (const socket of this.#sockets) socket.destroy();
  }
}

/** Connects to the database; the socket comes paused. */
export async function openSocket(target: SocketTarget, sockets: SocketTracker, codes: SocketErrorCodes): Promise<Socket> {
  return await new Promise<Socket>((resolve, reject) => {
    const socket = sockets.add(netConnect({ host: target.host, port: target.port, noDelay: true }));
    socket.pause();
    const onError = (cause: Error) => {
      socket.destroy();
      reject(new UpstreamError("connect_failed", codes.unreachable, `cannot reach the database at ${target.host}:${target.port}: ${(cause as NodeJS.ErrnoException).code ?? cause.message}`, { cause }));
    };
    const onClose = () => reject(new UpstreamError("connect_failed", codes.unreachable, `the connection to the database at ${target.host}:${target.port} closed while opening`));
    socket.once("error", onError);
    socket.once("close", onClose);
    socket.once("connect", () => {
      socket.off("error", onError);
      socket.off("close", onClose);
      resolve(socket);
    });
  });
}

/** TLS over a connected socket (verify-full checks the CA and the name); the TLS socket comes paused. */
export async function startTls(plain: Socket, target: SocketTarget, sockets: SocketTracker, codes: SocketErrorCodes): Promise<Socket> {
  const servername = target.tls.servername ?? (isIP(target.host) === 0 ? target.host : undefined);
  const options: ConnectionOptions = {
    socket: plain,
    host: target.host,
    rejectUnauthorized: target.tls.mode === "verify-full",
    ...(servername === undefined ? {} : { servername }),
    ...(target.tls.ca === undefined ? {} : { ca: target.tls.ca }),
  };
  return await new Promise<Socket>((resolve, reject) => {
    const secure = sockets.add(
      tlsConnect(options, () => {
        secure.off("error", onError);
        secure.off("close", onClose);
        secure.pause();
        resolve(secure);
      }),
    );
    const onError = (cause: Error) => {
      secure.destroy();
      reject(new UpstreamError("tls_refused", codes.tls, `tls to the database failed: ${cause.message}`, { cause }));
    };
    const onClose = () => reject(new UpstreamError("tls_refused", codes.tls, "the database closed the connection during the tls handshake"));
    secure.once("error", onError);
    secure.once("close", onClose);
  });
}
