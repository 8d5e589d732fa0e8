/**
 * The reconciler makes this node's containers match the desired task set, level-triggered:
 * every push of DesiredTasks (and every exit seen by the poller) re-runs an idempotent
 * `sync(containerId)` that compares what should run with what runs and converges. Work for one
 * container id is serialised, so a task never gets two containers.
 */
import type { TaskAssignment } from '../proto/gen/berth/v1/agent.js';
import type { ContainerState, Runtime } from './runtime/runtime.js';
import type { Images, PullPolicy } from './images/index.js';
import { AgentError, messageOf, reasonOf } from './errors.js';
import { silentLogger, type Logger } from '../common/log.js';
import { buildContainerSpec, containerIdFor, LABEL_IMAGE_DIGEST, LABEL_NAMESPACE, LABEL_TASK, LABEL_UID } from './reconciler-spec.js';
import { canTransition, exitReason, TERMINAL_PHASES, type TaskStatusView } from './reconciler-status.js';

/** DEFAULT_STOP_GRACE_MS is how long a container gets between SIGTERM and SIGKILL. */
export const DEFAULT_STOP_GRACE_MS = 10_000;
/** DEFAULT_EXIT_POLL_MS is how often running containers are checked for exits. */
export const DEFAULT_EXIT_POLL_MS = 500;
/** SYNC_RETRY_MS is the delay before retrying a sync that failed unexpectedly. */
export const SYNC_RETRY_MS = 2_000;
/** PULL_BACKOFF_INITIAL_MS is the wait after a task's first failed pull; it doubles per failure. */
export const PULL_BACKOFF_INITIAL_MS = 1_000;
/** PULL_BACKOFF_MAX_MS caps the wait between pulls (Kubernetes: 5 minutes). */
export const PULL_BACKOFF_MAX_MS = 5 * 60_000;
/** PULL_PROGRESS_INTERVAL_MS throttles progress reports: at most two a second per task. */
export const PULL_PROGRESS_INTERVAL_MS = 500;

/** pullBackoffMs is the wait after `failures` consecutive failed pulls (1 s, 2 s, 4 s ... 5 min). */
export function pullBackoffMs(failures: number, initialMs = PULL_BACKOFF_INITIAL_MS, maxMs = PULL_BACKOFF_MAX_MS): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(failures - 1, 0), 30));
}

/** pullPolicyOf maps the wire's pull policy ("" = default) to the store's. */
export function pullPolicyOf(raw: string | undefined): PullPolicy {
  return raw === 'always' || raw === 'never' ? raw : 'if-not-present';
}

/** ReconcilerOptions wires the reconciler to the runtime, the image store and the session. */
export interface ReconcilerOptions {
  runtime: Runtime;
  images: Images;
  /** report receives every status change, in order per task. */
  report: (status: TaskStatusView) => void;
  log?: Logger;
  stopGraceMs?: number;
  exitPollMs?: number;
  /** pullBackoffInitialMs / pullBackoffMaxMs override the pull retry schedule (tests). */
  pullBackoffInitialMs?: number;
  pullBackoffMaxMs?: number;
}

interface TaskRecord {
  id: string;
  desired?: TaskAssignment;
  status?: TaskStatusView;
  /** invalid holds why the desired task cannot become a container at all. */
  invalid?: string;
  busy: boolean;
  dirty: boolean;
  retry?: NodeJS.Timeout;
  /** pullFailures counts consecutive failed pulls; nextPullAt is when the next may start (ms). */
  pullFailures: number;
  nextPullAt?: number;
  pullRetry?: NodeJS.Timeout;
}

/** Reconciler converges local containers onto the desired tasks and reports their status. */
export class Reconciler {
  private readonly records = new Map<string, TaskRecord>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly log: Logger;
  private readonly stopGraceMs: number;
  private readonly exitPollMs: number;
  private poller?: NodeJS.Timeout;
  private polling = false;
  private closed = false;

  constructor(private readonly opts: ReconcilerOptions) {
    this.log = opts.log ?? silentLogger;
    this.stopGraceMs = opts.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
    this.exitPollMs = opts.exitPollMs ?? DEFAULT_EXIT_POLL_MS;
  }

