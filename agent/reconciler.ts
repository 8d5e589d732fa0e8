/**
 * The reconciler makes this node's containers match the desired task set, level-triggered:
 * every push of DesiredTasks, and every container exit (pushed by the container's shim through
 * `runtime.wait`), re-runs an idempotent `sync(containerId)` that compares what should run with
 * what runs and converges. Work for one container id is serialised, so a task never gets two
 * containers.
 */
import type { TaskAssignment } from '../proto/gen/berth/v1/agent.js';
import type { ContainerState, Runtime } from './runtime/runtime.js';
import type { ContainerNetwork } from './network/index.js';
import type { Images } from './images/index.js';
import { messageOf, reasonOf } from './errors.js';
import { DeadlineTimer } from './deadline-timer.js';
import { SerialQueue } from './serial-queue.js';
import { PULL_PROGRESS_INTERVAL_MS, pullPolicyOf, PullRetry } from './reconciler-pull.js';
import { silentLogger, type Logger } from '../common/log.js';
import { buildContainerSpec, containerIdFor, LABEL_IMAGE_DIGEST, LABEL_NAMESPACE, LABEL_RESTART_POLICY, LABEL_RESTARTS, LABEL_TASK, LABEL_UID, stopSettings } from './reconciler-spec.js';
import { canTransition, exitReason, TERMINAL_PHASES, type TaskStatusView } from './reconciler-status.js';
import { backoffMessage, backoffResetMs, restartBackoffMs, restartSettings, shouldRestart, waitingReason, type ExitFacts } from './reconciler-restart.js';
import { ContainerHealth, type HealthVerdict } from './reconciler-health.js';
import type { ProbeResult, ProbeTarget } from './probes/index.js';
import type { HealthCheck } from '../proto/gen/berth/v1/agent.js';

/** DEFAULT_STOP_GRACE_MS is how long a container gets between its stop signal and SIGKILL (template: stopGracePeriodSeconds). */
export const DEFAULT_STOP_GRACE_MS = 10_000;
/**
 * DEFAULT_RESYNC_MS is the backstop behind pushed exits: how often every running task's
 * container state is read anyway. Exits arrive by push; this only bounds how long a lost one
 * (a runtime without wait, a shim that stopped answering) can go unnoticed.
 */
export const DEFAULT_RESYNC_MS = 30_000;
/** SYNC_RETRY_MS is the delay before retrying a sync that failed unexpectedly. */
export const SYNC_RETRY_MS = 2_000;
/** ReconcilerOptions wires the reconciler to the runtime, the image store and the session. */
export interface ReconcilerOptions {
  runtime: Runtime;
  images: Images;
  /** report receives every status change, in order per task. */
  report: (status: TaskStatusView) => void;
  log?: Logger;
  /** stopGraceMs is the grace of a container whose task set no stopGracePeriodSeconds. */
  stopGraceMs?: number;
  /** resyncMs overrides DEFAULT_RESYNC_MS (tests with a runtime that cannot push exits). */
  resyncMs?: number;
  /** pullBackoffInitialMs / pullBackoffMaxMs override the pull retry schedule (tests). */
  pullBackoffInitialMs?: number;
  pullBackoffMaxMs?: number;
  /** unhealthyStopGraceMs is the SIGTERM grace of a container killed for failing its health check. */
  unhealthyStopGraceMs?: number;
  /** network gives running containers an address (issue 6); absent: containers have loopback only. */
  network?: ContainerNetwork;
  /** probe replaces the real health probes (tests). */
  probe?: (check: HealthCheck, target: ProbeTarget, timeoutMs: number) => Promise<ProbeResult>;
}

/** UNHEALTHY_STOP_GRACE_MS: an unhealthy container is already failing its users; it gets a short grace. */
export const UNHEALTHY_STOP_GRACE_MS = 2_000;

interface TaskRecord {
  id: string;
  desired?: TaskAssignment;
  status?: TaskStatusView;
  /** invalid holds why the desired task cannot become a container at all. */
  invalid?: string;
  pull: PullRetry;
  // Restart policy (issue 5): restarts counts every restart of this task on this node (a label on
  // the container carries it across agent restarts); crashes counts consecutive short runs, for
  // the back-off; restart is the pending restart's deadline.
  restarts: number;
  crashes: number;
  restart: DeadlineTimer;
  lastExitCode?: number;
  /** health probes the running container (issue 5). */
  health: ContainerHealth;
  /** watching is the pid of the container whose pushed exit this record waits for. */
  watching?: number;
}

