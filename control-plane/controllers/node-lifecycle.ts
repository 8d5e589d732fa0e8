/**
 * The node lifecycle controller derives each node's Ready condition from its heartbeat lease:
 * leases/nodes/<name> present → True, absent (expired) → False with reason NodeLeaseExpired.
 * Keys are node names.
 */
import type { Logger } from '../../common/log.js';
import { getCondition, setCondition } from '../objects/conditions.js';
import type { Node } from '../objects/types.js';
import { lastSegment, nodeKey, nodeLeaseKey } from '../store/keys.js';
import type { Informers } from '../store/informers.js';
import type { Store } from '../store/store.js';
import { WorkQueue, type SyncResult } from './queue.js';

/** NodeLifecycleController owns the node-name work queue. */
export class NodeLifecycleController {
  readonly queue: WorkQueue;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(private readonly inf: Informers, private readonly store: Store, private readonly log: Logger) {
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

  /** sync sets the node's Ready condition from the presence of its lease key. */
  async sync(name: string): Promise<SyncResult> {
    const node = this.inf.nodes.get(nodeKey(name));
    if (!node) return undefined;
    const alive = this.inf.leases.get(nodeLeaseKey(name)) !== undefined;
    const want = alive ? 'True' : 'False';
    if (getCondition(node.status?.conditions, 'Ready')?.status === want) return undefined;
    const r = await this.store.mutate<Node>(nodeKey(name), (cur) => {
      const { conditions, changed } = setCondition(cur.status.conditions, alive
        ? { type: 'Ready', status: 'True', reason: 'AgentConnected', message: 'the agent holds a live session and heartbeat lease' }
        : { type: 'Ready', status: 'False', reason: 'NodeLeaseExpired', message: 'the agent\'s heartbeat lease expired' }, new Date().toISOString());
      if (!changed) return undefined;
      cur.status = { ...cur.status, conditions };
      return cur;
    }, node);
    if (!r.ok) return r.reason === 'NotFound' ? undefined : 'retry';
    if (!('unchanged' in r)) this.log.info(`node ${name} Ready -> ${want}`, { node: name });
    return undefined;
  }
}
