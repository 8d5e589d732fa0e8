import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { planRollout, strategyOf, type PlanTask, type Strategy } from '../../control-plane/controllers/rollout-plan.js';
import { mulberry32 as rng } from '../support/prng.js';

const strat = (maxSurge: number, maxUnavailable: number): Strategy => strategyOf({ maxSurge, maxUnavailable });

function tasks(spec: string): PlanTask[] {
  // spec: one letter per task: O old available, o old not available, U updated available, u updated not available
  return [...spec].map((c, i) => ({
    name: `${c}${i}`,
    updated: c === 'U' || c === 'u',
    available: c === 'O' || c === 'U',
    running: c === 'O' || c === 'U',
    createdAt: `2026-01-01T00:00:${String(10 + i)}Z`,
  }));
}

describe('strategyOf', () => {
  it('fills the defaults: surge 1, unavailable 0, no auto rollback', () => {
    assert.deepEqual(strategyOf(undefined), { maxSurge: 1, maxUnavailable: 0, minReadySeconds: 0, progressDeadlineSeconds: 600, autoRollback: false });
  });
  it('turns surge 0 + unavailable 0 (which could never progress) into surge 1', () => {
    assert.equal(strategyOf({ maxSurge: 0, maxUnavailable: 0 }).maxSurge, 1);
  });
});

describe('planRollout (table)', () => {
  const cases: { name: string; replicas: number; s: Strategy; tasks: string; stop: string[]; create: number }[] = [
    { name: 'steady state: nothing to do', replicas: 3, s: strat(1, 0), tasks: 'UUU', stop: [], create: 0 },
    { name: 'scale up creates the missing updated tasks', replicas: 5, s: strat(1, 0), tasks: 'UUU', stop: [], create: 2 },
    { name: 'scale down stops the worst updated tasks first', replicas: 2, s: strat(1, 0), tasks: 'UuU', stop: ['u1'], create: 0 },
    { name: 'rollout start with surge 1: one new task, no old stopped', replicas: 3, s: strat(1, 0), tasks: 'OOO', stop: [], create: 1 },
    { name: 'surge used up while the new task is not ready: wait', replicas: 3, s: strat(1, 0), tasks: 'OOOu', stop: [], create: 0 },
    { name: 'new task ready: one old (the newest) goes, and (total still 4) no create yet', replicas: 3, s: strat(1, 0), tasks: 'OOOU', stop: ['O2'], create: 0 },
    { name: 'maxUnavailable 1, surge 0: stop one old first', replicas: 3, s: strat(0, 1), tasks: 'OOO', stop: ['O2'], create: 0 },
    { name: 'an unavailable old task is replaced freely', replicas: 3, s: strat(1, 0), tasks: 'oOOU', stop: ['o0'], create: 0 },
    { name: 'all updated and available: every old task goes', replicas: 2, s: strat(1, 0), tasks: 'OUU', stop: ['O0'], create: 0 },
    { name: 'scale down during a rollout keeps availability', replicas: 2, s: strat(1, 0), tasks: 'OOOOu', stop: ['O2', 'O3'], create: 0 },
    { name: 'scale up during a rollout respects the surge', replicas: 5, s: strat(1, 0), tasks: 'OOOu', stop: [], create: 2 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const p = planRollout(c.replicas, c.s, tasks(c.tasks));
      assert.deepEqual({ stop: [...p.stop].sort(), create: p.create }, { stop: [...c.stop].sort(), create: c.create }, `tasks ${c.tasks}, replicas ${c.replicas}`);
    });
  }
  it('halted: old tasks stay; the failed revision\'s surge task goes', () => {
    const p = planRollout(3, strat(1, 0), tasks('OOOu'), true);
    assert.deepEqual(p, { stop: ['u3'], create: 0, halted: true });
  });
  it('halted: a lost slot is refilled', () => {
    assert.equal(planRollout(3, strat(1, 0), tasks('OO'), true).create, 1);
  });
});


type SimTask = PlanTask;

