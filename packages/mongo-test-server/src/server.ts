import { createServer, type Socket } from "node:net";
import { ObjectId, type Document } from "bson";
import { ChangeLog } from "./changes.js";
import { MAX_WIRE_VERSION } from "./commands/admin.js";
import { serveConnection } from "./connection.js";
import type { ServerState } from "./context.js";
import { Cursors } from "./cursors.js";
import { copy, withId } from "./query.js";
import { Sessions } from "./sessions.js";
import { Storage, type Collection } from "./storage.js";
import { Users, type MongoTestUser } from "./users.js";

/** Options of {@link startMongoTestServer}. */
export interface MongoTestServerOptions {
  /** Users that can authenticate (SCRAM-SHA-256 and SCRAM-SHA-1 unless a user says otherwise). */
  readonly users?: readonly MongoTestUser[];
  /** Port to listen on; 0 (an ephemeral port) when absent. */
  readonly port?: number;
  /** Address to listen on; 127.0.0.1 when absent. */
  readonly host?: string;
  /** Refuse commands (other than the handshake, authentication and ping) before authentication; true when there are users. */
  readonly requireAuth?: boolean;
  /**
   * The replica set name hello reports, which makes the driver use sessions, retryable writes,
   * transactions and change streams; false for a standalone that refuses them. "rs0" when absent.
   */
  readonly replicaSet?: string | false;
  /** Compressors agreed when a client asks for them; ["zlib"] when absent. Snappy and zstd are not available. */
  readonly compressors?: readonly ("zlib" | "noop")[];
  /** Report a topologyVersion and answer awaitable hello after maxAwaitTimeMS, streaming with exhaustAllowed; true when absent. */
  readonly streamingHello?: boolean;
  /** PBKDF2 iterations of the users' SCRAM credentials; MongoDB's defaults (10,000 and 15,000) when absent. */
  readonly scramIterations?: { readonly sha1?: number; readonly sha256?: number };
  /** Largest message accepted (maxMessageSizeBytes); 48,000,000 when absent. */
  readonly maxMessageBytes?: number;
  /**
   * The maxWireVersion hello reports, 17 (6.0) to 25 (8.0); 21 (7.0) when absent. 25 makes the
   * driver's client.bulkWrite send the bulkWrite command with OP_MSG document sequences.
   */
  readonly maxWireVersion?: number;
}

/** Direct access to the server's data, for tests to seed it and to check what a command changed. */
export interface MongoTestDatabases {
  /** Names of the databases that exist. */
  names(): string[];
  /** Names of the collections of a database. */
  collectionNames(db: string): string[];
  /** Copies of a collection's documents, in natural order; [] when it does not exist. */
  documents(db: string, collection: string): Document[];
  /** Number of documents in a collection. */
  count(db: string, collection: string): number;
  /** Inserts documents without going through the wire (an _id is added where missing); unique indexes apply. */
  insert(db: string, collection: string, documents: readonly Document[]): void;
  /** Index specifications of a collection; [] when it does not exist. */
  indexes(db: string, collection: string): Document[];
  /** Drops a collection, or a whole database when `collection` is absent. */
  drop(db: string, collection?: string): void;
  /** A copy of a collection's options (capped, validator, ...); undefined when it does not exist. */
  options(db: string, collection: string): Document | undefined;
  /** The users, with their roles and SCRAM mechanisms (never their credentials), sorted by database and name. */
  users(): { username: string; db: string; roles: { role: string; db: string }[]; mechanisms: string[] }[];
  /** Server parameters set with setParameter. */
  parameters(): Document;
}

/** Counters of what reached the server. */
export interface MongoTestServerStats {
  readonly messages: number;
  readonly compressedMessages: number;
  readonly documentSequenceMessages: number;
  readonly commands: ReadonlyMap<string, number>;
}

/** A running stand-in. */
export interface MongoTestServer {
  readonly host: string;
  readonly port: number;
  /** `mongodb://host:port/?directConnection=true`, without credentials. */
  readonly uri: string;
  /** A connection string with credentials (percent-encoded) and optional query options such as authMechanism. */
  uriFor(user: { readonly username: string; readonly password: string }, options?: Readonly<Record<string, string>>): string;
  readonly databases: MongoTestDatabases;
  /** Open client connections. */
  readonly connectionCount: number;
  /** Open server cursors. */
  readonly cursorCount: number;
  /** What reached the server: messages, compressed ones, ones with document sequences, commands by name. */
  readonly stats: MongoTestServerStats;
  /** Closes every client connection and stops listening. */
  close(): Promise<void>;
}

