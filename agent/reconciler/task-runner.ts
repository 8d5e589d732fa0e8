/**
 * What happens to one task's container, start to finish: pulling the image and starting the
 * container, reading what a container's state means for its task, waiting for its exit pushed by
 * the shim, stopping and removing it, and reporting every status change through the phase
 * machine. The Reconciler (reconciler.ts) decides when; a TaskRunner does it for the record it is
 * handed, always from inside that record's serialised sync.
 */
import type { ContainerNetwork } from '../network/index.js';
import type { Images } from '../images/index.js';
import type { ContainerState, Runtime } from '../runtime/runtime.js';
import type { Logger } from '../../common/log.js';
import { isTerminal } from '../../common/task-status.js';
import { messageOf, reasonOf } from '../errors.js';
import type { DeadlineTimer } from '../deadline-timer.js';
import type { AdmissionReason } from './admission.js';
import { checksOf, type ContainerHealth } from './health.js';
import { projectionProblem } from './projections.js';
import { PULL_PROGRESS_INTERVAL_MS, type PullRetry } from './pull.js';
import { addVolumeMounts, buildContainerSpec, releaseVolumes, LABEL_IMAGE_DIGEST, LABEL_RESTARTS, stopSettings } from './spec.js';
import type { VolumeProvider } from '../volumes/index.js';
import { canTransition, exitReason, type TaskStatusView } from './status.js';
import type { DesiredTask, Resources, TaskRef } from './task.js';

/** DEFAULT_STOP_GRACE_MS is how long a container gets between its stop signal and SIGKILL (template: stopGracePeriodSeconds). */
export const DEFAULT_STOP_GRACE_MS = 10_000;
/** UNHEALTHY_STOP_GRACE_MS: an unhealthy container is already failing its users; it gets a short grace. */
export const UNHEALTHY_STOP_GRACE_MS = 2_000;

/** Refusal is why admission refused a task (admission.ts); such a task never starts. */
export interface Refusal {
  reason: AdmissionReason;
  message: string;
}

/** TaskRecord is everything the agent holds about one container id. */
export interface TaskRecord {
  id: string;
  desired?: DesiredTask;
  status?: TaskStatusView;
  /** invalid holds why the desired task cannot become a container at all. */
  invalid?: string;
  /** judgedUid is the task admission judged (or the agent re-adopted): a task is judged once, on arrival. */
  judgedUid?: string;
  refused?: Refusal;
  /** request is what the task holds of the node while its container runs or starts. */
  request: Resources;
  pull: PullRetry;
  // Restart policy: restarts counts every restart of this task on this node (a label on the
  // container carries it across agent restarts); crashes counts consecutive short runs, for the
  // back-off; restart is the pending restart's deadline.
  restarts: number;
  crashes: number;
  restart: DeadlineTimer;
  lastExitCode?: number;
  /** health probes the running container. */
  health: ContainerHealth;
  /** watching is the pid of the container whose pushed exit this record waits for. */
  watching?: number;
}

/** CheckFields are the status fields the task's checks own (health.ts); the runner fills them on every report. */
export type CheckFields = 'ready' | 'started' | 'lastProbe' | 'lastStartupProbe' | 'lastReadinessProbe';

/** StatusPatch is what a status change says; the runner adds the task's name, restarts and check fields. */
export type StatusPatch = Omit<TaskStatusView, keyof TaskRef | 'restarts' | CheckFields>;

/** TaskRunnerOptions give the runner its reach; kick and closed come from the reconciler. */
export interface TaskRunnerOptions {
  runtime: Runtime;
  images: Images;
  network?: ContainerNetwork;
  /** volumes makes named volumes on first use; absent: a task with one fails to start. */
  volumes?: VolumeProvider;
  /** report receives every status change, in order per task. */
  report: (status: TaskStatusView) => void;
  log: Logger;
  stopGraceMs: number;
  unhealthyStopGraceMs: number;
  /** kick asks for another sync of a container id (its exit arrived, its pull may be retried). */
  kick: (id: string) => void;
  closed: () => boolean;
}

/** TaskRunner starts, observes, stops and reports the containers of the records it is handed. */
export class TaskRunner {
  constructor(private readonly o: TaskRunnerOptions) {}

