import { hostname } from "node:os";
import { Long, Timestamp, UUID, type Document } from "bson";
import type { CommandContext, CommandSpec } from "../context.js";
import { fail } from "../errors.js";
import { sessionKey } from "../sessions.js";
import { speculativeSaslStart } from "./auth.js";
import { integer } from "./util.js";

/**
 * hello, server information, parameters, sessions and transactions.
 * https://www.mongodb.com/docs/manual/reference/command/hello/
 */

/** The version the stand-in reports: MongoDB 7.0, wire version 21. */
export const SERVER_VERSION = "7.0.14";
/** The default maxWireVersion: MongoDB 7.0. */
export const MAX_WIRE_VERSION = 21;

/** Whether a hello asks to wait for a topology change (the streaming monitor protocol). */
export function isAwaitableHello(command: Document): boolean {
  return command.topologyVersion !== undefined && command.maxAwaitTimeMS !== undefined;
}

/** hello, isMaster and ismaster: the handshake, with compression, SASL mechanisms and speculative authentication. */
export async function hello(context: CommandContext, command: Document): Promise<Document> {
  const { server, connection } = context;
  const { settings } = server;
  if (settings.streamingHello && isAwaitableHello(command)) {
    const wait = integer(command, "maxAwaitTimeMS") ?? 10_000;
    await new Promise<void>((resolve) => {
      if (connection.signal.aborted) {
        resolve();
        return;
      }
      const timer = setTimeout(done, wait);
      function done(): void {
        clearTimeout(timer);
        connection.signal.removeEventListener("abort", done);
        resolve();
      }
      connection.signal.addEventListener("abort", done, { once: true });
    });
  }
  const me = `${settings.host}:${settings.port}`;
  const now = new Date();
  const reply: Document = context.name === "hello" ? { isWritablePrimary: true } : { ismaster: true };
  if (settings.streamingHello) reply.topologyVersion = { processId: server.processId, counter: Long.fromNumber(0) };
  if (settings.replicaSet !== undefined) {
    Object.assign(reply, {
      hosts: [me],
      setName: settings.replicaSet,
      setVersion: 1,
      secondary: false,
      primary: me,
      me,
      electionId: server.electionId,
      lastWrite: {
        opTime: { ts: new Timestamp({ t: Math.floor(now.getTime() / 1000), i: 1 }), t: Long.fromNumber(1) },
        lastWriteDate: now,
      },
    });
  }
  Object.assign(reply, {
    maxBsonObjectSize: 16 * 1024 * 1024,
    maxMessageSizeBytes: settings.maxMessageBytes,
    maxWriteBatchSize: 100_000,
    localTime: now,
    logicalSessionTimeoutMinutes: 30,
    connectionId: connection.id,
    minWireVersion: 0,
    maxWireVersion: settings.maxWireVersion,
    readOnly: false,
  });
  if (command.helloOk === true) reply.helloOk = true;
  // Compression is agreed once, in the connection's first handshake.
  if (Array.isArray(command.compression) && connection.compressor === undefined) {
    const agreed = (command.compression as unknown[]).filter((name): name is string => typeof name === "string" && settings.compressors.includes(name));
    if (agreed.length > 0) {
      reply.compression = agreed;
      connection.compressor = agreed[0] as "zlib" | "noop";
    }
  }
  if (typeof command.saslSupportedMechs === "string") {
    const [db = "", ...rest] = command.saslSupportedMechs.split(".");
    const mechanisms = server.users.mechanisms(db, rest.join("."));
    if (mechanisms !== undefined) reply.saslSupportedMechs = mechanisms;
  }
  const speculative = command.speculativeAuthenticate as Document | undefined;
  if (speculative !== undefined && speculative !== null && speculative.saslStart === 1) {
    const started = speculativeSaslStart(context, speculative);
    if (started !== undefined) reply.speculativeAuthenticate = started;
  }
  reply.ok = 1;
  return reply;
}

function buildInfo(): Document {
  return {
    version: SERVER_VERSION,
    gitVersion: "airlock-mongo-test-server",
    modules: [],
    allocator: "system",
    javascriptEngine: "none",
    sysInfo: "deprecated",
    versionArray: [7, 0, 14, 0],
    bits: 64,
    debug: false,
    maxBsonObjectSize: 16 * 1024 * 1024,
    storageEngines: ["inMemory"],
    ok: 1,
  };
}

/** Parameters getParameter knows besides those set with setParameter. */
function parameters(context: CommandContext): Document {
  return {
    featureCompatibilityVersion: { version: "7.0" },
    authenticationMechanisms: ["SCRAM-SHA-1", "SCRAM-SHA-256"],
    javascriptEnabled: false,
    ...Object.fromEntries(context.server.parameters),
  };
}

const PARAMETER_COMMAND_FIELDS = new Set(["getParameter", "setParameter", "$db", "lsid", "$clusterTime", "$readPreference", "comment", "apiVersion", "apiStrict", "apiDeprecationErrors"]);

function getParameter(context: CommandContext, command: Document): Document {
  const known = parameters(context);
  if (command.getParameter === "*" || (typeof command.getParameter === "object" && command.getParameter?.allParameters === true)) return { ...known, ok: 1 };
  const reply: Document = {};
  for (const name of Object.keys(command)) {
    if (PARAMETER_COMMAND_FIELDS.has(name)) continue;
    if (!Object.hasOwn(known, name)) fail("InvalidOptions", "no option found to get");
    reply[name] = known[name];
  }
  reply.ok = 1;
  return reply;
}