/** Reconciler converges local containers onto the desired tasks and reports their status. */
export class Reconciler {
  private readonly records = new Map<string, TaskRecord>();
  private readonly queue: SerialQueue;
  private readonly log: Logger;
  private readonly stopGraceMs: number;
  private readonly resyncMs: number;
  private resyncTimer?: NodeJS.Timeout;
  private resyncing = false;
  private closed = false;

  constructor(private readonly opts: ReconcilerOptions) {
    this.log = opts.log ?? silentLogger;
    this.stopGraceMs = opts.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
    this.resyncMs = opts.resyncMs ?? DEFAULT_RESYNC_MS;
    this.queue = new SerialQueue((id) => this.sync(id), this.log, SYNC_RETRY_MS);
  }

  /**
   * start re-adopts berth's containers from the runtime (waiting for the exits of the running
   * ones, through their shims) and starts the resync backstop. Nothing is stopped until the first
   * desired set arrives: before that, the agent cannot know what is unwanted.
   */
  async start(): Promise<void> {
    const states = await this.opts.runtime.list();
    // Addresses of containers that died while the agent was away go back to the pool first.
    await this.opts.network?.recover(states.filter((s) => s.status === 'running' && s.labels[LABEL_UID] !== undefined).map((s) => s.id));
    for (const state of states) {
      const uid = state.labels[LABEL_UID];
      if (uid === undefined) continue; // not ours
      const rec = this.record(state.id);
      rec.restarts = Number(state.labels[LABEL_RESTARTS] ?? 0) || 0;
      const who = { namespace: state.labels[LABEL_NAMESPACE] ?? '', name: state.labels[LABEL_TASK] ?? state.id, uid };
      const policy = state.labels[LABEL_RESTART_POLICY];
      const exit = { exitCode: state.exitCode ?? -1, oomKilled: state.oomKilled === true, unhealthy: false };
      if (state.status === 'exited' && shouldRestart(policy === 'never' || policy === 'on-failure' ? policy : 'always', exit)) {
        // It exited while the agent was away and its policy restarts it: the task is still
        // running (not failed) until the first desired set lets sync restart it after a back-off.
        rec.status = { ...who, phase: 'running', containerId: state.id, exitCode: exit.exitCode, restarts: rec.restarts, ready: false,
          reason: 'CrashLoopBackOff', message: 'the container exited while the agent was down; restarting' };
      } else {
        this.observe(rec, state, who);
      }
      this.log.info('re-adopted container', { id: state.id, status: state.status });
    }
    this.resyncTimer = setInterval(() => void this.resync(), this.resyncMs);
    this.resyncTimer.unref();
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
    await this.queue.idle();
  }

  /** close stops the resync and waits for in-flight work; containers keep running. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    for (const rec of this.records.values()) {
      rec.pull.reset();
      rec.restart.clear();
      rec.health.stop();
    }
    await this.queue.close();
  }

  private record(id: string): TaskRecord {
    let rec = this.records.get(id);
    if (!rec) {
      const health = new ContainerHealth({
        runtime: this.opts.runtime, log: this.log, onVerdict: (v, pid) => this.healthChanged(id, v, pid), ...(this.opts.probe ? { probe: this.opts.probe } : {}),
      });
      const pull = new PullRetry(() => this.kick(id), this.opts.pullBackoffInitialMs, this.opts.pullBackoffMaxMs);
      rec = { id, pull, restart: new DeadlineTimer(() => this.kick(id)), restarts: 0, crashes: 0, health };
      this.records.set(id, rec);
    }
    return rec;
  }

  /** kick queues a sync for one container id; syncs for the same id never overlap. */
  private kick(id: string): void {
    if (this.records.has(id)) this.queue.kick(id);
  }

