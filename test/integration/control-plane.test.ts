import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { AgentGatewayClient, type AgentMessage, type ControlMessage, type TaskAssignment } from '../../proto/gen/berth/v1/agent.js';
import { NodeIdentity } from '../../agent/pki.js';
import { AGENT_SESSION_CHANNEL_OPTIONS, GATEWAY_TLS_NAME } from '../../common/grpc-limits.js';
import { silentLogger } from '../../common/log.js';
import type { Node, Service, Task } from '../../control-plane/objects/types.js';
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from '../../control-plane/server.js';
import { apiJson, joinToken } from '../support/secure.js';

const dataDir = mkdtempSync(join(tmpdir(), 'berth-cp-test-'));
const options: ControlPlaneOptions = {
  listen: '127.0.0.1:0', gatewayListen: '127.0.0.1:0', dataDir,
  etcdClientPort: 23790, etcdPeerPort: 23800, nodeLeaseTtlSeconds: 2, logLevel: (process.env.BERTH_TEST_LOG_LEVEL as 'debug' | undefined) ?? 'warn',
};
let cp: ControlPlane;
let etcd: Etcd3;
const agents: { client: AgentGatewayClient; end(): void }[] = [];

before(async () => {
  cp = await startControlPlane(options);
  etcd = new Etcd3({ hosts: cp.etcdEndpoints });
});

