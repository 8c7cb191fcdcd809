import type { Document, ObjectId } from "bson";
import type { ChangeInput, ChangeLog } from "./changes.js";
import type { Cursors } from "./cursors.js";
import type { ScramConversation } from "./scram.js";
import type { Sessions, Transaction } from "./sessions.js";
import type { Storage, Store } from "./storage.js";
import type { Privilege, Users } from "./users.js";

/** Settings fixed when the server starts (the port once it listens). */
export interface ServerSettings {
  readonly host: string;
  port: number;
  /** Replica set name the server reports in hello; undefined for a standalone (no transactions, no change streams). */
  readonly replicaSet: string | undefined;
  readonly requireAuth: boolean;
  /** Compressors the server agrees to when a client asks: a subset of ["zlib", "noop"]. */
  readonly compressors: readonly string[];
  /** Answer awaitable hello (topologyVersion + maxAwaitTimeMS) after the wait, and stream it with exhaustAllowed. */
  readonly streamingHello: boolean;
  readonly maxMessageBytes: number;
  /** The maxWireVersion hello reports: 21 (MongoDB 7.0) by default; 25 (8.0) enables the bulkWrite command. */
  readonly maxWireVersion: number;
}

/** Everything the server holds. */
export interface ServerState {
  readonly settings: ServerSettings;
  readonly storage: Storage;
  readonly users: Users;
  readonly cursors: Cursors;
  readonly sessions: Sessions;
  readonly changes: ChangeLog;
  readonly parameters: Map<string, unknown>;
  readonly processId: ObjectId;
  readonly electionId: ObjectId;
  readonly startedAt: Date;
  readonly connections: Set<ConnectionState>;
  readonly stats: ServerStats;
}

/** Counters tests read to see what reached the server. */
export interface ServerStats {
  /** Messages received. */
  messages: number;
  /** Of those, OP_COMPRESSED. */
  compressedMessages: number;
  /** OP_MSG messages with a document sequence (kind 1) section. */
  documentSequenceMessages: number;
  /** Commands run, by name. */
  readonly commands: Map<string, number>;
}

/** One client connection's state. */
export interface ConnectionState {
  readonly id: number;
  readonly remote: string;
  /** The authenticated user. */
  user: { readonly db: string; readonly username: string } | undefined;
  readonly conversations: Map<number, ScramConversation>;
  nextConversationId: number;
  /** The compressor agreed in the handshake. */
  compressor: "zlib" | "noop" | undefined;
  /** Aborts when the connection closes, ending waits (awaitable hello, change stream getMore). */
  readonly signal: AbortSignal;
}

/** What a command handler gets. */
export interface CommandContext {
  readonly server: ServerState;
  readonly connection: ConnectionState;
  /** The command's database ($db). */
  readonly db: string;
  /** The command name (first field of the body). */
  readonly name: string;
  /** Where it reads and writes: the storage, or its transaction's copies. */
  readonly store: Store;
  readonly transaction: Transaction | undefined;
  /** `db.user` of the authenticated user, which owns the cursors it opens. */
  readonly owner: string | undefined;
  /** Logs a change for change streams (at commit, inside a transaction). */
  emit(change: ChangeInput): void;
  /** Throws Unauthorized unless the user holds `privilege` on `db`. */
  authorize(privilege: Privilege, db: string): void;
}

/** Runs a command; throws CommandError for an error reply. */
export type CommandHandler = (context: CommandContext, command: Document) => Document | Promise<Document>;

/** A command: its handler and what the user needs to run it ("none": even before authentication). */
export interface CommandSpec {
  readonly run: CommandHandler;
  readonly privilege: Privilege | "none" | "authenticated";
}
