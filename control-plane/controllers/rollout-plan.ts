/**
 * The rolling-update planner: a pure function from a service's active tasks and its update
 * strategy to which tasks to stop and how many to create. It is also the plain scaling logic
 * (with no outdated tasks a rollout is just "keep replicas tasks"), so scale and update share one
 * computation made from the current spec, and overlapping them is safe.
 *
 * Invariants (test/unit/rollout-plan.test.ts proves them over random event sequences):
 * - creates never bring the desired-running count above replicas + maxSurge;
 * - stops of available tasks never bring the available count below replicas - maxUnavailable;
 *   unavailable tasks are stopped freely, they hold no capacity anyone relies on.
 * Scale-down (updated tasks beyond replicas) is what the user asked for and is not bounded.
 */
import type { UpdateSpec } from '../objects/types.js';

/** DEFAULT_MAX_SURGE is how many tasks above replicas may run during a rollout. */
export const DEFAULT_MAX_SURGE = 1;
/** DEFAULT_MAX_UNAVAILABLE is how many replicas may be unavailable during a rollout. */
export const DEFAULT_MAX_UNAVAILABLE = 0;
/** DEFAULT_MIN_READY_SECONDS is how long a new task must be ready before it counts. */
export const DEFAULT_MIN_READY_SECONDS = 0;
/** DEFAULT_PROGRESS_DEADLINE_SECONDS is how long a rollout may go without progress before it fails. */
export const DEFAULT_PROGRESS_DEADLINE_SECONDS = 600;
/** FAILING_RESTARTS is the restart count at which a new task counts as failing the rollout. */
export const FAILING_RESTARTS = 3;

/** Strategy is an UpdateSpec with every default filled in. */
export interface Strategy {
  maxSurge: number;
  maxUnavailable: number;
  minReadySeconds: number;
  progressDeadlineSeconds: number;
  autoRollback: boolean;
}

/** strategyOf fills the defaults; maxSurge 0 with maxUnavailable 0 could never progress, so surge becomes 1. */
export function strategyOf(u: UpdateSpec | undefined): Strategy {
  const maxUnavailable = u?.maxUnavailable ?? DEFAULT_MAX_UNAVAILABLE;
  let maxSurge = u?.maxSurge ?? DEFAULT_MAX_SURGE;
  if (maxSurge === 0 && maxUnavailable === 0) maxSurge = 1;
  return {
    maxSurge,
    maxUnavailable,
    minReadySeconds: u?.minReadySeconds ?? DEFAULT_MIN_READY_SECONDS,
    progressDeadlineSeconds: u?.progressDeadlineSeconds ?? DEFAULT_PROGRESS_DEADLINE_SECONDS,
    autoRollback: u?.autoRollback ?? false,
  };
}

/** PlanTask is what the planner needs to know about one active (desired running) task. */
export interface PlanTask {
  name: string;
  /** updated is true when the task runs the service's current template. */
  updated: boolean;
  /** available: running, ready, and ready for at least minReadySeconds. */
  available: boolean;
  /** running: phase running (ready or not); ranks scale-down victims. */
  running: boolean;
  createdAt: string;
}

/** Plan says which tasks to stop and how many fresh (updated) tasks to create. */
export interface Plan {
  stop: string[];
  create: number;
  /** halted: the rollout is frozen, so no old task was replaced. */
  halted: boolean;
}

// victimOrder puts unavailable before available, not running before running, newest first.
function victimOrder(a: PlanTask, b: PlanTask): number {
  return Number(a.available) - Number(b.available) || Number(a.running) - Number(b.running)
    || b.createdAt.localeCompare(a.createdAt) || a.name.localeCompare(b.name);
}

/**
 * planRollout decides one step. halted freezes replacement of old tasks (a failed rollout without
 * autoRollback): old tasks stay, updated ones are only kept at their count.
 */
export function planRollout(replicas: number, s: Strategy, tasks: readonly PlanTask[], halted = false): Plan {
  const stop: string[] = [];
  let updated = tasks.filter((t) => t.updated).sort(victimOrder);
  const old = tasks.filter((t) => !t.updated).sort(victimOrder);

  // Scale-down of updated tasks is the user's request: stop the surplus, worst first.
  if (updated.length > replicas) {
    const surplus = updated.length - replicas;
    stop.push(...updated.slice(0, surplus).map((t) => t.name));
    updated = updated.slice(surplus);
  }
  if (halted) {
    // Frozen: the surge task(s) of the failed revision go first, then old ones, down to replicas;
    // a lost slot is refilled (with the only template there is) but no old task is replaced.
    const over = old.length + updated.length - replicas;
    if (over > 0) stop.push(...[...updated, ...old].slice(0, over).map((t) => t.name));
    return { stop, create: Math.max(0, -over), halted: true };
  }

  const total = updated.length + old.length;
  const create = Math.max(0, Math.min(replicas - updated.length, replicas + s.maxSurge - total));

  // Old tasks go unavailable-first; an available one only while availability stays at the floor.
  const minAvailable = Math.max(0, replicas - s.maxUnavailable);
  let available = updated.filter((t) => t.available).length + old.filter((t) => t.available).length;
  for (const t of old) {
    if (t.available) {
      if (available - 1 < minAvailable) break;
      available -= 1;
    }
    stop.push(t.name);
  }
  return { stop, create, halted: false };
}
