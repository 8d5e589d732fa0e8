/**
 * The routing mesh (Swarm's ingress mode): every node publishes each ingress port and DNATs it
 * to one of the service's ready replicas anywhere in the cluster (container addresses are
 * routable between nodes through the host-gw routes). The whole chain is rewritten in one
 * iptables-restore from the complete endpoint set the control plane pushes, so a sync is
 * level-triggered and atomic: a replica that stops being ready drops out in one step.
 *
 * Spreading uses `-m statistic --mode random`: rule i of n matches with probability 1/(n-i), so
 * each replica gets 1/n of new connections. Connections are marked so POSTROUTING masquerades
 * them: the replica's reply then comes back through the entry node, which undoes the DNAT. A
 * port without a ready replica has no rule: the connection reaches the node itself, where
 * nothing listens, and is refused (tcp reset, icmp port unreachable for udp).
 */
import type { ServiceEndpoints } from '../../proto/gen/berth/v1/agent.js';
import { INGRESS_CHAIN, INGRESS_MARK } from './ports.js';

/** IngressTarget is one published ingress port and the replicas it spreads over. */
export interface IngressTarget {
  /** service is "<namespace>/<name>", for the rule comment. */
  service: string;
  protocol: 'tcp' | 'udp';
  hostPort: number;
  containerPort: number;
  /** ips are the ready replicas, sorted. */
  ips: string[];
}

/**
 * ingressTargets picks the ingress-mode ports out of the endpoint set, ordered by port and
 * protocol. Admission refuses two services on one ingress port; should two still arrive, the
 * first by service name wins so every node makes the same choice.
 */
export function ingressTargets(services: readonly ServiceEndpoints[]): IngressTarget[] {
  const byPort = new Map<string, IngressTarget>();
  const ordered = [...services].sort((a, b) => `${a.namespace}/${a.service}`.localeCompare(`${b.namespace}/${b.service}`));
  for (const s of ordered) {
    for (const p of s.ports) {
      if (p.mode !== 'ingress' || p.hostPort <= 0) continue;
      const protocol = p.protocol === 'udp' ? 'udp' : 'tcp';
      const key = `${p.hostPort}/${protocol}`;
      if (byPort.has(key)) continue;
      byPort.set(key, { service: `${s.namespace}/${s.service}`, protocol, hostPort: p.hostPort, containerPort: p.containerPort, ips: [...s.ips].sort() });
    }
  }
  return [...byPort.values()].sort((a, b) => a.hostPort - b.hostPort || a.protocol.localeCompare(b.protocol));
}

/** probability renders 1/n with iptables' 11 listed decimals (the kernel keeps a 32-bit fraction). */
function probability(n: number): string {
  return (1 / n).toFixed(11);
}

/** renderIngress is the iptables-restore script that makes BERTH-INGRESS exactly the targets. */
export function renderIngress(targets: readonly IngressTarget[]): string {
  // Declaring the chain under --noflush flushes it: the script replaces the chain's content.
  const lines = ['*nat', `:${INGRESS_CHAIN} - [0:0]`];
  for (const t of targets) {
    if (t.ips.length === 0) continue;
    const match = `-A ${INGRESS_CHAIN} -p ${t.protocol} -m ${t.protocol} --dport ${t.hostPort} -m comment --comment berth-ingress:${t.service}`;
    lines.push(`${match} -j MARK --set-xmark ${INGRESS_MARK}/${INGRESS_MARK}`);
    t.ips.forEach((ip, i) => {
      const left = t.ips.length - i;
      const pick = left > 1 ? ` -m statistic --mode random --probability ${probability(left)}` : '';
      lines.push(`${match}${pick} -j DNAT --to-destination ${ip}:${t.containerPort}`);
    });
  }
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}
