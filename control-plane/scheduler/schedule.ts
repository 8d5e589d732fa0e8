/**
 * schedule(snapshot, tasks) → plan: pure, deterministic and bounded. Tasks are placed one after
 * another against a private copy of the snapshot, so a batch accounts for its own placements.
 */
import { attributeOf } from '../objects/constraints.js';
import { filterConstraints } from './filter-constraints.js';
import { filterPorts } from './filter-ports.js';
import { filterReady } from './filter-ready.js';
import { filterResources } from './filter-resources.js';
import { filterTaints } from './filter-taints.js';
import { filterUnschedulable } from './filter-unschedulable.js';
import { filterVolumes, volumeLocations } from './filter-volumes.js';
import { scoreAllocation } from './score-allocation.js';
import { scoreSpread } from './score-spread.js';
import { scoreTopologySpread } from './score-topology-spread.js';
import type { FilterContext, NodeFilter, NodeInfo, NodeScorer, Plan, Reason, Snapshot, TaskRequest } from './types.js';

/**
 * FILTERS run cheapest first: boolean flags (ready, cordoned, taints) cost nothing; constraints
 * parse nothing at run time but compare strings; ports probe a set; volumes look up where the
 * task's data already is, and come before resources so the node holding it, when full, says
 * "insufficient memory" while the others say where the data is; resources do arithmetic and
 * are the most informative rejection, so they come last.
 */
export const FILTERS: readonly NodeFilter[] = [filterReady, filterUnschedulable, filterTaints, filterConstraints, filterPorts, filterVolumes, filterResources];

/** SCORERS are summed with their weights: topology spread, then node spread, then allocation. */
export const SCORERS: readonly NodeScorer[] = [scoreTopologySpread, scoreSpread, scoreAllocation];

/** MAX_SCORED_NODES bounds scoring on big clusters: feasible nodes past this many are not scored. */
export const MAX_SCORED_NODES = 100;

function cloneNode(n: NodeInfo): NodeInfo {
  return { ...n, allocated: { ...n.allocated }, tasksByService: new Map(n.tasksByService), hostPorts: new Set(n.hostPorts), ...(n.volumes ? { volumes: new Set(n.volumes) } : {}) };
}

function byName(a: NodeInfo, b: NodeInfo): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

// sortedByName returns a new array of the nodes in name order, sorting only when they are not
// already (the caller's snapshot usually is, and stays so between calls).
function sortedByName(nodes: readonly NodeInfo[]): NodeInfo[] {
  for (let i = 1; i < nodes.length; i++) {
    if (byName(nodes[i - 1]!, nodes[i]!) > 0) return [...nodes].sort(byName);
  }
  return [...nodes];
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/** explain renders counted reasons as "0/3 nodes fit: 2 insufficient memory, 1 not ready". */
export function explain(total: number, reasons: Partial<Record<Reason, number>>): string {
  if (total === 0) return '0/0 nodes fit: no nodes are registered';
  // A volume's reason is a template type, so entries may read as undefined to the compiler; none is.
  const counted = Object.entries(reasons) as [string, number][];
  const parts = counted.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([r, n]) => `${n} ${r}`);
  return `0/${total} nodes fit: ${parts.join(', ')}`;
}

function spreadCountsFor(task: TaskRequest, nodes: NodeInfo[]): Map<string, number> {
  const counts = new Map<string, number>();
  if (task.spread === undefined) return counts;
  for (const n of nodes) {
    const v = attributeOf(task.spread, n);
    if (v === undefined) continue;
    counts.set(v, (counts.get(v) ?? 0) + (n.tasksByService.get(task.service) ?? 0));
  }
  return counts;
}

