/** Peers: which other nodes' subnets an agent routes to, and through which address. */
import type { Peer } from '../../proto/gen/berth/v1/agent.js';
import type { Node } from '../objects/types.js';

/** peersOf lists every node but `self` that has a subnet and an InternalIP, sorted by name. */
export function peersOf(nodes: readonly Node[], self: string): Peer[] {
  const out: Peer[] = [];
  for (const n of nodes) {
    const address = n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
    if (n.metadata.name === self || !n.status?.subnet || !address) continue;
    out.push({ nodeName: n.metadata.name, subnet: n.status.subnet, address });
  }
  return out.sort((a, b) => a.nodeName.localeCompare(b.nodeName));
}
