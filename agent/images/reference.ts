/**
 * Image references the agent understands. First cut: local OCI layouts and archives; registry
 * references (issue 4) parse to kind 'registry' so the store can refuse them with a clear error.
 */
import { AgentError } from '../errors.js';

/** ImageReference is a parsed `image:` string from a container template. */
export type ImageReference =
  | { kind: 'oci-archive'; raw: string; path: string }
  | { kind: 'oci'; raw: string; path: string; tag?: string }
  | { kind: 'registry'; raw: string };

/** parseImageReference parses `oci-archive:/abs.tar`, `oci:/abs/layout[:tag]` or a registry name. */
export function parseImageReference(raw: string): ImageReference {
  const ref = raw.trim();
  if (ref === '') throw new AgentError('BERTH_ERR_IMAGE_INVALID', 'image reference is empty');
  if (ref.startsWith('oci-archive:')) {
    const path = ref.slice('oci-archive:'.length);
    requireAbsolute(ref, path);
    return { kind: 'oci-archive', raw: ref, path };
  }
  if (ref.startsWith('oci:')) {
    const rest = ref.slice('oci:'.length);
    // The tag is whatever follows the last ':' after the last '/', so paths may hold colons
    // in directory names but the layout directory's own name may not.
    const slash = rest.lastIndexOf('/');
    const colon = rest.indexOf(':', slash + 1);
    const path = colon === -1 ? rest : rest.slice(0, colon);
    const tag = colon === -1 ? undefined : rest.slice(colon + 1);
    requireAbsolute(ref, path);
    if (tag !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(tag)) {
      throw new AgentError('BERTH_ERR_IMAGE_INVALID', `image ${ref}: invalid tag ${JSON.stringify(tag)}`);
    }
    return tag === undefined ? { kind: 'oci', raw: ref, path } : { kind: 'oci', raw: ref, path, tag };
  }
  return { kind: 'registry', raw: ref };
}

function requireAbsolute(ref: string, path: string): void {
  if (!path.startsWith('/') || path.split('/').includes('..')) {
    throw new AgentError('BERTH_ERR_IMAGE_INVALID', `image ${ref}: path must be absolute and free of '..'`);
  }
  if (path.length === 1) throw new AgentError('BERTH_ERR_IMAGE_INVALID', `image ${ref}: path is empty`);
}
