import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TaskAssignment } from '../../proto/gen/berth/v1/agent.js';
import type { ContainerSpec, ContainerState, ContainerStats, Runtime } from '../../agent/runtime/runtime.js';
import type { Images, ResolvedImage } from '../../agent/images/index.js';
import { AgentError } from '../../agent/errors.js';
import { Reconciler, type DesiredTask, type TaskStatusView } from '../../agent/reconciler/index.js';
import { pullBackoffMs } from '../../agent/reconciler/pull.js';
import { fromAssignment, pullPolicyOf, restartSettings } from '../../agent/convert.js';

/** FakeRuntime keeps containers in memory and counts calls. */
class FakeRuntime implements Runtime {
  readonly cgroupVersion = 'v1' as const;
  readonly containers = new Map<string, ContainerState>();
  readonly specs = new Map<string, ContainerSpec>();
  runs = 0;
  stops: string[] = [];
  removes: string[] = [];
  private nextPid = 1000;

  async run(spec: ContainerSpec): Promise<ContainerState> {
    this.runs++;
    if (this.containers.has(spec.id)) throw new Error(`container ${spec.id} exists`);
    const st: ContainerState = { id: spec.id, status: 'running', pid: this.nextPid++, shimPid: 1, startedAt: new Date().toISOString(), labels: spec.labels, logPath: '/dev/null' };
    this.containers.set(spec.id, st);
    this.specs.set(spec.id, spec);
    return { ...st };
  }
  async state(id: string) { const s = this.containers.get(id); return s && { ...s }; }
  async list() { return [...this.containers.values()].map((s) => ({ ...s })); }
  async stop(id: string) {
    this.stops.push(id);
    const s = this.containers.get(id);
    if (s && s.status === 'running') this.exit(id, 143, 15);
    return this.state(id);
  }
  async remove(id: string) { this.removes.push(id); this.containers.delete(id); }
  async stats(): Promise<ContainerStats | undefined> { return undefined; }
  exit(id: string, exitCode: number, signal?: number): void {
    const s = this.containers.get(id)!;
    Object.assign(s, { status: 'exited', exitCode, finishedAt: new Date().toISOString(), ...(signal ? { signal } : {}) });
  }
}

const IMAGE: ResolvedImage = {
  reference: 'oci:/seed/busybox:1.36', digest: 'sha256:' + 'a'.repeat(64), lowerDirs: ['/nonexistent/layer'],
  config: { entrypoint: [], cmd: ['sh'], env: ['PATH=/bin', 'A=image'], workingDir: '/', user: '' },
};
const images: Images = {
  async resolve(ref) {
    if (ref === 'oci-archive:/missing.tar') throw new AgentError('BERTH_ERR_IMAGE_NOT_FOUND', 'oci-archive /missing.tar: no such file');
    return IMAGE;
  },
};

// What the control plane sends, through the agent's boundary, as the reconciler receives it.
function task(n: number, over: Partial<DesiredTask> = {}): DesiredTask {
  const sent: TaskAssignment = {
    namespace: 'default', service: 'web', name: `web-${n}`, uid: `uid-${n}`, desiredState: 'running', revision: 1,
    template: { image: IMAGE.reference, command: ['httpd', '-f'], env: { A: 'tpl' }, workingDir: '', user: '1000:1000', resources: { cpuCores: 0.5, memoryBytes: 64 << 20, pids: 0 }, ports: [], security: undefined, pullPolicy: '', readiness: undefined, startup: undefined, secrets: [], configs: [], volumes: [], health: undefined, restart: undefined },
  };
  return { ...fromAssignment(sent), ...over };
}

function harness(runtime = new FakeRuntime()) {
  const reports: TaskStatusView[] = [];
  const r = new Reconciler({ runtime, images, report: (s) => reports.push(s), stopGraceMs: 10, resyncMs: 20, pullBackoffInitialMs: 20, pullBackoffMaxMs: 40 });
  after(() => r.close());
  const phases = (name: string) => reports.filter((s) => s.name === name).map((s) => s.phase);
  return { runtime, r, reports, phases };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((res) => setTimeout(res, 10));
  assert.ok(cond(), `timed out waiting for ${what}`);
}

