/**
 * Secrets and configs through the API of an in-process control plane (real embedded etcd, no
 * agents): values sealed at rest, never answered without reveal, reveal only for operators and
 * admins and audited, data-key rotation, deletion refused while used, and a changed value
 * rolling the services that project it into a new revision.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import type { Revision, Service } from '../../control-plane/objects/types.js';
import type { SecretView } from '../../control-plane/objects/secret-types.js';
import { startControlPlane, type ControlPlane } from '../../control-plane/server.js';
import { apiJson, createToken } from '../support/secure.js';
import { waitFor } from '../support/cluster.js';

const dataDir = mkdtempSync(join(tmpdir(), 'berth-secrets-test-'));
const PASSWORD = 'hunter2-s3cr3t-Value';
const b64 = (s: string): string => Buffer.from(s).toString('base64');
let cp: ControlPlane;
let etcd: Etcd3;

before(async () => {
  cp = await startControlPlane({
    listen: '127.0.0.1:0', gatewayListen: '127.0.0.1:0', dataDir, etcdClientPort: 23931, etcdPeerPort: 23941, nodeLeaseTtlSeconds: 2, logLevel: 'warn',
  });
  etcd = new Etcd3({ hosts: cp.etcdEndpoints });
});

after(async () => {
  etcd?.close();
  await cp?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const api = <T = unknown>(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: T }> =>
  apiJson<T>(cp, method, path, { body, ...(token !== undefined ? { token } : {}) });

/** etcdDump is every key and value under the berth prefix, as text. */
async function etcdDump(): Promise<string> {
  const all = await etcd.getAll().prefix('/berth/v1/').strings();
  return Object.entries(all).map(([k, v]) => `${k}=${v}`).join('\n');
}

