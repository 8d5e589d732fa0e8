import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FakeApi, runBerth } from '../support/fake-api.js';

function svc(generation: number, replicas = 2): unknown {
  return {
    kind: 'Service',
    metadata: { name: 'web', namespace: 'default', uid: 'u1', generation, labels: {}, createdAt: '2025-01-01T00:00:00Z' },
    spec: { replicas, template: { image: 'oci-archive:/seed/busybox.tar' } },
    status: { observedGeneration: generation, replicas, runningReplicas: 1, conditions: [] },
  };
}

const WEB_YAML = 'kind: Service\nmetadata: { name: web, labels: { app: web } }\nspec:\n  replicas: 2\n  template: { image: "oci-archive:/seed/busybox.tar" }\n';

describe('berth against a fake control plane', () => {
  const api = new FakeApi();
  before(() => api.start());
  after(() => api.stop());
  beforeEach(() => api.reset());

  it('apply creates a service with PUT to its namespace path and says created', async () => {
    api.routes.set('PUT /v1/namespaces/default/services/web', { status: 201, body: svc(1) });
    const r = await runBerth(['--server', api.url, 'apply', '-f', '-'], { stdin: WEB_YAML });
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, 'service/web created\n', '']);
    const put = api.requests.find((q) => q.method === 'PUT')!;
    assert.deepEqual((put.body as { spec: unknown }).spec, { replicas: 2, template: { image: 'oci-archive:/seed/busybox.tar' } });
  });

  it('apply says configured when the generation moves and unchanged when it does not', async () => {
    api.routes.set('GET /v1/namespaces/default/services/web', { status: 200, body: svc(3) });
    api.routes.set('PUT /v1/namespaces/default/services/web', { status: 200, body: svc(4) });
    assert.equal((await runBerth(['--server', api.url, 'apply', '-f', '-'], { stdin: WEB_YAML })).stdout, 'service/web configured\n');
    api.routes.set('PUT /v1/namespaces/default/services/web', { status: 200, body: svc(3) });
    assert.equal((await runBerth(['--server', api.url, 'apply', '-f', '-'], { stdin: WEB_YAML })).stdout, 'service/web unchanged\n');
  });

  it('apply uses metadata.namespace over -n and sends the token as Bearer', async () => {
    api.routes.set('PUT /v1/namespaces/prod/services/web', { status: 201, body: svc(1) });
    const r = await runBerth(['-n', 'staging', 'apply', '-f', '-'], { stdin: WEB_YAML.replace('name: web,', 'name: web, namespace: prod,'), env: { BERTH_SERVER: api.url, BERTH_TOKEN: 's3cret' } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(api.requests.every((q) => q.auth === 'Bearer s3cret'), 'every request carries the token');
    assert.ok(api.requests.some((q) => q.method === 'PUT' && q.url === '/v1/namespaces/prod/services/web'));
  });

  it('apply prints the server message and exits 1 when the server refuses', async () => {
    api.routes.set('PUT /v1/namespaces/default/services/web', { status: 400, body: { error: { code: 'BERTH_ERR_VALIDATION', message: 'spec.replicas: must be >= 0', field: 'spec.replicas' } } });
    const r = await runBerth(['--server', api.url, 'apply', '-f', '-'], { stdin: WEB_YAML });
    assert.deepEqual([r.code, r.stdout, r.stderr], [1, '', 'error: service/web: spec.replicas: must be >= 0\n']);
  });

  it('apply sends nothing when any document is bad', async () => {
    const r = await runBerth(['--server', api.url, 'apply', '-f', '-'], { stdin: `${WEB_YAML}---\nkind: Deployment\nmetadata: {name: x}\n` });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\(document 2\): kind "Deployment" is not supported/);
    assert.equal(api.requests.length, 0);
  });

  it('get services prints a table; -o json an array; a named -o yaml the object', async () => {
    api.routes.set('GET /v1/namespaces/default/services', { status: 200, body: { items: [svc(1)] } });
    api.routes.set('GET /v1/namespaces/default/services/web', { status: 200, body: svc(1) });
    const table = await runBerth(['--server', api.url, 'get', 'services']);
    assert.equal(table.stdout, 'NAME   REPLICAS   IMAGE                           AGE\nweb    1/2        oci-archive:/seed/busybox.tar   10m\n');
    const json = await runBerth(['--server', api.url, 'get', 'svc', '-o', 'json']);
    assert.deepEqual(JSON.parse(json.stdout), [svc(1)]);
    const yaml = await runBerth(['--server', api.url, 'get', 'service', 'web', '-o', 'yaml']);
    assert.match(yaml.stdout, /^kind: Service\nmetadata:\n  name: web\n/);
  });

  it('get tasks passes --service and --node as a query and -n as the namespace', async () => {
    api.routes.set('GET /v1/namespaces/prod/tasks?service=web&node=berth-h1', { status: 200, body: { items: [] } });
    const r = await runBerth(['--server', api.url, 'get', 'tasks', '--service', 'web', '--node', 'berth-h1', '-n', 'prod', '-o', 'json']);
    assert.deepEqual([r.code, r.stdout], [0, '[]\n']);
  });

  it('get of an empty list says so on stderr and exits 0', async () => {
    api.routes.set('GET /v1/namespaces/default/tasks', { status: 200, body: { items: [] } });
    const r = await runBerth(['--server', api.url, 'get', 'tasks']);
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, '', 'No tasks found in default namespace.\n']);
  });

  it('get nodes counts tasks per node from the all-namespaces task list', async () => {
    api.routes.set('GET /v1/nodes', { status: 200, body: { items: [{ kind: 'Node', metadata: { name: 'berth-h1', uid: 'n', generation: 1, labels: {}, createdAt: '2025-01-01T00:00:00Z' }, spec: { unschedulable: true, taints: [] }, status: { capacity: { cpu: 2, memory: 1073741824, pids: 100 }, allocatable: { cpu: 2, memory: 1073741824, pids: 100 }, addresses: [{ type: 'InternalIP', address: '10.88.1.11' }], metricsUrl: '', conditions: [{ type: 'Ready', status: 'True', reason: 'AgentConnected', message: '', lastTransitionTime: '' }], agentVersion: '', cgroupVersion: 'v1' } }] } });
    api.routes.set('GET /v1/tasks', { status: 200, body: { items: [{ kind: 'Task', metadata: { name: 't' }, spec: { service: 'web', nodeName: 'berth-h1', template: { image: 'x', resources: { cpu: 0.5, memory: 268435456 } } }, status: { phase: 'running', restarts: 0 } }] } });
    const r = await runBerth(['--server', api.url, 'get', 'nodes']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trimEnd().split('\n')[1]!.split(/\s+/), ['berth-h1', 'Ready,SchedulingDisabled', '10.88.1.11', '1', '0.5/2', '256Mi/1Gi', '10m']);
  });

  it('a named get of a missing object prints the server message and exits 1', async () => {
    const r = await runBerth(['--server', api.url, 'get', 'task', 'nope']);
    assert.deepEqual([r.code, r.stderr], [1, 'error: /v1/namespaces/default/tasks/nope not found\n']);
  });

  it('scale sends replicas to the scale subresource', async () => {
    api.routes.set('PUT /v1/namespaces/default/services/web/scale', { status: 200, body: svc(2, 1) });
    const r = await runBerth(['--server', api.url, 'scale', 'web', '1']);
    assert.deepEqual([r.code, r.stdout], [0, 'service/web scaled to 1\n']);
    assert.deepEqual(api.requests[0]!.body, { replicas: 1 });
  });

  it('delete removes the service and reports a missing one as a failed request', async () => {
    api.routes.set('DELETE /v1/namespaces/default/services/web', { status: 200, body: svc(1) });
    assert.deepEqual(Object.values(await runBerth(['--server', api.url, 'delete', 'service', 'web'])), [0, 'service/web deleted\n', '']);
    const missing = await runBerth(['--server', api.url, 'delete', 'svc', 'other']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: .*not found\n$/);
  });

  it('a non-JSON error answer still yields exit 1 and the status', async () => {
    api.routes.set('GET /v1/nodes', { status: 502, body: 'bad gateway' });
    const r = await runBerth(['--server', api.url, 'get', 'nodes']);
    assert.deepEqual([r.code, r.stderr], [1, 'error: the server answered HTTP 502: "bad gateway"\n']);
  });

  it('version prints both versions', async () => {
    api.routes.set('GET /v1/version', { status: 200, body: { version: '0.1.0', etcd: '3.4' } });
    const r = await runBerth(['--server', api.url, 'version']);
    assert.deepEqual([r.code, r.stdout], [0, 'Client Version: 0.1.0\nServer Version: 0.1.0\n']);
  });
});
