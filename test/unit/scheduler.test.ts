import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matches, parseConstraint, type Constraint } from '../../control-plane/objects/constraints.js';
import { filterConstraints } from '../../control-plane/scheduler/filter-constraints.js';
import { filterPorts } from '../../control-plane/scheduler/filter-ports.js';
import { filterReady } from '../../control-plane/scheduler/filter-ready.js';
import { filterResources } from '../../control-plane/scheduler/filter-resources.js';
import { filterTaints } from '../../control-plane/scheduler/filter-taints.js';
import { filterUnschedulable } from '../../control-plane/scheduler/filter-unschedulable.js';
import { explain, schedule } from '../../control-plane/scheduler/schedule.js';
import { checkPlacements } from '../../control-plane/scheduler/plan-check.js';
import { scoreSpread } from '../../control-plane/scheduler/score-spread.js';
import type { NodeFilter, NodeInfo, TaskRequest } from '../../control-plane/scheduler/types.js';

const GiB = 1024 ** 3;

function node(name: string, over: Partial<NodeInfo> = {}): NodeInfo {
  return {
    name, labels: {}, ready: true, unschedulable: false, taints: [],
    allocatable: { cpu: 4, memory: 8 * GiB, pids: 10000 }, allocated: { cpu: 0, memory: 0, pids: 0 },
    tasksByService: new Map(), hostPorts: new Set(), ...over,
  };
}

function task(name: string, over: Partial<TaskRequest> = {}): TaskRequest {
  return {
    key: `tasks/default/web/${name}`, name, service: 'default/web',
    resources: { cpu: 0.5, memory: GiB / 4, pids: 10 }, hostPorts: [], constraints: [], strategy: 'spread', ...over,
  };
}

function constraint(s: string): Constraint {
  const p = parseConstraint(s);
  assert.ok(p.ok, `constraint ${s} should parse`);
  return p.constraint;
}

const ctx = (t: TaskRequest) => ({ task: t, spreadCounts: new Map<string, number>() });

test('each filter rejects with its reason and passes a fitting node', () => {
  const cases: { filter: NodeFilter; bad: NodeInfo; t?: TaskRequest; reason: string }[] = [
    { filter: filterReady, bad: node('a', { ready: false }), reason: 'not ready' },
    { filter: filterUnschedulable, bad: node('a', { unschedulable: true }), reason: 'cordoned' },
    { filter: filterTaints, bad: node('a', { taints: [{ key: 'k', effect: 'NoSchedule' }] }), reason: 'tainted' },
    { filter: filterConstraints, bad: node('a', { labels: { zone: 'c' } }), t: task('t', { constraints: [constraint('node.labels.zone in (a, b)')] }), reason: 'constraints not met' },
    { filter: filterPorts, bad: node('a', { hostPorts: new Set(['8080/tcp']) }), t: task('t', { hostPorts: ['8080/tcp'] }), reason: 'host port in use' },
    { filter: filterResources, bad: node('a', { allocated: { cpu: 0, memory: 8 * GiB, pids: 0 } }), reason: 'insufficient memory' },
    { filter: filterResources, bad: node('a', { allocated: { cpu: 3.75, memory: 0, pids: 0 } }), reason: 'insufficient cpu' },
    { filter: filterResources, bad: node('a', { allocated: { cpu: 0, memory: 0, pids: 9995 } }), reason: 'insufficient pids' },
  ];
  for (const c of cases) {
    const t = c.t ?? task('t');
    assert.equal(c.filter.check(c.bad, ctx(t)), c.reason, `${c.filter.name} on a bad node`);
    assert.equal(c.filter.check(node('ok', { labels: { zone: 'a' } }), ctx(t)), undefined, `${c.filter.name} on a good node`);
  }
});

test('resources filter compares cpu in millicores (0.1 + 0.2 fits 0.3)', () => {
  const n = node('a', { allocatable: { cpu: 0.3, memory: GiB, pids: 0 }, allocated: { cpu: 0.1, memory: 0, pids: 0 } });
  assert.equal(filterResources.check(n, ctx(task('t', { resources: { cpu: 0.2, memory: 0, pids: 0 } }))), undefined);
});

