/**
 * The value of `key` in `entries`, a least-recently-used cache of at most `max` entries: a hit moves
 * to the newest place; a miss is computed, kept, and the oldest entry goes when over `max`.
 */
export function lruGet<K, V>(entries: Map<K, V>, key: K, max: number, compute: () => V): V {
  const hit = entries.get(key);
  if (hit !== undefined) {
    entries.delete(key);
    entries.set(key, hit);
    return hit;
  }
  const value = compute();
  entries.set(key, value);
  if (entries.size > max) {
    const oldest = entries.keys().next();
    if (oldest.done !== true) entries.delete(oldest.value);
  }
  return value;
}
