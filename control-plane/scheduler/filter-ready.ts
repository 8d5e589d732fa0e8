import type { NodeFilter } from './types.js';

/** filterReady rejects nodes whose Ready condition is not True (no live agent session). */
export const filterReady: NodeFilter = {
  name: 'ready',
  check: (node) => (node.ready ? undefined : 'not ready'),
};
