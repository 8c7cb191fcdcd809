import { create, DescribeResponseSchema, metadataKeys, OpenResponseSchema, Protocol, type DescribeRequest, type DescribeResponse, type OpenRequest, type OpenResponse } from "@airlock/proto";
import { decideConnection } from "@airlock/policy";
import { status, type Metadata, type sendUnaryData, type ServerDuplexStream, type ServerUnaryCall } from "@grpc/grpc-js";
import { Duplex } from "node:stream";
import type { ConnectionConfig } from "../config/schema.js";
import { IdentityError, type Identity } from "../identity/index.js";
import type { GatewayServices } from "../session/context.js";
import { serveMongo } from "../session/mongo-session.js";
import { serveMysql } from "../session/mysql-session.js";
import { servePostgres } from "../session/postgres-session.js";

const PROTOCOLS = { postgres: Protocol.POSTGRES, mysql: Protocol.MYSQL, mongodb: Protocol.MONGODB } as const;

/** A refusal with a gRPC status, for `airlock connect` to print. */
function refusal(code: status, details: string) {
  return Object.assign(new Error(details), { code, details });
}

/** Handlers of TunnelService: `airlock connect` sends the job's token with every call. */
export function createTunnelService(connections: ReadonlyMap<string, ConnectionConfig>, services: GatewayServices) {
  const authorize = async (metadata: Metadata, name: string): Promise<{ identity: Identity; connection: ConnectionConfig }> => {
    const connection = connections.get(name);
    if (connection === undefined) throw refusal(status.NOT_FOUND, `no connection is named \`${name}\``);
    const header = metadata.get(metadataKeys.authorization)[0];
    if (typeof header !== "string" || !header.startsWith("Bearer ")) throw refusal(status.UNAUTHENTICATED, "no token was sent");
    let identity: Identity;
    try {
      identity = await services.verifier.verify(header.slice("Bearer ".length));
    } catch (error) {
      const reason = error instanceof IdentityError ? error.code : "error";
      services.metrics.startupRefusals.inc({ connection: name, reason: `token_${reason}` });
      services.logger.warn({ connection: name, reason, err: (error as Error).message }, "tunnel token refused");
      throw refusal(status.UNAUTHENTICATED, "the token was refused");
    }
    const decision = decideConnection({ principal: identity, connection: name, now: services.now(), policies: services.policies });
    if (decision.effect === "deny") {
      services.metrics.startupRefusals.inc({ connection: name, reason: "policy_denied" });
      services.logger.warn({ connection: name, principal: identity.subject, reasons: decision.reasons }, "tunnel refused by policy");
      throw refusal(status.PERMISSION_DENIED, `access to connection \`${name}\` is not granted to this identity`);
    }
    return { identity, connection };
  };

  return {
    describe(call: ServerUnaryCall<DescribeRequest, DescribeResponse>, callback: sendUnaryData<DescribeResponse>) {
      authorize(call.metadata, call.request.connection).then(
        ({ identity, connection }) =>
          callback(null, create(DescribeResponseSchema, { connection: connection.name, protocol: PROTOCOLS[connection.protocol], subject: identity.subject, groups: identity.groups })),
        (error: Error) => callback(error as Error & { code: status }),
      );
    },
    open(call: ServerDuplexStream<OpenRequest, OpenResponse>) {
      const name = call.metadata.get(metadataKeys.connection)[0];
      call.pause();
      authorize(call.metadata, typeof name === "string" ? name : "").then(
        ({ identity, connection }) => {
          const stream = tunnelStream(call);
          const transport = { kind: "tunnel", remoteAddress: call.getPeer(), identity } as const;
          const mysql = services.mysql.connections.get(connection.name);
          if (mysql !== undefined) {
            serveMysql(stream, { connection, transport }, services, mysql.listener);
            return;
          }
          const mongo = services.mongo.get(connection.name);
          if (mongo !== undefined) {
            serveMongo(stream, { connection, transport }, services, mongo, false);
            return;
          }
          if (connection.protocol !== "postgres") {
            call.destroy(refusal(status.UNIMPLEMENTED, `protocol \`${connection.protocol}\` is not served yet`));
            return;
          }
          servePostgres(stream, { connection, transport }, services);
        },
        (error: Error) => call.destroy(error),
      );
    },
  };
}

/** The tunnel call as a byte stream, with backpressure both ways. */
function tunnelStream(call: ServerDuplexStream<OpenRequest, OpenResponse>): Duplex {
  const stream = new Duplex({
    allowHalfOpen: false,
    read() {
      call.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      if (call.write(create(OpenResponseSchema, { data: chunk }))) callback();
      else call.once("drain", () => callback());
    },
    final(callback) {
      call.end();
      callback();
    },
    destroy(error, callback) {
      call.end();
      callback(error);
    },
  });
  call.on("data", (message: OpenRequest) => {
    if (!stream.push(Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength))) call.pause();
  });
  call.on("end", () => stream.push(null));
  call.on("error", () => stream.destroy());
  call.on("cancelled", () => stream.destroy());
  return stream;
}
