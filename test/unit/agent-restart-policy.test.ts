import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerSpec, ContainerState, ContainerStats, Runtime } from '../../agent/runtime/runtime.js';
import type { Images, ResolvedImage } from '../../agent/images/index.js';
import { Reconciler, type DesiredTask, type TaskStatusView } from '../../agent/reconciler/index.js';
import {
  backoffMessage, backoffResetMs, formatDelay, restartBackoffMs, shouldRestart, type RestartPolicyName,
} from '../../agent/reconciler/restart.js';
import { fromAssignment, restartSettings } from '../../agent/convert.js';

test('restart back-off doubles from backoffSeconds and is capped at maxBackoffSeconds', () => {
  const table: Array<[{ backoffMs: number; maxBackoffMs: number }, number[]]> = [
    [{ backoffMs: 1000, maxBackoffMs: 60_000 }, [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000]],
    [{ backoffMs: 5000, maxBackoffMs: 12_000 }, [5000, 10_000, 12_000, 12_000, 12_000, 12_000, 12_000, 12_000]],
    [{ backoffMs: 1000, maxBackoffMs: 1000 }, [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000]],
  ];
  for (const [s, want] of table) assert.deepEqual(want.map((_, i) => restartBackoffMs(i + 1, s)), want, JSON.stringify(s));
  assert.equal(restartBackoffMs(10_000, { backoffMs: 1000, maxBackoffMs: 60_000 }), 60_000, 'no overflow on long loops');
});

test('restart settings default to policy always, 1 s doubling to 60 s; the cap never undercuts the first wait', () => {
  assert.deepEqual(restartSettings(undefined), { policy: 'always', backoffMs: 1000, maxBackoffMs: 60_000 });
  assert.deepEqual(restartSettings({ policy: '', backoffSeconds: 0, maxBackoffSeconds: 0 }), { policy: 'always', backoffMs: 1000, maxBackoffMs: 60_000 });
  assert.deepEqual(restartSettings({ policy: 'on-failure', backoffSeconds: 2, maxBackoffSeconds: 10 }), { policy: 'on-failure', backoffMs: 2000, maxBackoffMs: 10_000 });
  assert.deepEqual(restartSettings({ policy: 'never', backoffSeconds: 90, maxBackoffSeconds: 30 }), { policy: 'never', backoffMs: 90_000, maxBackoffMs: 90_000 });
  assert.equal(backoffResetMs({ maxBackoffMs: 60_000 }), 120_000);
  assert.equal(backoffResetMs({ maxBackoffMs: 3_600_000 }), 600_000, 'never more than 10 minutes');
});

test('restart decision table: policy x exit code x OOM x unhealthy', () => {
  const rows: Array<[RestartPolicyName, number, boolean, boolean, boolean]> = [
    // policy, exitCode, oomKilled, unhealthy, restart?
    ['always', 0, false, false, true],
    ['always', 1, false, false, true],
    ['always', 137, true, false, true],
    ['always', 143, false, true, true],
    ['on-failure', 0, false, false, false],
    ['on-failure', 1, false, false, true],
    ['on-failure', 137, true, false, true],
    ['on-failure', 0, true, false, true],
    ['on-failure', 143, false, true, true],
    ['never', 0, false, false, false],
    ['never', 1, false, false, false],
    ['never', 137, true, false, false],
    ['never', 143, false, true, false],
  ];
  for (const [policy, exitCode, oomKilled, unhealthy, want] of rows) {
    assert.equal(shouldRestart(policy, { exitCode, oomKilled, unhealthy }), want, `${policy} exit ${exitCode} oom=${oomKilled} unhealthy=${unhealthy}`);
  }
});

test('back-off messages read like kubelet', () => {
  assert.equal(backoffMessage(8000, { exitCode: 1, oomKilled: false, unhealthy: false }), 'back-off 8s restarting failed container (exit 1)');
  assert.equal(backoffMessage(64_000, { exitCode: 137, oomKilled: true, unhealthy: false }), 'back-off 1m4s restarting OOM-killed container');
  assert.equal(backoffMessage(1000, { exitCode: 143, oomKilled: false, unhealthy: true }, 'http :80/: HTTP 500'), 'back-off 1s restarting unhealthy container (http :80/: HTTP 500)');
  assert.deepEqual([formatDelay(500), formatDelay(60_000), formatDelay(61_000)], ['500ms', '1m', '1m1s']);
});

