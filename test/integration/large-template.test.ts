/**
 * Large but valid templates against a real etcd: a service with 20 KiB of env gets all its
 * tasks. 100 of them are one txn by count but 2.3 MB of request, over etcd's 1.5 MiB request
 * limit (its gRPC server refuses the message with RESOURCE_EXHAUSTED past 2 MiB), so the store
 * must cut txns by bytes too. The service is written through the Store and the controllers run
 * in-process over the informers, as the control plane runs them, without the API in between.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { ETCD_CLIENT_CHANNEL_OPTIONS } from '../../common/grpc-limits.js';
import { createLogger, silentLogger } from '../../common/log.js';
import { startControllers, type Controllers } from '../../control-plane/controllers/index.js';
import { UNSCHEDULABLE } from '../../control-plane/controllers/scheduler-loop.js';
import { startEmbeddedEtcd, type EmbeddedEtcd } from '../../control-plane/etcd/embedded.js';
import type { Service, Task } from '../../control-plane/objects/types.js';
import { admitService } from '../../control-plane/objects/validation.js';
import { startInformers, type Informers } from '../../control-plane/store/informers.js';
import { ROOT_PREFIX, serviceKey, taskKey } from '../../control-plane/store/keys.js';
import { Store, type WriteOp } from '../../control-plane/store/store.js';
import { listTasks } from '../../control-plane/store/task-templates.js';
import { waitFor } from '../support/cluster.js';

/** CONVERGE_TIMEOUT_MS bounds every wait for the controllers. */
const CONVERGE_TIMEOUT_MS = 30_000;
const log = process.env.BERTH_TEST_LOG_LEVEL ? createLogger(process.env.BERTH_TEST_LOG_LEVEL as 'debug') : silentLogger;
const dataDir = mkdtempSync(join(tmpdir(), 'berth-large-template-test-'));
let etcd: EmbeddedEtcd;
const clients: Etcd3[] = [];
const running: { inf: Informers; ctl?: Controllers }[] = [];

before(async () => {
  etcd = await startEmbeddedEtcd({ dataDir, clientPort: 23798, peerPort: 23808, log: silentLogger });
});

