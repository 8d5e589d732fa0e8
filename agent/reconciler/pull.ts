/**
 * Image-pull retries for one task: consecutive failures, the exponential back-off between pulls
 * (Kubernetes: ErrImagePull, then ImagePullBackOff up to 5 minutes) and the retry timer.
 */
import { AgentError, messageOf, reasonOf } from '../errors.js';
import { DeadlineTimer } from '../deadline-timer.js';

/** PULL_BACKOFF_INITIAL_MS is the wait after a task's first failed pull; it doubles per failure. */
export const PULL_BACKOFF_INITIAL_MS = 1_000;
/** PULL_BACKOFF_MAX_MS caps the wait between pulls (Kubernetes: 5 minutes). */
export const PULL_BACKOFF_MAX_MS = 5 * 60_000;
/** PULL_PROGRESS_INTERVAL_MS throttles progress reports: at most two a second per task. */
export const PULL_PROGRESS_INTERVAL_MS = 500;

/** pullBackoffMs is the wait after `failures` consecutive failed pulls (1 s, 2 s, 4 s ... 5 min). */
export function pullBackoffMs(failures: number, initialMs = PULL_BACKOFF_INITIAL_MS, maxMs = PULL_BACKOFF_MAX_MS): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(failures - 1, 0), 30));
}

/** PullFailure is what a failed pull means for the task's status and the next attempt. */
export interface PullFailure {
  reason: string;
  message: string;
  failures: number;
  delayMs: number;
}

/** PullRetry tracks one task's failed pulls; `retry` is called when the next pull may start. */
export class PullRetry {
  private failures = 0;
  private readonly next: DeadlineTimer;

  constructor(retry: () => void, private readonly initialMs?: number, private readonly maxMs?: number) {
    this.next = new DeadlineTimer(retry);
  }

  /** failed counts a failure, arms the retry and says how to report it. */
  failed(err: unknown): PullFailure {
    this.failures++;
    const delayMs = pullBackoffMs(this.failures, this.initialMs, this.maxMs);
    const never = err instanceof AgentError && err.code === 'BERTH_ERR_IMAGE_NEVER_PULL';
    const reason = this.failures === 1 ? (never ? 'ErrImageNeverPull' : 'ErrImagePull') : 'ImagePullBackOff';
    const wait = delayMs >= 1000 ? `${Math.round(delayMs / 1000)}s` : `${delayMs}ms`;
    this.next.set(delayMs);
    return { reason, message: `${messageOf(err)} (${reasonOf(err, 'ImageInvalid')}; retrying in ${wait})`, failures: this.failures, delayMs };
  }

  /** waiting is true while the back-off forbids a pull. */
  waiting(): boolean {
    return this.next.pending();
  }

  /** reset forgets the failures after a successful pull (or when the task goes away). */
  reset(): void {
    this.failures = 0;
    this.next.clear();
  }
}