  /**
   * start re-adopts berth's containers from the runtime and starts the exit poller. Nothing is
   * stopped until the first desired set arrives: before that, the agent cannot know what is unwanted.
   */
  async start(): Promise<void> {
    for (const state of await this.opts.runtime.list()) {
      const uid = state.labels[LABEL_UID];
      if (uid === undefined) continue; // not ours
      const rec = this.record(state.id);
      this.observe(rec, state, { namespace: state.labels[LABEL_NAMESPACE] ?? '', name: state.labels[LABEL_TASK] ?? state.id, uid });
      this.log.info('re-adopted container', { id: state.id, status: state.status });
    }
    this.poller = setInterval(() => void this.pollExits(), this.exitPollMs);
    this.poller.unref();
  }

  /** setDesired replaces the desired task set (the complete set for this node). */
  setDesired(tasks: TaskAssignment[]): void {
    if (this.closed) return;
    const next = new Map<string, { task: TaskAssignment; invalid?: string }>();
    for (const task of tasks) {
      try {
        next.set(containerIdFor(task), { task });
      } catch (err) {
        next.set(`invalid:${task.namespace}/${task.name}`, { task, invalid: messageOf(err) });
      }
    }
    for (const rec of this.records.values()) {
      if (!next.has(rec.id)) {
        rec.desired = undefined;
        this.kick(rec.id);
      }
    }
    for (const [id, { task, invalid }] of next) {
      const rec = this.record(id);
      rec.desired = task;
      rec.invalid = invalid;
      this.kick(id);
    }
  }

  /** statuses returns every task status the agent knows, for a full report. */
  statuses(): TaskStatusView[] {
    return [...this.records.values()].flatMap((r) => (r.status ? [{ ...r.status }] : []));
  }

  /** idle resolves once no sync is queued or running (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /** close stops polling and waits for in-flight work; containers keep running. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.poller) clearInterval(this.poller);
    for (const rec of this.records.values()) {
      if (rec.retry) clearTimeout(rec.retry);
      if (rec.pullRetry) clearTimeout(rec.pullRetry);
    }
    await this.idle();
  }

  private record(id: string): TaskRecord {
    let rec = this.records.get(id);
    if (!rec) {
      rec = { id, busy: false, dirty: false, pullFailures: 0 };
      this.records.set(id, rec);
    }
    return rec;
  }

  /** kick queues a sync for one container id; syncs for the same id never overlap. */
  private kick(id: string): void {
    const rec = this.records.get(id);
    if (!rec || this.closed) return;
    if (rec.busy) {
      rec.dirty = true;
      return;
    }
    rec.busy = true;
    const work = (async () => {
      try {
        do {
          rec.dirty = false;
          await this.sync(rec);
        } while (rec.dirty && !this.closed);
      } catch (err) {
        this.log.error('sync failed; will retry', { id, error: messageOf(err), retryMs: SYNC_RETRY_MS });
        if (!this.closed && !rec.retry) {
          rec.retry = setTimeout(() => { rec.retry = undefined; this.kick(id); }, SYNC_RETRY_MS);
          rec.retry.unref();
        }
      } finally {
        rec.busy = false;
      }
    })();
    this.inflight.add(work);
    void work.finally(() => this.inflight.delete(work));
  }

  private async sync(rec: TaskRecord): Promise<void> {
    const desired = rec.desired;
    if (desired && rec.invalid !== undefined) {
      if (rec.status?.phase !== 'failed') this.setStatus(rec, desired, { phase: 'failed', reason: 'StartError', message: rec.invalid });
      return;
    }
    let state = rec.invalid === undefined ? await this.opts.runtime.state(rec.id) : undefined;
    if (state && desired && state.labels[LABEL_UID] !== desired.uid) {
      // The id was held by an earlier task of the same name; it has to go first.
      await this.destroy(state);
      state = undefined;
    }
    if (!desired || desired.desiredState !== 'running') {
      const last = state ? await this.destroy(state) : undefined;
      this.resetPull(rec);
      if (!desired) {
        this.records.delete(rec.id);
        return;
      }
      if (rec.status?.phase !== 'stopped') {
        this.setStatus(rec, desired, {
          phase: 'stopped',
          finishedAt: last?.finishedAt ?? new Date().toISOString(),
          ...(last?.exitCode !== undefined ? { exitCode: last.exitCode } : {}),
        });
      }
      return;
    }
    if (state) {
      this.observe(rec, state, desired);
      return;
    }
    const phase = rec.status?.phase;
    if (phase === 'running') {
      this.setStatus(rec, desired, { phase: 'failed', reason: 'ContainerGone', message: 'the container disappeared from the runtime' });
      return;
    }
    if (phase !== undefined && TERMINAL_PHASES.has(phase) && !this.shouldRestart(rec)) return;
    // Backing off after a failed pull: the timer set then kicks the next attempt.
    if (rec.nextPullAt !== undefined && Date.now() < rec.nextPullAt) return;
    await this.startTask(rec, desired);
  }

