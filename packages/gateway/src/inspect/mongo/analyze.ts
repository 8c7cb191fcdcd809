import type { StatementClass } from "@airlock/policy";
import type { RelationAccess, StatementAnalysis } from "../postgres/analyze.js";
import { analyzeCommandBody } from "./commands.js";
import { commandNameOf, isDocument, namespaceText, type BsonDocument } from "./documents.js";
import { createMongoFacts, NotAnalysableError, type MongoAnalyzeOptions, type MongoWalk } from "./facts.js";
import { commandShape, shapeFingerprint, shapeText } from "./shape.js";

export type { MongoAnalyzeOptions } from "./facts.js";

/** What one MongoDB command does: the PostgreSQL analysis's shape, with where it runs. */
export interface MongoStatementAnalysis extends StatementAnalysis {
  /**
   * The command's shape as JSON: field names, operators, field paths and collection names, every
   * value replaced by `?` (so it carries nothing the client sent); cut at 300 characters.
   */
  readonly text: string;
  /** The command name as sent (`find`, `isMaster`, `findandmodify`). */
  readonly kind: string;
  /** The command's `$db`. */
  readonly database: string;
  /** The namespace (`db.collection`) the command is about, when it names one. */
  readonly namespace?: string;
}

/** The analysis of a command, or why it could not be analysed (then deny it). */
export type MongoAnalysis =
  | {
      readonly ok: true;
      /** One statement: the command. */
      readonly statements: readonly MongoStatementAnalysis[];
      readonly classes: readonly StatementClass[];
      /** 16 hex digits: equal for commands that differ only in values and generic arguments. */
      readonly fingerprint: string;
    }
  | { readonly ok: false; readonly error: string };

const order = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function compareRelations(a: RelationAccess, b: RelationAccess): number {
  return order(a.schema ?? "", b.schema ?? "") || order(a.name, b.name) || order(a.access, b.access);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/**
 * Analyses a MongoDB command as the server reads it: the first field names the command, `$db`
 * the database; document sequences (OP_MSG kind 1, e.g. insert's `documents`) must already be
 * merged into the command as arrays. Classes, namespaces (as relations: `schema` is the
 * database, `name` the collection, `*` for all), unbounded writes, copies, server-side JavaScript
 * and transaction control, as the PostgreSQL analyser reports them, so the same policy decides.
 * Pure and synchronous; the result is frozen. An unknown command, an unknown pipeline stage or a
 * malformed command is `{ ok: false }`: deny it.
 *
 * Classification decisions:
 * - read: find, aggregate without `$out`/`$merge`, count, distinct, getMore, killCursors, catalog
 *   and statistics reads (listCollections, listIndexes, listDatabases, dbStats, collStats),
 *   session and server-level commands (hello, ping, buildInfo, endSessions...), transaction
 *   control, and explain of anything but a pipeline that writes (the server never applies an
 *   explained write).
 * - write: insert, update, delete, findAndModify, bulkWrite, `$out`, `$merge`, mapReduce to a
 *   collection, cross-database renameCollection.
 * - unbounded write: update or bulkWrite update with `multi` and an always-true filter, delete
 *   with `limit: 0` and an always-true filter (see filters.ts), `$out` (it discards the target's
 *   documents), emptycapped. findAndModify touches one document and is never unbounded.
 * - ddl: create (collections and views), drop, dropDatabase, createIndexes, dropIndexes, collMod,
 *   renameCollection, reIndex, convertToCapped, search indexes, writes to `system.views`.
 * - admin: users and roles, parameters, shutdown, fsync, replication and sharding, killOp,
 *   currentOp (and `$currentOp`), getLog and getCmdLineOpts, reads or writes of the user store,
 *   other writes to `system.*` collections.
 * - dangerous: `$where`, `$function`, `$accumulator`, mapReduce, eval, group, applyOps;
 *   authentication commands and `speculativeAuthenticate` (the agent owns the server
 *   connection's identity); impersonation fields; copies from other servers; writes to
 *   `system.js`; a namespace in another database reached through a pipeline stage, or outside
 *   `options.databases`.
 * - export: whole-collection reads, when `options.unboundedReads` is `export`.
 *
 * @throws TypeError when `command` is not a document
 */
export function analyzeMongo(command: BsonDocument, options: MongoAnalyzeOptions = {}): MongoAnalysis {
  if (!isDocument(command)) throw new TypeError("analyzeMongo: `command` must be a document");
  const name = commandNameOf(command);
  if (name === undefined) return deepFreeze({ ok: false, error: "empty command" });
  const database = typeof command.$db === "string" ? command.$db : options.database;
  if (database === undefined || database.length === 0) return deepFreeze({ ok: false, error: `command ${quoteName(name)} names no database (\`$db\`)` });
  const walk: MongoWalk = {
    facts: createMongoFacts(),
    database,
    options,
    allowed: options.databases === undefined ? undefined : new Set(options.databases),
    namespace: undefined,
    transaction: undefined,
    depth: 0,
  };
  try {
    analyzeCommandBody(walk, command, name);
  } catch (error) {
    if (error instanceof NotAnalysableError) return deepFreeze({ ok: false, error: error.message });
    if (error instanceof RangeError) return deepFreeze({ ok: false, error: "command is nested too deeply to analyse" });
    throw error;
  }
  const facts = walk.facts;
  const strong = [...new Set(facts.reasons.values())].filter((value) => value !== "read").sort(order);
  const classes: StatementClass[] = strong.length === 0 ? ["read"] : strong;
  const reasons = [...facts.reasons.keys()].sort(order);
  const shape = commandShape(command);
  const statement: { -readonly [K in keyof MongoStatementAnalysis]: MongoStatementAnalysis[K] } = {
    text: shapeText(shape),
    kind: name,
    classes,
    unboundedWrite: facts.unboundedWrite,
    copiesData: facts.copiesData,
    reasons: reasons.length > 0 ? reasons : [`${quoteName(name)} only reads`],
    relations: [...facts.relations.values()].sort(compareRelations),
    functions: [...facts.functions].sort(order),
    database,
  };
  if (walk.namespace !== undefined) statement.namespace = namespaceText(walk.namespace);
  if (walk.transaction !== undefined) statement.transaction = walk.transaction;
  return deepFreeze({ ok: true, statements: [statement], classes: [...classes], fingerprint: shapeFingerprint(shape) });
}

function quoteName(name: string): string {
  return `\`${name}\``;
}
