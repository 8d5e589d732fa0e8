/**
 * Host-gw routing between nodes: a route per other node's subnet via that node's address, IP
 * forwarding on, and masquerade for container traffic leaving the cluster CIDR. Routes berth
 * installs carry their own protocol number, so a sync can find and remove stale ones without
 * touching anyone else's.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Logger } from '../../common/log.js';
import { ip } from './links.js';

const run = promisify(execFile);

/** ROUTE_PROTO marks berth's peer routes (rtnetlink protocol numbers above 200 are free for local use). */
export const ROUTE_PROTO = 201;
const IPTABLES_TIMEOUT_MS = 10_000;

/** PeerRoute is one other node's subnet and the address it is reached through. */
export interface PeerRoute {
  subnet: string;
  address: string;
}

/** planRoutes says which installed routes (by destination) to delete and which to (re)place. */
export function planRoutes(installed: readonly PeerRoute[], wanted: readonly PeerRoute[]): { remove: string[]; replace: PeerRoute[] } {
  const want = new Map(wanted.map((r) => [r.subnet, r.address]));
  const have = new Map(installed.map((r) => [r.subnet, r.address]));
  return {
    remove: [...have.keys()].filter((s) => !want.has(s)),
    replace: wanted.filter((r) => have.get(r.subnet) !== r.address),
  };
}

/** syncPeerRoutes makes berth's routes exactly `wanted`; one bad route does not stop the rest. */
export async function syncPeerRoutes(wanted: readonly PeerRoute[], log: Logger): Promise<void> {
  const listed = JSON.parse((await ip(['-j', 'route', 'show', 'proto', String(ROUTE_PROTO)])) || '[]') as { dst: string; gateway?: string }[];
  const installed = listed.map((r) => ({ subnet: r.dst, address: r.gateway ?? '' }));
  const plan = planRoutes(installed, wanted);
  for (const subnet of plan.remove) {
    await ip(['route', 'del', subnet, 'proto', String(ROUTE_PROTO)]).catch((err: Error) => log.warn('stale peer route not removed', { subnet, error: err.message }));
  }
  for (const r of plan.replace) {
    await ip(['route', 'replace', r.subnet, 'via', r.address, 'proto', String(ROUTE_PROTO)])
      .catch((err: Error) => log.warn('peer route not installed', { subnet: r.subnet, via: r.address, error: err.message }));
  }
  if (plan.remove.length + plan.replace.length > 0) log.info('peer routes synced', { routes: wanted.length, removed: plan.remove.length, placed: plan.replace.length });
}

/** enableForwarding turns on IPv4 forwarding in the agent's network namespace. */
export async function enableForwarding(): Promise<void> {
  await writeFile('/proc/sys/net/ipv4/ip_forward', '1\n');
}

/** ensureMasquerade NATs traffic from the node's subnet to outside the cluster CIDR; without iptables it logs and skips. */
export async function ensureMasquerade(subnet: string, clusterCidr: string, log: Logger): Promise<void> {
  const rule = ['POSTROUTING', '-s', subnet, '!', '-d', clusterCidr, '-m', 'comment', '--comment', 'berth egress', '-j', 'MASQUERADE'];
  try {
    await run('iptables', ['-w', '5', '-t', 'nat', '-C', ...rule], { timeout: IPTABLES_TIMEOUT_MS });
    return; // already there
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      log.warn('iptables not found; containers get no egress masquerade');
      return;
    }
  }
  await run('iptables', ['-w', '5', '-t', 'nat', '-A', ...rule], { timeout: IPTABLES_TIMEOUT_MS });
}