  /**
   * shouldRestart is the hook for restart policies (issue 5: always | on-failure | never with
   * backoff, counted in status.restarts). For now a finished task stays finished.
   */
  private shouldRestart(_rec: TaskRecord): boolean {
    return false;
  }

  /** observe reports what an existing container's state means for its task. */
  private observe(rec: TaskRecord, state: ContainerState, who: Pick<TaskStatusView, 'namespace' | 'name' | 'uid'>): void {
    const digest = state.labels[LABEL_IMAGE_DIGEST];
    const base = { containerId: state.id, pid: state.pid, startedAt: state.startedAt, ...(digest ? { imageDigest: digest } : {}) };
    if (state.status === 'running') {
      if (rec.status?.phase !== 'running' || rec.status.pid !== state.pid) this.setStatus(rec, who, { phase: 'running', ...base });
      return;
    }
    if (rec.status && TERMINAL_PHASES.has(rec.status.phase)) return;
    const exitCode = state.exitCode ?? -1;
    this.setStatus(rec, who, {
      ...base,
      phase: exitCode === 0 && !state.oomKilled ? 'succeeded' : 'failed',
      exitCode,
      reason: exitReason(exitCode, state.oomKilled === true),
      ...(state.signal !== undefined ? { message: `killed by signal ${state.signal}` } : {}),
      finishedAt: state.finishedAt ?? new Date().toISOString(),
    });
  }

  private async startTask(rec: TaskRecord, task: TaskAssignment): Promise<void> {
    const tpl = task.template;
    // A retry keeps the back-off reason visible until the pull succeeds or fails again.
    const retrying = rec.status?.phase === 'preparing' ? { reason: rec.status.reason, message: rec.status.message } : {};
    this.setStatus(rec, task, { phase: 'preparing', ...dropUndefined(retrying) });
    let image;
    try {
      image = await this.opts.images.resolve(tpl?.image ?? '', {
        policy: pullPolicyOf(tpl?.pullPolicy),
        onProgress: this.progressReporter(rec, task),
      });
    } catch (err) {
      this.pullFailed(rec, task, err);
      return;
    }
    this.resetPull(rec);
    if (rec.desired !== task) return; // the desired set changed while pulling: the next sync decides
    this.setStatus(rec, task, { phase: 'starting', imageDigest: image.digest });
    try {
      const spec = await buildContainerSpec(task, rec.id, image);
      const state = await this.opts.runtime.run(spec);
      this.log.info('container started', { id: rec.id, task: task.name, pid: state.pid });
      this.observe(rec, state, task);
    } catch (err) {
      this.log.warn('start failed', { id: rec.id, task: task.name, error: messageOf(err) });
      this.setStatus(rec, task, { phase: 'failed', reason: reasonOf(err, 'StartError'), message: messageOf(err), imageDigest: image.digest });
      // A half-created container must not linger or block the next attempt.
      await this.opts.runtime.remove(rec.id).catch(() => undefined);
    }
  }

