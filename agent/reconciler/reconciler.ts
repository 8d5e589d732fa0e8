/**
 * The reconciler makes this node's containers match the desired task set, level-triggered:
 * every push of the desired set, and every container exit (pushed by the container's shim through
 * `runtime.wait`), re-runs an idempotent `sync(containerId)` that compares what should run with
 * what runs and converges. Work for one container id is serialised, so a task never gets two
 * containers. A task that arrives is admitted first (admission.ts): one that does not fit beside
 * what the node's tasks hold is reported failed and never started.
 */
import type { ContainerState, Runtime } from '../runtime/runtime.js';
import type { ContainerNetwork } from '../network/index.js';
import type { Images } from '../images/index.js';
import { messageOf } from '../errors.js';
import { DeadlineTimer } from '../deadline-timer.js';
import { SerialQueue } from '../serial-queue.js';
import { silentLogger, type Logger } from '../../common/log.js';
import { isTerminal } from '../../common/task-status.js';
import type { HealthCheck, ProbeResult, ProbeTarget } from '../probes/index.js';
import { admitInOrder } from './admission.js';
import { ContainerHealth, type HealthVerdict } from './health.js';
import { PullRetry } from './pull.js';
import { backoffMessage, backoffResetMs, DEFAULT_RESTART_SETTINGS, restartBackoffMs, restartPolicyName, shouldRestart, waitingReason, type ExitFacts } from './restart.js';
import { containerIdFor, LABEL_IMAGE_DIGEST, LABEL_NAMESPACE, LABEL_RESTART_POLICY, LABEL_RESTARTS, LABEL_TASK, LABEL_UID, requestOfLabels } from './spec.js';
import type { TaskStatusView } from './status.js';
import { DEFAULT_STOP_GRACE_MS, TaskRunner, UNHEALTHY_STOP_GRACE_MS, type TaskRecord } from './task-runner.js';
import { NO_RESOURCES, type DesiredTask, type Resources } from './task.js';
import type { VolumeProvider } from '../volumes/index.js';

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
  /**
   * allocatable is what the node offers its tasks (what the agent registered as capacity), read
   * when tasks arrive; absent, or undefined while unknown: every task is admitted.
   */
  allocatable?: () => Resources | undefined;
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
  /** network gives running containers an address; absent: containers have loopback only. */
  network?: ContainerNetwork;
  /** volumes makes the named volumes tasks mount (agent/volumes); absent: such tasks fail to start. */
  volumes?: VolumeProvider;
  /** beforeRestart keeps what must outlive a container restarted in place (its log, for `logs --previous`). */
  beforeRestart?: (old: ContainerState) => Promise<void>;
  /** probe replaces the real health probes (tests). */
  probe?: (check: HealthCheck, target: ProbeTarget, timeoutMs: number) => Promise<ProbeResult>;
}

/** Reconciler converges local containers onto the desired tasks and reports their status. */
export class Reconciler {
  private readonly records = new Map<string, TaskRecord>();
  private readonly queue: SerialQueue;
  private readonly log: Logger;
  private readonly resyncMs: number;
  private readonly runner: TaskRunner;
  private resyncTimer?: NodeJS.Timeout;
  private resyncing = false;
  private closed = false;

  constructor(private readonly opts: ReconcilerOptions) {
    this.log = opts.log ?? silentLogger;
    this.resyncMs = opts.resyncMs ?? DEFAULT_RESYNC_MS;
    this.queue = new SerialQueue((id) => this.sync(id), this.log, SYNC_RETRY_MS);
    this.runner = new TaskRunner({
      runtime: opts.runtime,
      images: opts.images,
      ...(opts.network ? { network: opts.network } : {}),
      ...(opts.volumes ? { volumes: opts.volumes } : {}),
      report: opts.report,
      log: this.log,
      stopGraceMs: opts.stopGraceMs ?? DEFAULT_STOP_GRACE_MS,
      unhealthyStopGraceMs: opts.unhealthyStopGraceMs ?? UNHEALTHY_STOP_GRACE_MS,
      kick: (id) => this.kick(id),
      closed: () => this.closed,
    });
  }

