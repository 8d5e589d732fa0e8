/**
 * Checks as the reconciler sees them: one ContainerHealth per task record watches whichever
 * container currently runs the task, runs the checks the probe machine (probes/probe-set.ts) says
 * are active (startup alone, then health and readiness), keeps the verdict (started, ready, to be
 * restarted) and tells the reconciler when anything it reports changes. Containers are told apart
 * by pid, so a late result about a container that has since been replaced is ignored.
 */
import type { ContainerState, Runtime } from '../runtime/runtime.js';
import { silentLogger, type Logger } from '../../common/log.js';
import {
  activeProbes, describeCheck, foldFor, hasChecks, initialProbeSet, ProbeLoop, verdictOf, withCheckState,
  type ContainerChecks, type HealthCheck, type HealthState, type ProbeKind, type ProbeResult, type ProbeSetState, type ProbeTarget, type RestartingKind,
} from '../probes/index.js';
import type { TaskTemplate } from './task.js';

/** HealthVerdict is what changed: what the task reports (started, ready, a check's outcome), or the container must be restarted. */
export type HealthVerdict = 'changed' | 'unhealthy';

/** ContainerHealthOptions wires a task's checks to the runtime and to its reconciler. */
export interface ContainerHealthOptions {
  runtime: Runtime;
  log?: Logger;
  /** onVerdict hears a change for the container with init pid `pid`. */
  onVerdict: (verdict: HealthVerdict, pid: number) => void;
  probe?: (check: HealthCheck, target: ProbeTarget, timeoutMs: number) => Promise<ProbeResult>;
}

/** checksOf is a template's checks by role: `health` is the liveness check. */
export function checksOf(t: TaskTemplate | undefined): ContainerChecks {
  return {
    ...(t?.startup ? { startup: t.startup } : {}),
    ...(t?.health ? { liveness: t.health } : {}),
    ...(t?.readiness ? { readiness: t.readiness } : {}),
  };
}

/** ContainerHealth tracks the checks of the container currently running one task. */
export class ContainerHealth {
  /** ready: the running container is started and passes the check that decides readiness (or has none). */
  ready = false;
  /** started: the running container's startup check has passed (or it has none). */
  started = false;
  /** lastProbes holds each check's last outcome that changed its verdict, for people; kept across restarts to say why. */
  lastProbes: Partial<Record<ProbeKind, string>> = {};
  /** unhealthyPid is the container the agent must stop; unhealthy says why, failedCheck which check said so. */
  unhealthyPid?: number;
  unhealthy?: string;
  failedCheck?: RestartingKind;
  private readonly loops = new Map<ProbeKind, ProbeLoop>();
  private pid?: number;
  private checks: ContainerChecks = {};
  private state?: ProbeSetState;

  constructor(private readonly opts: ContainerHealthOptions) {}

  /** lastProbe is the health (liveness) check's last outcome. */
  get lastProbe(): string | undefined {
    return this.lastProbes.liveness;
  }

  /** watch starts checking a running container (once per pid); without checks it is started and ready at once. */
  watch(id: string, checks: ContainerChecks, state: ContainerState): void {
    if (!hasChecks(checks)) {
      this.stop();
      this.ready = true;
      this.started = true;
      return;
    }
    if (this.state && this.pid === state.pid) return;
    this.stop();
    const pid = state.pid;
    this.pid = pid;
    this.checks = checks;
    this.state = initialProbeSet(checks);
    this.started = this.state.started;
    this.runActive(id, { runtime: this.opts.runtime, containerId: state.id, pid });
  }

  /** isUnhealthy tells whether the container with this pid failed its startup or health check past the threshold. */
  isUnhealthy(pid: number): boolean {
    return this.unhealthyPid === pid;
  }

  /** killMessage says why the agent stopped the unhealthy container, e.g. `health check failed (http :80/: HTTP 500)`. */
  killMessage(): string {
    const msg = this.failedCheck === 'startup' ? this.lastProbes.startup : this.lastProbes.liveness;
    return `${this.failedCheck === 'startup' ? 'startup' : 'health'} check failed (${msg ?? ''})`;
  }

  /** stop ends checking (the container exited or is going away); the task is neither started nor ready. */
  stop(): void {
    for (const loop of this.loops.values()) loop.stop();
    this.loops.clear();
    this.pid = undefined;
    this.state = undefined;
    this.ready = false;
    this.started = false;
  }

  /** forget clears the unhealthy mark once its container is gone. */
  forget(): void {
    this.unhealthyPid = undefined;
    this.unhealthy = undefined;
    this.failedCheck = undefined;
  }

  // runActive starts the loops of the checks that should run now and stops the others: startup
  // alone, then health and readiness (each from its own initial delay), nothing once a restart is due.
  private runActive(id: string, target: ProbeTarget): void {
    if (!this.state) return;
    const active = activeProbes(this.checks, this.state);
    for (const [kind, loop] of this.loops) {
      if (active.includes(kind)) continue;
      loop.stop();
      this.loops.delete(kind);
    }
    for (const kind of active) {
      const check = this.checks[kind];
      if (!check || this.loops.has(kind)) continue;
      const loop = new ProbeLoop({
        check,
        target,
        next: foldFor(kind),
        ...(this.opts.probe ? { probe: this.opts.probe } : {}),
        onChange: (h, last) => this.changed(id, target, kind, h, last),
      });
      this.loops.set(kind, loop);
      loop.start();
    }
  }

  private changed(id: string, target: ProbeTarget, kind: ProbeKind, h: HealthState, last: ProbeResult): void {
    if (this.pid !== target.pid || !this.state) return;
    const before = verdictOf(this.checks, this.state);
    this.state = withCheckState(this.checks, this.state, kind, h);
    const after = verdictOf(this.checks, this.state);
    this.lastProbes[kind] = last.message;
    this.ready = after.ready;
    this.started = after.started;
    const log = this.opts.log ?? silentLogger;
    const check = this.checks[kind];
    const fields = { id, kind, check: check ? describeCheck(check) : 'none', result: last.message };
    if (after.restart) {
      log.warn(`${after.restart === 'startup' ? 'startup' : 'health'} check failed past its threshold`, fields);
      this.unhealthyPid = target.pid;
      this.failedCheck = after.restart;
      this.unhealthy = after.restart === 'startup' ? `startup check: ${last.message}` : last.message;
    } else {
      if (after.started && !before.started) log.info('task started: its startup check passed', fields);
      if (after.ready !== before.ready) log.info(after.ready ? 'task ready' : 'task not ready', fields);
    }
    this.runActive(id, target);
    this.opts.onVerdict(after.restart ? 'unhealthy' : 'changed', target.pid);
  }
}