  /**
   * pullFailed keeps the task preparing and schedules another pull with exponential back-off,
   * like Kubernetes: the first failure reads ErrImagePull (or ErrImageNeverPull), later ones
   * ImagePullBackOff, each with the source's message. A task that cannot pull never churns.
   */
  private pullFailed(rec: TaskRecord, task: TaskAssignment, err: unknown): void {
    rec.pullFailures++;
    const delay = pullBackoffMs(rec.pullFailures, this.opts.pullBackoffInitialMs, this.opts.pullBackoffMaxMs);
    rec.nextPullAt = Date.now() + delay;
    const never = err instanceof AgentError && err.code === 'BERTH_ERR_IMAGE_NEVER_PULL';
    const reason = rec.pullFailures === 1 ? (never ? 'ErrImageNeverPull' : 'ErrImagePull') : 'ImagePullBackOff';
    const message = `${messageOf(err)} (${reasonOf(err, 'ImageInvalid')}; retrying in ${delay >= 1000 ? `${Math.round(delay / 1000)}s` : `${delay}ms`})`;
    this.log.warn('image pull failed', { task: task.name, image: task.template?.image, failures: rec.pullFailures, retryMs: delay, error: messageOf(err) });
    this.setStatus(rec, task, { phase: 'preparing', reason, message });
    if (rec.pullRetry) clearTimeout(rec.pullRetry);
    rec.pullRetry = setTimeout(() => { rec.pullRetry = undefined; this.kick(rec.id); }, delay);
    rec.pullRetry.unref();
  }

  private resetPull(rec: TaskRecord): void {
    rec.pullFailures = 0;
    rec.nextPullAt = undefined;
    if (rec.pullRetry) clearTimeout(rec.pullRetry);
    rec.pullRetry = undefined;
  }

  /** progressReporter reports pull progress at most every PULL_PROGRESS_INTERVAL_MS, plus the last update. */
  private progressReporter(rec: TaskRecord, task: TaskAssignment): (done: number, total: number) => void {
    let lastAt = 0;
    return (done, total) => {
      const now = Date.now();
      if ((now - lastAt < PULL_PROGRESS_INTERVAL_MS && done < total) || rec.status?.phase !== 'preparing' || rec.desired !== task) return;
      lastAt = now;
      const keep = { reason: rec.status.reason, message: rec.status.message };
      this.setStatus(rec, task, { phase: 'preparing', ...dropUndefined(keep), pullBytesDone: done, pullBytesTotal: total });
    };
  }

  /** destroy stops (SIGTERM, then SIGKILL after the grace period) and removes a container. */
  private async destroy(state: ContainerState): Promise<ContainerState> {
    let last = state;
    if (state.status === 'running') {
      this.log.info('stopping container', { id: state.id, graceMs: this.stopGraceMs });
      last = (await this.opts.runtime.stop(state.id, this.stopGraceMs)) ?? state;
    }
    await this.opts.runtime.remove(state.id);
    this.log.info('container removed', { id: state.id });
    return last;
  }

  private setStatus(rec: TaskRecord, who: Pick<TaskStatusView, 'namespace' | 'name' | 'uid'>, patch: Omit<TaskStatusView, 'namespace' | 'name' | 'uid' | 'restarts'>): void {
    const from = rec.status?.phase;
    if (!canTransition(from, patch.phase)) {
      this.log.warn('refused phase transition', { id: rec.id, from: from ?? 'none', to: patch.phase });
      return;
    }
    if (from !== patch.phase) this.log.debug(`${from ?? 'none'} -> ${patch.phase}`, { id: rec.id, task: who.name });
    const keep = patch.phase === 'preparing' ? {} : { containerId: rec.status?.containerId, imageDigest: rec.status?.imageDigest };
    const status: TaskStatusView = { ...dropUndefined(keep), namespace: who.namespace, name: who.name, uid: who.uid, restarts: rec.status?.restarts ?? 0, ...patch };
    rec.status = status;
    this.opts.report({ ...status });
  }

  private async pollExits(): Promise<void> {
    if (this.polling || this.closed) return;
    this.polling = true;
    try {
      for (const rec of [...this.records.values()]) {
        if (rec.busy || rec.status?.phase !== 'running') continue;
        let state: ContainerState | undefined;
        try {
          state = await this.opts.runtime.state(rec.id);
        } catch (err) {
          this.log.warn('state poll failed', { id: rec.id, error: messageOf(err) });
          continue; // a failed read says nothing about the container; try again next round
        }
        if (!state || state.status !== 'running') this.kick(rec.id);
      }
    } finally {
      this.polling = false;
    }
  }
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
