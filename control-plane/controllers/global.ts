/**
 * The global-mode planner: a `mode: global` service runs one task on every eligible node.
 * Pure: the service controller feeds it the nodes and the service's live tasks and commits what
 * it returns. It decides which nodes should have a task, not whether a node has room: a new
 * global task is created pending and pinned to its node, and the scheduler loop places it (with
 * the same resource, port and commit-time checks as every other task) or says why it cannot.
 *
 * Eligibility is asymmetric on purpose (as in Swarm): a new task goes only to a node that is
 * Ready, not cordoned and matching the constraints; an existing task stays while its node still
 * matches and is not draining, even if the node is cordoned or briefly not Ready. A node that
 * stays away is handled by node lifecycle, which marks its tasks lost after the grace period.
 */
import { matches, type Constraint } from '../objects/constraints.js';
import { isNodeReady } from '../objects/conditions.js';
import type { Node, Task } from '../objects/types.js';

/** GlobalPlan says which nodes get a new task and which live tasks must stop. */
export interface GlobalPlan {
  createOn: string[];
  stop: Task[];
}

/** nodeOf is the node a global task runs on or is pinned to ('' for neither). */
export function nodeOf(t: Task): string {
  return t.spec.nodeName || t.spec.pinnedNode || '';
}

function fits(node: Node, constraints: readonly Constraint[]): boolean {
  const view = { name: node.metadata.name, labels: node.metadata.labels ?? {} };
  return constraints.every((c) => matches(c, view)) && !(node.spec?.taints ?? []).some((t) => t.effect === 'NoSchedule');
}

/** canStartOn says whether a global service may start a new task on node. */
export function canStartOn(node: Node, constraints: readonly Constraint[]): boolean {
  return isNodeReady(node) && !node.spec?.unschedulable && fits(node, constraints);
}

/** canStayOn says whether an existing global task may keep running on node. */
export function canStayOn(node: Node | undefined, constraints: readonly Constraint[]): boolean {
  return node !== undefined && !node.spec?.drain && fits(node, constraints);
}

/**
 * planGlobal converges `live` (the service's tasks desired running and not terminal) to one per
 * eligible node: duplicates on a node stop (newest first, keeping a running one), tasks on
 * nodes they may not stay on stop (a task not yet placed counts as new: its node must still
 * accept new tasks), and eligible nodes without a task get one. Output is sorted.
 */
export function planGlobal(nodes: readonly Node[], live: readonly Task[], constraints: readonly Constraint[]): GlobalPlan {
  const byName = new Map(nodes.map((n) => [n.metadata.name, n]));
  const stop: Task[] = [];
  const covered = new Set<string>();
  const rank = (t: Task): number => (t.status.phase === 'running' ? 0 : t.spec.nodeName !== '' ? 1 : 2);
  const ordered = [...live].sort((a, b) => rank(a) - rank(b)
    || a.metadata.createdAt.localeCompare(b.metadata.createdAt) || a.metadata.name.localeCompare(b.metadata.name));
  for (const t of ordered) {
    const name = nodeOf(t);
    const node = byName.get(name);
    const may = t.spec.nodeName !== '' ? canStayOn(node, constraints) : node !== undefined && canStartOn(node, constraints);
    if (name === '' || covered.has(name) || !may) {
      stop.push(t);
      continue;
    }
    covered.add(name);
  }
  const createOn = nodes.filter((n) => !covered.has(n.metadata.name) && canStartOn(n, constraints)).map((n) => n.metadata.name).sort();
  stop.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  return { createOn, stop };
}
