/**
 * The scheduler benchmark: (a) pure schedule() decisions/s and per-decision latency on 5,000
 * simulated nodes and 100,000 tasks of 1,000 services with constraints and zone spread; (b) tasks/s
 * committed end to end to a real (embedded) etcd through the Store: tasks created pending, placed
 * by schedule() and committed in CAS txns, then acknowledged running by simulated agents, all in
 * batches with several txns in flight; (c) the process RSS at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { createLogger } from '../../common/log.js';
import { startEmbeddedEtcd } from '../../control-plane/etcd/embedded.js';
import { parseConstraint, type Constraint } from '../../control-plane/objects/constraints.js';
import type { Task } from '../../control-plane/objects/types.js';
import { schedule } from '../../control-plane/scheduler/schedule.js';
import type { NodeInfo, TaskRequest } from '../../control-plane/scheduler/types.js';
import { MAX_OPS_PER_TXN, Store, type WriteOp } from '../../control-plane/store/store.js';
import { fmt, nowMs, parseFlags, positiveInt, round, summarize, table, type Bench } from './report.js';
import { mulberry32 } from '../support/prng.js';

const ZONES = 10;
const RACKS_PER_ZONE = 10;
/** TXNS_IN_FLIGHT matches DESIGN.md's measured sweet spot (txns of 128 puts, 8 in flight). */
const TXNS_IN_FLIGHT = 8;
const ETCD_CLIENT_PORT = 24479;
const ETCD_PEER_PORT = 24480;
const CONSTRAINT_CHOICES = ['', 'node.labels.zone in (z0, z1, z2, z3, z4)', 'node.labels.rack != r3', 'node.labels.disk == ssd'];


function nodesOf(count: number): NodeInfo[] {
  const rnd = mulberry32(42);
  return Array.from({ length: count }, (_, i) => {
    const big = rnd() < 0.3;
    return {
      name: `node-${String(i).padStart(5, '0')}`,
      labels: { zone: `z${i % ZONES}`, rack: `r${Math.floor(i / ZONES) % RACKS_PER_ZONE}`, disk: rnd() < 0.5 ? 'ssd' : 'hdd' },
      ready: true, unschedulable: false, taints: [],
      allocatable: big ? { cpu: 64, memory: 256 * 2 ** 30, pids: 100_000 } : { cpu: 16, memory: 64 * 2 ** 30, pids: 20_000 },
      allocated: { cpu: 0, memory: 0, pids: 0 }, tasksByService: new Map(), hostPorts: new Set(),
    };
  });
}

function servicesOf(services: number, tasksPer: number): TaskRequest[][] {
  const out: TaskRequest[][] = [];
  for (let s = 0; s < services; s++) {
    const c = CONSTRAINT_CHOICES[s % CONSTRAINT_CHOICES.length]!;
    const constraints: Constraint[] = [];
    if (c) {
      const p = parseConstraint(c);
      if (p.ok) constraints.push(p.constraint);
    }
    const batch: TaskRequest[] = [];
    for (let r = 0; r < tasksPer; r++) {
      const name = `svc${s}-${r.toString(36).padStart(5, '0')}`;
      batch.push({ key: `tasks/bench/svc${s}/${name}`, name, service: `bench/svc${s}`, resources: { cpu: 0.1, memory: 64 * 2 ** 20, pids: 16 },
        hostPorts: [], constraints, spread: 'node.labels.zone', strategy: s % 2 ? 'binpack' : 'spread' });
    }
    out.push(batch);
  }
  return out;
}

/** applyPlacements carries a batch's placements into the shared snapshot, as commits would. */
function applyPlacements(nodes: Map<string, NodeInfo>, byKey: Map<string, TaskRequest>, placements: { taskKey: string; nodeName: string }[]): void {
  for (const p of placements) {
    const n = nodes.get(p.nodeName)!;
    const t = byKey.get(p.taskKey)!;
    n.allocated.cpu += t.resources.cpu;
    n.allocated.memory += t.resources.memory;
    n.allocated.pids += t.resources.pids;
    n.tasksByService.set(t.service, (n.tasksByService.get(t.service) ?? 0) + 1);
  }
}

async function inFlight(ops: WriteOp[], store: Store): Promise<Map<string, string>> {
  const chunks: WriteOp[][] = [];
  for (let i = 0; i < ops.length; i += MAX_OPS_PER_TXN) chunks.push(ops.slice(i, i + MAX_OPS_PER_TXN));
  const ok = new Map<string, string>();
  let next = 0;
  await Promise.all(Array.from({ length: TXNS_IN_FLIGHT }, async () => {
    while (next < chunks.length) {
      const chunk = chunks[next++]!;
      const results = await store.commit(chunk);
      results.forEach((r, i) => { if (r.ok) ok.set(chunk[i]!.key, r.revision); });
    }
  }));
  return ok;
}

function taskObject(t: TaskRequest, ns: string, service: string): Task {
  return {
    kind: 'Task',
    metadata: { name: t.name, namespace: ns, uid: t.name, generation: 1, labels: {}, createdAt: new Date().toISOString() },
    spec: { service, nodeName: '', desiredState: 'running', revision: 1, template: { image: 'bench', resources: t.resources } },
    status: { phase: 'pending' },
  } as unknown as Task;
}

