/**
 * What masking a command's reply takes, decided from the command before it runs: the node of the
 * documents it returns, the inferences it makes, the values it compares sensitive fields with,
 * and whether it copies sensitive values where masking does not see them.
 */
import { commandNameOf, isDocument, isTruthyFlag, splitNamespace, type BsonDocument } from "../../inspect/mongo/documents.js";
import type { Inference } from "../lineage/index.js";
import type { MongoMaskCatalog } from "./catalog.js";
import { documentScope } from "./expressions.js";
import { walkFilter, walkSort } from "./filters.js";
import { collectValues, copies, createLineage, inClause, LineageTooDeepError, touch, uncertain, type Lineage } from "./lineage.js";
import { namespaceNode, pipelineNode, projectionNode } from "./stages.js";
import { child, coveredBy, documentNode, isTainted, splitPath, subtree, uncertainTaint, union, whole, type TaintNode } from "./taint.js";

/** How a reply's documents are masked. */
export type ReplyPlan =
  /** find, aggregate, getMore, listCollections...: every document of `cursor.firstBatch`/`nextBatch`. */
  | { readonly kind: "cursor"; readonly node: TaintNode | undefined }
  /** getMore: the node of the cursor's first batch, found when the reply comes. */
  | { readonly kind: "getMore"; readonly cursor: string }
  /** findAndModify: `value`, and `lastErrorObject.upserted`. */
  | { readonly kind: "value"; readonly node: TaintNode | undefined; readonly id: TaintNode | undefined }
  /** distinct: each of `values`. */
  | { readonly kind: "values"; readonly node: TaintNode | undefined }
  /** insert, update, delete: `upserted[]._id`; `fields` are the namespace's, for a duplicate key's `keyValue`. */
  | { readonly kind: "write"; readonly id: TaintNode | undefined; readonly fields: TaintNode | undefined }
  /** explain: predicates and bounds on sensitive fields, and the command's known values, scrubbed. */
  | { readonly kind: "explain"; readonly fields: TaintNode | undefined }
  /** A reply field that may hold anything (currentOp's `inprog`, getLog's `log`, mapReduce's `results`). */
  | { readonly kind: "field"; readonly field: string; readonly node: TaintNode | undefined }
  /** Nothing but the detectors. */
  | { readonly kind: "plain" };

/** The masking plan of one command. */
export interface MongoMaskPlan {
  /** The command name. */
  readonly command: string;
  /** The namespace the command reads or writes (`db.collection`), when it names one. */
  readonly namespace?: string;
  /**
   * Filters, sorts, groupings and joins on sensitive fields (column: `db.collection.path`, or
   * `(uncertain)`), as the PostgreSQL masker reports them: the session applies the connection's
   * `masking.inference` action.
   */
  readonly inference: readonly Inference[];
  /** Sensitive values would be written where masking does not see them ($out, $merge, renames, views): deny or review. */
  readonly copiesSensitive: boolean;
  /** Lineage could not follow some value: it is masked whole. */
  readonly uncertain: boolean;
  /** Why: copies and uncertainties, lowercase, names in backticks. */
  readonly reasons: readonly string[];
  /** The command reads sensitive fields where the server's errors may echo them: error messages are withheld. */
  readonly withholdErrors: boolean;
  /** The command changes collections or views: read the views again (listCollections) before the next command. */
  readonly refreshViews: boolean;
  /** The command's namespace has sensitive fields: `errInfo` (validation details hold document values) is withheld. */
  readonly sensitiveNamespace: boolean;
  /** Values the command compares sensitive fields with or writes into them, longest first. */
  readonly knownValues: readonly string[];
  readonly reply: ReplyPlan;
  /** Cursors the command closes (killCursors). */
  readonly closes: readonly string[];
}

/** The key of a cursor id, whatever its decoded type (number, bigint, Long). */
export function cursorKey(id: unknown): string | undefined {
  if (typeof id === "number" || typeof id === "bigint") return id.toString();
  if (typeof id === "object" && id !== null && (id as { _bsontype?: unknown })._bsontype === "Long") return (id as { toString(): string }).toString();
  return undefined;
}

const ddlCommands = new Set(["create", "drop", "dropDatabase", "collMod", "renameCollection", "convertToCapped", "cloneCollectionAsCapped"]);

interface Planning {
  readonly lineage: Lineage;
  readonly database: string;
  namespace?: string;
  reply: ReplyPlan;
  closes: string[];
  sensitiveNamespace: boolean;
}

