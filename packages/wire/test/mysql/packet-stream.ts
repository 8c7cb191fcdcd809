import type { Socket } from "node:net";
import { createMysqlFramer, mysql, type MysqlPacket } from "../../src/index.js";

/** A socket read as whole MySQL packets, awaited one at a time; the tests' client and server both use it. */
export class PacketStream {
  readonly #socket: Socket;
  readonly #framer = createMysqlFramer({ maxMessageBytes: 1 << 24 });
  readonly #packets: MysqlPacket[] = [];
  /** Settles when the socket has closed. */
  readonly closed: Promise<void>;
  #wake: (() => void) | undefined;
  #failure: Error | undefined;

  constructor(socket: Socket) {
    this.#socket = socket;
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("data", (chunk: Buffer) => {
      try {
        this.#packets.push(...this.#framer.push(chunk));
      } catch (error) {
        this.#failure = error as Error;
        socket.destroy();
      }
      this.#wake?.();
    });
    socket.on("error", (error) => {
      this.#failure ??= error;
      this.#wake?.();
    });
    socket.on("close", () => {
      this.#failure ??= new Error("connection closed");
      this.#wake?.();
    });
  }

  /** The next packet; rejects once the socket failed or closed with nothing left to read. */
  async next(): Promise<MysqlPacket> {
    for (;;) {
      const packet = this.#packets.shift();
      if (packet !== undefined) return packet;
      if (this.#failure !== undefined) throw this.#failure;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /** Writes one logical packet. */
  send(sequenceId: number, payload: Buffer): void {
    this.#socket.write(mysql.encodePacket(sequenceId, payload));
  }

  /** Ends the socket gracefully. */
  end(): void {
    this.#socket.end();
  }

  destroy(): void {
    this.#socket.destroy();
  }
}
