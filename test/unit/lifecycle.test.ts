/** Node lifecycle pure logic: global planner, drain planner, lost tasks, node verbs, events, watch helpers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planGlobal } from '../../control-plane/controllers/global.js';
import { parseConstraints, type Constraint } from '../../control-plane/objects/constraints.js';
import { effectiveSurge, planDrain, type DrainTask } from '../../control-plane/controllers/node-drain.js';
import { lostGraceRemainingMs, tasksToMarkLost } from '../../control-plane/controllers/node-lifecycle.js';
import { buildEvent, isEventKey, taskTransitionEvent } from '../../control-plane/controllers/events.js';
import { applySpecBody, applyVerb } from '../../control-plane/api/routes-nodes.js';
import { watchTarget } from '../../control-plane/api/routes-watch.js';
import { splitLines } from '../../control-plane/cli/watch.js';
import { drainProgress, remainingOnNode } from '../../control-plane/cli/nodes-admin.js';
import { eventsTable } from '../../control-plane/cli/events.js';
import type { Node, Task, TaskPhase } from '../../control-plane/objects/types.js';

function node(name: string, o: { ready?: boolean; unschedulable?: boolean; drain?: boolean; labels?: Record<string, string> } = {}): Node {
  return {
    kind: 'Node',
    metadata: { name, uid: name, generation: 1, labels: o.labels ?? {}, createdAt: '2026-01-01T00:00:00Z' },
    spec: { unschedulable: o.unschedulable ?? false, taints: [], ...(o.drain ? { drain: true } : {}) },
    status: {
      capacity: { cpu: 1, memory: 1, pids: 1 }, allocatable: { cpu: 1, memory: 1, pids: 1 }, addresses: [], metricsUrl: '',
      conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True', reason: 'x', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }],
      agentVersion: '', cgroupVersion: '',
    },
  };
}

function task(name: string, nodeName: string, phase: TaskPhase = 'running', createdAt = '2026-01-01T00:00:00Z', pinnedNode?: string): Task {
  return {
    kind: 'Task',
    metadata: { name, namespace: 'default', uid: name, generation: 1, labels: {}, createdAt },
    spec: { service: 'g', nodeName, ...(pinnedNode ? { pinnedNode } : {}), desiredState: 'running', template: { image: 'x' }, revision: 1 },
    status: { phase, restarts: 0 },
  };
}

const names = (ts: readonly Task[]): string[] => ts.map((t) => t.metadata.name);

test('planGlobal: one task per eligible node, following joins, cordons, labels and drains', async (t) => {
  const cases: { name: string; nodes: Node[]; live: Task[]; constraints?: string[]; createOn: string[]; stop: string[] }[] = [
    { name: 'empty cluster gets one per ready node', nodes: [node('a'), node('b'), node('c', { ready: false })], live: [], createOn: ['a', 'b'], stop: [] },
    { name: 'a cordoned node gets no new task', nodes: [node('a'), node('b', { unschedulable: true })], live: [], createOn: ['a'], stop: [] },
    { name: 'an existing task stays on a cordoned node', nodes: [node('a', { unschedulable: true })], live: [task('g-1', 'a')], createOn: [], stop: [] },
    { name: 'a task on a draining node stops', nodes: [node('a', { unschedulable: true, drain: true })], live: [task('g-1', 'a')], createOn: [], stop: ['g-1'] },
    { name: 'a briefly not Ready node keeps its task', nodes: [node('a', { ready: false })], live: [task('g-1', 'a')], createOn: [], stop: [] },
    { name: 'a deleted node loses its task', nodes: [node('b')], live: [task('g-1', 'a')], createOn: ['b'], stop: ['g-1'] },
    { name: 'duplicates on a node: the running, oldest one stays', nodes: [node('a')],
      live: [task('g-2', 'a', 'running', '2026-01-02T00:00:00Z'), task('g-1', 'a', 'starting'), task('g-3', 'a', 'running', '2026-01-03T00:00:00Z')], createOn: [], stop: ['g-1', 'g-3'] },
    { name: 'constraints select nodes by label', nodes: [node('a', { labels: { zone: 'x' } }), node('b', { labels: { zone: 'y' } })], live: [task('g-1', 'b')],
      constraints: ['node.labels.zone == x'], createOn: ['a'], stop: ['g-1'] },
    { name: 'a task neither placed nor pinned is stopped', nodes: [node('a')], live: [task('g-1', '')], createOn: ['a'], stop: ['g-1'] },
    { name: 'a pending task pinned to a node covers it', nodes: [node('a'), node('b')], live: [task('g-1', '', 'pending', undefined, 'a')], createOn: ['b'], stop: [] },
    { name: 'a pending pinned task stops when its node is cordoned (it never started)', nodes: [node('a', { unschedulable: true })],
      live: [task('g-1', '', 'pending', undefined, 'a')], createOn: [], stop: ['g-1'] },
    { name: 'a pending pinned task beside a placed one on the same node is the duplicate', nodes: [node('a')],
      live: [task('g-2', '', 'pending', '2025-01-01T00:00:00Z', 'a'), task('g-1', 'a', 'assigned')], createOn: [], stop: ['g-2'] },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const parsed = parseConstraints(c.constraints);
      const plan = planGlobal(c.nodes, c.live, parsed.ok ? parsed.constraints : []);
      assert.deepEqual(plan.createOn, c.createOn, 'nodes that get a new task');
      assert.deepEqual(names(plan.stop), c.stop, 'tasks stopped');
    });
  }
});

test('a constraint list with one rule that does not parse is refused whole (fail closed)', () => {
  const parsed = parseConstraints(['node.labels.zone == a', 'node.labels.zone ~= b']);
  assert.equal(parsed.ok, false);
  assert.match(!parsed.ok ? parsed.message : '', /invalid placement constraint: cannot parse "node.labels.zone ~= b"/);
  const fine = parseConstraints(['node.name != x']);
  assert.deepEqual(fine, { ok: true, constraints: [{ attribute: 'node.name', op: '!=', values: ['x'] } satisfies Constraint] });
});

function drainTasks(staying: number, stayingRunning: number, evac: number, evacRunning: number): DrainTask[] {
  const out: DrainTask[] = [];
  for (let i = 0; i < staying; i++) out.push({ name: `s${i}`, running: i < stayingRunning, evacuating: false });
  for (let i = 0; i < evac; i++) out.push({ name: `e${i}`, running: i < evacRunning, evacuating: true });
  return out;
}

test('planDrain: replacements first, never below replicas - maxUnavailable running', async (t) => {
  const cases: { name: string; replicas: number; maxSurge?: number; maxUnavailable?: number; tasks: DrainTask[]; create: number; stop: string[] }[] = [
    { name: 'default strategy surges one and stops nothing yet', replicas: 6, tasks: drainTasks(4, 4, 2, 2), create: 1, stop: [] },
    { name: 'once the replacement runs, one evacuating task stops and the next replacement starts', replicas: 6, tasks: drainTasks(5, 5, 2, 2), create: 1, stop: ['e0'] },
    { name: 'a replacement still starting holds the stop back', replicas: 6, tasks: drainTasks(5, 4, 2, 2), create: 0, stop: [] },
    { name: 'maxUnavailable 1 stops one at once and creates one', replicas: 3, maxUnavailable: 1, tasks: drainTasks(2, 2, 1, 1), create: 1, stop: ['e0'] },
    { name: 'maxSurge 2 creates two at once', replicas: 4, maxSurge: 2, tasks: drainTasks(2, 2, 2, 2), create: 2, stop: [] },
    { name: 'evacuating tasks not running stop at once', replicas: 2, tasks: drainTasks(1, 1, 1, 0), create: 1, stop: ['e0'] },
    { name: 'last evacuating task stops when all replicas run elsewhere', replicas: 2, tasks: drainTasks(2, 2, 1, 1), create: 0, stop: ['e0'] },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      assert.deepEqual(planDrain({ replicas: c.replicas, maxSurge: c.maxSurge, maxUnavailable: c.maxUnavailable, tasks: c.tasks }), { create: c.create, stop: c.stop });
    });
  }
  await t.test('effectiveSurge allows one when maxUnavailable is 0', () => {
    assert.equal(effectiveSurge(0, 0), 1);
    assert.equal(effectiveSurge(0, 1), 0);
    assert.equal(effectiveSurge(3, 0), 3);
  });
});

test('planDrain simulated to the end: the node empties and running never dips below the floor', () => {
  for (const [replicas, maxSurge, maxUnavailable, onNode] of [[6, 0, 0, 2], [6, 1, 1, 3], [3, 0, 0, 3], [5, 2, 0, 1]] as const) {
    let tasks = drainTasks(replicas - onNode, replicas - onNode, onNode, onNode);
    let next = 0;
    for (let step = 0; step < 100 && tasks.some((x) => x.evacuating); step++) {
      const plan = planDrain({ replicas, maxSurge, maxUnavailable, tasks });
      tasks = tasks.filter((x) => !plan.stop.includes(x.name));
      const running = tasks.filter((x) => x.running).length;
      assert.ok(running >= replicas - maxUnavailable, `running ${running} below ${replicas - maxUnavailable} at step ${step}`);
      assert.ok(tasks.length + plan.create <= replicas + effectiveSurge(maxSurge, maxUnavailable), 'surge exceeded');
      for (let i = 0; i < plan.create; i++) tasks.push({ name: `n${next++}`, running: false, evacuating: false });
      tasks = tasks.map((x) => ({ ...x, running: true })); // the new ones start before the next step
    }
    assert.equal(tasks.filter((x) => x.evacuating).length, 0, 'node empty');
    assert.equal(tasks.length, replicas, 'exactly replicas at the end');
  }
});

test('lost tasks: grace period arithmetic and which tasks are marked', () => {
  assert.equal(lostGraceRemainingMs('2026-01-01T00:00:00.000Z', 15_000, Date.parse('2026-01-01T00:00:10.000Z')), 5_000);
  assert.ok(lostGraceRemainingMs('2026-01-01T00:00:00.000Z', 15_000, Date.parse('2026-01-01T00:00:20.000Z')) < 0);
  assert.equal(lostGraceRemainingMs('garbage', 15_000, 0), 0, 'an unreadable time counts as expired');
  const ts = [task('a', 'n', 'running'), task('b', 'n', 'assigned'), task('c', 'n', 'failed'), task('d', 'n', 'stopped'), task('e', 'n', 'lost')];
  assert.deepEqual(names(tasksToMarkLost(ts)), ['a', 'b']);
});

test('node verbs: cordon, drain and uncordon set and clear unschedulable and drain', () => {
  const n = node('a');
  const cordoned = applyVerb(n, 'cordon')!;
  assert.equal(cordoned.spec.unschedulable, true);
  assert.equal(cordoned.spec.drain, undefined);
  assert.equal(applyVerb(cordoned, 'cordon'), undefined, 'cordon twice changes nothing');
  const draining = applyVerb(cordoned, 'drain')!;
  assert.deepEqual([draining.spec.unschedulable, draining.spec.drain], [true, true]);
  assert.equal(applyVerb(draining, 'cordon'), undefined, 'cordon keeps an ongoing drain');
  const back = applyVerb(draining, 'uncordon')!;
  assert.deepEqual([back.spec.unschedulable, back.spec.drain], [false, undefined]);
});

test('node spec bodies: PATCH merges labels (null removes), PUT replaces them', () => {
  const n = { ...node('a', { labels: { zone: 'x', disk: 'ssd' } }) };
  const patched = applySpecBody(n, { metadata: { labels: { zone: 'y', disk: null } } }, false)!;
  assert.deepEqual(patched.metadata.labels, { zone: 'y' });
  assert.equal(applySpecBody(n, { metadata: { labels: { zone: 'x' } } }, false), undefined, 'no change is no write');
  const put = applySpecBody(n, { metadata: { labels: { rack: '1' } }, spec: { unschedulable: true } }, true)!;
  assert.deepEqual(put.metadata.labels, { rack: '1' });
  assert.equal(put.spec.unschedulable, true);
});

test('task transitions become Scheduled, Started, Died and OOMKilled events', () => {
  const pending = task('t', '', 'pending');
  const assigned = task('t', 'n1', 'assigned');
  const running = { ...task('t', 'n1', 'running'), status: { phase: 'running' as const, restarts: 0, pid: 42 } };
  const died = { ...task('t', 'n1', 'failed'), status: { phase: 'failed' as const, restarts: 0, exitCode: 3, reason: 'Error' } };
  const oom = { ...task('t', 'n1', 'failed'), status: { phase: 'failed' as const, restarts: 0, exitCode: 137, reason: 'OOMKilled' } };
  assert.equal(taskTransitionEvent(pending, assigned)?.reason, 'Scheduled');
  assert.equal(taskTransitionEvent(assigned, running)?.reason, 'Started');
  assert.match(taskTransitionEvent(assigned, running)!.message, /pid 42/);
  assert.equal(taskTransitionEvent(running, died)?.reason, 'Died');
  assert.equal(taskTransitionEvent(running, oom)?.reason, 'OOMKilled');
  assert.equal(taskTransitionEvent(running, running), undefined, 'no change, no event');
  const ev = buildEvent({ object: { kind: 'Node', name: 'n1' }, reason: 'NodeNotReady', message: 'm', source: 'x' });
  assert.equal(ev.metadata.namespace, 'default', 'node events go to the default namespace');
  assert.ok(isEventKey(`events/default/${ev.metadata.name}`));
  const table = eventsTable([ev], Date.parse(ev.lastTimestamp) + 5_000);
  assert.match(table, /^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE\n5s\s+Normal\s+NodeNotReady\s+node\/n1\s+m\n$/);
});

test('watch targets: list URLs map onto key prefixes and filters', () => {
  const q = (s = ''): URLSearchParams => new URLSearchParams(s);
  assert.equal(watchTarget('/v1/nodes', q())?.prefix, 'nodes/');
  assert.equal(watchTarget('/v1/events', q())?.prefix, 'events/');
  assert.equal(watchTarget('/v1/namespaces/prod/services', q())?.prefix, 'services/prod/');
  assert.equal(watchTarget('/v1/namespaces/prod/tasks', q('service=web'))?.prefix, 'tasks/prod/web/');
  const byNode = watchTarget('/v1/tasks', q('node=n2'))!;
  assert.equal(byNode.keep(task('a', 'n2')), true);
  assert.equal(byNode.keep(task('b', 'n1')), false);
  assert.equal(watchTarget('/v1/nodes/n1', q()), undefined, 'one object is not a watchable list');
});

test('splitLines keeps partial lines for the next chunk', () => {
  const seen: string[] = [];
  const rest = splitLines('{"a":1}\n\n{"b"', (l) => seen.push(l));
  assert.deepEqual(seen, ['{"a":1}']);
  assert.equal(splitLines(`${rest}:2}\n`, (l) => seen.push(l)), '');
  assert.deepEqual(seen, ['{"a":1}', '{"b":2}']);
});

test('drain progress counts tasks not yet terminal on the node', () => {
  const ts = [task('a', 'n', 'running'), task('b', 'n', 'stopped'), task('c', 'm', 'running')];
  const left = remainingOnNode(ts, 'n');
  assert.deepEqual(names(left), ['a']);
  assert.equal(drainProgress('n', left), 'node/n: 1 task(s) left: a (running)');
  assert.equal(drainProgress('n', []), 'node/n drained: no tasks left');
});
