/**
 * Query filters and sorts over sensitive fields: they let a masked reader learn values (which
 * documents match `{email: /^a/}`, in which order they come), so every sensitive field they
 * reference is reported as an inference, and the values compared with it are remembered to scrub
 * error messages and explain output.
 * https://www.mongodb.com/docs/manual/reference/operator/query/
 */
import type { InferenceClause } from "../lineage/index.js";
import { isDocument } from "../../inspect/mongo/documents.js";
import { documentScope, expressionNode, type Scope } from "./expressions.js";
import { collectValues, inClause, LineageTooDeepError, maxLineageDepth, touch, type Lineage } from "./lineage.js";
import { splitPath, subtree, type TaintNode } from "./taint.js";

/** Walks a query filter over documents described by `node`. */
export function walkFilter(filter: unknown, node: TaintNode | undefined, lineage: Lineage, clause: InferenceClause = "where", variables?: Scope["variables"]): void {
  if (!isDocument(filter)) return;
  inClause(lineage, clause, () => filterFields(filter, node, lineage, variables, 0));
}

function filterFields(filter: Record<string, unknown>, node: TaintNode | undefined, lineage: Lineage, variables: Scope["variables"] | undefined, depth: number): void {
  if (depth > maxLineageDepth) throw new LineageTooDeepError();
  for (const key in filter) {
    const value = filter[key];
    switch (key) {
      case "$and":
      case "$or":
      case "$nor":
        if (Array.isArray(value)) for (const item of value) if (isDocument(item)) filterFields(item, node, lineage, variables, depth + 1);
        continue;
      case "$expr":
        expressionNode(value, variables === undefined ? documentScope(node) : documentScope(node, variables), lineage);
        continue;
      case "$comment":
        continue;
      case "$where":
      case "$text":
      case "$jsonSchema":
      case "$function":
        // JavaScript, a text index or a schema can look at any field.
        touch(lineage, node);
        continue;
      default:
        if (key.startsWith("$")) {
          touch(lineage, node);
          continue;
        }
        fieldCondition(splitPath(key), value, node, lineage, variables, depth + 1);
    }
  }
}

function fieldCondition(path: string[], condition: unknown, node: TaintNode | undefined, lineage: Lineage, variables: Scope["variables"] | undefined, depth: number): void {
  const field = subtree(node, path);
  if (isDocument(condition) && Object.keys(condition).some((key) => key.startsWith("$"))) {
    for (const op in condition) {
      const argument = condition[op];
      if (op === "$elemMatch" && isDocument(argument)) {
        // {$elemMatch: {number: ...}} matches fields of the elements; {$elemMatch: {$gt: 1}} the elements.
        if (Object.keys(argument).some((key) => !key.startsWith("$"))) filterFields(argument, field, lineage, variables, depth + 1);
        else fieldCondition([], argument, field, lineage, variables, depth + 1);
      } else if (op === "$not") fieldCondition([], argument, field, lineage, variables, depth + 1);
      else {
        touch(lineage, field);
        if (field !== undefined) collectValues(lineage, argument);
      }
    }
    return;
  }
  touch(lineage, field);
  if (field !== undefined) collectValues(lineage, condition);
}

/** A sort document: every sensitive key is an ordering inference. */
export function walkSort(sort: unknown, node: TaintNode | undefined, lineage: Lineage): void {
  if (!isDocument(sort)) return;
  inClause(lineage, "order_by", () => {
    for (const key in sort) touch(lineage, subtree(node, splitPath(key)));
  });
}
