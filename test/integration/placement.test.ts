/**
 * One placement path against a real etcd, with the controllers running in-process as the
 * control plane runs them: a global and a replicated service racing for a node's
 * last room never overcommit it, a constraint that does not parse places nothing, a global
 * task that does not fit says why, and a placement whose writes keep conflicting is given up
 * on with a reason instead of being retried forever.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { createLogger, silentLogger } from '../../common/log.js';
import { startControllers, type Controllers } from '../../control-plane/controllers/index.js';
import { MAX_PLACEMENT_CONFLICTS, PLACEMENT_CONFLICT, UNSCHEDULABLE } from '../../control-plane/controllers/scheduler-loop.js';
import { startEmbeddedEtcd, type EmbeddedEtcd } from '../../control-plane/etcd/embedded.js';
import { TERMINAL_PHASES } from '../../control-plane/objects/conditions.js';
import type { Node, Service, ServiceSpec, Task } from '../../control-plane/objects/types.js';
import { admitService } from '../../control-plane/objects/validation.js';
import { startInformers, type Informers } from '../../control-plane/store/informers.js';
import { nodeKey, nodeLeaseKey, ROOT_PREFIX, serviceKey } from '../../control-plane/store/keys.js';
import { Store, type BatchResult, type WriteOp } from '../../control-plane/store/store.js';
import { listTasks } from '../../control-plane/store/task-templates.js';
import { waitFor } from '../support/cluster.js';

const CONVERGE_TIMEOUT_MS = 30_000;
const MiB = 1024 * 1024;
const log = process.env.BERTH_TEST_LOG_LEVEL ? createLogger(process.env.BERTH_TEST_LOG_LEVEL as 'debug') : silentLogger;
const dataDir = mkdtempSync(join(tmpdir(), 'berth-placement-test-'));
let etcd: EmbeddedEtcd;
let direct: Etcd3;
const running: { inf: Informers; ctl?: Controllers; store: Store }[] = [];

before(async () => {
  etcd = await startEmbeddedEtcd({ dataDir, clientPort: 23913, peerPort: 23914, log: silentLogger });
  direct = new Etcd3({ hosts: etcd.endpoint });
});

after(async () => {
  await stopControlLoops();
  direct?.close();
  await etcd?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function stopControlLoops(): Promise<void> {
  for (const r of running.splice(0).reverse()) {
    await r.ctl?.stop();
    await r.inf.stop();
    r.store.close();
  }
  await direct.delete().prefix(ROOT_PREFIX);
}

async function startControlLoop(store: Store): Promise<void> {
  const inf = await startInformers(store, log);
  running.push({ inf, store, ctl: startControllers(inf, store, log) });
}

/** addNode writes a Ready node with memory MiB allocatable and a live heartbeat lease. */
async function addNode(store: Store, name: string, memoryMiB: number): Promise<void> {
  const lease = await store.grantLease(120);
  await store.putLeased(nodeLeaseKey(name), { nodeName: name, sessionId: 'test', connectedAt: new Date().toISOString() }, lease);
  const resources = { cpu: 4, memory: memoryMiB * MiB, pids: 1000 };
  const now = new Date().toISOString();
  const node: Node = {
    kind: 'Node',
    metadata: { name, uid: randomUUID(), generation: 1, labels: {}, createdAt: now },
    spec: { unschedulable: false, taints: [] },
    status: { capacity: resources, allocatable: resources, addresses: [], metricsUrl: '', agentVersion: 'test', cgroupVersion: 'v1',
      conditions: [{ type: 'Ready', status: 'True', reason: 'AgentConnected', message: '', lastTransitionTime: now }] },
  };
  assert.ok((await store.create(nodeKey(name), node)).ok);
}

/** putService stores a service as the API would after admission; raw skips admission (a stored object admission would refuse). */
async function putService(store: Store, name: string, spec: Partial<ServiceSpec>, raw = false): Promise<void> {
  let admitted = spec as ServiceSpec;
  if (!raw) {
    const a = admitService({ kind: 'Service', metadata: { name }, spec: { replicas: 1, template: { image: 'oci-archive:/images/busybox.tar' }, ...spec } as ServiceSpec }, { namespace: 'default' });
    assert.ok(a.ok, `admission refused ${name}: ${JSON.stringify(a.ok ? '' : a.error)}`);
    admitted = a.value.spec;
  }
  const svc: Service = {
    kind: 'Service',
    metadata: { name, namespace: 'default', uid: randomUUID(), generation: 1, labels: {}, createdAt: new Date().toISOString() },
    spec: admitted,
    status: { observedGeneration: 0, replicas: 0, runningReplicas: 0, conditions: [] },
  };
  assert.ok((await store.create(serviceKey('default', name), svc)).ok);
}