after(async () => {
  for (const r of running.reverse()) {
    await r.ctl?.stop();
    await r.inf.stop();
  }
  for (const c of clients) c.close();
  await etcd?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** client returns an etcd client closed after the tests; grpcOptions as the control plane would pass them. */
function client(grpcOptions?: Record<string, number>): Etcd3 {
  const c = new Etcd3({ hosts: etcd.endpoint, ...(grpcOptions ? { grpcOptions } : {}) });
  clients.push(c);
  return c;
}

/** env20k is 200 variables of 100 bytes: 20 KiB of env, about 22 KB per task object. */
function env20k(): Record<string, string> {
  const env: Record<string, string> = {};
  for (let i = 0; i < 200; i++) env[`VAR_${String(i).padStart(3, '0')}`] = 'v'.repeat(100);
  return env;
}

/** createService admits and stores a service the way the API's POST does, without the API. */
async function createService(store: Store, name: string, replicas: number): Promise<Service> {
  const a = admitService({ kind: 'Service', metadata: { name }, spec: { replicas, template: { image: 'oci-archive:/images/busybox.tar', env: env20k() } } }, { namespace: 'default' });
  assert.ok(a.ok, `admission refused the service: ${JSON.stringify(a.ok ? '' : a.error)}`);
  const svc: Service = {
    kind: 'Service',
    metadata: { name, namespace: 'default', uid: randomUUID(), generation: 1, labels: {}, createdAt: new Date().toISOString() },
    spec: a.value.spec,
    status: { observedGeneration: 0, replicas: 0, runningReplicas: 0, conditions: [] },
  };
  const r = await store.create(serviceKey('default', name), svc);
  assert.ok(r.ok, `service ${name} not created: ${JSON.stringify(r)}`);
  return r.object;
}

/** storedTasks reads the service's task objects as stored in etcd, not from any cache, with their stored size. */
async function storedTasks(c: Etcd3, service: string): Promise<{ task: Task; bytes: number }[]> {
  const values = await c.getAll().prefix(`${ROOT_PREFIX}tasks/default/${service}/`).strings();
  return Object.values(values).map((v) => ({ task: JSON.parse(v) as Task, bytes: Buffer.byteLength(v) })).filter((o) => o.task.kind === 'Task');
}

/** tasksInEtcd reads the service's tasks from etcd, their stored template filled in. */
async function tasksInEtcd(c: Etcd3, service: string): Promise<Task[]> {
  return listTasks(new Store(c), `tasks/default/${service}/`);
}

/** converged waits until check reports nothing missing (undefined), naming what was missing last on timeout. */
async function converged(what: string, check: () => Promise<string | undefined>): Promise<void> {
  let last = '';
  await waitFor(async () => {
    const missing = await check();
    last = missing ?? '';
    return missing === undefined ? true : undefined;
  }, CONVERGE_TIMEOUT_MS, () => `${what}: ${last}`, 100);
}

async function startControlLoop(c: Etcd3): Promise<{ store: Store; inf: Informers }> {
  const store = new Store(c);
  const inf = await startInformers(store, log);
  const entry: { inf: Informers; ctl?: Controllers } = { inf };
  running.push(entry);
  entry.ctl = startControllers(inf, store, log);
  return { store, inf };
}

test('100 replicas with 20 KiB of env each: all 100 tasks are written and then all 100 updated by the scheduler', async () => {
  // A client with grpc-js defaults, as the control plane's is today: 100 tasks (2.3 MB) list within 4 MiB.
  const c = client();
  const { store } = await startControlLoop(c);
  const started = Date.now();
  await createService(store, 'big', 100);
  await converged('100 task objects in etcd', async () => {
    const n = (await tasksInEtcd(c, 'big')).length;
    return n === 100 ? undefined : `${n}/100 tasks`;
  });
  // No node exists: the scheduler's pass updates every task with the reason it waits, in txns of
  // updates whose watch events carry each value twice (with the previous one).
  await converged('100 tasks marked unschedulable', async () => {
    const n = (await tasksInEtcd(c, 'big')).filter((t) => t.status.reason === UNSCHEDULABLE).length;
    return n === 100 ? undefined : `${n}/100 tasks unschedulable`;
  });
  const tasks = await tasksInEtcd(c, 'big');
  assert.equal(new Set(tasks.map((t) => t.metadata.name)).size, 100, 'task names must be distinct');
  assert.ok(tasks.every((t) => Object.keys(t.spec.template.env ?? {}).length === 200), 'every task reads back with the whole template');
  // Stored once: each task refers to its revision's template instead of carrying 20 KiB of it.
  const stored = await storedTasks(c, 'big');
  assert.equal(stored.length, 100);
  assert.ok(stored.every((s) => s.task.spec.template === undefined && s.task.spec.templateRef !== undefined), 'no stored task holds a copy of the template');
  const largest = Math.max(...stored.map((s) => s.bytes));
  assert.ok(largest < 2_048, `a stored task is ${largest} bytes`);
  const copies = Object.keys(await c.getAll().prefix(`${ROOT_PREFIX}tasks/default/big/~templates/`).strings());
  assert.equal(copies.length, 1, 'one stored template for the revision');
  log.info('converged', { ms: Date.now() - started });
});

test('300 tasks that carry their own template (7 MB, as stored before templates were stored once): a restarted control plane lists them with ETCD_CLIENT_CHANNEL_OPTIONS', async () => {
  const c = client(ETCD_CLIENT_CHANNEL_OPTIONS);
  const store = new Store(c);
  const template = { image: 'oci-archive:/images/busybox.tar', env: env20k() };
  const ops: WriteOp[] = Array.from({ length: 300 }, (_, i) => {
    const name = `legacy-${String(i).padStart(3, '0')}`;
    const task: Task = {
      kind: 'Task',
      metadata: { name, namespace: 'default', uid: randomUUID(), generation: 1, labels: {}, createdAt: new Date().toISOString() },
      spec: { service: 'legacy', nodeName: '', desiredState: 'running', template, revision: 1 },
      status: { phase: 'pending', restarts: 0 },
    };
    return { type: 'create', key: taskKey('default', 'legacy', name), object: task };
  });
  assert.ok((await store.commit(ops)).every((r) => r.ok), 'all 300 written (txns cut by bytes)');
  // What a restarted replica does first: list every task into its watch cache.
  const restarted = client(ETCD_CLIENT_CHANNEL_OPTIONS);
  const inf = await startInformers(new Store(restarted), log);
  running.push({ inf });
  const cached = inf.tasks.list().filter((t) => t.spec.service === 'legacy');
  assert.equal(cached.length, 300, 'the restarted informer must hold all 300 tasks');
  assert.ok(cached.every((t) => Object.keys(t.spec.template.env ?? {}).length === 200), 'a task with its own template keeps it');
  // Why the option matters: with grpc-js's default 4 MiB receive limit the same list fails.
  const plain = client();
  await assert.rejects(new Store(plain).list('tasks/'), /RESOURCE_EXHAUSTED|larger than max/, 'a default client cannot receive the task list');
});
