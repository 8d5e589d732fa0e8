/**
 * Rollout routes: a service's revisions (history) and rollback (undo). A rollback only sets the
 * service's template back to an older revision's; the controller records it as a new revision
 * and rolls it out like any other change (as `kubectl rollout undo` does).
 */
import { isDeepStrictEqual } from 'node:util';
import type { FastifyInstance } from 'fastify';
import type { Revision, Service } from '../objects/types.js';
import { listRevisions } from '../controllers/rollout.js';
import { serviceKey } from '../store/keys.js';
import type { Store } from '../store/store.js';
import { notFound, sendError } from './errors.js';
import { admitTemplateChange } from './namespace-policy.js';

type NameParams = { ns: string; name: string };

/** ROLLBACK_BODY_SCHEMA is the body of POST .../rollback: an optional revision number. */
export const ROLLBACK_BODY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: { toRevision: { type: 'integer', minimum: 1 } },
} as const;

/** rollbackTarget picks the revision to go back to: the one asked for, or the newest whose template differs from the current one. */
export function rollbackTarget(revs: readonly Revision[], current: Service, toRevision?: number): Revision | undefined {
  if (toRevision !== undefined) return revs.find((r) => r.spec.revision === toRevision);
  return [...revs].reverse().find((r) => !isDeepStrictEqual(r.spec.template, current.spec.template));
}

/** registerRolloutRoutes adds GET .../revisions and POST .../rollback. */
export function registerRolloutRoutes(app: FastifyInstance, store: Store): void {
  app.get<{ Params: NameParams }>('/v1/namespaces/:ns/services/:name/revisions', async (req, reply) => {
    const { ns, name } = req.params;
    const svc = await store.get<Service>(serviceKey(ns, name));
    if (!svc) return sendError(reply, notFound('service', `${ns}/${name}`));
    return { items: await listRevisions(store, ns, name) };
  });

  app.post<{ Params: NameParams; Body: { toRevision?: number } }>('/v1/namespaces/:ns/services/:name/rollback', { schema: { body: ROLLBACK_BODY_SCHEMA } }, async (req, reply) => {
    const { ns, name } = req.params;
    const cur = await store.get<Service>(serviceKey(ns, name));
    if (!cur) return sendError(reply, notFound('service', `${ns}/${name}`));
    const revs = await listRevisions(store, ns, name);
    const target = rollbackTarget(revs, cur, req.body?.toRevision);
    if (!target) {
      return req.body?.toRevision !== undefined
        ? sendError(reply, { code: 'BERTH_ERR_NOT_FOUND', field: 'toRevision', message: `service "${ns}/${name}" has no revision ${req.body.toRevision}` })
        : sendError(reply, { code: 'BERTH_ERR_NO_PREVIOUS_REVISION', message: `service "${ns}/${name}" has no earlier revision with a different template` });
    }
    // An older template is checked against the namespace's level now, like any other new template.
    if (!isDeepStrictEqual(target.spec.template, cur.spec.template)) {
      const refused = await admitTemplateChange(store, `revision ${target.spec.revision} of service "${ns}/${name}"`, ns, target.spec.template);
      if (refused) return sendError(reply, refused);
    }
    const r = await store.mutate<Service>(serviceKey(ns, name), (s) => {
      if (isDeepStrictEqual(s.spec.template, target.spec.template)) return undefined;
      s.spec.template = structuredClone(target.spec.template);
      s.metadata.generation += 1;
      return s;
    }, cur);
    if (!r.ok) {
      return sendError(reply, r.reason === 'NotFound' ? notFound('service', `${ns}/${name}`) : { code: 'BERTH_ERR_CONFLICT', message: `service "${ns}/${name}" is being changed concurrently; retry` });
    }
    return { service: r.object, toRevision: target.spec.revision, changed: !('unchanged' in r) };
  });
}
