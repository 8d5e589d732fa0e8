/**
 * Placement follows named volumes (scheduler/filter-volumes.ts): a task whose volume is on a node
 * goes there, a volume that is nowhere lets it go anywhere, and a pending task says where its
 * volume is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { filterVolumes, volumeLocations } from '../../control-plane/scheduler/filter-volumes.js';
import { schedule } from '../../control-plane/scheduler/schedule.js';
import type { NodeInfo, TaskRequest } from '../../control-plane/scheduler/types.js';

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
    key: `tasks/default/db/${name}`, name, service: 'default/db',
    resources: { cpu: 0.5, memory: GiB / 4, pids: 10 }, hostPorts: [], constraints: [], strategy: 'spread', ...over,
  };
}

test('filterVolumes: a table of volume locations and the verdict for one node', () => {
  const cases: { name: string; where: Record<string, string[]>; volumes?: string[]; node: string; reason: string | undefined }[] = [
    { name: 'no volumes asked', where: { 'default/data': ['n2'] }, node: 'n1', reason: undefined },
    { name: 'the volume is nowhere yet', where: {}, volumes: ['default/data'], node: 'n1', reason: undefined },
    { name: 'the volume is on this node', where: { 'default/data': ['n1'] }, volumes: ['default/data'], node: 'n1', reason: undefined },
    { name: 'the volume is on another node', where: { 'default/data': ['n2'] }, volumes: ['default/data'], node: 'n1', reason: 'volume data is on n2' },
    { name: 'the volume is on two other nodes', where: { 'default/data': ['n2', 'n3'] }, volumes: ['default/data'], node: 'n1', reason: 'volume data is on n2 and n3' },
    { name: 'the volume is on several nodes, this one among them', where: { 'default/data': ['n1', 'n2', 'n3'] }, volumes: ['default/data'], node: 'n3', reason: undefined },
    { name: 'the volume is on many other nodes', where: { 'default/data': ['n2', 'n3', 'n4'] }, volumes: ['default/data'], node: 'n1', reason: 'volume data is on n2 and 2 other nodes' },
    { name: 'a second volume elsewhere', where: { 'default/a': ['n1'], 'default/b': ['n2'] }, volumes: ['default/a', 'default/b'], node: 'n1', reason: 'volume b is on n2' },
    { name: 'the same name in another namespace does not count', where: { 'other/data': ['n2'] }, volumes: ['default/data'], node: 'n1', reason: undefined },
  ];
  for (const c of cases) {
    const t = task('t', c.volumes ? { volumes: c.volumes } : {});
    const ctx = { task: t, spreadCounts: new Map<string, number>(), volumeNodes: new Map(Object.entries(c.where)) };
    assert.equal(filterVolumes.check(node(c.node), ctx), c.reason, `${c.name}: expected ${String(c.reason)}`);
  }
});

test('volumeLocations collects only the wanted volumes, nodes in name order', () => {
  const nodes = [node('n3', { volumes: new Set(['default/a', 'default/b']) }), node('n1', { volumes: new Set(['default/a']) }), node('n2')];
  assert.deepEqual(Object.fromEntries(volumeLocations(nodes, new Set(['default/a']))), { 'default/a': ['n1', 'n3'] });
  assert.equal(volumeLocations(nodes, new Set()).size, 0);
});

test('schedule places a task on the node holding its volume, even against spread', () => {
  // n1 already runs two of the service's tasks: spread alone would pick n2 or n3.
  const nodes = [node('n1', { volumes: new Set(['default/data']), tasksByService: new Map([['default/db', 2]]) }), node('n2'), node('n3')];
  const plan = schedule({ nodes }, [task('a', { volumes: ['default/data'] })]);
  assert.deepEqual(plan.placements.map((p) => p.nodeName), ['n1']);
});

test('schedule keeps a batch together: a volume made by the first task draws its siblings', () => {
  const plan = schedule({ nodes: [node('n1'), node('n2'), node('n3')] }, ['a', 'b', 'c'].map((n) => task(n, { volumes: ['default/data'] })));
  assert.equal(plan.unplaced.length, 0);
  assert.deepEqual(new Set(plan.placements.map((p) => p.nodeName)).size, 1, `expected one node, saw ${plan.placements.map((p) => p.nodeName).join(', ')}`);
});

test('a task that cannot go to its volume\'s node explains itself', () => {
  const full = node('n2', { volumes: new Set(['default/db-data']), allocated: { cpu: 0, memory: 8 * GiB, pids: 0 } });
  const plan = schedule({ nodes: [node('n1'), full, node('n3')] }, [task('a', { volumes: ['default/db-data'] })]);
  assert.equal(plan.placements.length, 0);
  assert.equal(plan.unplaced[0]?.message, '0/3 nodes fit: 2 volume db-data is on n2, 1 insufficient memory');
});

test('a volume that is nowhere lets the task go where spread puts it', () => {
  const nodes = [node('n1', { tasksByService: new Map([['default/db', 1]]), volumes: new Set(['default/other']) }), node('n2')];
  const plan = schedule({ nodes }, [task('a', { volumes: ['default/data'] })]);
  assert.deepEqual(plan.placements.map((p) => p.nodeName), ['n2']);
});
