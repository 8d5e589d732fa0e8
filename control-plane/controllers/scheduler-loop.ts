/**
 * The scheduler loop places pending tasks: it builds a snapshot from the caches, runs the pure
 * schedule(), and commits the plan in batched CAS txns. Unplaceable tasks stay pending with
 * reason Unschedulable and the scheduler's explanation; any node or task change retries them.
 */
import type { Logger } from '../../common/log.js';
import { parseConstraint, type Constraint } from '../objects/constraints.js';
import { isNodeReady, TERMINAL_PHASES } from '../objects/conditions.js';
import type { Task } from '../objects/types.js';
import { hostPortKeys } from '../scheduler/filter-ports.js';
import { schedule } from '../scheduler/schedule.js';
import type { NodeInfo, Snapshot, TaskRequest } from '../scheduler/types.js';
import { serviceKey, taskKey } from '../store/keys.js';
import { TASKS_BY_NODE, type Informers } from '../store/informers.js';
import type { Store, WriteOp } from '../store/store.js';
import { WorkQueue, type SyncResult } from './queue.js';

/** SCHEDULE_KEY is the loop's only queue key: every pass considers all pending tasks. */
const SCHEDULE_KEY = 'pending';
/** SCHEDULE_BATCH_DELAY_MS lets a burst of new tasks land in one pass and one set of txns. */
export const SCHEDULE_BATCH_DELAY_MS = 10;
/** UNSCHEDULABLE is the status.reason of a task no node fits. */
export const UNSCHEDULABLE = 'Unschedulable';

function isPending(t: Task): boolean {
  return t.spec.nodeName === '' && t.spec.desiredState === 'running' && t.status.phase === 'pending';
}

/** buildSnapshot turns cached nodes and tasks into the scheduler's view; tasks not yet terminal hold resources. */
export function buildSnapshot(inf: Informers): Snapshot {
  const nodes: NodeInfo[] = inf.nodes.list().map((n) => {
    const info: NodeInfo = {
      name: n.metadata.name,
      labels: n.metadata.labels ?? {},
      ready: isNodeReady(n),
      unschedulable: n.spec?.unschedulable ?? false,
      taints: n.spec?.taints ?? [],
      allocatable: { cpu: n.status?.allocatable?.cpu ?? 0, memory: n.status?.allocatable?.memory ?? 0, pids: n.status?.allocatable?.pids ?? 0 },
      allocated: { cpu: 0, memory: 0, pids: 0 },
      tasksByService: new Map(),
      hostPorts: new Set(),
    };
    for (const t of inf.tasks.byIndex(TASKS_BY_NODE, info.name)) {
      if (TERMINAL_PHASES.has(t.status.phase)) continue;
      const r = t.spec.template.resources ?? {};
      info.allocated.cpu += r.cpu ?? 0;
      info.allocated.memory += r.memory ?? 0;
      info.allocated.pids += r.pids ?? 0;
      if (t.spec.desiredState === 'running') {
        const svc = `${t.metadata.namespace}/${t.spec.service}`;
        info.tasksByService.set(svc, (info.tasksByService.get(svc) ?? 0) + 1);
      }
      for (const p of hostPortKeys(t.spec.template.ports)) info.hostPorts.add(p);
    }
    return info;
  });
  return { nodes };
}

/** SchedulerLoop owns the single-key queue that places pending tasks. */
export class SchedulerLoop {
  readonly queue: WorkQueue;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(private readonly inf: Informers, private readonly store: Store, private readonly log: Logger) {
    this.queue = new WorkQueue('scheduler', () => this.sync(), log);
  }

  /** start subscribes to task and node changes and runs a first pass. */
  start(): void {
    const kick = (): void => this.queue.addAfter(SCHEDULE_KEY, SCHEDULE_BATCH_DELAY_MS);
    this.unsubscribe.push(
      this.inf.tasks.onChange((e) => {
        // New pending tasks need placing; deleted or finished ones free resources for blocked ones.
        if ((e.object && isPending(e.object)) || e.type === 'delete' || (e.object && TERMINAL_PHASES.has(e.object.status.phase))) kick();
      }),
      this.inf.nodes.onChange(kick),
    );
    kick();
  }

  /** stop unsubscribes and drains the queue. */
  async stop(): Promise<void> {
    for (const u of this.unsubscribe) u();
    await this.queue.stop();
  }

  private request(t: Task): TaskRequest {
    const ns = t.metadata.namespace!;
    const placement = this.inf.services.get(serviceKey(ns, t.spec.service))?.spec.placement;
    const constraints: Constraint[] = [];
    for (const c of placement?.constraints ?? []) {
      const p = parseConstraint(c);
      if (p.ok) constraints.push(p.constraint);
    }
    const r = t.spec.template.resources ?? {};
    return {
      key: taskKey(ns, t.spec.service, t.metadata.name),
      name: t.metadata.name,
      service: `${ns}/${t.spec.service}`,
      resources: { cpu: r.cpu ?? 0, memory: r.memory ?? 0, pids: r.pids ?? 0 },
      hostPorts: hostPortKeys(t.spec.template.ports),
      constraints,
      spread: placement?.spread,
      strategy: placement?.strategy ?? 'spread',
    };
  }

  /** sync places every pending task in one plan and commits it; conflicts retry with backoff. */
  async sync(): Promise<SyncResult> {
    const pending = this.inf.tasks.byIndex(TASKS_BY_NODE, '').filter(isPending)
      .sort((a, b) => a.metadata.createdAt.localeCompare(b.metadata.createdAt) || a.metadata.name.localeCompare(b.metadata.name));
    if (pending.length === 0) return undefined;
    const byKey = new Map(pending.map((t) => [taskKey(t.metadata.namespace!, t.spec.service, t.metadata.name), t]));
    const plan = schedule(buildSnapshot(this.inf), pending.map((t) => this.request(t)));
    const ops: WriteOp[] = [];
    for (const p of plan.placements) {
      const t = byKey.get(p.taskKey)!;
      const next: Task = structuredClone(t) as Task;
      next.spec.nodeName = p.nodeName;
      next.status = { ...next.status, phase: 'assigned', reason: undefined, message: undefined };
      ops.push({ type: 'update', key: p.taskKey, object: next, expectedRevision: t.metadata.resourceVersion! });
    }
    for (const u of plan.unplaced) {
      const t = byKey.get(u.taskKey)!;
      if (t.status.reason === UNSCHEDULABLE && t.status.message === u.message) continue;
      const next: Task = structuredClone(t) as Task;
      next.status = { ...next.status, reason: UNSCHEDULABLE, message: u.message };
      ops.push({ type: 'update', key: u.taskKey, object: next, expectedRevision: t.metadata.resourceVersion! });
      this.log.info('task unschedulable', { task: u.taskKey, message: u.message });
    }
    if (ops.length === 0) return undefined;
    const results = await this.store.commit(ops);
    const conflicts = results.filter((r) => !r.ok).length;
    let last: string | undefined;
    for (const r of results) if (r.ok) last = r.revision;
    const caughtUp = last === undefined || await this.inf.tasks.waitForRevision(last);
    this.log.info('scheduled', { placed: plan.placements.length, unplaced: plan.unplaced.length, conflicts });
    return conflicts > 0 || !caughtUp ? 'retry' : undefined;
  }
}
