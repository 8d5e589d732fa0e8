/** Read-only routes for tasks and nodes, plus health and version. */
import type { FastifyInstance } from 'fastify';
import type { Node, Task } from '../objects/types.js';
import { isNodeKey, nodeKey } from '../store/keys.js';
import { listTasks as listStoredTasks } from '../store/task-templates.js';
import type { Store } from '../store/store.js';
import { berthVersion } from '../../common/version.js';
import { notFound, sendError } from './errors.js';

/** HEALTH_ETCD_DEADLINE_MS bounds the etcd read /healthz makes. */
export const HEALTH_ETCD_DEADLINE_MS = 2_000;

const TASK_QUERY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: { service: { type: 'string' }, node: { type: 'string' } },
} as const;

type TaskQuery = { service?: string; node?: string };

async function listTasks(store: Store, ns: string | undefined, q: TaskQuery): Promise<Task[]> {
  const prefix = ns === undefined ? 'tasks/' : q.service ? `tasks/${ns}/${q.service}/` : `tasks/${ns}/`;
  const items = await listStoredTasks(store, prefix);
  return items.filter((t) => (!q.service || t.spec.service === q.service) && (!q.node || t.spec.nodeName === q.node));
}

/** registerReadRoutes adds task, node, health and version routes to app. */
export function registerReadRoutes(app: FastifyInstance, store: Store): void {
  app.get('/healthz', async (_req, reply) => {
    try {
      await store.ping(HEALTH_ETCD_DEADLINE_MS);
      return { status: 'ok' };
    } catch (err) {
      return reply.code(503).send({ status: 'unavailable', message: `etcd: ${(err as Error).message}` });
    }
  });

  app.get('/v1/version', async () => ({ version: berthVersion(), apiVersion: 'v1', node: process.version }));

  app.get<{ Querystring: TaskQuery }>('/v1/tasks', { schema: { querystring: TASK_QUERY_SCHEMA } }, async (req) =>
    ({ items: await listTasks(store, undefined, req.query) }));

  app.get<{ Params: { ns: string }; Querystring: TaskQuery }>('/v1/namespaces/:ns/tasks', { schema: { querystring: TASK_QUERY_SCHEMA } }, async (req) =>
    ({ items: await listTasks(store, req.params.ns, req.query) }));

  app.get<{ Params: { ns: string; name: string } }>('/v1/namespaces/:ns/tasks/:name', async (req, reply) => {
    // Task keys carry the service; a name lookup scans the namespace (fine at skeleton scale).
    const task = (await listTasks(store, req.params.ns, {})).find((t) => t.metadata.name === req.params.name);
    return task ?? sendError(reply, notFound('task', `${req.params.ns}/${req.params.name}`));
  });

  app.get('/v1/nodes', async () => ({ items: (await store.list<Node>('nodes/', isNodeKey)).items }));

  app.get<{ Params: { name: string } }>('/v1/nodes/:name', async (req, reply) => {
    const node = await store.get<Node>(nodeKey(req.params.name));
    return node ?? sendError(reply, notFound('node', req.params.name));
  });
}
