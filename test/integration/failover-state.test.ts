/**
 * The failure backoff survives a change of leader: a service whose tasks keep failing
 * waits longer before each replacement; a new leader with empty memory must keep waiting until
 * the stored deadline instead of starting the streak over and replacing at once. The test plays
 * the agent: every task placed on its node is reported failed, through etcd as the gateway would.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createLogger, silentLogger } from '../../common/log.js';
import { startControllers, type Controllers } from '../../control-plane/controllers/index.js';
import { startEmbeddedEtcd, type EmbeddedEtcd } from '../../control-plane/etcd/embedded.js';
import type { Node, Service, Task } from '../../control-plane/objects/types.js';
import { admitService } from '../../control-plane/objects/validation.js';
import { startInformers, type Informers } from '../../control-plane/store/informers.js';
import { nodeKey, nodeLeaseKey, serviceKey, taskKey } from '../../control-plane/store/keys.js';
import { Store } from '../../control-plane/store/store.js';
import { listTasks } from '../../control-plane/store/task-templates.js';
import { waitFor } from '../support/cluster.js';

const CONVERGE_TIMEOUT_MS = 30_000;
const log = process.env.BERTH_TEST_LOG_LEVEL ? createLogger(process.env.BERTH_TEST_LOG_LEVEL as 'debug') : silentLogger;
const dataDir = mkdtempSync(join(tmpdir(), 'berth-failover-state-test-'));
let etcd: EmbeddedEtcd;
let store: Store;
let inf: Informers | undefined;
let ctl: Controllers | undefined;
let stopFailing: (() => void) | undefined;

before(async () => {
  etcd = await startEmbeddedEtcd({ dataDir, clientPort: 23915, peerPort: 23916, log: silentLogger });
  store = Store.connect([etcd.endpoint]);
});

after(async () => {
  stopFailing?.();
  await ctl?.stop();
  await inf?.stop();
  store?.close();
  await etcd?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function addNode(name: string): Promise<void> {
  const lease = await store.grantLease(120);
  await store.putLeased(nodeLeaseKey(name), { nodeName: name, sessionId: 'test', connectedAt: new Date().toISOString() }, lease);
  const resources = { cpu: 4, memory: 4 << 30, pids: 1000 };
  const now = new Date().toISOString();
  const node: Node = {
    kind: 'Node', metadata: { name, uid: randomUUID(), generation: 1, labels: {}, createdAt: now }, spec: { unschedulable: false, taints: [] },
    status: { capacity: resources, allocatable: resources, addresses: [], metricsUrl: '', agentVersion: 'test', cgroupVersion: 'v1',
      conditions: [{ type: 'Ready', status: 'True', reason: 'AgentConnected', message: '', lastTransitionTime: now }] },
  };
  assert.ok((await store.create(nodeKey(name), node)).ok);
}

/** failEveryPlacedTask plays an agent whose tasks all exit 1: each assigned task is reported failed. */
function failEveryPlacedTask(cache: Informers): () => void {
  const failing = new Set<string>();
  return cache.tasks.onChange((e) => {
    const t = e.object;
    if (!t || t.status.phase !== 'assigned' || t.spec.desiredState !== 'running' || failing.has(t.metadata.uid)) return;
    failing.add(t.metadata.uid);
    void store.mutate<Task>(taskKey('default', t.spec.service, t.metadata.name), (cur) =>
      ({ ...cur, status: { ...cur.status, phase: 'failed', exitCode: 1, reason: 'Error', finishedAt: new Date().toISOString() } }));
  });
}

async function leaderStarts(): Promise<void> {
  await leaderFalls();
  inf = await startInformers(store, log);
  stopFailing = failEveryPlacedTask(inf);
  ctl = startControllers(inf, store, log);
}

/** agentQuiet stops playing the failing agent: tasks stay as they are. */
function agentQuiet(): void {
  stopFailing?.();
  stopFailing = undefined;
}

async function leaderFalls(): Promise<void> {
  agentQuiet();
  await ctl?.stop();
  await inf?.stop();
  ctl = undefined;
  inf = undefined;
}

const tasks = async (): Promise<Task[]> => listTasks(store, 'tasks/default/crash/');

