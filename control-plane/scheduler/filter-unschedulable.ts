import type { NodeFilter } from './types.js';

/** filterUnschedulable rejects cordoned nodes (spec.unschedulable). */
export const filterUnschedulable: NodeFilter = {
  name: 'unschedulable',
  check: (node) => (node.unschedulable ? 'cordoned' : undefined),
};
