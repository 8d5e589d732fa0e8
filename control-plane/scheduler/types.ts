/**
 * Types of the pure scheduler: an in-memory snapshot in, a plan out. Nothing here touches etcd;
 * the scheduler loop (controllers/scheduler-loop.ts) builds snapshots and commits plans.
 */
import type { Constraint } from '../objects/constraints.js';
import type { Resources } from '../objects/types.js';

/** NodeInfo is what the scheduler knows of one node: identity, health and current allocations. */
export interface NodeInfo {
  name: string;
  labels: Record<string, string>;
  ready: boolean;
  unschedulable: boolean;
  taints: { key: string; value?: string; effect: 'NoSchedule' }[];
  allocatable: Resources;
  /** allocated sums the resources of the tasks already on the node. */
  allocated: Resources;
  /** tasksByService counts tasks on the node per "<ns>/<service>". */
  tasksByService: Map<string, number>;
  /** hostPorts holds "<port>/<protocol>" already published on the node. */
  hostPorts: Set<string>;
  /** volumes holds the named volumes ("<ns>/<name>") on the node: reported, or mounted by a live task. */
  volumes?: Set<string>;
}

/** TaskRequest is one task to place, with its requirements pre-parsed. */
export interface TaskRequest {
  key: string;
  name: string;
  /** service is "<ns>/<service>", the unit that spreading counts. */
  service: string;
  resources: Resources;
  hostPorts: string[];
  constraints: Constraint[];
  /** spread is a node attribute (node.labels.zone) to spread over, besides nodes themselves. */
  spread?: string;
  strategy: 'spread' | 'binpack';
  /** pinnedNode (global mode): only this node is considered. */
  pinnedNode?: string;
  /** unplaceable says why the task may go nowhere at all (e.g. a stored constraint that does not parse). */
  unplaceable?: string;
  /** volumes are the named volumes ("<ns>/<name>") the task mounts; it goes where they are. */
  volumes?: string[];
}

/** Snapshot is the cluster as the scheduler sees it. */
export interface Snapshot {
  nodes: NodeInfo[];
}

/** Reason is why a filter rejected a node; it is counted in an unplaced task's message. */
export type Reason =
  | 'not ready' | 'cordoned' | 'tainted' | 'constraints not met' | 'host port in use'
  | 'insufficient cpu' | 'insufficient memory' | 'insufficient pids'
  | `volume ${string} is on ${string}`;

/** FilterContext is what filters and scorers see besides the node. */
export interface FilterContext {
  task: TaskRequest;
  /** spreadCounts counts the service's tasks per value of task.spread (when set). */
  spreadCounts: Map<string, number>;
  /** volumeNodes maps a named volume ("<ns>/<name>") to the nodes holding it (filter-volumes.ts). */
  volumeNodes?: ReadonlyMap<string, readonly string[]>;
}

/** NodeFilter rejects a node with a reason, or returns undefined when it fits. */
export interface NodeFilter {
  name: string;
  check: (node: NodeInfo, ctx: FilterContext) => Reason | undefined;
}

/** NodeScorer rates a feasible node; higher is better. weight scales it against other scorers. */
export interface NodeScorer {
  name: string;
  weight: number;
  score: (node: NodeInfo, ctx: FilterContext) => number;
}

/** Placement assigns one task to one node. */
export interface Placement {
  taskKey: string;
  nodeName: string;
}

/** Unplaced is a task no node fits, with the counted reasons and a message for people. */
export interface Unplaced {
  taskKey: string;
  reasons: Partial<Record<Reason, number>>;
  message: string;
}

/** Plan is the scheduler's output for one batch. */
export interface Plan {
  placements: Placement[];
  unplaced: Unplaced[];
}
