import type { NodeFilter } from './types.js';

/** filterPorts rejects nodes where one of the task's host ports is already published. */
export const filterPorts: NodeFilter = {
  name: 'ports',
  check: (node, ctx) => (ctx.task.hostPorts.some((p) => node.hostPorts.has(p)) ? 'host port in use' : undefined),
};
