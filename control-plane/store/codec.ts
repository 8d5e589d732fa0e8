/** How objects are stored: JSON, with resourceVersion taken from the key's mod_revision on the way out. */
import type { IKeyValue } from 'etcd3';

/** decode parses a stored value and stamps resourceVersion; undefined for a non-JSON value. */
export function decode<T>(kv: IKeyValue): T | undefined {
  try {
    const obj = JSON.parse(kv.value.toString()) as { metadata?: { resourceVersion?: string } };
    if (obj && typeof obj === 'object' && obj.metadata) obj.metadata.resourceVersion = String(kv.mod_revision);
    return obj as T;
  } catch {
    return undefined;
  }
}
