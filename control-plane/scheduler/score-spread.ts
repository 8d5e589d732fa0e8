import type { NodeScorer } from './types.js';

/** scoreSpread prefers nodes running fewer tasks of the same service (one point per task). */
export const scoreSpread: NodeScorer = {
  name: 'spread',
  weight: 100,
  score: (node, { task }) => (task.strategy === 'binpack' ? 0 : -(node.tasksByService.get(task.service) ?? 0)),
};
