/**
 * DELETE /v1/nodes/:name: an admin removes a node from the cluster (`berth delete node`). Like
 * `docker node rm`, a node whose agent is connected is refused unless forced: its containers are
 * still running. Removal marks the node's unfinished tasks lost (the service controller replaces
 * them at once), frees its subnet and ends its agent session on this replica, and deletes the
 * node object last, so a removal that fails halfway is completed by repeating it. An agent that
 * is still running registers again on its next reconnect, as a kubelet does.
 */
import type { FastifyInstance } from 'fastify';
import { lostTaskOp, tasksToMarkLost } from '../controllers/node-lifecycle.js';
import { getCondition } from '../objects/conditions.js';
import type { Node, Task } from '../objects/types.js';
import { nodeKey } from '../store/keys.js';
import type { Store, WriteOp } from '../store/store.js';
import { listTasks } from '../store/task-templates.js';
import { notFound, sendError } from './errors.js';

/** NODE_DELETED_REASON is the status.reason of a task whose node an admin removed. */
export const NODE_DELETED_REASON = 'NodeDeleted';
const REMOVE_ATTEMPTS = 5;

/** NodeRemoval is what the agent gateway does for a removed node: free its subnet, end its session. */
export interface NodeRemoval {
  forget(node: string): Promise<void>;
}

/** lostOnRemoval is the update marking every unfinished task of the node lost (pure). */
export function lostOnRemoval(tasks: readonly Task[], node: string, now: string): WriteOp[] {
  return tasksToMarkLost(tasks.filter((t) => t.spec.nodeName === node)).map((t) => lostTaskOp(t, NODE_DELETED_REASON, `node ${node} was removed from the cluster`, now));
}

/** registerNodeRemoval adds DELETE /v1/nodes/:name[?force=true]. */
export function registerNodeRemoval(app: FastifyInstance, store: Store, removal?: NodeRemoval): void {
  type R = { Params: { name: string }; Querystring: { force?: 'true' | 'false' } };
  // Query values are strings and the API never coerces types: spell the two allowed values.
  const querystring = { type: 'object', additionalProperties: false, properties: { force: { enum: ['true', 'false'] } } } as const;
  app.delete<R>('/v1/nodes/:name', { schema: { querystring } }, async (req, reply) => {
    const name = req.params.name;
    const force = req.query.force === 'true';
    const node = await store.get<Node>(nodeKey(name));
    if (!node) return sendError(reply, notFound('node', name));
    if (getCondition(node.status?.conditions, 'Ready')?.status === 'True' && !force) {
      return sendError(reply, { code: 'BERTH_ERR_NODE_READY', message: `node "${name}" is Ready: its agent is connected and its containers run; stop the agent (or drain the node) first, or force the removal (berth delete node ${name} --force)` });
    }
    for (let i = 0; ; i++) {
      const items = await listTasks(store, 'tasks/');
      const ops = lostOnRemoval(items, name, new Date().toISOString());
      if (ops.length === 0) break;
      const results = await store.commit(ops);
      if (results.every((r) => r.ok)) break;
      if (i + 1 >= REMOVE_ATTEMPTS) return sendError(reply, { code: 'BERTH_ERR_CONFLICT', message: `the tasks of node "${name}" kept changing; try again` });
    }
    await removal?.forget(name);
    const r = await store.remove<Node>(nodeKey(name));
    if (!r.ok && r.reason !== 'NotFound') return sendError(reply, { code: 'BERTH_ERR_CONFLICT', message: `node "${name}" changed while being removed; try again` });
    return r.ok ? r.object : node;
  });
}
