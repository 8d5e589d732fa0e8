/**
 * Path parameters: every :ns and :name is checked by its kind's naming rule before any hook or
 * handler reads the store. A `%2F` in a name is decoded to "/" and would otherwise become part of
 * an etcd key (`services/default/db/revisions/1` is a revision object, not a service).
 */
import { after, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildApi } from '../../control-plane/api/server.js';
import { checkPathParams, ruleFor } from '../../control-plane/api/path-params.js';
import { createLogger } from '../../common/log.js';
import { Authenticator } from '../../control-plane/security/authentication.js';
import type { Node, Service } from '../../control-plane/objects/types.js';
import { nodeKey, nodeLeaseKey, serviceKey, taskKey } from '../../control-plane/store/keys.js';
import type { Store } from '../../control-plane/store/store.js';

const service: Service = {
  kind: 'Service',
  metadata: { name: 'web', namespace: 'default', uid: 'u-web', generation: 1, labels: {}, createdAt: '2024-01-01T00:00:00Z', resourceVersion: '7' },
  spec: { replicas: 1, template: { image: 'oci:/x' } },
  status: { observedGeneration: 1, replicas: 1, runningReplicas: 1, conditions: [] },
} as Service;
const node = {
  kind: 'Node',
  metadata: { name: 'host-1', uid: 'u-node', generation: 1, labels: {}, createdAt: '2024-01-01T00:00:00Z', resourceVersion: '8' },
  spec: { unschedulable: false, taints: [] },
  status: { conditions: [] },
} as unknown as Node;

/** A store holding one service and one node that records every key it is asked about. */
const touched: string[] = [];
const objects = new Map<string, unknown>([[serviceKey('default', 'web'), service], [nodeKey('host-1'), node]]);
const fakeStore = {
  get: async (key: string) => { touched.push(`get ${key}`); return structuredClone(objects.get(key)); },
  list: async (prefix: string) => { touched.push(`list ${prefix}`); return { items: [], keys: [], revision: '9' }; },
  mutate: async (key: string, fn: (cur: unknown) => unknown) => {
    touched.push(`mutate ${key}`);
    const cur = objects.get(key);
    if (cur === undefined) return { ok: false, reason: 'NotFound' };
    const next = fn(structuredClone(cur));
    return next === undefined ? { ok: true, object: cur, unchanged: true } : { ok: true, object: next };
  },
  remove: async (key: string) => { touched.push(`remove ${key}`); return { ok: false, reason: 'NotFound' }; },
  removePrefix: async (prefix: string) => { touched.push(`removePrefix ${prefix}`); },
  create: async (key: string) => { touched.push(`create ${key}`); return { ok: false, reason: 'AlreadyExists' }; },
  update: async (key: string) => { touched.push(`update ${key}`); return { ok: false, reason: 'Conflict' }; },
  commit: async () => { touched.push('commit'); return []; },
};
const store = new Proxy(fakeStore, {
  get: (t, p) => {
    if (p in t) return t[p as keyof typeof t];
    throw new Error(`store.${String(p)} is not faked by this test`);
  },
}) as unknown as Store;

// Every caller is an admin of every namespace: these tests are about names, not access.
const admin = { kind: 'Token', metadata: { name: 'aaaaaaaaaaaa' }, spec: { displayName: 'test', role: 'admin', namespaces: ['*'], secretSha256: '', createdBy: 'test' }, status: {} };
const auth = new Authenticator({ check: async () => ({ ok: true, token: admin }) } as never);
const app = buildApi(store, createLogger('error'), { auth });
after(() => app.close());
beforeEach(() => { touched.length = 0; });

const headers = { authorization: 'Bearer bt1.aaaaaaaaaaaa.secret' };
const json = { ...headers, 'content-type': 'application/json' };
const serviceBody = (name: string) => ({ kind: 'Service', metadata: { name }, spec: { replicas: 1, template: { image: 'oci:/x' } } });

