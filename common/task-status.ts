/**
 * A task's phase and status, one definition for the control plane, the agent and the CLI. The
 * agent reports the phases it drives (AgentPhase); the control plane adds pending, assigned
 * (scheduler) and lost (node lifecycle).
 */

/** TaskPhase is the lifecycle of one replica (DESIGN.md, "Task phases"). */
export type TaskPhase =
  | 'pending' | 'assigned' | 'preparing' | 'starting' | 'running'
  | 'succeeded' | 'failed' | 'lost' | 'stopped';

/** TaskStatus is written by the agent (through the gateway) and by the scheduler (pending/assigned). */
export interface TaskStatus {
  phase: TaskPhase;
  containerId?: string;
  pid?: number;
  ip?: string;
  exitCode?: number;
  reason?: string;
  message?: string;
  restarts: number;
  startedAt?: string;
  finishedAt?: string;
  imageDigest?: string;
  /** pullBytesDone / pullBytesTotal report image progress while the task is preparing. */
  pullBytesDone?: number;
  pullBytesTotal?: number;
  /** readySince is when the control plane saw the task become ready (rollouts' minReadySeconds count from it, across failovers). */
  readySince?: string;
  /** replaceAfter (failed tasks) is when the service controller may replace it: the service's failure backoff, kept across failovers. */
  replaceAfter?: string;
  /** ready is reported by the agent: running and its health check passes (no check: running). */
  ready?: boolean;
  /** lastProbe is the health check's last outcome as the agent saw it, for people. */
  lastProbe?: string;
}

/** AgentPhase is a phase the agent itself reports. */
export type AgentPhase = Exclude<TaskPhase, 'pending' | 'assigned' | 'lost'>;

/** AGENT_PHASES lists every AgentPhase, for checking what arrives over the wire. */
export const AGENT_PHASES: ReadonlySet<string> = new Set<AgentPhase>(['preparing', 'starting', 'running', 'succeeded', 'failed', 'stopped']);

/** TERMINAL_PHASES are phases a task never leaves (a restart policy restarts a container while its task stays running). */
export const TERMINAL_PHASES: ReadonlySet<TaskPhase> = new Set(['succeeded', 'failed', 'lost', 'stopped']);

/** isTerminal tells whether phase is one a task never leaves. */
export function isTerminal(phase: TaskPhase | undefined): boolean {
  return phase !== undefined && TERMINAL_PHASES.has(phase);
}
