import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance, type InjectOptions, type LightMyRequestResponse } from 'fastify';
import { silentLogger } from '../../common/log.js';
import { installErrorHandlers } from '../../control-plane/api/errors.js';
import { registerAuditHooks } from '../../control-plane/api/audit-hooks.js';
import { AuditLog, type AuditRecord } from '../../control-plane/security/audit.js';
import type { AccessRequest, Identity } from '../../control-plane/security/identity.js';

/** TOKENS stand in for authentication: the bearer token names the identity. */
const TOKENS: Record<string, Identity> = {
  alice: { name: 'alice', role: 'operator', namespaces: ['default'], via: 'token', tokenId: 't1' },
  victor: { name: 'victor', role: 'viewer', namespaces: ['*'], via: 'token', tokenId: 't2' },
  'cn-ops': { name: 'ops-laptop', role: 'admin', namespaces: ['*'], via: 'certificate' },
};

/** accessOf stands in for the access table: what a path asks for. */
function accessOf(method: string, params: Record<string, string>, url: string): AccessRequest | undefined {
  const path = url.split('?')[0]!;
  if (path.endsWith('/exec')) return { verb: 'exec', resource: 'tasks', namespace: params.ns, name: params.name };
  if (path.endsWith('/logs')) return { verb: 'logs', resource: 'tasks', namespace: params.ns, name: params.name };
  if (path.includes('/services')) {
    const verb = method === 'GET' ? (params.name ? 'get' : 'list') : method === 'DELETE' ? 'delete' : 'create';
    return { verb, resource: 'services', namespace: params.ns, ...(params.name ? { name: params.name } : {}) };
  }
  return undefined;
}

/** buildTestApp is a small API: fake authentication and authorization in onRequest, then the audit hooks. */
function buildTestApp(audit: AuditLog): { app: FastifyInstance; call(opts: InjectOptions): Promise<LightMyRequestResponse> } {
  // server.ts's settings, so an unknown field is refused rather than dropped
  const app = Fastify({ logger: false, ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } } });
  installErrorHandlers(app, silentLogger);
  app.addHook('onRequest', async (req, reply) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const identity = token === undefined ? undefined : TOKENS[token];
    if (!identity) {
      return reply.code(401).send({ error: { code: 'BERTH_ERR_UNAUTHENTICATED', message: token === undefined ? 'no credential' : 'unknown or expired token' } });
    }
    req.identity = identity;
    req.access = accessOf(req.method, req.params as Record<string, string>, req.url);
    if (identity.role === 'viewer' && req.method !== 'GET') {
      return reply.code(403).send({ error: { code: 'BERTH_ERR_FORBIDDEN', message: `token victor (viewer) may not ${req.access?.verb} ${req.access?.resource}` } });
    }
    return undefined;
  });
  registerAuditHooks(app, audit);
  // Registered after the audit hooks, so once it runs the audit hook has run too: a test waits
  // for it instead of sleeping before it asserts that nothing was written.
  let responded: (() => void) | undefined;
  app.addHook('onResponse', async () => responded?.());

  const body = { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string' } } } as const;
  app.get('/v1/namespaces/:ns/services', async () => ({ items: [] }));
  app.post('/v1/namespaces/:ns/services', { schema: { body } }, async (_req, reply) => reply.code(201).send({ kind: 'Service' }));
  app.delete('/v1/namespaces/:ns/services/:name', async () => ({}));
  app.post('/v1/namespaces/:ns/tasks/:name/exec', async () => ({ exitCode: 0, stdout: '', stderr: '' }));
  app.get('/v1/namespaces/:ns/tasks/:name/logs', async () => 'line\n');

  const call = async (opts: InjectOptions): Promise<LightMyRequestResponse> => {
    const done = new Promise<void>((resolve) => (responded = resolve));
    const res = await app.inject(opts);
    await done;
    await audit.flush();
    return res;
  };
  return { app, call };
}

const alice = { authorization: 'Bearer alice' };

