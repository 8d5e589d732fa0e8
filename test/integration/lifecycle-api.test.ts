/**
 * Node lifecycle through the API of an in-process control plane (real embedded etcd, no agents):
 * node spec routes and verbs, watch streams, events, and a lost node's task replaced at once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import type { Event, Node, Task } from '../../control-plane/objects/types.js';
import { EventRecorder } from '../../control-plane/controllers/events.js';
import { startControlPlane, type ControlPlane } from '../../control-plane/server.js';
import { Store } from '../../control-plane/store/store.js';
import { apiFetch, apiJson } from '../support/secure.js';

const dataDir = mkdtempSync(join(tmpdir(), 'berth-lc-test-'));
let cp: ControlPlane;
let etcd: Etcd3;

before(async () => {
  cp = await startControlPlane({
    listen: '127.0.0.1:0', gatewayListen: '127.0.0.1:0', dataDir, etcdClientPort: 23792, etcdPeerPort: 23802,
    nodeLeaseTtlSeconds: 2, nodeLostGraceSeconds: 1, logLevel: 'warn',
  });
  etcd = new Etcd3({ hosts: cp.etcdEndpoints });
});

after(async () => {
  etcd?.close();
  await cp?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; Date.now() < deadline && i < 1_000; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** api sends one request as the cluster admin over HTTPS verified against the cluster CA. */
function api<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  return apiJson<T>(cp, method, path, { body });
}

function node(name: string): Node {
  return {
    kind: 'Node',
    metadata: { name, uid: name, generation: 1, labels: { zone: 'a' }, createdAt: new Date().toISOString() },
    spec: { unschedulable: false, taints: [] },
    status: {
      capacity: { cpu: 2, memory: 2 ** 30, pids: 1000 }, allocatable: { cpu: 2, memory: 2 ** 30, pids: 1000 }, addresses: [], metricsUrl: '',
      // Ready without a lease: the lifecycle controller turns it False, then loses its tasks.
      conditions: [{ type: 'Ready', status: 'True', reason: 'AgentConnected', message: '', lastTransitionTime: new Date().toISOString() }],
      agentVersion: 'test', cgroupVersion: 'v1',
    },
  };
}

test('node routes: PATCH merges labels, verbs set unschedulable and drain, errors name the problem', async () => {
  await etcd.put('/berth/v1/nodes/n1').value(JSON.stringify(node('n1')));
  const patched = await api<Node>('PATCH', '/v1/nodes/n1', { metadata: { labels: { disk: 'ssd' } } });
  assert.equal(patched.status, 200);
  assert.deepEqual(patched.body.metadata.labels, { zone: 'a', disk: 'ssd' });
  const drained = await api<Node>('POST', '/v1/nodes/n1/drain', {});
  assert.deepEqual([drained.status, drained.body.spec.unschedulable, drained.body.spec.drain], [200, true, true]);
  const back = await api<Node>('POST', '/v1/nodes/n1/uncordon', {});
  assert.deepEqual([back.body.spec.unschedulable, back.body.spec.drain], [false, undefined]);
  const missing = await api<{ error: { code: string } }>('POST', '/v1/nodes/nope/cordon', {});
  assert.deepEqual([missing.status, missing.body.error.code], [404, 'BERTH_ERR_NOT_FOUND']);
  const bad = await api<{ error: { code: string; message: string } }>('PATCH', '/v1/nodes/n1', { spec: { unschedulable: 'yes' } });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /unschedulable/);
});

test('?watch=1 streams the current objects, then changes, as newline-delimited JSON', async () => {
  const abort = new AbortController();
  const res = await apiFetch(cp, 'GET', '/v1/nodes?watch=1', { signal: abort.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /ndjson/);
  const reader = res.body!.getReader();
  const lines: { type: string; object: Node }[] = [];
  let buffered = '';
  const next = async (): Promise<{ type: string; object: Node }> => {
    for (let i = 0; i < 100 && lines.length === 0; i++) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += Buffer.from(value).toString();
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as { type: string; object: Node });
    }
    return lines.shift()!;
  };
  try {
    const first = await next();
    assert.deepEqual([first.type, first.object.metadata.name], ['ADDED', 'n1']);
    assert.equal((await api('POST', '/v1/nodes/n1/cordon', {})).status, 200);
    let change = await next();
    while (change.type === 'MODIFIED' && !change.object.spec.unschedulable) change = await next(); // lifecycle status writes
    assert.deepEqual([change.type, change.object.spec.unschedulable], ['MODIFIED', true]);
    assert.equal((await api('POST', '/v1/nodes/n1/uncordon', {})).status, 200);
  } finally {
    abort.abort();
  }
});

test('a node gone past the grace period loses its task, which is replaced at once and explained by events', async () => {
  const svc = { kind: 'Service', metadata: { name: 'web' }, spec: { replicas: 1, template: { image: 'oci-archive:/images/busybox.tar', command: ['sleep', '1000'] } } };
  assert.equal((await api('PUT', '/v1/namespaces/default/services/web', svc)).status, 201);
  const first = await waitFor('the first task', async () => (await api<{ items: Task[] }>('GET', '/v1/tasks?service=web')).body.items[0]);
  // Pretend the task ran on n1 (which has no lease, so it is not Ready and soon lost).
  const onN1: Task = { ...first, spec: { ...first.spec, nodeName: 'n1' }, status: { phase: 'running', restarts: 0, pid: 1 } };
  delete onN1.metadata.resourceVersion;
  await etcd.put(`/berth/v1/tasks/default/web/${first.metadata.name}`).value(JSON.stringify(onN1));
  const replacement = await waitFor('a replacement task', async () => {
    const items = (await api<{ items: Task[] }>('GET', '/v1/tasks?service=web')).body.items;
    return items.length === 1 && items[0]!.metadata.name !== first.metadata.name ? items[0] : undefined;
  });
  assert.equal(replacement.spec.desiredState, 'running');
  const events = await waitFor('NodeNotReady, NodeLost and Rescheduled events', async () => {
    const items = (await api<{ items: Event[] }>('GET', '/v1/events')).body.items;
    const reasons = new Set(items.map((e) => e.reason));
    return ['NodeNotReady', 'NodeLost', 'Rescheduled'].every((r) => reasons.has(r)) ? items : undefined;
  });
  const rescheduled = events.find((e) => e.reason === 'Rescheduled')!;
  assert.deepEqual(rescheduled.involvedObject, { kind: 'Task', name: first.metadata.name, namespace: 'default' });
  assert.match(rescheduled.message, /NodeLost on n1/);
  const lease = await etcd.get(`/berth/v1/events/default/${rescheduled.metadata.name}`).exec();
  assert.notEqual(lease.kvs[0]?.lease, '0', 'events are bound to a lease so they expire');
});

test('a burst of events is written in batches and every one is listed', async () => {
  const recorder = new EventRecorder(new Store(etcd));
  const burst = 300;
  await Promise.all(Array.from({ length: burst }, (_, i) =>
    recorder.record({ object: { kind: 'Service', name: 'burst', namespace: 'bursty' }, reason: 'Burst', message: `event ${i}`, source: 'test' })));
  const items = (await api<{ items: Event[] }>('GET', '/v1/namespaces/bursty/events')).body.items;
  assert.equal(items.length, burst, 'every event of the burst is stored');
  assert.equal(recorder.dropped, 0);
});
