import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeNode, describeTask } from '../../control-plane/cli/describe.js';
import { imagesTable, phaseCell, tasksTable } from '../../control-plane/cli/format.js';
import type { Node, Task } from '../../control-plane/objects/types.js';

const NOW = Date.parse('2025-01-01T00:10:00Z');
const MIB = 1024 * 1024;

const PHASES: [Parameters<typeof phaseCell>[0], string][] = [
  [{ phase: 'running' }, 'running'],
  [{ phase: 'preparing' }, 'preparing'],
  [{ phase: 'preparing', pullBytesDone: 12.5 * MIB, pullBytesTotal: 48 * MIB }, 'preparing 12.5/48.0MiB'],
  [{ phase: 'preparing', reason: 'ImagePullBackOff', pullBytesDone: 1, pullBytesTotal: 2 }, 'preparing (ImagePullBackOff)'],
  [{ phase: 'failed', pullBytesDone: 1, pullBytesTotal: 2 }, 'failed'],
  [{ phase: 'running', reason: 'CrashLoopBackOff' }, 'running (CrashLoopBackOff)'],
];
for (const [st, want] of PHASES) test(`phaseCell(${JSON.stringify(st)}) = ${want}`, () => assert.equal(phaseCell(st), want));

const task: Task = {
  kind: 'Task',
  metadata: { name: 'web-abc', namespace: 'default', uid: 'u1', generation: 1, labels: {}, createdAt: '2025-01-01T00:00:00Z' },
  spec: { service: 'web', nodeName: 'host-1', desiredState: 'running', revision: 2, template: { image: 'docker-archive:/img.tar', pullPolicy: 'never' } },
  status: { phase: 'preparing', restarts: 0, reason: 'ErrImageNeverPull', message: 'image docker-archive:/img.tar is not present', pullBytesDone: MIB, pullBytesTotal: 4 * MIB },
};

test('get tasks shows pull progress in the PHASE column', () => {
  const t = structuredClone(task);
  delete t.status.reason;
  assert.match(tasksTable([t], { wide: false, withNamespace: false, now: NOW }), /web-abc\s+web\s+host-1\s+preparing 1\.0\/4\.0MiB\s+false\s/);
});

test('describe task shows the template, reason, message, progress and the image digest run', () => {
  const page = describeTask(task, NOW);
  for (const line of [/^Name:\s+web-abc$/m, /^  Pull policy:\s+never$/m, /^  Reason:\s+ErrImageNeverPull$/m,
    /^  Message:\s+image docker-archive:\/img\.tar is not present$/m, /^  Pull progress:\s+1\.0\/4\.0MiB$/m, /^  Image digest:\s+<none>$/m]) {
    assert.match(page, line);
  }
  const running = structuredClone(task);
  running.status = { phase: 'running', restarts: 0, imageDigest: `sha256:${'b'.repeat(64)}`, pid: 42 };
  assert.match(describeTask(running, NOW), new RegExp(`^  Image digest:\\s+sha256:${'b'.repeat(64)}$`, 'm'));
});

test('get images and describe node list the images a node reports, one row per reference', () => {
  const node: Node = {
    kind: 'Node',
    metadata: { name: 'host-1', uid: 'n1', generation: 1, labels: { zone: 'a' }, createdAt: '2025-01-01T00:00:00Z' },
    spec: { unschedulable: false, taints: [] },
    status: {
      capacity: { cpu: 2, memory: 4 * 1024 * MIB, pids: 1000 }, allocatable: { cpu: 2, memory: 4 * 1024 * MIB, pids: 1000 },
      addresses: [{ type: 'InternalIP', address: '10.0.0.2' }], metricsUrl: 'http://10.0.0.2:9480/metrics', agentVersion: '0.1.0', cgroupVersion: 'v1',
      conditions: [{ type: 'Ready', status: 'True', reason: 'AgentConnected', message: 'ok', lastTransitionTime: '2025-01-01T00:00:00Z' }],
      images: [{ references: ['oci:/a:1', 'docker-archive:/a.tar'], digest: `sha256:${'c'.repeat(64)}`, sizeBytes: 2 * MIB, lastUsed: '2025-01-01T00:09:00Z', inUse: true }],
    },
  };
  const table = imagesTable(node.status.images!.map((i) => ({ node: 'host-1', ...i })), { now: NOW });
  assert.equal(table, [
    'NODE     REFERENCE               IMAGE-ID       SIZE   IN-USE   LAST-USED',
    `host-1   oci:/a:1                ${'c'.repeat(12)}   2Mi    yes      60s`,
    `host-1   docker-archive:/a.tar   ${'c'.repeat(12)}   2Mi    yes      60s`,
  ].join('\n') + '\n');
  const page = describeNode(node, [], NOW);
  assert.match(page, /^Status:\s+Ready$/m);
  assert.match(page, /^Images:\n  NODE/m);
  assert.match(page, /^  TYPE\s+STATUS\s+REASON/m);
});