  private async sync(id: string): Promise<void> {
    const rec = this.records.get(id);
    if (!rec) return;
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
      rec.health.stop();
      rec.restart.clear();
      rec.health.forget();
      const last = state ? await this.destroy(state) : undefined;
      rec.pull.reset();
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
    if (state && state.status === 'running' && rec.health.isUnhealthy(state.pid)) {
      this.log.warn('container unhealthy; stopping it', { id: rec.id, task: desired.name, probe: rec.health.unhealthy });
      const stop = stopSettings(state.labels);
      const graceMs = Math.min(this.opts.unhealthyStopGraceMs ?? UNHEALTHY_STOP_GRACE_MS, stop.graceMs ?? this.stopGraceMs);
      state = (await this.opts.runtime.stop(state.id, graceMs, stop.signal)) ?? state;
    }
    if (state) {
      if (state.status === 'exited' && await this.restartIfWanted(rec, state, desired)) return;
      this.observe(rec, state, desired);
      return;
    }
    const phase = rec.status?.phase;
    if (phase === 'running') {
      this.setStatus(rec, desired, { phase: 'failed', reason: 'ContainerGone', message: 'the container disappeared from the runtime' });
      return;
    }
    // A task that ended (policy never, a clean exit under on-failure, a start error) stays ended:
    // the control plane decides whether to replace it.
    if (phase !== undefined && TERMINAL_PHASES.has(phase)) return;
    // Backing off after a failed pull: the timer set then kicks the next attempt. Timers may fire
    // a millisecond before Date.now() reaches their deadline; then the wait is re-armed, not lost.
    if (rec.pull.waiting()) return;
    await this.startTask(rec, desired);
  }

  /**
   * restartIfWanted applies the restart policy to an exited container: it reports the wait
   * (phase stays running, reason CrashLoopBackOff or Unhealthy), and once the back-off has passed
   * removes the old container and starts a new one for the same task. False: the policy lets the
   * task end, and the caller reports how it ended.
   */
  private async restartIfWanted(rec: TaskRecord, state: ContainerState, task: TaskAssignment): Promise<boolean> {
    rec.health.stop();
    if (rec.status && TERMINAL_PHASES.has(rec.status.phase)) return false;
    const settings = restartSettings(task.template?.restart);
    const exit: ExitFacts = { exitCode: state.exitCode ?? -1, oomKilled: state.oomKilled === true, unhealthy: rec.health.isUnhealthy(state.pid) };
    if (!shouldRestart(settings.policy, exit)) return false;
    if (!rec.restart.armed()) {
      const ranMs = Date.parse(state.finishedAt ?? '') - Date.parse(state.startedAt);
      if (Number.isFinite(ranMs) && ranMs >= backoffResetMs(settings)) rec.crashes = 0;
      rec.crashes++;
      const delayMs = restartBackoffMs(rec.crashes, settings);
      rec.lastExitCode = exit.exitCode;
      this.log.info('container exited; restarting after back-off', { id: rec.id, task: task.name, exitCode: exit.exitCode, oomKilled: exit.oomKilled, unhealthy: exit.unhealthy, delayMs });
      const digest = state.labels[LABEL_IMAGE_DIGEST];
      this.setStatus(rec, task, {
        phase: 'running', containerId: state.id, startedAt: state.startedAt, exitCode: exit.exitCode,
        reason: waitingReason(exit), message: backoffMessage(delayMs, exit, rec.health.unhealthy),
        finishedAt: state.finishedAt ?? new Date().toISOString(), ...(digest ? { imageDigest: digest } : {}),
      });
      rec.restart.set(delayMs);
      return true;
    }
    if (rec.restart.pending()) return true; // the timer kicks the restart
    rec.restart.clear();
    rec.health.forget();
    // The old container's exit is collected (above); it goes before the new one takes its id.
    await this.destroy(state);
    rec.restarts++;
    await this.startTask(rec, task, true);
    return true;
  }

  /** healthChanged re-reports a running task whose readiness changed, or kicks the restart of an unhealthy one. */
  private healthChanged(id: string, verdict: HealthVerdict, pid: number): void {
    const rec = this.records.get(id);
    if (!rec || this.closed) return;
    if (verdict === 'unhealthy') {
      this.kick(id);
      return;
    }
    const st = rec.status;
    if (st?.phase === 'running' && st.pid === pid) {
      const { namespace: _n, name: _m, uid: _u, restarts: _r, ready: _d, lastProbe: _l, ...rest } = st;
      this.setStatus(rec, st, rest);
    }
  }

