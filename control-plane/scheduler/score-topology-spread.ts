import { attributeOf } from '../objects/constraints.js';
import type { NodeScorer } from './types.js';

/** scoreTopologySpread prefers nodes whose spread attribute value (e.g. zone) holds fewer of the service's tasks. */
export const scoreTopologySpread: NodeScorer = {
  name: 'topology-spread',
  weight: 10_000,
  score: (node, { task, spreadCounts }) => {
    if (task.spread === undefined) return 0;
    const value = attributeOf(task.spread, node);
    return value === undefined ? -Number.MAX_SAFE_INTEGER / 1e6 : -(spreadCounts.get(value) ?? 0);
  },
};
