/**
 * The agent refuses a task that would overcommit its node (the kubelet's admission): the pure
 * decision (admission.ts) table-driven, then through the real Reconciler over an in-memory
 * runtime: a refused task is reported failed with the reason and never reaches the runtime,
 * and nothing already running is ever stopped by the check.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TaskAssignment } from '../../proto/gen/berth/v1/agent.js';
import type { ContainerSpec, ContainerState, ContainerStats, Runtime } from '../../agent/runtime/runtime.js';
import type { Images, ResolvedImage } from '../../agent/images/index.js';
import { admit, admitInOrder, formatBytes, type Admission } from '../../agent/reconciler/admission.js';
import { Reconciler, type DesiredTask, type Resources, type TaskStatusView } from '../../agent/reconciler/index.js';
import { fromAssignment } from '../../agent/convert.js';

const MiB = 1024 * 1024;
const res = (cpuCores: number, memoryBytes: number, pids: number): Resources => ({ cpuCores, memoryBytes, pids });
const NODE = res(2, 1000 * MiB, 1000);

describe('admission decision', () => {
  const rows: Array<{ name: string; request: Resources; holding: Resources[]; node?: Resources; want: Admission }> = [
    { name: 'a task that fits is admitted', request: res(0.5, 300 * MiB, 100), holding: [res(1, 600 * MiB, 100)], want: { ok: true } },
    { name: 'exactly full is still a fit, cpu counted in millicores (0.1 + 0.2 + 0.3 of 0.6)', request: res(0.3, 0, 0), holding: [res(0.1, 0, 0), res(0.2, 0, 0)],
      node: res(0.6, 0, 0), want: { ok: true } },
    { name: 'one millicore over is refused', request: res(0.301, 0, 0), holding: [res(0.1, 0, 0), res(0.2, 0, 0)], node: res(0.6, 0, 0),
      want: { ok: false, reason: 'OutOfCpu', message: 'needs 0.301 cpu; 0.6 allocatable, 0.3 in use by 2 tasks' } },
    { name: 'memory refused with the numbers', request: res(0, 600 * MiB, 0), holding: [res(0, 600 * MiB, 0)],
      want: { ok: false, reason: 'OutOfMemory', message: 'needs 600 MiB of memory; 1000 MiB allocatable, 600 MiB in use by 1 task' } },
    { name: 'cpu refused with the numbers', request: res(0.5, 0, 0), holding: [res(1.5, 0, 0), res(0.25, 0, 0)],
      want: { ok: false, reason: 'OutOfCpu', message: 'needs 0.5 cpu; 2 allocatable, 1.75 in use by 2 tasks' } },
    { name: 'pids refused with the numbers', request: res(0, 0, 200), holding: [res(0, 0, 900)],
      want: { ok: false, reason: 'OutOfPids', message: 'needs 200 pids; 1000 allocatable, 900 in use by 1 task' } },
    { name: 'a request larger than the node alone is refused', request: res(0, 2048 * MiB, 0), holding: [],
      want: { ok: false, reason: 'OutOfMemory', message: 'needs 2 GiB of memory; 1000 MiB allocatable, none in use' } },
    { name: 'cpu is judged first when several resources are short', request: res(2, 2000 * MiB, 2000), holding: [res(1, 0, 0)],
      want: { ok: false, reason: 'OutOfCpu', message: 'needs 2 cpu; 2 allocatable, 1 in use by 1 task' } },
    { name: 'only the tasks requesting a resource count as its users', request: res(0, 500 * MiB, 0), holding: [res(1, 0, 0), res(0, 700 * MiB, 0)],
      want: { ok: false, reason: 'OutOfMemory', message: 'needs 500 MiB of memory; 1000 MiB allocatable, 700 MiB in use by 1 task' } },
    { name: 'a request of 0 asks for nothing and fits a node already past its capacity', request: res(0, 0, 0), holding: [res(3, 1200 * MiB, 1200)], want: { ok: true } },
  ];
  for (const row of rows) {
    it(row.name, () => assert.deepEqual(admit(row.request, row.node ?? NODE, row.holding), row.want));
  }

  it('an allocatable amount of 0 is unknown and limits nothing', () => {
    assert.deepEqual(admit(res(64, 64 * 1024 * MiB, 1e6), res(0, 0, 0), [res(1, MiB, 1)]), { ok: true });
  });

  it('several arrivals are judged one after the other in name order, each admitted one holding its request', () => {
    const each = res(0.25, 400 * MiB, 10);
    const arrivals = ['default/web-c', 'default/web-a', 'default/web-b'].map((order) => ({ key: order, order, request: each }));
    const verdicts = admitInOrder(arrivals, NODE, []);
    assert.deepEqual(verdicts.map((v) => v.key), ['default/web-a', 'default/web-b', 'default/web-c'], 'judged in order, whatever order they came in');
    assert.deepEqual(verdicts.map((v) => v.admission.ok), [true, true, false]);
    assert.deepEqual(verdicts[2]!.admission, { ok: false, reason: 'OutOfMemory', message: 'needs 400 MiB of memory; 1000 MiB allocatable, 800 MiB in use by 2 tasks' });
  });

  it('tasks already holding resources are never judged, even when they hold more than the node has', () => {
    const holding = [res(1.5, 700 * MiB, 0), res(1, 700 * MiB, 0)];
    const verdicts = admitInOrder([{ key: 'new', order: 'new', request: res(0, 0, 10) }, { key: 'big', order: 'big', request: res(0, MiB, 0) }], NODE, holding);
    assert.deepEqual(verdicts.map((v) => [v.key, v.admission.ok]), [['big', false], ['new', true]], 'only the arrivals have verdicts');
  });

  it('byte counts read in the largest binary unit reached', () => {
    assert.deepEqual([0, 512, 1536, 600 * MiB, 1000 * MiB, 1.5 * 1024 * MiB].map(formatBytes), ['0 B', '512 B', '1.5 KiB', '600 MiB', '1000 MiB', '1.5 GiB']);
  });
});

/** FakeRuntime keeps containers in memory and records every container it was asked to run. */
class FakeRuntime implements Runtime {
  readonly cgroupVersion = 'v1' as const;
  readonly containers = new Map<string, ContainerState>();
  readonly runs: string[] = [];
  readonly stops: string[] = [];
  private nextPid = 3000;
  async run(spec: ContainerSpec): Promise<ContainerState> {
    this.runs.push(spec.id);
    const st: ContainerState = { id: spec.id, status: 'running', pid: this.nextPid++, shimPid: 1, startedAt: new Date().toISOString(), labels: spec.labels, logPath: '/dev/null' };
    this.containers.set(spec.id, st);
    return { ...st };
  }
  async state(id: string) { const s = this.containers.get(id); return s && { ...s }; }
  async list() { return [...this.containers.values()].map((s) => ({ ...s })); }
  async stop(id: string) {
    this.stops.push(id);
    const s = this.containers.get(id);
    if (s?.status === 'running') Object.assign(s, { status: 'exited', exitCode: 143, signal: 15, finishedAt: new Date().toISOString() });
    return this.state(id);
  }
  async remove(id: string) { this.containers.delete(id); }
  async stats(): Promise<ContainerStats | undefined> { return undefined; }
}

