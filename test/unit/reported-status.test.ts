/** The control plane's own fields of a task status survive an agent's report (state that survives failover). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeReported } from '../../control-plane/gateway/reported-status.js';
import type { TaskStatus } from '../../control-plane/objects/types.js';

const T0 = new Date('2026-12-03T10:00:00.000Z');
const T1 = new Date('2026-12-03T10:00:05.000Z');

test('readySince is stamped when a task becomes ready and kept while it stays ready', () => {
  const starting: TaskStatus = { phase: 'running', restarts: 0, ready: false };
  const ready = mergeReported(starting, { phase: 'running', restarts: 0, ready: true }, T0);
  assert.equal(ready.readySince, T0.toISOString());
  const again = mergeReported(ready, { phase: 'running', restarts: 0, ready: true }, T1);
  assert.equal(again.readySince, T0.toISOString(), 'a repeated report does not move it');
  const unready = mergeReported(again, { phase: 'running', restarts: 0, ready: false }, T1);
  assert.equal(unready.readySince, undefined, 'not ready: no readySince');
  assert.equal(mergeReported(unready, { phase: 'running', restarts: 0, ready: true }, T1).readySince, T1.toISOString(), 'counted again from the new transition');
  // A container restarted in place (the task stays running) is a new container: its clock restarts.
  const restarted = mergeReported(again, { phase: 'running', restarts: 1, ready: true, startedAt: T1.toISOString() }, T1);
  assert.equal(restarted.readySince, T1.toISOString());
});

test('a failed task keeps its replaceAfter through repeated reports, and loses it once it runs again', () => {
  const failed: TaskStatus = { phase: 'failed', restarts: 1, exitCode: 1, replaceAfter: T1.toISOString() };
  const repeated = mergeReported(failed, { phase: 'failed', restarts: 1, exitCode: 1 }, T0);
  assert.equal(repeated.replaceAfter, T1.toISOString());
  assert.deepEqual(mergeReported(failed, { phase: 'failed', restarts: 1, exitCode: 1 }, T0), failed, 'unchanged: nothing to write');
  assert.equal(mergeReported(failed, { phase: 'running', restarts: 2, ready: true }, T0).replaceAfter, undefined);
});
