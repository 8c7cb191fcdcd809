/**
 * What lineage knows of the documents at one point of a command: a tree of field names whose
 * nodes say which values may carry sensitive data. Arrays are transparent, as in MongoDB paths:
 * the node of `cards` applies to every element of a `cards` array, so `cards.number` covers the
 * number of each card. Nodes are immutable; every operation returns a new tree.
 *
 * Over-approximation is always safe (a value masked that need not be); under-approximation is
 * a leak. So when two possibilities meet, the union is kept.
 */
import type { MaskStyle } from "../styles.js";

/** Why a value is masked, and how. */
export interface Taint {
  /** Declared fields (`db.collection.path`) the value may derive from; empty when lineage lost track. */
  readonly sources: ReadonlySet<string>;
  readonly style: MaskStyle;
  readonly keep?: number;
  /** The keys of a document here may carry sensitive values too: mask a document whole, keys included. */
  readonly opaque: boolean;
  /** Lineage could not follow this value (fail closed). */
  readonly uncertain: boolean;
}

/** A value in a document: sensitive whole (`taint`), or a document whose fields are described by `children` and `other`. */
export interface TaintNode {
  /** The whole value is sensitive. */
  readonly taint?: Taint;
  /** Fields with something sensitive under them. */
  readonly children?: ReadonlyMap<string, TaintNode>;
  /** Every field not in `children` is sensitive (a document of unknown shape). */
  readonly other?: Taint;
  /**
   * The document's keys are dotted paths relative to this node (a change event's
   * `updateDescription.updatedFields`): the node of key `a.b` is `paths`' node at `a.b`.
   */
  readonly paths?: TaintNode;
}

/** A field known to be clean inside a node with `other`. */
const CLEAN: TaintNode = Object.freeze({});

const stricter: Readonly<Record<MaskStyle, number>> = { partial: 0, pseudonym: 1, redact: 2, null: 3 };

/** Two taints as one: every source, the stricter style, opaque or uncertain if either is. */
export function mergeTaints(a: Taint | undefined, b: Taint | undefined): Taint | undefined {
  if (a === undefined) return b;
  if (b === undefined || a === b) return a;
  const sources = new Set([...a.sources, ...b.sources]);
  const sameStyle = a.style === b.style && a.keep === b.keep;
  let style: MaskStyle = a.style;
  if (!sameStyle) style = stricter[a.style] >= stricter[b.style] ? a.style : b.style;
  // Two different partial or pseudonym styles meeting cannot both hold: redact.
  if (!sameStyle && (style === "partial" || style === "pseudonym")) style = "redact";
  const out: { -readonly [K in keyof Taint]: Taint[K] } = { sources, style, opaque: a.opaque || b.opaque, uncertain: a.uncertain || b.uncertain };
  if (sameStyle && a.keep !== undefined) out.keep = a.keep;
  return out;
}

/**
 * A value computed from a tainted one (`$toUpper`, `$concat`, `$sum`): the same sources; a
 * `partial` style would reveal the end of the computed value, so it becomes `redact`.
 */
export function derived(taint: Taint): Taint {
  if (taint.style !== "partial") return taint;
  return { sources: taint.sources, style: "redact", opaque: taint.opaque, uncertain: taint.uncertain };
}

/** A taint for what lineage cannot follow. */
export function uncertainTaint(opaque = true): Taint {
  return { sources: new Set(), style: "redact", opaque, uncertain: true };
}

/** A node whose whole value is sensitive. */
export function whole(taint: Taint | undefined): TaintNode | undefined {
  return taint === undefined ? undefined : { taint };
}

/** True when anything under the node is sensitive. */
export function isTainted(node: TaintNode | undefined): boolean {
  if (node === undefined) return false;
  if (node.taint !== undefined || node.other !== undefined) return true;
  if (node.paths !== undefined && isTainted(node.paths)) return true;
  if (node.children !== undefined) for (const child of node.children.values()) if (isTainted(child)) return true;
  return false;
}

/** Every taint under the node as one (undefined when nothing is sensitive). */
export function collapse(node: TaintNode | undefined): Taint | undefined {
  if (node === undefined) return undefined;
  let out = mergeTaints(node.taint, node.other);
  if (node.paths !== undefined) out = mergeTaints(out, collapse(node.paths));
  if (node.children !== undefined) for (const child of node.children.values()) out = mergeTaints(out, collapse(child));
  return out;
}

/** The node of a value computed from `node`: tainted whole when anything in it is. */
export function computed(node: TaintNode | undefined): TaintNode | undefined {
  const taint = collapse(node);
  return taint === undefined ? undefined : { taint: derived(taint) };
}

/** The node of one field of a document node. */
export function child(node: TaintNode | undefined, key: string): TaintNode | undefined {
  if (node === undefined) return undefined;
  if (node.taint !== undefined) return node;
  if (node.paths !== undefined) return union(subtree(node.paths, key.split(".")), node.children?.get(key));
  const found = node.children?.get(key);
  if (found !== undefined) return isTainted(found) ? found : undefined;
  return whole(node.other);
}

/**
 * The node at a dotted path. A numeric component may index an array (`cards.0.number` in a
 * query) or name a field: both are kept.
 */