/**
 * Plans the masking of one command. Pure: the masker keeps the cursors; a getMore's plan names
 * its cursor.
 */
export function planCommand(command: BsonDocument, catalog: MongoMaskCatalog, defaultDatabase?: string): MongoMaskPlan {
  const name = commandNameOf(command) ?? "";
  const database = typeof command.$db === "string" ? command.$db : (defaultDatabase ?? "");
  const planning: Planning = { lineage: createLineage(catalog, database), database, reply: { kind: "plain" }, closes: [], sensitiveNamespace: false };
  try {
    planBody(planning, command, name);
  } catch (error) {
    if (!(error instanceof LineageTooDeepError || error instanceof RangeError)) throw error;
    uncertain(planning.lineage, "the command is nested too deeply to follow");
    planning.reply = everything(planning.reply);
  }
  const lineage = planning.lineage;
  const plan: { -readonly [K in keyof MongoMaskPlan]: MongoMaskPlan[K] } = {
    command: name,
    inference: [...lineage.inference.values()],
    copiesSensitive: lineage.copies,
    uncertain: lineage.uncertain.size > 0,
    reasons: [...lineage.copyReasons, ...[...lineage.uncertain].map((reason) => `uncertain lineage: ${reason}`)],
    withholdErrors: lineage.touched.size > 0 || lineage.uncertain.size > 0,
    refreshViews: ddlCommands.has(name),
    sensitiveNamespace: planning.sensitiveNamespace,
    knownValues: [...lineage.knownValues].sort((a, b) => b.length - a.length),
    reply: planning.reply,
    closes: planning.closes,
  };
  if (planning.namespace !== undefined) plan.namespace = planning.namespace;
  return plan;
}

/** A reply plan that masks every document whole (lineage gave up). */
function everything(reply: ReplyPlan): ReplyPlan {
  const all = whole(uncertainTaint(false));
  switch (reply.kind) {
    case "value":
      return { kind: "value", node: all, id: all };
    case "values":
      return { kind: "values", node: all };
    case "write":
      return { kind: "write", id: all, fields: all };
    case "explain":
      return { kind: "explain", fields: all };
    default:
      return { kind: "cursor", node: all };
  }
}

function collectionRoot(planning: Planning, collection: unknown): TaintNode | undefined {
  if (typeof collection !== "string") return undefined;
  planning.namespace ??= `${planning.database}.${collection}`;
  const node = namespaceNode(planning.lineage, planning.database, collection);
  if (isTainted(node)) planning.sensitiveNamespace = true;
  return node;
}

function letVariables(value: unknown): Map<string, TaintNode | undefined> {
  const variables = new Map<string, TaintNode | undefined>();
  // Command-level `let` holds constants: nothing of a document.
  if (isDocument(value)) for (const name in value) variables.set(name, undefined);
  return variables;
}

