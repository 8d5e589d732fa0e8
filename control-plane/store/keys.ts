/** The etcd key layout (DESIGN.md "Data model"). Keys in code are relative to ROOT_PREFIX. */

/** ROOT_PREFIX is where every berth key lives in etcd. */
export const ROOT_PREFIX = '/berth/v1/';

/** serviceKey is services/<ns>/<name>. */
export const serviceKey = (ns: string, name: string): string => `services/${ns}/${name}`;
/** taskKey is tasks/<ns>/<service>/<name>. */
export const taskKey = (ns: string, service: string, name: string): string => `tasks/${ns}/${service}/${name}`;
/** nodeKey is nodes/<name>. */
export const nodeKey = (name: string): string => `nodes/${name}`;
/** nodeLeaseKey is leases/nodes/<name>, bound to the node's heartbeat lease. */
export const nodeLeaseKey = (name: string): string => `leases/nodes/${name}`;

/** isServiceKey accepts services/<ns>/<name> but not its revisions/ children. */
export const isServiceKey = (key: string): boolean => /^services\/[^/]+\/[^/]+$/.test(key);
/** isTaskKey accepts tasks/<ns>/<service>/<name>. */
export const isTaskKey = (key: string): boolean => /^tasks\/[^/]+\/[^/]+\/[^/]+$/.test(key);
/** isNodeKey accepts nodes/<name>. */
export const isNodeKey = (key: string): boolean => /^nodes\/[^/]+$/.test(key);
/** isNodeLeaseKey accepts leases/nodes/<name>. */
export const isNodeLeaseKey = (key: string): boolean => /^leases\/nodes\/[^/]+$/.test(key);

/** lastSegment is the name part of any key. */
export const lastSegment = (key: string): string => key.slice(key.lastIndexOf('/') + 1);

/** prefixEnd is the etcd range_end that covers every key starting with prefix. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