/** FakeRuntime keeps containers in memory; exit() ends one the way the shim would report it. */
class FakeRuntime implements Runtime {
  readonly cgroupVersion = 'v1' as const;
  readonly containers = new Map<string, ContainerState>();
  runs: ContainerSpec[] = [];
  removes: string[] = [];
  private nextPid = 1000;
  async run(spec: ContainerSpec): Promise<ContainerState> {
    if (this.containers.has(spec.id)) throw new Error(`container ${spec.id} exists`);
    this.runs.push(spec);
    const st: ContainerState = { id: spec.id, status: 'running', pid: this.nextPid++, shimPid: 1, startedAt: new Date().toISOString(), labels: spec.labels, logPath: '/dev/null' };
    this.containers.set(spec.id, st);
    return { ...st };
  }
  async state(id: string) { const s = this.containers.get(id); return s && { ...s }; }
  async list() { return [...this.containers.values()].map((s) => ({ ...s })); }
  async stop(id: string) { const s = this.containers.get(id); if (s?.status === 'running') this.exit(id, 143); return this.state(id); }
  async remove(id: string) { this.removes.push(id); this.containers.delete(id); }
  async stats(): Promise<ContainerStats | undefined> { return undefined; }
  exit(id: string, exitCode: number, oomKilled = false): void {
    Object.assign(this.containers.get(id)!, { status: 'exited', exitCode, oomKilled, finishedAt: new Date().toISOString() });
  }
}

const IMAGE: ResolvedImage = {
  reference: 'oci:/seed/busybox:1.36', digest: 'sha256:' + 'b'.repeat(64), lowerDirs: ['/nonexistent/layer'],
  config: { entrypoint: [], cmd: ['sh'], env: ['PATH=/bin'], workingDir: '/', user: '' },
};
const images: Images = { async resolve() { return IMAGE; } } as unknown as Images;

// What the control plane sends, through the agent's boundary, as the reconciler receives it.
function task(policy: string): DesiredTask {
  return fromAssignment({
    namespace: 'default', service: 'crash', name: 'crash-1', uid: 'uid-crash-1', desiredState: 'running', revision: 1,
    template: {
      image: IMAGE.reference, command: ['false'], env: {}, workingDir: '', user: '', resources: undefined, ports: [], security: undefined, pullPolicy: '', readiness: undefined, startup: undefined, secrets: [], configs: [], volumes: [],
      health: undefined, restart: policy === '' ? undefined : { policy, backoffSeconds: 1, maxBackoffSeconds: 60 },
    },
  });
}

function harness() {
  const runtime = new FakeRuntime();
  const reports: TaskStatusView[] = [];
  const r = new Reconciler({ runtime, images, report: (s) => reports.push(s), stopGraceMs: 10, resyncMs: 20 });
  after(() => r.close());
  return { runtime, r, reports };
}

async function until(cond: () => boolean, what: string, limitMs = 5000): Promise<void> {
  for (let i = 0; i < limitMs / 20 && !cond(); i++) await new Promise((res) => setTimeout(res, 20));
  assert.ok(cond(), `timed out waiting for ${what}`);
}

test('policy always: a crash keeps the task running with CrashLoopBackOff, then a new container runs and restarts counts', async () => {
  const { runtime, r, reports } = harness();
  await r.start();
  r.setDesired([task('always')]);
  await until(() => reports.some((s) => s.phase === 'running' && s.pid === 1000), 'first run');
  runtime.exit('uid-crash-1', 1);
  await until(() => reports.some((s) => s.reason === 'CrashLoopBackOff'), 'CrashLoopBackOff');
  const waiting = reports.find((s) => s.reason === 'CrashLoopBackOff')!;
  assert.equal(waiting.phase, 'running');
  assert.equal(waiting.exitCode, 1);
  assert.equal(waiting.ready, false);
  assert.equal(waiting.message, 'back-off 1s restarting failed container (exit 1)');
  await until(() => reports.some((s) => s.phase === 'running' && s.pid === 1001), 'the restarted container');
  const restarted = reports.at(-1)!;
  assert.deepEqual([restarted.restarts, restarted.exitCode, restarted.reason, restarted.ready], [1, 1, undefined, true]);
  assert.equal(runtime.runs.length, 2);
  assert.equal(runtime.runs[1]!.labels['berth.restarts'], '1', 'the count survives an agent restart through the label');
  assert.deepEqual(runtime.removes, ['uid-crash-1'], 'the old container was removed before the new one took its id');
  assert.ok(!reports.some((s) => s.phase === 'failed' || s.phase === 'preparing' && reports.indexOf(s) > 2), 'never failed, never back to preparing');
  // The second crash waits twice as long.
  runtime.exit('uid-crash-1', 2);
  await until(() => reports.some((s) => s.message === 'back-off 2s restarting failed container (exit 2)'), 'doubled back-off');
});