function planBody(planning: Planning, command: BsonDocument, name: string): void {
  const lineage = planning.lineage;
  const catalog = lineage.catalog;
  switch (name) {
    case "find": {
      const root = collectionRoot(planning, command.find);
      const variables = letVariables(command.let);
      walkFilter(command.filter, root, lineage, "where", variables);
      walkSort(command.sort, root, lineage);
      // min and max are index bounds: filters on their keys.
      for (const bound of [command.min, command.max]) if (isDocument(bound)) walkFilter(bound, root, lineage);
      planning.reply = { kind: "cursor", node: projectionNode(command.projection, root, documentScope(root, variables), lineage, true) };
      return;
    }
    case "aggregate": {
      const collection = typeof command.aggregate === "string" ? command.aggregate : undefined;
      const root = collectionRoot(planning, collection);
      const node = pipelineNode(command.pipeline, root, { database: planning.database, collection, variables: letVariables(command.let) }, lineage);
      if (isTruthyFlag(command.explain)) {
        planning.reply = { kind: "explain", fields: union(namespaceNode(lineage, planning.database, "*"), node) };
        return;
      }
      planning.reply = { kind: "cursor", node };
      return;
    }
    case "getMore": {
      const cursor = cursorKey(command.getMore) ?? "";
      if (typeof command.collection === "string") planning.namespace = `${planning.database}.${command.collection}`;
      planning.reply = { kind: "getMore", cursor };
      return;
    }
    case "killCursors":
      if (Array.isArray(command.cursors)) for (const id of command.cursors) planning.closes.push(cursorKey(id) ?? "");
      return;
    case "count":
      walkFilter(command.query, collectionRoot(planning, command.count), lineage);
      return;
    case "distinct": {
      const root = collectionRoot(planning, command.distinct);
      walkFilter(command.query, root, lineage);
      planning.reply = { kind: "values", node: typeof command.key === "string" ? subtree(root, splitPath(command.key)) : whole(uncertainTaint(false)) };
      return;
    }
    case "findAndModify":
    case "findandmodify": {
      const root = collectionRoot(planning, command[name]);
      walkFilter(command.query, root, lineage);
      walkSort(command.sort, root, lineage);
      if (command.update !== undefined) updateLineage(planning, command.update, root, name);
      const node = projectionNode(command.fields, root, documentScope(root), lineage, true);
      planning.reply = { kind: "value", node, id: subtree(root, ["_id"]) };
      return;
    }
    case "insert": {
      const root = collectionRoot(planning, command.insert);
      if (Array.isArray(command.documents)) for (const document of command.documents) writtenValues(lineage, document, root);
      planning.reply = { kind: "write", id: subtree(root, ["_id"]), fields: root };
      return;
    }
    case "update": {
      const root = collectionRoot(planning, command.update);
      if (Array.isArray(command.updates)) {
        for (const statement of command.updates) {
          if (!isDocument(statement)) continue;
          walkFilter(statement.q, root, lineage);
          updateLineage(planning, statement.u, root, "update");
        }
      }
      planning.reply = { kind: "write", id: subtree(root, ["_id"]), fields: root };
      return;
    }
    case "delete": {
      const root = collectionRoot(planning, command.delete);
      if (Array.isArray(command.deletes)) for (const statement of command.deletes) if (isDocument(statement)) walkFilter(statement.q, root, lineage);
      planning.reply = { kind: "write", id: undefined, fields: root };
      return;
    }
    case "bulkWrite": {
      const roots = (Array.isArray(command.nsInfo) ? command.nsInfo : []).map((entry) => {
        const namespace = isDocument(entry) && typeof entry.ns === "string" ? splitNamespace(entry.ns) : undefined;
        const node = namespace === undefined ? whole(uncertainTaint(false)) : namespaceNode(lineage, namespace.database, namespace.collection);
        if (isTainted(node)) planning.sensitiveNamespace = true;
        return node;
      });
      let ids: TaintNode | undefined;
      for (const root of roots) ids = union(ids, subtree(root, ["_id"]));
      for (const op of Array.isArray(command.ops) ? command.ops : []) {
        if (!isDocument(op)) continue;
        const kind = Object.keys(op)[0] ?? "";
        const index = op[kind];
        const root = roots[typeof index === "number" ? index : Number(index)];
        if (kind === "insert") writtenValues(lineage, op.document, root);
        else {
          walkFilter(op.filter, root, lineage);
          if (kind === "update") updateLineage(planning, op.updateMods, root, "bulkWrite");
        }
      }
      planning.reply = { kind: "cursor", node: documentNode([["upserted", documentNode([["_id", ids]])]]) };
      return;
    }
    case "explain": {
      const inner = command.explain;
      if (!isDocument(inner)) return;
      const innerName = commandNameOf(inner) ?? "";
      const innerPlanning: Planning = { lineage, database: planning.database, reply: { kind: "plain" }, closes: [], sensitiveNamespace: false };
      planBody(innerPlanning, { ...inner, $db: planning.database }, innerName === "explain" ? "" : innerName);
      if (innerPlanning.namespace !== undefined) planning.namespace = innerPlanning.namespace;
      planning.sensitiveNamespace = innerPlanning.sensitiveNamespace;
      const replyNode = innerPlanning.reply.kind === "cursor" || innerPlanning.reply.kind === "value" || innerPlanning.reply.kind === "values" ? innerPlanning.reply.node : undefined;
      planning.reply = { kind: "explain", fields: union(namespaceNode(lineage, planning.database, "*"), replyNode) };
      return;
    }
    case "mapReduce": {
      const root = collectionRoot(planning, command.mapReduce);
      walkFilter(command.query, root, lineage);
      walkSort(command.sort, root, lineage);
      if (!isTainted(root)) return;
      uncertain(lineage, "`mapReduce` computes in JavaScript");
      const inline = isDocument(command.out) && command.out.inline !== undefined;
      if (!inline) copies(lineage, "`mapReduce` writes values computed from sensitive fields into a collection");
      planning.reply = { kind: "field", field: "results", node: whole(uncertainTaint(true)) };
      return;
    }
    case "create":
    case "collMod": {
      collectionRoot(planning, command[name]);
      if (typeof command.viewOn === "string" || command.pipeline !== undefined) {
        const source = typeof command.viewOn === "string" ? command.viewOn : catalog.views.get(`${planning.database}.${String(command[name])}`)?.viewOn;
        const root = source === undefined ? whole(uncertainTaint(false)) : namespaceNode(lineage, planning.database, source);
        const node = pipelineNode(command.pipeline ?? [], root, { database: planning.database, collection: source }, lineage);
        if (isTainted(node)) copies(lineage, `\`${name}\` defines a view over sensitive fields: define it in the catalog first`);
      }
      return;
    }
    case "renameCollection":
    case "cloneCollectionAsCapped": {
      const from = name === "renameCollection" ? (typeof command.renameCollection === "string" ? splitNamespace(command.renameCollection) : undefined) : { database: planning.database, collection: String(command.cloneCollectionAsCapped) };
      const to = name === "renameCollection" ? (typeof command.to === "string" ? splitNamespace(command.to) : undefined) : { database: planning.database, collection: String(command.toCollection) };
      const node = from === undefined ? undefined : namespaceNode(lineage, from.database, from.collection);
      const target = to === undefined ? undefined : namespaceNode(lineage, to.database, to.collection);
      if (isTainted(node) && !coveredBy(node, target)) copies(lineage, `\`${name}\` moves sensitive fields to a namespace masking does not know`);
      return;
    }
    case "currentOp":
      if (catalog.anySensitive) planning.reply = { kind: "field", field: "inprog", node: whole(uncertainTaint(true)) };
      return;
    case "getLog":
      if (catalog.anySensitive && command.getLog !== "startupWarnings" && command.getLog !== "*") planning.reply = { kind: "field", field: "log", node: whole(uncertainTaint(true)) };
      return;
    case "listCollections":
    case "listIndexes":
    case "listSearchIndexes":
      planning.reply = { kind: "cursor", node: undefined };
      return;
    default:
      return;
  }
}

