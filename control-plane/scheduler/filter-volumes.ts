import type { NodeFilter, NodeInfo, Reason } from './types.js';

/**
 * volumeLocations maps each named volume ("<ns>/<name>") to the nodes that hold it, in name
 * order: those that report it and those with a live task that mounts it (its agent makes it on
 * first use). Only volumes in `wanted` are collected, so a batch without volumes costs nothing.
 */
export function volumeLocations(nodes: readonly NodeInfo[], wanted: ReadonlySet<string>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (wanted.size === 0) return out;
  for (const n of nodes) {
    for (const v of n.volumes ?? []) {
      if (!wanted.has(v)) continue;
      const list = out.get(v);
      if (list) list.push(n.name);
      else out.set(v, [n.name]);
    }
  }
  for (const list of out.values()) list.sort();
  return out;
}

/** volumeReason names a volume's nodes for an unplaced task's message: "volume db is on node-2". */
export function volumeReason(volume: string, nodes: readonly string[]): Reason {
  const name = volume.slice(volume.indexOf('/') + 1);
  const where = nodes.length === 1 ? nodes[0]! : nodes.length === 2 ? `${nodes[0]!} and ${nodes[1]!}` : `${nodes[0]!} and ${nodes.length - 1} other nodes`;
  return `volume ${name} is on ${where}`;
}

/**
 * filterVolumes keeps a task that mounts a named volume on a node that holds it, as a Kubernetes
 * local persistent volume's node affinity does: the data lives on one node's disk, and a task
 * placed elsewhere would start with an empty new volume instead. A volume that is nowhere yet
 * fits every node. Without ctx.volumeNodes (a caller that does not track volumes) it passes.
 */
export const filterVolumes: NodeFilter = {
  name: 'volumes',
  check: (node, ctx) => {
    const where = ctx.volumeNodes;
    if (!where || !ctx.task.volumes) return undefined;
    for (const v of ctx.task.volumes) {
      const nodes = where.get(v);
      if (nodes && nodes.length > 0 && !nodes.includes(node.name)) return volumeReason(v, nodes);
    }
    return undefined;
  },
};
