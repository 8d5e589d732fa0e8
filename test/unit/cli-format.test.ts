import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatAge, formatBytes, formatCpu, formatLabels, nodeLoads, nodeStatus, nodesTable, renderTable,
  servicesTable, tasksTable,
} from '../../control-plane/cli/format.js';
import { applyOutcome } from '../../control-plane/cli/apply.js';
import { parseManifests } from '../../control-plane/cli/manifest.js';
import { parseReplicas } from '../../control-plane/cli/mutate.js';
import { CliError } from '../../control-plane/cli/errors.js';
import type { Node, Service, Task } from '../../control-plane/objects/types.js';

const NOW = Date.parse('2025-01-01T12:00:00Z');
const ago = (seconds: number): string => new Date(NOW - seconds * 1000).toISOString();

function service(name: string, replicas: number, running: number): Service {
  return {
    kind: 'Service',
    metadata: { name, namespace: 'default', uid: 'u', generation: 1, labels: { app: name }, createdAt: ago(90) },
    spec: { replicas, template: { image: 'oci-archive:/seed/busybox.tar', resources: { cpu: 0.1, memory: 32 * 1024 * 1024, pids: 64 } } },
    status: { observedGeneration: 1, replicas, runningReplicas: running, conditions: [] },
  };
}

function task(name: string, nodeName: string, phase: Task['status']['phase'], extra: Partial<Task['status']> = {}): Task {
  return {
    kind: 'Task',
    metadata: { name, namespace: 'default', uid: 'u', generation: 1, labels: {}, createdAt: ago(3700) },
    spec: { service: 'web', nodeName, desiredState: 'running', revision: 1, template: { image: 'x', resources: { cpu: 0.25, memory: 64 * 1024 * 1024 } } },
    status: { phase, restarts: 0, ...extra },
  };
}

function node(name: string, ready: 'True' | 'False' | 'Unknown' | undefined, unschedulable = false): Node {
  return {
    kind: 'Node',
    metadata: { name, uid: 'u', generation: 1, labels: { host: name, zone: 'a' }, createdAt: ago(86400 * 3) },
    spec: { unschedulable, taints: [] },
    status: {
      capacity: { cpu: 2, memory: 4 * 1024 ** 3, pids: 4096 },
      allocatable: { cpu: 2, memory: 4 * 1024 ** 3, pids: 4096 },
      addresses: [{ type: 'InternalIP', address: '10.88.1.11' }],
      metricsUrl: 'http://10.88.1.11:9480/metrics',
      conditions: ready ? [{ type: 'Ready', status: ready, reason: 'R', message: '', lastTransitionTime: ago(10) }] : [],
      agentVersion: '0.1.0',
      cgroupVersion: 'v1',
    },
  };
}