/** tasksInEtcd reads the tasks from etcd (not a cache), their stored templates filled in. */
async function tasksInEtcd(service?: string): Promise<Task[]> {
  return listTasks(new Store(direct), `tasks/default/${service ? `${service}/` : ''}`);
}

/** committedMemory sums the memory of the tasks placed on node and not finished, as stored in etcd. */
function committedMemory(tasks: readonly Task[], node: string): number {
  return tasks.filter((t) => t.spec.nodeName === node && !TERMINAL_PHASES.has(t.status.phase))
    .reduce((sum, t) => sum + (t.spec.template.resources?.memory ?? 0), 0);
}

/**
 * SlowPlacementStore holds every placement write (a task going from no node to a node) for
 * PLACEMENT_DELAY_MS before sending it, as a slow etcd would, and says when one is in flight.
 */
class SlowPlacementStore extends Store {
  inFlight = 0;

  override async commit(ops: WriteOp[]): Promise<BatchResult[]> {
    const placing = ops.some((o) => o.type === 'update' && (o.object as Task).spec.nodeName !== '' && (o.object as Task).status.phase === 'assigned');
    if (!placing) return super.commit(ops);
    this.inFlight++;
    try {
      await new Promise((r) => setTimeout(r, PLACEMENT_DELAY_MS));
      return await super.commit(ops);
    } finally {
      this.inFlight--;
    }
  }

  override withGuard(): Store {
    return this;
  }
}

/** PLACEMENT_DELAY_MS is long enough for another controller to act while a placement is on its way. */
const PLACEMENT_DELAY_MS = 500;

test('a global service created while a placement is on its way to etcd does not overcommit the node', async () => {
  const store = new SlowPlacementStore(direct);
  const inf = await startInformers(store, log);
  running.push({ inf, store: Store.connect([etcd.endpoint]), ctl: startControllers(inf, store, log) });
  for (let round = 0; round < 2; round++) {
    const node = `race-${round}`;
    await addNode(store, node, 1000);
    const only = [`node.name == ${node}`];
    const template = { image: 'oci-archive:/images/busybox.tar', resources: { memory: 600 * MiB } };
    await putService(store, `rep-${round}`, { replicas: 1, template, placement: { constraints: only } });
    // The replicated task's placement is planned and on its way: now the global service arrives.
    await waitFor(() => (store.inFlight > 0 ? true : undefined), CONVERGE_TIMEOUT_MS, () => 'a placement in flight', 1);
    await putService(store, `glob-${round}`, { mode: 'global', template, placement: { constraints: only } });
    let worst = 0;
    await waitFor(async () => {
      const tasks = [...await tasksInEtcd(`rep-${round}`), ...await tasksInEtcd(`glob-${round}`)];
      worst = Math.max(worst, committedMemory(tasks, node));
      const placed = tasks.filter((t) => t.spec.nodeName === node).length;
      const waiting = tasks.filter((t) => t.spec.nodeName === '' && t.status.reason === UNSCHEDULABLE).length;
      return placed >= 1 && waiting === 1 && store.inFlight === 0 ? true : undefined;
    }, CONVERGE_TIMEOUT_MS, () => `round ${round}: the placement landed and the other task is unschedulable (${worst / MiB} MiB committed)`, 5);
    const tasks = [...await tasksInEtcd(`rep-${round}`), ...await tasksInEtcd(`glob-${round}`)];
    worst = Math.max(worst, committedMemory(tasks, node));
    assert.ok(worst <= 1000 * MiB, `round ${round}: ${worst / MiB} MiB committed on a 1000 MiB node`);
    const waiting = tasks.find((t) => t.spec.nodeName === '')!;
    assert.equal(waiting.spec.service, `glob-${round}`, 'the global task waits: the replicated one was placed first');
    assert.equal(waiting.status.message, '0/1 nodes fit: 1 insufficient memory');
  }
  await stopControlLoops();
});