  /**
   * start re-adopts berth's containers from the runtime (waiting for the exits of the running
   * ones, through their shims) and starts the resync backstop. Nothing is stopped until the first
   * desired set arrives: before that, the agent cannot know what is unwanted. A re-adopted
   * container counts as admitted: admission never evicts.
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
      rec.judgedUid = uid;
      rec.request = requestOfLabels(state.labels);
      const who = { namespace: state.labels[LABEL_NAMESPACE] ?? '', name: state.labels[LABEL_TASK] ?? state.id, uid };
      const exit = { exitCode: state.exitCode ?? -1, oomKilled: state.oomKilled === true, unhealthy: false };
      if (state.status === 'exited' && shouldRestart(restartPolicyName(state.labels[LABEL_RESTART_POLICY]), exit)) {
        // It exited while the agent was away and its policy restarts it: the task is still
        // running (not failed) until the first desired set lets sync restart it after a back-off.
        rec.status = { ...who, phase: 'running', containerId: state.id, exitCode: exit.exitCode, restarts: rec.restarts, ready: false,
          reason: 'CrashLoopBackOff', message: 'the container exited while the agent was down; restarting' };
      } else {
        this.runner.observe(rec, state, who);
      }
      this.log.info('re-adopted container', { id: state.id, status: state.status });
    }
    this.resyncTimer = setInterval(() => void this.resync(), this.resyncMs);
    this.resyncTimer.unref();
  }

  /** setDesired replaces the desired task set (the complete set for this node) and admits the tasks that arrived. */
  setDesired(tasks: DesiredTask[]): void {
    if (this.closed) return;
    const next = new Map<string, { task: DesiredTask; invalid?: string }>();
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
      if (task.template) rec.request = task.template.resources;
    }
    this.admitArrivals();
    for (const id of next.keys()) this.kick(id);
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

  /**
   * admitArrivals judges each task that arrived (desired running, not judged before) against the
   * node's allocatable amounts and what the other tasks hold, in namespace/name order, so two
   * tasks arriving in one set are judged one after the other. A refused task is reported failed
   * by its sync and never started.
   */
  private admitArrivals(): void {
    const arrivals = new Map<TaskRecord, DesiredTask>();
    for (const rec of this.records.values()) {
      const task = rec.desired;
      if (task?.desiredState === 'running' && rec.invalid === undefined && rec.judgedUid !== task.uid) arrivals.set(rec, task);
    }
    if (arrivals.size === 0) return;
    const allocatable = this.opts.allocatable?.();
    const holding = [...this.records.values()].filter((r) => !arrivals.has(r) && holdsResources(r)).map((r) => r.request);
    const judged = [...arrivals].map(([rec, task]) => ({ key: rec, order: `${task.namespace}/${task.name}/${task.uid}`, request: rec.request }));
    const verdicts = allocatable ? admitInOrder(judged, allocatable, holding) : judged.map(({ key }) => ({ key, admission: { ok: true } as const }));
    for (const { key: rec, admission } of verdicts) {
      const task = arrivals.get(rec)!;
      rec.judgedUid = task.uid;
      rec.refused = admission.ok ? undefined : { reason: admission.reason, message: admission.message };
      if (!admission.ok) this.log.warn('task refused: it does not fit this node', { id: rec.id, task: task.name, reason: admission.reason, message: admission.message });
    }
  }