test('policy on-failure: a clean exit ends the task succeeded; an OOM kill is restarted', async () => {
  const { runtime, r, reports } = harness();
  await r.start();
  r.setDesired([task('on-failure')]);
  await until(() => reports.some((s) => s.phase === 'running'), 'first run');
  runtime.exit('uid-crash-1', 137, true);
  await until(() => reports.some((s) => s.reason === 'CrashLoopBackOff'), 'restart after OOM');
  assert.match(reports.find((s) => s.reason === 'CrashLoopBackOff')!.message!, /OOM-killed/);
  await until(() => reports.some((s) => s.pid === 1001), 'restarted');
  runtime.exit('uid-crash-1', 0);
  await until(() => reports.some((s) => s.phase === 'succeeded'), 'succeeded');
  await r.idle();
  assert.equal(runtime.runs.length, 2);
});

test('policy never: a crash is reported failed and left to the control plane', async () => {
  const { runtime, r, reports } = harness();
  await r.start();
  r.setDesired([task('never')]);
  await until(() => reports.some((s) => s.phase === 'running'), 'first run');
  runtime.exit('uid-crash-1', 1);
  await until(() => reports.some((s) => s.phase === 'failed'), 'failed');
  await new Promise((res) => setTimeout(res, 100));
  assert.equal(runtime.runs.length, 1);
  assert.equal(reports.at(-1)!.reason, 'Error');
});

test('no restart block means policy always', async () => {
  const { runtime, r, reports } = harness();
  await r.start();
  r.setDesired([task('')]);
  await until(() => reports.some((s) => s.phase === 'running'), 'first run');
  runtime.exit('uid-crash-1', 0);
  await until(() => reports.some((s) => s.reason === 'CrashLoopBackOff'), 'restart after a clean exit');
  assert.match(reports.find((s) => s.reason === 'CrashLoopBackOff')!.message!, /completed container \(exit 0\)/);
});

test('a task set to stopped during the back-off is stopped, not restarted', async () => {
  const { runtime, r, reports } = harness();
  await r.start();
  r.setDesired([task('always')]);
  await until(() => reports.some((s) => s.phase === 'running'), 'first run');
  runtime.exit('uid-crash-1', 1);
  await until(() => reports.some((s) => s.reason === 'CrashLoopBackOff'), 'waiting');
  r.setDesired([{ ...task('always'), desiredState: 'stopped' }]);
  await r.idle();
  await new Promise((res) => setTimeout(res, 1200));
  assert.equal(runtime.runs.length, 1);
  assert.equal(reports.at(-1)!.phase, 'stopped');
});

test('a container that exited while the agent was down is restarted after re-adoption when its policy says so', async () => {
  const { runtime, r, reports } = harness();
  const labels = (policy: string, uid: string, name: string) => ({ 'berth.uid': uid, 'berth.task': name, 'berth.namespace': 'default', 'berth.restarts': '3', 'berth.restart-policy': policy });
  const exited = (id: string, l: Record<string, string>): ContainerState => ({
    id, status: 'exited', pid: 7, shimPid: 1, startedAt: new Date(Date.now() - 2000).toISOString(), finishedAt: new Date().toISOString(), exitCode: 1, labels: l, logPath: '/dev/null',
  });
  runtime.containers.set('uid-crash-1', exited('uid-crash-1', labels('always', 'uid-crash-1', 'crash-1')));
  runtime.containers.set('uid-once-1', exited('uid-once-1', labels('never', 'uid-once-1', 'once-1')));
  await r.start();
  const byName = new Map(r.statuses().map((s) => [s.name, s]));
  assert.deepEqual([byName.get('crash-1')?.phase, byName.get('crash-1')?.reason, byName.get('crash-1')?.restarts], ['running', 'CrashLoopBackOff', 3]);
  assert.deepEqual([byName.get('once-1')?.phase, byName.get('once-1')?.exitCode], ['failed', 1]);
  r.setDesired([task('always')]);
  await until(() => reports.some((s) => s.name === 'crash-1' && s.phase === 'running' && s.pid === 1000), 'the restarted container');
  assert.equal(reports.at(-1)!.restarts, 4);
});