type BadCase = { name: string; method: 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'; url: string; body?: unknown; param: string; what: string };

const SLASHED = 'db%2Frevisions%2F1';
const bad: BadCase[] = [
  { name: 'scale a service', method: 'PUT', url: `/v1/namespaces/default/services/${SLASHED}/scale`, body: { replicas: 3 }, param: 'name', what: 'service name' },
  { name: 'get a service', method: 'GET', url: `/v1/namespaces/default/services/${SLASHED}`, param: 'name', what: 'service name' },
  { name: 'put a service', method: 'PUT', url: `/v1/namespaces/default/services/${SLASHED}`, body: serviceBody('db'), param: 'name', what: 'service name' },
  { name: 'delete a service', method: 'DELETE', url: `/v1/namespaces/default/services/${SLASHED}`, param: 'name', what: 'service name' },
  { name: 'roll back a service', method: 'POST', url: `/v1/namespaces/default/services/${SLASHED}/rollback`, body: {}, param: 'name', what: 'service name' },
  { name: 'list revisions', method: 'GET', url: `/v1/namespaces/default/services/${SLASHED}/revisions`, param: 'name', what: 'service name' },
  { name: 'exec in a task', method: 'POST', url: `/v1/namespaces/default/tasks/web-abcde%2F..%2Fx/exec`, body: { command: ['true'] }, param: 'name', what: 'task name' },
  { name: 'get a task', method: 'GET', url: `/v1/namespaces/default/tasks/a%2Fb`, param: 'name', what: 'task name' },
  { name: 'get a node', method: 'GET', url: '/v1/nodes/host-1%2Fx', param: 'name', what: 'node name' },
  { name: 'put a node', method: 'PUT', url: '/v1/nodes/host-1%2Fx', body: { spec: { unschedulable: true } }, param: 'name', what: 'node name' },
  { name: 'patch a node', method: 'PATCH', url: '/v1/nodes/host-1%2Fx', body: { spec: { unschedulable: true } }, param: 'name', what: 'node name' },
  { name: 'cordon a node', method: 'POST', url: '/v1/nodes/host-1%2Fx/cordon', param: 'name', what: 'node name' },
  { name: 'drain a node', method: 'POST', url: '/v1/nodes/host-1%2Fx/drain', param: 'name', what: 'node name' },
  { name: 'delete a node', method: 'DELETE', url: '/v1/nodes/host-1%2Fx?force=true', param: 'name', what: 'node name' },
  { name: 'a namespace with a slash', method: 'GET', url: '/v1/namespaces/default%2Fweb/services', param: 'ns', what: 'namespace' },
  { name: 'a namespace with a slash, watched', method: 'GET', url: '/v1/namespaces/default%2Fweb/tasks?watch=1', param: 'ns', what: 'namespace' },
  { name: 'a namespace in upper case', method: 'PUT', url: '/v1/namespaces/Prod/services/web', body: serviceBody('web'), param: 'ns', what: 'namespace' },
  { name: 'a NUL in a service name', method: 'GET', url: '/v1/namespaces/default/services/web%00', param: 'name', what: 'service name' },
  { name: 'a service name over 40 characters', method: 'GET', url: `/v1/namespaces/default/services/${'a'.repeat(41)}`, param: 'name', what: 'service name' },
];

for (const c of bad) {
  test(`${c.name}: a bad ${c.what} is refused with 400 before the store is touched`, async () => {
    const res = await app.inject({ method: c.method, url: c.url, ...(c.body !== undefined ? { headers: json, payload: JSON.stringify(c.body) } : { headers }) });
    assert.equal(res.statusCode, 400, `${c.method} ${c.url}: expected 400, got ${res.statusCode} ${res.body}`);
    const body = res.json<{ error: { code: string; field?: string; message: string } }>();
    assert.equal(body.error.code, 'BERTH_ERR_INVALID_NAME');
    assert.equal(body.error.field, c.param);
    assert.match(body.error.message, new RegExp(`^path parameter "${c.param}" \\(${c.what}\\): `));
    assert.deepEqual(touched, [], 'the store must not be touched');
  });
}

test('a good service name still reaches the store: get, scale', async () => {
  const got = await app.inject({ method: 'GET', url: '/v1/namespaces/default/services/web', headers });
  assert.equal(got.statusCode, 200, got.body);
  assert.equal(got.json<Service>().metadata.uid, 'u-web');
  const scaled = await app.inject({ method: 'PUT', url: '/v1/namespaces/default/services/web/scale', headers: json, payload: JSON.stringify({ replicas: 3 }) });
  assert.equal(scaled.statusCode, 200, scaled.body);
  assert.equal(scaled.json<Service>().spec.replicas, 3);
  assert.deepEqual(touched, ['get services/default/web', 'mutate services/default/web']);
});

test('a good node name still reaches the store: get, cordon', async () => {
  const got = await app.inject({ method: 'GET', url: '/v1/nodes/host-1', headers });
  assert.equal(got.statusCode, 200, got.body);
  const cordoned = await app.inject({ method: 'POST', url: '/v1/nodes/host-1/cordon', headers });
  assert.equal(cordoned.statusCode, 200, cordoned.body);
  assert.equal(cordoned.json<Node>().spec.unschedulable, true);
  assert.deepEqual(touched, ['get nodes/host-1', 'mutate nodes/host-1']);
});

test('a missing object with a good name is still a 404, not a 400', async () => {
  const res = await app.inject({ method: 'GET', url: '/v1/namespaces/default/services/api', headers });
  assert.equal(res.statusCode, 404, res.body);
  assert.equal(res.json<{ error: { code: string } }>().error.code, 'BERTH_ERR_NOT_FOUND');
});

test('checkPathParams applies the rule of the collection before each parameter', () => {
  const cases: { route: string; params: Record<string, string>; field?: string }[] = [
    { route: '/v1/namespaces/:ns/services/:name', params: { ns: 'default', name: 'web' } },
    { route: '/v1/namespaces/:ns/services/:name', params: { ns: 'default', name: 'a'.repeat(41) }, field: 'name' },
    { route: '/v1/namespaces/:ns/tasks/:name', params: { ns: 'default', name: `${'a'.repeat(40)}-abcde` } },
    { route: '/v1/namespaces/:ns/tasks/:name', params: { ns: 'default', name: 'a'.repeat(64) }, field: 'name' },
    { route: '/v1/namespaces/:ns', params: { ns: '' }, field: 'ns' },
    { route: '/v1/nodes/:name', params: { name: '-host' }, field: 'name' },
    // A collection the table does not know still gets a DNS label.
    { route: '/v1/widgets/:id', params: { id: 'ok-1' } },
    { route: '/v1/widgets/:id', params: { id: 'a/b' }, field: 'id' },
  ];
  for (const c of cases) {
    assert.equal(checkPathParams(c.route, c.params)?.field, c.field, `${c.route} ${JSON.stringify(c.params)}`);
  }
  assert.equal(ruleFor('/v1/namespaces/:ns/services/:name', 'name').what, 'service name');
  assert.equal(ruleFor('/v1/namespaces/:ns/services/:name', 'ns').what, 'namespace');
  assert.equal(ruleFor('/v1/widgets/:id', 'id').what, 'name');
});

test('key builders refuse a segment that is empty or contains "/"', () => {
  assert.equal(serviceKey('default', 'web'), 'services/default/web');
  assert.equal(taskKey('default', 'web', 'web-abcde'), 'tasks/default/web/web-abcde');
  for (const [what, build] of [
    ['service name with /', () => serviceKey('default', 'db/revisions/1')],
    ['namespace with /', () => serviceKey('default/x', 'web')],
    ['task name with /', () => taskKey('default', 'web', 'a/b')],
    ['empty node name', () => nodeKey('')],
    ['node lease name with /', () => nodeLeaseKey('a/b')],
  ] as const) {
    assert.throws(build, /cannot be an etcd key segment/, what);
  }
});
