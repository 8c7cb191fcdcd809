/**
 * The state of one command's lineage analysis, shared by expressions, filters and stages: which
 * sensitive fields it references and where (inference), the values it compares them with, what
 * it could not follow, and whether it writes sensitive values where masking does not see them.
 */
import type { Inference, InferenceClause } from "../lineage/index.js";
import type { MongoMaskCatalog } from "./catalog.js";
import { isTainted, sourcesOf, type TaintNode } from "./taint.js";

/** One command's lineage findings. */
export interface Lineage {
  readonly catalog: MongoMaskCatalog;
  /** The command's `$db`: bare collection names resolve in it. */
  readonly database: string;
  readonly inference: Map<string, Inference>;
  /** Sensitive fields (or `(uncertain)`) the command reads in filters, expressions or updates: the server's errors may echo them. */
  readonly touched: Set<string>;
  /** Values the command compares sensitive fields with, or writes into them: scrubbed from errors and explain output. */
  readonly knownValues: Set<string>;
  /** Why lineage is uncertain somewhere, in order found. */
  readonly uncertain: Set<string>;
  /** Sensitive (or uncertain) values are written where masking does not see them. */
  copies: boolean;
  readonly copyReasons: Set<string>;
  /** Clauses being walked, innermost last: every sensitive reference inside them is an inference. */
  readonly clauses: InferenceClause[];
  depth: number;
}

/** Work and nesting bounds, past which lineage gives up (fail closed: everything uncertain). */
export const maxLineageDepth = 120;

/** Thrown when lineage gives up. */
export class LineageTooDeepError extends Error {
  constructor() {
    super("command is nested too deeply to follow");
    this.name = "LineageTooDeepError";
  }
}

/** A fresh analysis of one command. */
export function createLineage(catalog: MongoMaskCatalog, database: string): Lineage {
  return {
    catalog,
    database,
    inference: new Map(),
    touched: new Set(),
    knownValues: new Set(),
    uncertain: new Set(),
    copies: false,
    copyReasons: new Set(),
    clauses: [],
    depth: 0,
  };
}

/** Records that the command reads a (possibly) sensitive value; inside a clause, an inference. */
export function touch(lineage: Lineage, node: TaintNode | undefined): void {
  if (!isTainted(node)) return;
  for (const source of sourcesOf(node)) {
    lineage.touched.add(source);
    for (const clause of lineage.clauses) {
      const key = `${source}\u0000${clause}`;
      if (!lineage.inference.has(key)) lineage.inference.set(key, { column: source, clause });
    }
  }
}

/** Runs `walk` inside an inference clause. */
export function inClause<T>(lineage: Lineage, clause: InferenceClause, walk: () => T): T {
  lineage.clauses.push(clause);
  try {
    return walk();
  } finally {
    lineage.clauses.pop();
  }
}

/** Records an uncertainty with its reason. */
export function uncertain(lineage: Lineage, reason: string): void {
  lineage.uncertain.add(reason);
}

/** Records a copy past masking with its reason. */
export function copies(lineage: Lineage, reason: string): void {
  lineage.copies = true;
  lineage.copyReasons.add(reason);
}

/** Adds the scalar values inside `value` (strings, numbers, dates...) to the known values. */
export function collectValues(lineage: Lineage, value: unknown, depth = 0): void {
  if (depth > 20 || lineage.knownValues.size > 1_000) return;
  if (typeof value === "string") {
    if (value.length >= 3 && !value.startsWith("$")) lineage.knownValues.add(value);
  } else if (typeof value === "number" || typeof value === "bigint") {
    const text = String(value);
    if (text.length >= 3) lineage.knownValues.add(text);
  } else if (value instanceof Date) {
    if (!Number.isNaN(value.getTime())) lineage.knownValues.add(value.toISOString());
  } else if (Array.isArray(value)) {
    for (const item of value) collectValues(lineage, item, depth + 1);
  } else if (typeof value === "object" && value !== null) {
    const type = (value as { _bsontype?: unknown })._bsontype;
    if (type === undefined) {
      for (const item of Object.values(value)) collectValues(lineage, item, depth + 1);
    } else if (type === "ObjectId") lineage.knownValues.add((value as { toHexString(): string }).toHexString());
    else if (type === "Long" || type === "Decimal128" || type === "Int32" || type === "Double") {
      const text = String(value.toString());
      if (text.length >= 3) lineage.knownValues.add(text);
    } else if (type === "BSONRegExp") collectValues(lineage, (value as { pattern: unknown }).pattern, depth + 1);
  }
}
