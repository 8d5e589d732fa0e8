/** The agent's side of DesiredTasks: a revision's template comes once and every task that names it gets it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromDesiredTasks } from '../../agent/convert.js';
import { toDesiredTasks, toProtoTemplate } from '../../control-plane/gateway/convert.js';
import type { Task } from '../../control-plane/objects/types.js';

function task(name: string, ref: string | undefined, image: string): Task {
  return {
    kind: 'Task',
    metadata: { name, namespace: 'default', uid: `u-${name}`, generation: 1, labels: {}, createdAt: '2026-01-01T00:00:00Z' },
    spec: { service: 'web', nodeName: 'n1', desiredState: 'running', template: { image, env: { A: '1' } }, ...(ref ? { templateRef: ref } : {}), revision: 1 },
    status: { phase: 'assigned', restarts: 0 },
  };
}

test('tasks sharing a template ref get the one template sent; a task with its own template keeps it', () => {
  const wire = toDesiredTasks([task('web-b', 'svc.2', 'img:2'), task('web-a', 'svc.2', 'img:2'), task('old-1', undefined, 'img:1')]);
  assert.deepEqual(wire.tasks.map((t) => t.name), ['old-1', 'web-a', 'web-b'], 'sorted by name');
  const desired = fromDesiredTasks(wire);
  assert.deepEqual(desired.map((d) => [d.name, d.template?.image, d.template?.env]), [
    ['old-1', 'img:1', { A: '1' }], ['web-a', 'img:2', { A: '1' }], ['web-b', 'img:2', { A: '1' }],
  ]);
});

test('a task whose named template did not come arrives without one (it has no image, so it never starts)', () => {
  const desired = fromDesiredTasks({ tasks: [{ namespace: 'default', service: 'web', name: 'web-a', uid: 'u', desiredState: 'running', revision: 1, template: undefined, templateRef: 'missing.1' }], templates: { 'other.1': toProtoTemplate({ image: 'x' }) }, secrets: {}, configs: {} });
  assert.equal(desired[0]!.template, undefined);
});
