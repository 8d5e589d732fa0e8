/**
 * The fault interface: each fault is a small module that injects one failure and heals it. A
 * fault is held for a time drawn from its range, then healed; every active fault registers a
 * synchronous undo with the safety net, so nothing stays broken after a crash or Ctrl-C.
 */
import type { ChaosCluster } from '../cluster.js';
import type { Rng } from '../random.js';
import type { SafetyNet } from '../safety.js';

/** FaultContext is what a fault may use. */
export interface FaultContext {
  cluster: ChaosCluster;
  safety: SafetyNet;
  /** log records one line in the run's fault log (printed with the report). */
  log(line: string): void;
  /** historyRevision is the etcd revision the harness's history has processed (a safe compaction point). */
  historyRevision(): number;
  /** expectExit announces a pid the fault is about to kill, before the signal (so it is not taken for a crash). */
  expectExit(pid: number): void;
}

/** ActiveFault is one injected fault until heal() returns. */
export interface ActiveFault {
  /** target names what was hit: "h2", "replica 1 (leader)", "etcd m3". */
  target: string;
  /**
   * affects lists the nodes whose containers may legitimately stay out of step while the fault
   * lasts (the orphan clock pauses for them); "all" for control-plane and etcd faults.
   */
  affects: 'all' | string[];
  /** replica is the control-plane replica the fault disturbs, if any (samplers read from another). */
  replica?: number;
  /** notes are facts worth reporting (a compaction revision, a fill size). */
  notes: string[];
  /** midway, if present, runs once halfway through the hold (the etcd cut compacts there). */
  midway?: () => Promise<void>;
  /** heal undoes the fault and returns once the component is back (bounded by its own timeouts). */
  heal(): Promise<void>;
}

/** FaultKind is one kind of fault with its hold range. */
export interface FaultKind {
  name: string;
  summary: string;
  /** holdS is the range the hold time is drawn from, in seconds. */
  holdS: readonly [number, number];
  inject(ctx: FaultContext, rng: Rng): Promise<ActiveFault>;
}

/** hostIndex picks a host (1-based) and its node name. */
export function pickHost(ctx: FaultContext, rng: Rng): { index: number; node: string } {
  const index = rng.int(1, ctx.cluster.status.hosts.length);
  return { index, node: ctx.cluster.status.hosts[index - 1]!.node };
}
