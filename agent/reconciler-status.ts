/** Task status as the agent reports it, and the phase machine the reconciler follows. */

/** TaskPhase is the lifecycle of one task on this node (DESIGN.md, "Task phases"). */
export type TaskPhase = 'preparing' | 'starting' | 'running' | 'succeeded' | 'failed' | 'stopped';

/** TaskStatusView is one task's status as sent up the session. */
export interface TaskStatusView {
  namespace: string;
  name: string;
  uid: string;
  phase: TaskPhase;
  containerId?: string;
  pid?: number;
  exitCode?: number;
  reason?: string;
  message?: string;
  restarts: number;
  startedAt?: string;
  finishedAt?: string;
  imageDigest?: string;
  /** pullBytesDone / pullBytesTotal report image progress while preparing. */
  pullBytesDone?: number;
  pullBytesTotal?: number;
  /** ready is true while running and the health check (if any) passes. */
  ready?: boolean;
  /** lastProbe is the health check's last outcome, for people. */
  lastProbe?: string;
  /** ip is the container's address on the node's bridge, while running. */
  ip?: string;
}

/** TERMINAL_PHASES are phases a task does not leave on its own: a restart policy restarts a container while the task stays running. */
export const TERMINAL_PHASES: ReadonlySet<TaskPhase> = new Set(['succeeded', 'failed', 'stopped']);

// Which phases each phase may move to; 'none' is a task the reconciler has not reported yet.
const ALLOWED: Record<TaskPhase | 'none', readonly TaskPhase[]> = {
  none: ['preparing', 'running', 'succeeded', 'failed', 'stopped'],
  // preparing -> preparing carries pull progress and pull back-off reasons.
  preparing: ['preparing', 'starting', 'failed', 'stopped'],
  starting: ['running', 'failed', 'stopped'],
  running: ['running', 'succeeded', 'failed', 'stopped'],
  // A task set back to running goes through preparing again (restarts stay in running: reconciler-restart.ts).
  succeeded: ['preparing', 'stopped'],
  failed: ['preparing', 'failed', 'stopped'],
  stopped: ['preparing', 'stopped'],
};

/** canTransition tells whether a task may move from `from` (undefined: never reported) to `to`. */
export function canTransition(from: TaskPhase | undefined, to: TaskPhase): boolean {
  return ALLOWED[from ?? 'none'].includes(to);
}

/** exitReason maps how a container ended to a status reason. */
export function exitReason(exitCode: number, oomKilled: boolean): string {
  if (oomKilled) return 'OOMKilled';
  return exitCode === 0 ? 'Completed' : 'Error';
}
