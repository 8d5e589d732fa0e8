import { matches } from '../objects/constraints.js';
import type { NodeFilter } from './types.js';

/** filterConstraints rejects nodes that break any of the task's placement constraints. */
export const filterConstraints: NodeFilter = {
  name: 'constraints',
  check: (node, ctx) => (ctx.task.constraints.every((c) => matches(c, node)) ? undefined : 'constraints not met'),
};
