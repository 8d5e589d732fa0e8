/**
 * Namespace routes: list, get (with the services that break its level, computed on read),
 * create-or-update (CAS) and delete (refused while services remain). Namespaces stay implicit:
 * one with services but no Namespace object reads as the default level with status.implicit.
 * Changing a level writes the Namespace only; running services and tasks are left alone.
 * The :ns parameter is a DNS label before any handler runs (path-params.ts).
 */
import { replaceUserFields } from '../objects/replace.js';
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_POLICY_LEVEL } from '../objects/admission-policy.js';
import { NAMESPACE_BODY_SCHEMA } from '../objects/namespace-schema.js';
import type { Namespace, Service } from '../objects/types.js';
import { admitNamespace, type AdmittedNamespace, type NamespaceBody } from '../objects/validation.js';
import { isNamespaceKey, isServiceKey, namespaceKey } from '../store/keys.js';
import type { Store } from '../store/store.js';
import { notFound, sendError } from './errors.js';
import { levelOf, namespaceViolations } from './namespace-policy.js';
import { APPLY_ATTEMPTS } from './routes-services.js';

type NameParams = { ns: string };

/** MAX_NAMES_IN_MESSAGE bounds how many service names a not-empty error lists. */
const MAX_NAMES_IN_MESSAGE = 5;

async function servicesIn(store: Store, ns: string): Promise<Service[]> {
  return (await store.list<Service>(`services/${ns}/`, isServiceKey)).items;
}

function newNamespace(a: AdmittedNamespace): Namespace {
  return {
    kind: 'Namespace',
    metadata: { name: a.name, uid: randomUUID(), generation: 1, labels: a.labels, createdAt: new Date().toISOString() },
    spec: a.spec,
    status: {},
  };
}

/** replaceNamespace applies a user's spec and labels; status is recomputed on read, so it is cleared. */
function replaceNamespace(cur: Namespace, a: AdmittedNamespace): Namespace | undefined {
  const next = replaceUserFields(cur, a.spec, a.labels);
  return next && { ...next, status: {} };
}

/** implicitNamespace stands for a namespace that has services but no object: the default level, as old as its oldest service. */
function implicitNamespace(name: string, services: readonly Service[]): Namespace {
  const createdAt = services.map((s) => s.metadata.createdAt).sort()[0] ?? '';
  return {
    kind: 'Namespace',
    metadata: { name, uid: '', generation: 0, labels: {}, createdAt },
    spec: { policy: DEFAULT_POLICY_LEVEL },
    status: { implicit: true },
  };
}

/** withViolations adds the services that break the namespace's level now. */
function withViolations(ns: Namespace, services: readonly Service[]): Namespace {
  return { ...ns, status: { ...ns.status, violations: namespaceViolations(services, levelOf(ns)) } };
}

/** registerNamespaceRoutes adds the namespace routes to app. */
export function registerNamespaceRoutes(app: FastifyInstance, store: Store): void {
  app.get('/v1/namespaces', async () => {
    const [stored, services] = await Promise.all([
      store.list<Namespace>('namespaces/', isNamespaceKey),
      store.list<Service>('services/', isServiceKey),
    ]);
    const named = new Set(stored.items.map((n) => n.metadata.name));
    const byNs = new Map<string, Service[]>();
    for (const s of services.items) {
      const ns = s.metadata.namespace ?? '';
      if (named.has(ns)) continue;
      byNs.set(ns, [...(byNs.get(ns) ?? []), s]);
    }
    const implicit = [...byNs].map(([ns, svcs]) => implicitNamespace(ns, svcs));
    return { items: [...stored.items, ...implicit].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)) };
  });

  app.get<{ Params: NameParams }>('/v1/namespaces/:ns', async (req, reply) => {
    const name = req.params.ns;
    const [stored, services] = await Promise.all([store.get<Namespace>(namespaceKey(name)), servicesIn(store, name)]);
    if (!stored && services.length === 0) return sendError(reply, notFound('namespace', name));
    return withViolations(stored ?? implicitNamespace(name, services), services);
  });

  app.put<{ Params: NameParams; Body: NamespaceBody }>('/v1/namespaces/:ns', { schema: { body: NAMESPACE_BODY_SCHEMA } }, async (req, reply) => {
    const admitted = admitNamespace(req.body, req.params.ns);
    if (!admitted.ok) return sendError(reply, admitted.error);
    const a = admitted.value;
    const key = namespaceKey(a.name);
    for (let i = 0; i < APPLY_ATTEMPTS; i++) {
      const cur = await store.get<Namespace>(key);
      if (!cur) {
        if (a.resourceVersion !== undefined) return sendError(reply, notFound('namespace', a.name));
        const r = await store.create(key, newNamespace(a));
        if (r.ok) return reply.code(201).send(withViolations(r.object, await servicesIn(store, a.name)));
        continue;
      }
      if (a.resourceVersion !== undefined && a.resourceVersion !== cur.metadata.resourceVersion) {
        return sendError(reply, { code: 'BERTH_ERR_CONFLICT', field: 'metadata.resourceVersion', message: `namespace "${a.name}" changed (resourceVersion ${cur.metadata.resourceVersion}, yours ${a.resourceVersion}); read it again and retry` });
      }
      const next = replaceNamespace(cur, a);
      if (!next) return reply.code(200).send(withViolations(cur, await servicesIn(store, a.name)));
      const r = await store.update(key, next, cur.metadata.resourceVersion!);
      if (r.ok) return reply.code(200).send(withViolations(r.object, await servicesIn(store, a.name)));
    }
    return sendError(reply, { code: 'BERTH_ERR_CONFLICT', message: `namespace "${a.name}" is being changed concurrently; retry` });
  });

  app.delete<{ Params: NameParams }>('/v1/namespaces/:ns', async (req, reply) => {
    const name = req.params.ns;
    const services = await servicesIn(store, name);
    if (services.length > 0) {
      const names = services.map((s) => s.metadata.name).sort();
      const shown = names.slice(0, MAX_NAMES_IN_MESSAGE).join(', ') + (names.length > MAX_NAMES_IN_MESSAGE ? ', ...' : '');
      return sendError(reply, {
        code: 'BERTH_ERR_NAMESPACE_NOT_EMPTY',
        message: `namespace "${name}" still has ${names.length} service${names.length === 1 ? '' : 's'} (${shown}); delete them first`,
      });
    }
    const r = await store.remove<Namespace>(namespaceKey(name));
    if (!r.ok) return sendError(reply, notFound('namespace', name));
    return r.object;
  });
}