/** simulate runs planner steps interleaved with random readiness events; returns the final tasks. */
function simulate(seed: number, replicas: number, s: Strategy, unreadyEvents: boolean, rounds: number): { tasks: SimTask[]; violations: string[] } {
  const rand = rng(seed);
  let n = 0;
  const mk = (updated: boolean, available: boolean): SimTask => ({ name: `t${n++}`, updated, available, running: available, createdAt: new Date(1_700_000_000_000 + n * 1000).toISOString() });
  let ts: SimTask[] = Array.from({ length: replicas }, () => mk(false, true));
  const minAvailable = replicas - s.maxUnavailable;
  const violations: string[] = [];
  for (let round = 0; round < rounds; round++) {
    // events: some pending tasks become available; maybe one available task becomes unready
    for (const t of ts) if (!t.available && rand() < 0.4) { t.available = true; t.running = true; }
    if (unreadyEvents && rand() < 0.2 && ts.length > 0) {
      const t = ts[Math.floor(rand() * ts.length)]!;
      t.available = false;
    }
    const before = ts.filter((t) => t.available).length;
    const plan = planRollout(replicas, s, ts);
    ts = ts.filter((t) => !plan.stop.includes(t.name));
    const afterStops = ts.filter((t) => t.available).length;
    if (afterStops < Math.min(before, minAvailable)) violations.push(`seed ${seed} round ${round}: available ${before} -> ${afterStops} < ${minAvailable}`);
    for (let i = 0; i < plan.create; i++) ts.push(mk(true, false));
    if (ts.length > replicas + s.maxSurge) violations.push(`seed ${seed} round ${round}: ${ts.length} desired running > ${replicas}+${s.maxSurge}`);
    if (!unreadyEvents && afterStops < minAvailable) violations.push(`seed ${seed} round ${round}: only ${afterStops} available, floor ${minAvailable}`);
  }
  return { tasks: ts, violations };
}

describe('planRollout (property: random readiness sequences)', () => {
  const SEEDS = 200;
  const ROUNDS = 60;
  it('never more than replicas+maxSurge desired running; stops never take availability below the floor', () => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = rng(seed * 7919);
      const replicas = 1 + Math.floor(r() * 8);
      const s = strat(Math.floor(r() * 3), Math.floor(r() * Math.min(3, replicas)));
      const { violations } = simulate(seed, replicas, s, true, ROUNDS);
      assert.deepEqual(violations, [], `replicas ${replicas}, surge ${s.maxSurge}, unavailable ${s.maxUnavailable}`);
    }
  });
  it('with only ready events: never below replicas-maxUnavailable available, and the rollout converges', () => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = rng(seed * 104729);
      const replicas = 1 + Math.floor(r() * 8);
      const s = strat(Math.floor(r() * 3), Math.floor(r() * Math.min(3, replicas)));
      const { tasks: end, violations } = simulate(seed, replicas, s, false, ROUNDS);
      assert.deepEqual(violations, []);
      // converge: drain remaining steps with everything ready (bounded)
      let ts = end;
      for (let i = 0; i < 4 * replicas + 4; i++) {
        for (const t of ts) { t.available = true; t.running = true; }
        const p = planRollout(replicas, s, ts);
        ts = ts.filter((t) => !p.stop.includes(t.name));
        for (let k = 0; k < p.create; k++) ts.push({ name: `c${i}-${k}`, updated: true, available: false, running: false, createdAt: new Date().toISOString() });
      }
      assert.equal(ts.length, replicas, `seed ${seed}: ${ts.length} tasks after convergence, want ${replicas}`);
      assert.ok(ts.every((t) => t.updated), `seed ${seed}: old tasks left after convergence`);
    }
  });
});

describe('planRollout (property: scale and update overlap)', () => {
  it('with replicas changing mid-rollout, creates never exceed replicas+maxSurge and it converges to the last replicas', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rand = rng(seed * 31337);
      const s = strat(Math.floor(rand() * 3), Math.floor(rand() * 3));
      let replicas = 1 + Math.floor(rand() * 8);
      let n = 0;
      const mk = (updated: boolean, available: boolean): PlanTask => ({ name: `t${n++}`, updated, available, running: available, createdAt: new Date(1_700_000_000_000 + n * 1000).toISOString() });
      let ts: PlanTask[] = Array.from({ length: replicas }, () => mk(false, true));
      for (let round = 0; round < 80; round++) {
        if (round < 40 && rand() < 0.15) replicas = Math.floor(rand() * 10);
        for (const t of ts) if (!t.available && rand() < 0.5) { t.available = true; t.running = true; }
        const p = planRollout(replicas, s, ts);
        ts = ts.filter((t) => !p.stop.includes(t.name));
        for (let i = 0; i < p.create; i++) ts.push(mk(true, false));
        if (p.create > 0) assert.ok(ts.length <= replicas + s.maxSurge, `seed ${seed} round ${round}: ${ts.length} tasks > ${replicas}+${s.maxSurge} after creating`);
      }
      for (const t of ts) { t.available = true; t.running = true; }
      const last = planRollout(replicas, s, ts);
      assert.deepEqual([last.stop, last.create, ts.length, ts.every((t) => t.updated)], [[], 0, replicas, true], `seed ${seed}: converged to ${ts.length}/${replicas}`);
    }
  });
});
