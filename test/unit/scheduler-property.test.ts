/**
 * Property tests of the pure scheduler over random clusters (seeded, bounded sizes): whatever the
 * input, no node is over-committed, constraints and readiness always hold, spread stays within
 * one task per label value, and the plan is a function of the input alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matches, parseConstraint, type Constraint } from '../../control-plane/objects/constraints.js';
import { schedule } from '../../control-plane/scheduler/schedule.js';
import type { NodeInfo, Plan, Snapshot, TaskRequest } from '../../control-plane/scheduler/types.js';
import { mulberry32 } from '../support/prng.js';

/** CASES is how many random clusters each property is checked on. */
const CASES = 150;
const ZONES = ['a', 'b', 'c', 'd'];
const CONSTRAINTS = ['node.labels.zone == a', 'node.labels.zone != b', 'node.labels.zone in (a, c)', 'node.labels.zone not in (d)',
  'node.labels.gpu == yes', 'node.name != n-3', 'node.labels.rack in (r1, r2)'];


function parse(s: string): Constraint {
  const p = parseConstraint(s);
  if (!p.ok) throw new Error(`bad constraint ${s}: ${p.message}`);
  return p.constraint;
}

interface Case { seed: number; snapshot: Snapshot; tasks: TaskRequest[] }

function randomCase(seed: number, opts: { plenty?: boolean } = {}): Case {
  const rnd = mulberry32(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;
  const nodes: NodeInfo[] = [];
  for (let i = 0; i < int(1, 40); i++) {
    const allocatable = opts.plenty ? { cpu: 1000, memory: 2 ** 40, pids: 1e6 } : { cpu: int(1, 16), memory: int(1, 32) * 2 ** 30, pids: int(100, 4000) };
    const labels: Record<string, string> = { zone: pick(ZONES), rack: `r${int(1, 4)}` };
    if (rnd() < 0.3) labels.gpu = 'yes';
    nodes.push({
      name: `n-${i}`, labels, ready: opts.plenty || rnd() > 0.1, unschedulable: !opts.plenty && rnd() < 0.1, taints: [],
      allocatable,
      allocated: { cpu: allocatable.cpu * rnd() * 0.5, memory: Math.floor(allocatable.memory * rnd() * 0.5), pids: Math.floor(allocatable.pids * rnd() * 0.5) },
      tasksByService: new Map(), hostPorts: new Set(rnd() < 0.2 ? ['8080/tcp'] : []),
    });
  }
  const tasks: TaskRequest[] = [];
  for (let s = 0; s < int(1, 6); s++) {
    const constraints = opts.plenty ? [] : Array.from({ length: int(0, 2) }, () => parse(pick(CONSTRAINTS)));
    const resources = { cpu: int(1, 20) / 10, memory: int(16, 2048) * 2 ** 20, pids: int(1, 300) };
    const spread = opts.plenty || rnd() < 0.5 ? 'node.labels.zone' : undefined;
    const hostPorts = !opts.plenty && rnd() < 0.2 ? ['8080/tcp'] : [];
    for (let r = 0; r < int(1, 30); r++) {
      const name = `svc${s}-${seed.toString(36)}${r}`;
      tasks.push({ key: `tasks/default/svc${s}/${name}`, name, service: `default/svc${s}`, resources, hostPorts, constraints, spread, strategy: rnd() < 0.5 ? 'spread' : 'binpack' });
    }
  }
  return { seed, snapshot: { nodes }, tasks };
}

function byKey(c: Case): Map<string, TaskRequest> {
  return new Map(c.tasks.map((t) => [t.key, t]));
}

test('no node is ever over-committed on cpu, memory or pids, nor given a host port twice', () => {
  for (let seed = 1; seed <= CASES; seed++) {
    const c = randomCase(seed);
    const plan = schedule(c.snapshot, c.tasks);
    const tasks = byKey(c);
    const used = new Map(c.snapshot.nodes.map((n) => [n.name, { ...n.allocated, ports: new Set(n.hostPorts) }]));
    for (const p of plan.placements) {
      const t = tasks.get(p.taskKey)!;
      const u = used.get(p.nodeName)!;
      u.cpu += t.resources.cpu;
      u.memory += t.resources.memory;
      u.pids += t.resources.pids;
      for (const port of t.hostPorts) {
        assert.ok(!u.ports.has(port), `seed ${seed}: host port ${port} given twice on ${p.nodeName}`);
        u.ports.add(port);
      }
    }
    for (const n of c.snapshot.nodes) {
      const u = used.get(n.name)!;
      assert.ok(u.cpu <= n.allocatable.cpu + 1e-9, `seed ${seed}: ${n.name} cpu ${u.cpu} > ${n.allocatable.cpu}`);
      assert.ok(u.memory <= n.allocatable.memory, `seed ${seed}: ${n.name} memory ${u.memory} > ${n.allocatable.memory}`);
      assert.ok(u.pids <= n.allocatable.pids, `seed ${seed}: ${n.name} pids ${u.pids} > ${n.allocatable.pids}`);
    }
    assert.equal(plan.placements.length + plan.unplaced.length, c.tasks.length, `seed ${seed}: every task is placed or explained`);
  }
});

test('placements honour constraints, readiness and cordons; unplaced tasks say why', () => {
  for (let seed = 1; seed <= CASES; seed++) {
    const c = randomCase(seed);
    const plan = schedule(c.snapshot, c.tasks);
    const tasks = byKey(c);
    const nodes = new Map(c.snapshot.nodes.map((n) => [n.name, n]));
    for (const p of plan.placements) {
      const n = nodes.get(p.nodeName)!;
      const t = tasks.get(p.taskKey)!;
      assert.ok(n.ready && !n.unschedulable, `seed ${seed}: ${t.name} on unready or cordoned ${n.name}`);
      for (const con of t.constraints) assert.ok(matches(con, n), `seed ${seed}: ${t.name} on ${n.name} breaks a constraint`);
    }
    for (const u of plan.unplaced) assert.match(u.message, /^0\/\d+ nodes fit/, `seed ${seed}: unplaced message`);
  }
});

test('with room everywhere, each service spreads within one task per zone', () => {
  for (let seed = 1; seed <= CASES; seed++) {
    const c = randomCase(seed, { plenty: true });
    const plan = schedule(c.snapshot, c.tasks);
    assert.equal(plan.unplaced.length, 0, `seed ${seed}: everything fits`);
    const zoneOf = new Map(c.snapshot.nodes.map((n) => [n.name, n.labels.zone!]));
    const zones = new Set(zoneOf.values());
    const tasks = byKey(c);
    const perService = new Map<string, Map<string, number>>();
    for (const p of plan.placements) {
      const svc = tasks.get(p.taskKey)!.service;
      const m = perService.get(svc) ?? new Map([...zones].map((z) => [z, 0]));
      const z = zoneOf.get(p.nodeName)!;
      m.set(z, m.get(z)! + 1);
      perService.set(svc, m);
    }
    for (const [svc, m] of perService) {
      const counts = [...m.values()];
      assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `seed ${seed}: ${svc} zone counts ${JSON.stringify([...m])}`);
    }
  }
});

test('the plan depends only on the input: same result twice and whatever the node order', () => {
  for (let seed = 1; seed <= CASES; seed++) {
    const c = randomCase(seed);
    const a: Plan = schedule(c.snapshot, c.tasks);
    const b: Plan = schedule(randomCase(seed).snapshot, c.tasks);
    const reversed: Plan = schedule({ nodes: [...randomCase(seed).snapshot.nodes].reverse() }, c.tasks);
    assert.deepEqual(b, a, `seed ${seed}: same input, same plan`);
    assert.deepEqual(reversed, a, `seed ${seed}: node order does not matter`);
  }
});
