import type { StatementClass } from "@airlock/policy";
import type { RelationAccess } from "../postgres/facts.js";
import type { TransactionKind } from "../postgres/walk.js";
import { namespaceText, type Namespace } from "./documents.js";

/** Options of analyzeMongo. */
export interface MongoAnalyzeOptions {
  /** The database of a command without `$db` (OP_MSG always carries `$db`; legacy OP_QUERY names it in the collection). */
  readonly database?: string;
  /**
   * The databases the connection may touch. When set, a command that names a namespace in any
   * other database is `dangerous`. Without it, only pipeline stages that reach past the command's
   * own `$db` (`$lookup`, `$graphLookup`, `$unionWith`, `$out`, `$merge` with `{db, coll}`) are.
   */
  readonly databases?: readonly string[];
  /**
   * What a whole-collection read is (`find` with an always-true filter and no limit, an
   * `aggregate` with no `$match`, `$limit`, `$sample` or grouping stage): `read` (the default) or
   * `export`, for connections whose policies treat bulk reads as exports.
   */
  readonly unboundedReads?: "read" | "export";
}

/** What the walk of one command found so far; analyze.ts freezes it into the analysis. */
export interface MongoFacts {
  /** Each reason with the class it stands for. */
  readonly reasons: Map<string, StatementClass>;
  readonly relations: Map<string, RelationAccess>;
  /** Server-side JavaScript operators and commands used (`$where`, `$function`, `mapReduce`...). */
  readonly functions: Set<string>;
  unboundedWrite: boolean;
  copiesData: boolean;
}

/** Empty facts. */
export function createMongoFacts(): MongoFacts {
  return { reasons: new Map(), relations: new Map(), functions: new Set(), unboundedWrite: false, copiesData: false };
}

/** The walk of one command: its facts and where it runs. */
export interface MongoWalk {
  readonly facts: MongoFacts;
  /** The command's `$db`. */
  readonly database: string;
  readonly options: MongoAnalyzeOptions;
  readonly allowed: ReadonlySet<string> | undefined;
  /** The namespace the command is about, when it names one. */
  namespace: Namespace | undefined;
  transaction: TransactionKind | undefined;
  depth: number;
}

/** Thrown when a command cannot be analysed: the analysis is `{ ok: false }` and the command denied. */
export class NotAnalysableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotAnalysableError";
  }
}

/** How deep documents and pipelines may nest before a command is refused (BSON's own limit is 100). */
export const maxDepth = 150;

/** Records a class with the reason for it. */
export function flag(walk: MongoWalk, statementClass: StatementClass, reason: string): void {
  if (!walk.facts.reasons.has(reason)) walk.facts.reasons.set(reason, statementClass);
}

/** `text` in backticks. */
export function quote(text: string): string {
  return `\`${text}\``;
}

/** `db.collection` in backticks. */
export function quoteNamespace(namespace: Namespace): string {
  return quote(namespaceText(namespace));
}

/**
 * Records a namespace the command reads or writes, and what touching it means beyond that:
 * another database (through a pipeline stage, or outside `options.databases`), the user store,
 * stored JavaScript, view definitions.
 *
 * @param via - the pipeline stage that names it, for references that may cross databases
 */
export function addNamespace(walk: MongoWalk, namespace: Namespace, access: "read" | "write", via?: string): void {
  const key = `${namespace.database}\u0000${namespace.collection}\u0000${access}`;
  if (!walk.facts.relations.has(key)) walk.facts.relations.set(key, { schema: namespace.database, name: namespace.collection, access });
  const name = quoteNamespace(namespace);
  if (namespace.database === "*") flag(walk, "dangerous", `${via === undefined ? "the command" : quote(via)} reads every database`);
  else if (walk.allowed !== undefined && !walk.allowed.has(namespace.database)) {
    flag(walk, "dangerous", `${name} is in database ${quote(namespace.database)}, outside the connection's databases`);
  } else if (walk.allowed === undefined && via !== undefined && namespace.database !== walk.database) {
    flag(walk, "dangerous", `${quote(via)} ${access === "read" ? "reads" : "writes"} ${name} in another database`);
  }
  const collection = namespace.collection;
  if (!collection.startsWith("system.")) return;
  if (collection === "system.users" || collection === "system.roles" || collection === "system.keys") {
    flag(walk, "admin", `${access === "read" ? "reads" : "writes"} the user store ${name}`);
  } else if (access === "write") {
    if (collection === "system.js") flag(walk, "dangerous", `writes stored JavaScript in ${name}`);
    else if (collection === "system.views") flag(walk, "ddl", `writes view definitions in ${name}`);
    else flag(walk, "admin", `writes the system collection ${name}`);
  }
}