const IMAGE: ResolvedImage = {
  reference: 'oci:/seed/busybox:1.36', digest: 'sha256:' + 'e'.repeat(64), lowerDirs: ['/nonexistent/layer'],
  config: { entrypoint: [], cmd: ['sh'], env: [], workingDir: '/', user: '' },
};
const images: Images = { resolve: async () => IMAGE };

// What the control plane sends, through the agent's boundary, as the reconciler receives it.
function task(n: number, memoryMiB: number, desiredState = 'running'): DesiredTask {
  const sent: TaskAssignment = {
    namespace: 'default', service: 'web', name: `web-${n}`, uid: `uid-${n}`, desiredState, revision: 1,
    template: { image: IMAGE.reference, command: ['sleep', '3600'], env: {}, workingDir: '', user: '', resources: { cpuCores: 0.1, memoryBytes: memoryMiB * MiB, pids: 0 },
      ports: [], security: undefined, pullPolicy: '', readiness: undefined, startup: undefined, secrets: [], configs: [], volumes: [], health: undefined, restart: { policy: 'never', backoffSeconds: 0, maxBackoffSeconds: 0 } },
  };
  return fromAssignment(sent);
}

function harness(runtime: FakeRuntime, allocatable?: Resources) {
  const reports: TaskStatusView[] = [];
  const r = new Reconciler({ runtime, images, report: (s) => reports.push(s), stopGraceMs: 10, resyncMs: 3_600_000, ...(allocatable ? { allocatable: () => allocatable } : {}) });
  after(() => r.close());
  const of = (name: string) => reports.filter((s) => s.name === name);
  return { r, reports, of };
}

