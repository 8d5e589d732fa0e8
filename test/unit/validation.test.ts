import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildApi } from '../../control-plane/api/server.js';
import { createLogger } from '../../common/log.js';
import { ADMIN_HEADERS, testAuthenticator } from '../support/api-auth.js';
import { admitService } from '../../control-plane/objects/validation.js';
import type { Store } from '../../control-plane/store/store.js';

// Every bad body must be refused before the store is touched: any store access throws.
const untouchable = new Proxy({}, { get: (_t, p) => { throw new Error(`store.${String(p)} touched during validation`); } }) as Store;
const app = buildApi(untouchable, createLogger('error'), { auth: testAuthenticator() });
after(() => app.close());

const good = () => ({ kind: 'Service', metadata: { name: 'web' }, spec: { replicas: 2, template: { image: 'oci-archive:/images/busybox.tar' } } });

type Case = { name: string; body: unknown; field?: string; message: string | RegExp; code?: string; url?: string; raw?: string; contentType?: string; status?: number };

const cases: Case[] = [
  { name: 'invalid JSON', body: undefined, raw: '{"kind":', message: /invalid JSON body/, code: 'BERTH_ERR_INVALID_JSON' },
  { name: 'empty body', body: undefined, raw: '', message: /body is empty/, code: 'BERTH_ERR_INVALID_JSON' },
  { name: 'not JSON content', body: undefined, raw: 'kind: Service', contentType: 'text/yaml', message: /unsupported content type/, code: 'BERTH_ERR_UNSUPPORTED_MEDIA_TYPE', status: 415 },
  { name: 'body not an object', body: [1], field: 'body', message: 'body: must be an object' },
  { name: 'unknown top-level field', body: { ...good(), extra: 1 }, field: 'extra', message: 'body: unknown field "extra"' },
  { name: 'wrong kind', body: { ...good(), kind: 'Task' }, field: 'kind', message: 'kind: must be "Service"' },
  { name: 'missing metadata.name', body: { ...good(), metadata: {} }, field: 'metadata.name', message: 'metadata.name: required' },
  { name: 'unknown template field (typo)', body: { ...good(), spec: { replicas: 1, template: { imagee: 'oci:/x' } } }, field: 'spec.template.imagee', message: 'spec.template: unknown field "imagee"' },
  { name: 'negative replicas', body: { ...good(), spec: { ...good().spec, replicas: -1 } }, field: 'spec.replicas', message: 'spec.replicas: must be >= 0' },
  { name: 'too many replicas', body: { ...good(), spec: { ...good().spec, replicas: 10001 } }, field: 'spec.replicas', message: 'spec.replicas: must be <= 10000' },
  { name: 'string replicas (no coercion)', body: { ...good(), spec: { ...good().spec, replicas: '2' } }, field: 'spec.replicas', message: 'spec.replicas: must be an integer' },
  { name: 'missing image', body: { ...good(), spec: { replicas: 1, template: {} } }, field: 'spec.template.image', message: 'spec.template.image: required' },
  { name: 'empty image', body: { ...good(), spec: { replicas: 1, template: { image: '' } } }, field: 'spec.template.image', message: 'spec.template.image: must not be empty' },
  { name: 'image without registry host', body: { ...good(), spec: { replicas: 1, template: { image: 'busybox:1.36' } } }, field: 'spec.template.image', message: /needs a host/ },
  { name: 'relative oci-archive path', body: { ...good(), spec: { replicas: 1, template: { image: 'oci-archive:images/b.tar' } } }, field: 'spec.template.image', message: /absolute path/ },
  { name: 'command not strings', body: { ...good(), spec: { replicas: 1, template: { image: 'oci:/x', command: ['sh', 1] } } }, field: 'spec.template.command[1]', message: 'spec.template.command[1]: must be a string' },
  { name: 'bad memory quantity', body: { ...good(), spec: { replicas: 1, template: { image: 'oci:/x', resources: { memory: '64MB' } } } }, field: 'spec.template.resources.memory', message: /invalid memory quantity "64MB"/ },
  { name: 'bad cpu quantity', body: { ...good(), spec: { replicas: 1, template: { image: 'oci:/x', resources: { cpu: 'lots' } } } }, field: 'spec.template.resources.cpu', message: /invalid cpu quantity/ },
  { name: 'unknown resource', body: { ...good(), spec: { replicas: 1, template: { image: 'oci:/x', resources: { gpu: 1 } } } }, field: 'spec.template.resources.gpu', message: 'spec.template.resources: unknown field "gpu"' },
  { name: 'bad user', body: { ...good(), spec: { replicas: 1, template: { image: 'oci:/x', user: 'nobody' } } }, field: 'spec.template.user', message: /uid:gid/ },
  { name: 'relative workingDir', body: { ...good(), spec: { replicas: 1, template: { image: 'oci:/x', workingDir: 'srv' } } }, field: 'spec.template.workingDir', message: 'spec.template.workingDir: must be an absolute path' },
  { name: 'port out of range', body: { ...good(), spec: { replicas: 1, template: { image: 'oci:/x', ports: [{ containerPort: 70000 }] } } }, field: 'spec.template.ports[0].containerPort', message: 'spec.template.ports[0].containerPort: must be <= 65535' },
  { name: 'bad protocol', body: { ...good(), spec: { replicas: 1, template: { image: 'oci:/x', ports: [{ containerPort: 80, protocol: 'sctp' }] } } }, field: 'spec.template.ports[0].protocol', message: /must be one of "tcp", "udp"/ },
  { name: 'bad constraint', body: { ...good(), spec: { ...good().spec, placement: { constraints: ['zone = a'] } } }, field: 'spec.placement.constraints[0]', message: /cannot parse/ },
  { name: 'bad strategy', body: { ...good(), spec: { ...good().spec, placement: { strategy: 'random' } } }, field: 'spec.placement.strategy', message: /must be one of/ },
  { name: 'bad restart policy', body: { ...good(), spec: { replicas: 1, template: { image: 'oci:/x', restart: { policy: 'sometimes' } } } }, field: 'spec.template.restart.policy', message: /must be one of/ },
  { name: 'name not a DNS label', body: { ...good(), metadata: { name: 'Web_1' } }, field: 'metadata.name', message: /DNS label/ },
  { name: 'service name too long', body: { ...good(), metadata: { name: 'a'.repeat(41) } }, field: 'metadata.name', message: /at most 40 characters/ },
  { name: 'URL name not a DNS label', body: { ...good(), metadata: { name: 'Web_1' } }, url: '/v1/namespaces/default/services/Web_1', code: 'BERTH_ERR_INVALID_NAME', field: 'name', message: /^path parameter "name" \(service name\): .*DNS label/ },
  { name: 'name differs from URL', body: { ...good(), metadata: { name: 'api' } }, field: 'metadata.name', message: /does not match the name in the URL/ },
  { name: 'namespace differs from URL', body: { ...good(), metadata: { name: 'web', namespace: 'prod' } }, field: 'metadata.namespace', message: /does not match the namespace in the URL/ },
  { name: 'bad label', body: { ...good(), metadata: { name: 'web', labels: { 'a b': 'x' } } }, field: 'metadata.labels', message: /invalid label key/ },
  { name: 'bad namespace in URL', body: good(), url: '/v1/namespaces/Prod/services/web', code: 'BERTH_ERR_INVALID_NAME', field: 'ns', message: /^path parameter "ns" \(namespace\): .*DNS label/ },
];

