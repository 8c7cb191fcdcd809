/**
 * The commands the gateway knows, each with what it does. A command missing here is unknown and
 * denied: the server's command set grows with every release, and a new command is not a read
 * until someone says so.
 * https://www.mongodb.com/docs/manual/reference/command/
 */
import { isDocument, isTruthyFlag, numberOf, splitNamespace, type BsonDocument, type Namespace } from "./documents.js";
import { alwaysTrue } from "./filters.js";
import { addNamespace, createMongoFacts, flag, NotAnalysableError, quote, quoteNamespace, type MongoWalk } from "./facts.js";
import { scanJavascript, walkPipeline } from "./pipeline.js";

type Handler = (walk: MongoWalk, command: BsonDocument, name: string) => void;

/** The collection named by the command's first field. */
function collectionOf(walk: MongoWalk, command: BsonDocument, name: string): Namespace {
  const value = command[name];
  if (typeof value !== "string" || value.length === 0) throw new NotAnalysableError(`${quote(name)} must name a collection`);
  const namespace = { database: walk.database, collection: value };
  walk.namespace ??= namespace;
  return namespace;
}

/** A full namespace `db.collection` in a field. */
function fullNamespace(command: BsonDocument, field: string): Namespace {
  const value = command[field];
  const namespace = typeof value === "string" ? splitNamespace(value) : undefined;
  if (namespace === undefined) throw new NotAnalysableError(`${quote(field)} must be a namespace \`db.collection\``);
  return namespace;
}

function plain(statementClass: "read" | "admin" | "dangerous" | "ddl", reason: string): Handler {
  return (walk) => flag(walk, statementClass, reason);
}

/** Scans every field but the ones that hold stored data. */
function scanFields(walk: MongoWalk, command: BsonDocument, skip: ReadonlySet<string> = new Set()): void {
  for (const field in command) if (!skip.has(field)) scanJavascript(walk, command[field]);
}

function readCollection(verb: string): Handler {
  return (walk, command, name) => {
    const namespace = collectionOf(walk, command, name);
    addNamespace(walk, namespace, "read");
    flag(walk, "read", `${quote(name)} ${verb} ${quoteNamespace(namespace)}`);
    scanFields(walk, command);
  };
}

function ddlOnCollection(verb: string): Handler {
  return (walk, command, name) => {
    const namespace = collectionOf(walk, command, name);
    addNamespace(walk, namespace, "write");
    flag(walk, "ddl", `${quote(name)} ${verb} ${quoteNamespace(namespace)}`);
    scanFields(walk, command);
  };
}

/** The update statements of an `update` command. */
function updateCommand(walk: MongoWalk, command: BsonDocument, name: string): void {
  const namespace = collectionOf(walk, command, name);
  addNamespace(walk, namespace, "write");
  flag(walk, "write", `\`update\` writes ${quoteNamespace(namespace)}`);
  const updates = command.updates;
  if (!Array.isArray(updates)) throw new NotAnalysableError("`update` must carry `updates`");
  for (const statement of updates) {
    if (!isDocument(statement)) throw new NotAnalysableError("each of `updates` must be a document");
    scanJavascript(walk, statement.q);
    updateModifications(walk, statement.u, namespace);
    scanJavascript(walk, statement.arrayFilters);
    if (isTruthyFlag(statement.multi) && alwaysTrue(statement.q)) {
      walk.facts.unboundedWrite = true;
      flag(walk, "write", `\`update\` with \`multi\` and ${filterWords(statement.q)} on ${quoteNamespace(namespace)}`);
    }
  }
  scanFields(walk, command, new Set(["updates"]));
}

/** An update document or update pipeline. */
function updateModifications(walk: MongoWalk, modifications: unknown, namespace: Namespace): void {
  if (Array.isArray(modifications)) {
    walkPipeline(walk, modifications, { database: namespace.database, collection: namespace.collection, depth: 1 });
    scanJavascript(walk, modifications);
  } else if (isDocument(modifications)) {
    // A replacement document is data; operators ($set, $inc...) are only scanned for JavaScript.
    if (Object.keys(modifications).some((key) => key.startsWith("$"))) scanJavascript(walk, modifications);
  }
}

