/**
 * The probe machine of one container (agent/probes/probe-set.ts), table-driven: startup holds the
 * other checks and restarts past its threshold, readiness decides ready and never restarts,
 * liveness restarts, and a template with only `health` behaves as before readiness existed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  activeProbes, initialHealth, initialProbeSet, nextHealth, nextProbeSet, probeSettings, verdictOf,
  type ContainerChecks, type HealthCheck, type HealthState, type ProbeKind, type ProbeSetState, type ProbeVerdict,
} from '../../agent/probes/index.js';
import { mulberry32 } from '../support/prng.js';

const check = (failureThreshold: number, successThreshold = 1): HealthCheck => ({
  probe: { $case: 'exec', value: { command: ['true'] } }, intervalSeconds: 1, timeoutSeconds: 1, failureThreshold, successThreshold, initialDelaySeconds: 0,
});

const KIND: Record<string, ProbeKind> = { S: 'startup', L: 'liveness', R: 'readiness' };

// fmt names a verdict and the checks that run next: `started ready [liveness readiness]`.
function fmt(c: ContainerChecks, s: ProbeSetState): string {
  const v: ProbeVerdict = verdictOf(c, s);
  return `${v.started ? 'started' : 'starting'} ${v.ready ? 'ready' : 'unready'}${v.restart ? ` restart:${v.restart}` : ''} [${activeProbes(c, s).join(' ')}]`;
}

interface Row {
  name: string;
  checks: ContainerChecks;
  /** steps: a probe result (`S1` startup passed, `R0` readiness failed, ...) and the state it leads to. */
  steps: Array<[string, string]>;
  initial: string;
}

const ROWS: Row[] = [
  {
    name: 'no checks: started and ready once running, nothing to run',
    checks: {}, initial: 'started ready []', steps: [],
  },
  {
    name: 'health only: passing makes ready (as before readiness existed), one failure keeps it, the threshold restarts',
    checks: { liveness: check(2) }, initial: 'started unready [liveness]',
    steps: [['L1', 'started ready [liveness]'], ['L0', 'started ready [liveness]'], ['L1', 'started ready [liveness]'], ['L0', 'started ready [liveness]'],
      ['L0', 'started unready restart:liveness []'], ['L1', 'started unready restart:liveness []']],
  },
  {
    name: 'readiness never restarts: past its threshold the container is unready until it passes again',
    checks: { readiness: check(2) }, initial: 'started unready [readiness]',
    steps: [['R1', 'started ready [readiness]'], ['R0', 'started ready [readiness]'], ['R0', 'started unready [readiness]'],
      ['R0', 'started unready [readiness]'], ['R0', 'started unready [readiness]'], ['R1', 'started ready [readiness]']],
  },
  {
    name: 'readiness with successThreshold 2 needs two passes in a row to come back',
    checks: { readiness: check(1, 2) }, initial: 'started unready [readiness]',
    steps: [['R1', 'started unready [readiness]'], ['R1', 'started ready [readiness]'], ['R0', 'started unready [readiness]'],
      ['R1', 'started unready [readiness]'], ['R0', 'started unready [readiness]'], ['R1', 'started unready [readiness]'], ['R1', 'started ready [readiness]']],
  },
  {
    name: 'with both, readiness decides ready and liveness alone restarts',
    checks: { liveness: check(2), readiness: check(1) }, initial: 'started unready [liveness readiness]',
    steps: [['L1', 'started unready [liveness readiness]'], ['R1', 'started ready [liveness readiness]'], ['R0', 'started unready [liveness readiness]'],
      ['L1', 'started unready [liveness readiness]'], ['R1', 'started ready [liveness readiness]'], ['L0', 'started ready [liveness readiness]'],
      ['L0', 'started unready restart:liveness []'], ['R1', 'started unready restart:liveness []']],
  },
  {
    name: 'startup holds: liveness and readiness results count for nothing until startup passes once, then startup never runs again',
    checks: { startup: check(3), liveness: check(1), readiness: check(1) }, initial: 'starting unready [startup]',
    steps: [['L0', 'starting unready [startup]'], ['R1', 'starting unready [startup]'], ['S0', 'starting unready [startup]'], ['S0', 'starting unready [startup]'],
      ['S1', 'started unready [liveness readiness]'], ['S0', 'started unready [liveness readiness]'], ['R1', 'started ready [liveness readiness]'],
      ['S0', 'started ready [liveness readiness]'], ['S0', 'started ready [liveness readiness]']],
  },
  {
    name: 'startup failures that do not reach the threshold before a pass only delay the start',
    checks: { startup: check(3), readiness: check(1) }, initial: 'starting unready [startup]',
    steps: [['S0', 'starting unready [startup]'], ['S1', 'started unready [readiness]']],
  },
  {
    name: 'startup failing past its threshold: restart, nothing runs',
    checks: { startup: check(3), liveness: check(1) }, initial: 'starting unready [startup]',
    steps: [['S0', 'starting unready [startup]'], ['S0', 'starting unready [startup]'], ['S0', 'starting unready restart:startup []'],
      ['S1', 'starting unready restart:startup []'], ['L1', 'starting unready restart:startup []']],
  },
  {
    name: 'startup alone: ready as soon as it has passed',
    checks: { startup: check(1) }, initial: 'starting unready [startup]',
    steps: [['S1', 'started ready []']],
  },
  {
    name: 'startup then health only: health passing makes ready, as without startup',
    checks: { startup: check(2), liveness: check(2) }, initial: 'starting unready [startup]',
    steps: [['S1', 'started unready [liveness]'], ['L1', 'started ready [liveness]'], ['L0', 'started ready [liveness]'], ['L0', 'started unready restart:liveness []']],
  },
  {
    name: 'a check without a probe kind does not run (it always passes)',
    checks: { startup: { ...check(1), probe: undefined }, readiness: { ...check(1), probe: undefined } }, initial: 'started ready []', steps: [],
  },
];