test('desired 3 tasks start 3 containers, each reported preparing -> starting -> running', async () => {
  const { runtime, r, phases, reports } = harness();
  await r.start();
  r.setDesired([task(1), task(2), task(3)]);
  await r.idle();
  assert.equal(runtime.runs, 3);
  for (const n of [1, 2, 3]) assert.deepEqual(phases(`web-${n}`), ['preparing', 'starting', 'running']);
  const running = reports.filter((s) => s.phase === 'running');
  assert.ok(running.every((s) => s.pid! > 0 && s.containerId === s.uid && s.startedAt));
  const spec = runtime.specs.get('uid-1')!;
  assert.deepEqual(spec.args, ['httpd', '-f']);
  assert.deepEqual(spec.env, ['PATH=/bin', 'A=tpl']);
  assert.deepEqual([spec.uid, spec.gid, spec.cwd, spec.hostname], [1000, 1000, '/', 'web-1']);
  assert.deepEqual(spec.limits, { cpuCores: 0.5, memoryBytes: 64 << 20 });
  assert.equal(spec.labels['berth.uid'], 'uid-1');
  // Pushing the same set again is a no-op (level-triggered, idempotent).
  r.setDesired([task(1), task(2), task(3)]);
  await r.idle();
  assert.equal(runtime.runs, 3);
});

test('a task removed from the desired set is stopped and removed exactly once', async () => {
  const { runtime, r } = harness();
  await r.start();
  r.setDesired([task(1), task(2), task(3)]);
  await r.idle();
  r.setDesired([task(1), task(3)]);
  await r.idle();
  assert.deepEqual(runtime.stops, ['uid-2']);
  assert.deepEqual(runtime.removes, ['uid-2']);
  assert.deepEqual([...runtime.containers.keys()].sort(), ['uid-1', 'uid-3']);
  assert.deepEqual(r.statuses().map((s) => s.name).sort(), ['web-1', 'web-3']);
});

test('desiredState stopped stops the container and reports stopped', async () => {
  const { runtime, r, phases } = harness();
  await r.start();
  r.setDesired([task(1)]);
  await r.idle();
  r.setDesired([task(1, { desiredState: 'stopped' })]);
  await r.idle();
  assert.equal(runtime.containers.size, 0);
  assert.deepEqual(phases('web-1').at(-1), 'stopped');
});

test('under restart policy never, a container exiting non-zero is reported failed with its exit code, and is not restarted', async () => {
  const { runtime, r, reports } = harness();
  await r.start();
  const never = (n: number) => { const t = task(n); t.template!.restart = restartSettings({ policy: 'never', backoffSeconds: 0, maxBackoffSeconds: 0 }); return t; };
  r.setDesired([never(1), never(2)]);
  await r.idle();
  runtime.exit('uid-1', 3);
  runtime.exit('uid-2', 0);
  await until(() => reports.some((s) => s.name === 'web-1' && s.phase === 'failed') && reports.some((s) => s.name === 'web-2' && s.phase === 'succeeded'), 'exit reports');
  await r.idle();
  const failed = reports.find((s) => s.name === 'web-1' && s.phase === 'failed')!;
  assert.equal(failed.exitCode, 3);
  assert.equal(failed.reason, 'Error');
  assert.ok(failed.finishedAt);
  assert.equal(reports.find((s) => s.name === 'web-2' && s.phase === 'succeeded')!.reason, 'Completed');
  r.setDesired([never(1), never(2)]);
  await r.idle();
  assert.equal(runtime.runs, 2);
});

test('a missing image keeps the task preparing with ErrImagePull, then ImagePullBackOff, retried with back-off', async () => {
  const { runtime, r, reports } = harness();
  await r.start();
  r.setDesired([task(1, { template: { ...task(1).template!, image: 'oci-archive:/missing.tar' } })]);
  await r.idle();
  assert.equal(runtime.runs, 0);
  const first = reports.at(-1)!;
  assert.deepEqual([first.phase, first.reason], ['preparing', 'ErrImagePull']);
  assert.match(first.message ?? '', /^oci-archive \/missing\.tar: no such file \(ImageNotFound; retrying in \d+m?s\)$/);
  // The harness backs off 20 ms, then 40 ms: the second failure reads ImagePullBackOff.
  await until(() => reports.some((s) => s.reason === 'ImagePullBackOff'), 'a retried pull');
  assert.ok(reports.every((s) => s.phase === 'preparing'), 'a task that cannot pull is never failed (no churn)');
});

