/**
 * Named volumes, read from the nodes' reported lists (status.volumes) and deleted through the
 * node's agent session:
 * - `GET /v1/volumes?node=N` and `GET /v1/namespaces/:ns/volumes?node=N` list them as rows
 *   `{ node, namespace, name, sizeBytes, inUse, createdAt }`, by node, namespace and name.
 * - `DELETE /v1/namespaces/:ns/volumes/:name?node=N` deletes one from node N (the node may be
 *   left out when exactly one node reports the volume). Refused 409 BERTH_ERR_IN_USE while a
 *   stored task on that node that is not terminal mounts it; the agent checks its containers
 *   again before it removes the directory. Only the replica holding the node's session can ask
 *   its agent; another answers 503 BERTH_ERR_NODE_UNAVAILABLE.
 */
import type { FastifyInstance } from 'fastify';
import { TERMINAL_PHASES } from '../objects/conditions.js';
import type { Node, NodeVolume, Task } from '../objects/types.js';
import { namedVolumesOf } from '../objects/volume-admission.js';
import { isNodeKey, nodeKey } from '../store/keys.js';
import type { Store } from '../store/store.js';
import { listTasks } from '../store/task-templates.js';
import { VOLUME_DELETE_WAIT_MS, type VolumeDeleteOutcome } from '../gateway/volume-relay.js';
import { notFound, sendError } from './errors.js';

/** VolumeRelay is the part of the agent gateway the delete route needs. */
export interface VolumeRelay {
  deleteVolume(node: string, volume: { namespace: string; name: string }, waitMs: number): Promise<VolumeDeleteOutcome>;
}

/** VolumeRow is one named volume on one node, as the list routes answer it. */
export interface VolumeRow extends NodeVolume {
  node: string;
}

const QUERY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: { node: { type: 'string', minLength: 1 } },
} as const;

type Query = { node?: string };

/** volumeRows flattens the nodes' reported volumes, optionally of one namespace, by node, namespace and name. */
export function volumeRows(nodes: readonly Node[], namespace?: string): VolumeRow[] {
  return nodes
    .flatMap((n) => (n.status?.volumes ?? []).map((v) => ({ node: n.metadata.name, ...v })))
    .filter((r) => namespace === undefined || r.namespace === namespace)
    .sort((a, b) => a.node.localeCompare(b.node) || a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}

/** volumeUsers lists the tasks (namespace/name and phase) on node that are not terminal and mount the volume. */
export function volumeUsers(tasks: readonly Task[], node: string, namespace: string, name: string): string[] {
  return tasks
    .filter((t) => t.spec.nodeName === node && t.metadata.namespace === namespace && !TERMINAL_PHASES.has(t.status.phase)
      && namedVolumesOf(t.spec.template.volumes).includes(name))
    .map((t) => `${namespace}/${t.metadata.name} (${t.status.phase})`)
    .sort();
}

async function nodesOf(store: Store, node: string | undefined): Promise<Node[] | undefined> {
  if (node === undefined) return (await store.list<Node>('nodes/', isNodeKey)).items;
  const one = await store.get<Node>(nodeKey(node));
  return one ? [one] : undefined;
}

/** registerVolumeRoutes adds the list and delete routes; without a relay a delete answers BERTH_ERR_NODE_UNAVAILABLE. */
export function registerVolumeRoutes(app: FastifyInstance, store: Store, relay: VolumeRelay | undefined): void {
  app.get<{ Querystring: Query }>('/v1/volumes', { schema: { querystring: QUERY_SCHEMA } }, async (req, reply) => {
    const nodes = await nodesOf(store, req.query.node);
    if (!nodes) return sendError(reply, notFound('node', req.query.node!));
    return { items: volumeRows(nodes) };
  });

  app.get<{ Params: { ns: string }; Querystring: Query }>('/v1/namespaces/:ns/volumes', { schema: { querystring: QUERY_SCHEMA } }, async (req, reply) => {
    const nodes = await nodesOf(store, req.query.node);
    if (!nodes) return sendError(reply, notFound('node', req.query.node!));
    return { items: volumeRows(nodes, req.params.ns) };
  });

  app.delete<{ Params: { ns: string; name: string }; Querystring: Query }>('/v1/namespaces/:ns/volumes/:name',
    { schema: { querystring: QUERY_SCHEMA } }, async (req, reply) => {
      const { ns, name } = req.params;
      const volume = `${ns}/${name}`;
      let node = req.query.node;
      if (node === undefined) {
        const holders = [...new Set(volumeRows(await nodesOf(store, undefined) ?? [], ns).filter((r) => r.name === name).map((r) => r.node))];
        if (holders.length === 0) return sendError(reply, notFound('volume', volume));
        if (holders.length > 1) {
          return sendError(reply, { code: 'BERTH_ERR_VALIDATION', field: 'node', message: `node: volume ${volume} is on nodes ${holders.join(', ')}; name one (--node NODE)` });
        }
        node = holders[0]!;
      } else if (!(await store.get<Node>(nodeKey(node)))) {
        return sendError(reply, notFound('node', node));
      }
      const users = volumeUsers(await listTasks(store, `tasks/${ns}/`), node, ns, name);
      if (users.length > 0) {
        return sendError(reply, { code: 'BERTH_ERR_IN_USE', message: `volume ${volume} on node ${node} is in use by task${users.length > 1 ? 's' : ''} ${users.join(', ')}: delete or scale down the service first` });
      }
      if (!relay) return sendError(reply, { code: 'BERTH_ERR_NODE_UNAVAILABLE', message: 'this control plane has no agent gateway' });
      const out = await relay.deleteVolume(node, { namespace: ns, name }, VOLUME_DELETE_WAIT_MS);
      if (!out.ok) return sendError(reply, { code: out.code, message: `delete volume ${volume} on node ${node}: ${out.message}` });
      return { node, namespace: ns, name, deleted: true };
    });
}
