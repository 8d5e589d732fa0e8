/**
 * Checks run by the agent (DESIGN.md "probes"): one loop per check (startup, health, readiness)
 * that runs for a container. The loop folds results through its check's machine (probe-state.ts)
 * and tells its owner only when that check's verdict changes (ready, not ready, unhealthy), so a
 * steady container costs no status traffic; how the checks combine is probe-set.ts.
 */
import type { Runtime } from '../runtime/runtime.js';
import { messageOf } from '../errors.js';
import { httpProbe, tcpProbe } from './probe-net.js';
import { initialHealth, nextHealth, probeSettings, type HealthCheck, type HealthState, type ProbeResult, type ProbeSettings } from './probe-state.js';
import type { Fold } from './probe-set.js';

export { probeSettings, nextHealth, nextReadiness, initialHealth, type HealthCheck, type HealthState, type Probe, type ProbeResult, type ProbeSettings } from './probe-state.js';
export {
  activeProbes, foldFor, hasChecks, initialProbeSet, nextProbeSet, runs, verdictOf, withCheckState,
  type ContainerChecks, type Fold, type ProbeKind, type ProbeSetState, type ProbeVerdict, type RestartingKind,
} from './probe-set.js';

/** ProbeTarget is the container a probe looks at. */
export interface ProbeTarget {
  runtime: Runtime;
  containerId: string;
  /** pid is the container's init, whose network namespace http and tcp probes enter. */
  pid: number;
}

/** describeCheck names a check for messages: `http :8080/`, `tcp :5432`, `exec /bin/check`. */
export function describeCheck(check: HealthCheck): string {
  switch (check.probe?.$case) {
    case 'http': return `http :${check.probe.value.port}${check.probe.value.path}`;
    case 'tcp': return `tcp :${check.probe.value.port}`;
    case 'exec': return `exec ${check.probe.value.command.join(' ')}`;
    default: return 'no probe';
  }
}

/** runProbe runs a check once; it never rejects. A check without a probe kind always passes. */
export async function runProbe(check: HealthCheck, target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  const probe = check.probe;
  switch (probe?.$case) {
    case 'http': return httpProbe({ pid: target.pid, port: probe.value.port, timeoutMs }, probe.value.path || '/');
    case 'tcp': return tcpProbe({ pid: target.pid, port: probe.value.port, timeoutMs });
    case 'exec': {
      const what = `exec ${probe.value.command[0] ?? ''}`;
      if (!target.runtime.exec) return { ok: false, message: `${what}: this runtime cannot exec` };
      try {
        const r = await target.runtime.exec(target.containerId, { args: probe.value.command, timeoutMs });
        if (r.timedOut) return { ok: false, message: `${what}: timed out after ${timeoutMs}ms` };
        const said = r.stdout.toString('utf8').trim().split('\n')[0]?.slice(0, 120) ?? '';
        return { ok: r.exitCode === 0, message: `${what}: exit ${r.exitCode}${said ? ` (${said})` : ''}` };
      } catch (err) {
        return { ok: false, message: `${what}: ${messageOf(err)}` };
      }
    }
    default: return { ok: true, message: 'no probe' };
  }
}

/** ProbeLoopOptions wires one loop: what to probe, how, and whom to tell. */
export interface ProbeLoopOptions {
  check: HealthCheck;
  target: ProbeTarget;
  /** onChange hears every change of verdict (ready or unhealthy) with the result that caused it. */
  onChange: (state: HealthState, last: ProbeResult) => void;
  /** probe replaces runProbe (tests). */
  probe?: (check: HealthCheck, target: ProbeTarget, timeoutMs: number) => Promise<ProbeResult>;
  /** next folds each result into the check's state; default nextHealth (a health or startup check). */
  next?: Fold;
}

/** ProbeLoop probes one container every interval until stopped or unhealthy. */
export class ProbeLoop {
  private readonly settings: ProbeSettings;
  private state: HealthState = initialHealth;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly opts: ProbeLoopOptions) {
    this.settings = probeSettings(opts.check);
  }

  /** health is the current verdict. */
  get health(): HealthState {
    return this.state;
  }

  /** start schedules the first probe after the initial delay. */
  start(): void {
    this.schedule(this.settings.initialDelayMs);
  }

  /** stop cancels further probes; a probe in flight finishes but is not reported. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const result = await (this.opts.probe ?? runProbe)(this.opts.check, this.opts.target, this.settings.timeoutMs);
    if (this.stopped) return;
    const before = this.state;
    this.state = (this.opts.next ?? nextHealth)(before, result.ok, this.settings);
    if (this.state.ready !== before.ready || this.state.unhealthy !== before.unhealthy) this.opts.onChange(this.state, result);
    if (!this.state.unhealthy) this.schedule(this.settings.intervalMs);
  }
}
