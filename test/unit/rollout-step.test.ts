import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Rollouts, isTaskFailing } from '../../control-plane/controllers/rollout.js';
import { historyTable, progressBar, rolloutState } from '../../control-plane/cli/rollout.js';
import { rollbackTarget } from '../../control-plane/api/routes-rollout.js';
import type { ContainerTemplate, Revision, Service, Task } from '../../control-plane/objects/types.js';
import type { Store } from '../../control-plane/store/store.js';
import type { Logger } from '../../common/log.js';

const OLD: ContainerTemplate = { image: 'busybox', command: ['sleep', '1000'], env: { V: '1' } };
const NEW: ContainerTemplate = { image: 'busybox', command: ['sleep', '1000'], env: { V: '2' } };
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child() { return quiet; } } as unknown as Logger;

function svc(template: ContainerTemplate, status: Partial<NonNullable<Service['status']>> = {}, update: Service['spec']['update'] = {}): Service {
  return {
    kind: 'Service',
    metadata: { name: 'web', namespace: 'default', uid: 'u-web', generation: 2, labels: {}, createdAt: '2026-01-01T00:00:00Z' },
    spec: { replicas: 2, template, update },
    status: { observedGeneration: 2, replicas: 2, runningReplicas: 2, conditions: [], currentRevision: 1, updateRevision: 2, ...status },
  };
}

function task(name: string, template: ContainerTemplate, status: Partial<Task['status']> = {}): Task {
  return {
    kind: 'Task',
    metadata: { name, namespace: 'default', uid: `u-${name}`, generation: 1, labels: {}, createdAt: '2026-01-01T00:00:00Z' },
    spec: { service: 'web', nodeName: 'n1', desiredState: 'running', template, revision: 1 },
    status: { phase: 'running', restarts: 0, ...status },
  };
}

describe('Rollouts.step', () => {
  it('a new task counts only after minReadySeconds of readiness', () => {
    const r = new Rollouts({} as Store, quiet);
    const s = svc(NEW, {}, { minReadySeconds: 5 });
    const tasks = [task('a', OLD), task('b', OLD), task('c', NEW)];
    const t0 = Date.now();
    const first = r.step(s, 2, tasks, t0);
    assert.deepEqual(first.plan.stop, [], 'no old task may stop before the new one has been ready 5 s');
    assert.ok(first.recheckMs !== undefined && first.recheckMs <= 5_100, `recheck after minReadySeconds, got ${first.recheckMs}`);
    const later = r.step(s, 2, tasks, t0 + 5_001);
    assert.equal(later.plan.stop.length, 1);
    assert.equal(later.status.updatedReplicas, 1);
  });
  it('a new leader counts minReadySeconds from the stored readySince, not from the task\'s start', () => {
    const t0 = Date.now();
    // The task started long ago but became ready (again) 2 s ago; the previous leader saw that.
    const tasks = [task('a', OLD), task('b', OLD), task('c', NEW, { ready: true, startedAt: new Date(t0 - 600_000).toISOString(), readySince: new Date(t0 - 2_000).toISOString() })];
    const successor = new Rollouts({} as Store, quiet);
    const s = svc(NEW, {}, { minReadySeconds: 5 });
    const now = successor.step(s, 2, tasks, t0);
    assert.deepEqual(now.plan.stop, [], 'only 2 of 5 s of readiness have passed');
    assert.equal(successor.step(s, 2, tasks, t0 + 3_001).plan.stop.length, 1, 'available once 5 s have passed since readySince');
  });
  it('ready=false is not available; absent ready is', () => {
    const r = new Rollouts({} as Store, quiet);
    const st = r.step(svc(NEW), 2, [task('a', NEW, { ready: false }), task('b', NEW)], Date.now());
    assert.equal(st.status.readyReplicas, 1);
  });
  it('completes when every replica runs the update revision; current follows', () => {
    const r = new Rollouts({} as Store, quiet);
    const st = r.step(svc(NEW), 2, [task('a', NEW), task('b', NEW)], Date.now());
    assert.equal(st.progressing.reason, 'RolloutComplete');
    assert.equal(st.status.currentRevision, 2);
    assert.equal(st.failure, undefined);
  });
  it('a failing new task fails the rollout', () => {
    const r = new Rollouts({} as Store, quiet);
    const st = r.step(svc(NEW), 2, [task('a', OLD), task('b', OLD), task('c', NEW, { phase: 'starting', restarts: 3, reason: 'CrashLoopBackOff' })], Date.now());
    assert.equal(st.failure?.reason, 'RolloutFailed');
    assert.match(st.failure!.message, /CrashLoopBackOff \(exit \?, 3 restarts\)/);
  });
  it('no progress past the deadline fails the rollout', () => {
    const r = new Rollouts({} as Store, quiet);
    const s = svc(NEW, { updatedReplicas: 1, readyReplicas: 2, lastProgressTime: '2026-01-01T00:00:00Z' }, { progressDeadlineSeconds: 10 });
    const st = r.step(s, 2, [task('a', OLD), task('b', OLD), task('c', NEW, { phase: 'starting' })], Date.parse('2026-01-01T00:00:11Z'));
    assert.equal(st.failure?.reason, 'ProgressDeadlineExceeded');
  });
  it('a crashing task in steady state is not a rollout failure', () => {
    const r = new Rollouts({} as Store, quiet);
    const st = r.step(svc(NEW, { currentRevision: 2 }), 2, [task('a', NEW, { restarts: 9 }), task('b', NEW)], Date.now());
    assert.equal(st.failure, undefined);
  });
  it('a rolled-back revision keeps Progressing=False RolledBack', () => {
    const r = new Rollouts({} as Store, quiet);
    const cond = { type: 'Progressing', status: 'False' as const, reason: 'RolledBack', message: 'rolled back to revision 1', lastTransitionTime: '2026-01-01T00:00:00Z' };
    const st = r.step(svc(OLD, { updateRevision: 3, rolledBackRevision: 3, conditions: [cond] }), 3, [task('a', OLD), task('b', OLD)], Date.now());
    assert.deepEqual([st.progressing.status, st.progressing.reason], ['False', 'RolledBack']);
  });
  it('isTaskFailing: failed phase, 3 restarts, CrashLoopBackOff or Unhealthy', () => {
    assert.equal(isTaskFailing(task('a', NEW, { phase: 'failed' })), true);
    assert.equal(isTaskFailing(task('a', NEW, { restarts: 2 })), false);
    assert.equal(isTaskFailing(task('a', NEW, { reason: 'CrashLoopBackOff' })), true);
    assert.equal(isTaskFailing(task('a', NEW, { reason: 'Unhealthy' })), true, 'a failed health check past its threshold');
  });
});

