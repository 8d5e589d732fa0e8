/**
 * The volume routes over an in-memory store and a stand-in gateway: lists read the nodes'
 * reported volumes, a delete is refused while a live task on the node mounts the volume, finds
 * the node when only one has the volume, and translates the agent's answers; the CLI table.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildApi } from '../../control-plane/api/server.js';
import { createLogger } from '../../common/log.js';
import { ADMIN_HEADERS, testAuthenticator } from '../support/api-auth.js';
import { MemoryStore } from '../support/memory-store.js';
import type { VolumeDeleteOutcome } from '../../control-plane/gateway/volume-relay.js';
import { fromAgentCode } from '../../control-plane/gateway/volume-relay.js';
import { volumesTable } from '../../control-plane/cli/volumes.js';

const CREATED = '2026-01-01T00:00:00.000Z';

function node(name: string, volumes: { namespace: string; name: string }[]): unknown {
  return {
    kind: 'Node', metadata: { name, labels: {} }, spec: { unschedulable: false, taints: [] },
    status: { volumes: volumes.map((v) => ({ ...v, sizeBytes: 8192, inUse: false, createdAt: CREATED })) },
  };
}

function task(name: string, nodeName: string, phase: string, volume: string): unknown {
  return {
    kind: 'Task', metadata: { name, namespace: 'default', uid: name }, spec: { service: 'db', nodeName, desiredState: 'running', revision: 1,
      template: { image: 'oci:/x', volumes: [{ type: 'volume', name: volume, target: '/data' }] } },
    status: { phase, restarts: 0 },
  };
}

const store = new MemoryStore();
store.objects.set('nodes/n1', node('n1', [{ namespace: 'default', name: 'data' }, { namespace: 'prod', name: 'data' }]) as never);
store.objects.set('nodes/n2', node('n2', [{ namespace: 'default', name: 'data' }, { namespace: 'default', name: 'logs' }]) as never);
store.objects.set('tasks/default/db/db-1', task('db-1', 'n1', 'running', 'data') as never);
store.objects.set('tasks/default/db/db-0', task('db-0', 'n2', 'failed', 'data') as never);
const asked: { node: string; namespace: string; name: string }[] = [];
let answer: VolumeDeleteOutcome = { ok: true };
const relay = { deleteVolume: async (n: string, v: { namespace: string; name: string }) => (asked.push({ node: n, ...v }), answer) };
const app = buildApi(store.asStore(), createLogger('error'), { auth: testAuthenticator(), volumes: relay });
const bare = buildApi(store.asStore(), createLogger('error'), { auth: testAuthenticator() });
after(async () => {
  await app.close();
  await bare.close();
});

async function call(method: 'GET' | 'DELETE', url: string, server = app): Promise<{ status: number; body: { items?: { node: string; namespace: string; name: string }[]; error?: { code: string; message: string } } }> {
  const res = await server.inject({ method, url, headers: ADMIN_HEADERS });
  return { status: res.statusCode, body: res.json() };
}

describe('volume routes', () => {
  it('GET /v1/volumes lists every node\'s volumes, by node, namespace and name; ?node= narrows', async () => {
    const all = await call('GET', '/v1/volumes');
    assert.deepEqual(all.body.items?.map((v) => `${v.node} ${v.namespace}/${v.name}`), ['n1 default/data', 'n1 prod/data', 'n2 default/data', 'n2 default/logs']);
    const one = await call('GET', '/v1/volumes?node=n2');
    assert.deepEqual(one.body.items?.map((v) => v.name), ['data', 'logs']);
    assert.equal((await call('GET', '/v1/volumes?node=n9')).status, 404);
  });

  it('GET /v1/namespaces/:ns/volumes keeps the namespace\'s', async () => {
    const prod = await call('GET', '/v1/namespaces/prod/volumes');
    assert.deepEqual(prod.body.items?.map((v) => `${v.node} ${v.namespace}/${v.name}`), ['n1 prod/data']);
  });

  const deletes: { name: string; url: string; status: number; code?: string; message?: RegExp; asked?: string }[] = [
    { name: 'in use by a running task on that node', url: '/v1/namespaces/default/volumes/data?node=n1', status: 409, code: 'BERTH_ERR_IN_USE', message: /^volume default\/data on node n1 is in use by task default\/db-1 \(running\)/ },
    { name: 'only a terminal task used it on that node', url: '/v1/namespaces/default/volumes/data?node=n2', status: 200, asked: 'n2 default/data' },
    { name: 'on several nodes, none named', url: '/v1/namespaces/default/volumes/data', status: 400, code: 'BERTH_ERR_VALIDATION', message: /is on nodes n1, n2; name one/ },
    { name: 'on one node, none named', url: '/v1/namespaces/default/volumes/logs', status: 200, asked: 'n2 default/logs' },
    { name: 'on no node', url: '/v1/namespaces/default/volumes/nope', status: 404, code: 'BERTH_ERR_NOT_FOUND' },
    { name: 'an unknown node', url: '/v1/namespaces/default/volumes/logs?node=n9', status: 404, code: 'BERTH_ERR_NOT_FOUND', message: /node "n9"/ },
    { name: 'a name that is no DNS label', url: '/v1/namespaces/default/volumes/Bad_Name?node=n2', status: 400, code: 'BERTH_ERR_INVALID_NAME' },
  ];
  for (const c of deletes) {
    it(`DELETE: ${c.name} → ${c.status}`, async () => {
      asked.length = 0;
      answer = { ok: true };
      const r = await call('DELETE', c.url);
      assert.equal(r.status, c.status, `status: expected ${c.status}, saw ${r.status} ${JSON.stringify(r.body)}`);
      if (c.code) assert.equal(r.body.error?.code, c.code);
      if (c.message) assert.match(r.body.error?.message ?? '', c.message);
      assert.deepEqual(asked.map((a) => `${a.node} ${a.namespace}/${a.name}`), c.asked ? [c.asked] : [], 'what reached the agent');
    });
  }

  it('DELETE passes the agent\'s refusal on with the control plane\'s code, and 503 without a gateway', async () => {
    answer = { ok: false, code: fromAgentCode('BERTH_ERR_VOLUME_IN_USE'), message: 'volume default/logs is mounted by a container on this node' };
    const refused = await call('DELETE', '/v1/namespaces/default/volumes/logs?node=n2');
    assert.equal(refused.status, 409);
    assert.match(refused.body.error?.message ?? '', /^delete volume default\/logs on node n2: volume default\/logs is mounted by a container/);
    const none = await call('DELETE', '/v1/namespaces/default/volumes/logs?node=n2', bare);
    assert.equal(none.status, 503);
    assert.equal(none.body.error?.code, 'BERTH_ERR_NODE_UNAVAILABLE');
  });

  it('agent codes translate at the boundary', () => {
    assert.deepEqual(['BERTH_ERR_VOLUME_IN_USE', 'BERTH_ERR_VOLUME_NOT_FOUND', 'BERTH_ERR_VOLUME_FAILED'].map(fromAgentCode), ['BERTH_ERR_IN_USE', 'BERTH_ERR_NOT_FOUND', 'BERTH_ERR_INTERNAL']);
  });
});

describe('volumesTable', () => {
  it('renders NODE NAMESPACE NAME SIZE IN-USE AGE', () => {
    const now = Date.parse(CREATED) + 3 * 3600 * 1000;
    const lines = volumesTable([{ node: 'n1', namespace: 'default', name: 'data', sizeBytes: 5 * 1024 * 1024, inUse: true, createdAt: CREATED }], now).trimEnd().split('\n');
    assert.match(lines[0]!, /^NODE\s+NAMESPACE\s+NAME\s+SIZE\s+IN-USE\s+AGE$/);
    assert.match(lines[1]!, /^n1\s+default\s+data\s+5(\.0)?\s?Mi\S*\s+yes\s+3h$/);
  });
});