function filterWords(filter: unknown): string {
  if (filter === undefined || filter === null || (isDocument(filter) && Object.keys(filter).length === 0)) return "an empty filter";
  return "an always-true filter";
}

function deleteCommand(walk: MongoWalk, command: BsonDocument, name: string): void {
  const namespace = collectionOf(walk, command, name);
  addNamespace(walk, namespace, "write");
  flag(walk, "write", `\`delete\` removes from ${quoteNamespace(namespace)}`);
  const deletes = command.deletes;
  if (!Array.isArray(deletes)) throw new NotAnalysableError("`delete` must carry `deletes`");
  for (const statement of deletes) {
    if (!isDocument(statement)) throw new NotAnalysableError("each of `deletes` must be a document");
    scanJavascript(walk, statement.q);
    // limit 0 removes every match, limit 1 only the first.
    if ((numberOf(statement.limit) ?? 0) === 0 && alwaysTrue(statement.q)) {
      walk.facts.unboundedWrite = true;
      flag(walk, "write", `\`delete\` with ${filterWords(statement.q)} and no limit on ${quoteNamespace(namespace)}`);
    }
  }
  scanFields(walk, command, new Set(["deletes"]));
}

function insertCommand(walk: MongoWalk, command: BsonDocument, name: string): void {
  const namespace = collectionOf(walk, command, name);
  addNamespace(walk, namespace, "write");
  flag(walk, "write", `\`insert\` writes ${quoteNamespace(namespace)}`);
  if (!Array.isArray(command.documents)) throw new NotAnalysableError("`insert` must carry `documents`");
  scanFields(walk, command, new Set(["documents"]));
}

function findAndModifyCommand(walk: MongoWalk, command: BsonDocument, name: string): void {
  const namespace = collectionOf(walk, command, name);
  addNamespace(walk, namespace, "write");
  const removes = isTruthyFlag(command.remove);
  flag(walk, "write", `${quote(name)} ${removes ? "removes a document from" : "updates a document of"} ${quoteNamespace(namespace)}`);
  scanJavascript(walk, command.query);
  scanJavascript(walk, command.fields);
  scanJavascript(walk, command.sort);
  scanJavascript(walk, command.arrayFilters);
  scanJavascript(walk, command.let);
  if (command.update !== undefined) updateModifications(walk, command.update, namespace);
}

function bulkWriteCommand(walk: MongoWalk, command: BsonDocument): void {
  const nsInfo = command.nsInfo;
  const ops = command.ops;
  if (!Array.isArray(nsInfo) || !Array.isArray(ops)) throw new NotAnalysableError("`bulkWrite` must carry `ops` and `nsInfo`");
  const namespaces = nsInfo.map((entry) => {
    if (!isDocument(entry)) throw new NotAnalysableError("each of `nsInfo` must be a document");
    return fullNamespace(entry, "ns");
  });
  for (const namespace of namespaces) {
    addNamespace(walk, namespace, "write");
    flag(walk, "write", `\`bulkWrite\` writes ${quoteNamespace(namespace)}`);
  }
  for (const op of ops) {
    if (!isDocument(op)) throw new NotAnalysableError("each of `ops` must be a document");
    const kind = Object.keys(op)[0];
    const namespace = namespaces[numberOf(op[kind ?? ""]) ?? -1];
    if (namespace === undefined || (kind !== "insert" && kind !== "update" && kind !== "delete")) {
      throw new NotAnalysableError("each of `ops` must be an insert, update or delete of a namespace of `nsInfo`");
    }
    walk.namespace ??= namespace;
    if (kind === "insert") continue;
    scanJavascript(walk, op.filter);
    scanJavascript(walk, op.arrayFilters);
    if (kind === "update") updateModifications(walk, op.updateMods, namespace);
    if (isTruthyFlag(op.multi) && alwaysTrue(op.filter)) {
      walk.facts.unboundedWrite = true;
      flag(walk, "write", `\`bulkWrite\` ${kind} with \`multi\` and ${filterWords(op.filter)} on ${quoteNamespace(namespace)}`);
    }
  }
}

