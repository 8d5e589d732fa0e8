/**
 * Events explain what the controllers did and saw: one object per occurrence at
 * events/<ns>/<id>, bound to a short etcd lease so they expire on their own (no garbage
 * collector). Recording is best effort: a failed write is logged, never surfaced to the caller,
 * because an event must not block or fail the sync that produced it.
 * The TaskEventWatcher derives Scheduled / Started / Died / OOMKilled from task status changes.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from '../../common/log.js';
import type { Event, EventObjectRef, Task } from '../objects/types.js';
import type { CacheEvent } from '../store/cache.js';
import type { Informers } from '../store/informers.js';
import type { Store } from '../store/store.js';

/** EVENT_TTL_SECONDS is how long an event lives at most (Kubernetes keeps them an hour). */
export const EVENT_TTL_SECONDS = 3_600;
/** EVENT_LEASE_REUSE_MS is how long one lease is shared by new events, so each lives TTL-reuse..TTL. */
export const EVENT_LEASE_REUSE_MS = 60_000;
/** EVENT_NAMESPACE_FOR_NODES is where events about (unnamespaced) nodes go, as in Kubernetes. */
export const EVENT_NAMESPACE_FOR_NODES = 'default';

/** eventKey is events/<ns>/<id>. */
export const eventKey = (ns: string, id: string): string => `events/${ns}/${id}`;
/** isEventKey accepts events/<ns>/<id>. */
export const isEventKey = (key: string): boolean => /^events\/[^/]+\/[^/]+$/.test(key);

/** EventInput is what a caller says about an occurrence; the recorder fills identity and time. */
export interface EventInput {
  object: EventObjectRef;
  type?: 'Normal' | 'Warning';
  reason: string;
  message: string;
  source: string;
}

/** newEventId sorts by creation time (base-36 ms) so a prefix range lists events oldest first. */
export function newEventId(now = Date.now()): string {
  return `${now.toString(36).padStart(9, '0')}-${randomBytes(3).toString('hex')}`;
}

/** buildEvent turns an input into the stored object (pure apart from the id and uid). */
export function buildEvent(e: EventInput, now = new Date()): Event {
  const ns = e.object.namespace ?? EVENT_NAMESPACE_FOR_NODES;
  return {
    kind: 'Event',
    metadata: { name: newEventId(now.getTime()), namespace: ns, uid: randomUUID(), generation: 1, labels: {}, createdAt: now.toISOString() },
    involvedObject: { ...e.object },
    type: e.type ?? 'Normal',
    reason: e.reason,
    message: e.message,
    source: e.source,
    lastTimestamp: now.toISOString(),
  };
}

/** EVENT_BATCH_MAX is how many events one etcd txn writes (etcd's default --max-txn-ops is 128). */
export const EVENT_BATCH_MAX = 128;
/** EVENT_WRITE_ATTEMPTS is how often one batch of events is tried before it is given up (events are best effort). */
export const EVENT_WRITE_ATTEMPTS = 2;
/** MAX_PENDING_EVENTS bounds the queue; under a storm newer events are dropped (and counted) rather than memory growing. */
export const MAX_PENDING_EVENTS = 10_000;

/**
 * EventRecorder writes events on a shared lease renewed every EVENT_LEASE_REUSE_MS. Events
 * queue and leave in txns of up to EVENT_BATCH_MAX puts, one txn in flight, so a burst (a
 * lost node, a scale to thousands) costs a few txns instead of one round trip each.
 */
export class EventRecorder {
  private lease: { id: string; grantedAt: number } | undefined;
  private pending: { ev: Event; done: () => void }[] = [];
  private flushing = false;
  /** dropped counts events refused because the queue was full. */
  dropped = 0;
  /** fenced counts events not written because the store's guard no longer held. */
  fenced = 0;

  constructor(private readonly store: Store, private readonly log?: Logger) {}

