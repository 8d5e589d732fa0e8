/**
 * `berth delete service|node|namespace NAME` and `berth scale SERVICE N`: single-request verbs.
 */
import { errorText } from './client.js';
import type { CommandContext } from './context.js';
import { nsPath } from './context.js';
import { EXIT_OK, EXIT_REQUEST_FAILED, usageError } from './errors.js';
import { resolveResource } from './get.js';

/** parseReplicas accepts a non-negative decimal integer; anything else is a usage error. */
export function parseReplicas(raw: string): number {
  if (!/^\d+$/.test(raw)) throw usageError(`replicas must be a non-negative integer, got "${raw}"`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw usageError(`replicas out of range: ${raw}`);
  return n;
}

/**
 * deleteCommand deletes one service (its tasks are stopped and removed by the controllers),
 * removes a node (refused while its agent is connected unless force), or deletes a Namespace
 * object (refused while the namespace has services).
 */
export async function deleteCommand(ctx: CommandContext, resource: string, name: string, opts: { force?: boolean } = {}): Promise<number> {
  const kind = resolveResource(resource);
  if (kind !== 'services' && kind !== 'nodes' && kind !== 'namespaces') throw usageError(`delete supports "service", "node" and "namespace", got "${resource}"`);
  if (opts.force && kind !== 'nodes') throw usageError('--force applies to "delete node" only');
  const path = kind === 'nodes'
    ? `/v1/nodes/${encodeURIComponent(name)}${opts.force ? '?force=true' : ''}`
    : kind === 'namespaces' ? `/v1/namespaces/${encodeURIComponent(name)}` : `${nsPath(ctx.namespace)}/services/${encodeURIComponent(name)}`;
  const result = await ctx.client.delete(path);
  if (!result.ok) {
    ctx.io.stderr.write(`error: ${errorText(result.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  ctx.io.stdout.write(`${kind === 'nodes' ? 'node' : kind === 'namespaces' ? 'namespace' : 'service'}/${name} deleted\n`);
  return EXIT_OK;
}

/** scaleCommand sets a service's replicas through the scale subresource (spec.replicas only). */
export async function scaleCommand(ctx: CommandContext, service: string, rawReplicas: string): Promise<number> {
  const replicas = parseReplicas(rawReplicas);
  // accept kubectl's `service/NAME` spelling as well as a bare name
  const name = service.startsWith('service/') ? service.slice('service/'.length) : service;
  if (name === '') throw usageError('scale: missing service name');
  const result = await ctx.client.put(`${nsPath(ctx.namespace)}/services/${encodeURIComponent(name)}/scale`, { replicas });
  if (!result.ok) {
    ctx.io.stderr.write(`error: ${errorText(result.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  ctx.io.stdout.write(`service/${name} scaled to ${replicas}\n`);
  return EXIT_OK;
}