async function endToEnd(nodes: NodeInfo[], services: TaskRequest[][]): Promise<{ tasks: number; seconds: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-sched-'));
  const etcd = await startEmbeddedEtcd({ dataDir: dir, clientPort: ETCD_CLIENT_PORT, peerPort: ETCD_PEER_PORT, log: createLogger('warn') });
  const client = new Etcd3({ hosts: etcd.endpoint });
  try {
    const store = new Store(client);
    const all = services.flat();
    const byKey = new Map(all.map((t) => [t.key, t]));
    const objects = new Map(all.map((t) => [t.key, taskObject(t, 'bench', t.service.split('/')[1]!)]));
    const started = nowMs();
    // 1. The service controller's part: pending tasks.
    const rev = await inFlight(all.map((t) => ({ type: 'create', key: t.key, object: objects.get(t.key)! })), store);
    // 2. The scheduler's part: one plan per service, committed as CAS updates.
    const snapshot = new Map(nodes.map((n) => [n.name, { ...n, allocated: { ...n.allocated }, tasksByService: new Map(n.tasksByService) }]));
    const placeOps: WriteOp[] = [];
    for (const batch of services) {
      const plan = schedule({ nodes: [...snapshot.values()] }, batch);
      applyPlacements(snapshot, byKey, plan.placements);
      for (const p of plan.placements) {
        const obj = objects.get(p.taskKey)!;
        obj.spec.nodeName = p.nodeName;
        obj.status = { ...obj.status, phase: 'assigned' };
        placeOps.push({ type: 'update', key: p.taskKey, object: obj, expectedRevision: rev.get(p.taskKey)! });
      }
    }
    const placedRev = await inFlight(placeOps, store);
    // 3. The agents' part: status running, acknowledged in batches.
    const ackOps: WriteOp[] = [...placedRev].map(([key, revision]) => {
      const t = objects.get(key)!;
      return { type: 'update', key, object: { ...t, status: { ...t.status, phase: 'running' as const } }, expectedRevision: revision };
    });
    const acked = await inFlight(ackOps, store);
    return { tasks: acked.size, seconds: (nowMs() - started) / 1000 };
  } finally {
    client.close();
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** schedulerBench is `npm run bench -- scheduler`. */
export const schedulerBench: Bench = {
  name: 'scheduler',
  summary: 'scheduling decisions/s, tasks/s committed to etcd, control-plane RSS',
  usage: 'npm run bench -- scheduler [--nodes 5000] [--services 1000] [--tasks-per-service 100] [--e2e-tasks 20000]',
  async run(args) {
    const f = parseFlags(args, ['nodes', 'services', 'tasks-per-service', 'e2e-tasks']);
    const nodeCount = positiveInt('nodes', f.get('nodes') ?? '5000');
    const serviceCount = positiveInt('services', f.get('services') ?? '1000');
    const perService = positiveInt('tasks-per-service', f.get('tasks-per-service') ?? '100');
    const e2eTasks = positiveInt('e2e-tasks', f.get('e2e-tasks') ?? '20000');

    const nodes = nodesOf(nodeCount);
    const services = servicesOf(serviceCount, perService);
    const byKey = new Map(services.flat().map((t) => [t.key, t]));
    const shared = new Map(nodes.map((n) => [n.name, { ...n, allocated: { ...n.allocated }, tasksByService: new Map(n.tasksByService) }]));
    const perDecisionMs: number[] = [];
    let decisions = 0;
    let unplaced = 0;
    let scheduleMs = 0;
    for (const batch of services) {
      const t0 = nowMs();
      const plan = schedule({ nodes: [...shared.values()] }, batch);
      const dt = nowMs() - t0;
      scheduleMs += dt;
      decisions += batch.length;
      unplaced += plan.unplaced.length;
      // The loop schedules a service's burst in one call; each decision's share of that call.
      for (let i = 0; i < batch.length; i++) perDecisionMs.push(dt / batch.length);
      applyPlacements(shared, byKey, plan.placements);
    }
    const decisionsPerS = decisions / (scheduleMs / 1000);
    const lat = summarize(perDecisionMs);

    const e2eServices = services.slice(0, Math.max(1, Math.ceil(e2eTasks / perService)));
    const e2e = await endToEnd(nodes, e2eServices);
    const committedPerS = e2e.tasks / e2e.seconds;
    const rssMb = process.memoryUsage().rss / 2 ** 20;

    process.stdout.write(`${table(['figure', 'value'], [
      ['nodes / services / tasks', `${nodeCount} / ${serviceCount} / ${decisions}`],
      ['unplaced tasks', String(unplaced)],
      ['decisions/s (pure schedule)', fmt(decisionsPerS, 0)],
      ['per-decision ms p50 / p99', `${fmt(lat.p50, 4)} / ${fmt(lat.p99, 4)}`],
      ['e2e tasks (create+place+ack)', `${e2e.tasks} in ${fmt(e2e.seconds)} s`],
      ['committed tasks/s', fmt(committedPerS, 0)],
      ['rss MB', fmt(rssMb, 0)],
    ])}\n`);
    process.stdout.write(`${JSON.stringify({ bench: 'scheduler', nodes: nodeCount, tasks: decisions, unplaced, decisions_per_s: round(decisionsPerS, 0),
      p99_decision_ms: round(lat.p99, 4), committed_tasks: e2e.tasks, committed_tasks_per_s: round(committedPerS, 0), rss_mb: round(rssMb, 0) })}\n`);
  },
};
