/**
 * Liveness of the cluster's own processes: a control-plane replica, agent, etcd member or the
 * etcd proxy that exits while no fault killed it has crashed, and a crashed component also keeps
 * the cluster from its desired state. Pids come from local-cluster status; a fault announces the
 * pid it is about to kill (FaultContext.expectExit) before it sends the signal, so the check never
 * races the fault.
 */
import { readFileSync } from 'node:fs';
import { pidAlive } from '../support/cluster.js';
import type { ChaosStatus } from './cluster.js';
import type { NewViolation } from './violations.js';

/** Component is one process of the cluster as status names it. */
interface Component {
  name: string;
  pid: number | null;
  log: string;
}

/** components lists every process the cluster runs, by a stable name. */
export function components(s: ChaosStatus): Component[] {
  return [
    ...s.controlPlanes.map((c) => ({ name: `control plane ${c.replica}`, pid: c.pid, log: c.log })),
    ...s.hosts.map((h, i) => ({ name: `agent h${i + 1}`, pid: h.agentPid, log: h.log })),
    ...(s.etcdCluster?.members ?? []).map((m) => ({ name: `etcd ${m.name}`, pid: m.alive ? m.pid : null, log: m.log })),
    ...(s.etcdProxy ? [{ name: 'etcd proxy', pid: s.etcdProxy.pid, log: s.etcdProxy.log }] : []),
  ];
}

/** lastErrors is the last few error lines of a log, for the violation's message. */
function lastErrors(log: string, max = 3): string[] {
  try {
    return readFileSync(log, 'utf8').split('\n').filter((l) => /error|fatal|panic/i.test(l)).slice(-max).map((l) => l.slice(0, 600));
  } catch {
    return [];
  }
}

/** Liveness remembers each component's pid and reports the ones that died on their own. */
export class Liveness {
  private readonly known = new Map<string, Component & { pid: number }>();
  private readonly expected = new Set<number>();

  /** expectExit records that a fault is about to kill pid. */
  expectExit(pid: number): void {
    this.expected.add(pid);
  }

  /** update takes the pids of a fresh status (a restarted component has a new one). */
  update(s: ChaosStatus): void {
    for (const c of components(s)) if (c.pid !== null) this.known.set(c.name, { ...c, pid: c.pid });
  }

  /** check reports every known component whose process is gone though no fault killed it. */
  check(): NewViolation[] {
    const out: NewViolation[] = [];
    for (const c of this.known.values()) {
      if (this.expected.has(c.pid) || pidAlive(c.pid)) continue;
      const errors = lastErrors(c.log);
      out.push({
        invariant: 'no-crash', source: 'processes', objects: [`${c.name} pid ${c.pid}`, `log ${c.log}`],
        message: `exited while no fault had killed it${errors.length ? `; last error lines:\n    ${errors.join('\n    ')}` : ''}`,
      });
    }
    return out;
  }
}

/** componentsDown lists the components a status shows not running (a converged cluster runs all). */
export function componentsDown(s: ChaosStatus): string[] {
  return components(s).filter((c) => c.pid === null).map((c) => `${c.name} is not running (log ${c.log})`);
}