  /** record queues one event and resolves once it is written (or given up on); it never throws. */
  record(e: EventInput): Promise<void> {
    if (this.pending.length >= MAX_PENDING_EVENTS) {
      this.dropped++;
      return Promise.resolve();
    }
    return new Promise<void>((done) => {
      this.pending.push({ ev: buildEvent(e), done });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, EVENT_BATCH_MAX);
        // A failed write is tried once more on a fresh lease: the usual cause is the cached lease
        // having expired (its TTL passed while no event came), which the retry mends.
        for (let attempt = 1; attempt <= EVENT_WRITE_ATTEMPTS; attempt++) {
          try {
            const lease = await this.leaseId();
            const written = await this.store.putLeasedAll(batch.map(({ ev }) => ({ key: eventKey(ev.metadata.namespace!, ev.metadata.name), value: ev })), lease);
            // A deposed leader's events would describe decisions it no longer makes: drop them.
            if (!written) {
              this.fenced += batch.length;
              this.log?.info('events not recorded: this writer was deposed', { count: batch.length, first: batch[0]!.ev.reason });
            }
            break;
          } catch (err) {
            this.lease = undefined;
            if (attempt === EVENT_WRITE_ATTEMPTS) this.log?.warn('events not recorded', { count: batch.length, first: batch[0]!.ev.reason, err });
          }
        }
        for (const b of batch) b.done();
      }
    } finally {
      this.flushing = false;
    }
  }

  private async leaseId(): Promise<string> {
    if (this.lease && Date.now() - this.lease.grantedAt < EVENT_LEASE_REUSE_MS) return this.lease.id;
    this.lease = { id: await this.store.grantLease(EVENT_TTL_SECONDS), grantedAt: Date.now() };
    return this.lease.id;
  }
}

const recorders = new WeakMap<Store, EventRecorder>();

/** recordEvent records e through the store's shared recorder; for any controller; never throws. */
export function recordEvent(store: Store, e: EventInput, log?: Logger): Promise<void> {
  let r = recorders.get(store);
  if (!r) {
    r = new EventRecorder(store, log);
    recorders.set(store, r);
  }
  return r.record(e);
}

/** taskTransitionEvent says which event a task status change deserves, if any (pure). */
export function taskTransitionEvent(previous: Task | undefined, next: Task): Omit<EventInput, 'source'> | undefined {
  const ref: EventObjectRef = { kind: 'Task', name: next.metadata.name, namespace: next.metadata.namespace };
  const was = previous?.status.phase;
  const now = next.status.phase;
  if (!previous?.spec.nodeName && next.spec.nodeName) {
    return { object: ref, reason: 'Scheduled', message: `assigned ${next.metadata.name} to ${next.spec.nodeName}` };
  }
  if (was === now) return undefined;
  if (now === 'running') return { object: ref, reason: 'Started', message: `started on ${next.spec.nodeName} (pid ${next.status.pid ?? '?'})` };
  if (now === 'failed' && next.status.reason === 'OOMKilled') {
    return { object: ref, type: 'Warning', reason: 'OOMKilled', message: `killed by the kernel for exceeding its memory limit on ${next.spec.nodeName}` };
  }
  if (now === 'failed' || (now === 'succeeded' && next.spec.desiredState === 'running')) {
    const why = next.status.reason ? `${next.status.reason}: ` : '';
    return { object: ref, type: now === 'failed' ? 'Warning' : 'Normal', reason: 'Died', message: `${why}exited with code ${next.status.exitCode ?? '?'} on ${next.spec.nodeName}` };
  }
  return undefined;
}

/** TaskEventWatcher turns task status changes seen in the cache into events (leader only). */
export class TaskEventWatcher {
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly inf: Informers, private readonly store: Store, private readonly log: Logger) {}

  /** start subscribes to the task cache. */
  start(): void {
    this.unsubscribe = this.inf.tasks.onChange((e: CacheEvent<Task>) => {
      if (!e.object) return;
      const ev = taskTransitionEvent(e.previous, e.object);
      if (ev) void recordEvent(this.store, { ...ev, source: 'tasks' }, this.log);
    });
  }

  /** stop unsubscribes. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
  }
}
