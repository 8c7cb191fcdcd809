import type { Socket } from "node:net";
import type { Document } from "bson";
import { createMongoFramer, mongo, mongoCompressorName, mongoOpcodes, opMsgFlags, opReplyFlags, type MongoFrame, type MongoMessage } from "@airlock/wire";
import { isAwaitableHello } from "./commands/admin.js";
import { commands } from "./commands/index.js";
import type { CommandContext, ConnectionState, ServerState } from "./context.js";
import { CommandError, fail } from "./errors.js";
import { sessionKey, transactionCommands, type Transaction } from "./sessions.js";
import { shellValue } from "./storage.js";
import type { Privilege } from "./users.js";

/** Commands a legacy OP_QUERY may carry since MongoDB 5.1 (the handshake). */
const OP_QUERY_COMMANDS = new Set(["hello", "isMaster", "ismaster"]);
/** Messages queued before the socket is paused. */
const HIGH_WATER = 16;

let nextConnectionId = 0;
let nextRequestId = 0;

/**
 * Serves one client connection: frames and decodes its messages with @airlock/wire, runs them one
 * after the other, and answers in kind (OP_MSG, OP_REPLY to OP_QUERY, compressed when the request
 * was). A message that does not decode closes the connection, as a server does on a protocol error.
 */
export function serveConnection(server: ServerState, socket: Socket): void {
  const abort = new AbortController();
  const connection: ConnectionState = {
    id: ++nextConnectionId,
    remote: `${socket.remoteAddress ?? ""}:${socket.remotePort ?? 0}`,
    user: undefined,
    conversations: new Map(),
    nextConversationId: 0,
    compressor: undefined,
    signal: abort.signal,
  };
  server.connections.add(connection);
  const framer = createMongoFramer({ maxMessageBytes: server.settings.maxMessageBytes });
  const queue: MongoMessage[] = [];
  let running = false;

  socket.setNoDelay(true);
  socket.on("data", (chunk: Buffer) => {
    try {
      queue.push(...framer.push(chunk));
    } catch {
      socket.destroy();
      return;
    }
    if (queue.length >= HIGH_WATER) socket.pause();
    void drain();
  });
  socket.on("error", () => undefined);
  socket.on("close", () => {
    abort.abort();
    server.connections.delete(connection);
  });

  async function drain(): Promise<void> {
    if (running) return;
    running = true;
    try {
      for (let message = queue.shift(); message !== undefined; message = queue.shift()) {
        if (socket.destroyed) return;
        await handle(message);
        if (queue.length < HIGH_WATER / 2 && socket.isPaused()) socket.resume();
      }
    } finally {
      running = false;
    }
  }

  async function handle(message: MongoMessage): Promise<void> {
    let frame: MongoFrame;
    let compressor: "zlib" | "noop" | undefined;
    server.stats.messages++;
    try {
      let bytes = message.bytes;
      if (message.opCode === mongoOpcodes.OP_COMPRESSED) {
        server.stats.compressedMessages++;
        const compressed = mongo.decodeOpCompressed(bytes);
        const name = mongoCompressorName(compressed.compressorId);
        compressor = name === "zlib" || name === "noop" ? name : undefined;
        bytes = mongo.decompressMessage(compressed, { maxMessageBytes: server.settings.maxMessageBytes });
      }
      frame = mongo.decodeMessage(bytes);
    } catch {
      socket.destroy();
      return;
    }
    if (frame.opCode === mongoOpcodes.OP_MSG) {
      let command: Document;
      if (frame.sections.some((section) => section.kind === 1)) server.stats.documentSequenceMessages++;
      try {
        command = mongo.opMsgCommand(frame);
      } catch {
        socket.destroy();
        return;
      }
      const reply = await dispatch(server, connection, command);
      if ((frame.flagBits & opMsgFlags.moreToCome) !== 0) return;
      const exhaust = (frame.flagBits & opMsgFlags.exhaustAllowed) !== 0 && server.settings.streamingHello && isHello(command) && isAwaitableHello(command) && reply.ok === 1;
      let responseTo = frame.requestID;
      const send = async (body: Document, moreToCome: boolean): Promise<number> => {
        const requestID = ++nextRequestId;
        const bytes = mongo.encodeOpMsg(
          { requestID, responseTo, flagBits: moreToCome ? opMsgFlags.moreToCome : 0, body, checksum: frame.opCode === mongoOpcodes.OP_MSG && frame.checksum !== undefined },
          { bson: { ignoreUndefined: true } },
        );
        await write(compressor === undefined ? bytes : mongo.encodeOpCompressed(bytes, compressor));
        return requestID;
      };
      responseTo = await send(reply, exhaust);
      // Exhaust: the server goes on answering the awaitable hello, each reply answering the last,
      // until the client closes the connection.
      while (exhaust && !socket.destroyed) {
        const next = await dispatch(server, connection, command);
        if (socket.destroyed) break;
        responseTo = await send(next, true);
      }
      return;
    }
    if (frame.opCode === mongoOpcodes.OP_QUERY) {
      const reply = await legacyCommand(frame.fullCollectionName, frame.query);
      const bytes = mongo.encodeOpReply(
        { requestID: ++nextRequestId, responseTo: frame.requestID, responseFlags: reply.ok === 0 && reply.$err !== undefined ? opReplyFlags.QueryFailure : 0, documents: [reply] },
        { bson: { ignoreUndefined: true } },
      );
      await write(compressor === undefined ? bytes : mongo.encodeOpCompressed(bytes, compressor));
      return;
    }
    // OP_REPLY, or OP_COMPRESSED wrapping something a client does not send.
    socket.destroy();
  }

  /** An OP_QUERY: only the handshake commands on `<db>.$cmd`. */
  async function legacyCommand(fullCollectionName: string, query: Document): Promise<Document> {
    const dot = fullCollectionName.indexOf(".");
    const db = dot === -1 ? fullCollectionName : fullCollectionName.slice(0, dot);
    if (!fullCollectionName.endsWith(".$cmd")) {
      return { $err: "OP_QUERY is no longer supported for queries. The client driver may require an upgrade.", code: 5739101, ok: 0 };
    }
    // A legacy command may be wrapped as { $query: command, $readPreference }.
    const command = (typeof query.$query === "object" && query.$query !== null ? query.$query : query) as Document;
    const name = Object.keys(command)[0] ?? "";
    if (!OP_QUERY_COMMANDS.has(name)) {
      return new CommandError("UnsupportedOpQueryCommand", `Unsupported OP_QUERY command: ${name}. The client driver may require an upgrade.`).toReply();
    }
    return dispatch(server, connection, { ...command, $db: db });
  }

  function write(bytes: Buffer): Promise<void> {
    if (socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      if (socket.write(bytes)) resolve();
      else {
        const done = (): void => {
          socket.off("drain", done);
          socket.off("close", done);
          resolve();
        };
        socket.once("drain", done);
        socket.once("close", done);
      }
    });
  }
}

