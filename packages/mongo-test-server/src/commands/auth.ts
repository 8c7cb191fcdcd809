import { Binary, UUID, type Document } from "bson";
import type { CommandContext, CommandSpec } from "../context.js";
import { CommandError, fail } from "../errors.js";
import { ScramConversation, scramMechanisms, type ScramMechanism } from "../scram.js";
import type { MongoTestRole } from "../users.js";
import { arrayField, integer } from "./util.js";

/**
 * SASL authentication (SCRAM-SHA-1, SCRAM-SHA-256) and user management.
 * https://github.com/mongodb/specifications/blob/master/source/auth/auth.md
 */

/** The conversations of a connection keep the database they authenticate against. */
const conversationDatabases = new WeakMap<ScramConversation, { db: string; skipEmptyExchange: boolean }>();

function payloadBytes(value: unknown): Buffer {
  if (value instanceof Binary) return Buffer.from(value.buffer.subarray(0, value.position));
  if (value instanceof Uint8Array) return Buffer.from(value);
  if (typeof value === "string") return Buffer.from(value, "utf8");
  return fail("BadValue", "SASL payload must be binary data");
}

/** Runs saslStart (also for speculativeAuthenticate in hello); returns its reply. */
export function saslStart(context: CommandContext, command: Document, db: string): Document {
  const mechanism = command.mechanism;
  if (typeof mechanism !== "string" || !scramMechanisms.includes(mechanism as ScramMechanism)) {
    fail("BadValue", `Received authentication for mechanism ${String(mechanism)} which is unknown or not enabled`);
  }
  const users = context.server.users;
  const conversation = new ScramConversation(mechanism as ScramMechanism, (username) => users.credential(db, username, mechanism as ScramMechanism));
  const serverFirst = conversation.start(payloadBytes(command.payload));
  const options = (command.options ?? {}) as Document;
  const id = ++context.connection.nextConversationId;
  context.connection.conversations.set(id, conversation);
  conversationDatabases.set(conversation, { db, skipEmptyExchange: options.skipEmptyExchange === true });
  return { conversationId: id, done: false, payload: new Binary(serverFirst), ok: 1 };
}

function saslContinue(context: CommandContext, command: Document): Document {
  const id = integer(command, "conversationId") ?? 0;
  const conversation = context.connection.conversations.get(id);
  const about = conversation === undefined ? undefined : conversationDatabases.get(conversation);
  if (conversation === undefined || about === undefined) fail("BadValue", "No SASL session state found");
  if (conversation.username !== undefined) {
    // The empty exchange after the server's final message, when the client did not skip it.
    context.connection.conversations.delete(id);
    return { conversationId: id, done: true, payload: new Binary(Buffer.alloc(0)), ok: 1 };
  }
  let serverFinal: Buffer;
  try {
    serverFinal = conversation.finish(payloadBytes(command.payload));
  } catch (error) {
    context.connection.conversations.delete(id);
    throw error;
  }
  const username = conversation.username;
  if (username === undefined) fail("AuthenticationFailed", "Authentication failed.");
  context.connection.user = { db: about.db, username };
  if (about.skipEmptyExchange) context.connection.conversations.delete(id);
  return { conversationId: id, done: about.skipEmptyExchange, payload: new Binary(serverFinal), ok: 1 };
}

function roles(value: unknown): MongoTestRole[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) fail("TypeMismatch", "\"roles\" field must be an array");
  return value.map((role) => {
    if (typeof role === "string") return role as MongoTestRole;
    const named = role as Document;
    return { role: String(named.role), db: String(named.db) } as MongoTestRole;
  });
}

function mechanisms(value: unknown): ScramMechanism[] | undefined {
  if (value === undefined) return undefined;
  const list = arrayField({ mechanisms: value }, "mechanisms").map(String);
  for (const mechanism of list) if (!scramMechanisms.includes(mechanism as ScramMechanism)) fail("BadValue", `Unknown auth mechanism '${mechanism}'`);
  return list as ScramMechanism[];
}

function createUser(context: CommandContext, command: Document): Document {
  const username = command.createUser;
  const password = command.pwd;
  if (typeof username !== "string" || username === "") fail("BadValue", "User name must be a non-empty string");
  if (typeof password !== "string") fail("BadValue", "Must provide a 'pwd' field for all user documents, except those with '$external' as the user's source db");
  const userRoles = roles(command.roles);
  if (userRoles === undefined) fail("BadValue", "\"createUser\" command requires a \"roles\" array");
  const userMechanisms = mechanisms(command.mechanisms);
  context.server.users.add({ username, password, db: context.db, roles: userRoles, ...(userMechanisms === undefined ? {} : { mechanisms: userMechanisms }) });
  return { ok: 1 };
}

function updateUser(context: CommandContext, command: Document): Document {
  const username = command.updateUser;
  if (typeof username !== "string") fail("BadValue", "User name must be a string");
  const change: { password?: string; roles?: MongoTestRole[]; mechanisms?: ScramMechanism[] } = {};
  if (typeof command.pwd === "string") change.password = command.pwd;
  const userRoles = roles(command.roles);
  if (userRoles !== undefined) change.roles = userRoles;
  const userMechanisms = mechanisms(command.mechanisms);
  if (userMechanisms !== undefined) change.mechanisms = userMechanisms;
  context.server.users.update(context.db, username, change);
  return { ok: 1 };
}

function dropUser(context: CommandContext, command: Document): Document {
  const username = command.dropUser;
  if (typeof username !== "string") fail("BadValue", "User name must be a string");
  if (!context.server.users.remove(context.db, username)) fail("UserNotFound", `User '${username}@${context.db}' not found`);
  return { ok: 1 };
}

function usersInfo(context: CommandContext, command: Document): Document {
  const query = command.usersInfo;
  const all = context.server.users.list(query === 1 || query === undefined ? context.db : undefined);
  const wanted = (Array.isArray(query) ? query : [query]).map((entry) =>
    typeof entry === "string" ? { user: entry, db: context.db } : typeof entry === "object" && entry !== null ? (entry as Document) : undefined,
  );
  const users = all.filter((user) => query === 1 || query === undefined || wanted.some((entry) => entry !== undefined && entry.user === user.username && (entry.db ?? context.db) === user.db));
  return {
    users: users.map((user) => ({ _id: `${user.db}.${user.username}`, userId: new UUID(), user: user.username, db: user.db, roles: user.roles, mechanisms: user.mechanisms })),
    ok: 1,
  };
}

function logout(context: CommandContext): Document {
  context.connection.user = undefined;
  return { ok: 1 };
}

/** Authentication and user management commands by name. */
export const authCommands: Record<string, CommandSpec> = {
  saslStart: { run: (context, command) => saslStart(context, command, context.db), privilege: "none" },
  saslContinue: { run: saslContinue, privilege: "none" },
  logout: { run: logout, privilege: "none" },
  createUser: { run: createUser, privilege: "userAdmin" },
  updateUser: { run: updateUser, privilege: "userAdmin" },
  dropUser: { run: dropUser, privilege: "userAdmin" },
  usersInfo: { run: usersInfo, privilege: "authenticated" },
};

/** For hello's speculativeAuthenticate: saslStart's reply without `ok`, or undefined when it failed. */
export function speculativeSaslStart(context: CommandContext, command: Document): Document | undefined {
  const db = typeof command.db === "string" ? command.db : "admin";
  try {
    const { ok: _ok, ...reply } = saslStart(context, command, db);
    return reply;
  } catch (error) {
    if (error instanceof CommandError) return undefined;
    throw error;
  }
}