function findCommand(walk: MongoWalk, command: BsonDocument, name: string): void {
  readCollection("reads")(walk, command, name);
  const limit = numberOf(command.limit) ?? 0;
  if (walk.options.unboundedReads === "export" && alwaysTrue(command.filter) && limit === 0 && !isTruthyFlag(command.singleBatch)) {
    flag(walk, "export", `\`find\` reads all of ${quoteNamespace(walk.namespace as Namespace)} with no limit`);
  }
}

function aggregateCommand(walk: MongoWalk, command: BsonDocument): void {
  const target = command.aggregate;
  let collection: string | undefined;
  if (typeof target === "string" && target.length > 0) collection = target;
  else if (numberOf(target) !== 1) throw new NotAnalysableError("`aggregate` must name a collection or be 1");
  if (collection !== undefined) {
    const namespace = { database: walk.database, collection };
    walk.namespace ??= namespace;
    addNamespace(walk, namespace, "read");
    flag(walk, "read", `\`aggregate\` reads ${quoteNamespace(namespace)}`);
  } else flag(walk, "read", `\`aggregate\` on database ${quote(walk.database)}`);
  if (isTruthyFlag(command.explain)) {
    // aggregate with explain: true plans the pipeline without running it.
    explainInner(walk, { ...command, explain: undefined }, "queryPlanner");
    return;
  }
  const unbounded = walkPipeline(walk, command.pipeline, { database: walk.database, collection, depth: 1 });
  scanFields(walk, command);
  if (walk.options.unboundedReads === "export" && unbounded && collection !== undefined) {
    flag(walk, "export", `\`aggregate\` reads all of ${quote(`${walk.database}.${collection}`)} with no match or limit`);
  }
}

/** Commands `explain` accepts. */
const explainable: ReadonlySet<string> = new Set(["find", "aggregate", "count", "distinct", "update", "delete", "findAndModify", "findandmodify", "mapReduce"]);
const explainedWrites: ReadonlySet<string> = new Set(["update", "delete", "findAndModify", "findandmodify"]);

function explainCommand(walk: MongoWalk, command: BsonDocument): void {
  const inner = command.explain;
  if (!isDocument(inner)) throw new NotAnalysableError("`explain` must carry a command");
  const verbosity = typeof command.verbosity === "string" ? command.verbosity : "allPlansExecution";
  explainInner(walk, inner, verbosity);
}

/**
 * The facts of an explained command. The server plans it (and, above `queryPlanner`, runs its
 * plan) but never applies a write: explained writes are reads. An explained pipeline with `$out`
 * or `$merge` stays a write unless it is only planned (fail closed). JavaScript stays dangerous.
 */
function explainInner(walk: MongoWalk, inner: BsonDocument, verbosity: string): void {
  const name = Object.keys(inner)[0];
  if (name === undefined || !explainable.has(name)) throw new NotAnalysableError(`\`explain\` of ${quote(name ?? "")} is not analysed`);
  const innerWalk: MongoWalk = { ...walk, facts: createMongoFacts(), namespace: undefined, transaction: undefined, depth: walk.depth + 1 };
  if (innerWalk.depth > 4) throw new NotAnalysableError("`explain` is nested too deeply to analyse");
  analyzeCommandBody(innerWalk, inner, name);
  walk.namespace ??= innerWalk.namespace;
  const planOnly = verbosity === "queryPlanner";
  const dropWrites = explainedWrites.has(name) || planOnly;
  for (const [reason, statementClass] of innerWalk.facts.reasons) {
    if (statementClass === "write" && dropWrites) continue;
    flag(walk, statementClass, reason);
  }
  for (const relation of innerWalk.facts.relations.values()) {
    const access = dropWrites ? "read" : relation.access;
    const key = `${relation.schema ?? ""}\u0000${relation.name}\u0000${access}`;
    if (!walk.facts.relations.has(key)) walk.facts.relations.set(key, { ...relation, access });
  }
  for (const name of innerWalk.facts.functions) walk.facts.functions.add(name);
  if (!dropWrites) {
    walk.facts.unboundedWrite ||= innerWalk.facts.unboundedWrite;
    walk.facts.copiesData ||= innerWalk.facts.copiesData;
  }
  flag(walk, "read", planOnly ? `\`explain\` plans ${quote(name)} without running it` : `\`explain\` of ${quote(name)} does not apply writes`);
}

