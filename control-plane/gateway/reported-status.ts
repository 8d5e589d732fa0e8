/**
 * An agent reports a task's whole status; some fields of it belong to the control plane and
 * must survive the report: when the task became ready (rollouts count minReadySeconds from
 * it) and when a failed task may be replaced (the failure backoff). Both live in etcd so that a
 * new leader continues where the old one stopped.
 */
import type { TaskStatus } from '../objects/types.js';

/** mergeReported is the status to store when reported replaces current at time now (pure). */
export function mergeReported(current: TaskStatus, reported: TaskStatus, now: Date): TaskStatus {
  const out: TaskStatus = { ...reported };
  // Ready since this container became ready: a container restarted in place starts the clock again.
  const sameContainer = current.restarts === reported.restarts && current.startedAt === reported.startedAt;
  if (reported.ready) out.readySince = current.ready && current.readySince && sameContainer ? current.readySince : now.toISOString();
  else delete out.readySince;
  // The backoff stamp belongs to one failure: a task that runs again (restarted in place) drops it.
  if (current.replaceAfter && reported.phase === current.phase) out.replaceAfter = current.replaceAfter;
  else delete out.replaceAfter;
  return out;
}