/** schedule places each task on the best feasible node or explains why none fits. */
export function schedule(snapshot: Snapshot, tasks: readonly TaskRequest[]): Plan {
  // Nodes are copied only when the batch places a task on them (copy on write): copying all of
  // a 5,000-node snapshot per call cost more than the decisions themselves.
  const nodes = sortedByName(snapshot.nodes);
  const copied = new Set<NodeInfo>();
  const plan: Plan = { placements: [], unplaced: [] };
  let indexOf: Map<string, number> | undefined;
  // Spread counts cost a pass over every node: compute them once per service and spread
  // attribute in this call, then keep them current as the batch places tasks.
  const spreadCache = new Map<string, Map<string, number>>();
  // Where the batch's named volumes are, computed once and kept current as tasks are placed: a
  // task placed with a volume that was nowhere makes it there, so its siblings follow it.
  const volumeNodes = volumeLocations(nodes, new Set(tasks.flatMap((t) => t.volumes ?? [])));
  for (const task of tasks) {
    const spreadKey = `${task.service}\0${task.spread ?? ''}`;
    let spreadCounts = spreadCache.get(spreadKey);
    if (!spreadCounts) spreadCache.set(spreadKey, (spreadCounts = spreadCountsFor(task, nodes)));
    const ctx: FilterContext = { task, spreadCounts, volumeNodes };
    const reasons: Partial<Record<Reason, number>> = {};
    if (task.unplaceable !== undefined) {
      plan.unplaced.push({ taskKey: task.key, reasons, message: task.unplaceable });
      continue;
    }
    // A pinned task (global mode) looks at its node only: the others are not candidates, and
    // counting them as rejections would bury the one reason that matters.
    let first = 0;
    let count = nodes.length;
    if (task.pinnedNode !== undefined) {
      indexOf ??= new Map(nodes.map((n, i) => [n.name, i]));
      const at = indexOf.get(task.pinnedNode);
      if (at === undefined) {
        plan.unplaced.push({ taskKey: task.key, reasons, message: `its node ${task.pinnedNode} is not registered` });
        continue;
      }
      first = at;
      count = 1;
    }
    let best: NodeInfo | undefined;
    let bestIndex = -1;
    let bestScore = -Infinity;
    let scored = 0;
    // Start at a task-seeded offset so the scoring sample differs per task yet stays reproducible.
    const offset = count === 1 ? first : nodes.length > MAX_SCORED_NODES ? hash(task.name) % nodes.length : 0;
    for (let i = 0; i < count && scored < MAX_SCORED_NODES; i++) {
      const index = (offset + i) % nodes.length;
      const node = nodes[index]!;
      let rejected: Reason | undefined;
      for (const f of FILTERS) {
        rejected = f.check(node, ctx);
        if (rejected) break;
      }
      if (rejected) {
        reasons[rejected] = (reasons[rejected] ?? 0) + 1;
        continue;
      }
      scored++;
      let score = 0;
      for (const s of SCORERS) score += s.weight * s.score(node, ctx);
      if (score > bestScore || (score === bestScore && best !== undefined && node.name < best.name)) {
        best = node;
        bestIndex = index;
        bestScore = score;
      }
    }
    if (!best) {
      plan.unplaced.push({ taskKey: task.key, reasons, message: explain(count, reasons) });
      continue;
    }
    if (!copied.has(best)) {
      best = cloneNode(best);
      nodes[bestIndex] = best;
      copied.add(best);
    }
    best.allocated.cpu += task.resources.cpu;
    best.allocated.memory += task.resources.memory;
    best.allocated.pids += task.resources.pids;
    best.tasksByService.set(task.service, (best.tasksByService.get(task.service) ?? 0) + 1);
    const spreadValue = task.spread === undefined ? undefined : attributeOf(task.spread, best);
    if (spreadValue !== undefined) spreadCounts.set(spreadValue, (spreadCounts.get(spreadValue) ?? 0) + 1);
    for (const p of task.hostPorts) best.hostPorts.add(p);
    for (const v of task.volumes ?? []) {
      (best.volumes ??= new Set()).add(v);
      const at = volumeNodes.get(v) ?? [];
      if (!at.includes(best.name)) volumeNodes.set(v, [...at, best.name].sort());
    }
    plan.placements.push({ taskKey: task.key, nodeName: best.name });
  }
  return plan;
}
