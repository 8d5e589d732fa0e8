/**
 * The global-mode planner: a `mode: global` service runs one task on every eligible node.
 * Pure: the service controller feeds it the nodes and the service's live tasks and commits what
 * it returns. Placement is decided here, not by the scheduler: a global task is created already
 * bound to its node (phase assigned), so the scheduler loop never sees it.
 *
 * Eligibility is asymmetric on purpose (as in Swarm): a new task goes only to a node that is
 * Ready, not cordoned and matching the constraints; an existing task stays while its node still
 * matches and is not draining, even if the node is cordoned or briefly not Ready. A node that
 * stays away is handled by node lifecycle, which marks its tasks lost after the grace period.
 */
import { matches, parseConstraint, type Constraint } from '../objects/constraints.js';
import { isNodeReady } from '../objects/conditions.js';
import type { Node, Service, Task } from '../objects/types.js';
import { filterPorts, hostPortKeys } from '../scheduler/filter-ports.js';
import { filterResources } from '../scheduler/filter-resources.js';
import type { NodeInfo, TaskRequest } from '../scheduler/types.js';

/** GlobalPlan says which nodes get a new task and which live tasks must stop. */
export interface GlobalPlan {
  createOn: string[];
  stop: Task[];
}

/** parseConstraints keeps the constraints that parse (admission already refused the others). */
export function parseConstraints(raw: readonly string[] | undefined): Constraint[] {
  const out: Constraint[] = [];
  for (const c of raw ?? []) {
    const p = parseConstraint(c);
    if (p.ok) out.push(p.constraint);
  }
  return out;
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

/** globalRequest is the scheduler's view of one task of a global service (for the capacity check). */
export function globalRequest(svc: Service): TaskRequest {
  const r = svc.spec.template.resources ?? {};
  return {
    key: '', name: '', service: `${svc.metadata.namespace}/${svc.metadata.name}`,
    resources: { cpu: r.cpu ?? 0, memory: r.memory ?? 0, pids: r.pids ?? 0 },
    hostPorts: hostPortKeys(svc.spec.template.ports),
    constraints: [], strategy: 'spread',
  };
}

/** hasRoomFor says whether node still has the resources and host ports for one more task of req (scheduler stages). */
export function hasRoomFor(node: NodeInfo | undefined, req: TaskRequest): boolean {
  if (!node) return false;
  const ctx = { task: req, spreadCounts: new Map<string, number>() };
  return filterResources.check(node, ctx) === undefined && filterPorts.check(node, ctx) === undefined;
}

/**
 * planGlobal converges `live` (the service's tasks desired running and not terminal) to one per
 * eligible node: duplicates on a node stop (newest first, keeping a running one), tasks on
 * nodes they may not stay on stop, and eligible nodes without a task get one if hasRoom says
 * the node can hold it (resources, host ports). Output is sorted.
 */
export function planGlobal(nodes: readonly Node[], live: readonly Task[], constraints: readonly Constraint[],
  hasRoom: (node: string) => boolean = () => true): GlobalPlan {
  const byName = new Map(nodes.map((n) => [n.metadata.name, n]));
  const stop: Task[] = [];
  const covered = new Set<string>();
  const rank = (t: Task): number => (t.status.phase === 'running' ? 0 : 1);
  const ordered = [...live].sort((a, b) => rank(a) - rank(b)
    || a.metadata.createdAt.localeCompare(b.metadata.createdAt) || a.metadata.name.localeCompare(b.metadata.name));
  for (const t of ordered) {
    const node = t.spec.nodeName;
    if (node === '' || covered.has(node) || !canStayOn(byName.get(node), constraints)) {
      stop.push(t);
      continue;
    }
    covered.add(node);
  }
  const createOn = nodes.filter((n) => !covered.has(n.metadata.name) && canStartOn(n, constraints) && hasRoom(n.metadata.name))
    .map((n) => n.metadata.name).sort();
  stop.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  return { createOn, stop };
}
