import { createMongoFramer, mongo, mongoOpcodes, type MongoMessage } from "@airlock/wire";
import { BSON, MongoClient, type Document, type MongoClientOptions } from "mongodb";
import { readdirSync, readFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import type { Harness } from "../support/harness.js";

const { EJSON } = BSON;

// Helpers of the MongoDB end-to-end proofs (mongo-policy*.test.ts): driver clients, a raw OP_MSG
// client, a snapshot of the stand-in's whole state, a capturing TCP proxy and the recordings.

/** The documents of these tests: numbers as `_id` (the driver's default schema says ObjectId). */
export interface Numbered extends Document {
  _id: number;
}

/** A driver client on the harness's native listener, logged in by MONGODB-OIDC with a token of `claims`. */
export async function oidcClient(harness: Harness, claims: Record<string, unknown> = {}, options: MongoClientOptions = {}, address = harness.native): Promise<MongoClient> {
  const token = await harness.token(claims);
  return MongoClient.connect(`mongodb://${address.host}:${address.port}/?authMechanism=MONGODB-OIDC&directConnection=true`, {
    serverSelectionTimeoutMS: 5_000,
    authMechanismProperties: { OIDC_CALLBACK: async () => ({ accessToken: token }) },
    ...options,
  });
}

/** A driver client straight to the stand-in, as the agent's account (no gateway): to set up and to look. */
export async function directClient(harness: Harness): Promise<MongoClient> {
  const uri = harness.mongo?.uriFor({ username: "airlock_e2e_svc", password: harness.dbPassword });
  if (uri === undefined) throw new Error("the harness has no MongoDB stand-in");
  return MongoClient.connect(uri, { serverSelectionTimeoutMS: 5_000 });
}

/** One message received on a raw connection. */
export interface RawReply {
  readonly opCode: number;
  readonly responseTo: number;
  readonly body: Document;
}

/** A client that speaks OP_MSG by hand: sends exactly the bytes a test builds. */
export class RawMongo {
  readonly socket: Socket;
  readonly #framer = createMongoFramer({ maxMessageBytes: 64 << 20 });
  readonly #replies: RawReply[] = [];
  #waiters: (() => void)[] = [];
  #requestId = 100;
  closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      try {
        for (const message of this.#framer.push(chunk)) this.#replies.push(decodeReply(message));
      } catch (error) {
        this.#replies.push({ opCode: -1, responseTo: -1, body: { framing: (error as Error).message } });
      }
      this.#wake();
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.closed = true;
      this.#wake();
    });
  }

  static async open(address: { host: string; port: number }): Promise<RawMongo> {
    const socket = connect(address.port, address.host);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return new RawMongo(socket);
  }

  /** Opens a connection and logs in by MONGODB-OIDC with the token: one saslStart. */
  static async login(address: { host: string; port: number }, token: string): Promise<RawMongo> {
    const raw = await RawMongo.open(address);
    const reply = await raw.command({ saslStart: 1, mechanism: "MONGODB-OIDC", payload: new BSON.Binary(BSON.serialize({ jwt: token })), $db: "$external" });
    if (reply.ok !== 1 || reply.done !== true) throw new Error(`the login failed: ${EJSON.stringify(reply)}`);
    return raw;
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter();
  }

  /** Writes bytes as they are. */
  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Sends a command (with its `$db`) as one OP_MSG body section and returns the reply's body. */
  async command(command: Document): Promise<Document> {
    const requestID = ++this.#requestId;
    this.write(mongo.encodeOpMsg({ requestID, responseTo: 0, body: command }));
    const reply = await this.reply((message) => message.responseTo === requestID);
    if (reply === undefined) throw new Error(`the connection closed before the reply to \`${Object.keys(command)[0] ?? ""}\``);
    return reply.body;
  }

  /** The first message received that `match` accepts, waiting for it; undefined once the connection is closed without it. */
  async reply(match: (reply: RawReply) => boolean = () => true, timeoutMs = 5_000): Promise<RawReply | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const at = this.#replies.findIndex(match);
      if (at !== -1) return this.#replies.splice(at, 1)[0];
      if (this.closed) return undefined;
      if (Date.now() > deadline) throw new Error("no reply in time");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves once the peer has closed the connection (within the timeout), with whatever it sent before. */
  async ended(timeoutMs = 5_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.closed;
  }

  /** Every message received and not taken yet. */
  get pending(): readonly RawReply[] {
    return this.#replies;
  }

  close(): void {
    this.socket.destroy();
  }
}