function rev(n: number, template: ContainerTemplate): Revision {
  return { kind: 'Revision', metadata: { name: String(n), namespace: 'default', uid: `r${n}`, generation: 1, labels: {}, createdAt: '2026-01-01T00:00:00Z' }, spec: { service: 'web', revision: n, template }, status: {} };
}

describe('rollback target and CLI rendering', () => {
  it('undo without a revision picks the newest revision with a different template', () => {
    const revs = [rev(1, OLD), rev(2, NEW), rev(3, OLD)];
    assert.equal(rollbackTarget(revs, svc(OLD))?.spec.revision, 2);
    assert.equal(rollbackTarget(revs, svc(NEW))?.spec.revision, 3);
    assert.equal(rollbackTarget(revs, svc(NEW), 1)?.spec.revision, 1);
    assert.equal(rollbackTarget(revs, svc(NEW), 9), undefined);
  });
  it('progressBar fills proportionally', () => {
    assert.equal(progressBar(3, 6), '[#####.....]');
    assert.equal(progressBar(0, 6), '[..........]');
    assert.equal(progressBar(6, 6), '[##########]');
  });
  it('rolloutState: waiting, complete, failed', () => {
    const base = svc(NEW, { updatedReplicas: 1, readyReplicas: 2 });
    assert.equal(rolloutState({ ...base, status: { ...base.status!, observedGeneration: 1 } }).outcome, 'progressing');
    const done = svc(NEW, { updatedReplicas: 2, readyReplicas: 2, conditions: [{ type: 'Progressing', status: 'True', reason: 'RolloutComplete', message: '', lastTransitionTime: '' }] });
    assert.equal(rolloutState(done).outcome, 'complete');
    const failed = svc(NEW, { conditions: [{ type: 'Progressing', status: 'False', reason: 'RolledBack', message: 'rolled back to revision 1', lastTransitionTime: '' }] });
    const f = rolloutState(failed);
    assert.equal(f.outcome, 'failed');
    assert.match(f.line, /RolledBack.*rolled back to revision 1/);
    assert.match(rolloutState(base).line, /^\[#####\.\.\.\.\.\] 1\/2 updated, 2 ready$/);
  });
  it('history lists REVISION, IMAGE, CREATED, CHANGE-CAUSE and marks the update revision', () => {
    const revs = [rev(1, OLD), { ...rev(2, NEW), spec: { ...rev(2, NEW).spec, changeCause: 'automatic rollback to revision 1' } }];
    const out = historyTable(revs, svc(NEW), Date.parse('2026-01-01T00:01:00Z'));
    const lines = out.trimEnd().split('\n');
    assert.match(lines[0]!, /^REVISION\s+IMAGE\s+CREATED\s+CHANGE-CAUSE$/);
    assert.match(lines[2]!, /^2 \*\s+busybox\s+60s\s+automatic rollback to revision 1$/);
  });
});