test('a new leader keeps the failure backoff where the old one left it', async () => {
  await addNode('n1');
  const a = admitService({ kind: 'Service', metadata: { name: 'crash' }, spec: { replicas: 1, template: { image: 'oci-archive:/images/busybox.tar' } } }, { namespace: 'default' });
  assert.ok(a.ok);
  const svc: Service = {
    kind: 'Service', metadata: { name: 'crash', namespace: 'default', uid: randomUUID(), generation: 1, labels: {}, createdAt: new Date().toISOString() },
    spec: a.value.spec, status: { observedGeneration: 0, replicas: 0, runningReplicas: 0, conditions: [] },
  };
  assert.ok((await store.create(serviceKey('default', 'crash'), svc)).ok);
  await leaderStarts();
  // Three failures in a row: the third failed task is held for 4 s (1 s, 2 s, 4 s).
  let held: Task | undefined;
  await waitFor(async () => {
    held = (await tasks()).find((t) => t.status.phase === 'failed' && t.spec.desiredState === 'running' && t.status.replaceAfter !== undefined
      && Date.parse(t.status.replaceAfter) - Date.parse(t.status.finishedAt!) >= 3_000);
    return held;
  }, CONVERGE_TIMEOUT_MS, () => 'a failed task held for the third backoff step');
  const stored = (await store.get<Service>(serviceKey('default', 'crash')))!;
  assert.ok((stored.status?.failureStreak ?? 0) >= 2, `the streak is stored with the service (${stored.status?.failureStreak})`);
  // The leader falls; a successor with empty memory takes over at once.
  await leaderFalls();
  await leaderStarts();
  const deadline = Date.parse(held!.status.replaceAfter!);
  const replacement = await waitFor(async () => (await tasks()).find((t) => t.metadata.createdAt > held!.metadata.createdAt && t.metadata.uid !== held!.metadata.uid),
    CONVERGE_TIMEOUT_MS, () => 'the held task is replaced');
  assert.ok(Date.parse(replacement.metadata.createdAt) >= deadline,
    `replacement created at ${replacement.metadata.createdAt}, before the stored deadline ${held!.status.replaceAfter}`);
});

test('a failed task seen for the first time by a sync that also scales it away is simply stopped (one write per key)', async () => {
  // Set up while no leader runs: a service of one replica whose task has just failed, then scaled to 0.
  const a = admitService({ kind: 'Service', metadata: { name: 'shrink' }, spec: { replicas: 1, template: { image: 'oci-archive:/images/busybox.tar' } } }, { namespace: 'default' });
  assert.ok(a.ok);
  const svc: Service = {
    kind: 'Service', metadata: { name: 'shrink', namespace: 'default', uid: randomUUID(), generation: 1, labels: {}, createdAt: new Date().toISOString() },
    spec: a.value.spec, status: { observedGeneration: 0, replicas: 0, runningReplicas: 0, conditions: [] },
  };
  assert.ok((await store.create(serviceKey('default', 'shrink'), svc)).ok);
  await leaderStarts();
  agentQuiet();
  const shrinkTasks = async (): Promise<Task[]> => listTasks(store, 'tasks/default/shrink/');
  const placed = await waitFor(async () => (await shrinkTasks()).find((t) => t.spec.nodeName !== ''), CONVERGE_TIMEOUT_MS, () => 'the task is placed');
  await leaderFalls();
  await store.mutate<Task>(taskKey('default', 'shrink', placed.metadata.name), (cur) =>
    ({ ...cur, status: { ...cur.status, phase: 'failed', exitCode: 1, reason: 'Error', finishedAt: new Date().toISOString() } }));
  await store.mutate<Service>(serviceKey('default', 'shrink'), (cur) => ({ ...cur, metadata: { ...cur.metadata, generation: cur.metadata.generation + 1 }, spec: { ...cur.spec, replicas: 0 } }));
  await leaderStarts();
  agentQuiet();
  // Before: the stamp and the stop of one task went into one txn, which etcd refuses, forever.
  await waitFor(async () => ((await shrinkTasks()).length === 0 ? true : undefined), CONVERGE_TIMEOUT_MS, () => 'the failed task is stopped and removed');
  const stored = (await store.get<Service>(serviceKey('default', 'shrink')))!;
  await waitFor(async () => (((await store.get<Service>(serviceKey('default', 'shrink')))!.status?.observedGeneration === stored.metadata.generation) ? true : undefined),
    CONVERGE_TIMEOUT_MS, () => 'the service status catches up with its spec');
});