  /**
   * start pulls the image and starts the task's container. A restart (restarting) keeps the
   * task's phase running with its back-off reason until the new container runs, like Kubernetes.
   */
  async start(rec: TaskRecord, task: DesiredTask, restarting = false): Promise<void> {
    const tpl = task.template;
    // A retry keeps the back-off reason visible until the pull succeeds or fails again.
    const retrying = rec.status?.phase === 'preparing' ? { reason: rec.status.reason, message: rec.status.message } : {};
    if (this.waitForObjects(rec, task, restarting)) return;
    if (!restarting) this.report(rec, task, { phase: 'preparing', ...dropUndefined(retrying) });
    let image;
    try {
      image = await this.o.images.resolve(tpl?.image ?? '', {
        policy: tpl?.pullPolicy ?? 'if-not-present',
        onProgress: this.progressReporter(rec, task),
      });
    } catch (err) {
      if (restarting) {
        this.report(rec, task, { phase: 'failed', reason: reasonOf(err, 'ImageInvalid'), message: `restart: ${messageOf(err)}` });
        return;
      }
      this.pullFailed(rec, task, err);
      return;
    }
    rec.pull.reset();
    if (rec.desired !== task && !restarting) return; // the desired set changed while pulling: the next sync decides
    if (!restarting) this.report(rec, task, { phase: 'starting', imageDigest: image.digest });
    try {
      const spec = await buildContainerSpec(task, rec.id, image);
      await addVolumeMounts(spec, task, this.o.volumes);
      spec.labels[LABEL_RESTARTS] = String(rec.restarts);
      const resolvConf = this.o.network?.resolvConf(task.namespace);
      if (resolvConf !== undefined) spec.resolvConf = resolvConf;
      const state = await this.o.runtime.run(spec);
      // The container's netns exists only now; it is wired before it is reported running.
      // A failed attach leaves the container running without an address rather than failing the task.
      const ip = await this.o.network?.attach(rec.id, state.pid, tpl?.hostPorts ?? []).catch((err: unknown) => {
        this.o.log.error('container network set-up failed', { id: rec.id, task: task.name, error: messageOf(err) });
        return undefined;
      });
      this.o.log.info('container started', { id: rec.id, task: task.name, pid: state.pid, ...(ip ? { ip } : {}) });
      this.observe(rec, state, task);
    } catch (err) {
      this.o.log.warn('start failed', { id: rec.id, task: task.name, error: messageOf(err) });
      this.report(rec, task, { phase: 'failed', reason: reasonOf(err, 'StartError'), message: messageOf(err), imageDigest: image.digest });
      // A half-created container must not linger or block the next attempt.
      await this.o.runtime.remove(rec.id).catch(() => undefined);
      await this.o.network?.detach(rec.id).catch(() => undefined);
    } finally {
      // Started (the container's label now marks its volumes in use) or failed: the hold is done.
      releaseVolumes(task, this.o.volumes);
    }
  }

  /** observe reports what an existing container's state means for its task. */
  observe(rec: TaskRecord, state: ContainerState, who: TaskRef): void {
    const digest = state.labels[LABEL_IMAGE_DIGEST];
    const base = { containerId: state.id, pid: state.pid, startedAt: state.startedAt, ...(digest ? { imageDigest: digest } : {}) };
    if (state.status === 'running') {
      this.watchExit(rec, state);
      rec.health.watch(rec.id, checksOf(rec.desired?.template), state);
      // A restarted container keeps the last run's exit code in status (Kubernetes' lastState).
      const last = rec.lastExitCode !== undefined ? { exitCode: rec.lastExitCode } : {};
      const ip = this.o.network?.addressOf(state.id);
      if (rec.status?.phase !== 'running' || rec.status.pid !== state.pid || rec.status.reason !== undefined || rec.status.ip !== ip) {
        this.report(rec, who, { phase: 'running', ...base, ...last, ...(ip ? { ip } : {}) });
      }
      return;
    }
    rec.health.stop();
    if (isTerminal(rec.status?.phase)) return;
    const exitCode = state.exitCode ?? -1;
    this.report(rec, who, {
      ...base,
      phase: exitCode === 0 && !state.oomKilled ? 'succeeded' : 'failed',
      exitCode,
      reason: rec.health.isUnhealthy(state.pid) ? 'Unhealthy' : exitReason(exitCode, state.oomKilled === true),
      ...(state.signal !== undefined ? { message: `killed by signal ${state.signal}` } : {}),
      ...(rec.health.isUnhealthy(state.pid) ? { message: `killed by the agent: ${rec.health.killMessage()}` } : {}),
      finishedAt: state.finishedAt ?? new Date().toISOString(),
    });
  }

  /** stopUnhealthy stops a container that failed its health check, with at most the unhealthy grace. */
  async stopUnhealthy(state: ContainerState): Promise<ContainerState> {
    const stop = stopSettings(state.labels);
    const graceMs = Math.min(this.o.unhealthyStopGraceMs, stop.graceMs ?? this.o.stopGraceMs);
    return (await this.o.runtime.stop(state.id, graceMs, stop.signal)) ?? state;
  }

  /** destroy stops (the stop signal, then SIGKILL after the grace period) and removes a container. */
  async destroy(state: ContainerState): Promise<ContainerState> {
    let last = state;
    if (state.status === 'running') {
      const stop = stopSettings(state.labels);
      const graceMs = stop.graceMs ?? this.o.stopGraceMs;
      this.o.log.info('stopping container', { id: state.id, signal: stop.signal, graceMs });
      last = (await this.o.runtime.stop(state.id, graceMs, stop.signal)) ?? state;
      // exitSignal 9 after a softer stop signal: the grace ran out and SIGKILL was needed.
      this.o.log.info('container stopped', { id: state.id, exitCode: last.exitCode, exitSignal: last.signal });
    }
    await this.o.runtime.remove(state.id);
    await this.o.network?.detach(state.id).catch((err: unknown) => this.o.log.warn('network detach failed', { id: state.id, error: messageOf(err) }));
    this.o.log.info('container removed', { id: state.id });
    return last;
  }