for (const c of cases) {
  test(`PUT service refuses ${c.name} naming the field`, async () => {
    const res = await app.inject({
      method: 'PUT',
      url: c.url ?? '/v1/namespaces/default/services/web',
      headers: { ...ADMIN_HEADERS, 'content-type': c.contentType ?? 'application/json' },
      payload: c.raw ?? JSON.stringify(c.body),
    });
    const body = res.json() as { error: { code: string; message: string; field?: string } };
    assert.equal(res.statusCode, c.status ?? 400, `status for ${c.name}: ${res.body}`);
    assert.equal(body.error.code, c.code ?? 'BERTH_ERR_VALIDATION');
    if (c.field !== undefined) assert.equal(body.error.field, c.field);
    if (typeof c.message === 'string') assert.equal(body.error.message, c.message);
    else assert.match(body.error.message, c.message);
  });
}

test('scale refuses a negative count and unknown fields', async () => {
  for (const [payload, message] of [[{ replicas: -2 }, 'replicas: must be >= 0'], [{ replicas: 1, x: 1 }, 'body: unknown field "x"'], [{}, 'replicas: required']] as const) {
    const res = await app.inject({ method: 'PUT', url: '/v1/namespaces/default/services/web/scale', payload, headers: ADMIN_HEADERS });
    assert.equal(res.statusCode, 400);
    assert.equal((res.json() as { error: { message: string } }).error.message, message);
  }
});

test('admitService normalises quantities and fills defaults', () => {
  const r = admitService({
    kind: 'Service',
    metadata: { name: 'web', labels: { app: 'web' } },
    spec: { template: { image: 'registry.local:5000/library/busybox:1.36', resources: { cpu: '250m' as unknown as number, memory: '64Mi' as unknown as number, pids: 128 }, ports: [{ containerPort: 8080, hostPort: 18080 } as never] } } as never,
  }, { namespace: 'default', name: 'web' });
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.value.spec.replicas, 1);
  assert.deepEqual(r.value.spec.template.resources, { cpu: 0.25, memory: 64 * 1024 * 1024, pids: 128 });
  assert.equal(r.value.spec.template.ports?.[0]?.protocol, 'tcp');
});

test('admitService accepts every image scheme of DESIGN.md', () => {
  for (const image of ['oci-archive:/images/busybox.tar', 'oci:/images/layout', 'oci:/images/layout:1.36', 'registry.local:5000/library/busybox:1.36',
    'localhost:5000/busybox', `10.0.0.1:5000/a/b@sha256:${'a'.repeat(64)}`]) {
    const r = admitService({ kind: 'Service', metadata: { name: 'web' }, spec: { replicas: 1, template: { image } } }, { namespace: 'default' });
    assert.ok(r.ok, `${image}: ${JSON.stringify(r)}`);
  }
});

test('delete node refuses a force value other than true or false before touching the store', async () => {
  const res = await app.inject({ method: 'DELETE', url: '/v1/nodes/host-1?force=yes', headers: ADMIN_HEADERS });
  assert.equal(res.statusCode, 400);
  assert.match(res.json<{ error: { message: string } }>().error.message, /force/);
});
