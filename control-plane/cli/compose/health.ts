/**
 * `healthcheck:` to berth's health probe (liveness; a task is ready only while it passes, as a
 * Swarm task is only healthy then). test `["CMD", ...]` is an exec probe, `["CMD-SHELL", "..."]`
 * or a plain string runs under `sh -c`, `["NONE"]` or `disable: true` means none. Docker's
 * timing defaults (30s, 30s, 3 retries) are written out, since berth's differ. A start_period
 * becomes a startup probe that allows its length in failures, as Docker does not count failures
 * during it.
 */
import type { HealthSpec } from '../../objects/types.js';
import { checkKeys, isMap, type Diagnostics } from './diagnostics.js';
import { describe, readInt, readSeconds } from './values.js';

const DOCKER_INTERVAL_SECONDS = 30;
const DOCKER_TIMEOUT_SECONDS = 30;
const DOCKER_RETRIES = 3;
const MAX_FAILURE_THRESHOLD = 100;
const MAX_PROBE_SECONDS = 3600;

/** Probes is what a healthcheck becomes: a health probe and, with start_period, a startup probe. */
export interface Probes {
  health?: HealthSpec;
  startup?: HealthSpec;
}

/** convertHealthcheck translates a service's `healthcheck:` mapping. */
export function convertHealthcheck(v: unknown, path: string, diag: Diagnostics): Probes {
  if (!isMap(v)) {
    diag.error(path, `must be a mapping with test, interval, timeout, retries, start_period, got ${describe(v)}`);
    return {};
  }
  checkKeys(v, path, diag, ['test', 'interval', 'timeout', 'retries', 'start_period', 'start_interval', 'disable']);
  if (v.disable === true || v.disable === 'true') return {};
  if (v.test === undefined) {
    diag.note(path, 'without test compose uses the image\'s HEALTHCHECK, which berth does not read; no health probe is set');
    return {};
  }
  const command = testCommand(v.test, `${path}.test`, diag);
  if (command === undefined) return {};
  const interval = v.interval === undefined ? DOCKER_INTERVAL_SECONDS : readSeconds(v.interval, `${path}.interval`, diag, 1, MAX_PROBE_SECONDS);
  const timeout = v.timeout === undefined ? DOCKER_TIMEOUT_SECONDS : readSeconds(v.timeout, `${path}.timeout`, diag, 1, MAX_PROBE_SECONDS);
  let retries = v.retries === undefined ? DOCKER_RETRIES : readInt(v.retries, `${path}.retries`, diag, 0, MAX_FAILURE_THRESHOLD);
  if (retries === 0) retries = DOCKER_RETRIES; // Docker reads 0 as its default
  const health: HealthSpec = { exec: { command }, intervalSeconds: interval, timeoutSeconds: timeout, failureThreshold: retries };
  const probes: Probes = { health };
  const startPeriod = v.start_period === undefined ? 0 : readSeconds(v.start_period, `${path}.start_period`, diag);
  const startInterval = v.start_interval === undefined ? interval : readSeconds(v.start_interval, `${path}.start_interval`, diag, 1, MAX_PROBE_SECONDS);
  if (startPeriod && startInterval && retries) {
    let threshold = Math.ceil(startPeriod / startInterval) + retries;
    if (threshold > MAX_FAILURE_THRESHOLD) {
      diag.note(`${path}.start_period`, `allows ${threshold} failed probes; berth's startup probe allows at most ${MAX_FAILURE_THRESHOLD}`);
      threshold = MAX_FAILURE_THRESHOLD;
    }
    probes.startup = { exec: { command }, intervalSeconds: startInterval, timeoutSeconds: timeout, failureThreshold: threshold };
  }
  return probes;
}

/** testCommand reads `test:` into the command to exec; undefined for NONE or a bad value (reported). */
function testCommand(test: unknown, path: string, diag: Diagnostics): string[] | undefined {
  if (typeof test === 'string') return test === '' ? undefined : ['sh', '-c', test];
  if (!Array.isArray(test) || test.length === 0 || !test.every((t) => typeof t === 'string')) {
    diag.error(path, `must be a string or a list like ["CMD", "curl", "-f", "http://localhost"], got ${describe(test)}`);
    return undefined;
  }
  const [kind, ...args] = test as string[];
  switch (kind) {
    case 'NONE':
      return undefined;
    case 'CMD':
      if (args.length > 0) return args;
      break;
    case 'CMD-SHELL':
      if (args.length > 0) return ['sh', '-c', args.join(' ')];
      break;
    default:
      diag.error(path, `must start with "CMD", "CMD-SHELL" or "NONE", got "${kind}"`);
      return undefined;
  }
  diag.error(path, `"${kind}" needs a command after it`);
  return undefined;
}