describe('registerAuditHooks', () => {
  let dir = '';
  let audit: AuditLog;
  let t: ReturnType<typeof buildTestApp>;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-audit-hooks-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    audit = new AuditLog({ path: join(dir, `audit-${Math.random().toString(36).slice(2)}.log`), clock: () => Date.parse('2025-01-01T00:00:00Z') });
    t = buildTestApp(audit);
    await t.app.ready();
  });

  const records = (): Promise<AuditRecord[]> => audit.read();

  it('records a POST with who, what, where from and the status', async () => {
    const res = await t.call({ method: 'POST', url: '/v1/namespaces/default/services', headers: alice, payload: { name: 'web' }, remoteAddress: '10.9.8.7' });
    assert.equal(res.statusCode, 201);
    const got = await records();
    assert.equal(got.length, 1, `one record, got ${JSON.stringify(got)}`);
    const [r] = got;
    assert.equal(typeof r!.requestId, 'string');
    assert.ok(r!.requestId !== '');
    assert.deepEqual({ ...r!, requestId: '' }, {
      time: '2025-01-01T00:00:00.000Z', requestId: '', identity: 'alice', role: 'operator', via: 'token', source: '10.9.8.7',
      verb: 'create', resource: 'services', namespace: 'default', code: 201,
    });
  });

  it('records one line per mutating request, each with its own request id', async () => {
    await t.call({ method: 'POST', url: '/v1/namespaces/default/services', headers: alice, payload: { name: 'a' } });
    await t.call({ method: 'POST', url: '/v1/namespaces/default/services', headers: alice, payload: { name: 'b' } });
    await t.call({ method: 'DELETE', url: '/v1/namespaces/default/services/a', headers: alice });
    const got = await records();
    assert.deepEqual(got.map((r) => `${r.verb} ${r.name ?? ''} ${r.code}`), ['create  201', 'create  201', 'delete a 200']);
    assert.equal(new Set(got.map((r) => r.requestId)).size, 3);
  });

  it('records an exec with its command', async () => {
    await t.call({ method: 'POST', url: '/v1/namespaces/default/tasks/web-1/exec', headers: { authorization: 'Bearer cn-ops' }, payload: { command: ['cat', '/etc/shadow'] } });
    const [r] = await records();
    assert.equal(r?.verb, 'exec');
    assert.equal(r?.name, 'web-1');
    assert.deepEqual(r?.command, ['cat', '/etc/shadow']);
    assert.equal(r?.via, 'certificate');
    assert.equal(r?.identity, 'ops-laptop');
  });

  it('records logs although it is a GET, and nothing for a plain GET', async () => {
    const plain = await t.call({ method: 'GET', url: '/v1/namespaces/default/services', headers: alice });
    assert.equal(plain.statusCode, 200);
    assert.deepEqual(await records(), [], 'a plain GET writes nothing');
    await t.call({ method: 'GET', url: '/v1/namespaces/default/tasks/web-1/logs?tail=10', headers: alice });
    const got = await records();
    assert.deepEqual(got.map((r) => [r.verb, r.resource, r.name, r.code]), [['logs', 'tasks', 'web-1', 200]]);
    assert.equal(got[0]!.command, undefined);
  });

  it('records a failed authentication (401) with the reason, even on a GET, without identity', async () => {
    const res = await t.call({ method: 'GET', url: '/v1/namespaces/default/services?watch=1', headers: { authorization: 'Bearer stolen' }, remoteAddress: '203.0.113.5' });
    assert.equal(res.statusCode, 401);
    const [r] = await records();
    assert.deepEqual({ ...r!, requestId: '' }, {
      time: '2025-01-01T00:00:00.000Z', requestId: '', identity: '', role: '', via: '', source: '203.0.113.5',
      verb: 'GET', resource: '/v1/namespaces/default/services', code: 401, message: 'unknown or expired token',
    }, 'method and path stand in for the access request; the query string is left out');
  });

  it('records a 403 with the identity and the refusal message', async () => {
    const res = await t.call({ method: 'POST', url: '/v1/namespaces/default/services', headers: { authorization: 'Bearer victor' }, payload: { name: 'x' } });
    assert.equal(res.statusCode, 403);
    const [r] = await records();
    assert.deepEqual([r?.identity, r?.role, r?.verb, r?.code, r?.message], ['victor', 'viewer', 'create', 403, 'token victor (viewer) may not create services']);
  });

  it('copies the error message of a failed mutation (schema refusal, unknown route)', async () => {
    await t.call({ method: 'POST', url: '/v1/namespaces/default/services', headers: alice, payload: { name: 'web', imagee: 'x' } });
    await t.call({ method: 'PUT', url: '/v1/nothing/here', headers: alice, payload: {} });
    const got = await records();
    assert.equal(got.length, 2);
    assert.equal(got[0]!.code, 400);
    assert.match(got[0]!.message ?? '', /imagee/);
    assert.deepEqual([got[1]!.verb, got[1]!.resource, got[1]!.code], ['PUT', '/v1/nothing/here', 404]);
    assert.match(got[1]!.message ?? '', /no route for PUT/);
  });

  it('isAudited replaces the default choice', async () => {
    const only = new AuditLog({ path: join(dir, 'audit-custom.log') });
    const app = Fastify({ logger: false });
    registerAuditHooks(app, only, { isAudited: (req) => req.url === '/b' });
    let answered = 0;
    let allAnswered: () => void = () => {};
    const three = new Promise<void>((resolve) => (allAnswered = resolve));
    app.addHook('onResponse', async () => {
      if (++answered === 3) allAnswered();
    });
    app.get('/a', async () => ({}));
    app.get('/b', async () => ({}));
    app.post('/c', async () => ({}));
    for (const [method, url] of [['GET', '/a'], ['GET', '/b'], ['POST', '/c']] as const) await app.inject({ method, url });
    await three;
    await only.flush();
    assert.deepEqual((await only.read()).map((r) => r.resource), ['/b']);
  });
});
