/**
 * Namespace admission levels through the API (buildApi() over a real embedded etcd, fastify
 * inject() as the test admin, so every request runs the API's whole hook chain, authentication
 * and authorization included): Namespace CRUD with CAS, implicit namespaces, violations
 * computed on read, and service create, replace and rollback refused at the namespace's level
 * without touching stored state.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Etcd3 } from 'etcd3';
import { silentLogger } from '../../common/log.js';
import { buildApi } from '../../control-plane/api/server.js';
import { newRevision, revisionKey } from '../../control-plane/controllers/rollout.js';
import { startEmbeddedEtcd, type EmbeddedEtcd } from '../../control-plane/etcd/embedded.js';
import type { ContainerTemplate, Namespace, Service } from '../../control-plane/objects/types.js';
import { Store } from '../../control-plane/store/store.js';
import { ADMIN_HEADERS, testAuthenticator } from '../support/api-auth.js';

const dataDir = mkdtempSync(join(tmpdir(), 'berth-admission-test-'));
let etcd: EmbeddedEtcd;
let client: Etcd3;
let store: Store;
let app: FastifyInstance;

before(async () => {
  etcd = await startEmbeddedEtcd({ dataDir, clientPort: 23797, peerPort: 23807, log: silentLogger });
  client = new Etcd3({ hosts: etcd.endpoint });
  store = new Store(client);
  // Tokens live in memory (testAuthenticator) so the etcd snapshots compared below hold only
  // what the routes under test write.
  app = buildApi(store, silentLogger, { auth: testAuthenticator() });
  await app.ready();
});

after(async () => {
  await app?.close();
  client?.close();
  await etcd?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

type ApiError = { error: { code: string; message: string; field?: string } };

async function api<T = unknown>(method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, payload?: unknown): Promise<{ status: number; body: T }> {
  const res = await app.inject({ method, url, headers: ADMIN_HEADERS, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { status: res.statusCode, body: res.json<T>() };
}

async function stored(): Promise<Record<string, string>> {
  return client.getAll().prefix('/berth/v1/').strings();
}

const IMAGE = 'oci-archive:/images/busybox.tar';
const service = (name: string, template: Partial<ContainerTemplate> = {}, replicas = 1) => ({
  kind: 'Service', metadata: { name }, spec: { replicas, template: { image: IMAGE, ...template } },
});
const SYS_ADMIN = { security: { capAdd: ['SYS_ADMIN'] } };

test('a namespace nobody created is 404 until it has services, then implicit at baseline', async () => {
  const missing = await api<ApiError>('GET', '/v1/namespaces/default');
  assert.deepEqual([missing.status, missing.body.error.code], [404, 'BERTH_ERR_NOT_FOUND']);
  assert.equal((await api('PUT', '/v1/namespaces/default/services/web', service('web'))).status, 201);
  const implicit = await api<Namespace>('GET', '/v1/namespaces/default');
  assert.equal(implicit.status, 200);
  assert.deepEqual([implicit.body.spec.policy, implicit.body.status], ['baseline', { implicit: true, violations: [] }]);
  const list = await api<{ items: Namespace[] }>('GET', '/v1/namespaces');
  assert.deepEqual(list.body.items.map((n) => [n.metadata.name, n.spec.policy, n.status.implicit]), [['default', 'baseline', true]]);
  const services = await api<{ items: Service[] }>('GET', '/v1/services');
  assert.deepEqual(services.body.items.map((s) => s.kind), ['Service'], 'namespace objects never appear as services');
});

test('baseline refuses SYS_ADMIN on create and replace with every violation listed, and stores nothing', async () => {
  const before = await stored();
  const created = await api<ApiError>('POST', '/v1/namespaces/default/services', service('admin', { ...SYS_ADMIN }));
  assert.equal(created.status, 400);
  assert.deepEqual([created.body.error.code, created.body.error.field], ['BERTH_ERR_POLICY_VIOLATION', 'spec.template.security.capAdd[0]']);
  assert.match(created.body.error.message, /^service "default\/admin" is not allowed in namespace "default" at policy level baseline \(1 violation\): spec\.template\.security\.capAdd\[0\]: SYS_ADMIN is not allowed at policy level baseline \(allowed: AUDIT_WRITE, CHOWN, /);
  const replaced = await api<ApiError>('PUT', '/v1/namespaces/default/services/web', service('web', { security: { capAdd: ['SYS_ADMIN'], seccomp: 'unconfined' } }));
  assert.equal(replaced.status, 400);
  assert.match(replaced.body.error.message, /\(2 violations\): .*capAdd\[0\].*; spec\.template\.security\.seccomp: unconfined is not allowed/);
  const typo = await api<ApiError>('PUT', '/v1/namespaces/default/services/web', service('web', { security: { capDrop: ['NET_RAWW'] } }));
  assert.deepEqual([typo.status, typo.body.error.code, typo.body.error.field], [400, 'BERTH_ERR_VALIDATION', 'spec.template.security.capDrop[0]']);
  assert.deepEqual(await stored(), before, 'a refused request must not change etcd');
});

test('PUT namespace creates, updates with CAS and refuses what the schema does not know', async () => {
  const created = await api<Namespace>('PUT', '/v1/namespaces/lab', { kind: 'Namespace', metadata: { name: 'lab', labels: { team: 'a' } }, spec: { policy: 'privileged' } });
  assert.equal(created.status, 201);
  assert.deepEqual([created.body.kind, created.body.metadata.generation, created.body.metadata.labels, created.body.spec], ['Namespace', 1, { team: 'a' }, { policy: 'privileged' }]);
  const raw = JSON.parse((await stored())['/berth/v1/namespaces/lab']!) as Namespace;
  assert.deepEqual(raw.status, {}, 'violations are computed on read, never stored');
  const same = await api<Namespace>('PUT', '/v1/namespaces/lab', { spec: { policy: 'privileged' }, metadata: { labels: { team: 'a' } } });
  assert.deepEqual([same.status, same.body.metadata.resourceVersion], [200, created.body.metadata.resourceVersion]);
  const stale = await api<ApiError>('PUT', '/v1/namespaces/lab', { metadata: { resourceVersion: '1' }, spec: { policy: 'baseline' } });
  assert.deepEqual([stale.status, stale.body.error.code, stale.body.error.field], [409, 'BERTH_ERR_CONFLICT', 'metadata.resourceVersion']);
  const absent = await api<ApiError>('PUT', '/v1/namespaces/nowhere', { metadata: { resourceVersion: '5' }, spec: { policy: 'baseline' } });
  assert.equal(absent.status, 404);

  const bad: [unknown, string, string | RegExp][] = [
    [{ spec: { policy: 'baseline', extra: 1 } }, 'spec.extra', 'spec: unknown field "extra"'],
    [{ spec: { policy: 'open' } }, 'spec.policy', 'spec.policy: must be one of "privileged", "baseline", "restricted"'],
    [{ spec: {} }, 'spec.policy', 'spec.policy: required'],
    [{}, 'spec', 'spec: required'],
    [{ kind: 'Service', spec: { policy: 'baseline' } }, 'kind', 'kind: must be "Namespace"'],
    [{ metadata: { name: 'lab', namespace: 'x' }, spec: { policy: 'baseline' } }, 'metadata.namespace', 'metadata: unknown field "namespace"'],
    [{ metadata: { name: 'other' }, spec: { policy: 'baseline' } }, 'metadata.name', /does not match the name in the URL/],
  ];
  for (const [body, field, message] of bad) {
    const r = await api<ApiError>('PUT', '/v1/namespaces/lab', body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.body.error.field, field, JSON.stringify(r.body));
    if (typeof message === 'string') assert.equal(r.body.error.message, message);
    else assert.match(r.body.error.message, message);
  }
});

test('tightening a level leaves services alone, reports them on read, and gates only template changes', async () => {
  assert.equal((await api('PUT', '/v1/namespaces/lab/services/dbg', service('dbg', { ...SYS_ADMIN }))).status, 201, 'privileged allows SYS_ADMIN');
  const svcBefore = JSON.parse((await stored())['/berth/v1/services/lab/dbg']!) as Service;
  const tightened = await api<Namespace>('PUT', '/v1/namespaces/lab', { spec: { policy: 'restricted' }, metadata: { labels: { team: 'a' } } });
  assert.equal(tightened.status, 200);
  assert.equal(tightened.body.metadata.generation, 2);
  assert.deepEqual(tightened.body.status.violations?.map((v) => [v.service, v.violations.length]), [['dbg', 3]]);
  assert.deepEqual(JSON.parse((await stored())['/berth/v1/services/lab/dbg']!), svcBefore, 'the service is not touched');

  const read = await api<Namespace>('GET', '/v1/namespaces/lab');
  assert.deepEqual(read.body.status.violations?.[0]?.violations.map((m) => m.split(':')[0]), ['spec.template.security.capAdd[0]', 'spec.template.user', 'spec.template.security.capDrop']);

  const scaled = await api<Service>('PUT', '/v1/namespaces/lab/services/dbg', service('dbg', { ...SYS_ADMIN }, 3));
  assert.deepEqual([scaled.status, scaled.body.spec.replicas], [200, 3], 'replicas may change while the template stays');
  const changed = await api<ApiError>('PUT', '/v1/namespaces/lab/services/dbg', service('dbg', { ...SYS_ADMIN, env: { A: '1' } }, 3));
  assert.deepEqual([changed.status, changed.body.error.code], [400, 'BERTH_ERR_POLICY_VIOLATION']);
  assert.match(changed.body.error.message, /at policy level restricted \(3 violations\)/);
  const compliant = await api<Service>('PUT', '/v1/namespaces/lab/services/dbg', service('dbg', { user: '1000:1000', security: { capDrop: ['ALL'], capAdd: ['NET_BIND_SERVICE'] } }, 3));
  assert.equal(compliant.status, 200);
  assert.deepEqual((await api<Namespace>('GET', '/v1/namespaces/lab')).body.status.violations, []);
});

test('rollback to a revision the level refuses is refused; allowed once the level permits it', async () => {
  const cur = (await api<Service>('GET', '/v1/namespaces/lab/services/dbg')).body;
  const old = { image: IMAGE, security: { capAdd: ['SYS_ADMIN'] } };
  assert.ok((await store.create(revisionKey('lab', 'dbg', 1), newRevision(cur, 1, old))).ok);
  const refused = await api<ApiError>('POST', '/v1/namespaces/lab/services/dbg/rollback', { toRevision: 1 });
  assert.deepEqual([refused.status, refused.body.error.code, refused.body.error.field], [400, 'BERTH_ERR_POLICY_VIOLATION', 'spec.template.security.capAdd[0]']);
  assert.match(refused.body.error.message, /^revision 1 of service "lab\/dbg" is not allowed in namespace "lab" at policy level restricted/);
  assert.deepEqual((await api<Service>('GET', '/v1/namespaces/lab/services/dbg')).body.spec.template, cur.spec.template);

  assert.equal((await api('PUT', '/v1/namespaces/lab', { spec: { policy: 'privileged' } })).status, 200);
  const done = await api<{ service: Service; toRevision: number }>('POST', '/v1/namespaces/lab/services/dbg/rollback', { toRevision: 1 });
  assert.deepEqual([done.status, done.body.toRevision, done.body.service.spec.template], [200, 1, old]);
});

test('DELETE namespace is refused while services remain, then removes only the Namespace object', async () => {
  const busy = await api<ApiError>('DELETE', '/v1/namespaces/lab');
  assert.deepEqual([busy.status, busy.body.error.code, busy.body.error.message], [409, 'BERTH_ERR_NAMESPACE_NOT_EMPTY', 'namespace "lab" still has 1 service (dbg); delete them first']);
  assert.equal((await api('DELETE', '/v1/namespaces/lab/services/dbg')).status, 200);
  const gone = await api<Namespace>('DELETE', '/v1/namespaces/lab');
  assert.deepEqual([gone.status, gone.body.metadata.name], [200, 'lab']);
  assert.equal((await api('GET', '/v1/namespaces/lab')).status, 404);
  assert.equal((await api('DELETE', '/v1/namespaces/lab')).status, 404);
  assert.ok(!Object.keys(await stored()).some((k) => k.startsWith('/berth/v1/namespaces/lab')));
});

test('a service in a namespace whose object is gone is checked at baseline again', async () => {
  const r = await api<ApiError>('PUT', '/v1/namespaces/lab/services/dbg', service('dbg', { ...SYS_ADMIN }));
  assert.deepEqual([r.status, r.body.error.code], [400, 'BERTH_ERR_POLICY_VIOLATION']);
  assert.match(r.body.error.message, /at policy level baseline/);
});
