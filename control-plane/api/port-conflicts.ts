/**
 * Published-port admission across services. Two host-mode services may share a hostPort (the
 * scheduler keeps their tasks on different nodes), but an ingress port is published on every
 * node, so it may not collide with any other service's published port of the same protocol,
 * whichever mode that one uses.
 */
import type { FieldError } from '../errors.js';
import type { Service, ServiceSpec } from '../objects/types.js';

/** portConflict names the first published port of spec that collides with another service's, or undefined. */
export function portConflict(spec: ServiceSpec, self: { namespace: string; name: string }, others: readonly Service[]): FieldError | undefined {
  for (const [i, p] of (spec.template.ports ?? []).entries()) {
    if (!p.hostPort) continue;
    const mine = p.mode ?? 'host';
    for (const o of others) {
      if (o.metadata.namespace === self.namespace && o.metadata.name === self.name) continue;
      const theirs = (o.spec.template.ports ?? []).find((q) => q.hostPort === p.hostPort && q.protocol === p.protocol
        && (mine === 'ingress' || q.mode === 'ingress'));
      if (!theirs) continue;
      return {
        code: 'BERTH_ERR_CONFLICT',
        field: `spec.template.ports[${i}].hostPort`,
        message: `host port ${p.hostPort}/${p.protocol} is already published by service "${o.metadata.namespace}/${o.metadata.name}" (mode ${theirs.mode ?? 'host'}); an ingress port must be unique in the cluster`,
      };
    }
  }
  return undefined;
}