function mapReduceCommand(walk: MongoWalk, command: BsonDocument, name: string): void {
  const namespace = collectionOf(walk, command, name);
  addNamespace(walk, namespace, "read");
  walk.facts.functions.add("mapReduce");
  flag(walk, "dangerous", "`mapReduce` runs server-side JavaScript");
  const out = command.out;
  const inline = isDocument(out) && isTruthyFlag(out.inline);
  if (!inline && out !== undefined) {
    let target: Namespace | undefined;
    if (typeof out === "string") target = { database: walk.database, collection: out };
    else if (isDocument(out)) {
      const collection = out.replace ?? out.merge ?? out.reduce;
      if (typeof collection === "string") target = { database: typeof out.db === "string" ? out.db : walk.database, collection };
    }
    if (target === undefined) throw new NotAnalysableError("`mapReduce` `out` must name a collection or be inline");
    addNamespace(walk, target, "write", "mapReduce");
    flag(walk, "write", `\`mapReduce\` writes its results into ${quoteNamespace(target)}`);
    walk.facts.copiesData = true;
  }
  scanJavascript(walk, command.query);
}

function createCommand(walk: MongoWalk, command: BsonDocument, name: string): void {
  const namespace = collectionOf(walk, command, name);
  addNamespace(walk, namespace, "write");
  if (command.viewOn !== undefined) {
    if (typeof command.viewOn !== "string") throw new NotAnalysableError("`viewOn` must name a collection");
    const source = { database: walk.database, collection: command.viewOn };
    addNamespace(walk, source, "read");
    flag(walk, "ddl", `\`create\` defines the view ${quoteNamespace(namespace)} on ${quoteNamespace(source)}`);
    walkPipeline(walk, command.pipeline ?? [], { database: walk.database, collection: command.viewOn, depth: 1 });
  } else flag(walk, "ddl", `\`create\` creates ${quoteNamespace(namespace)}`);
  scanFields(walk, command);
}

function collModCommand(walk: MongoWalk, command: BsonDocument, name: string): void {
  const namespace = collectionOf(walk, command, name);
  addNamespace(walk, namespace, "write");
  flag(walk, "ddl", `\`collMod\` changes ${quoteNamespace(namespace)}`);
  if (typeof command.viewOn === "string") addNamespace(walk, { database: walk.database, collection: command.viewOn }, "read");
  if (command.pipeline !== undefined) walkPipeline(walk, command.pipeline, { database: walk.database, collection: typeof command.viewOn === "string" ? command.viewOn : undefined, depth: 1 });
  scanFields(walk, command);
}

function renameCollectionCommand(walk: MongoWalk, command: BsonDocument): void {
  const from = fullNamespace(command, "renameCollection");
  const to = fullNamespace(command, "to");
  walk.namespace ??= from;
  addNamespace(walk, from, "write");
  addNamespace(walk, to, "write");
  flag(walk, "ddl", `\`renameCollection\` renames ${quoteNamespace(from)} to ${quoteNamespace(to)}`);
  if (isTruthyFlag(command.dropTarget)) flag(walk, "ddl", `\`renameCollection\` drops ${quoteNamespace(to)} first`);
  if (from.database !== to.database) {
    // Across databases the server copies every document, then drops the source.
    walk.facts.copiesData = true;
    flag(walk, "write", `\`renameCollection\` copies ${quoteNamespace(from)} into another database`);
  }
}

function cloneCollectionAsCappedCommand(walk: MongoWalk, command: BsonDocument, name: string): void {
  const source = collectionOf(walk, command, name);
  if (typeof command.toCollection !== "string") throw new NotAnalysableError("`toCollection` must name a collection");
  const target = { database: walk.database, collection: command.toCollection };
  addNamespace(walk, source, "read");
  addNamespace(walk, target, "write");
  flag(walk, "ddl", `\`cloneCollectionAsCapped\` creates ${quoteNamespace(target)}`);
  flag(walk, "write", `\`cloneCollectionAsCapped\` copies ${quoteNamespace(source)} into ${quoteNamespace(target)}`);
  walk.facts.copiesData = true;
}

