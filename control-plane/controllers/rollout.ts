/**
 * Rollouts: revisions (immutable template snapshots at services/<ns>/<name>/revisions/<n>), task
 * availability (ready for minReadySeconds), the step plan (rollout-plan.ts), progress, failure
 * detection and automatic rollback. The service controller calls in from its sync; everything
 * here is keyed by the service and safe to re-run (level-triggered).
 */
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../../common/log.js';
import { getCondition } from '../objects/conditions.js';
import type { Condition, ContainerTemplate, Revision, Service, ServiceStatus, Task } from '../objects/types.js';
import { serviceKey } from '../store/keys.js';
import { recordEvent } from './events.js';
import { userTemplate } from './template-inputs.js';
import type { Store } from '../store/store.js';
import { FAILING_RESTARTS, planRollout, strategyOf, type Plan, type PlanTask, type Strategy } from './rollout-plan.js';

/** REVISION_HISTORY_LIMIT is how many revisions a service keeps (current and update ones always stay). */
export const REVISION_HISTORY_LIMIT = 10;

/** revisionsPrefix is services/<ns>/<name>/revisions/. */
export const revisionsPrefix = (ns: string, name: string): string => `${serviceKey(ns, name)}/revisions/`;
/** revisionKey is services/<ns>/<name>/revisions/<n>. */
export const revisionKey = (ns: string, name: string, n: number): string => `${revisionsPrefix(ns, name)}${n}`;
/** isRevisionKey accepts services/<ns>/<name>/revisions/<n>. */
export const isRevisionKey = (key: string): boolean => /^services\/[^/]+\/[^/]+\/revisions\/\d+$/.test(key);

/** listRevisions reads a service's revisions, oldest first. */
export async function listRevisions(store: Store, ns: string, name: string): Promise<Revision[]> {
  const { items } = await store.list<Revision>(revisionsPrefix(ns, name), isRevisionKey);
  return items.sort((a, b) => a.spec.revision - b.spec.revision);
}

/** newRevision builds revision n of svc's template. */
export function newRevision(svc: Service, n: number, template: ContainerTemplate, changeCause?: string): Revision {
  const rev: Revision = {
    kind: 'Revision',
    metadata: { name: String(n), namespace: svc.metadata.namespace!, uid: randomUUID(), generation: 1, labels: { ...svc.metadata.labels }, createdAt: new Date().toISOString() },
    spec: { service: svc.metadata.name, revision: n, template: structuredClone(template) },
    status: {},
  };
  if (changeCause) rev.spec.changeCause = changeCause;
  return rev;
}

/** isTaskReady: running and not reported unready (agents without probes never set ready). */
export function isTaskReady(t: Task): boolean {
  return t.status.phase === 'running' && t.status.ready !== false;
}

/**
 * isTaskFailing says whether a task of the new revision counts as a failed rollout: it failed,
 * restarted FAILING_RESTARTS times, or waits to restart after a crash or a failed health check.
 */
export function isTaskFailing(t: Task): boolean {
  return t.status.phase === 'failed' || t.status.restarts >= FAILING_RESTARTS || t.status.reason === 'CrashLoopBackOff' || t.status.reason === 'Unhealthy';
}

/** RolloutStep is one sync's decision and the status fields it implies. */
export interface RolloutStep {
  plan: Plan;
  /** status holds the rollout fields and the Progressing condition for writeStatus. */
  status: Pick<ServiceStatus, 'updatedReplicas' | 'readyReplicas' | 'currentRevision' | 'updateRevision' | 'lastProgressTime' | 'haltedRevision' | 'rolledBackRevision'>;
  progressing: Omit<Condition, 'lastTransitionTime'>;
  /** recheckMs asks for another sync then (minReadySeconds or the progress deadline run out). */
  recheckMs?: number;
  /** failure says why the rollout of the update revision just failed; the caller rolls back or halts. */
  failure?: { reason: 'ProgressDeadlineExceeded' | 'RolloutFailed'; message: string };
}

/** Rollouts keeps per-leader memory (revision templates, when tasks became ready) and computes steps. */
export class Rollouts {
  // Revisions are immutable: a template read once stays valid ("<uid>/<n>").
  private readonly templates = new Map<string, ContainerTemplate>();
  // When this controller first saw each task ready (by uid); restarts with leadership.
  private readonly readySince = new Map<string, number>();
  private readonly bornAt = Date.now();