test('a global task pinned to a node that cannot hold it stays pending and says why; it is placed once room frees', async () => {
  const store = Store.connect([etcd.endpoint]);
  await startControlLoop(store);
  await addNode(store, 'small', 100);
  await addNode(store, 'large', 1000);
  await putService(store, 'agentd', { mode: 'global', template: { image: 'oci-archive:/images/busybox.tar', resources: { memory: 500 * MiB } } });
  await waitFor(async () => {
    const tasks = await tasksInEtcd('agentd');
    const onLarge = tasks.some((t) => t.spec.nodeName === 'large');
    const small = tasks.find((t) => t.spec.pinnedNode === 'small');
    return onLarge && small?.status.reason === UNSCHEDULABLE ? true : undefined;
  }, CONVERGE_TIMEOUT_MS, () => 'one task on large, one pending for small');
  const small = (await tasksInEtcd('agentd')).find((t) => t.spec.pinnedNode === 'small')!;
  assert.equal(small.status.phase, 'pending');
  assert.equal(small.status.message, '0/1 nodes fit: 1 insufficient memory', 'only its own node is considered');
  assert.equal((await tasksInEtcd('agentd')).length, 2, 'one task per node, no more');
  await stopControlLoops();
});

test('a stored constraint that does not parse places nothing (replicated and global)', async () => {
  const store = Store.connect([etcd.endpoint]);
  await startControlLoop(store);
  await addNode(store, 'n1', 1000);
  const template = { image: 'oci-archive:/images/busybox.tar' };
  await putService(store, 'broken-rep', { replicas: 2, template, placement: { constraints: ['node.labels.zone ~= a'] } } as ServiceSpec, true);
  await putService(store, 'broken-glob', { replicas: 1, mode: 'global', template, placement: { constraints: ['node.labels.zone ~= a'] } } as ServiceSpec, true);
  await putService(store, 'fine', { replicas: 1, template });
  await waitFor(async () => {
    const rep = await tasksInEtcd('broken-rep');
    const fine = await tasksInEtcd('fine');
    return rep.length === 2 && rep.every((t) => t.status.reason === UNSCHEDULABLE) && fine.some((t) => t.spec.nodeName === 'n1') ? true : undefined;
  }, CONVERGE_TIMEOUT_MS, () => 'broken-rep unschedulable and fine placed');
  for (const t of await tasksInEtcd('broken-rep')) {
    assert.equal(t.spec.nodeName, '', 'never placed');
    assert.match(t.status.message ?? '', /invalid placement constraint: cannot parse "node.labels.zone ~= a"/);
  }
  // The control loop settled (fine got placed after broken-glob was synced): global created nothing.
  assert.deepEqual(await tasksInEtcd('broken-glob'), []);
  await stopControlLoops();
});

/** ConflictingStore answers every placement write with Conflict, as if another writer kept changing the task. */
class ConflictingStore extends Store {
  placementAttempts = 0;

  override async commit(ops: WriteOp[]): Promise<BatchResult[]> {
    const placements = ops.filter((o) => o.type === 'update' && o.unchanged !== undefined);
    this.placementAttempts += placements.length;
    const rest = await super.commit(ops.filter((o) => !placements.includes(o)));
    let i = 0;
    return ops.map((o) => (placements.includes(o) ? { ok: false, reason: 'Conflict' } : rest[i++]!));
  }

  override withGuard(): Store {
    return this;
  }
}

test('a placement that keeps conflicting is given up on after a bounded number of passes, with its reason', async () => {
  const store = new ConflictingStore(direct);
  const inf = await startInformers(store, log);
  running.push({ inf, store: Store.connect([etcd.endpoint]), ctl: startControllers(inf, store, log) });
  await addNode(store, 'n1', 1000);
  await putService(store, 'contested', { replicas: 1, template: { image: 'oci-archive:/images/busybox.tar' } });
  await waitFor(async () => ((await tasksInEtcd('contested'))[0]?.status.reason === PLACEMENT_CONFLICT ? true : undefined),
    CONVERGE_TIMEOUT_MS, () => `reason ${PLACEMENT_CONFLICT} after ${store.placementAttempts} attempts`);
  assert.equal(store.placementAttempts, MAX_PLACEMENT_CONFLICTS, 'exactly the bounded number of attempts');
  const t = (await tasksInEtcd('contested'))[0]!;
  assert.equal(t.status.phase, 'pending');
  assert.match(t.status.message ?? '', /conflicted with other writes 5 times in a row/);
  await stopControlLoops();
});
