/**
 * Node subnets: each node gets one /24 (by default) of the cluster CIDR at its first registration
 * and keeps it across restarts. Two etcd keys per node, written in one compare-and-swap
 * transaction that requires both to be absent: ipam/nodes/<name> (node → subnet) and
 * ipam/subnets/<a.b.c.d-n> (subnet → node). Two replicas racing for one subnet cannot both win.
 */
import { createHash } from 'node:crypto';
import { cidrSize, formatCidr, parseCidr, type Cidr } from '../../common/cidr.js';
import type { Store } from '../store/store.js';

/** DEFAULT_CLUSTER_CIDR is where node subnets come from unless --cluster-cidr says otherwise. */
export const DEFAULT_CLUSTER_CIDR = '10.244.0.0/16';
/** NODE_SUBNET_BITS is each node's prefix length (254 container addresses per node). */
export const NODE_SUBNET_BITS = 24;
const ALLOCATE_ATTEMPTS = 32;

/** searchStart spreads nodes registering at once over the CIDR (a stable hash of the name), so they rarely race for one subnet. */
function searchStart(node: string): number {
  return createHash('sha256').update(node).digest().readUInt32BE(0);
}

/** NODE_SUBNETS_PREFIX holds one key per node: node → subnet. */
export const NODE_SUBNETS_PREFIX = 'ipam/nodes/';
/** nodeSubnetKey is ipam/nodes/<name>. */
export const nodeSubnetKey = (node: string): string => `${NODE_SUBNETS_PREFIX}${node}`;
/** subnetClaimKey is ipam/subnets/<a.b.c.d-n>; '/' cannot appear in a key segment. */
export const subnetClaimKey = (subnet: string): string => `ipam/subnets/${subnet.replace('/', '-')}`;

/** SubnetOutcome is an allocation's result: the subnet, or why there is none. */
export type SubnetOutcome = { ok: true; subnet: string } | { ok: false; reason: 'Exhausted' | 'Conflict' };

/**
 * firstFreeSubnet is the first subnet of `bits` in cluster not in `used`, searching from the
 * start-th subnet and wrapping; undefined when all are taken.
 */
export function firstFreeSubnet(cluster: Cidr, bits: number, used: ReadonlySet<string>, start = 0): string | undefined {
  if (bits < cluster.bits || bits > 30) return undefined;
  const step = cidrSize({ base: 0, bits });
  const count = cidrSize(cluster) / step;
  for (let i = 0; i < count; i++) {
    const s = formatCidr({ base: cluster.base + ((start + i) % count) * step, bits });
    if (!used.has(s)) return s;
  }
  return undefined;
}

/** SubnetAllocator hands out node subnets from one cluster CIDR, stored in etcd. */
export class SubnetAllocator {
  private readonly cluster: Cidr;

  constructor(private readonly store: Store, clusterCidr: string = DEFAULT_CLUSTER_CIDR, private readonly bits = NODE_SUBNET_BITS) {
    const c = parseCidr(clusterCidr);
    if (!c || c.bits > bits) throw new Error(`cluster CIDR ${clusterCidr} is not an IPv4 prefix wider than /${bits}`);
    this.cluster = c;
  }

  /** clusterCidr is the range every node subnet lies in. */
  get clusterCidr(): string {
    return formatCidr(this.cluster);
  }

  /** subnetFor returns the node's subnet, allocating one on first call; idempotent per node. */
  async subnetFor(node: string): Promise<SubnetOutcome> {
    for (let i = 0; i < ALLOCATE_ATTEMPTS; i++) {
      const held = await this.store.getValue(nodeSubnetKey(node));
      if (held) return { ok: true, subnet: held };
      const used = new Set((await this.store.listValues(NODE_SUBNETS_PREFIX)).values());
      const subnet = firstFreeSubnet(this.cluster, this.bits, used, searchStart(node) + i);
      if (!subnet) return { ok: false, reason: 'Exhausted' };
      if (await this.store.createValues({ [nodeSubnetKey(node)]: subnet, [subnetClaimKey(subnet)]: node })) return { ok: true, subnet };
      // Someone else took the node's key (then the next get returns it) or this subnet: retry.
    }
    return { ok: false, reason: 'Conflict' };
  }

  /** release frees a removed node's subnet (both keys, in one transaction). */
  async release(node: string): Promise<void> {
    const held = await this.store.getValue(nodeSubnetKey(node));
    if (!held) return;
    await this.store.removeValuesIf(nodeSubnetKey(node), held, [subnetClaimKey(held)]);
  }
}
