/**
 * Admission on the node, as the kubelet's: a task that arrives at the agent is started only if
 * its requests fit beside what the node's tasks already hold, else it is refused with reason
 * OutOfCpu, OutOfMemory or OutOfPids and a message naming the numbers. The scheduler checks the
 * same sums; this is the node's own word when the two disagree (a stale snapshot, two placements
 * racing, a node smaller than it registered). Pure: the reconciler says who holds what.
 */
import type { Resources } from './task.js';

/** AdmissionReason is the status reason of a refused task, one per resource. */
export type AdmissionReason = 'OutOfCpu' | 'OutOfMemory' | 'OutOfPids';

/** Admission is the verdict on one task: it may start, or why not. */
export type Admission = { ok: true } | { ok: false; reason: AdmissionReason; message: string };

/** Arrival is a task to be judged: `order` sorts arrivals into the order they are judged in. */
export interface Arrival<K> {
  key: K;
  order: string;
  request: Resources;
}

interface Check {
  reason: AdmissionReason;
  of: (r: Resources) => number;
  /** named says an amount with the resource's name, plain without it. */
  named: (n: number) => string;
  plain: (n: number) => string;
}

// In the kubelet's order: cpu, then memory, then pids; the first that does not fit is the reason.
// Cpu is counted in millicores, as the scheduler does, so 0.1 + 0.2 fits in exactly 0.3.
const CHECKS: readonly Check[] = [
  { reason: 'OutOfCpu', of: (r) => Math.round(r.cpuCores * 1000), named: (m) => `${m / 1000} cpu`, plain: (m) => `${m / 1000}` },
  { reason: 'OutOfMemory', of: (r) => r.memoryBytes, named: (b) => `${formatBytes(b)} of memory`, plain: formatBytes },
  { reason: 'OutOfPids', of: (r) => r.pids, named: (n) => `${n} pids`, plain: (n) => `${n}` },
];

/**
 * admit judges one task's request against the node's allocatable amounts and the requests of
 * the tasks holding resources there. A request of 0 asks for nothing and always fits, even on a
 * node already past its capacity; an allocatable amount of 0 is unknown and limits nothing.
 */
export function admit(request: Resources, allocatable: Resources, holding: readonly Resources[]): Admission {
  for (const c of CHECKS) {
    const need = c.of(request);
    const total = c.of(allocatable);
    if (need <= 0 || total <= 0) continue;
    const holders = holding.filter((h) => c.of(h) > 0);
    const used = holders.reduce((sum, h) => sum + c.of(h), 0);
    if (used + need <= total) continue;
    const by = holders.length === 0 ? 'none in use' : `${c.plain(used)} in use by ${holders.length} task${holders.length === 1 ? '' : 's'}`;
    return { ok: false, reason: c.reason, message: `needs ${c.named(need)}; ${c.plain(total)} allocatable, ${by}` };
  }
  return { ok: true };
}

/**
 * admitInOrder judges arriving tasks one after the other, sorted by `order`, so a set of
 * arrivals gets the same verdicts whatever order it came in: each admitted task holds its
 * request for the ones judged after it. Only arrivals are judged: a task the node already runs
 * is in `holding` and is never refused, even when the node holds more than it has.
 */
export function admitInOrder<K>(arrivals: readonly Arrival<K>[], allocatable: Resources, holding: readonly Resources[]): Array<{ key: K; admission: Admission }> {
  const held = [...holding];
  const sorted = [...arrivals].sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
  return sorted.map((a) => {
    const admission = admit(a.request, allocatable, held);
    if (admission.ok) held.push(a.request);
    return { key: a.key, admission };
  });
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** formatBytes writes a byte count in the largest binary unit it reaches, to two decimals: `600 MiB`, `1.5 GiB`. */
export function formatBytes(bytes: number): string {
  let n = bytes;
  let u = 0;
  while (n >= 1024 && u < UNITS.length - 1) {
    n /= 1024;
    u++;
  }
  return `${Math.round(n * 100) / 100} ${UNITS[u]}`;
}