describe('cli format', () => {
  it('renderTable pads columns to the widest cell and leaves the last one unpadded', () => {
    assert.equal(renderTable(['NAME', 'AGE'], [['web', '5s'], ['a-long-name', '10m']]),
      'NAME          AGE\nweb           5s\na-long-name   10m\n');
  });

  const ages: [number, string][] = [
    [0, '0s'], [59, '59s'], [119, '119s'], [120, '2m'], [330, '5m30s'], [600, '10m'], [2820, '47m'],
    [3 * 3600, '3h'], [3 * 3600 + 20 * 60, '3h20m'], [20 * 3600, '20h'], [3 * 86400 + 4 * 3600, '3d4h'],
    [12 * 86400, '12d'], [800 * 86400, '2y'],
  ];
  for (const [seconds, expected] of ages) {
    it(`formatAge renders ${seconds}s as ${expected}`, () => assert.equal(formatAge(ago(seconds), NOW), expected));
  }
  it('formatAge renders missing or bad timestamps as <none>', () => {
    assert.equal(formatAge(undefined, NOW), '<none>');
    assert.equal(formatAge('yesterday', NOW), '<none>');
  });

  const bytes: [number | undefined, string][] = [
    [512, '512'], [1024, '1Ki'], [32 * 1024 * 1024, '32Mi'], [3.8 * 1024 ** 3, '3.8Gi'], [undefined, '<none>'],
  ];
  for (const [value, expected] of bytes) {
    it(`formatBytes renders ${value} as ${expected}`, () => assert.equal(formatBytes(value), expected));
  }
  it('formatCpu keeps two decimals at most', () => {
    assert.equal(formatCpu(0.1 + 0.2), '0.3');
    assert.equal(formatCpu(2), '2');
  });
  it('formatLabels sorts keys', () => assert.equal(formatLabels({ b: '2', a: '1' }), 'a=1,b=2'));

  it('servicesTable shows running/desired replicas, image and age', () => {
    const out = servicesTable([service('web', 6, 4)], { wide: false, withNamespace: false, now: NOW });
    assert.equal(out, 'NAME   REPLICAS   IMAGE                           AGE\nweb    4/6        oci-archive:/seed/busybox.tar   90s\n');
  });

  it('servicesTable with a namespace column and wide resources', () => {
    const out = servicesTable([service('web', 6, 6)], { wide: true, withNamespace: true, now: NOW });
    const [header, row] = out.trimEnd().split('\n');
    assert.deepEqual(header!.split(/\s+/), ['NAMESPACE', 'NAME', 'REPLICAS', 'IMAGE', 'AGE', 'CPU', 'MEMORY', 'LABELS']);
    assert.deepEqual(row!.split(/\s+/), ['default', 'web', '6/6', 'oci-archive:/seed/busybox.tar', '90s', '0.1', '32Mi', 'app=web']);
  });

  it('tasksTable prints <none> for unknown IPs and wide adds PID CONTAINER REASON MESSAGE', () => {
    const tasks = [task('web-a1', 'berth-h1', 'running', { ip: '10.89.0.2', pid: 4242, containerId: 'web-a1' }), task('web-b2', '', 'pending', { reason: 'Unschedulable', message: '0/3 nodes fit' })];
    const narrow = tasksTable(tasks, { wide: false, withNamespace: false, now: NOW }).trimEnd().split('\n');
    assert.deepEqual(narrow[0]!.split(/\s+/), ['NAME', 'SERVICE', 'NODE', 'PHASE', 'READY', 'IP', 'RESTARTS', 'AGE']);
    assert.deepEqual(narrow[1]!.split(/\s+/), ['web-a1', 'web', 'berth-h1', 'running', 'false', '10.89.0.2', '0', '61m']);
    assert.deepEqual(narrow[2]!.split(/\s+/), ['web-b2', 'web', '<none>', 'pending', 'false', '<none>', '0', '61m']);
    const wide = tasksTable(tasks, { wide: true, withNamespace: false, now: NOW }).trimEnd().split('\n');
    assert.match(wide[0]!, /PID\s+CONTAINER\s+REASON\s+MESSAGE$/);
    assert.match(wide[1]!, /4242\s+web-a1\s+<none>\s+<none>$/);
    assert.match(wide[2]!, /<none>\s+<none>\s+Unschedulable\s+0\/3 nodes fit$/);
  });

  const statuses: [Node, string][] = [
    [node('a', 'True'), 'Ready'], [node('b', 'False'), 'NotReady'], [node('c', 'Unknown'), 'Unknown'],
    [node('d', undefined), 'Unknown'], [node('e', 'True', true), 'Ready,SchedulingDisabled'],
  ];
  for (const [n, expected] of statuses) {
    it(`nodeStatus of ${n.metadata.name} is ${expected}`, () => assert.equal(nodeStatus(n), expected));
  }

  it('nodeLoads counts only live tasks and sums their reservations', () => {
    const loads = nodeLoads([task('t1', 'n1', 'running'), task('t2', 'n1', 'starting'), task('t3', 'n1', 'stopped'), task('t4', '', 'pending')]);
    assert.deepEqual([...loads.entries()], [['n1', { tasks: 2, cpu: 0.5, memory: 128 * 1024 * 1024 }]]);
  });

  it('nodesTable shows status, address, task count and reserved/allocatable', () => {
    const loads = nodeLoads([task('t1', 'berth-h1', 'running')]);
    const lines = nodesTable([node('berth-h1', 'True'), node('berth-h2', 'False')], loads, { wide: true, withNamespace: false, now: NOW }).trimEnd().split('\n');
    assert.deepEqual(lines[0]!.split(/\s+/), ['NAME', 'STATUS', 'ADDRESS', 'TASKS', 'CPU', 'MEMORY', 'AGE', 'LABELS', 'METRICS-URL']);
    assert.deepEqual(lines[1]!.split(/\s+/), ['berth-h1', 'Ready', '10.88.1.11', '1', '0.25/2', '64Mi/4Gi', '3d', 'host=berth-h1,zone=a', 'http://10.88.1.11:9480/metrics']);
    assert.deepEqual(lines[2]!.split(/\s+/).slice(0, 6), ['berth-h2', 'NotReady', '10.88.1.11', '0', '0/2', '0/4Gi']);
  });

  it('nodesTable without task loads says the count is unknown', () => {
    const row = nodesTable([node('n', 'True')], undefined, { wide: false, withNamespace: false, now: NOW }).trimEnd().split('\n')[1]!;
    assert.deepEqual(row.split(/\s+/).slice(3, 6), ['<unknown>', '2', '4Gi']);
  });
});

