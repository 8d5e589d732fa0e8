/**
 * The plan applier's check (Nomad's model): before a batch of placements is committed, each is
 * re-checked against the nodes as they are now, with the batch's earlier accepted placements
 * added, through the same filters the scheduler used. A rejected placement is not written; the
 * scheduler re-plans it from a fresh view. Pure.
 */
import { FILTERS } from './schedule.js';
import type { NodeInfo, Placement, Reason, TaskRequest } from './types.js';

/** RejectedPlacement is a placement that no longer fits, and why. */
export interface RejectedPlacement extends Placement {
  reason: Reason | 'node gone';
}

/** PlanCheck splits a plan's placements into those still valid and those to re-plan. */
export interface PlanCheck {
  accepted: Placement[];
  rejected: RejectedPlacement[];
}

/**
 * checkPlacements re-validates placements in order against current(nodeName), the node as it is
 * now; requests gives each placement's task. current's objects are not modified.
 */
export function checkPlacements(placements: readonly Placement[], requests: ReadonlyMap<string, TaskRequest>,
  current: (node: string) => NodeInfo | undefined): PlanCheck {
  const nodes = new Map<string, NodeInfo | undefined>();
  const out: PlanCheck = { accepted: [], rejected: [] };
  for (const p of placements) {
    if (!nodes.has(p.nodeName)) {
      const n = current(p.nodeName);
      nodes.set(p.nodeName, n && { ...n, allocated: { ...n.allocated }, tasksByService: new Map(n.tasksByService), hostPorts: new Set(n.hostPorts) });
    }
    const node = nodes.get(p.nodeName);
    const task = requests.get(p.taskKey)!;
    if (!node) {
      out.rejected.push({ ...p, reason: 'node gone' });
      continue;
    }
    // Spread is a preference, not a constraint: the check needs no counts.
    const ctx = { task, spreadCounts: new Map<string, number>() };
    let reason: Reason | undefined;
    for (const f of FILTERS) {
      reason = f.check(node, ctx);
      if (reason) break;
    }
    if (reason) {
      out.rejected.push({ ...p, reason });
      continue;
    }
    node.allocated.cpu += task.resources.cpu;
    node.allocated.memory += task.resources.memory;
    node.allocated.pids += task.resources.pids;
    for (const hp of task.hostPorts) node.hostPorts.add(hp);
    out.accepted.push(p);
  }
  return out;
}