describe('admission through the reconciler', () => {
  const NODE_100MIB = res(4, 100 * MiB, 1000);

  it('of two tasks arriving together that do not both fit, the second by name is reported failed with the reason and never started', async () => {
    const runtime = new FakeRuntime();
    const { r, of } = harness(runtime, NODE_100MIB);
    await r.start();
    r.setDesired([task(2, 64), task(1, 64)]);
    await r.idle();
    assert.deepEqual(runtime.runs, ['uid-1']);
    assert.deepEqual(of('web-1').map((s) => s.phase), ['preparing', 'starting', 'running']);
    assert.deepEqual(of('web-2').map((s) => [s.phase, s.reason, s.message]),
      [['failed', 'OutOfMemory', 'needs 64 MiB of memory; 100 MiB allocatable, 64 MiB in use by 1 task']], 'failed at once, never preparing');
    assert.ok(of('web-2')[0]!.finishedAt, 'a refused task says when it ended');
    // Level-triggered: the same set again changes nothing; the refused task is not judged twice.
    r.setDesired([task(1, 64), task(2, 64)]);
    await r.idle();
    assert.deepEqual(runtime.runs, ['uid-1']);
    assert.equal(of('web-2').length, 1);
    assert.deepEqual(runtime.stops, []);
  });

  it('a task that ended gives its share back: the next arrival is judged without it', async () => {
    const runtime = new FakeRuntime();
    const { r, of } = harness(runtime, NODE_100MIB);
    await r.start();
    r.setDesired([task(1, 64)]);
    await r.idle();
    r.setDesired([task(1, 64, 'stopped')]);
    await r.idle();
    assert.equal(of('web-1').at(-1)?.phase, 'stopped');
    r.setDesired([task(1, 64, 'stopped'), task(2, 64)]);
    await r.idle();
    assert.equal(of('web-2').at(-1)?.phase, 'running');
    assert.deepEqual(runtime.runs, ['uid-1', 'uid-2']);
  });

  it('after an agent restart the re-adopted containers count as in use and are never stopped, even past the capacity', async () => {
    const runtime = new FakeRuntime();
    const first = harness(runtime); // no capacity known: everything is admitted
    await first.r.start();
    first.r.setDesired([task(1, 64), task(2, 64)]);
    await first.r.idle();
    await first.r.close();

    const second = harness(runtime, NODE_100MIB);
    await second.r.start();
    second.r.setDesired([task(1, 64), task(2, 64), task(3, 1)]);
    await second.r.idle();
    assert.deepEqual(runtime.stops, [], 'nothing running was stopped');
    assert.deepEqual(second.r.statuses().filter((s) => s.name !== 'web-3').map((s) => [s.name, s.phase]).sort(), [['web-1', 'running'], ['web-2', 'running']]);
    assert.deepEqual(second.of('web-3').map((s) => [s.phase, s.reason, s.message]),
      [['failed', 'OutOfMemory', 'needs 1 MiB of memory; 100 MiB allocatable, 128 MiB in use by 2 tasks']]);
    assert.deepEqual(runtime.runs, ['uid-1', 'uid-2'], 'web-3 never reached the runtime');
  });

  it('a re-adopted container counts by the request its labels carry, before any desired set names it', async () => {
    const runtime = new FakeRuntime();
    const first = harness(runtime);
    await first.r.start();
    first.r.setDesired([task(1, 80)]);
    await first.r.idle();
    await first.r.close();

    const second = harness(runtime, NODE_100MIB);
    await second.r.start();
    // web-1 leaves the set as web-2 arrives: until its container is gone it still holds its 80 MiB.
    second.r.setDesired([task(2, 40)]);
    await second.r.idle();
    assert.deepEqual(second.of('web-2').map((s) => [s.phase, s.reason]), [['failed', 'OutOfMemory']]);
    assert.match(second.of('web-2')[0]!.message ?? '', /80 MiB in use by 1 task$/);
  });
});