test('pull back-off doubles from 1 s and is capped at 5 minutes', () => {
  assert.deepEqual([1, 2, 3, 4, 9, 10, 50].map((n) => pullBackoffMs(n)), [1_000, 2_000, 4_000, 8_000, 256_000, 300_000, 300_000]);
  assert.deepEqual(['', 'always', 'never', 'if-not-present', 'bogus'].map(pullPolicyOf), ['if-not-present', 'always', 'never', 'if-not-present', 'if-not-present']);
});

test('the pull policy reaches the image store, progress is reported throttled, and a pull that later works runs the task', async () => {
  const seen: (string | undefined)[] = [];
  let fail = true;
  const flaky: Images = {
    async resolve(_ref, opts) {
      seen.push(opts?.policy);
      if (fail) throw new AgentError('BERTH_ERR_IMAGE_NOT_FOUND', 'not yet');
      for (let i = 1; i <= 100; i++) opts?.onProgress?.(i * 1024, 100 * 1024);
      return IMAGE;
    },
  };
  const runtime = new FakeRuntime();
  const reports: TaskStatusView[] = [];
  const r = new Reconciler({ runtime, images: flaky, report: (s) => reports.push(s), stopGraceMs: 10, resyncMs: 20, pullBackoffInitialMs: 20, pullBackoffMaxMs: 40 });
  after(() => r.close());
  await r.start();
  r.setDesired([task(1, { template: { ...task(1).template!, pullPolicy: 'always' } })]);
  await until(() => seen.length >= 2, 'two pull attempts');
  fail = false;
  await until(() => reports.at(-1)?.phase === 'running', 'the task running once the image appears');
  assert.ok(seen.every((p) => p === 'always'));
  const progress = reports.filter((s) => s.pullBytesTotal !== undefined);
  assert.ok(progress.length >= 1 && progress.length <= 2, `100 progress callbacks in one burst give the first and the last update, saw ${progress.length}`);
  assert.deepEqual([progress.at(-1)!.pullBytesDone, progress.at(-1)!.pullBytesTotal], [100 * 1024, 100 * 1024]);
  assert.equal(reports.at(-1)!.reason, undefined, 'the back-off reason is cleared once running');
  assert.equal(reports.at(-1)!.pullBytesTotal, undefined, 'progress is not carried past preparing');
});

test('at start-up existing containers are re-adopted, not started twice, and orphans are removed', async () => {
  const runtime = new FakeRuntime();
  const first = harness(runtime);
  await first.r.start();
  first.r.setDesired([task(1), task(2)]);
  await first.r.idle();
  await first.r.close();
  // A non-berth container must be left alone.
  runtime.containers.set('foreign', { id: 'foreign', status: 'running', pid: 1, shimPid: 1, startedAt: '', labels: {}, logPath: '' });

  const second = harness(runtime);
  await second.r.start();
  assert.deepEqual(second.r.statuses().map((s) => [s.name, s.phase]).sort(), [['web-1', 'running'], ['web-2', 'running']]);
  second.r.setDesired([task(1), task(3)]);
  await second.r.idle();
  assert.equal(runtime.runs, 3, 'only web-3 is new');
  assert.deepEqual(runtime.removes, ['uid-2']);
  assert.deepEqual([...runtime.containers.keys()].sort(), ['foreign', 'uid-1', 'uid-3']);
});

test('rapid desired-set changes never run two containers for one task', async () => {
  const { runtime, r } = harness();
  await r.start();
  for (let i = 0; i < 20; i++) r.setDesired(i % 2 === 0 ? [task(1)] : []);
  r.setDesired([task(1)]);
  await r.idle();
  assert.deepEqual([...runtime.containers.keys()], ['uid-1']);
  assert.equal(runtime.runs - runtime.removes.length, 1);
});

test('an invalid task identity fails with StartError instead of reaching the runtime', async () => {
  const { runtime, r, reports } = harness();
  await r.start();
  r.setDesired([task(1, { uid: 'Not Valid', name: 'Also_Bad' })]);
  await r.idle();
  assert.equal(runtime.runs, 0);
  assert.deepEqual([reports.at(-1)!.phase, reports.at(-1)!.reason], ['failed', 'StartError']);
});
