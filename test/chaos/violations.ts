/**
 * What the checkers report. A condition that holds across many samples is one violation with a
 * count, first and last time, so a report stays readable; every check evaluated is counted too,
 * so "0 violations" can be read against how often it was looked at.
 */

/** INVARIANTS names every invariant the suite checks, in report order, with what it means. */
export const INVARIANTS = {
  'surge': 'never more running tasks (desired running) of a service than replicas + maxSurge of the specs the controller has not yet caught up with',
  'ip-unique': 'never two live containers (on any host) holding one IP address',
  'ip-unique-api': 'never two tasks reported running with one IP address',
  'capacity': "every node's unfinished tasks fit its allocatable cpu and memory",
  'desired-task-lost': 'a task is never deleted while it is desired running',
  'acked-write-lost': 'every acknowledged service write stays visible (no generation regresses, no acknowledged spec disappears)',
  'orphan-container': 'a container without a desired-running task on its node is stopped within the orphan bound once nothing disturbs that node',
  'no-crash': 'no control-plane replica, agent, etcd member or the etcd proxy exits unless a fault killed it',
  'convergence': 'after the faults stop, the cluster reaches exactly the desired state within the bound',
  'leak': 'after convergence and after the services are deleted: no leaked container, cgroup, veth, IP record, mount, iptables rule or process',
  'leak-after-teardown': 'after local-cluster down: nothing of the cluster is left on the machine',
} as const;

/** InvariantName is one key of INVARIANTS. */
export type InvariantName = keyof typeof INVARIANTS;

/** Violation is one broken invariant: which objects, what was seen, when and how often. */
export interface Violation {
  invariant: InvariantName;
  /** objects names what broke it: service, task (name and uid), node, container id, IP, rule... */
  objects: string[];
  message: string;
  /** source is where it was seen: etcd-history, api, host:<node>, convergence, teardown. */
  source: string;
  /** firstAtS / lastAtS are seconds since the run started. */
  firstAtS: number;
  lastAtS: number;
  count: number;
}

/** NewViolation is what a checker reports; the recorder adds times and counts. */
export type NewViolation = Pick<Violation, 'invariant' | 'objects' | 'message' | 'source'>;

/** Violations records violations (deduplicated by invariant and objects) and counts checks. */
export class Violations {
  private readonly byKey = new Map<string, Violation>();
  private readonly checkCounts = new Map<InvariantName, number>();

  constructor(private readonly startedAtMs: number) {}

  /** add records one violation, or bumps the count of the same one seen before. */
  add(v: NewViolation): void {
    const now = (Date.now() - this.startedAtMs) / 1000;
    const key = `${v.invariant}\0${[...v.objects].sort().join('\0')}`;
    const seen = this.byKey.get(key);
    if (seen) {
      seen.count++;
      seen.lastAtS = now;
      return;
    }
    this.byKey.set(key, { ...v, objects: [...v.objects], firstAtS: now, lastAtS: now, count: 1 });
  }

  /** checked counts n evaluations of invariant. */
  checked(invariant: InvariantName, n = 1): void {
    this.checkCounts.set(invariant, (this.checkCounts.get(invariant) ?? 0) + n);
  }

  /** checks is how many times invariant was evaluated. */
  checks(invariant: InvariantName): number {
    return this.checkCounts.get(invariant) ?? 0;
  }

  /** list returns every violation, first seen first. */
  list(): Violation[] {
    return [...this.byKey.values()].sort((a, b) => a.firstAtS - b.firstAtS);
  }

  /** count is the number of distinct violations. */
  get count(): number {
    return this.byKey.size;
  }
}