  /** observe reports what an existing container's state means for its task. */
  private observe(rec: TaskRecord, state: ContainerState, who: Pick<TaskStatusView, 'namespace' | 'name' | 'uid'>): void {
    const digest = state.labels[LABEL_IMAGE_DIGEST];
    const base = { containerId: state.id, pid: state.pid, startedAt: state.startedAt, ...(digest ? { imageDigest: digest } : {}) };
    if (state.status === 'running') {
      this.watchExit(rec, state);
      rec.health.watch(rec.id, rec.desired?.template?.health, state);
      // A restarted container keeps the last run's exit code in status (Kubernetes' lastState).
      const last = rec.lastExitCode !== undefined ? { exitCode: rec.lastExitCode } : {};
      const ip = this.opts.network?.addressOf(state.id);
      if (rec.status?.phase !== 'running' || rec.status.pid !== state.pid || rec.status.reason !== undefined || rec.status.ip !== ip) {
        this.setStatus(rec, who, { phase: 'running', ...base, ...last, ...(ip ? { ip } : {}) });
      }
      return;
    }
    rec.health.stop();
    if (rec.status && TERMINAL_PHASES.has(rec.status.phase)) return;
    const exitCode = state.exitCode ?? -1;
    this.setStatus(rec, who, {
      ...base,
      phase: exitCode === 0 && !state.oomKilled ? 'succeeded' : 'failed',
      exitCode,
      reason: rec.health.isUnhealthy(state.pid) ? 'Unhealthy' : exitReason(exitCode, state.oomKilled === true),
      ...(state.signal !== undefined ? { message: `killed by signal ${state.signal}` } : {}),
      ...(rec.health.isUnhealthy(state.pid) ? { message: `killed by the agent: health check failed (${rec.health.unhealthy ?? ''})` } : {}),
      finishedAt: state.finishedAt ?? new Date().toISOString(),
    });
  }

  /**
   * startTask pulls the image and starts the task's container. A restart (restarting) keeps the
   * task's phase running with its back-off reason until the new container runs, like Kubernetes.
   */
  private async startTask(rec: TaskRecord, task: TaskAssignment, restarting = false): Promise<void> {
    const tpl = task.template;
    // A retry keeps the back-off reason visible until the pull succeeds or fails again.
    const retrying = rec.status?.phase === 'preparing' ? { reason: rec.status.reason, message: rec.status.message } : {};
    if (!restarting) this.setStatus(rec, task, { phase: 'preparing', ...dropUndefined(retrying) });
    let image;
    try {
      image = await this.opts.images.resolve(tpl?.image ?? '', {
        policy: pullPolicyOf(tpl?.pullPolicy),
        onProgress: this.progressReporter(rec, task),
      });
    } catch (err) {
      if (restarting) {
        this.setStatus(rec, task, { phase: 'failed', reason: reasonOf(err, 'ImageInvalid'), message: `restart: ${messageOf(err)}` });
        return;
      }
      this.pullFailed(rec, task, err);
      return;
    }
    rec.pull.reset();
    if (rec.desired !== task && !restarting) return; // the desired set changed while pulling: the next sync decides
    if (!restarting) this.setStatus(rec, task, { phase: 'starting', imageDigest: image.digest });
    try {
      const spec = await buildContainerSpec(task, rec.id, image);
      spec.labels[LABEL_RESTARTS] = String(rec.restarts);
      spec.labels[LABEL_RESTART_POLICY] = restartSettings(tpl?.restart).policy;
      const resolvConf = this.opts.network?.resolvConf(task.namespace);
      if (resolvConf !== undefined) spec.resolvConf = resolvConf;
      const state = await this.opts.runtime.run(spec);
      // The container's netns exists only now; it is wired before it is reported running.
      // A failed attach leaves the container running without an address rather than failing the task.
      const ip = await this.opts.network?.attach(rec.id, state.pid, tpl?.ports ?? []).catch((err: unknown) => {
        this.log.error('container network set-up failed', { id: rec.id, task: task.name, error: messageOf(err) });
        return undefined;
      });
      this.log.info('container started', { id: rec.id, task: task.name, pid: state.pid, ...(ip ? { ip } : {}) });
      this.observe(rec, state, task);
    } catch (err) {
      this.log.warn('start failed', { id: rec.id, task: task.name, error: messageOf(err) });
      this.setStatus(rec, task, { phase: 'failed', reason: reasonOf(err, 'StartError'), message: messageOf(err), imageDigest: image.digest });
      // A half-created container must not linger or block the next attempt.
      await this.opts.runtime.remove(rec.id).catch(() => undefined);
      await this.opts.network?.detach(rec.id).catch(() => undefined);
    }
  }