test('a secret is sealed in etcd and its values leave the API only with reveal', async () => {
  const created = await api<SecretView>('POST', '/v1/namespaces/default/secrets',
    { kind: 'Secret', metadata: { name: 'db' }, data: { password: b64(PASSWORD) }, stringData: { user: 'app' } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.deepEqual(created.body.sizes, { password: PASSWORD.length, user: 3 });
  assert.equal(created.body.data, undefined, 'a create answer carries no values');

  const dump = await etcdDump();
  assert.ok(dump.includes('/berth/v1/secrets/default/db'), 'the secret is stored');
  for (const needle of [PASSWORD, b64(PASSWORD), 'hunter2']) assert.ok(!dump.includes(needle), `etcd holds ${needle} in clear`);

  const plain = await api<SecretView>('GET', '/v1/namespaces/default/secrets/db');
  assert.equal(plain.body.data, undefined);
  assert.ok(!JSON.stringify(plain.body).includes(b64(PASSWORD)));
  const listed = await api<{ items: SecretView[] }>('GET', '/v1/secrets');
  assert.ok(!JSON.stringify(listed.body).includes(b64(PASSWORD)), 'a list carries no values');

  const revealed = await api<SecretView>('GET', '/v1/namespaces/default/secrets/db?reveal=true');
  assert.equal(revealed.status, 200);
  assert.equal(Buffer.from(revealed.body.data!.password!, 'base64').toString(), PASSWORD);

  const viewer = await createToken(cp, { role: 'viewer', name: 'secret-viewer' });
  const refused = await api<{ error: { code: string } }>('GET', '/v1/namespaces/default/secrets/db?reveal=true', undefined, viewer);
  assert.deepEqual([refused.status, refused.body.error.code], [403, 'BERTH_ERR_FORBIDDEN']);
  const viewerPlain = await api<SecretView>('GET', '/v1/namespaces/default/secrets/db', undefined, viewer);
  assert.equal(viewerPlain.status, 200, 'a viewer may see that a secret exists and its keys');
  const operator = await createToken(cp, { role: 'operator', name: 'secret-operator', namespaces: ['default'] });
  const opReveal = await api<SecretView>('GET', '/v1/namespaces/default/secrets/db?reveal=1', undefined, operator);
  assert.equal(opReveal.status, 200);

  // Records are appended after each answer is sent: wait for the three reveals to be written.
  const reveals = await waitFor(() => {
    const audit = readFileSync(join(dataDir, 'audit.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { verb: string; code?: number });
    const found = audit.filter((e) => e.verb === 'reveal');
    return found.length >= 3 ? found : undefined;
  }, 10_000, () => `every reveal, refused or not, is audited; the log holds ${readFileSync(join(dataDir, 'audit.log'), 'utf8')}`);
  assert.deepEqual(reveals.map((e) => e.code).sort(), [200, 200, 403]);
  assert.ok(!readFileSync(join(dataDir, 'audit.log'), 'utf8').includes(b64(PASSWORD)), 'the audit log holds no value');
});

test('bad secrets and configs are refused with the field named', async () => {
  const cases: [string, unknown, RegExp][] = [
    ['/v1/namespaces/default/secrets', { kind: 'Secret', metadata: { name: 'x' }, data: { k: 'not base64!' } }, /data\.k: must be base64/],
    ['/v1/namespaces/default/secrets', { kind: 'Secret', metadata: { name: 'x' } }, /needs at least one key/],
    ['/v1/namespaces/default/secrets', { kind: 'Secret', metadata: { name: 'x' }, stringData: { '../etc': 'v' } }, /key "\.\.\/etc" must be/],
    ['/v1/namespaces/default/secrets', { kind: 'Secret', metadata: { name: 'x' }, data: { a: b64('1') }, stringData: { a: '2' } }, /stringData\.a: is also in data/],
    ['/v1/namespaces/default/configs', { kind: 'Config', metadata: { name: 'Bad_Name' }, data: { a: 'b' } }, /metadata\.name/],
    ['/v1/namespaces/default/configs', { kind: 'Config', metadata: { name: 'c' }, data: { a: 'b' }, extra: 1 }, /extra/],
  ];
  for (const [path, body, message] of cases) {
    const r = await api<{ error: { code: string; message: string } }>('POST', path, body);
    assert.equal(r.status, 400, `${JSON.stringify(body)} → ${r.status}`);
    assert.match(r.body.error.message, message);
  }
  const svc = await api<{ error: { message: string } }>('POST', '/v1/namespaces/default/services', {
    kind: 'Service', metadata: { name: 'bad-proj' },
    spec: { template: { image: 'registry.local:5000/busybox:1', secrets: [{ name: 'a', target: '/x' }], configs: [{ name: 'b', target: '/x' }] } },
  });
  assert.equal(svc.status, 400);
  assert.match(svc.body.error.message, /configs\[0\]\.target: \/x is also the target of spec\.template\.secrets\[0\]/);
});

test('rotating the data key re-seals every secret; values still open', async () => {
  const before = await etcd.get('/berth/v1/secrets/default/db').string();
  const sealedId = (v: string | null): string => (JSON.parse(v!) as { spec: { sealed: string } }).spec.sealed.split(':')[2]!;
  const rotated = await api<{ keyId: string; resealed: number; failed: string[] }>('POST', '/v1/secrets/rotate-key', {});
  assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
  assert.ok(rotated.body.resealed >= 1);
  assert.deepEqual(rotated.body.failed, []);
  const after = await etcd.get('/berth/v1/secrets/default/db').string();
  assert.notEqual(sealedId(after), sealedId(before), 'the secret is sealed with the new key');
  assert.equal(sealedId(after), rotated.body.keyId);
  const revealed = await api<SecretView>('GET', '/v1/namespaces/default/secrets/db?reveal=true');
  assert.equal(Buffer.from(revealed.body.data!.password!, 'base64').toString(), PASSWORD);
  const operator = await createToken(cp, { role: 'operator', name: 'rotator' });
  const refused = await api('POST', '/v1/secrets/rotate-key', {}, operator);
  assert.equal(refused.status, 403, 'only admins rotate the key');
});

test('a changed secret value rolls the services that project it; deletion waits until none does', async () => {
  const cfg = await api('PUT', '/v1/namespaces/default/configs/app', { kind: 'Config', metadata: { name: 'app' }, data: { 'app.conf': 'a=1\n' } });
  assert.equal(cfg.status, 201);
  const svc = await api<Service>('POST', '/v1/namespaces/default/services', {
    kind: 'Service', metadata: { name: 'uses-db' },
    spec: { replicas: 1, template: { image: 'registry.local:5000/busybox:1', command: ['sleep', '1000'], secrets: [{ name: 'db' }], configs: [{ name: 'app', key: 'app.conf', target: '/etc/app.conf' }] } },
  });
  assert.equal(svc.status, 201, JSON.stringify(svc.body));
  const revisionOf = async (): Promise<number | undefined> => (await api<Service>('GET', '/v1/namespaces/default/services/uses-db')).body.status?.updateRevision;
  const first = await waitFor(revisionOf, 15_000, () => 'the service got its first revision');
  const unchanged = await api<SecretView>('PUT', '/v1/namespaces/default/secrets/db',
    { kind: 'Secret', metadata: { name: 'db' }, data: { password: b64(PASSWORD) }, stringData: { user: 'app' } });
  assert.equal(unchanged.body.metadata.generation, 1, 'the same values keep the generation');
  const changed = await api<SecretView>('PUT', '/v1/namespaces/default/secrets/db',
    { kind: 'Secret', metadata: { name: 'db' }, stringData: { password: 'new-password', user: 'app' } });
  assert.equal(changed.body.metadata.generation, 2);
  const second = await waitFor(async () => { const r = await revisionOf(); return r !== undefined && r > first ? r : undefined; },
    15_000, () => `a new revision after the secret changed (was ${first})`);
  const rev = await api<{ items: Revision[] }>('GET', '/v1/namespaces/default/services/uses-db/revisions');
  const tpl = rev.body.items.find((r) => r.spec.revision === second)!.spec.template;
  assert.equal(tpl.secrets![0]!.generation, 2, 'the revision records the secret generation it was made with');
  const stored = await api<Service>('GET', '/v1/namespaces/default/services/uses-db');
  assert.equal(stored.body.spec.template.secrets![0]!.generation, undefined, 'the user spec is never rewritten');

  const inUse = await api<{ error: { code: string; message: string } }>('DELETE', '/v1/namespaces/default/secrets/db');
  assert.deepEqual([inUse.status, inUse.body.error.code], [409, 'BERTH_ERR_IN_USE']);
  assert.match(inUse.body.error.message, /used by service uses-db/);
  assert.equal((await api('DELETE', '/v1/namespaces/default/services/uses-db')).status, 200);
  assert.equal((await api('DELETE', '/v1/namespaces/default/secrets/db')).status, 200);
  assert.equal((await api('DELETE', '/v1/namespaces/default/configs/app')).status, 200);
  assert.equal((await api('GET', '/v1/namespaces/default/secrets/db')).status, 404);
});
