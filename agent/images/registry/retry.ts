/**
 * Bounded retries with exponential backoff for registry traffic. Only failures that another try
 * can fix (network errors, 5xx, 429, a body cut short) are retried; verdicts (401, 404, a digest
 * mismatch) are final at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentError, messageOf } from '../../errors.js';
import type { Logger } from '../../../common/log.js';

/** PULL_ATTEMPTS is how many times one request is tried before the pull fails. */
export const PULL_ATTEMPTS = 5;
/** BACKOFF_BASE_MS is the first pause; each later one doubles up to BACKOFF_MAX_MS. */
export const BACKOFF_BASE_MS = 100;
/** BACKOFF_MAX_MS caps one pause between attempts. */
export const BACKOFF_MAX_MS = 2_000;

/** RetryableError marks a failure worth another attempt; `cause` keeps the original. */
export class RetryableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RetryableError';
  }
}

/** backoffMs is the pause before attempt n+1 (n ≥ 1), with up to 20 % jitter against herds. */
export function backoffMs(n: number, random: () => number = Math.random): number {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (n - 1));
  return Math.round(base * (1 + random() * 0.2));
}

/**
 * withRetries runs fn until it succeeds, throws a non-retryable error, or PULL_ATTEMPTS tries
 * fail; the last retryable failure becomes BERTH_ERR_IMAGE_PULL_FAILED naming `what`.
 */
export async function withRetries<T>(what: string, fn: (attempt: number) => Promise<T>, log?: Logger, attempts = PULL_ATTEMPTS): Promise<T> {
  let last: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!(err instanceof RetryableError)) throw err;
      last = err;
      if (attempt === attempts) break;
      const pause = backoffMs(attempt);
      log?.warn('registry request failed; retrying', { what, attempt, pauseMs: pause, error: messageOf(err) });
      await sleep(pause);
    }
  }
  throw new AgentError('BERTH_ERR_IMAGE_PULL_FAILED', `${what}: failed after ${attempts} attempts: ${messageOf(last)}`, { cause: last });
}
