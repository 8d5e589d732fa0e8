/**
 * The service controller converges each service's tasks: spec.replicas tasks desired running
 * with the current template; extra or failed tasks are set desiredState "stopped", outdated
 * ones are replaced by a rolling update (rollout.ts, rollout-plan.ts); stopped tasks are
 * deleted once they are terminal or their node cannot report any more.
 * It also writes the service's status. Keys are "<ns>/<name>".
 */
import { randomInt, randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../../common/log.js';
import { isNodeReady, setCondition, TERMINAL_PHASES } from '../objects/conditions.js';
import type { Service, Task } from '../objects/types.js';
import { nodeKey, serviceKey, taskKey, taskTemplateKey } from '../store/keys.js';
import { TASKS_BY_NAME, TASKS_BY_NODE, TASKS_BY_SERVICE, type Informers } from '../store/informers.js';
import type { Store, WriteOp } from '../store/store.js';
import { templateCreateOp, templateRefOf } from '../store/task-templates.js';
import { recordEvent } from './events.js';
import { planGlobal } from './global.js';
import { parseConstraints } from '../objects/constraints.js';
import { planDrain } from './node-drain.js';
import { WorkQueue, type SyncResult } from './queue.js';
import { effectiveService, servicesUsing } from './template-inputs.js';
import { Rollouts, type RolloutStep } from './rollout.js';

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

/**
 * lastOpPerKey keeps one write per key, the last one decided (etcd refuses a txn that names a
 * key twice): a failed task stamped with its backoff and then stopped by the rollout plan in the
 * same sync is just stopped. Order is otherwise kept.
 */
export function lastOpPerKey(ops: readonly WriteOp[]): WriteOp[] {
  const last = new Map(ops.map((o, i) => [o.key, i]));
  return ops.filter((o, i) => last.get(o.key) === i);
}

/** ServiceController owns the "<ns>/<name>" work queue for services. */
export class ServiceController {
  readonly queue: WorkQueue;
  private readonly unsubscribe: (() => void)[] = [];
  // Failure backoff, so a task that can never start (a missing image) is retried with backoff
  // instead of in a hot loop. The state lives in etcd so a new leader keeps it: each failed task
  // carries status.replaceAfter, the service status.failureStreak. This holds streaks counted
  // in this sync until writeStatus has stored them.
  private readonly streaks = new Map<string, number>();
  // The streak each failed task was counted at (by uid) until its replaceAfter is stored, so a
  // sync that must retry does not count the same failure twice.
  private readonly counted = new Map<string, number>();
  // Rollouts: revisions, availability memory and the rolling-update plan (rollout.ts).
  private readonly rollouts: Rollouts;
  // Rollouts: the revision number new tasks of each service (by uid) are created with.
  private readonly revisionOf = new Map<string, number>();
  // Rollouts: the earliest pending recheck per service, so each sync does not add one more timer.
  private readonly recheckAt = new Map<string, number>();

  constructor(private readonly inf: Informers, private readonly store: Store, private readonly log: Logger) {
    this.queue = new WorkQueue('services', (k) => this.sync(k), log);
    this.rollouts = new Rollouts(store, log, (svc) => effectiveService(svc, inf));
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
        // Global mode: a node joining, leaving, (un)cordoned or relabelled may gain or lose a task.
        this.queueGlobal();
      }),
      // A Secret's or Config's new value rolls the services that project it (template-inputs.ts).
      this.inf.secrets.onChange((e) => this.queueUsers('secrets', e.object ?? e.previous!)),
      this.inf.configs.onChange((e) => this.queueUsers('configs', e.object ?? e.previous!)),
    );
    for (const key of this.inf.services.entries().map(([k]) => k.slice('services/'.length))) q.add(key);
    for (const t of this.inf.tasks.list()) q.add(`${t.metadata.namespace}/${t.spec.service}`);
  }

  /** service reads ns/name from the cache as revisions see it: with its inputs' generations. */
  private service(ns: string, name: string): Service | undefined {
    const svc = this.inf.services.get(serviceKey(ns, name));
    return svc && effectiveService(svc, this.inf);
  }

  private queueUsers(kind: 'secrets' | 'configs', o: { metadata: { namespace?: string; name: string } }): void {
    for (const key of servicesUsing(this.inf.services.list(), o.metadata.namespace ?? '', kind, o.metadata.name)) this.queue.add(key);
  }

  /** stop unsubscribes and drains the queue. */
  async stop(): Promise<void> {
    for (const u of this.unsubscribe) u();
    await this.queue.stop();
  }

  /** sync converges one service's tasks and status; idempotent. */
  async sync(key: string): Promise<SyncResult> {
    const [ns, name] = key.split('/') as [string, string];
    let svc = this.service(ns, name);
    if (svc) {
      // Rollouts: every template is a revision; a new one is recorded before any task uses it.
      const rev = await this.rollouts.ensureRevision(svc);
      if (!rev) return 'retry';
      this.revisionOf.set(svc.metadata.uid, rev.revision);
      if (rev.written) {
        // The mirror lags (or is relisting): try again later rather than act on a stale view.
        if (!(await this.inf.services.waitForRevision(rev.written))) return 'retry';
        svc = this.service(ns, name);
        if (!svc) return 'retry';
      }
    }
    const tasks = this.inf.tasks.byIndex(TASKS_BY_SERVICE, key);
    let step: RolloutStep | undefined;
    let ops: WriteOp[] = [];
    const active: Task[] = [];
    const rescheduled: Task[] = [];
    for (const t of tasks) {
      if (t.spec.desiredState === 'stopped') {
        const node = t.spec.nodeName ? this.inf.nodes.get(nodeKey(t.spec.nodeName)) : undefined;
        if (TERMINAL_PHASES.has(t.status.phase) || t.spec.nodeName === '' || !isNodeReady(node)) {
          ops.push({ type: 'delete', key: taskKey(ns, t.spec.service, t.metadata.name), expectedRevision: t.metadata.resourceVersion! });
          this.rollouts.forget([t.metadata.uid]);
        }
      } else if (t.status.phase === 'lost') {
        // Node lifecycle: a lost task is replaced at once, without the failure backoff (its node
        // failed, not the task); the stop lets the returning node's agent drop it.
        ops.push(stopOp(t));
        rescheduled.push(t);
      } else if (svc && t.status.phase === 'failed' && this.holdFailed(key, svc, t, ops)) {
        // Still inside the replacement backoff: the failed task keeps its slot so nothing new starts yet.
        active.push(t);
      } else if (!svc || TERMINAL_PHASES.has(t.status.phase) || (svc.spec.mode === 'global' && !isDeepStrictEqual(t.spec.template, svc.spec.template))) {
        // Gone service, finished/failed task or (global mode) outdated template: stop it; a fresh
        // task replaces it below. Replicated services replace outdated tasks by rolling update.
        ops.push(stopOp(t));
      } else {
        active.push(t);
      }
    }
    if (svc && svc.spec.mode === 'global') {
      // Global mode: one task per eligible node, pinned to it and placed by the scheduler (global.ts).
      // A rule list that does not parse plans no new task anywhere (fail closed); admission refuses one.
      const parsed = parseConstraints(svc.spec.placement?.constraints);
      const plan = parsed.ok ? planGlobal(this.inf.nodes.list(), active, parsed.constraints) : { createOn: [], stop: [] };
      if (!parsed.ok) this.log.error('global service has an invalid placement constraint; placing nothing', { service: key, message: parsed.message });
      for (const t of plan.stop) ops.push(stopOp(t));
      const taken = (n: string): boolean => this.inf.tasks.byIndex(TASKS_BY_NAME, `${ns}/${n}`).length > 0 || ops.some((o) => o.key.endsWith(`/${n}`));
      for (const node of plan.createOn) ops.push(this.createOp(svc, newTaskName(name, taken), node));
    } else if (svc && active.some((t) => this.isDraining(t.spec.nodeName))) {
      // Node lifecycle (drain): replacements start elsewhere before evacuating tasks stop (node-drain.ts).
      const want = svc.spec.replicas;
      const staying = active.filter((t) => !this.isDraining(t.spec.nodeName));
      const victims = staying.length > want ? pickTasksToStop(staying, staying.length - want) : [];
      for (const v of victims) ops.push(stopOp(v));
      const live = active.filter((t) => !victims.includes(t));
      const plan = planDrain({
        replicas: want, maxSurge: svc.spec.update?.maxSurge, maxUnavailable: svc.spec.update?.maxUnavailable,
        tasks: live.map((t) => ({ name: t.metadata.name, running: t.status.phase === 'running', evacuating: this.isDraining(t.spec.nodeName) })),
      });
      for (const t of live) {
        if (!plan.stop.includes(t.metadata.name)) continue;
        ops.push(stopOp(t));
        rescheduled.push(t);
      }
      const taken = (n: string): boolean => this.inf.tasks.byIndex(TASKS_BY_NAME, `${ns}/${n}`).length > 0 || ops.some((o) => o.key.endsWith(`/${n}`));
      for (let i = 0; i < plan.create; i++) ops.push(this.createOp(svc, newTaskName(name, taken)));
    } else if (svc) {
      // Rollouts: scaling and rolling updates are one plan over the current spec (rollout-plan.ts).
      step = this.rollouts.step(svc, this.revisionOf.get(svc.metadata.uid)!, active, Date.now());
      if (step.failure) {
        const written = await this.rollouts.fail(svc, step.status.updateRevision!, step.failure);
        if (written === undefined) return 'retry';
        if (written !== '' && !(await this.inf.services.waitForRevision(written))) return 'retry';
        this.queue.add(key);
        return undefined;
      }
      for (const t of active) if (step.plan.stop.includes(t.metadata.name)) ops.push(stopOp(t));
      const taken = (n: string): boolean => this.inf.tasks.byIndex(TASKS_BY_NAME, `${ns}/${n}`).length > 0 || ops.some((o) => o.key.endsWith(`/${n}`));
      for (let i = 0; i < step.plan.create; i++) ops.push(this.createOp(svc, newTaskName(name, taken)));
      if (step.recheckMs !== undefined) this.scheduleRecheck(key, step.recheckMs);
    }
    let lastRevision: string | undefined;
    if (ops.length > 0) {
      // New tasks refer to their revision's one stored template: write it first if it is new.
      if (svc) this.prependTemplate(svc, ops);
      ops = lastOpPerKey(ops);
      const results = await this.store.commit(ops);
      const failed = results.filter((r) => !r.ok).length;
      for (const r of results) if (r.ok) lastRevision = r.revision;
      this.log.info('service synced', { service: key, writes: ops.length, failed });
      if (svc) {
        for (const t of rescheduled) {
          void recordEvent(this.store, { object: { kind: 'Task', name: t.metadata.name, namespace: ns }, type: 'Warning', reason: 'Rescheduled', message: `${t.status.phase === 'lost' ? `${t.status.reason ?? 'Lost'} on` : 'drained off'} ${t.spec.nodeName || 'no node'}: replaced by a new task of service ${name}`, source: 'services' }, this.log);
        }
      }
      if (lastRevision && !(await this.inf.tasks.waitForRevision(lastRevision))) return 'retry';
      if (failed > 0) return 'retry';
    }
    await this.pruneTemplates(ns, name, svc, tasks);
    if (!svc) {
      this.streaks.delete(key);
      for (const t of tasks) this.counted.delete(t.metadata.uid);
      this.rollouts.forget(tasks.map((t) => t.metadata.uid));
      this.recheckAt.delete(key);
    }
    if (svc) return this.writeStatus(svc, step);
    return undefined;
  }

  // scheduleRecheck (rollouts) syncs key again after delayMs unless an earlier recheck is pending.
  private scheduleRecheck(key: string, delayMs: number): void {
    const now = Date.now();
    const due = now + delayMs;
    const pending = this.recheckAt.get(key);
    if (pending !== undefined && pending > now && pending <= due) return;
    this.recheckAt.set(key, due);
    this.queue.addAfter(key, delayMs);
  }

  // holdFailed says whether failed task t must wait before being replaced. The first time a
  // failed task is seen, the service's streak grows by one and the task is stamped (op added to
  // ops) with when its replacement may start; afterwards only that stored time counts.
  private holdFailed(key: string, svc: Service, t: Task, ops: WriteOp[]): boolean {
    const now = Date.now();
    let at = t.status.replaceAfter ? Date.parse(t.status.replaceAfter) : NaN;
    if (!Number.isNaN(at)) this.counted.delete(t.metadata.uid);
    if (Number.isNaN(at)) {
      const streak = this.counted.get(t.metadata.uid) ?? Math.max(svc.status?.failureStreak ?? 0, this.streaks.get(key) ?? 0) + 1;
      this.counted.set(t.metadata.uid, streak);
      this.streaks.set(key, Math.max(streak, this.streaks.get(key) ?? 0));
      at = now + replaceDelayMs(streak);
      const next: Task = structuredClone(t) as Task;
      next.status.replaceAfter = new Date(at).toISOString();
      ops.push({ type: 'update', key: taskKey(t.metadata.namespace!, t.spec.service, t.metadata.name), object: next, expectedRevision: t.metadata.resourceVersion! });
      this.log.info('task failed; replacing after backoff', { task: t.metadata.name, reason: t.status.reason, streak, delayMs: at - now });
    }
    if (now >= at) return false;
    this.queue.addAfter(key, at - now);
    return true;
  }

  // queueGlobal queues every global-mode service (node lifecycle: they follow the nodes).
  private queueGlobal(): void {
    for (const [k, s] of this.inf.services.entries()) if (s.spec.mode === 'global') this.queue.add(k.slice('services/'.length));
  }

  // isDraining says whether node `name` is being drained (node lifecycle).
  private isDraining(name: string): boolean {
    return name !== '' && this.inf.nodes.get(nodeKey(name))?.spec?.drain === true;
  }

  // prependTemplate puts the creation of the current revision's stored template before the
  // batch's task creations when no copy is stored yet.
  private prependTemplate(svc: Service, ops: WriteOp[]): void {
    const ns = svc.metadata.namespace!;
    const ref = this.templateRef(svc);
    if (this.inf.templates.has(ns, svc.metadata.name, ref) || !ops.some((o) => o.type === 'create')) return;
    ops.unshift(templateCreateOp(ns, svc.metadata.name, ref, svc.spec.template));
  }

  // pruneTemplates removes stored templates no task refers to any more (all of them once the
  // service and its tasks are gone), except the current revision's.
  private async pruneTemplates(ns: string, name: string, svc: Service | undefined, tasks: readonly Task[]): Promise<void> {
    const used = new Set(tasks.map((t) => t.spec.templateRef));
    if (svc) used.add(this.templateRef(svc));
    for (const ref of this.inf.templates.refs(ns, name)) {
      if (used.has(ref)) continue;
      const r = await this.store.remove(taskTemplateKey(ns, name, ref));
      if (!r.ok && r.reason !== 'NotFound') this.log.warn('unused task template not removed', { service: `${ns}/${name}`, ref, reason: r.reason });
    }
  }

  private templateRef(svc: Service): string {
    return templateRefOf(svc.metadata.uid, this.revisionOf.get(svc.metadata.uid) ?? svc.metadata.generation);
  }

  private createOp(svc: Service, name: string, pinnedNode?: string): WriteOp {
    const ns = svc.metadata.namespace!;
    const task: Task = {
      kind: 'Task',
      metadata: { name, namespace: ns, uid: randomUUID(), generation: 1, labels: { ...svc.metadata.labels }, createdAt: new Date().toISOString() },
      spec: {
        service: svc.metadata.name, nodeName: '', ...(pinnedNode ? { pinnedNode } : {}), desiredState: 'running',
        template: svc.spec.template, templateRef: this.templateRef(svc), revision: this.revisionOf.get(svc.metadata.uid) ?? svc.metadata.generation,
      },
      status: { phase: 'pending', restarts: 0 },
    };
    return { type: 'create', key: taskKey(ns, svc.metadata.name, name), object: task };
  }

  private async writeStatus(svc: Service, step?: RolloutStep): Promise<SyncResult> {
    const key = `${svc.metadata.namespace}/${svc.metadata.name}`;
    const active = this.inf.tasks.byIndex(TASKS_BY_SERVICE, key).filter((t) => t.spec.desiredState === 'running');
    const running = active.filter((t) => t.status.phase === 'running').length;
    // Global mode: as many as there are live tasks (one per eligible node); replicas is ignored.
    const want = svc.spec.mode === 'global' ? active.length : svc.spec.replicas;
    const now = new Date().toISOString();
    const available = running >= want;
    const streak = available ? 0 : Math.max(svc.status?.failureStreak ?? 0, this.streaks.get(key) ?? 0);
    const avail = setCondition(svc.status?.conditions, {
      type: 'Available',
      status: available ? 'True' : 'False',
      reason: available ? 'MinimumReplicasAvailable' : 'ReplicasUnavailable',
      message: `${running}/${want} replicas running`,
    }, now);
    // Rollouts: the Progressing condition and the rollout counters come from this sync's step.
    const prog = step ? setCondition(avail.conditions, step.progressing, now) : { conditions: avail.conditions, changed: false };
    const conditions = prog.conditions;
    const changed = avail.changed || prog.changed;
    const rolloutFields = step ? { ...step.status } : {};
    const old = svc.status;
    const rolloutSame = !step || (old?.updatedReplicas === step.status.updatedReplicas && old?.readyReplicas === step.status.readyReplicas && old?.currentRevision === step.status.currentRevision && old?.updateRevision === step.status.updateRevision);
    const streakSame = (old?.failureStreak ?? 0) === streak;
    if (!changed && rolloutSame && streakSame && old && old.replicas === active.length && old.runningReplicas === running && old.observedGeneration === svc.metadata.generation) return undefined;
    const r = await this.store.mutate<Service>(serviceKey(svc.metadata.namespace!, svc.metadata.name), (cur) => {
      // Status only: keep whatever spec the user wrote meanwhile; observedGeneration says which spec we saw.
      if (cur.metadata.uid !== svc.metadata.uid) return undefined;
      // Rollouts: a step computed for another revision than the stored one is stale; keep the stored fields.
      if (step && cur.status?.updateRevision !== step.status.updateRevision) return undefined;
      cur.status = { ...cur.status, ...rolloutFields, observedGeneration: svc.metadata.generation, replicas: active.length, runningReplicas: running, conditions, failureStreak: streak };
      return cur;
      // The cached object as stored, never svc: svc carries the effective template, not the user's.
    }, this.inf.services.get(serviceKey(svc.metadata.namespace!, svc.metadata.name)));
    if (!r.ok) return r.reason === 'NotFound' ? undefined : 'retry';
    this.streaks.delete(key);
    if (!('unchanged' in r) && !(await this.inf.services.waitForRevision(r.object.metadata.resourceVersion!))) return 'retry';
    return undefined;
  }
}
