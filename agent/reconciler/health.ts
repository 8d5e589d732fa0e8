/**
 * Health checks as the reconciler sees them: one ContainerHealth per task record watches
 * whichever container currently runs the task, keeps its verdict (ready, unhealthy) and tells the
 * reconciler when the verdict changes. Containers are told apart by pid, so a late result about a
 * container that has since been replaced is ignored.
 */
import type { ContainerState, Runtime } from '../runtime/runtime.js';
import { silentLogger, type Logger } from '../../common/log.js';
import { describeCheck, ProbeLoop, type HealthCheck, type ProbeResult, type ProbeTarget } from '../probes/index.js';

/** HealthVerdict is what changed: the container became (not) ready, or must be restarted. */
export type HealthVerdict = 'ready' | 'not-ready' | 'unhealthy';

/** ContainerHealthOptions wires a task's health to the runtime and to its reconciler. */
export interface ContainerHealthOptions {
  runtime: Runtime;
  log?: Logger;
  /** onVerdict hears a change for the container with init pid `pid`. */
  onVerdict: (verdict: HealthVerdict, pid: number) => void;
  probe?: (check: HealthCheck, target: ProbeTarget, timeoutMs: number) => Promise<ProbeResult>;
}

/** ContainerHealth tracks the health of the container currently running one task. */
export class ContainerHealth {
  /** ready: the running container passes its check (or has none). */
  ready = false;
  /** lastProbe is the last probe's outcome, for people. */
  lastProbe?: string;
  /** unhealthyPid is the container the agent must stop; unhealthy says why. */
  unhealthyPid?: number;
  unhealthy?: string;
  private loop?: ProbeLoop;
  private pid?: number;

  constructor(private readonly opts: ContainerHealthOptions) {}

  /** watch starts probing a running container (once per pid); without a check it is ready at once. */
  watch(id: string, check: HealthCheck | undefined, state: ContainerState): void {
    if (!check?.probe) {
      this.stop();
      this.ready = true;
      return;
    }
    if (this.loop && this.pid === state.pid) return;
    this.stop();
    const pid = state.pid;
    this.pid = pid;
    this.loop = new ProbeLoop({
      check,
      target: { runtime: this.opts.runtime, containerId: state.id, pid },
      ...(this.opts.probe ? { probe: this.opts.probe } : {}),
      onChange: (health, last) => {
        if (this.pid !== pid) return;
        this.ready = health.ready;
        this.lastProbe = last.message;
        const verdict: HealthVerdict = health.unhealthy ? 'unhealthy' : health.ready ? 'ready' : 'not-ready';
        const log = this.opts.log ?? silentLogger;
        const fields = { id, check: describeCheck(check), result: last.message };
        if (health.unhealthy) log.warn('health check failed past its threshold', fields);
        else log.info(health.ready ? 'task ready' : 'task not ready', fields);
        if (health.unhealthy) {
          this.unhealthyPid = pid;
          this.unhealthy = last.message;
        }
        this.opts.onVerdict(verdict, pid);
      },
    });
    this.loop.start();
  }

  /** isUnhealthy tells whether the container with this pid failed its check past the threshold. */
  isUnhealthy(pid: number): boolean {
    return this.unhealthyPid === pid;
  }

  /** stop ends probing (the container exited or is going away); the task is not ready. */
  stop(): void {
    this.loop?.stop();
    this.loop = undefined;
    this.pid = undefined;
    this.ready = false;
  }

  /** forget clears the unhealthy mark once its container is gone. */
  forget(): void {
    this.unhealthyPid = undefined;
    this.unhealthy = undefined;
  }
}
