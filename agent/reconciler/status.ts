/** Task status as the agent reports it, and the phase machine the reconciler follows. */
import type { AgentPhase, TaskStatus } from '../../common/task-status.js';
import type { TaskRef } from './task.js';

/**
 * TaskStatusView is one task's status as this agent knows it: the shared TaskStatus (common/),
 * named by its task, holding only phases the agent drives and none of the fields the control
 * plane keeps for itself (readySince, replaceAfter).
 */
export interface TaskStatusView extends TaskRef, Omit<TaskStatus, 'phase' | 'readySince' | 'replaceAfter'> {
  phase: AgentPhase;
}

// Which phases each phase may move to; 'none' is a task the reconciler has not reported yet.
const ALLOWED: Record<AgentPhase | 'none', readonly AgentPhase[]> = {
  none: ['preparing', 'running', 'succeeded', 'failed', 'stopped'],
  // preparing -> preparing carries pull progress and pull back-off reasons.
  preparing: ['preparing', 'starting', 'failed', 'stopped'],
  starting: ['running', 'failed', 'stopped'],
  running: ['running', 'succeeded', 'failed', 'stopped'],
  // A task set back to running goes through preparing again (restarts stay in running: restart.ts).
  succeeded: ['preparing', 'stopped'],
  failed: ['preparing', 'failed', 'stopped'],
  stopped: ['preparing', 'stopped'],
};

/** canTransition tells whether a task may move from `from` (undefined: never reported) to `to`. */
export function canTransition(from: AgentPhase | undefined, to: AgentPhase): boolean {
  return ALLOWED[from ?? 'none'].includes(to);
}

/** exitReason maps how a container ended to a status reason. */
export function exitReason(exitCode: number, oomKilled: boolean): string {
  if (oomKilled) return 'OOMKilled';
  return exitCode === 0 ? 'Completed' : 'Error';
}