/** Starts a MongoDB stand-in on TCP; resolves once it listens. */
export async function startMongoTestServer(options: MongoTestServerOptions = {}): Promise<MongoTestServer> {
  const users = new Users({ "SCRAM-SHA-1": options.scramIterations?.sha1 ?? 10_000, "SCRAM-SHA-256": options.scramIterations?.sha256 ?? 15_000 });
  for (const user of options.users ?? []) users.add(user);
  const host = options.host ?? "127.0.0.1";
  const maxWireVersion = options.maxWireVersion ?? MAX_WIRE_VERSION;
  if (!Number.isInteger(maxWireVersion) || maxWireVersion < 17 || maxWireVersion > 25) throw new TypeError("options.maxWireVersion must be an integer in 17..25");
  const state: ServerState = {
    settings: {
      host,
      port: 0,
      replicaSet: options.replicaSet === false ? undefined : (options.replicaSet ?? "rs0"),
      requireAuth: options.requireAuth ?? users.size > 0,
      compressors: options.compressors ?? ["zlib"],
      streamingHello: options.streamingHello ?? true,
      maxMessageBytes: options.maxMessageBytes ?? 48_000_000,
      maxWireVersion,
    },
    storage: new Storage(),
    users,
    cursors: new Cursors(),
    sessions: new Sessions(),
    changes: new ChangeLog(),
    parameters: new Map(),
    processId: new ObjectId(),
    electionId: new ObjectId("7fffffff0000000000000001"),
    startedAt: new Date(),
    connections: new Set(),
    stats: { messages: 0, compressedMessages: 0, documentSequenceMessages: 0, commands: new Map() },
  };
  const sockets = new Set<Socket>();
  const listener = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    serveConnection(state, socket);
  });
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(options.port ?? 0, host, () => {
      listener.off("error", reject);
      resolve();
    });
  });
  const address = listener.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  state.settings.port = port;
  const authority = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  const uri = `mongodb://${authority}/?directConnection=true`;

  const collection = (db: string, name: string): Collection | undefined => state.storage.collection(db, name);
  const databases: MongoTestDatabases = {
    names: () => [...state.storage.databases.keys()].sort(),
    collectionNames: (db) => [...(state.storage.databases.get(db)?.collections.keys() ?? [])].sort(),
    documents: (db, name) => (collection(db, name)?.documents ?? []).map((document) => copy(document)),
    count: (db, name) => collection(db, name)?.documents.length ?? 0,
    insert: (db, name, documents) => {
      const target = state.storage.ensureCollection(db, name);
      for (const document of documents) target.insert(withId(copy(document)));
    },
    indexes: (db, name) => (collection(db, name)?.indexes ?? []).map((index) => ({ ...index })),
    drop: (db, name) => {
      if (name !== undefined) state.storage.dropCollection(db, name);
      else state.storage.databases.delete(db);
    },
    options: (db, name) => {
      const found = collection(db, name);
      return found === undefined ? undefined : copy(found.options);
    },
    users: () =>
      state.users
        .list(undefined)
        .map((user) => ({ username: user.username, db: user.db, roles: user.roles.map((role) => ({ ...role })), mechanisms: [...user.mechanisms] }))
        .sort((a, b) => `${a.db}.${a.username}`.localeCompare(`${b.db}.${b.username}`)),
    parameters: () => copy(Object.fromEntries(state.parameters)),
  };

  let closing: Promise<void> | undefined;
  return {
    host,
    port,
    uri,
    uriFor(user, query = {}) {
      const params = new URLSearchParams({ directConnection: "true", ...query });
      return `mongodb://${encodeURIComponent(user.username)}:${encodeURIComponent(user.password)}@${authority}/?${params.toString()}`;
    },
    databases,
    get connectionCount() {
      return sockets.size;
    },
    get cursorCount() {
      return state.cursors.size;
    },
    stats: state.stats,
    close() {
      closing ??= new Promise<void>((resolve) => {
        listener.close(() => resolve());
        for (const socket of sockets) socket.destroy();
        state.cursors.clear();
        state.sessions.clear();
      });
      return closing;
    },
  };
}
