/**
 * Which namespace a query comes from: the asking container's address looked up among this node's
 * tasks, as the reconciler reports them (it knows each task's namespace and address).
 */
import type { TaskStatusView } from '../reconciler/index.js';

/** SOURCE_INDEX_MAX_AGE_MS bounds how stale the address → namespace index may be. */
export const SOURCE_INDEX_MAX_AGE_MS = 1_000;
/** SOURCE_INDEX_MISS_AGE_MS: an unknown address rebuilds the index, at most this often. */
export const SOURCE_INDEX_MISS_AGE_MS = 100;

/** namespaceIndex returns a lookup from container address to namespace over the reconciler's statuses. */
export function namespaceIndex(statuses: () => readonly TaskStatusView[], now: () => number = Date.now): (ip: string) => string | undefined {
  let index = new Map<string, string>();
  let builtAt = -Infinity;
  const rebuild = (): void => {
    index = new Map();
    for (const s of statuses()) if (s.ip && s.phase === 'running') index.set(s.ip, s.namespace);
    builtAt = now();
  };
  return (ip) => {
    const age = now() - builtAt;
    if (age > SOURCE_INDEX_MAX_AGE_MS || (!index.has(ip) && age > SOURCE_INDEX_MISS_AGE_MS)) rebuild();
    return index.get(ip);
  };
}