export function subtree(node: TaintNode | undefined, path: readonly string[]): TaintNode | undefined {
  let current = node;
  for (let i = 0; i < path.length; i++) {
    if (current === undefined) return undefined;
    if (current.taint !== undefined) return current;
    const key = path[i] as string;
    if (/^\d+$/.test(key)) return union(subtree(child(current, key), path.slice(i + 1)), subtree(current, path.slice(i + 1)));
    current = child(current, key);
  }
  return current;
}

/** Splits a dotted field path, dropping a positional `$` (`cards.$`) and `$[]`/`$[id]` array filters. */
export function splitPath(path: string): string[] {
  return path.split(".").filter((part) => part !== "$" && !/^\$\[\w*\]$/.test(part));
}

/** Both nodes' sensitivity: the union. */
export function union(a: TaintNode | undefined, b: TaintNode | undefined): TaintNode | undefined {
  if (a === undefined) return b;
  if (b === undefined || a === b) return a;
  if (a.taint !== undefined || b.taint !== undefined) return whole(mergeTaints(collapse(a), collapse(b)));
  const other = mergeTaints(a.other, b.other);
  const children = new Map<string, TaintNode>();
  for (const key of new Set([...(a.children?.keys() ?? []), ...(b.children?.keys() ?? [])])) {
    const value = union(child(a, key), child(b, key));
    if (value !== undefined && isTainted(value)) children.set(key, value);
    else if (other !== undefined) children.set(key, CLEAN);
  }
  const out: { -readonly [K in keyof TaintNode]: TaintNode[K] } = {};
  if (children.size > 0) out.children = children;
  if (other !== undefined) out.other = other;
  const paths = union(a.paths, b.paths);
  if (paths !== undefined) out.paths = paths;
  return isTainted(out) ? out : undefined;
}

/**
 * The node with `value` at `path` (the field replaced). Under a node that is sensitive whole, the
 * whole stays sensitive: part of it being replaced does not clean the rest.
 */
export function setPath(node: TaintNode | undefined, path: readonly string[], value: TaintNode | undefined): TaintNode | undefined {
  if (path.length === 0) return value;
  if (node?.taint !== undefined) return node;
  const [head, ...rest] = path as [string, ...string[]];
  const children = new Map<string, TaintNode>(node?.children ?? []);
  const current = child(node, head);
  const next = rest.length === 0 ? value : setPath(current, rest, value);
  if (next === undefined || !isTainted(next)) children.delete(head);
  else children.set(head, next);
  const out: { -readonly [K in keyof TaintNode]: TaintNode[K] } = {};
  if (children.size > 0) out.children = children;
  if (node?.other !== undefined) out.other = node.other;
  if (node?.paths !== undefined) out.paths = node.paths;
  // A field set to a clean value in a document of unknown shape is still listed, so `other` does not cover it.
  if (node?.other !== undefined && (next === undefined || !isTainted(next))) {
    children.set(head, CLEAN);
    out.children = children;
  }
  return isTainted(out) ? out : undefined;
}

/** The node without the field at `path`. */
export function removePath(node: TaintNode | undefined, path: readonly string[]): TaintNode | undefined {
  if (node === undefined || node.taint !== undefined || path.length === 0) return node;
  return setPath(node, path, undefined);
}

/** A node with only the given fields (a closed document). */
export function documentNode(fields: Iterable<readonly [string, TaintNode | undefined]>): TaintNode | undefined {
  const children = new Map<string, TaintNode>();
  for (const [key, value] of fields) if (value !== undefined && isTainted(value)) children.set(key, union(children.get(key), value) as TaintNode);
  return children.size === 0 ? undefined : { children };
}

/** Every sensitive source under the node, sorted; `(uncertain)` when some taint has none. */
export function sourcesOf(node: TaintNode | undefined): string[] {
  const taint = collapse(node);
  if (taint === undefined) return [];
  const out = [...taint.sources].sort();
  if (taint.uncertain || out.length === 0) out.push("(uncertain)");
  return out;
}

/**
 * True when every sensitive value of `node` lands where `target` masks it too: a taint at a path
 * is covered by a taint at that path or above it in `target` (a `partial` one only for its own
 * sources). Used to tell a copy that escapes
 * masking (a sensitive field written to a field or collection masking does not know).
 */
export function coveredBy(node: TaintNode | undefined, target: TaintNode | undefined): boolean {
  if (!isTainted(node)) return true;
  if (target?.taint !== undefined) {
    // A partial mask shows the end of a value: it covers only the values declared with it.
    if (target.taint.style !== "partial") return true;
    const sources = collapse(node)?.sources ?? new Set<string>();
    return sources.size > 0 && [...sources].every((source) => target.taint?.sources.has(source) === true);
  }
  if (node === undefined || target === undefined) return false;
  if (node.taint !== undefined || node.other !== undefined || node.paths !== undefined) {
    if (node.taint !== undefined || node.paths !== undefined) return false;
    if (target.other === undefined) return false;
  }
  for (const [key, value] of node.children ?? []) {
    if (!coveredBy(value, child(target, key))) return false;
  }
  return true;
}
