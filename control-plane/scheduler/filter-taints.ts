import type { NodeFilter } from './types.js';

/** filterTaints rejects nodes with a NoSchedule taint; tolerations do not exist yet, so any taint repels. */
export const filterTaints: NodeFilter = {
  name: 'taints',
  check: (node) => (node.taints.some((t) => t.effect === 'NoSchedule') ? 'tainted' : undefined),
};