describe('cli apply outcome', () => {
  const cases: [number, number | undefined, number | undefined, string][] = [
    [201, undefined, 1, 'created'], [200, 1, 2, 'configured'], [200, 3, 3, 'unchanged'], [200, undefined, 4, 'configured'],
  ];
  for (const [status, before, after, expected] of cases) {
    it(`HTTP ${status} with generation ${before} -> ${after} is ${expected}`, () => assert.equal(applyOutcome(status, before, after), expected));
  }
});

describe('cli manifests', () => {
  it('reads several YAML documents and JSON, skipping empty documents', () => {
    const text = 'kind: Service\nmetadata: {name: a}\nspec: {}\n---\n{"kind":"Service","metadata":{"name":"b","namespace":"prod"}}\n---\n';
    const manifests = parseManifests(text, 'm.yaml');
    assert.deepEqual(manifests.map((m) => [m.kind, m.name, m.namespace]), [['Service', 'a', undefined], ['Service', 'b', 'prod']]);
  });

  it('flattens a document that is an array of objects', () => {
    const manifests = parseManifests('[{"kind":"Service","metadata":{"name":"a"}},{"kind":"Service","metadata":{"name":"b"}}]', 'm.json');
    assert.deepEqual(manifests.map((m) => m.name), ['a', 'b']);
  });

  const bad: [string, string, RegExp][] = [
    ['invalid YAML names line and column', 'kind: Service\nmetadata:\n  name: [web\n', /^m\.yaml:\d+:\d+: invalid YAML: /],
    ['a duplicate key is invalid', 'kind: Service\nkind: Service\n', /^m\.yaml:2:1: invalid YAML/],
    ['an unknown kind is refused', 'kind: Deployment\nmetadata: {name: a}\n', /kind "Deployment" is not supported \(supported: Service, Namespace, Secret, Config\)/],
    ['a missing name is refused', 'kind: Service\nmetadata: {}\n', /metadata\.name: required/],
    ['a missing kind is refused', 'metadata: {name: a}\n', /kind: required/],
    ['a scalar document is refused', 'hello\n', /expected an object/],
    ['an empty file is refused', '\n# nothing\n', /no objects found/],
  ];
  for (const [name, text, expected] of bad) {
    it(name, () => {
      assert.throws(() => parseManifests(text, 'm.yaml'), (err: unknown) => {
        assert.ok(err instanceof CliError, `expected a CliError, got ${String(err)}`);
        assert.equal(err.exitCode, 2);
        assert.match(err.message, expected);
        return true;
      });
    });
  }
});

describe('cli scale argument', () => {
  for (const ok of ['0', '6', '10000']) it(`accepts ${ok}`, () => assert.equal(parseReplicas(ok), Number(ok)));
  for (const bad of ['-1', '1.5', 'x', '', ' 3', '1e3']) {
    it(`refuses "${bad}" as bad usage`, () => assert.throws(() => parseReplicas(bad), (e: unknown) => e instanceof CliError && e.exitCode === 2));
  }
});