test('spread scorer prefers nodes with fewer tasks of the service', () => {
  const busy = node('a', { tasksByService: new Map([['default/web', 2]]) });
  assert.ok(scoreSpread.score(node('b'), ctx(task('t'))) > scoreSpread.score(busy, ctx(task('t'))));
});

test('schedule spreads 4 tasks over 2 nodes as 2 + 2', () => {
  const plan = schedule({ nodes: [node('n2'), node('n1')] }, ['a', 'b', 'c', 'd'].map((n) => task(n)));
  assert.equal(plan.unplaced.length, 0);
  const perNode = new Map<string, number>();
  for (const p of plan.placements) perNode.set(p.nodeName, (perNode.get(p.nodeName) ?? 0) + 1);
  assert.deepEqual(Object.fromEntries(perNode), { n1: 2, n2: 2 });
});

test('schedule breaks ties by node name and is deterministic', () => {
  const snap = { nodes: [node('c'), node('a'), node('b')] };
  const first = schedule(snap, [task('x'), task('y'), task('z')]);
  assert.deepEqual(first.placements.map((p) => p.nodeName), ['a', 'b', 'c']);
  assert.deepEqual(schedule(snap, [task('x'), task('y'), task('z')]), first);
});

test('schedule counts existing tasks of the service when spreading', () => {
  const plan = schedule({ nodes: [node('a', { tasksByService: new Map([['default/web', 3]]) }), node('b')] }, [task('x'), task('y')]);
  assert.deepEqual(plan.placements.map((p) => p.nodeName), ['b', 'b']);
});

test('schedule prefers the least allocated node when spread counts tie', () => {
  const plan = schedule({ nodes: [node('a', { allocated: { cpu: 3, memory: 6 * GiB, pids: 0 } }), node('b')] }, [task('x')]);
  assert.equal(plan.placements[0]?.nodeName, 'b');
});

test('schedule skips cordoned and not-ready nodes and counts the reasons', () => {
  const plan = schedule({ nodes: [node('a', { ready: false }), node('b', { unschedulable: true }), node('c', { ready: false })] }, [task('x')]);
  assert.equal(plan.placements.length, 0);
  assert.deepEqual(plan.unplaced[0]?.reasons, { 'not ready': 2, cordoned: 1 });
  assert.equal(plan.unplaced[0]?.message, '0/3 nodes fit: 2 not ready, 1 cordoned');
});

test('schedule explains insufficient memory, accounting for its own placements', () => {
  const small = { allocatable: { cpu: 4, memory: GiB, pids: 0 } };
  const big = task('big', { resources: { cpu: 0.1, memory: 0.75 * GiB, pids: 0 } });
  const plan = schedule({ nodes: [node('a', small), node('b', small), node('c', { ready: false })] },
    [big, { ...big, key: 'k2', name: 'big2' }, { ...big, key: 'k3', name: 'big3' }]);
  assert.equal(plan.placements.length, 2);
  assert.equal(plan.unplaced[0]?.message, '0/3 nodes fit: 2 insufficient memory, 1 not ready');
});

test('schedule honours constraints and host ports', () => {
  const nodes = [node('a', { labels: { zone: 'x' } }), node('b', { labels: { zone: 'y' } })];
  const plan = schedule({ nodes }, [task('t1', { constraints: [constraint('node.labels.zone == y')] }), task('t2', { hostPorts: ['80/tcp'] }), task('t3', { hostPorts: ['80/tcp'] }), task('t4', { hostPorts: ['80/tcp'] })]);
  assert.equal(plan.placements.find((p) => p.taskKey.endsWith('t1'))?.nodeName, 'b');
  assert.equal(plan.unplaced.length, 1);
  assert.equal(plan.unplaced[0]?.message, '0/2 nodes fit: 2 host port in use');
});

test('schedule spreads over a topology label before nodes', () => {
  const nodes = [node('a1', { labels: { zone: 'a' } }), node('a2', { labels: { zone: 'a' } }), node('b1', { labels: { zone: 'b' } })];
  const plan = schedule({ nodes }, ['t1', 't2', 't3', 't4'].map((n) => task(n, { spread: 'node.labels.zone' })));
  const zones = plan.placements.map((p) => p.nodeName.slice(0, 1)).sort();
  assert.deepEqual(zones, ['a', 'a', 'b', 'b']);
});

