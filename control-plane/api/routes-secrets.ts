/**
 * Secret and Config routes: list, get, create, create-or-replace (apply), delete; a Secret's
 * values only with ?reveal=true (verb reveal, audited), and the data-key rotation. A value change
 * bumps metadata.generation, which the service controller folds into the revisions of the
 * services that use the object, so they roll.
 */
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { FieldError } from '../errors.js';
import { admitKeyed, CONFIG_BODY_SCHEMA, SECRET_BODY_SCHEMA, type AdmittedKeyed, type KeyedBody } from '../objects/secret-validation.js';
import type { Config, Secret, SecretView } from '../objects/secret-types.js';
import type { Service } from '../objects/types.js';
import { configKey, isConfigKey, isSecretKey, isServiceKey, secretKey } from '../store/keys.js';
import type { Store } from '../store/store.js';
import type { SecretSealer } from '../security/secret-sealer.js';
import { notFound, sendError } from './errors.js';

/** KEYED_APPLY_ATTEMPTS bounds create-or-replace retries when another writer races us. */
const KEYED_APPLY_ATTEMPTS = 8;

type NsParams = { ns: string };
type NameParams = { ns: string; name: string };
type Kind = 'Secret' | 'Config';

const sizesOf = (values: Record<string, Buffer>): Record<string, number> =>
  Object.fromEntries(Object.entries(values).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, v.length]));

const newMeta = (a: AdmittedKeyed): Secret['metadata'] =>
  ({ name: a.name, namespace: a.namespace, uid: randomUUID(), generation: 1, labels: a.labels, createdAt: new Date().toISOString() });

/** secretView is what the API shows of a stored Secret: never the sealed text, values only when revealed. */
function secretView(s: Secret, data?: Record<string, string>): SecretView {
  const view: SecretView = { kind: 'Secret', metadata: s.metadata, sizes: s.spec.sizes };
  if (data) view.data = data;
  return view;
}

/** usersOf lists the services in ns whose template projects kind/name. */
export function usersOf(services: readonly Service[], kind: Kind, name: string): string[] {
  const list = kind === 'Secret' ? 'secrets' : 'configs';
  return services.filter((s) => (s.spec.template[list] ?? []).some((p) => p.name === name)).map((s) => s.metadata.name).sort();
}

