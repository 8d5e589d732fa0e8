/**
 * Node spec routes (admins): labels and unschedulable by PATCH (merge) or PUT (replace), and the
 * cordon / uncordon / drain verbs. Status stays the agent's: these routes only write
 * metadata.labels and spec, with a compare-and-swap like every write.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Node } from '../objects/types.js';
import { nodeKey } from '../store/keys.js';
import type { Store } from '../store/store.js';
import { notFound, sendError } from './errors.js';

const LABEL_KEY = { type: 'string', minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$' } as const;
const LABEL_VALUE = { type: 'string', maxLength: 63, pattern: '^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$' } as const;

/** NODE_SPEC_BODY_SCHEMA is the body of PATCH/PUT /v1/nodes/:name; in PATCH a null label removes it. */
export const NODE_SPEC_BODY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    metadata: {
      type: 'object',
      additionalProperties: false,
      properties: { labels: { type: 'object', propertyNames: LABEL_KEY, additionalProperties: { anyOf: [LABEL_VALUE, { type: 'null' }] } } },
    },
    spec: {
      type: 'object',
      additionalProperties: false,
      properties: { unschedulable: { type: 'boolean' } },
    },
  },
} as const;

/** NodeSpecBody is what NODE_SPEC_BODY_SCHEMA admits. */
export interface NodeSpecBody {
  metadata?: { labels?: Record<string, string | null> };
  spec?: { unschedulable?: boolean };
}

/** NodeVerb is one of the admin verbs on a node. */
export type NodeVerb = 'cordon' | 'uncordon' | 'drain';

/** applyVerb returns the node with verb applied, or undefined when it changes nothing (pure). */
export function applyVerb(cur: Node, verb: NodeVerb): Node | undefined {
  const spec = cur.spec ?? { unschedulable: false, taints: [] };
  const want = verb === 'uncordon'
    ? { unschedulable: false, drain: false }
    : { unschedulable: true, drain: verb === 'drain' ? true : spec.drain ?? false };
  if (spec.unschedulable === want.unschedulable && (spec.drain ?? false) === want.drain) return undefined;
  const next: Node = { ...cur, spec: { ...spec, unschedulable: want.unschedulable } };
  if (want.drain) next.spec.drain = true;
  else delete next.spec.drain;
  return next;
}

/** applySpecBody merges (PATCH) or replaces (PUT) labels and unschedulable; undefined when nothing changes (pure). */
export function applySpecBody(cur: Node, body: NodeSpecBody, replace: boolean): Node | undefined {
  const labels: Record<string, string> = replace ? {} : { ...(cur.metadata.labels ?? {}) };
  for (const [k, v] of Object.entries(body.metadata?.labels ?? {})) {
    if (v === null) delete labels[k];
    else labels[k] = v;
  }
  if (replace && body.metadata?.labels === undefined) Object.assign(labels, cur.metadata.labels ?? {});
  const spec = cur.spec ?? { unschedulable: false, taints: [] };
  const unschedulable = body.spec?.unschedulable ?? (replace ? false : spec.unschedulable);
  const sameLabels = JSON.stringify(Object.entries(labels).sort()) === JSON.stringify(Object.entries(cur.metadata.labels ?? {}).sort());
  if (sameLabels && unschedulable === spec.unschedulable) return undefined;
  const next: Node = { ...cur, metadata: { ...cur.metadata, labels }, spec: { ...spec, unschedulable } };
  // Making a node schedulable again ends a drain too.
  if (!unschedulable) delete next.spec.drain;
  return next;
}

async function mutateNode(store: Store, reply: FastifyReply, name: string, fn: (cur: Node) => Node | undefined): Promise<unknown> {
  const r = await store.mutate<Node>(nodeKey(name), fn);
  if (!r.ok) {
    return r.reason === 'NotFound'
      ? sendError(reply, notFound('node', name))
      : sendError(reply, { code: 'BERTH_ERR_CONFLICT', message: `node "${name}" kept changing; try again` });
  }
  return r.object;
}

/** registerNodeRoutes adds PATCH/PUT /v1/nodes/:name and POST /v1/nodes/:name/{cordon,uncordon,drain}. */
export function registerNodeRoutes(app: FastifyInstance, store: Store): void {
  type P = { Params: { name: string }; Body: NodeSpecBody };
  app.patch<P>('/v1/nodes/:name', { schema: { body: NODE_SPEC_BODY_SCHEMA } }, async (req, reply) =>
    mutateNode(store, reply, req.params.name, (cur) => applySpecBody(cur, req.body, false)));
  app.put<P>('/v1/nodes/:name', { schema: { body: NODE_SPEC_BODY_SCHEMA } }, async (req, reply) =>
    mutateNode(store, reply, req.params.name, (cur) => applySpecBody(cur, req.body, true)));
  for (const verb of ['cordon', 'uncordon', 'drain'] as const) {
    app.post<{ Params: { name: string } }>(`/v1/nodes/:name/${verb}`, async (req, reply) =>
      mutateNode(store, reply, req.params.name, (cur) => applyVerb(cur, verb)));
  }
}
