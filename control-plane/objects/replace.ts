/** How a user's write replaces a stored object's user-owned fields (Kubernetes' spec/generation rules). */
import { isDeepStrictEqual } from 'node:util';
import type { ObjectMeta } from './types.js';

/**
 * replaceUserFields applies spec and labels to cur: generation bumps only when spec changes;
 * undefined when nothing changes, so the caller writes nothing.
 */
export function replaceUserFields<T extends { metadata: ObjectMeta; spec: S }, S>(cur: T, spec: S, labels: Record<string, string>): T | undefined {
  const specChanged = !isDeepStrictEqual(cur.spec, spec);
  if (!specChanged && isDeepStrictEqual(cur.metadata.labels, labels)) return undefined;
  return { ...cur, metadata: { ...cur.metadata, labels, generation: cur.metadata.generation + (specChanged ? 1 : 0) }, spec };
}
