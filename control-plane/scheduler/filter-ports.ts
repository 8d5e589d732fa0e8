import type { PortSpec } from '../objects/types.js';
import type { NodeFilter } from './types.js';

/**
 * hostPortKeys are the "<port>/<protocol>" a task publishes on its own node. Ingress-mode ports
 * are left out: the routing mesh publishes them on every node and admission keeps them apart
 * from host ports, so they never compete for a node.
 */
export function hostPortKeys(ports: readonly PortSpec[] | undefined): string[] {
  return (ports ?? []).filter((p) => p.hostPort && p.mode !== 'ingress').map((p) => `${p.hostPort}/${p.protocol}`);
}

/** filterPorts rejects nodes where one of the task's host ports is already published. */
export const filterPorts: NodeFilter = {
  name: 'ports',
  check: (node, ctx) => (ctx.task.hostPorts.some((p) => node.hostPorts.has(p)) ? 'host port in use' : undefined),
};