  /** report moves the task's status through the phase machine (refusing what it does not allow) and sends it. */
  report(rec: TaskRecord, who: TaskRef, patch: StatusPatch): void {
    const from = rec.status?.phase;
    if (!canTransition(from, patch.phase)) {
      this.o.log.warn('refused phase transition', { id: rec.id, from: from ?? 'none', to: patch.phase });
      return;
    }
    if (from !== patch.phase) this.o.log.debug(`${from ?? 'none'} -> ${patch.phase}`, { id: rec.id, task: who.name });
    const keep = patch.phase === 'preparing' ? {} : { containerId: rec.status?.containerId, imageDigest: rec.status?.imageDigest };
    const running = patch.phase === 'running';
    const health = { ready: running && rec.health.ready, started: running && rec.health.started, ...(running ? lastProbesOf(rec.health) : {}) };
    const status: TaskStatusView = { ...dropUndefined(keep), namespace: who.namespace, name: who.name, uid: who.uid, restarts: rec.restarts, ...patch, ...health };
    rec.status = status;
    this.o.report({ ...status });
  }

  /**
   * waitForObjects keeps a task whose secret or config (or one of its keys) has not reached this
   * node in preparing, naming what is missing, and true; the next desired set that brings it
   * kicks the start again. A restart cannot wait in running: it fails, and the control plane
   * replaces the task. Only names are reported, never content.
   */
  private waitForObjects(rec: TaskRecord, task: DesiredTask, restarting: boolean): boolean {
    const missing = projectionProblem(task);
    if (!missing) return false;
    if (restarting) {
      this.report(rec, task, { phase: 'failed', reason: missing.reason, message: `restart: ${missing.message}`, finishedAt: new Date().toISOString() });
      return true;
    }
    const message = `${missing.message}; the task waits for it`;
    if (rec.status?.phase !== 'preparing' || rec.status.reason !== missing.reason || rec.status.message !== message) {
      this.o.log.info('task waits for its secret or config', { id: rec.id, task: task.name, reason: missing.reason });
      this.report(rec, task, { phase: 'preparing', reason: missing.reason, message });
    }
    return true;
  }

  /**
   * pullFailed keeps the task preparing and schedules another pull with exponential back-off,
   * like Kubernetes: the first failure reads ErrImagePull (or ErrImageNeverPull), later ones
   * ImagePullBackOff, each with the source's message. A task that cannot pull never churns.
   */
  private pullFailed(rec: TaskRecord, task: DesiredTask, err: unknown): void {
    const f = rec.pull.failed(err);
    this.o.log.warn('image pull failed', { task: task.name, image: task.template?.image, failures: f.failures, retryMs: f.delayMs, error: messageOf(err) });
    this.report(rec, task, { phase: 'preparing', reason: f.reason, message: f.message });
  }

  /** progressReporter reports pull progress at most every PULL_PROGRESS_INTERVAL_MS, plus the last update. */
  private progressReporter(rec: TaskRecord, task: DesiredTask): (done: number, total: number) => void {
    let lastAt = 0;
    return (done, total) => {
      const now = Date.now();
      if ((now - lastAt < PULL_PROGRESS_INTERVAL_MS && done < total) || rec.status?.phase !== 'preparing' || rec.desired !== task) return;
      lastAt = now;
      const keep = { reason: rec.status.reason, message: rec.status.message };
      this.report(rec, task, { phase: 'preparing', ...dropUndefined(keep), pullBytesDone: done, pullBytesTotal: total });
    };
  }

  /**
   * watchExit waits, once per container, for the exit its shim pushes, and then kicks a sync,
   * which reads the state like every sync: the event says when to look, not what happened.
   */
  private watchExit(rec: TaskRecord, state: ContainerState): void {
    const runtime = this.o.runtime;
    if (!runtime.wait || rec.watching === state.pid) return;
    const pid = state.pid;
    rec.watching = pid;
    runtime.wait(state.id).then(() => {
      if (rec.watching === pid) rec.watching = undefined;
      if (!this.o.closed()) this.o.kick(rec.id);
    }, (err: unknown) => {
      // Not armed again for this container (that could spin): the resync notices its exit.
      this.o.log.warn('cannot wait for the container exit; the resync will notice it', { id: state.id, error: messageOf(err) });
    });
  }
}

// lastProbesOf is the checks' last outcomes as status fields; a check that never reported has none.
function lastProbesOf(h: ContainerHealth): Pick<TaskStatusView, 'lastProbe' | 'lastStartupProbe' | 'lastReadinessProbe'> {
  return dropUndefined({ lastProbe: h.lastProbes.liveness, lastStartupProbe: h.lastProbes.startup, lastReadinessProbe: h.lastProbes.readiness });
}

// dropUndefined leaves out the keys whose value is undefined.
function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
