import type { NodeInfo, NodeScorer } from './types.js';

function utilisation(node: NodeInfo, cpu: number, memory: number): number {
  const c = node.allocatable.cpu > 0 ? (node.allocated.cpu + cpu) / node.allocatable.cpu : 1;
  const m = node.allocatable.memory > 0 ? (node.allocated.memory + memory) / node.allocatable.memory : 1;
  return (c + m) / 2;
}

/**
 * scoreAllocation is in [0, 1]: with strategy spread it prefers the least allocated node after
 * placement, with binpack the most allocated. Weight 1 makes it a tie-breaker below spreading.
 */
export const scoreAllocation: NodeScorer = {
  name: 'allocation',
  weight: 1,
  score: (node, { task }) => {
    const u = Math.min(1, utilisation(node, task.resources.cpu, task.resources.memory));
    return task.strategy === 'binpack' ? u : 1 - u;
  },
};
