/**
 * The drain planner: how a replicated service moves its tasks off draining nodes without
 * dropping below `replicas - maxUnavailable` running. Pure; the service controller applies it.
 *
 * Tasks on a draining node ("evacuating") do not count towards the replicas the controller
 * keeps, so replacements are created elsewhere (the scheduler never picks a cordoned node);
 * the creations are capped at `replicas + surge` live tasks. An evacuating task is stopped only
 * when the service still has at least `replicas - maxUnavailable` running without it. With the
 * default maxUnavailable 0 a surge of at least one is allowed, otherwise nothing could move.
 */

/** DrainTask is the planner's view of one live task of the service. */
export interface DrainTask {
  name: string;
  running: boolean;
  evacuating: boolean;
}

/** DrainInput is one replicated service's situation. */
export interface DrainInput {
  replicas: number;
  maxSurge?: number;
  maxUnavailable?: number;
  tasks: readonly DrainTask[];
}

/** DrainPlan: how many replacement tasks to create now and which evacuating tasks to stop now. */
export interface DrainPlan {
  create: number;
  stop: string[];
}

/** effectiveSurge is maxSurge, at least 1 when maxUnavailable is 0 (a drain must be able to move). */
export function effectiveSurge(maxSurge = 0, maxUnavailable = 0): number {
  return maxUnavailable === 0 ? Math.max(1, maxSurge) : Math.max(0, maxSurge);
}

/** planDrain decides the next step of moving evacuating tasks; repeated calls converge. */
export function planDrain(input: DrainInput): DrainPlan {
  const { replicas } = input;
  const maxUnavailable = Math.max(0, input.maxUnavailable ?? 0);
  const surge = effectiveSurge(input.maxSurge, maxUnavailable);
  const staying = input.tasks.filter((t) => !t.evacuating);
  const evacuating = input.tasks.filter((t) => t.evacuating);
  const minRunning = Math.max(0, replicas - maxUnavailable);
  let running = input.tasks.filter((t) => t.running).length;
  const stop: string[] = [];
  // Not-running evacuating tasks cost no availability: stop them first, then running ones while allowed.
  const order = [...evacuating].sort((a, b) => Number(a.running) - Number(b.running) || a.name.localeCompare(b.name));
  for (const t of order) {
    if (!t.running) {
      stop.push(t.name);
      continue;
    }
    if (running - 1 < minRunning) break;
    running--;
    stop.push(t.name);
  }
  // Creations count after this step's stops, so maxUnavailable > 0 frees room in the same step.
  const create = Math.max(0, Math.min(replicas - staying.length, replicas + surge - (input.tasks.length - stop.length)));
  return { create, stop };
}
