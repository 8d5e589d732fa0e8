/**
 * Restart policy: pure decisions the reconciler takes when a container of a task that is still
 * desired running exits. Kubernetes semantics: the task keeps phase `running` while the
 * agent waits to restart it (reason CrashLoopBackOff), so the control plane never sees a terminal
 * `failed` for a crash and its replacement back-off does not fight this one. Only policy `never`
 * (or `on-failure` after a clean exit) lets the task end.
 */

/** RestartPolicyName is what a template may ask for; absent means `always` (Swarm/Kubernetes default for services). */
export type RestartPolicyName = 'always' | 'on-failure' | 'never';

/** RESTART_BACKOFF_DEFAULT_MS is the first wait before a restart when the template gives none. */
export const RESTART_BACKOFF_DEFAULT_MS = 1_000;
/** RESTART_BACKOFF_MAX_DEFAULT_MS caps the doubling wait when the template gives no cap. */
export const RESTART_BACKOFF_MAX_DEFAULT_MS = 60_000;
/** RESTART_RESET_MAX_MS: a container that ran this long is never considered crash-looping (Kubernetes: 10 min). */
export const RESTART_RESET_MAX_MS = 10 * 60_000;

/** RestartSettings is a template's restart policy with its defaults filled in. */
export interface RestartSettings {
  policy: RestartPolicyName;
  backoffMs: number;
  maxBackoffMs: number;
}

/** DEFAULT_RESTART_SETTINGS apply when a template gives no restart policy: always, 1 s doubling to 60 s. */
export const DEFAULT_RESTART_SETTINGS: Readonly<RestartSettings> = Object.freeze({
  policy: 'always', backoffMs: RESTART_BACKOFF_DEFAULT_MS, maxBackoffMs: RESTART_BACKOFF_MAX_DEFAULT_MS,
});

/** restartPolicyName reads a policy name (a template's, or a container's label); anything unknown is `always`. */
export function restartPolicyName(raw: string | undefined): RestartPolicyName {
  return raw === 'never' || raw === 'on-failure' ? raw : 'always';
}

/** ExitFacts is how one run of a container ended. */
export interface ExitFacts {
  exitCode: number;
  oomKilled: boolean;
  /** unhealthy: the agent killed it because its health check failed past the threshold. */
  unhealthy: boolean;
}

/**
 * shouldRestart decides whether an exited container is started again: `always` restarts every
 * exit, `on-failure` a non-zero exit, an OOM kill or an unhealthy kill, `never` nothing, not even
 * after an unhealthy kill (as Kubernetes with restartPolicy Never): the task fails with reason
 * Unhealthy and the service controller replaces it.
 */
export function shouldRestart(policy: RestartPolicyName, exit: ExitFacts): boolean {
  if (exit.unhealthy) return policy !== 'never';
  switch (policy) {
    case 'always': return true;
    case 'on-failure': return exit.exitCode !== 0 || exit.oomKilled;
    case 'never': return false;
  }
}

/** restartBackoffMs is the wait before restart number `crashes` (1-based): backoff, 2·backoff, 4·backoff ... max. */
export function restartBackoffMs(crashes: number, s: Pick<RestartSettings, 'backoffMs' | 'maxBackoffMs'>): number {
  return Math.min(s.maxBackoffMs, s.backoffMs * 2 ** Math.min(Math.max(crashes - 1, 0), 30));
}

/**
 * backoffResetMs is how long a run must last for the next crash to start the back-off over: twice
 * the longest wait (a container that outlives that is not looping), never more than 10 minutes.
 */
export function backoffResetMs(s: Pick<RestartSettings, 'maxBackoffMs'>): number {
  return Math.min(RESTART_RESET_MAX_MS, 2 * s.maxBackoffMs);
}

/** formatDelay renders a wait the way kubectl does: `8s`, `1m4s`, `500ms`. */
export function formatDelay(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
}

/** backoffMessage explains the wait, e.g. `back-off 8s restarting failed container (exit 1)`. */
export function backoffMessage(delayMs: number, exit: ExitFacts, probe?: string): string {
  const why = exit.unhealthy ? `unhealthy container${probe ? ` (${probe})` : ''}`
    : exit.oomKilled ? 'OOM-killed container'
      : exit.exitCode === 0 ? 'completed container (exit 0)' : `failed container (exit ${exit.exitCode})`;
  return `back-off ${formatDelay(delayMs)} restarting ${why}`;
}

/** waitingReason is the status reason while a restart is pending. */
export function waitingReason(exit: ExitFacts): 'Unhealthy' | 'CrashLoopBackOff' {
  return exit.unhealthy ? 'Unhealthy' : 'CrashLoopBackOff';
}