test('binpack fills the most allocated node first', () => {
  const plan = schedule({ nodes: [node('a'), node('b', { allocated: { cpu: 1, memory: GiB, pids: 0 } })] }, [task('x', { strategy: 'binpack' }), task('y', { strategy: 'binpack' })]);
  assert.deepEqual(plan.placements.map((p) => p.nodeName), ['b', 'b']);
});

test('explain says when no nodes exist', () => {
  assert.equal(explain(0, {}), '0/0 nodes fit: no nodes are registered');
});

test('constraints: every operator, including exists and not exists, against labelled and unlabelled nodes', () => {
  const gpu = { name: 'n1', labels: { gpu: 'a100', zone: 'a' } };
  const plain = { name: 'n2', labels: { zone: 'b' } };
  const cases: [string, boolean, boolean][] = [
    ['node.name == n1', true, false],
    ['node.name != n1', false, true],
    ['node.labels.zone in (a, c)', true, false],
    ['node.labels.zone not in (a)', false, true],
    ['node.labels.gpu exists', true, false],
    ['node.labels.gpu not exists', false, true],
    ['node.labels.gpu != a100', false, true],
  ];
  for (const [rule, onGpu, onPlain] of cases) {
    const c = constraint(rule);
    assert.equal(matches(c, gpu), onGpu, `${rule} on a labelled node`);
    assert.equal(matches(c, plain), onPlain, `${rule} on an unlabelled node`);
  }
  for (const bad of ['node.labels.gpu exist', 'node.foo exists', 'node.labels.gpu exists now']) {
    assert.equal(parseConstraint(bad).ok, false, `${bad} is refused`);
  }
});

test('a pinned task considers its own node only, and explains with that node alone', () => {
  const nodes = [node('a'), node('b', { allocated: { cpu: 0, memory: 8 * GiB, pids: 0 } }), node('c')];
  const plan = schedule({ nodes }, [task('g-a', { pinnedNode: 'a' }), task('g-b', { pinnedNode: 'b' }), task('g-x', { pinnedNode: 'x' })]);
  assert.deepEqual(plan.placements, [{ taskKey: 'tasks/default/web/g-a', nodeName: 'a' }]);
  assert.deepEqual(plan.unplaced.map((u) => [u.taskKey, u.message]), [
    ['tasks/default/web/g-b', '0/1 nodes fit: 1 insufficient memory'],
    ['tasks/default/web/g-x', 'its node x is not registered'],
  ]);
});

test('an unplaceable task goes nowhere, with the reason it was given', () => {
  const plan = schedule({ nodes: [node('a')] }, [task('t1', { unplaceable: 'invalid placement constraint: cannot parse "x"' })]);
  assert.deepEqual(plan.placements, []);
  assert.equal(plan.unplaced[0]!.message, 'invalid placement constraint: cannot parse "x"');
});

test('the commit-time check accepts what still fits, counting the batch, and rejects the rest', () => {
  const reqs = new Map([task('t1'), task('t2'), task('t3'), task('t4')].map((t) => [t.key, { ...t, resources: { cpu: 1, memory: 3 * GiB, pids: 1 } }]));
  const now = new Map([['a', node('a', { allocated: { cpu: 0, memory: 3 * GiB, pids: 0 } })], ['b', node('b', { ready: false })]]);
  const placements = [...reqs.keys()].map((k, i) => ({ taskKey: k, nodeName: ['a', 'a', 'b', 'gone'][i]! }));
  const before = structuredClone(now.get('a')!.allocated);
  const check = checkPlacements(placements, reqs, (n) => now.get(n));
  assert.deepEqual(check.accepted.map((p) => p.taskKey), ['tasks/default/web/t1']);
  assert.deepEqual(check.rejected.map((r) => [r.taskKey, r.reason]), [
    ['tasks/default/web/t2', 'insufficient memory'],
    ['tasks/default/web/t3', 'not ready'],
    ['tasks/default/web/t4', 'node gone'],
  ]);
  assert.deepEqual(now.get('a')!.allocated, before, 'the current view is not modified');
});