/**
 * An update document or pipeline: sensitive fields it sets or reads, the values it writes into
 * them, and copies of sensitive fields into fields masking does not know (`$rename`, a pipeline
 * that sets `contact` from `$email`).
 */
function updateLineage(planning: Planning, update: unknown, root: TaintNode | undefined, name: string): void {
  const lineage = planning.lineage;
  if (Array.isArray(update)) {
    const node = pipelineNode(update, root, { database: planning.database, collection: undefined }, lineage);
    if (!coveredBy(node, root)) copies(lineage, `\`${name}\` copies sensitive fields into fields masking does not know`);
    return;
  }
  if (!isDocument(update)) return;
  const operators = Object.keys(update).filter((key) => key.startsWith("$"));
  if (operators.length === 0) {
    writtenValues(lineage, update, root);
    return;
  }
  for (const op of operators) {
    const fields = update[op];
    if (!isDocument(fields)) continue;
    for (const path in fields) {
      const parts = splitPath(path);
      const target = subtree(root, parts);
      // "Cannot create field 'x' in element {address: ...}": errors about a path echo its parents.
      for (let end = 1; end < parts.length; end++) touch(lineage, subtree(root, parts.slice(0, end)));
      if (op === "$rename" && typeof fields[path] === "string") {
        const destination = subtree(root, splitPath(fields[path] as string));
        touch(lineage, target);
        if (!coveredBy(target, destination)) copies(lineage, `\`$rename\` moves the sensitive field \`${path}\` to \`${fields[path] as string}\``);
        continue;
      }
      if (!isTainted(target)) {
        // {$set: {address: {...}}} may write sensitive subfields.
        writtenValues(lineage, fields[path], target);
        continue;
      }
      touch(lineage, target);
      if (op === "$pull" || op === "$pullAll") inClause(lineage, "where", () => touch(lineage, target));
      collectValues(lineage, fields[path]);
    }
  }
}

/** Sensitive fields present in a document the command writes, and their values. */
function writtenValues(lineage: Lineage, value: unknown, node: TaintNode | undefined, depth = 0): void {
  if (!isTainted(node) || depth > 100) return;
  if (node?.taint !== undefined) {
    touch(lineage, node);
    collectValues(lineage, value);
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) writtenValues(lineage, item, node, depth + 1);
    return;
  }
  if (!isDocument(value)) {
    touch(lineage, node);
    collectValues(lineage, value);
    return;
  }
  for (const key in value) writtenValues(lineage, value[key], key.includes(".") ? subtree(node, splitPath(key)) : child(node, key), depth + 1);
}