  private record(id: string): TaskRecord {
    let rec = this.records.get(id);
    if (!rec) {
      const health = new ContainerHealth({
        runtime: this.opts.runtime, log: this.log, onVerdict: (v, pid) => this.healthChanged(id, v, pid), ...(this.opts.probe ? { probe: this.opts.probe } : {}),
      });
      const pull = new PullRetry(() => this.kick(id), this.opts.pullBackoffInitialMs, this.opts.pullBackoffMaxMs);
      rec = { id, pull, restart: new DeadlineTimer(() => this.kick(id)), restarts: 0, crashes: 0, health, request: NO_RESOURCES };
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
      if (rec.status?.phase !== 'failed') this.runner.report(rec, desired, { phase: 'failed', reason: 'StartError', message: rec.invalid });
      return;
    }
    let state = rec.invalid === undefined ? await this.opts.runtime.state(rec.id) : undefined;
    if (state && desired && state.labels[LABEL_UID] !== desired.uid) {
      // The id was held by an earlier task of the same name; it has to go first.
      await this.runner.destroy(state);
      state = undefined;
    }
    if (!desired || desired.desiredState !== 'running') {
      rec.health.stop();
      rec.restart.clear();
      rec.health.forget();
      const last = state ? await this.runner.destroy(state) : undefined;
      rec.pull.reset();
      if (!desired) {
        this.records.delete(rec.id);
        return;
      }
      if (rec.status?.phase !== 'stopped') {
        this.runner.report(rec, desired, {
          phase: 'stopped',
          finishedAt: last?.finishedAt ?? new Date().toISOString(),
          ...(last?.exitCode !== undefined ? { exitCode: last.exitCode } : {}),
        });
      }
      return;
    }
    if (rec.refused) {
      if (rec.status?.phase !== 'failed') this.runner.report(rec, desired, { phase: 'failed', ...rec.refused, finishedAt: new Date().toISOString() });
      return;
    }
    if (state && state.status === 'running' && rec.health.isUnhealthy(state.pid)) {
      this.log.warn('container unhealthy; stopping it', { id: rec.id, task: desired.name, probe: rec.health.unhealthy });
      state = await this.runner.stopUnhealthy(state);
    }
    if (state) {
      if (state.status === 'exited' && await this.restartIfWanted(rec, state, desired)) return;
      this.runner.observe(rec, state, desired);
      return;
    }
    const phase = rec.status?.phase;
    if (phase === 'running') {
      this.runner.report(rec, desired, { phase: 'failed', reason: 'ContainerGone', message: 'the container disappeared from the runtime' });
      return;
    }
    // A task that ended (policy never, a clean exit under on-failure, a start error) stays ended:
    // the control plane decides whether to replace it.
    if (isTerminal(phase)) return;
    // Backing off after a failed pull: the timer set then kicks the next attempt. Timers may fire
    // a millisecond before Date.now() reaches their deadline; then the wait is re-armed, not lost.
    if (rec.pull.waiting()) return;
    await this.runner.start(rec, desired);
  }

  /**
   * restartIfWanted applies the restart policy to an exited container: it reports the wait
   * (phase stays running, reason CrashLoopBackOff or Unhealthy), and once the back-off has passed
   * removes the old container and starts a new one for the same task. False: the policy lets the
   * task end, and the caller reports how it ended.
   */
  private async restartIfWanted(rec: TaskRecord, state: ContainerState, task: DesiredTask): Promise<boolean> {
    rec.health.stop();
    if (isTerminal(rec.status?.phase)) return false;
    const settings = task.template?.restart ?? DEFAULT_RESTART_SETTINGS;
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
      this.runner.report(rec, task, {
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
    await this.opts.beforeRestart?.(state).catch((err: unknown) => this.log.warn('previous container not kept', { id: rec.id, error: messageOf(err) }));
    await this.runner.destroy(state);
    rec.restarts++;
    await this.runner.start(rec, task, true);
    return true;
  }

  /** healthChanged re-reports a running task whose checks changed what it reports (started, ready, outcomes), or kicks the restart of an unhealthy one. */
  private healthChanged(id: string, verdict: HealthVerdict, pid: number): void {
    const rec = this.records.get(id);
    if (!rec || this.closed) return;
    if (verdict === 'unhealthy') {
      this.kick(id);
      return;
    }
    const st = rec.status;
    if (st?.phase === 'running' && st.pid === pid) {
      const { namespace: _n, name: _m, uid: _u, restarts: _r, ready: _d, started: _s, lastProbe: _l, lastStartupProbe: _ls, lastReadinessProbe: _lr, ...rest } = st;
      this.runner.report(rec, st, rest);
    }
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

/**
 * holdsResources tells whether a record's task holds its request of the node: it was admitted
 * (or re-adopted) and its container runs, starts or is about to; a task being stopped holds it
 * until its status is terminal, as the scheduler counts it.
 */
function holdsResources(rec: TaskRecord): boolean {
  if (rec.refused || rec.judgedUid === undefined) return false;
  if (rec.status) return !isTerminal(rec.status.phase);
  return rec.desired?.desiredState === 'running';
}
