/** Service routes: list, get, create, create-or-replace (apply), scale, delete. */
import { replaceUserFields } from '../objects/replace.js';
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { admitService, type AdmittedService, type ServiceBody } from '../objects/validation.js';
import { SCALE_BODY_SCHEMA, SERVICE_BODY_SCHEMA } from '../objects/service-schema.js';
import type { FieldError } from '../errors.js';
import type { Service } from '../objects/types.js';
import { isServiceKey, serviceKey } from '../store/keys.js';
import type { Store } from '../store/store.js';
import { notFound, sendError } from './errors.js';
import { admitTemplateChange, namespaceLevel, policyRefusal } from './namespace-policy.js';
import { portConflict } from './port-conflicts.js';

/** APPLY_ATTEMPTS bounds create-or-replace retries when another writer races us. */
export const APPLY_ATTEMPTS = 8;

type NsParams = { ns: string };
type NameParams = { ns: string; name: string };

function newService(a: AdmittedService): Service {
  return {
    kind: 'Service',
    metadata: { name: a.name, namespace: a.namespace, uid: randomUUID(), generation: 1, labels: a.labels, createdAt: new Date().toISOString() },
    spec: a.spec,
    status: { observedGeneration: 0, replicas: 0, runningReplicas: 0, conditions: [] },
  };
}

/** replaceSpec applies a user's spec and labels to the stored service; generation bumps only on spec change. */
function replaceSpec(cur: Service, a: AdmittedService): Service | undefined {
  return replaceUserFields(cur, a.spec, a.labels);
}

/** checkPorts refuses a published port that collides with another service's ingress port (or vice versa). */
async function checkPorts(store: Store, a: AdmittedService): Promise<FieldError | undefined> {
  if (!(a.spec.template.ports ?? []).some((p) => p.hostPort)) return undefined;
  return portConflict(a.spec, a, (await store.list<Service>('services/', isServiceKey)).items);
}

/** registerServiceRoutes adds the service routes to app. */
export function registerServiceRoutes(app: FastifyInstance, store: Store): void {
  app.get('/v1/services', async () => ({ items: (await store.list<Service>('services/', isServiceKey)).items }));

  app.get<{ Params: NsParams }>('/v1/namespaces/:ns/services', async (req) =>
    ({ items: (await store.list<Service>(`services/${req.params.ns}/`, isServiceKey)).items }));

  app.get<{ Params: NameParams }>('/v1/namespaces/:ns/services/:name', async (req, reply) => {
    const svc = await store.get<Service>(serviceKey(req.params.ns, req.params.name));
    return svc ?? sendError(reply, notFound('service', `${req.params.ns}/${req.params.name}`));
  });

  app.post<{ Params: NsParams; Body: ServiceBody }>('/v1/namespaces/:ns/services', { schema: { body: SERVICE_BODY_SCHEMA } }, async (req, reply) => {
    const admitted = admitService(req.body, { namespace: req.params.ns });
    if (!admitted.ok) return sendError(reply, admitted.error);
    const a = admitted.value;
    const refused = await admitTemplateChange(store, `service "${a.namespace}/${a.name}"`, a.namespace, a.spec.template);
    if (refused) return sendError(reply, refused);
    const clash = await checkPorts(store, a);
    if (clash) return sendError(reply, clash);
    const r = await store.create(serviceKey(a.namespace, a.name), newService(a));
    if (!r.ok) return sendError(reply, { code: 'BERTH_ERR_ALREADY_EXISTS', field: 'metadata.name', message: `service "${a.namespace}/${a.name}" already exists` });
    return reply.code(201).send(r.object);
  });

  app.put<{ Params: NameParams; Body: ServiceBody }>('/v1/namespaces/:ns/services/:name', { schema: { body: SERVICE_BODY_SCHEMA } }, async (req, reply) => {
    const admitted = admitService(req.body, { namespace: req.params.ns, name: req.params.name });
    if (!admitted.ok) return sendError(reply, admitted.error);
    const a = admitted.value;
    const clash = await checkPorts(store, a);
    if (clash) return sendError(reply, clash);
    const key = serviceKey(a.namespace, a.name);
    const level = await namespaceLevel(store, a.namespace);
    for (let i = 0; i < APPLY_ATTEMPTS; i++) {
      const cur = await store.get<Service>(key);
      // Only a new template is checked: replicas or labels of a service admitted under a looser level may still change.
      if (!cur || !isDeepStrictEqual(cur.spec.template, a.spec.template)) {
        const refused = policyRefusal(`service "${a.namespace}/${a.name}"`, a.namespace, a.spec.template, level);
        if (refused) return sendError(reply, refused);
      }
      if (!cur) {
        if (a.resourceVersion !== undefined) return sendError(reply, notFound('service', `${a.namespace}/${a.name}`));
        const r = await store.create(key, newService(a));
        if (r.ok) return reply.code(201).send(r.object);
        continue;
      }
      if (a.resourceVersion !== undefined && a.resourceVersion !== cur.metadata.resourceVersion) {
        return sendError(reply, { code: 'BERTH_ERR_CONFLICT', field: 'metadata.resourceVersion', message: `service "${a.namespace}/${a.name}" changed (resourceVersion ${cur.metadata.resourceVersion}, yours ${a.resourceVersion}); read it again and retry` });
      }
      const next = replaceSpec(cur, a);
      if (!next) return reply.code(200).send(cur);
      const r = await store.update(key, next, cur.metadata.resourceVersion!);
      if (r.ok) return reply.code(200).send(r.object);
    }
    return sendError(reply, { code: 'BERTH_ERR_CONFLICT', message: `service "${a.namespace}/${a.name}" is being changed concurrently; retry` });
  });

  app.put<{ Params: NameParams; Body: { replicas: number } }>('/v1/namespaces/:ns/services/:name/scale', { schema: { body: SCALE_BODY_SCHEMA } }, async (req, reply) => {
    const { ns, name } = req.params;
    const r = await store.mutate<Service>(serviceKey(ns, name), (cur) => {
      if (cur.spec.replicas === req.body.replicas) return undefined;
      cur.spec.replicas = req.body.replicas;
      cur.metadata.generation += 1;
      return cur;
    });
    if (!r.ok) {
      return sendError(reply, r.reason === 'NotFound' ? notFound('service', `${ns}/${name}`) : { code: 'BERTH_ERR_CONFLICT', message: `service "${ns}/${name}" is being changed concurrently; retry` });
    }
    return r.object;
  });

  app.delete<{ Params: NameParams }>('/v1/namespaces/:ns/services/:name', async (req, reply) => {
    const { ns, name } = req.params;
    const r = await store.remove<Service>(serviceKey(ns, name));
    if (!r.ok) return sendError(reply, notFound('service', `${ns}/${name}`));
    await store.removePrefix(`${serviceKey(ns, name)}/`);
    return r.object;
  });
}