function isHello(command: Document): boolean {
  const name = Object.keys(command)[0];
  return name === "hello" || name === "isMaster" || name === "ismaster";
}

/** Runs one command and returns its reply document, success or error. */
export async function dispatch(server: ServerState, connection: ConnectionState, command: Document): Promise<Document> {
  const name = Object.keys(command)[0] ?? "";
  server.stats.commands.set(name, (server.stats.commands.get(name) ?? 0) + 1);
  let transaction: Transaction | undefined;
  try {
    const spec = commands.get(name);
    if (spec === undefined) fail("CommandNotFound", `no such command: '${name}'`);
    const db = command.$db;
    if (typeof db !== "string" || db === "") fail("BadValue", "OP_MSG requests require a $db argument");
    const user = connection.user;
    const authorize = (privilege: Privilege, on: string): void => {
      if (!server.settings.requireAuth) return;
      if (user === undefined) fail("Unauthorized", `Command ${name} requires authentication`);
      const target = privilege === "cluster" ? "admin" : on;
      if (!server.users.allows(user, privilege, target)) fail("Unauthorized", `not authorized on ${target} to execute command { ${name}: ${shellValue(command[name])} }`);
    };
    if (spec.privilege !== "none" && server.settings.requireAuth && user === undefined) fail("Unauthorized", `Command ${name} requires authentication`);
    if (spec.privilege !== "none" && spec.privilege !== "authenticated") authorize(spec.privilege, db);
    if (name === "aggregate" && Array.isArray(command.pipeline)) {
      const last = command.pipeline[command.pipeline.length - 1] as Document | undefined;
      if (last !== undefined && (Object.hasOwn(last, "$out") || Object.hasOwn(last, "$merge"))) authorize("write", db);
    }

    const lsid = sessionKey(command.lsid);
    if (command.autocommit === false || name === "commitTransaction" || name === "abortTransaction") {
      if (server.settings.replicaSet === undefined) fail("IllegalOperation", "Transaction numbers are only allowed on a replica set member or mongos");
      if (lsid === undefined) fail("InvalidOptions", "Transactions require a logical session id (lsid)");
      if (command.autocommit !== false) fail("InvalidOptions", `${name} must be run within a transaction`);
      transaction = server.sessions.transactionFor(lsid, command, name, server.storage);
      if (!transactionCommands.has(name)) fail("OperationNotSupportedInTransaction", `Cannot run '${name}' in a multi-document transaction.`);
    } else if (command.txnNumber !== undefined && server.settings.replicaSet === undefined) {
      fail("IllegalOperation", "Transaction numbers are only allowed on a replica set member or mongos");
    }
    if (lsid !== undefined && transaction === undefined) server.sessions.get(lsid);

    const active = transaction;
    const context: CommandContext = {
      server,
      connection,
      db,
      name,
      store: active?.store ?? server.storage,
      transaction: active,
      owner: user === undefined ? undefined : `${user.db}.${user.username}`,
      emit: (change) => {
        if (active !== undefined) active.changes.push(change);
        else server.changes.record(change);
      },
      authorize,
    };
    const reply = await spec.run(context, command);
    // A write error inside a transaction aborts it, as on a real server.
    if (active !== undefined && active.state === "in_progress" && Array.isArray(reply.writeErrors) && reply.writeErrors.length > 0) active.state = "aborted";
    return reply;
  } catch (error) {
    if (transaction !== undefined && transaction.state === "in_progress") transaction.state = "aborted";
    if (error instanceof CommandError) return error.toReply();
    const message = error instanceof Error ? error.message : String(error);
    return new CommandError("InternalError", message).toReply();
  }
}
