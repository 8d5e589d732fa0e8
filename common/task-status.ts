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
  /**
   * ready is reported by the agent: running, started, and its readiness check passes; without a
   * readiness check its health check decides (templates that predate readiness keep their
   * meaning); with neither, running and started is ready. Only ready tasks are endpoints.
   */
  ready?: boolean;
  /** started is reported by the agent: running and its startup check has passed once (no startup check: running). */
  started?: boolean;
  /** lastProbe is the health (liveness) check's last outcome as the agent saw it, for people. */
  lastProbe?: string;
  /** lastStartupProbe / lastReadinessProbe are the startup and readiness checks' last outcomes, for people. */
  lastStartupProbe?: string;
  lastReadinessProbe?: string;
}

/** AgentPhase is a phase the agent itself reports. */
export type AgentPhase = Exclude<TaskPhase, 'pending' | 'assigned' | 'lost'>;

// Every phase, classified. A mapped type over the union rather than a list: a phase added to
// TaskPhase does not compile until it says whether tasks leave it, and reportedByAgent must agree
// with AgentPhase, so neither set below can silently miss a phase.
const PHASES: { [P in TaskPhase]: { terminal: boolean; reportedByAgent: P extends AgentPhase ? true : false } } = {
  pending: { terminal: false, reportedByAgent: false },
  assigned: { terminal: false, reportedByAgent: false },
  preparing: { terminal: false, reportedByAgent: true },
  starting: { terminal: false, reportedByAgent: true },
  running: { terminal: false, reportedByAgent: true },
  succeeded: { terminal: true, reportedByAgent: true },
  failed: { terminal: true, reportedByAgent: true },
  lost: { terminal: true, reportedByAgent: false },
  stopped: { terminal: true, reportedByAgent: true },
};
const ALL_PHASES = Object.keys(PHASES) as TaskPhase[];

/** AGENT_PHASES lists every AgentPhase, for checking what arrives over the wire. */
export const AGENT_PHASES: ReadonlySet<string> = new Set<string>(ALL_PHASES.filter((p) => PHASES[p].reportedByAgent));

/** TERMINAL_PHASES are phases a task never leaves (a restart policy restarts a container while its task stays running). */
export const TERMINAL_PHASES: ReadonlySet<TaskPhase> = new Set(ALL_PHASES.filter((p) => PHASES[p].terminal));

/** isTerminal tells whether phase is one a task never leaves. */
export function isTerminal(phase: TaskPhase | undefined): boolean {
  return phase !== undefined && TERMINAL_PHASES.has(phase);
}
