import { channelOptions, create, DescribeRequestSchema, metadataKeys, OpenRequestSchema, Protocol, tunnelServiceDefinition, type DescribeResponse, type OpenResponse } from "@airlock/proto";
import { Client, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import type { TokenSource } from "./token-source.js";

/** Options of {@link startConnect}. */
export interface ConnectOptions {
  readonly connection: string;
  readonly gateway: string;
  readonly host: string;
  readonly port: number;
  readonly tokens: TokenSource;
  readonly ca?: Buffer;
  readonly serverName?: string;
  /** Called with one line for each event worth telling the user (never a token). */
  readonly log?: (line: string) => void;
}

/** A running `airlock connect`. */
export interface ConnectHandle {
  readonly address: string;
  readonly description: DescribeResponse;
  close(): Promise<void>;
}

/** The gateway refused or could not be reached; the message is fit for the user. */
export class ConnectError extends Error {
  readonly code = "connect_failed";
}

const PROTOCOL_NAMES: Partial<Record<Protocol, string>> = { [Protocol.POSTGRES]: "postgres", [Protocol.MYSQL]: "mysql", [Protocol.MONGODB]: "mongodb" };

/** Name of a protocol for people. */
export function protocolName(protocol: Protocol): string {
  return PROTOCOL_NAMES[protocol] ?? "unknown";
}

/**
 * Opens a local port that speaks the connection's own protocol and carries every client connection
 * through a TunnelService.Open call, with the job's token, to the gateway. The token and the
 * connection are checked once (Describe) before the port opens.
 */
export async function startConnect(options: ConnectOptions): Promise<ConnectHandle> {
  const log = options.log ?? (() => undefined);
  const client = new Client(options.gateway, options.ca === undefined ? credentials.createInsecure() : credentials.createSsl(options.ca), {
    ...channelOptions(64 << 20),
    ...(options.serverName === undefined ? {} : { "grpc.ssl_target_name_override": options.serverName }),
  });
  const metadata = async () => {
    const value = new Metadata();
    value.set(metadataKeys.authorization, `Bearer ${await options.tokens.read()}`);
    value.set(metadataKeys.connection, options.connection);
    return value;
  };
  let description: DescribeResponse;
  try {
    const meta = await metadata();
    description = await new Promise<DescribeResponse>((resolve, reject) => {
      client.makeUnaryRequest(
        tunnelServiceDefinition.describe.path,
        tunnelServiceDefinition.describe.requestSerialize,
        tunnelServiceDefinition.describe.responseDeserialize,
        create(DescribeRequestSchema, { connection: options.connection }),
        meta,
        { deadline: Date.now() + 15_000 },
        (error: ServiceError | null, value?: DescribeResponse) => (error || value === undefined ? reject(error) : resolve(value)),
      );
    });
  } catch (error) {
    client.close();
    const details = (error as ServiceError).details || (error as Error).message;
    throw new ConnectError(`gateway \`${options.gateway}\` refused connection \`${options.connection}\`: ${details}`, { cause: error });
  }

  const sockets = new Set<Socket>();
  const server: Server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    relay(socket).catch((error: unknown) => {
      log(`connection from ${socket.remoteAddress}:${socket.remotePort} failed: ${(error as ServiceError).details || (error as Error).message}`);
      socket.destroy();
    });
  });

  const relay = async (socket: Socket) => {
    socket.pause();
    const call = client.makeBidiStreamRequest(
      tunnelServiceDefinition.open.path,
      tunnelServiceDefinition.open.requestSerialize,
      tunnelServiceDefinition.open.responseDeserialize,
      await metadata(),
    );
    // Local client -> gateway.
    socket.on("data", (chunk: Buffer) => {
      if (!call.write(create(OpenRequestSchema, { data: chunk }))) {
        socket.pause();
        call.once("drain", () => socket.resume());
      }
    });
    socket.on("end", () => call.end());
    socket.on("error", () => call.cancel());
    socket.on("close", () => call.cancel());
    // Gateway -> local client.
    call.on("data", (message: OpenResponse) => {
      if (!socket.write(Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength))) {
        call.pause();
        socket.once("drain", () => call.resume());
      }
    });
    call.on("end", () => socket.end());
    call.on("error", (error: ServiceError) => {
      if (error.code !== 1 /* CANCELLED */) log(`tunnel closed by the gateway: ${error.details || error.message}`);
      socket.destroy();
    });
    socket.resume();
  };

  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) => reject(new ConnectError(`cannot listen on ${options.host}:${options.port}: ${error.message}`)));
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    address: `${address.address}:${address.port}`,
    description,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      client.close();
    },
  };
}