function dropDatabaseCommand(walk: MongoWalk): void {
  const namespace = { database: walk.database, collection: "*" };
  addNamespace(walk, namespace, "write");
  flag(walk, "ddl", `\`dropDatabase\` drops database ${quote(walk.database)}`);
}

function helloCommand(walk: MongoWalk, command: BsonDocument, name: string): void {
  if (command.speculativeAuthenticate !== undefined) {
    flag(walk, "dangerous", `${quote(name)} carries \`speculativeAuthenticate\`: authentication to the server is the agent's`);
  } else flag(walk, "read", `${quote(name)} describes the server`);
}

function usersInfoCommand(walk: MongoWalk, command: BsonDocument): void {
  if (isTruthyFlag(command.showCredentials)) flag(walk, "admin", "`usersInfo` with `showCredentials` reads password hashes");
  else flag(walk, "read", "`usersInfo` reads user definitions");
}

function profileCommand(walk: MongoWalk, command: BsonDocument): void {
  if (numberOf(command.profile) === -1) flag(walk, "read", "`profile` reads the profiling level");
  else flag(walk, "admin", "`profile` changes the database profiler");
}

function transactionCommand(kind: "commit" | "rollback"): Handler {
  return (walk, _command, name) => {
    walk.transaction = kind;
    flag(walk, "read", `${quote(name)} ends the transaction`);
  };
}

const table = new Map<string, Handler>();

function define(names: readonly string[], handler: Handler): void {
  for (const name of names) table.set(name, handler);
}

// Reads of documents.
define(["find"], findCommand);
define(["aggregate"], (walk, command) => aggregateCommand(walk, command));
define(["count"], readCollection("counts documents of"));
define(["distinct"], readCollection("reads distinct values of"));
define(["explain"], (walk, command) => explainCommand(walk, command));
define(["getMore"], (walk, command) => {
  if (typeof command.collection !== "string") throw new NotAnalysableError("`getMore` must name its `collection`");
  const namespace = { database: walk.database, collection: command.collection };
  walk.namespace = namespace;
  addNamespace(walk, namespace, "read");
  flag(walk, "read", `\`getMore\` reads the next batch of a cursor on ${quoteNamespace(namespace)}`);
});
define(["killCursors"], (walk, command, name) => {
  const namespace = collectionOf(walk, command, name);
  addNamespace(walk, namespace, "read");
  flag(walk, "read", `\`killCursors\` closes cursors on ${quoteNamespace(namespace)}`);
});
define(["dataSize"], (walk, command) => {
  const namespace = fullNamespace(command, "dataSize");
  walk.namespace ??= namespace;
  addNamespace(walk, namespace, "read");
  flag(walk, "read", `\`dataSize\` measures ${quoteNamespace(namespace)}`);
});

// Catalog and statistics reads.
define(["listCollections"], (walk, command) => {
  flag(walk, "read", `\`listCollections\` lists the collections of ${quote(walk.database)}`);
  scanFields(walk, command);
});
define(["listIndexes"], readCollection("lists the indexes of"));
define(["listDatabases"], plain("read", "`listDatabases` lists databases"));
define(["dbStats"], plain("read", "`dbStats` reads database statistics"));
define(["collStats"], readCollection("reads statistics of"));
define(["listSearchIndexes"], readCollection("lists the search indexes of"));
define(["dbHash"], plain("read", "`dbHash` hashes the database's collections"));
define(["usersInfo"], (walk, command) => usersInfoCommand(walk, command));
define(["rolesInfo"], plain("read", "`rolesInfo` reads role definitions"));
define(["planCacheListFilters"], readCollection("lists the plan cache filters of"));
define(["profile"], (walk, command) => profileCommand(walk, command));