function decodeReply(message: MongoMessage): RawReply {
  if (message.opCode === mongoOpcodes.OP_MSG) return { opCode: message.opCode, responseTo: message.responseTo, body: mongo.opMsgBody(mongo.decodeOpMsg(message.bytes)) };
  if (message.opCode === mongoOpcodes.OP_REPLY) return { opCode: message.opCode, responseTo: message.responseTo, body: mongo.decodeOpReply(message.bytes).documents[0] ?? {} };
  return { opCode: message.opCode, responseTo: message.responseTo, body: {} };
}

/**
 * The stand-in's whole state, read on the server itself (not through any wire): every database,
 * collection (with its options), document and index, the users, the parameters set.
 */
export function serverState(harness: Harness): Document {
  const databases = harness.mongo?.databases;
  if (databases === undefined) throw new Error("the harness has no MongoDB stand-in");
  const state: Document = { databases: databases.names(), users: databases.users(), parameters: databases.parameters() };
  for (const db of databases.names()) {
    for (const collection of databases.collectionNames(db)) {
      state[`${db}.${collection}`] = { options: databases.options(db, collection), indexes: databases.indexes(db, collection), documents: databases.documents(db, collection) };
    }
  }
  // Canonical Extended JSON keeps types (Int32 vs Double, Long, dates) in the comparison.
  return JSON.parse(EJSON.stringify(state, { relaxed: false })) as Document;
}

/** A TCP proxy that keeps every byte sent each way, to look at what a client received on the wire. */
export interface CapturingProxy {
  readonly address: { host: string; port: number };
  /** Everything the upstream sent to clients since `mark`, in order, per connection concatenated. */
  received(since?: number): Buffer;
  /** A position in the capture, for {@link CapturingProxy.received}. */
  mark(): number;
  close(): Promise<void>;
}

/** Starts a proxy in front of `upstream` that records what goes back to the clients. */
export async function startCapturingProxy(upstream: { host: string; port: number }): Promise<CapturingProxy> {
  const chunks: { connection: number; bytes: Buffer }[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((client) => {
    const id = ++connections;
    const server = connect(upstream.port, upstream.host);
    sockets.add(client).add(server);
    client.pipe(server);
    server.on("data", (chunk: Buffer) => {
      chunks.push({ connection: id, bytes: Buffer.from(chunk) });
      client.write(chunk);
    });
    const end = () => {
      client.destroy();
      server.destroy();
      sockets.delete(client);
      sockets.delete(server);
    };
    client.on("close", end).on("error", end);
    server.on("close", end).on("error", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    address: { host: "127.0.0.1", port },
    mark: () => chunks.length,
    received(since = 0) {
      // Grouped per connection so messages stay whole for decoding.
      const byConnection = new Map<number, Buffer[]>();
      for (const chunk of chunks.slice(since)) byConnection.set(chunk.connection, [...(byConnection.get(chunk.connection) ?? []), chunk.bytes]);
      return Buffer.concat([...byConnection.values()].map((list) => Buffer.concat(list)));
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * The bodies of the messages in a byte stream that holds whole messages one after another (the
 * capture of one connection). Messages cut at the end of the capture are left out.
 */
export function decodeStream(bytes: Buffer): Document[] {
  const bodies: Document[] = [];
  let at = 0;
  while (at + 16 <= bytes.length) {
    const length = bytes.readInt32LE(at);
    if (length < 16 || at + length > bytes.length) break;
    const message = bytes.subarray(at, at + length);
    const opCode = message.readInt32LE(12);
    if (opCode === mongoOpcodes.OP_MSG) {
      const decoded = mongo.decodeOpMsg(message);
      bodies.push(mongo.opMsgBody(decoded));
      for (const section of decoded.sections) if (section.kind === 1) bodies.push(...section.documents);
    } else if (opCode === mongoOpcodes.OP_REPLY) bodies.push(...mongo.decodeOpReply(message).documents);
    at += length;
  }
  return bodies;
}

/** One line of a recording. */
export interface RecordLine {
  readonly type: string;
  readonly [field: string]: unknown;
}

/** The recording of a session under the harness's folder (recordings/YYYY-MM-DD/<session>.jsonl). */
export function recordingOf(harness: Harness, session: string): { text: string; lines: RecordLine[]; file: string } {
  for (const day of readdirSync(join(harness.dir, "recordings"))) {
    const file = join(harness.dir, "recordings", day, `${session}.jsonl`);
    try {
      const text = readFileSync(file, "utf8");
      return { text, file, lines: text.trim().split("\n").map((line) => JSON.parse(line) as RecordLine) };
    } catch {
      // another day's folder
    }
  }
  throw new Error(`no recording of session ${session}`);
}

/** Waits until the store says the session ended (the recording is then sealed). */
export async function sessionEnded(harness: Harness, session: string): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if ((await harness.gateway.store.getSession(session))?.endedAt !== undefined) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`session ${session} did not end`);
}