after(async () => {
  for (const a of agents) a.end();
  etcd?.close();
  await cp?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** waitFor polls fn until it returns a value other than undefined, at most timeoutMs. */
async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; Date.now() < deadline && i < 10_000; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    last = v;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/** api sends one request as the cluster admin over HTTPS verified against the cluster CA. */
function api<T = unknown>(method: string, path: string, body?: unknown, raw?: string): Promise<{ status: number; body: T }> {
  return apiJson<T>(cp, method, path, { body, raw });
}

const service = (name: string, replicas: number, extra: Record<string, unknown> = {}) => ({
  kind: 'Service', metadata: { name, labels: { app: name } },
  spec: { replicas, template: { image: 'oci-archive:/images/busybox.tar', command: ['sleep', '1000'], resources: { cpu: '100m', memory: '16Mi' }, ...extra } },
});

async function etcdDump(): Promise<Record<string, string>> {
  return etcd.getAll().prefix('/berth/v1/').strings();
}

test('services: create, replace, get, list and delete', async () => {
  const created = await api<Service>('PUT', '/v1/namespaces/default/services/web', service('web', 0));
  assert.equal(created.status, 201);
  assert.equal(created.body.metadata.generation, 1);
  assert.equal(created.body.spec.template.resources?.memory, 16 * 1024 * 1024);
  assert.ok(created.body.metadata.resourceVersion);

  const same = await api<Service>('PUT', '/v1/namespaces/default/services/web', { ...service('web', 0), status: { bogus: true } });
  assert.equal(same.status, 200);
  assert.equal(same.body.metadata.generation, 1, 'an identical spec must not bump generation');

  const changed = await api<Service>('PUT', '/v1/namespaces/default/services/web', service('web', 0, { env: { A: '1' } }));
  assert.equal(changed.status, 200);
  assert.equal(changed.body.metadata.generation, 2);
  assert.equal(changed.body.metadata.uid, created.body.metadata.uid);

  const dup = await api<{ error: { code: string } }>('POST', '/v1/namespaces/default/services', service('web', 0));
  assert.equal(dup.status, 409);
  assert.equal(dup.body.error.code, 'BERTH_ERR_ALREADY_EXISTS');

  const other = await api('POST', '/v1/namespaces/prod/services', service('other', 0));
  assert.equal(other.status, 201);
  const got = await api<Service>('GET', '/v1/namespaces/default/services/web');
  assert.deepEqual(got.body.spec, changed.body.spec);
  const inDefault = await api<{ items: Service[] }>('GET', '/v1/namespaces/default/services');
  assert.deepEqual(inDefault.body.items.map((s) => s.metadata.name), ['web']);
  const all = await api<{ items: Service[] }>('GET', '/v1/services');
  assert.deepEqual(all.body.items.map((s) => `${s.metadata.namespace}/${s.metadata.name}`).sort(), ['default/web', 'prod/other']);

  const stale = await api<{ error: { code: string } }>('PUT', '/v1/namespaces/default/services/web',
    { ...service('web', 0), metadata: { name: 'web', resourceVersion: created.body.metadata.resourceVersion } });
  assert.equal(stale.status, 409, 'a stale resourceVersion must conflict');

  assert.equal((await api('DELETE', '/v1/namespaces/prod/services/other')).status, 200);
  assert.equal((await api('DELETE', '/v1/namespaces/prod/services/other')).status, 404);
  assert.equal((await api('GET', '/v1/namespaces/prod/services/other')).status, 404);
});

test('invalid bodies give 400 naming the field and leave etcd unchanged', async () => {
  // Let the controllers settle on "web" (status written) so nothing else writes meanwhile.
  await waitFor('web status', async () => {
    const s = (await api<Service>('GET', '/v1/namespaces/default/services/web')).body;
    return s.status?.observedGeneration === s.metadata.generation ? s : undefined;
  });
  await sleep(200);
  const before = await etcdDump();
  const bad: [string, unknown, string | undefined, string][] = [
    ['invalid JSON', undefined, '{"kind": "Service",', 'BERTH_ERR_INVALID_JSON'],
    ['unknown field', service('web', 1, { imagee: 'x' }), undefined, 'spec.template.imagee'],
    ['negative replicas', service('web', -1), undefined, 'spec.replicas'],
    ['missing image', { kind: 'Service', metadata: { name: 'web' }, spec: { replicas: 1, template: { command: ['x'] } } }, undefined, 'spec.template.image'],
  ];
  for (const [what, body, raw, expect] of bad) {
    for (const [method, path] of [['PUT', '/v1/namespaces/default/services/web'], ['POST', '/v1/namespaces/default/services']]) {
      const res = await api<{ error: { code: string; field?: string; message: string } }>(method!, path!, body, raw);
      assert.equal(res.status, 400, `${what} via ${method}`);
      if (expect.startsWith('BERTH_ERR')) assert.equal(res.body.error.code, expect);
      else assert.equal(res.body.error.field, expect, `${what}: ${res.body.error.message}`);
    }
  }
  assert.deepEqual(await etcdDump(), before, 'etcd must not change on refused writes');
});

/**
 * fakeAgent joins as nodeName with a fresh join token (a real node certificate, kept under the
 * test's data dir), opens a gateway session over mTLS with the generated client and records
 * what it receives.
 */
async function fakeAgent(nodeName: string) {
  const identity = new NodeIdentity({ stateDir: join(dataDir, `agent-${nodeName}`), nodeName, joinToken: await joinToken(cp), log: silentLogger });
  const client = new AgentGatewayClient(cp.gatewayAddress, await identity.channel([cp.gatewayAddress]),
    { ...AGENT_SESSION_CHANNEL_OPTIONS, 'grpc.ssl_target_name_override': GATEWAY_TLS_NAME });
  const call = client.session();
  const received: ControlMessage[] = [];
  call.on('data', (m: ControlMessage) => received.push(m));
  call.on('error', () => undefined);
  const agent = {
    client,
    received,
    send: (m: AgentMessage) => call.write(m),
    end: () => { call.end(); call.cancel(); client.close(); },
    lastDesired: (): TaskAssignment[] | undefined => {
      for (let i = received.length - 1; i >= 0; i--) {
        const m = received[i]!.msg;
        // Each revision's template comes once, in the message's templates map.
        if (m?.$case === 'desiredTasks') return m.value.tasks.map((t) => ({ ...t, template: t.template ?? m.value.templates[t.templateRef ?? ''] }));
      }
      return undefined;
    },
  };
  agents.push(agent);
  agent.send({ msg: { $case: 'register', value: {
    nodeName, labels: { zone: 'a' }, capacity: { cpuCores: 4, memoryBytes: 8 * 1024 ** 3, pids: 10000 },
    addresses: [{ type: 'InternalIP', address: '10.77.0.1' }], metricsUrl: 'http://10.77.0.1:9480/metrics', agentVersion: 'test', cgroupVersion: 'v1', images: [], volumes: [],
  } } });
  return agent;
}

test('a fake agent registers, receives its desired tasks, reports running, and goes not Ready when gone', async () => {
  const agent = await fakeAgent('node-a');
  const ack = await waitFor('registerAck', () => agent.received.find((m) => m.msg?.$case === 'registerAck'));
  assert.equal(ack.msg?.$case === 'registerAck' && ack.msg.value.heartbeatIntervalMs, 666);
  const node = (await api<Node>('GET', '/v1/nodes/node-a')).body;
  assert.deepEqual(node.metadata.labels, { zone: 'a' });
  assert.deepEqual(node.status.addresses, [{ type: 'InternalIP', address: '10.77.0.1' }]);
  assert.equal(node.status.metricsUrl, 'http://10.77.0.1:9480/metrics');
  assert.equal(node.status.conditions.find((c) => c.type === 'Ready')?.status, 'True');

  assert.equal((await api('PUT', '/v1/namespaces/default/services/app', service('app', 2))).status, 201);
  const desired = await waitFor('2 desired tasks', () => {
    const d = agent.lastDesired();
    return d && d.length === 2 ? d : undefined;
  });
  for (const t of desired) {
    assert.equal(t.service, 'app');
    assert.equal(t.desiredState, 'running');
    assert.equal(t.template?.image, 'oci-archive:/images/busybox.tar');
    assert.equal(t.template?.resources?.memoryBytes, 16 * 1024 * 1024);
  }
  agent.send({ msg: { $case: 'heartbeat', value: { sentAtUnixMs: Date.now() } } });
  agent.send({ msg: { $case: 'taskStatus', value: { full: true, tasks: desired.map((t, i) => ({
    namespace: t.namespace, name: t.name, uid: t.uid, phase: 'running', containerId: `c${i}`, pid: 1000 + i, ip: '', hasExitCode: false,
    exitCode: 0, reason: '', message: '', restarts: 0, startedAt: new Date().toISOString(), finishedAt: '', imageDigest: '', pullBytesDone: 0, pullBytesTotal: 0, ready: false, lastProbe: '', started: false, lastStartupProbe: '', lastReadinessProbe: '',
  })) } } });
  const tasks = await waitFor('tasks running', async () => {
    const items = (await api<{ items: Task[] }>('GET', '/v1/namespaces/default/tasks?service=app&node=node-a')).body.items;
    return items.length === 2 && items.every((t) => t.status.phase === 'running') ? items : undefined;
  });
  assert.deepEqual(tasks.map((t) => t.status.pid).sort(), [1000, 1001]);
  const one = await api<Task>('GET', `/v1/namespaces/default/tasks/${tasks[0]!.metadata.name}`);
  assert.equal(one.body.metadata.uid, tasks[0]!.metadata.uid);
  await waitFor('service available', async () => {
    const s = (await api<Service>('GET', '/v1/namespaces/default/services/app')).body;
    return s.status?.runningReplicas === 2 && s.status.conditions.find((c) => c.type === 'Available')?.status === 'True' ? s : undefined;
  });

  // Scale to 3: the third task is placed on the only node and pushed down.
  assert.equal((await api('PUT', '/v1/namespaces/default/services/app/scale', { replicas: 3 })).status, 200);
  await waitFor('3 desired running', () => {
    const d = agent.lastDesired();
    return d && d.filter((t) => t.desiredState === 'running').length === 3 ? d : undefined;
  });

  // Scale to 1: two tasks go desiredState stopped (not-running ones first); once the agent
  // reports them stopped they are deleted and vanish from the desired set.
  assert.equal((await api('PUT', '/v1/namespaces/default/services/app/scale', { replicas: 1 })).status, 200);
  const shrinking = await waitFor('2 desired stopped', () => {
    const d = agent.lastDesired();
    return d && d.filter((t) => t.desiredState === 'stopped').length === 2 ? d : undefined;
  });
  const stopped = shrinking.filter((t) => t.desiredState === 'stopped');
  assert.ok(stopped.some((t) => !desired.some((r) => r.name === t.name)), 'the never-running third task is stopped first');
  agent.send({ msg: { $case: 'taskStatus', value: { full: false, tasks: stopped.map((t) => ({
    namespace: t.namespace, name: t.name, uid: t.uid, phase: 'stopped', containerId: '', pid: 0, ip: '', hasExitCode: true,
    exitCode: 143, reason: 'Stopped', message: '', restarts: 0, startedAt: '', finishedAt: new Date().toISOString(), imageDigest: '', pullBytesDone: 0, pullBytesTotal: 0, ready: false, lastProbe: '', started: false, lastStartupProbe: '', lastReadinessProbe: '',
  })) } } });
  await waitFor('desired set shrinks to 1', () => {
    const d = agent.lastDesired();
    return d && d.length === 1 && d[0]!.desiredState === 'running' ? d : undefined;
  });
  assert.equal((await api('PUT', '/v1/namespaces/default/services/app/scale', { replicas: 3 })).status, 200);
  await waitFor('3 desired running again', () => {
    const d = agent.lastDesired();
    return d && d.filter((t) => t.desiredState === 'running').length === 3 ? d : undefined;
  });

  agent.end();
  const notReady = await waitFor('node not Ready', async () => {
    const n = (await api<Node>('GET', '/v1/nodes/node-a')).body;
    const ready = n.status.conditions.find((c) => c.type === 'Ready');
    return ready?.status === 'False' ? ready : undefined;
  }, 20_000);
  assert.equal(notReady.reason, 'NodeLeaseExpired');
});

test('restarting the control plane on the same data dir keeps services and tasks', async () => {
  const tasksBefore = (await api<{ items: Task[] }>('GET', '/v1/tasks?service=app')).body.items.map((t) => t.metadata.name).sort();
  assert.equal(tasksBefore.length, 3);
  etcd.close();
  await cp.stop();
  cp = await startControlPlane(options);
  etcd = new Etcd3({ hosts: cp.etcdEndpoints });
  const services = (await api<{ items: Service[] }>('GET', '/v1/services')).body.items.map((s) => s.metadata.name).sort();
  assert.deepEqual(services, ['app', 'web']);
  const tasksAfter = (await api<{ items: Task[] }>('GET', '/v1/tasks?service=app')).body.items.map((t) => t.metadata.name).sort();
  assert.deepEqual(tasksAfter, tasksBefore);
});

test('deleting a service removes its tasks once their node cannot run them', async () => {
  assert.equal((await api('DELETE', '/v1/namespaces/default/services/app')).status, 200);
  await waitFor('tasks of app gone', async () => {
    const items = (await api<{ items: Task[] }>('GET', '/v1/tasks?service=app')).body.items;
    return items.length === 0 ? true : undefined;
  });
});

test('a failed task is replaced after a backoff that doubles, not in a hot loop', async () => {
  const agent = await fakeAgent('node-b');
  // Heartbeats keep node-b's short test lease (2 s) alive while the backoff runs.
  const beat = setInterval(() => agent.send({ msg: { $case: 'heartbeat', value: { sentAtUnixMs: Date.now() } } }), 300);
  try {
    assert.equal((await api('PUT', '/v1/namespaces/default/services/crashy', service('crashy', 1))).status, 201);
    const failOnce = async (): Promise<{ failedName: string; replacedAfterMs: number }> => {
      const task = await waitFor('one running desired task', () => agent.lastDesired()?.find((t) => t.service === 'crashy' && t.desiredState === 'running'));
      agent.send({ msg: { $case: 'taskStatus', value: { full: false, tasks: [{
        namespace: task.namespace, name: task.name, uid: task.uid, phase: 'failed', containerId: '', pid: 0, ip: '', hasExitCode: true,
        exitCode: 1, reason: 'Error', message: 'exit 1', restarts: 0, startedAt: '', finishedAt: new Date().toISOString(), imageDigest: '', pullBytesDone: 0, pullBytesTotal: 0, ready: false, lastProbe: '', started: false, lastStartupProbe: '', lastReadinessProbe: '',
      }] } } });
      const failedAt = Date.now();
      await waitFor('a replacement task', () => agent.lastDesired()?.find((t) => t.service === 'crashy' && t.desiredState === 'running' && t.name !== task.name), 10_000);
      return { failedName: task.name, replacedAfterMs: Date.now() - failedAt };
    };
    const first = await failOnce();
    const second = await failOnce();
    assert.ok(first.replacedAfterMs >= 900, `first replacement waited ${first.replacedAfterMs} ms, expected about 1 s`);
    assert.ok(second.replacedAfterMs >= 1_900, `second replacement waited ${second.replacedAfterMs} ms, expected about 2 s`);
    const names = (await api<{ items: Task[] }>('GET', '/v1/tasks?service=crashy')).body.items.map((t) => t.metadata.name);
    assert.ok(names.length <= 3, `no pile-up of replacement tasks: ${names.join(',')}`);
  } finally {
    clearInterval(beat);
    await api('DELETE', '/v1/namespaces/default/services/crashy');
    agent.end();
  }
});