// Session and server-level commands that touch no data.
define(["hello", "isMaster", "ismaster"], helloCommand);
for (const name of [
  "ping",
  "buildInfo",
  "buildinfo",
  "connectionStatus",
  "whatsmyuri",
  "hostInfo",
  "serverStatus",
  "listCommands",
  "getParameter",
  "getDefaultRWConcern",
  "getClusterParameter",
  "replSetGetStatus",
  "replSetGetConfig",
  "isdbgrid",
  "features",
  "top",
  "connPoolStats",
  "shardingState",
  "balancerStatus",
  "getShardMap",
  "getFreeMonitoringStatus",
  "endSessions",
  "startSession",
  "refreshSessions",
  "killSessions",
  "getLastError",
  "lockInfo",
  "validateDBMetadata",
  "getAuditConfig",
  "atlasVersion",
]) {
  define([name], plain("read", `${quote(name)} touches no documents`));
}
define(["commitTransaction"], transactionCommand("commit"));
define(["abortTransaction"], transactionCommand("rollback"));

// Writes.
define(["insert"], insertCommand);
define(["update"], updateCommand);
define(["delete"], deleteCommand);
define(["findAndModify", "findandmodify"], findAndModifyCommand);
define(["bulkWrite"], (walk, command) => bulkWriteCommand(walk, command));

// Schema changes.
define(["create"], createCommand);
define(["drop"], ddlOnCollection("drops"));
define(["dropDatabase"], (walk) => dropDatabaseCommand(walk));
define(["createIndexes"], ddlOnCollection("creates indexes on"));
define(["dropIndexes", "deleteIndexes"], ddlOnCollection("drops indexes of"));
define(["collMod"], collModCommand);
define(["renameCollection"], (walk, command) => renameCollectionCommand(walk, command));
define(["reIndex"], ddlOnCollection("rebuilds the indexes of"));
define(["convertToCapped"], ddlOnCollection("converts"));
define(["cloneCollectionAsCapped"], cloneCollectionAsCappedCommand);
define(["createSearchIndexes"], ddlOnCollection("creates search indexes on"));
define(["updateSearchIndex"], ddlOnCollection("changes a search index of"));
define(["dropSearchIndex"], ddlOnCollection("drops a search index of"));
define(["setIndexCommitQuorum"], ddlOnCollection("changes the index commit quorum of"));

// Administration: users and roles, server settings, replication, sharding, operations.
const adminReasons: Readonly<Record<string, string>> = {
  createUser: "manages users",
  updateUser: "manages users",
  dropUser: "manages users",
  dropAllUsersFromDatabase: "manages users",
  grantRolesToUser: "grants roles",
  revokeRolesFromUser: "revokes roles",
  createRole: "manages roles",
  updateRole: "manages roles",
  dropRole: "manages roles",
  dropAllRolesFromDatabase: "manages roles",
  grantPrivilegesToRole: "grants privileges",
  revokePrivilegesFromRole: "revokes privileges",
  grantRolesToRole: "grants roles",
  revokeRolesFromRole: "revokes roles",
  invalidateUserCache: "flushes the user cache",
  setParameter: "changes server parameters",
  setClusterParameter: "changes cluster parameters",
  setDefaultRWConcern: "changes the default read and write concern",
  setFeatureCompatibilityVersion: "changes the feature compatibility version",
  getCmdLineOpts: "reads the server's command line and configuration",
  shutdown: "shuts the server down",
  fsync: "flushes and may lock the server",
  fsyncUnlock: "unlocks the server",
  logRotate: "rotates the server log",
  rotateCertificates: "rotates the server's certificates",
  compact: "compacts a collection",
  autoCompact: "changes background compaction",
  validate: "validates a collection and its indexes",
  currentOp: "shows other sessions' operations",
  killOp: "kills an operation",
  killAllSessions: "kills every session",
  killAllSessionsByPattern: "kills sessions",
  dropConnections: "drops the server's outgoing connections",
  replSetReconfig: "reconfigures the replica set",
  replSetInitiate: "initiates a replica set",
  replSetStepDown: "steps the primary down",
  replSetFreeze: "freezes a member",
  replSetMaintenance: "puts a member into maintenance",
  replSetSyncFrom: "changes the sync source",
  replSetResizeOplog: "resizes the oplog",
  addShard: "changes the cluster's shards",
  removeShard: "changes the cluster's shards",
  enableSharding: "changes sharding",
  shardCollection: "changes sharding",
  reshardCollection: "changes sharding",
  refineCollectionShardKey: "changes sharding",
  unshardCollection: "changes sharding",
  moveCollection: "moves a collection between shards",
  movePrimary: "moves a database between shards",
  moveChunk: "moves data between shards",
  moveRange: "moves data between shards",
  splitChunk: "changes sharding",
  split: "changes sharding",
  mergeChunks: "changes sharding",
  balancerStart: "changes the balancer",
  balancerStop: "changes the balancer",
  flushRouterConfig: "flushes the routing table",
  cleanupOrphaned: "deletes orphaned documents",
  clearJumboFlag: "changes sharding",
  planCacheClear: "changes the plan cache",
  planCacheClearFilters: "changes the plan cache",
  planCacheSetFilter: "changes the plan cache",
  setUserWriteBlockMode: "blocks or unblocks writes",
  configureFailPoint: "changes fail points",
  setAuditConfig: "changes auditing",
  logApplicationMessage: "writes to the audit log",
  appendOplogNote: "writes to the oplog",
  startRecordingTraffic: "records the server's traffic",
  stopRecordingTraffic: "stops recording traffic",
  connPoolSync: "flushes connection pools",
  compactStructuredEncryptionData: "compacts encryption data",
  cleanupStructuredEncryptionData: "cleans up encryption data",
  sleep: "holds server locks",
};
for (const [name, words] of Object.entries(adminReasons)) define([name], plain("admin", `${quote(name)} ${words}`));
define(["getLog"], (walk, command) => {
  // mongosh asks for the startup warnings when it connects: server warnings, no commands.
  if (command.getLog === "startupWarnings" || command.getLog === "*") flag(walk, "read", `\`getLog\` reads ${command.getLog === "*" ? "the names of the server logs" : "the server's startup warnings"}`);
  else flag(walk, "admin", "`getLog` reads the server log, which holds other sessions' commands");
});

