/**
 * The node lifecycle controller derives each node's Ready condition from its heartbeat lease:
 * leases/nodes/<name> present → True, absent (expired) → False with reason NodeLeaseExpired.
 * A node that stays not Ready for the lost grace period has its unfinished tasks marked `lost`
 * (reason NodeLost) so the service controller replaces them elsewhere at once; when the node
 * returns, its desired set no longer holds them and its agent stops them. Keys are node names.
 */
import type { Logger } from '../../common/log.js';
import { getCondition, setCondition, TERMINAL_PHASES } from '../objects/conditions.js';
import type { Node, Task } from '../objects/types.js';
import { lastSegment, nodeKey, nodeLeaseKey, taskKey } from '../store/keys.js';
import { TASKS_BY_NODE, type Informers } from '../store/informers.js';
import type { Store, WriteOp } from '../store/store.js';
import { recordEvent } from './events.js';
import { WorkQueue, type SyncResult } from './queue.js';

/** DEFAULT_NODE_LOST_GRACE_MS is how long a node may stay not Ready before its tasks are lost. */
export const DEFAULT_NODE_LOST_GRACE_MS = 15_000;
/** NODE_LOST_REASON is the status.reason of a task whose node stayed away past the grace period. */
export const NODE_LOST_REASON = 'NodeLost';

/** lostGraceRemainingMs is how long until a node not Ready since notReadySince loses its tasks (<= 0: now). */
export function lostGraceRemainingMs(notReadySince: string, graceMs: number, now: number): number {
  const since = Date.parse(notReadySince);
  return Number.isNaN(since) ? 0 : since + graceMs - now;
}

/** tasksToMarkLost picks the tasks of a lost node that still count as alive (pure). */
export function tasksToMarkLost(tasks: readonly Task[]): Task[] {
  return tasks.filter((t) => !TERMINAL_PHASES.has(t.status.phase));
}

/** lostTaskOp is the compare-and-swap update marking one task lost, with why, at `now` (pure). */
export function lostTaskOp(t: Task, reason: string, message: string, now: string): WriteOp {
  return {
    type: 'update',
    key: taskKey(t.metadata.namespace!, t.spec.service, t.metadata.name),
    object: { ...structuredClone(t), status: { ...structuredClone(t.status), phase: 'lost', reason, message, finishedAt: now } } as Task,
    expectedRevision: t.metadata.resourceVersion!,
  };
}

/** NodeLifecycleController owns the node-name work queue. */
export class NodeLifecycleController {
  readonly queue: WorkQueue;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(private readonly inf: Informers, private readonly store: Store, private readonly log: Logger,
    private readonly lostGraceMs = DEFAULT_NODE_LOST_GRACE_MS) {
    this.queue = new WorkQueue('nodes', (k) => this.sync(k), log);
  }

  /** start subscribes to nodes and leases and queues every known node. */
  start(): void {
    this.unsubscribe.push(
      this.inf.leases.onChange((e) => this.queue.add(lastSegment(e.key))),
      this.inf.nodes.onChange((e) => this.queue.add(lastSegment(e.key))),
    );
    for (const n of this.inf.nodes.list()) this.queue.add(n.metadata.name);
  }

  /** stop unsubscribes and drains the queue. */
  async stop(): Promise<void> {
    for (const u of this.unsubscribe) u();
    await this.queue.stop();
  }

  /** sync sets the node's Ready condition from the presence of its lease key, then handles a lost node. */
  async sync(name: string): Promise<SyncResult> {
    const node = this.inf.nodes.get(nodeKey(name));
    if (!node) return undefined;
    const alive = this.inf.leases.get(nodeLeaseKey(name)) !== undefined;
    const want = alive ? 'True' : 'False';
    const ready = getCondition(node.status?.conditions, 'Ready');
    if (ready?.status === want) return alive ? undefined : this.syncLost(name, ready.lastTransitionTime);
    const r = await this.store.mutate<Node>(nodeKey(name), (cur) => {
      const { conditions, changed } = setCondition(cur.status.conditions, alive
        ? { type: 'Ready', status: 'True', reason: 'AgentConnected', message: 'the agent holds a live session and heartbeat lease' }
        : { type: 'Ready', status: 'False', reason: 'NodeLeaseExpired', message: 'the agent\'s heartbeat lease expired' }, new Date().toISOString());
      if (!changed) return undefined;
      cur.status = { ...cur.status, conditions };
      return cur;
    }, node);
    if (!r.ok) return r.reason === 'NotFound' ? undefined : 'retry';
    if (!('unchanged' in r)) {
      this.log.info(`node ${name} Ready -> ${want}`, { node: name });
      void recordEvent(this.store, alive
        ? { object: { kind: 'Node', name }, reason: 'NodeReady', message: `node ${name} is Ready: its agent holds a live session`, source: 'node-lifecycle' }
        : { object: { kind: 'Node', name }, type: 'Warning', reason: 'NodeNotReady', message: `node ${name} is not Ready: its heartbeat lease expired; its tasks are lost in ${Math.round(this.lostGraceMs / 1000)}s unless it returns`, source: 'node-lifecycle' }, this.log);
      if (!alive) this.queue.addAfter(name, this.lostGraceMs);
      if (!(await this.inf.nodes.waitForRevision(r.object.metadata.resourceVersion!))) return 'retry';
    }
    return undefined;
  }

  // syncLost marks the tasks of a node not Ready for longer than the grace period `lost`; before
  // that it re-queues itself for when the grace period ends.
  private async syncLost(name: string, notReadySince: string): Promise<SyncResult> {
    const remaining = lostGraceRemainingMs(notReadySince, this.lostGraceMs, Date.now());
    const victims = tasksToMarkLost(this.inf.tasks.byIndex(TASKS_BY_NODE, name));
    if (victims.length === 0) return undefined;
    if (remaining > 0) {
      this.queue.addAfter(name, remaining);
      return undefined;
    }
    const now = new Date().toISOString();
    const ops = victims.map((t) => lostTaskOp(t, NODE_LOST_REASON, `node ${name} has not been Ready since ${notReadySince}`, now));
    const results = await this.store.commit(ops);
    const failed = results.filter((r) => !r.ok).length;
    this.log.info('node lost: tasks marked lost', { node: name, tasks: ops.length - failed, failed });
    void recordEvent(this.store, { object: { kind: 'Node', name }, type: 'Warning', reason: 'NodeLost', message: `node ${name} not Ready for ${Math.round(this.lostGraceMs / 1000)}s: ${ops.length - failed} task(s) marked lost`, source: 'node-lifecycle' }, this.log);
    let last: string | undefined;
    for (const r of results) if (r.ok) last = r.revision;
    if (last && !(await this.inf.tasks.waitForRevision(last))) return 'retry';
    return failed > 0 ? 'retry' : undefined;
  }
}