function setParameter(context: CommandContext, command: Document): Document {
  const names = Object.keys(command).filter((name) => !PARAMETER_COMMAND_FIELDS.has(name));
  if (names.length === 0) fail("NoSuchKey", "no option found to set, use help:true to see options");
  const known = parameters(context);
  const reply: Document = {};
  for (const name of names) {
    reply.was = known[name] ?? null;
    context.server.parameters.set(name, command[name]);
  }
  reply.ok = 1;
  return reply;
}

function connectionStatus(context: CommandContext): Document {
  const user = context.connection.user;
  return {
    authInfo: {
      authenticatedUsers: user === undefined ? [] : [{ user: user.username, db: user.db }],
      authenticatedUserRoles: user === undefined ? [] : context.server.users.roles(user.db, user.username),
    },
    ok: 1,
  };
}

function serverStatus(context: CommandContext): Document {
  const uptime = Date.now() - context.server.startedAt.getTime();
  return {
    host: `${hostname()}:${context.server.settings.port}`,
    version: SERVER_VERSION,
    process: "mongod",
    pid: Long.fromNumber(process.pid),
    uptime: Math.floor(uptime / 1000),
    uptimeMillis: Long.fromNumber(uptime),
    uptimeEstimate: Long.fromNumber(Math.floor(uptime / 1000)),
    localTime: new Date(),
    connections: { current: context.server.connections.size, available: 1_000_000, totalCreated: context.connection.id },
    ok: 1,
  };
}

function hostInfo(): Document {
  return {
    system: { currentTime: new Date(), hostname: hostname(), cpuAddrSize: 64, numCores: 1, cpuArch: process.arch },
    os: { type: process.platform === "linux" ? "Linux" : process.platform, name: "airlock mongo test server", version: "" },
    extra: {},
    ok: 1,
  };
}

function endSessions(context: CommandContext, command: Document): Document {
  const ids = Array.isArray(command.endSessions) ? command.endSessions : [];
  for (const lsid of ids) {
    const key = sessionKey(lsid);
    if (key !== undefined) context.server.sessions.end(key);
  }
  return { ok: 1 };
}

function commitTransaction(context: CommandContext): Document {
  const transaction = context.transaction;
  if (transaction === undefined) fail("InvalidOptions", "commitTransaction must be run within a transaction");
  if (transaction.state === "committed") return { ok: 1 };
  try {
    transaction.store.commit();
  } catch (error) {
    transaction.state = "aborted";
    throw error;
  }
  transaction.state = "committed";
  for (const change of transaction.changes) context.server.changes.record(change);
  return { ok: 1 };
}

function abortTransaction(context: CommandContext): Document {
  const transaction = context.transaction;
  if (transaction === undefined) fail("InvalidOptions", "abortTransaction must be run within a transaction");
  transaction.state = "aborted";
  return { ok: 1 };
}

function replSetGetStatus(context: CommandContext): Document {
  const { settings } = context.server;
  if (settings.replicaSet === undefined) fail("NoReplicationEnabled", "not running with --replSet");
  const now = new Date();
  return {
    set: settings.replicaSet,
    date: now,
    myState: 1,
    term: Long.fromNumber(1),
    members: [{ _id: 0, name: `${settings.host}:${settings.port}`, health: 1, state: 1, stateStr: "PRIMARY", uptime: Math.floor((now.getTime() - context.server.startedAt.getTime()) / 1000), self: true }],
    ok: 1,
  };
}

/** Handshake, server, parameter, session and transaction commands by name. */
export const adminCommands: Record<string, CommandSpec> = {
  hello: { run: hello, privilege: "none" },
  isMaster: { run: hello, privilege: "none" },
  ismaster: { run: hello, privilege: "none" },
  ping: { run: () => ({ ok: 1 }), privilege: "none" },
  buildInfo: { run: buildInfo, privilege: "none" },
  buildinfo: { run: buildInfo, privilege: "none" },
  connectionStatus: { run: connectionStatus, privilege: "none" },
  whatsmyuri: { run: (context) => ({ you: context.connection.remote, ok: 1 }), privilege: "none" },
  getParameter: { run: getParameter, privilege: "authenticated" },
  setParameter: { run: setParameter, privilege: "cluster" },
  getCmdLineOpts: { run: (context) => ({ argv: ["mongod", "--port", String(context.server.settings.port)], parsed: { net: { port: context.server.settings.port } }, ok: 1 }), privilege: "cluster" },
  getLog: {
    run: (_context, command) => (command.getLog === "*" ? { names: ["global", "startupWarnings"], ok: 1 } : { totalLinesWritten: 0, log: [], ok: 1 }),
    privilege: "cluster",
  },
  hostInfo: { run: hostInfo, privilege: "authenticated" },
  serverStatus: { run: serverStatus, privilege: "authenticated" },
  currentOp: { run: () => ({ inprog: [], ok: 1 }), privilege: "cluster" },
  replSetGetStatus: { run: replSetGetStatus, privilege: "cluster" },
  killOp: { run: () => ({ info: "attempting to kill op", ok: 1 }), privilege: "cluster" },
  fsync: { run: () => ({ numFiles: 1, ok: 1 }), privilege: "cluster" },
  endSessions: { run: endSessions, privilege: "none" },
  startSession: { run: () => ({ id: { id: new UUID() }, timeoutMinutes: 30, ok: 1 }), privilege: "authenticated" },
  refreshSessions: { run: () => ({ ok: 1 }), privilege: "authenticated" },
  commitTransaction: { run: commitTransaction, privilege: "authenticated" },
  abortTransaction: { run: abortTransaction, privilege: "authenticated" },
};