test('the probe machine: startup holds, readiness never restarts, liveness restarts, health-only unchanged', () => {
  for (const row of ROWS) {
    let s = initialProbeSet(row.checks);
    assert.equal(fmt(row.checks, s), row.initial, `${row.name}: initial state`);
    row.steps.forEach(([event, want], i) => {
      s = nextProbeSet(row.checks, s, KIND[event[0]!]!, event[1] === '1');
      assert.equal(fmt(row.checks, s), want, `${row.name}: after step ${i + 1} (${row.steps.slice(0, i + 1).map(([e]) => e).join(' ')})`);
    });
  }
});

test('a template with only health is ready and restarted exactly as the single health machine decided before readiness existed', () => {
  const rand = mulberry32(12);
  for (let trial = 0; trial < 300; trial++) {
    const failureThreshold = 1 + Math.floor(rand() * 4);
    const successThreshold = 1 + Math.floor(rand() * 3);
    const checks: ContainerChecks = { liveness: check(failureThreshold, successThreshold) };
    const settings = probeSettings(checks.liveness!);
    let s = initialProbeSet(checks);
    let old: HealthState = initialHealth;
    const seq: boolean[] = [];
    for (let i = 0; i < 20; i++) {
      const ok = rand() < 0.6;
      seq.push(ok);
      s = nextProbeSet(checks, s, 'liveness', ok);
      old = nextHealth(old, ok, settings);
      const v = verdictOf(checks, s);
      const where = `thresholds ${failureThreshold}/${successThreshold}, results ${seq.map((b) => (b ? 1 : 0)).join('')}`;
      assert.equal(v.ready, old.ready, `${where}: ready expected ${old.ready}, seen ${v.ready}`);
      assert.equal(v.restart === 'liveness', old.unhealthy, `${where}: restart expected ${old.unhealthy}, seen ${v.restart}`);
    }
  }
});