  /**
   * effective maps a stored service to the one revisions are made of (template-inputs.ts); the
   * identity by default. Every comparison with a freshly read service goes through it.
   */
  constructor(private readonly store: Store, private readonly log: Logger, private readonly effective: (svc: Service) => Service = (s) => s) {}

  /**
   * ensureRevision returns the revision number of svc.spec.template, creating revision max+1 (and
   * recording it in status.updateRevision) when the template is new; undefined means retry.
   * written is the service's new resourceVersion when status was written.
   */
  async ensureRevision(svc: Service): Promise<{ revision: number; written?: string } | undefined> {
    const ns = svc.metadata.namespace!;
    const name = svc.metadata.name;
    const known = svc.status?.updateRevision;
    if (known !== undefined && isDeepStrictEqual(await this.template(svc, known), svc.spec.template)) return { revision: known };
    const revs = await listRevisions(this.store, ns, name);
    for (const r of revs) this.templates.set(`${svc.metadata.uid}/${r.spec.revision}`, r.spec.template);
    const newest = revs.at(-1);
    // A newest revision of exactly this template that status does not name yet was written by an
    // earlier attempt whose status write was lost: adopt it rather than numbering it again.
    const adopt = newest && newest.spec.revision > (known ?? 0) && isDeepStrictEqual(newest.spec.template, svc.spec.template);
    const n = adopt ? newest.spec.revision : (newest?.spec.revision ?? 0) + 1;
    if (!adopt) {
      const same = [...revs].reverse().find((r) => isDeepStrictEqual(r.spec.template, svc.spec.template));
      const created = await this.store.create(revisionKey(ns, name, n), newRevision(svc, n, svc.spec.template, same ? `same template as revision ${same.spec.revision}` : undefined));
      if (!created.ok) return undefined;
    }
    this.templates.set(`${svc.metadata.uid}/${n}`, svc.spec.template);
    const now = new Date().toISOString();
    const r = await this.store.mutate<Service>(serviceKey(ns, name), (cur) => {
      if (cur.metadata.uid !== svc.metadata.uid || !isDeepStrictEqual(this.effective(cur).spec.template, svc.spec.template)) return undefined;
      const st = cur.status ?? { observedGeneration: 0, replicas: 0, runningReplicas: 0, conditions: [] };
      cur.status = { ...st, updateRevision: n, currentRevision: st.currentRevision ?? n, lastProgressTime: now };
      return cur;
    });
    if (!r.ok || 'unchanged' in r) return undefined;
    this.log.info('new revision', { service: `${ns}/${name}`, revision: n });
    await this.prune(svc, revs, n);
    return { revision: n, written: r.object.metadata.resourceVersion! };
  }

  /** template reads revision n's template (cached); undefined when the revision is gone. */
  async template(svc: Service, n: number): Promise<ContainerTemplate | undefined> {
    const k = `${svc.metadata.uid}/${n}`;
    const hit = this.templates.get(k);
    if (hit) return hit;
    const rev = await this.store.get<Revision>(revisionKey(svc.metadata.namespace!, svc.metadata.name, n));
    if (rev) this.templates.set(k, rev.spec.template);
    return rev?.spec.template;
  }

  /** forget drops what is remembered about tasks that no longer exist. */
  forget(uids: Iterable<string>): void {
    for (const u of uids) this.readySince.delete(u);
  }