/** registerSecretRoutes adds the Secret and Config routes; without a sealer Secrets answer 500 BERTH_ERR_SECRET_SEALING. */
export function registerSecretRoutes(app: FastifyInstance, store: Store, sealer: SecretSealer | undefined): void {
  const sealing = (reply: FastifyReply, err: unknown): FastifyReply =>
    sendError(reply, { code: 'BERTH_ERR_SECRET_SEALING', message: `cannot seal or open the secret: ${(err as Error).message}` });
  const needSealer = (): SecretSealer => {
    if (!sealer) throw Object.assign(new Error('this control plane has no sealing key'), { sealing: true });
    return sealer;
  };

  const openValues = async (key: string, s: Secret): Promise<Record<string, Buffer>> => {
    const json = JSON.parse((await needSealer().open(s.spec.sealed, key)).toString('utf8')) as Record<string, string>;
    return Object.fromEntries(Object.entries(json).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
  };
  const sealValues = async (key: string, values: Record<string, Buffer>): Promise<string> => {
    const json = JSON.stringify(Object.fromEntries(Object.entries(values).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, v.toString('base64')])));
    return needSealer().seal(Buffer.from(json), key);
  };

  // --- Secrets ---
  app.get('/v1/secrets', async () => ({ items: (await store.list<Secret>('secrets/', isSecretKey)).items.map((s) => secretView(s)) }));
  app.get<{ Params: NsParams }>('/v1/namespaces/:ns/secrets', async (req) =>
    ({ items: (await store.list<Secret>(`secrets/${req.params.ns}/`, isSecretKey)).items.map((s) => secretView(s)) }));

  app.get<{ Params: NameParams; Querystring: { reveal?: string } }>('/v1/namespaces/:ns/secrets/:name', async (req, reply) => {
    const key = secretKey(req.params.ns, req.params.name);
    const s = await store.get<Secret>(key);
    if (!s) return sendError(reply, notFound('secret', `${req.params.ns}/${req.params.name}`));
    if (!isReveal(req.query.reveal)) return secretView(s);
    try {
      const values = await openValues(key, s);
      return secretView(s, Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v.toString('base64')])));
    } catch (err) {
      return sealing(reply, err);
    }
  });

  const putSecret = async (a: AdmittedKeyed, createOnly: boolean, reply: FastifyReply): Promise<FastifyReply | SecretView> => {
    const key = secretKey(a.namespace, a.name);
    try {
      for (let i = 0; i < KEYED_APPLY_ATTEMPTS; i++) {
        const cur = await store.get<Secret>(key);
        if (!cur) {
          if (a.resourceVersion !== undefined) return sendError(reply, notFound('secret', `${a.namespace}/${a.name}`));
          const obj: Secret = { kind: 'Secret', metadata: newMeta(a), spec: { sealed: await sealValues(key, a.values), sizes: sizesOf(a.values) }, status: {} };
          const r = await store.create(key, obj);
          if (r.ok) return reply.code(201).send(secretView(r.object));
          if (createOnly) return sendError(reply, alreadyExists('secret', a));
          continue;
        }
        if (createOnly) return sendError(reply, alreadyExists('secret', a));
        const stale = precondition('secret', a, cur.metadata.resourceVersion!);
        if (stale) return sendError(reply, stale);
        const same = isDeepStrictEqual(await openValues(key, cur), a.values);
        if (same && isDeepStrictEqual(cur.metadata.labels, a.labels)) return reply.code(200).send(secretView(cur));
        const next: Secret = structuredClone(cur);
        next.metadata.labels = a.labels;
        if (!same) {
          next.spec = { sealed: await sealValues(key, a.values), sizes: sizesOf(a.values) };
          next.metadata.generation += 1;
        }
        const r = await store.update(key, next, cur.metadata.resourceVersion!);
        if (r.ok) return reply.code(200).send(secretView(r.object));
      }
    } catch (err) {
      return sealing(reply, err);
    }
    return sendError(reply, { code: 'BERTH_ERR_CONFLICT', message: `secret "${a.namespace}/${a.name}" is being changed concurrently; retry` });
  };

  app.post<{ Params: NsParams; Body: KeyedBody }>('/v1/namespaces/:ns/secrets', { schema: { body: SECRET_BODY_SCHEMA } }, async (req, reply) => {
    const admitted = admitKeyed(req.body, { namespace: req.params.ns });
    return admitted.ok ? putSecret(admitted.value, true, reply) : sendError(reply, admitted.error);
  });
  app.put<{ Params: NameParams; Body: KeyedBody }>('/v1/namespaces/:ns/secrets/:name', { schema: { body: SECRET_BODY_SCHEMA } }, async (req, reply) => {
    const admitted = admitKeyed(req.body, { namespace: req.params.ns, name: req.params.name });
    return admitted.ok ? putSecret(admitted.value, false, reply) : sendError(reply, admitted.error);
  });

  app.post('/v1/secrets/rotate-key', async (_req, reply) => {
    try {
      return await needSealer().rotate();
    } catch (err) {
      return sealing(reply, err);
    }
  });

  // --- Configs ---
  app.get('/v1/configs', async () => ({ items: (await store.list<Config>('configs/', isConfigKey)).items }));
  app.get<{ Params: NsParams }>('/v1/namespaces/:ns/configs', async (req) => ({ items: (await store.list<Config>(`configs/${req.params.ns}/`, isConfigKey)).items }));
  app.get<{ Params: NameParams }>('/v1/namespaces/:ns/configs/:name', async (req, reply) =>
    (await store.get<Config>(configKey(req.params.ns, req.params.name))) ?? sendError(reply, notFound('config', `${req.params.ns}/${req.params.name}`)));

  const putConfig = async (a: AdmittedKeyed, createOnly: boolean, reply: FastifyReply): Promise<FastifyReply | Config> => {
    const key = configKey(a.namespace, a.name);
    const data = Object.fromEntries(Object.entries(a.values).sort(([x], [y]) => x.localeCompare(y)).map(([k, v]) => [k, v.toString('utf8')]));
    for (let i = 0; i < KEYED_APPLY_ATTEMPTS; i++) {
      const cur = await store.get<Config>(key);
      if (!cur) {
        if (a.resourceVersion !== undefined) return sendError(reply, notFound('config', `${a.namespace}/${a.name}`));
        const r = await store.create(key, { kind: 'Config', metadata: newMeta(a), data } satisfies Config);
        if (r.ok) return reply.code(201).send(r.object);
        if (createOnly) return sendError(reply, alreadyExists('config', a));
        continue;
      }
      if (createOnly) return sendError(reply, alreadyExists('config', a));
      const stale = precondition('config', a, cur.metadata.resourceVersion!);
      if (stale) return sendError(reply, stale);
      const same = isDeepStrictEqual(cur.data, data);
      if (same && isDeepStrictEqual(cur.metadata.labels, a.labels)) return reply.code(200).send(cur);
      const next: Config = { ...structuredClone(cur), data };
      next.metadata.labels = a.labels;
      if (!same) next.metadata.generation += 1;
      const r = await store.update(key, next, cur.metadata.resourceVersion!);
      if (r.ok) return reply.code(200).send(r.object);
    }
    return sendError(reply, { code: 'BERTH_ERR_CONFLICT', message: `config "${a.namespace}/${a.name}" is being changed concurrently; retry` });
  };

  app.post<{ Params: NsParams; Body: KeyedBody }>('/v1/namespaces/:ns/configs', { schema: { body: CONFIG_BODY_SCHEMA } }, async (req, reply) => {
    const admitted = admitKeyed(req.body, { namespace: req.params.ns });
    return admitted.ok ? putConfig(admitted.value, true, reply) : sendError(reply, admitted.error);
  });
  app.put<{ Params: NameParams; Body: KeyedBody }>('/v1/namespaces/:ns/configs/:name', { schema: { body: CONFIG_BODY_SCHEMA } }, async (req, reply) => {
    const admitted = admitKeyed(req.body, { namespace: req.params.ns, name: req.params.name });
    return admitted.ok ? putConfig(admitted.value, false, reply) : sendError(reply, admitted.error);
  });

  // --- delete, refused while a service uses the object (as Swarm refuses) ---
  for (const kind of ['Secret', 'Config'] as const) {
    const noun = kind.toLowerCase();
    app.delete<{ Params: NameParams }>(`/v1/namespaces/:ns/${noun}s/:name`, async (req, reply) => {
      const { ns, name } = req.params;
      const users = usersOf((await store.list<Service>(`services/${ns}/`, isServiceKey)).items, kind, name);
      if (users.length > 0) {
        return sendError(reply, { code: 'BERTH_ERR_IN_USE', message: `${noun} "${ns}/${name}" is used by service${users.length > 1 ? 's' : ''} ${users.join(', ')}; remove it from their templates first` });
      }
      const key = kind === 'Secret' ? secretKey(ns, name) : configKey(ns, name);
      const r = await store.remove<Secret | Config>(key);
      if (!r.ok) return sendError(reply, notFound(noun, `${ns}/${name}`));
      return r.object.kind === 'Secret' ? secretView(r.object) : r.object;
    });
  }
}

/** isReveal reads ?reveal=true|1. */
export function isReveal(v: string | undefined): boolean {
  return v === 'true' || v === '1';
}

function alreadyExists(noun: string, a: AdmittedKeyed): FieldError {
  return { code: 'BERTH_ERR_ALREADY_EXISTS', field: 'metadata.name', message: `${noun} "${a.namespace}/${a.name}" already exists` };
}

function precondition(noun: string, a: AdmittedKeyed, stored: string): FieldError | undefined {
  if (a.resourceVersion === undefined || a.resourceVersion === stored) return undefined;
  return { code: 'BERTH_ERR_CONFLICT', field: 'metadata.resourceVersion', message: `${noun} "${a.namespace}/${a.name}" changed (resourceVersion ${stored}, yours ${a.resourceVersion}); read it again and retry` };
}
