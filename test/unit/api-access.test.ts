import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../../common/log.js';
import { ROUTE_RULES, ruleFor } from '../../control-plane/api/access.js';
import { buildApi } from '../../control-plane/api/server.js';
import { AuditLog } from '../../control-plane/security/audit.js';
import { ClusterCa } from '../../control-plane/security/pki.js';
import { Tokens } from '../../control-plane/security/tokens.js';
import type { Store } from '../../control-plane/store/store.js';
import { ADMIN_HEADERS, testAuthenticator, testToken } from '../support/api-auth.js';

// Authentication and authorization answer before any handler runs: any store access throws.
const untouchable = new Proxy({}, { get: (_t, p) => { throw new Error(`store.${String(p)} touched before authorization`); } }) as Store;
const log = createLogger('error');

const VIEWER_TOKEN = testToken('00000000e001');
const DEV_VIEWER_TOKEN = testToken('00000000e002');
const DEV_ADMIN_TOKEN = testToken('00000000e003');
const auth = () => testAuthenticator({
  [VIEWER_TOKEN]: { role: 'viewer', name: 'vera' },
  [DEV_VIEWER_TOKEN]: { role: 'viewer', name: 'dave', namespaces: ['dev'] },
  [DEV_ADMIN_TOKEN]: { role: 'admin', name: 'dora', namespaces: ['dev'] },
});
/** Method is every method the API's table uses. */
type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD';
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** PARAMS are valid values for every path parameter the table uses (the path check runs before authentication). */
const PARAMS: Record<string, string> = { ns: 'default', name: 'web', id: '0123456789ab' };

/** urlOf fills a route pattern's parameters (node names get a node-like value). */
function urlOf(pattern: string): string {
  return pattern.replace(/:(\w+)/g, (_m, p: string) => (p === 'name' && pattern.startsWith('/v1/nodes/') ? 'n1' : PARAMS[p] ?? assert.fail(`no value for :${p} in ${pattern}`)));
}

const routes = Object.entries(ROUTE_RULES).map(([key, rule]) => {
  const [method, pattern] = key.split(' ') as [Method, string];
  return { key, method, pattern, url: urlOf(pattern), rule };
});

/** PENDING rules name routes still to come; remove one when it lands. */
const PENDING: string[] = [];

let dir = '';
let audit: AuditLog;
let app: FastifyInstance;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'berth-api-access-'));
  audit = new AuditLog({ path: join(dir, 'audit.log') });
  // With security and audit deps every route of the table is registered.
  const security = { tokens: new Tokens(untouchable), ca: await ClusterCa.generate() };
  app = buildApi(untouchable, log, { auth: auth(), security, audit });
  await app.ready();
});
after(async () => {
  await app.close();
  await audit.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the route table', () => {
  it('lists only routes the API serves, besides the ones announced as not implemented yet', () => {
    const stale = routes.filter((r) => !app.hasRoute({ method: r.method, url: r.pattern })).map((r) => r.key);
    assert.deepEqual(stale, PENDING, `rules for routes the API does not register: ${stale.join(', ')}`);
  });

  it('answers HEAD with the GET rule', () => {
    assert.deepEqual(ruleFor('HEAD', '/v1/nodes'), ruleFor('GET', '/v1/nodes'));
    assert.equal(ruleFor('GET', undefined), undefined);
  });
});

describe('without a credential', () => {
  // Each request comes from its own address, so the failure limiter (tested in
  // authentication.test.ts) never turns a 401 into a 429 here.
  routes.forEach((r, i) => {
    if (r.rule === 'public') return;
    it(`${r.key} answers 401 BERTH_ERR_UNAUTHENTICATED`, async () => {
      const res = await app.inject({ method: r.method, url: r.url, remoteAddress: `10.1.${i}.1` });
      assert.equal(res.statusCode, 401, `${r.method} ${r.url}: expected 401, saw ${res.statusCode} ${res.body}`);
      assert.equal((res.json() as { error: { code: string } }).error.code, 'BERTH_ERR_UNAUTHENTICATED');
    });
  });

  const open = routes.filter((r) => r.rule === 'public');
  it('leaves exactly /healthz and /readyz public', () => {
    assert.deepEqual(open.map((r) => r.key).sort(), ['GET /healthz', 'GET /readyz']);
  });
  for (const r of open) {
    it(`${r.key} answers without asking for one`, async () => {
      const res = await app.inject({ method: r.method, url: r.url, remoteAddress: '10.2.0.1' });
      // /healthz reads etcd, which this store refuses: 503 is fine, 401 is not.
      assert.notEqual(res.statusCode, 401, `${r.key}: ${res.body}`);
      assert.notEqual(res.statusCode, 429, `${r.key}: ${res.body}`);
    });
  }

  it('answers 401, not 404, for a route that does not exist (routes are not revealed)', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/no-such-thing', remoteAddress: '10.3.0.1' });
    assert.equal(res.statusCode, 401, res.body);
    const known = await app.inject({ method: 'GET', url: '/v1/no-such-thing', headers: ADMIN_HEADERS, remoteAddress: '10.3.0.2' });
    assert.equal(known.statusCode, 404, `an authenticated caller gets the 404: ${known.body}`);
  });

  it('answers 401 to HEAD on a protected route', async () => {
    const res = await app.inject({ method: 'HEAD', url: '/v1/nodes', remoteAddress: '10.3.0.3' });
    assert.equal(res.statusCode, 401);
  });

  it('answers 401 to an unknown bearer token, with the message', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/version', headers: bearer(testToken('00000000dead')), remoteAddress: '10.3.0.4' });
    assert.equal(res.statusCode, 401);
    assert.match((res.json() as { error: { message: string } }).error.message, /unknown, revoked or malformed/);
  });
});

