import type { NodeFilter } from './types.js';

/** filterResources rejects nodes whose unallocated cpu, memory or pids cannot hold the task. */
export const filterResources: NodeFilter = {
  name: 'resources',
  check: (node, { task }) => {
    const r = task.resources;
    if (node.allocated.memory + r.memory > node.allocatable.memory) return 'insufficient memory';
    // Compare in millicores so 0.1 + 0.2 does not fail a node that has exactly 0.3 left.
    if (Math.round((node.allocated.cpu + r.cpu) * 1000) > Math.round(node.allocatable.cpu * 1000)) return 'insufficient cpu';
    if (node.allocatable.pids > 0 && node.allocated.pids + r.pids > node.allocatable.pids) return 'insufficient pids';
    return undefined;
  },
};