  /**
   * pullFailed keeps the task preparing and schedules another pull with exponential back-off,
   * like Kubernetes: the first failure reads ErrImagePull (or ErrImageNeverPull), later ones
   * ImagePullBackOff, each with the source's message. A task that cannot pull never churns.
   */
  private pullFailed(rec: TaskRecord, task: TaskAssignment, err: unknown): void {
    const f = rec.pull.failed(err);
    this.log.warn('image pull failed', { task: task.name, image: task.template?.image, failures: f.failures, retryMs: f.delayMs, error: messageOf(err) });
    this.setStatus(rec, task, { phase: 'preparing', reason: f.reason, message: f.message });
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

  /**
   * watchExit waits, once per container, for the exit its shim pushes, and then kicks a sync,
   * which reads the state like every sync: the event says when to look, not what happened.
   */
  private watchExit(rec: TaskRecord, state: ContainerState): void {
    const runtime = this.opts.runtime;
    if (!runtime.wait || rec.watching === state.pid) return;
    const pid = state.pid;
    rec.watching = pid;
    runtime.wait(state.id).then(() => {
      if (rec.watching === pid) rec.watching = undefined;
      if (!this.closed) this.kick(rec.id);
    }, (err: unknown) => {
      // Not armed again for this container (that could spin): the resync notices its exit.
      this.log.warn('cannot wait for the container exit; the resync will notice it', { id: state.id, error: messageOf(err) });
    });
  }

  /** destroy stops (the stop signal, then SIGKILL after the grace period) and removes a container. */
  private async destroy(state: ContainerState): Promise<ContainerState> {
    let last = state;
    if (state.status === 'running') {
      const stop = stopSettings(state.labels);
      const graceMs = stop.graceMs ?? this.stopGraceMs;
      this.log.info('stopping container', { id: state.id, signal: stop.signal, graceMs });
      last = (await this.opts.runtime.stop(state.id, graceMs, stop.signal)) ?? state;
      // exitSignal 9 after a softer stop signal: the grace ran out and SIGKILL was needed.
      this.log.info('container stopped', { id: state.id, exitCode: last.exitCode, exitSignal: last.signal });
    }
    await this.opts.runtime.remove(state.id);
    await this.opts.network?.detach(state.id).catch((err: unknown) => this.log.warn('network detach failed', { id: state.id, error: messageOf(err) }));
    this.log.info('container removed', { id: state.id });
    return last;
  }

  private setStatus(rec: TaskRecord, who: Pick<TaskStatusView, 'namespace' | 'name' | 'uid'>,
    patch: Omit<TaskStatusView, 'namespace' | 'name' | 'uid' | 'restarts' | 'ready' | 'lastProbe'>): void {
    const from = rec.status?.phase;
    if (!canTransition(from, patch.phase)) {
      this.log.warn('refused phase transition', { id: rec.id, from: from ?? 'none', to: patch.phase });
      return;
    }
    if (from !== patch.phase) this.log.debug(`${from ?? 'none'} -> ${patch.phase}`, { id: rec.id, task: who.name });
    const keep = patch.phase === 'preparing' ? {} : { containerId: rec.status?.containerId, imageDigest: rec.status?.imageDigest };
    const running = patch.phase === 'running';
    const health = { ready: running && rec.health.ready, ...(running && rec.health.lastProbe !== undefined ? { lastProbe: rec.health.lastProbe } : {}) };
    const status: TaskStatusView = { ...dropUndefined(keep), namespace: who.namespace, name: who.name, uid: who.uid, restarts: rec.restarts, ...patch, ...health };
    rec.status = status;
    this.opts.report({ ...status });
  }

  /** resync kicks every running task whose container is no longer running (the backstop, see DEFAULT_RESYNC_MS). */
  private async resync(): Promise<void> {
    if (this.resyncing || this.closed) return;
    this.resyncing = true;
    try {
      for (const rec of [...this.records.values()]) {
        if (this.queue.busy(rec.id) || rec.status?.phase !== 'running') continue;
        let state: ContainerState | undefined;
        try {
          state = await this.opts.runtime.state(rec.id);
        } catch (err) {
          this.log.warn('state resync failed', { id: rec.id, error: messageOf(err) });
          continue; // a failed read says nothing about the container; try again next round
        }
        if (!state || state.status !== 'running') this.kick(rec.id);
      }
    } finally {
      this.resyncing = false;
    }
  }
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
