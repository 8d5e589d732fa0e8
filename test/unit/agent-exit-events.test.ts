/**
 * Exits reach the reconciler as events (runtime.wait, pushed by each container's shim), not by
 * polling: with the resync an hour away, nothing reads a container's state until its exit is
 * pushed, and then one sync reads it and reports the exit. Re-adopted containers are waited on too.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { fromAssignment } from '../../agent/convert.js';
import type { ContainerSpec, ContainerState, ContainerStats, Runtime } from '../../agent/runtime/runtime.js';
import type { Images, ResolvedImage } from '../../agent/images/index.js';
import { Reconciler, type DesiredTask, type TaskStatusView } from '../../agent/reconciler/index.js';

const RESYNC_MS = 3_600_000;

/** PushingRuntime keeps containers in memory; wait() resolves only when the test pushes an exit. */
class PushingRuntime implements Runtime {
  readonly cgroupVersion = 'v1' as const;
  readonly containers = new Map<string, ContainerState>();
  stateReads = 0;
  readonly waiting = new Map<string, () => void>();
  private nextPid = 100;

  async run(spec: ContainerSpec): Promise<ContainerState> {
    const st: ContainerState = { id: spec.id, status: 'running', pid: this.nextPid++, shimPid: 1, startedAt: new Date().toISOString(), labels: spec.labels, logPath: '/dev/null' };
    this.containers.set(spec.id, st);
    return { ...st };
  }
  async state(id: string) {
    this.stateReads++;
    const s = this.containers.get(id);
    return s && { ...s };
  }
  async list() { return [...this.containers.values()].map((s) => ({ ...s })); }
  async stop(id: string) { this.exitNow(id, 143); return this.state(id); }
  async remove(id: string) { this.containers.delete(id); }
  async stats(): Promise<ContainerStats | undefined> { return undefined; }
  wait(id: string): Promise<ContainerState | undefined> {
    return new Promise((resolve) => this.waiting.set(id, () => resolve(this.containers.get(id))));
  }
  /** exitNow marks the container exited without telling anyone (what a shim knows first). */
  exitNow(id: string, exitCode: number): void {
    Object.assign(this.containers.get(id)!, { status: 'exited', exitCode, finishedAt: new Date().toISOString() });
  }
  /** push is the shim's exit event. */
  push(id: string): void {
    const w = this.waiting.get(id);
    this.waiting.delete(id);
    w?.();
  }
}

const IMAGE: ResolvedImage = {
  reference: 'oci:/x', digest: 'sha256:' + 'd'.repeat(64), lowerDirs: ['/nonexistent/layer'],
  config: { entrypoint: [], cmd: ['sh'], env: [], workingDir: '/', user: '' },
};
const images: Images = { resolve: async () => IMAGE };
// What the control plane sends, through the agent's boundary, as the reconciler receives it.
const task = (n: number): DesiredTask => fromAssignment({
  namespace: 'default', service: 'web', name: `web-${n}`, uid: `uid-${n}`, desiredState: 'running', revision: 1,
  template: { image: IMAGE.reference, command: ['sleep', '3600'], env: {}, workingDir: '', user: '', resources: undefined, ports: [], security: undefined,
    pullPolicy: '', readiness: undefined, startup: undefined, secrets: [], configs: [], volumes: [], health: undefined, restart: { policy: 'never', backoffSeconds: 0, maxBackoffSeconds: 0 } },
});

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((res) => setTimeout(res, 10));
  assert.ok(cond(), `timed out waiting for ${what}`);
}

test('an exit is reported when the shim pushes it, and the state is not read before', async () => {
  const runtime = new PushingRuntime();
  const reports: TaskStatusView[] = [];
  const r = new Reconciler({ runtime, images, report: (s) => reports.push(s), resyncMs: RESYNC_MS });
  after(() => r.close());
  await r.start();
  r.setDesired([task(1)]);
  await r.idle();
  assert.equal(reports.at(-1)?.phase, 'running');
  assert.ok(runtime.waiting.has('uid-1'), 'the reconciler waits on the container it started');

  runtime.exitNow('uid-1', 3);
  const readsBefore = runtime.stateReads;
  await r.idle();
  assert.equal(runtime.stateReads, readsBefore, 'nothing polls the state');
  assert.equal(reports.at(-1)?.phase, 'running', 'an exit no one pushed is not seen yet');

  runtime.push('uid-1');
  await until(() => reports.at(-1)?.phase === 'failed', 'the pushed exit to be reported');
  await r.idle();
  assert.equal(reports.at(-1)?.exitCode, 3);
  assert.equal(runtime.stateReads - readsBefore, 1, 'one sync read the state, after the push');
});

test('a re-adopted running container is waited on at start', async () => {
  const runtime = new PushingRuntime();
  await runtime.run({ id: 'uid-2', hostname: 'web-2', lowerDirs: ['/l'], args: ['sleep'], env: [], cwd: '/', uid: 0, gid: 0, limits: {},
    labels: { 'berth.uid': 'uid-2', 'berth.task': 'web-2', 'berth.namespace': 'default', 'berth.restart-policy': 'never' } });
  const reports: TaskStatusView[] = [];
  const r = new Reconciler({ runtime, images, report: (s) => reports.push(s), resyncMs: RESYNC_MS });
  after(() => r.close());
  await r.start();
  assert.ok(runtime.waiting.has('uid-2'), 'waiting on the adopted container');
  r.setDesired([task(2)]);
  await r.idle();
  runtime.exitNow('uid-2', 0);
  runtime.push('uid-2');
  await until(() => reports.at(-1)?.phase === 'succeeded', 'the adopted container\'s exit to be reported');
});
