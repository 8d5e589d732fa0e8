/**
 * The scheduler loop is the one place tasks get a node (global services too: their tasks are
 * pinned to a node and placed here). It builds a snapshot from the caches, runs the pure
 * schedule(), re-checks the plan against the nodes as they are at commit time (catching up with
 * etcd first, as Nomad's plan applier does) and commits what still fits in batched, fenced CAS
 * txns. Unplaceable tasks stay pending with reason Unschedulable and the scheduler's explanation;
 * any node or task change retries them. A task whose writes keep conflicting is retried a
 * bounded number of times, then left pending with reason PlacementConflict until it changes.
 */
import type { Logger } from '../../common/log.js';
import { parseConstraints } from '../objects/constraints.js';
import { isNodeReady, TERMINAL_PHASES } from '../objects/conditions.js';
import type { Node, Task } from '../objects/types.js';
import { hostPortKeys } from '../scheduler/filter-ports.js';
import { namedVolumesOf } from '../objects/volume-admission.js';
import { checkPlacements } from '../scheduler/plan-check.js';
import { schedule } from '../scheduler/schedule.js';
import type { NodeInfo, Placement, Snapshot, TaskRequest } from '../scheduler/types.js';
import { nodeKey, serviceKey, taskKey } from '../store/keys.js';
import { TASKS_BY_NODE, type Informers } from '../store/informers.js';
import type { Store, WriteOp } from '../store/store.js';
import { WorkQueue, type SyncResult } from './queue.js';

/** SCHEDULE_KEY is the loop's only queue key: every pass considers all pending tasks. */
const SCHEDULE_KEY = 'pending';
/** SCHEDULE_BATCH_DELAY_MS lets a burst of new tasks land in one pass and one set of txns. */
export const SCHEDULE_BATCH_DELAY_MS = 10;
/** UNSCHEDULABLE is the status.reason of a task no node fits. */
export const UNSCHEDULABLE = 'Unschedulable';
/** PLACEMENT_CONFLICT is the status.reason of a task given up on after MAX_PLACEMENT_CONFLICTS. */
export const PLACEMENT_CONFLICT = 'PlacementConflict';
/** MAX_PLACEMENT_CONFLICTS bounds the passes in a row whose write of one task's placement conflicts. */
export const MAX_PLACEMENT_CONFLICTS = 5;
/** PLACEMENT_CONFLICT_RETRY_MS is when a task given up on is tried again even if nothing changed. */
export const PLACEMENT_CONFLICT_RETRY_MS = 60_000;

function isPending(t: Task): boolean {
  return t.spec.nodeName === '' && t.spec.desiredState === 'running' && t.status.phase === 'pending';
}

/** nodeInfo is one cached node as the scheduler sees it: tasks not yet terminal hold resources. */
export function nodeInfo(inf: Informers, n: Node): NodeInfo {
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
  // A named volume is where its agent reports it, and where a live task will make it on first use.
  const volumes = new Set((n.status?.volumes ?? []).map((v) => `${v.namespace}/${v.name}`));
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
    for (const v of namedVolumesOf(t.spec.template.volumes)) volumes.add(`${t.metadata.namespace}/${v}`);
  }
  if (volumes.size > 0) info.volumes = volumes;
  return info;
}

/** buildSnapshot turns cached nodes and tasks into the scheduler's view. */
export function buildSnapshot(inf: Informers): Snapshot {
  return { nodes: inf.nodes.list().map((n) => nodeInfo(inf, n)) };
}