  /**
   * step computes one rollout step for svc (whose template is revision `revision`) over its
   * active tasks. Pure but for the readySince memory.
   */
  step(svc: Service, revision: number, active: readonly Task[], nowMs: number): RolloutStep {
    const s = strategyOf(svc.spec.update);
    const st = svc.status;
    const replicas = svc.spec.replicas;
    let recheckMs: number | undefined;
    const planTasks: PlanTask[] = active.map((t) => {
      const updated = isDeepStrictEqual(t.spec.template, svc.spec.template);
      const since = this.readyFor(t, nowMs);
      const needMs = updated ? s.minReadySeconds * 1000 : 0;
      const available = since !== undefined && nowMs - since >= needMs;
      if (since !== undefined && !available) recheckMs = Math.min(recheckMs ?? Infinity, needMs - (nowMs - since) + 50);
      return { name: t.metadata.name, updated, available, running: t.status.phase === 'running', createdAt: t.metadata.createdAt };
    });
    const updatedTasks = active.filter((_, i) => planTasks[i]!.updated);
    const updatedReplicas = updatedTasks.length;
    const readyReplicas = planTasks.filter((t) => t.available).length;
    const updatedAvailable = planTasks.filter((t) => t.updated && t.available).length;
    const complete = updatedReplicas === replicas && updatedAvailable === replicas && active.length === replicas;

    const halted = st?.haltedRevision === revision;
    const rolledBack = st?.rolledBackRevision === revision;
    const plan = planRollout(replicas, s, planTasks, halted);
    const progressed = st?.updatedReplicas !== updatedReplicas || st?.readyReplicas !== readyReplicas;
    const lastProgressTime = progressed || !st?.lastProgressTime ? new Date(nowMs).toISOString() : st.lastProgressTime;
    const status: RolloutStep['status'] = {
      updatedReplicas, readyReplicas,
      currentRevision: complete ? revision : st?.currentRevision ?? revision,
      updateRevision: revision,
      lastProgressTime,
      ...(st?.haltedRevision !== undefined ? { haltedRevision: st.haltedRevision } : {}),
      ...(st?.rolledBackRevision !== undefined ? { rolledBackRevision: st.rolledBackRevision } : {}),
    };
    const counts = `${updatedReplicas}/${replicas} updated, ${readyReplicas} ready`;
    const old = getCondition(st?.conditions, 'Progressing');
    if (halted || rolledBack) {
      // A failed or rolled-back rollout keeps saying so until the template changes again.
      const keep = old && old.status === 'False' ? old : { type: 'Progressing', status: 'False' as const, reason: 'RolloutFailed', message: `revision ${revision} failed` };
      return { plan, status, progressing: { type: 'Progressing', status: 'False', reason: keep.reason, message: keep.message } };
    }
    if (complete) {
      return { plan, status, progressing: { type: 'Progressing', status: 'True', reason: 'RolloutComplete', message: `revision ${revision} rolled out: ${counts}` } };
    }
    const progressing = { type: 'Progressing', status: 'True' as const, reason: 'RolloutProgressing', message: `rolling out revision ${revision}: ${counts}` };
    // Failure is judged only while replacing another revision: in steady state a crashing task is
    // the restart policy's business, not a rollout's.
    const inRollout = status.currentRevision !== revision;
    if (inRollout) {
      const failing = updatedTasks.filter(isTaskFailing);
      if (failing.length > 0) {
        const t = failing[0]!;
        const why = t.status.phase === 'failed' ? `failed (${t.status.reason ?? 'exit ' + String(t.status.exitCode ?? '?')})`
          : t.status.reason === 'CrashLoopBackOff' || t.status.reason === 'Unhealthy' ? `is in ${t.status.reason} (exit ${String(t.status.exitCode ?? '?')}, ${t.status.restarts} restarts)`
            : `restarted ${t.status.restarts} times`;
        return { plan, status, progressing, failure: { reason: 'RolloutFailed', message: `new task ${t.metadata.name} of revision ${revision} ${why}` } };
      }
      const deadlineMs = Date.parse(lastProgressTime) + s.progressDeadlineSeconds * 1000;
      if (nowMs >= deadlineMs) {
        return { plan, status, progressing, failure: { reason: 'ProgressDeadlineExceeded', message: `revision ${revision} made no progress for ${s.progressDeadlineSeconds}s (${counts})` } };
      }
      recheckMs = Math.min(recheckMs ?? Infinity, deadlineMs - nowMs + 50);
    }
    return { plan, status, progressing, ...(recheckMs !== undefined ? { recheckMs } : {}) };
  }