// Server-side JavaScript, authentication of the server connection, raw replication and copies from other servers.
define(["mapReduce"], mapReduceCommand);
const dangerousReasons: Readonly<Record<string, string>> = {
  eval: "runs server-side JavaScript",
  $eval: "runs server-side JavaScript",
  group: "runs server-side JavaScript",
  applyOps: "applies raw oplog entries to any namespace",
  doTxn: "applies raw oplog entries to any namespace",
  godinsert: "inserts without checks",
  saslStart: "authenticates the server connection: authentication to the server is the agent's",
  saslContinue: "authenticates the server connection: authentication to the server is the agent's",
  authenticate: "authenticates the server connection: authentication to the server is the agent's",
  logout: "changes the server connection's authentication",
  copydbsaslstart: "authenticates to another server",
  copydb: "copies a database from another server",
  clone: "copies a database from another server",
  cloneCollection: "copies a collection from another server",
};
for (const [name, words] of Object.entries(dangerousReasons)) {
  define([name], (walk) => {
    if (name === "eval" || name === "$eval" || name === "group") walk.facts.functions.add(name);
    flag(walk, "dangerous", `${quote(name)} ${words}`);
  });
}
define(["emptycapped"], (walk, command, name) => {
  const namespace = collectionOf(walk, command, name);
  addNamespace(walk, namespace, "write");
  walk.facts.unboundedWrite = true;
  flag(walk, "write", `\`emptycapped\` removes every document of ${quoteNamespace(namespace)}`);
});

/** True when the gateway knows the command. */
export function isKnownCommand(name: string): boolean {
  return table.has(name);
}

/** Fields that make any command run as someone else. */
const impersonation = ["$impersonatedUser", "$impersonatedUsers", "$impersonatedRoles", "$audit"];

/**
 * Walks one command into `walk`: its own handler, then what every command may carry (a transaction
 * start, impersonation fields).
 *
 * @throws NotAnalysableError for an unknown or malformed command
 */
export function analyzeCommandBody(walk: MongoWalk, command: BsonDocument, name: string): void {
  const handler = table.get(name);
  if (handler === undefined) throw new NotAnalysableError(`unknown command ${quote(name)}`);
  handler(walk, command, name);
  if (isTruthyFlag(command.startTransaction)) {
    walk.transaction = "begin";
    flag(walk, "read", "`startTransaction` begins a transaction");
  }
  for (const field of impersonation) {
    if (command[field] !== undefined) flag(walk, "dangerous", `${quote(field)} runs the command as another user`);
  }
}
