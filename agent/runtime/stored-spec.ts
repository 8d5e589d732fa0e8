/**
 * spec.json, the record a container's dir keeps so a restarted agent can re-adopt it, and what
 * of the spec may be in it.
 */
import type { ContainerSpec } from './runtime.js';

/** StoredSpec is spec.json: what a restarted agent needs to re-adopt a container. */
export interface StoredSpec {
  spec: ContainerSpec;
  cgroupParent: string;
  createdAt: string;
}

/**
 * storableSpec is the spec as spec.json keeps it: projected files keep their target, mode and
 * owner but lose their content, which must never reach the node's disk (a restarted container
 * is given it again by whoever starts it).
 */
export function storableSpec(spec: ContainerSpec): ContainerSpec {
  if (!spec.files) return spec;
  return { ...spec, files: spec.files.map((f) => ({ ...f, content: Buffer.alloc(0) })) };
}
