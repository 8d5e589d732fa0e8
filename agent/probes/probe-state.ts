/**
 * The state of one check of one container, as an explicit machine over probe results (Kubernetes
 * semantics): `successThreshold` consecutive passes make it ready, `failureThreshold` consecutive
 * failures make it not ready and, for a health or startup check, unhealthy (the reconciler then
 * restarts the container); a readiness check (nextReadiness) is never unhealthy and comes back.
 * How the three checks of a container combine is probe-set.ts.
 */
/**
 * Probe is how a check looks at a container: a tagged union (as the wire's oneof), so every
 * switch over the kinds is checked for exhaustiveness.
 */
export type Probe =
  | { $case: 'http'; value: { path: string; port: number } }
  | { $case: 'tcp'; value: { port: number } }
  | { $case: 'exec'; value: { command: string[] } };

/** HealthCheck is one check of a container (health, readiness or startup); 0 in a number means its default (probeSettings). */
export interface HealthCheck {
  /** probe is undefined for a check without a kind, which always passes. */
  probe?: Probe;
  intervalSeconds: number;
  timeoutSeconds: number;
  failureThreshold: number;
  initialDelaySeconds: number;
  successThreshold: number;
}

/** PROBE_INTERVAL_DEFAULT_MS is the time between probes when the check gives none (Kubernetes: 10 s). */
export const PROBE_INTERVAL_DEFAULT_MS = 10_000;
/** PROBE_TIMEOUT_DEFAULT_MS is one probe's limit when the check gives none. */
export const PROBE_TIMEOUT_DEFAULT_MS = 1_000;
/** PROBE_FAILURE_THRESHOLD_DEFAULT consecutive failures make a container unhealthy. */
export const PROBE_FAILURE_THRESHOLD_DEFAULT = 3;

/** ProbeSettings is a health check with its defaults filled in. */
export interface ProbeSettings {
  intervalMs: number;
  timeoutMs: number;
  failureThreshold: number;
  successThreshold: number;
  initialDelayMs: number;
}

/** probeSettings fills a health check's defaults (0 means "default"). */
export function probeSettings(h: HealthCheck): ProbeSettings {
  return {
    intervalMs: h.intervalSeconds > 0 ? h.intervalSeconds * 1000 : PROBE_INTERVAL_DEFAULT_MS,
    timeoutMs: h.timeoutSeconds > 0 ? h.timeoutSeconds * 1000 : PROBE_TIMEOUT_DEFAULT_MS,
    failureThreshold: h.failureThreshold > 0 ? h.failureThreshold : PROBE_FAILURE_THRESHOLD_DEFAULT,
    successThreshold: h.successThreshold > 0 ? h.successThreshold : 1,
    initialDelayMs: Math.max(0, h.initialDelaySeconds) * 1000,
  };
}

/** ProbeResult is one probe's outcome; message says what was seen, for people. */
export interface ProbeResult {
  ok: boolean;
  message: string;
}

/** HealthState is the machine's state: counters of consecutive outcomes and the verdicts. */
export interface HealthState {
  ready: boolean;
  unhealthy: boolean;
  successes: number;
  failures: number;
}

/** initialHealth is a freshly started container: not ready until its check passes. */
export const initialHealth: HealthState = { ready: false, unhealthy: false, successes: 0, failures: 0 };

/** nextHealth folds one probe result into the state; an unhealthy state stays so (the container is restarted). */
export function nextHealth(s: HealthState, ok: boolean, t: Pick<ProbeSettings, 'failureThreshold' | 'successThreshold'>): HealthState {
  if (s.unhealthy) return s;
  if (ok) {
    const successes = s.successes + 1;
    return { ready: s.ready || successes >= t.successThreshold, unhealthy: false, successes, failures: 0 };
  }
  const failures = s.failures + 1;
  const unhealthy = failures >= t.failureThreshold;
  // One failure does not take a ready container out of rotation; the threshold does (Kubernetes).
  return { ready: s.ready && !unhealthy, unhealthy, successes: 0, failures };
}

/**
 * nextReadiness folds one result into a readiness check's state: failureThreshold consecutive
 * failures take the container out of rotation, successThreshold consecutive passes bring it
 * back; it is never unhealthy, because a readiness check must never restart a container.
 */
export function nextReadiness(s: HealthState, ok: boolean, t: Pick<ProbeSettings, 'failureThreshold' | 'successThreshold'>): HealthState {
  if (ok) {
    const successes = s.successes + 1;
    return { ready: s.ready || successes >= t.successThreshold, unhealthy: false, successes, failures: 0 };
  }
  const failures = s.failures + 1;
  return { ready: s.ready && failures < t.failureThreshold, unhealthy: false, successes: 0, failures };
}