  /**
   * fail ends the rollout of `revision`: with autoRollback (and a different current revision to
   * go back to) the service's template is set back to it as a new revision; otherwise the rollout
   * is halted. Returns undefined when the write must be retried, else the service's new
   * resourceVersion (or "" when there was nothing left to do).
   */
  async fail(cached: Service, revision: number, failure: NonNullable<RolloutStep['failure']>): Promise<string | undefined> {
    const ns = cached.metadata.namespace!;
    const name = cached.metadata.name;
    // Judge from the stored service, not the cache: a rollback already written must not be
    // repeated (it would leave an orphan revision behind).
    const stored = await this.store.get<Service>(serviceKey(ns, name));
    const svc = stored && this.effective(stored);
    if (!svc || svc.metadata.uid !== cached.metadata.uid || svc.status?.updateRevision !== revision || !isDeepStrictEqual(svc.spec.template, cached.spec.template)) return '';
    const s: Strategy = strategyOf(svc.spec.update);
    const target = svc.status?.currentRevision;
    const now = new Date().toISOString();
    const back = s.autoRollback && target !== undefined && target !== revision ? await this.template(svc, target) : undefined;
    let rollbackRev: number | undefined;
    if (back) {
      const revs = await listRevisions(this.store, ns, name);
      rollbackRev = (revs.at(-1)?.spec.revision ?? 0) + 1;
      const created = await this.store.create(revisionKey(ns, name, rollbackRev), newRevision(svc, rollbackRev, back, `automatic rollback to revision ${target}: ${failure.message}`));
      if (!created.ok) return undefined;
      this.templates.set(`${svc.metadata.uid}/${rollbackRev}`, back);
    }
    const r = await this.store.mutate<Service>(serviceKey(ns, name), (cur) => {
      if (cur.metadata.uid !== svc.metadata.uid || cur.status?.updateRevision !== revision || !isDeepStrictEqual(this.effective(cur).spec.template, svc.spec.template)) return undefined;
      const st = cur.status;
      const conditions = st.conditions.filter((c) => c.type !== 'Progressing');
      if (back && rollbackRev !== undefined) {
        cur.spec.template = userTemplate(back);
        cur.metadata.generation += 1;
        const message = `rolled back to revision ${target} (as revision ${rollbackRev}): ${failure.message}`;
        conditions.push({ type: 'Progressing', status: 'False', reason: 'RolledBack', message, lastTransitionTime: now });
        cur.status = { ...st, conditions, updateRevision: rollbackRev, rolledBackRevision: rollbackRev, lastProgressTime: now };
      } else {
        conditions.push({ type: 'Progressing', status: 'False', reason: failure.reason, message: `${failure.message}; rollout halted`, lastTransitionTime: now });
        cur.status = { ...st, conditions, haltedRevision: revision };
      }
      return cur;
    }, stored);
    if (!r.ok) return r.reason === 'NotFound' ? '' : undefined;
    if ('unchanged' in r) return '';
    if (back) this.log.warn('rollout failed; rolled back', { service: `${ns}/${name}`, from: revision, to: target, as: rollbackRev, why: failure.message });
    else this.log.warn('rollout failed; halted', { service: `${ns}/${name}`, revision, why: failure.message });
    const progressing = getCondition(r.object.status?.conditions, 'Progressing');
    void recordEvent(this.store, {
      object: { kind: 'Service', name, namespace: ns }, type: 'Warning', reason: back ? 'RolledBack' : failure.reason,
      message: progressing?.message ?? failure.message, source: 'rollouts',
    }, this.log);
    return r.object.metadata.resourceVersion!;
  }

  // readyFor returns since when t has been ready, or undefined when it is not ready: the time
  // stored with its status (the gateway stamps it, so it survives failover); for a task stored
  // before that field existed, when this controller first saw it ready, or its start if it was
  // already running when this controller started.
  private readyFor(t: Task, nowMs: number): number | undefined {
    const uid = t.metadata.uid;
    if (!isTaskReady(t)) {
      this.readySince.delete(uid);
      return undefined;
    }
    const stored = t.status.readySince ? Date.parse(t.status.readySince) : NaN;
    if (Number.isFinite(stored)) return stored;
    let since = this.readySince.get(uid);
    if (since === undefined) {
      const started = t.status.startedAt ? Date.parse(t.status.startedAt) : NaN;
      since = Number.isFinite(started) && started < this.bornAt ? started : nowMs;
      this.readySince.set(uid, since);
    }
    return since;
  }

  // prune deletes the oldest revisions beyond REVISION_HISTORY_LIMIT, never current or update.
  private async prune(svc: Service, before: readonly Revision[], added: number): Promise<void> {
    const keep = new Set([added, svc.status?.currentRevision, svc.status?.updateRevision]);
    const excess = before.length + 1 - REVISION_HISTORY_LIMIT;
    const victims = before.filter((r) => !keep.has(r.spec.revision)).slice(0, Math.max(0, excess));
    for (const v of victims) {
      await this.store.remove(revisionKey(svc.metadata.namespace!, svc.metadata.name, v.spec.revision), v.metadata.resourceVersion);
      this.templates.delete(`${svc.metadata.uid}/${v.spec.revision}`);
    }
  }
}