describe('a viewer', () => {
  it('is refused POST services with 403 naming who, the verb, the resource and the namespace, before the body is read', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/namespaces/default/services',
      headers: { ...bearer(VIEWER_TOKEN), 'content-type': 'application/json' },
      payload: JSON.stringify({ kind: 'Service', metadata: { name: 'web' }, spec: { replicas: 1, template: { image: 'oci:/x' } } }),
    });
    assert.equal(res.statusCode, 403, res.body);
    const e = (res.json() as { error: { code: string; message: string } }).error;
    assert.equal(e.code, 'BERTH_ERR_FORBIDDEN');
    assert.equal(e.message, 'token vera (viewer) may not create services in namespace default');
  });

  const refused: { name: string; method: Method; url: string; token: string }[] = [
    { name: 'exec in a task', method: 'POST', url: '/v1/namespaces/default/tasks/web-1/exec', token: VIEWER_TOKEN },
    { name: 'cordon a node', method: 'POST', url: '/v1/nodes/n1/cordon', token: VIEWER_TOKEN },
    { name: 'list tokens', method: 'GET', url: '/v1/tokens', token: VIEWER_TOKEN },
    { name: 'read the audit log', method: 'GET', url: '/v1/audit', token: VIEWER_TOKEN },
    { name: 'scoped to dev, list services across namespaces', method: 'GET', url: '/v1/services', token: DEV_VIEWER_TOKEN },
    { name: 'scoped to dev, list services in prod', method: 'GET', url: '/v1/namespaces/prod/services', token: DEV_VIEWER_TOKEN },
    { name: 'scoped to dev, watch services in prod', method: 'GET', url: '/v1/namespaces/prod/services?watch=1', token: DEV_VIEWER_TOKEN },
    { name: 'scoped to dev, read namespace prod', method: 'GET', url: '/v1/namespaces/prod', token: DEV_VIEWER_TOKEN },
  ];
  for (const c of refused) {
    it(`is refused to ${c.name} with 403`, async () => {
      const res = await app.inject({ method: c.method, url: c.url, headers: bearer(c.token) });
      assert.equal(res.statusCode, 403, `${c.method} ${c.url}: expected 403, saw ${res.statusCode} ${res.body}`);
    });
  }

  const canI: { name: string; body: Record<string, string>; allowed: boolean; reason: RegExp }[] = [
    { name: 'create services', body: { verb: 'create', resource: 'services', namespace: 'default' }, allowed: false, reason: /^token vera \(viewer\) may not create services in namespace default$/ },
    { name: 'exec tasks', body: { verb: 'exec', resource: 'tasks', namespace: 'default' }, allowed: false, reason: /may not exec tasks/ },
    { name: 'get services', body: { verb: 'get', resource: 'services', namespace: 'default' }, allowed: true, reason: /may get services/ },
  ];
  for (const c of canI) {
    it(`asks can-i ${c.name} and is told ${c.allowed ? 'yes' : 'no'} with a reason`, async () => {
      const res = await app.inject({ method: 'POST', url: '/v1/auth/can-i', headers: bearer(VIEWER_TOKEN), payload: c.body });
      assert.equal(res.statusCode, 200, res.body);
      const d = res.json() as { allowed: boolean; reason: string };
      assert.equal(d.allowed, c.allowed, `allowed: expected ${c.allowed}, saw ${d.allowed} (${d.reason})`);
      assert.match(d.reason, c.reason);
    });
  }

  it('learns who it is from whoami', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/auth/whoami', headers: bearer(DEV_VIEWER_TOKEN) });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { name: 'dave', role: 'viewer', namespaces: ['dev'], via: 'token', tokenId: '00000000e002' });
  });
});

describe('an admin scoped to namespace dev', () => {
  // Minting a token or a client certificate lets the caller name any role and namespaces, so a
  // scoped admin allowed to do it can issue itself an unscoped admin credential. A 500 here means
  // authorization let the request through to the handler (whose store refuses every access).
  const cases: { name: string; url: string; body: Record<string, unknown> }[] = [
    { name: 'mint an unscoped admin token', url: '/v1/tokens', body: { role: 'admin' } },
    { name: 'mint an unscoped admin client certificate', url: '/v1/certificates', body: { csr: 'x', name: 'dora2', role: 'admin' } },
  ];
  for (const c of cases) {
    it(`is refused to ${c.name} with 403`, async () => {
      const res = await app.inject({ method: 'POST', url: c.url, headers: bearer(DEV_ADMIN_TOKEN), payload: c.body });
      assert.equal(res.statusCode, 403, `POST ${c.url}: expected 403, saw ${res.statusCode} ${res.body}`);
    });
  }
});

describe('a route registered without a rule', () => {
  const cases: { name: string; add: (a: FastifyInstance) => void }[] = [
    { name: 'GET /v1/new-thing', add: (a) => a.get('/v1/new-thing', async () => ({})) },
    { name: 'POST /v1/nodes/:name/reboot', add: (a) => a.post('/v1/nodes/:name/reboot', async () => ({})) },
    { name: 'a rule for GET does not cover DELETE /v1/version', add: (a) => a.delete('/v1/version', async () => ({})) },
  ];
  for (const c of cases) {
    it(`stops the API: ${c.name}`, async () => {
      const a = buildApi(untouchable, log, { auth: auth() });
      try {
        assert.throws(() => c.add(a), /has no authorization rule in control-plane\/api\/access\.ts/);
      } finally {
        await a.close();
      }
    });
  }
});
