/**
 * The service controller converges each service's tasks: spec.replicas tasks desired running
 * with the current template; extra, failed or outdated tasks are set desiredState "stopped";
 * stopped tasks are deleted once they are terminal or their node cannot report any more.
 * It also writes the service's status. Keys are "<ns>/<name>".
 */
import { randomInt, randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../../common/log.js';
import { isNodeReady, setCondition, TERMINAL_PHASES } from '../objects/conditions.js';
import type { Service, Task } from '../objects/types.js';
import { nodeKey, serviceKey, taskKey } from '../store/keys.js';
import { TASKS_BY_NAME, TASKS_BY_NODE, TASKS_BY_SERVICE, type Informers } from '../store/informers.js';
import type { Store, WriteOp } from '../store/store.js';
import { WorkQueue, type SyncResult } from './queue.js';

const NAME_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
/** TASK_SUFFIX_LENGTH is the random part of a task name: <service>-xxxxx. */
export const TASK_SUFFIX_LENGTH = 5;

/** REPLACE_BACKOFF_BASE_MS is how long a service waits before replacing its first failed task. */
export const REPLACE_BACKOFF_BASE_MS = 1_000;
/** REPLACE_BACKOFF_MAX_MS caps the wait; it doubles with each consecutive failure of the service. */
export const REPLACE_BACKOFF_MAX_MS = 60_000;

/** replaceDelayMs is the wait before replacing a failed task after `failures` consecutive ones. */
export function replaceDelayMs(failures: number): number {
  return Math.min(REPLACE_BACKOFF_MAX_MS, REPLACE_BACKOFF_BASE_MS * 2 ** Math.max(0, failures - 1));
}

/** newTaskName returns a name unused in the namespace according to taken(). */
export function newTaskName(service: string, taken: (name: string) => boolean): string {
  for (;;) {
    let suffix = '';
    for (let i = 0; i < TASK_SUFFIX_LENGTH; i++) suffix += NAME_ALPHABET[randomInt(NAME_ALPHABET.length)];
    const name = `${service}-${suffix}`;
    if (!taken(name)) return name;
  }
}

/** pickTasksToStop orders scale-down victims: not running first, then newest, then by name. */
export function pickTasksToStop(tasks: readonly Task[], count: number): Task[] {
  const rank = (t: Task): number => (t.status.phase === 'running' ? 1 : 0);
  return [...tasks]
    .sort((a, b) => rank(a) - rank(b) || b.metadata.createdAt.localeCompare(a.metadata.createdAt) || a.metadata.name.localeCompare(b.metadata.name))
    .slice(0, count);
}

function stopOp(t: Task): WriteOp {
  const next: Task = { ...structuredClone(t), spec: { ...structuredClone(t.spec), desiredState: 'stopped' } };
  return { type: 'update', key: taskKey(t.metadata.namespace!, t.spec.service, t.metadata.name), object: next, expectedRevision: t.metadata.resourceVersion! };
}

/** ServiceController owns the "<ns>/<name>" work queue for services. */
export class ServiceController {
  readonly queue: WorkQueue;
  private readonly unsubscribe: (() => void)[] = [];
  // Consecutive task failures per service and when the next replacement may start, so a task
  // that can never start (a missing image) is retried with backoff instead of in a hot loop.
  private readonly failures = new Map<string, { count: number; notBefore: number }>();
  private readonly seenFailed = new Set<string>();

  constructor(private readonly inf: Informers, private readonly store: Store, private readonly log: Logger) {
    this.queue = new WorkQueue('services', (k) => this.sync(k), log);
  }

  /** start subscribes to the caches and queues every known service. */
  start(): void {
    const q = this.queue;
    this.unsubscribe.push(
      this.inf.services.onChange((e) => q.add(e.key.slice('services/'.length))),
      this.inf.tasks.onChange((e) => {
        const t = e.object ?? e.previous!;
        q.add(`${t.metadata.namespace}/${t.spec.service}`);
      }),
      this.inf.nodes.onChange((e) => {
        const name = (e.object ?? e.previous!).metadata.name;
        for (const t of this.inf.tasks.byIndex(TASKS_BY_NODE, name)) q.add(`${t.metadata.namespace}/${t.spec.service}`);
      }),
    );
    for (const key of this.inf.services.entries().map(([k]) => k.slice('services/'.length))) q.add(key);
    for (const t of this.inf.tasks.list()) q.add(`${t.metadata.namespace}/${t.spec.service}`);
  }

  /** stop unsubscribes and drains the queue. */
  async stop(): Promise<void> {
    for (const u of this.unsubscribe) u();
    await this.queue.stop();
  }

  /** sync converges one service's tasks and status; idempotent. */
  async sync(key: string): Promise<SyncResult> {
    const [ns, name] = key.split('/') as [string, string];
    const svc = this.inf.services.get(serviceKey(ns, name));
    const tasks = this.inf.tasks.byIndex(TASKS_BY_SERVICE, key);
    const ops: WriteOp[] = [];
    const active: Task[] = [];
    for (const t of tasks) {
      if (t.spec.desiredState === 'stopped') {
        const node = t.spec.nodeName ? this.inf.nodes.get(nodeKey(t.spec.nodeName)) : undefined;
        if (TERMINAL_PHASES.has(t.status.phase) || t.spec.nodeName === '' || !isNodeReady(node)) {
          ops.push({ type: 'delete', key: taskKey(ns, t.spec.service, t.metadata.name), expectedRevision: t.metadata.resourceVersion! });
        }
      } else if (svc && (t.status.phase === 'failed' || t.status.phase === 'lost') && this.holdFailed(key, t)) {
        // Still inside the replacement backoff: the failed task keeps its slot so nothing new starts yet.
        active.push(t);
      } else if (!svc || TERMINAL_PHASES.has(t.status.phase) || !isDeepStrictEqual(t.spec.template, svc.spec.template)) {
        // Gone service, finished/failed task or outdated template: stop it; a fresh task replaces it below.
        ops.push(stopOp(t));
      } else {
        active.push(t);
      }
    }
    if (svc) {
      const want = svc.spec.replicas;
      if (active.length > want) {
        const victims = pickTasksToStop(active, active.length - want);
        for (const v of victims) ops.push(stopOp(v));
        active.splice(0, active.length, ...active.filter((t) => !victims.includes(t)));
      }
      const taken = (n: string): boolean => this.inf.tasks.byIndex(TASKS_BY_NAME, `${ns}/${n}`).length > 0 || ops.some((o) => o.key.endsWith(`/${n}`));
      for (let i = active.length; i < want; i++) ops.push(this.createOp(svc, newTaskName(name, taken)));
    }
    let lastRevision: string | undefined;
    if (ops.length > 0) {
      const results = await this.store.commit(ops);
      const failed = results.filter((r) => !r.ok).length;
      for (const r of results) if (r.ok) lastRevision = r.revision;
      this.log.info('service synced', { service: key, writes: ops.length, failed });
      if (lastRevision) await this.inf.tasks.waitForRevision(lastRevision);
      if (failed > 0) return 'retry';
    }
    if (!svc) {
      this.failures.delete(key);
      for (const t of tasks) this.seenFailed.delete(t.metadata.uid);
    }
    if (svc) return this.writeStatus(svc);
    return undefined;
  }

  // holdFailed says whether failed task t must wait before being replaced; the first time it sees
  // t it counts one more consecutive failure for the service and schedules the replacement.
  private holdFailed(key: string, t: Task): boolean {
    const now = Date.now();
    let f = this.failures.get(key);
    if (!f || !this.seenFailed.has(t.metadata.uid)) {
      this.seenFailed.add(t.metadata.uid);
      const count = (f?.count ?? 0) + 1;
      f = { count, notBefore: now + replaceDelayMs(count) };
      this.failures.set(key, f);
      this.log.info('task failed; replacing after backoff', { task: t.metadata.name, reason: t.status.reason, delayMs: f.notBefore - now });
    }
    if (now >= f.notBefore) {
      this.seenFailed.delete(t.metadata.uid);
      return false;
    }
    this.queue.addAfter(key, f.notBefore - now);
    return true;
  }

  private createOp(svc: Service, name: string): WriteOp {
    const ns = svc.metadata.namespace!;
    const task: Task = {
      kind: 'Task',
      metadata: { name, namespace: ns, uid: randomUUID(), generation: 1, labels: { ...svc.metadata.labels }, createdAt: new Date().toISOString() },
      spec: { service: svc.metadata.name, nodeName: '', desiredState: 'running', template: structuredClone(svc.spec.template), revision: svc.metadata.generation },
      status: { phase: 'pending', restarts: 0 },
    };
    return { type: 'create', key: taskKey(ns, svc.metadata.name, name), object: task };
  }

  private async writeStatus(svc: Service): Promise<SyncResult> {
    const key = `${svc.metadata.namespace}/${svc.metadata.name}`;
    const active = this.inf.tasks.byIndex(TASKS_BY_SERVICE, key).filter((t) => t.spec.desiredState === 'running');
    const running = active.filter((t) => t.status.phase === 'running').length;
    const want = svc.spec.replicas;
    const now = new Date().toISOString();
    const available = running >= want;
    if (available) this.failures.delete(key);
    const { conditions, changed } = setCondition(svc.status?.conditions, {
      type: 'Available',
      status: available ? 'True' : 'False',
      reason: available ? 'MinimumReplicasAvailable' : 'ReplicasUnavailable',
      message: `${running}/${want} replicas running`,
    }, now);
    const old = svc.status;
    if (!changed && old && old.replicas === active.length && old.runningReplicas === running && old.observedGeneration === svc.metadata.generation) return undefined;
    const r = await this.store.mutate<Service>(serviceKey(svc.metadata.namespace!, svc.metadata.name), (cur) => {
      // Status only: keep whatever spec the user wrote meanwhile; observedGeneration says which spec we saw.
      if (cur.metadata.uid !== svc.metadata.uid) return undefined;
      cur.status = { observedGeneration: svc.metadata.generation, replicas: active.length, runningReplicas: running, conditions };
      return cur;
    }, svc);
    if (!r.ok) return r.reason === 'NotFound' ? undefined : 'retry';
    if (!('unchanged' in r)) await this.inf.services.waitForRevision(r.object.metadata.resourceVersion!);
    return undefined;
  }
}