/** SchedulerLoop owns the single-key queue that places pending tasks. */
export class SchedulerLoop {
  readonly queue: WorkQueue;
  private readonly unsubscribe: (() => void)[] = [];
  /** conflicts counts, per task key, the passes in a row whose write of it conflicted. */
  private readonly conflicts = new Map<string, number>();
  /** gaveUp holds tasks left pending with PLACEMENT_CONFLICT: the version written then, and when to try again. */
  private readonly gaveUp = new Map<string, { version: string; until: number }>();
  private retryArmed = false;

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
    const parsed = parseConstraints(placement?.constraints);
    const r = t.spec.template.resources ?? {};
    const volumes = namedVolumesOf(t.spec.template.volumes).map((v) => `${ns}/${v}`);
    return {
      key: taskKey(ns, t.spec.service, t.metadata.name),
      name: t.metadata.name,
      service: `${ns}/${t.spec.service}`,
      resources: { cpu: r.cpu ?? 0, memory: r.memory ?? 0, pids: r.pids ?? 0 },
      hostPorts: hostPortKeys(t.spec.template.ports),
      constraints: parsed.ok ? parsed.constraints : [],
      spread: placement?.spread,
      strategy: placement?.strategy ?? 'spread',
      ...(t.spec.pinnedNode ? { pinnedNode: t.spec.pinnedNode } : {}),
      ...(volumes.length > 0 ? { volumes } : {}),
      // Fail closed: a rule that does not parse must not silently widen placement.
      ...(parsed.ok ? {} : { unplaceable: parsed.message }),
    };
  }

  /** givenUp says whether t is a task this loop stopped retrying (unchanged since, and not yet due again). */
  private givenUp(t: Task, key: string, now: number): boolean {
    const g = this.gaveUp.get(key);
    if (!g) return false;
    if (g.version === t.metadata.resourceVersion && now < g.until) return true;
    this.gaveUp.delete(key);
    return false;
  }

  /**
   * sync places every pending task in one plan, re-checks the placements against the nodes as they
   * are once the task mirror has caught up with etcd, and commits what still fits.
   */
  async sync(): Promise<SyncResult> {
    const now = Date.now();
    const pending = this.inf.tasks.byIndex(TASKS_BY_NODE, '').filter(isPending)
      .filter((t) => !this.givenUp(t, taskKey(t.metadata.namespace!, t.spec.service, t.metadata.name), now))
      .sort((a, b) => a.metadata.createdAt.localeCompare(b.metadata.createdAt) || a.metadata.name.localeCompare(b.metadata.name));
    if (this.gaveUp.size > 0 && !this.retryArmed) {
      this.retryArmed = true;
      setTimeout(() => { this.retryArmed = false; this.queue.add(SCHEDULE_KEY); }, PLACEMENT_CONFLICT_RETRY_MS).unref();
    }
    if (pending.length === 0) return undefined;
    const byKey = new Map(pending.map((t) => [taskKey(t.metadata.namespace!, t.spec.service, t.metadata.name), t]));
    const requests = new Map([...byKey].map(([k, t]) => [k, this.request(t)]));
    const plan = schedule(buildSnapshot(this.inf), [...requests.values()]);
    let placements: Placement[] = plan.placements;
    let rejected = 0;
    if (placements.length > 0) {
      // The plan applier: with the mirror caught up (every placement ever committed is in it),
      // re-check each placement against its node as it is now; the txn then also requires the
      // node object unchanged, so a node that changes between this check and the commit fails it.
      if (!(await this.inf.tasks.catchUp())) return 'retry';
      const check = checkPlacements(placements, requests, (name) => {
        const n = this.inf.nodes.get(nodeKey(name));
        return n && nodeInfo(this.inf, n);
      });
      for (const r of check.rejected) this.log.info('placement rejected at commit; re-planning', { task: r.taskKey, node: r.nodeName, reason: r.reason });
      placements = check.accepted;
      rejected = check.rejected.length;
    }
    const ops: WriteOp[] = [];
    for (const p of placements) {
      const t = byKey.get(p.taskKey)!;
      const node = this.inf.nodes.get(nodeKey(p.nodeName))!;
      const next: Task = structuredClone(t) as Task;
      next.spec.nodeName = p.nodeName;
      next.status = { ...next.status, phase: 'assigned', reason: undefined, message: undefined };
      ops.push({ type: 'update', key: p.taskKey, object: next, expectedRevision: t.metadata.resourceVersion!,
        unchanged: { key: nodeKey(p.nodeName), revision: node.metadata.resourceVersion! } });
    }
    for (const u of plan.unplaced) {
      const t = byKey.get(u.taskKey)!;
      if (t.status.reason === UNSCHEDULABLE && t.status.message === u.message) continue;
      ops.push(this.statusOp(u.taskKey, t, UNSCHEDULABLE, u.message));
      this.log.info('task unschedulable', { task: u.taskKey, message: u.message });
    }
    if (ops.length === 0) return rejected > 0 ? 'retry' : undefined;
    const results = await this.store.commit(ops);
    let conflicts = 0;
    let last: string | undefined;
    const giveUp: WriteOp[] = [];
    results.forEach((r, i) => {
      const key = ops[i]!.key;
      if (r.ok) {
        last = r.revision;
        this.conflicts.delete(key);
        return;
      }
      if (r.reason === 'Fenced') return;
      conflicts++;
      const n = (this.conflicts.get(key) ?? 0) + 1;
      this.conflicts.set(key, n);
      if (n >= MAX_PLACEMENT_CONFLICTS) {
        const t = this.inf.tasks.get(key);
        if (t && isPending(t)) giveUp.push(this.statusOp(key, t, PLACEMENT_CONFLICT, `its placement conflicted with other writes ${n} times in a row; retried when it changes or in ${PLACEMENT_CONFLICT_RETRY_MS / 1000} s`));
      }
    });
    if (giveUp.length > 0) last = (await this.recordGiveUps(giveUp)) ?? last;
    const caughtUp = last === undefined || await this.inf.tasks.waitForRevision(last);
    this.log.info('scheduled', { placed: placements.length, unplaced: plan.unplaced.length, rejected, conflicts, gaveUp: giveUp.length });
    return conflicts > giveUp.length || rejected > 0 || !caughtUp ? 'retry' : undefined;
  }

  /** recordGiveUps writes the PlacementConflict status of tasks given up on; returns the last revision written. */
  private async recordGiveUps(ops: WriteOp[]): Promise<string | undefined> {
    let last: string | undefined;
    const results = await this.store.commit(ops);
    results.forEach((r, i) => {
      const key = ops[i]!.key;
      this.conflicts.delete(key);
      if (!r.ok) return;
      last = r.revision;
      this.gaveUp.set(key, { version: r.revision, until: Date.now() + PLACEMENT_CONFLICT_RETRY_MS });
      this.log.warn('placement given up after repeated conflicts', { task: key });
    });
    return last;
  }

  private statusOp(key: string, t: Task, reason: string, message: string): WriteOp {
    const next: Task = structuredClone(t) as Task;
    next.status = { ...next.status, reason, message };
    return { type: 'update', key, object: next, expectedRevision: t.metadata.resourceVersion! };
  }
}
