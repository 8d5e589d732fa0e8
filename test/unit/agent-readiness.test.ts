/**
 * Readiness and startup checks through the reconciler (in-memory runtime, scripted probe results)
 * and across the boundaries: the agent's template conversion, its status on the wire, the
 * gateway's stored status, admission of a spec and `berth describe task`.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { HealthCheck } from '../../proto/gen/berth/v1/agent.js';
import type { ContainerSpec, ContainerState, ContainerStats, Runtime } from '../../agent/runtime/runtime.js';
import type { Images, ResolvedImage } from '../../agent/images/index.js';
import { Reconciler, type DesiredTask, type TaskStatusView } from '../../agent/reconciler/index.js';
import { fromAssignment, toProtoStatus } from '../../agent/convert.js';
import type { ProbeResult } from '../../agent/probes/index.js';
import type { Task } from '../../control-plane/objects/types.js';

/** FakeRuntime: in-memory containers; stop() ends one with 143. */
class FakeRuntime implements Runtime {
  readonly cgroupVersion = 'v1' as const;
  readonly containers = new Map<string, ContainerState>();
  runs = 0;
  stops = 0;
  private nextPid = 7000;
  async run(spec: ContainerSpec): Promise<ContainerState> {
    this.runs++;
    const st: ContainerState = { id: spec.id, status: 'running', pid: this.nextPid++, shimPid: 1, startedAt: new Date().toISOString(), labels: spec.labels, logPath: '/dev/null' };
    this.containers.set(spec.id, st);
    return { ...st };
  }
  async state(id: string) { const s = this.containers.get(id); return s && { ...s }; }
  async list() { return [...this.containers.values()].map((s) => ({ ...s })); }
  async stop(id: string) {
    this.stops++;
    const s = this.containers.get(id);
    if (s?.status === 'running') Object.assign(s, { status: 'exited', exitCode: 143, signal: 15, finishedAt: new Date().toISOString() });
    return this.state(id);
  }
  async remove(id: string) { this.containers.delete(id); }
  async stats(): Promise<ContainerStats | undefined> { return undefined; }
}

const IMAGE: ResolvedImage = {
  reference: 'oci:/seed/busybox:1.36', digest: 'sha256:' + 'd'.repeat(64), lowerDirs: ['/nonexistent'],
  config: { entrypoint: [], cmd: ['sh'], env: [], workingDir: '/', user: '' },
};
const images = { async resolve() { return IMAGE; } } as unknown as Images;

const exec = (cmd: string, failureThreshold: number): HealthCheck => ({
  probe: { $case: 'exec', value: { command: [cmd] } }, intervalSeconds: 1, timeoutSeconds: 1, failureThreshold, initialDelaySeconds: 0, successThreshold: 0,
});

// What the control plane sends, through the agent's boundary, as the reconciler receives it.
function probedTask(checks: { health?: HealthCheck; readiness?: HealthCheck; startup?: HealthCheck }): DesiredTask {
  return fromAssignment({
    namespace: 'default', service: 'web', name: 'web-1', uid: 'uid-web-1', desiredState: 'running', revision: 1,
    template: {
      image: IMAGE.reference, command: ['httpd'], env: {}, workingDir: '', user: '', resources: undefined, ports: [], security: undefined, pullPolicy: '',
      secrets: [], configs: [], volumes: [], health: checks.health, readiness: checks.readiness, startup: checks.startup,
      restart: { policy: 'always', backoffSeconds: 1, maxBackoffSeconds: 1 },
    },
  });
}

/** Script answers each check by its command name and counts the calls. */
class Script {
  readonly pass = new Map<string, boolean>();
  readonly calls = new Map<string, number>();
  probe = async (check: { probe?: { $case: string; value: unknown } }): Promise<ProbeResult> => {
    const name = check.probe?.$case === 'exec' ? (check.probe.value as { command: string[] }).command[0]! : '?';
    this.calls.set(name, (this.calls.get(name) ?? 0) + 1);
    const ok = this.pass.get(name) ?? true;
    return { ok, message: `exec ${name}: exit ${ok ? 0 : 1}` };
  };
  count(name: string): number {
    return this.calls.get(name) ?? 0;
  }
}

async function until(cond: () => boolean, what: string, limitMs = 15_000): Promise<void> {
  for (let i = 0; i < limitMs / 20 && !cond(); i++) await new Promise((res) => setTimeout(res, 20));
  assert.ok(cond(), `timed out waiting for ${what}`);
}

interface Harness {
  runtime: FakeRuntime;
  reports: TaskStatusView[];
  last: () => TaskStatusView | undefined;
  run: (task: DesiredTask) => void;
}

async function harness(script: Script): Promise<Harness> {
  const runtime = new FakeRuntime();
  const reports: TaskStatusView[] = [];
  const r = new Reconciler({ runtime, images, report: (s) => reports.push(s), stopGraceMs: 10, resyncMs: 20, unhealthyStopGraceMs: 10, probe: script.probe });
  after(() => r.close());
  await r.start();
  return { runtime, reports, last: () => reports.at(-1), run: (task) => r.setDesired([task]) };
}

test('a failing readiness check takes the task out of ready and never restarts it; passing again brings it back', async () => {
  const script = new Script();
  const { runtime, last, run } = await harness(script);
  run(probedTask({ health: exec('alive?', 2), readiness: exec('ready?', 2) }));
  await until(() => last()?.ready === true, 'ready');
  assert.equal(last()!.started, true, 'no startup check: started once running');
  script.pass.set('ready?', false);
  await until(() => last()?.ready === false, 'not ready after readiness fails past its threshold');
  const unready = last()!;
  assert.deepEqual([unready.phase, unready.restarts, unready.lastReadinessProbe], ['running', 0, 'exec ready?: exit 1']);
  // Keep failing well past the threshold: still the one container, never stopped.
  const seen = script.count('ready?');
  await until(() => script.count('ready?') >= seen + 4, 'four more readiness probes');
  assert.deepEqual([runtime.runs, runtime.stops, last()!.restarts, last()!.ready], [1, 0, 0, false], 'runs, stops, restarts, ready');
  script.pass.set('ready?', true);
  await until(() => last()?.ready === true, 'ready again');
  assert.deepEqual([runtime.runs, runtime.stops, last()!.restarts], [1, 0, 0], 'runs, stops, restarts after coming back');
  assert.equal(last()!.lastProbe, 'exec alive?: exit 0', 'the health check still reports its own outcome');
});

test('until its startup check passes a task is neither started nor ready and its other checks do not run', async () => {
  const script = new Script();
  const { runtime, reports, last, run } = await harness(script);
  script.pass.set('started?', false);
  run(probedTask({ startup: exec('started?', 100), health: exec('alive?', 1), readiness: exec('ready?', 1) }));
  await until(() => script.count('started?') >= 3, 'three startup probes');
  assert.ok(reports.some((s) => s.phase === 'running'), 'the task is running meanwhile');
  assert.deepEqual(reports.filter((s) => s.phase === 'running').map((s) => [s.started, s.ready]).filter(([a, b]) => a || b), [], 'never started nor ready before the startup check passes');
  assert.deepEqual([script.count('alive?'), script.count('ready?')], [0, 0], 'health and readiness probes before startup passed');
  script.pass.set('started?', true);
  await until(() => last()?.ready === true, 'ready once started and ready');
  assert.deepEqual([last()!.started, last()!.lastStartupProbe, last()!.lastReadinessProbe], [true, 'exec started?: exit 0', 'exec ready?: exit 0']);
  // Once passed, the startup check never runs again for this container, even if it would fail now.
  script.pass.set('started?', false);
  const startups = script.count('started?');
  const readies = script.count('ready?');
  await until(() => script.count('ready?') >= readies + 3, 'three more readiness probes');
  assert.equal(script.count('started?'), startups, 'startup probes after it passed');
  assert.deepEqual([runtime.runs, last()!.ready], [1, true]);
});

test('a startup check failing failureThreshold times in a row restarts the container with reason Unhealthy', async () => {
  const script = new Script();
  const { runtime, reports, run } = await harness(script);
  script.pass.set('started?', false);
  run(probedTask({ startup: exec('started?', 2), readiness: exec('ready?', 1) }));
  await until(() => reports.some((s) => s.reason === 'Unhealthy'), 'Unhealthy');
  const waiting = reports.find((s) => s.reason === 'Unhealthy')!;
  assert.deepEqual([waiting.phase, waiting.ready, waiting.started, waiting.exitCode], ['running', false, false, 143]);
  assert.match(waiting.message!, /^back-off 1s restarting unhealthy container \(startup check: exec started\?: exit 1\)$/);
  assert.equal(script.count('ready?'), 0, 'readiness probes while never started');
  await until(() => runtime.runs >= 2 && reports.some((s) => s.restarts === 1 && s.phase === 'running' && s.reason === undefined), 'restarted');
  script.pass.set('started?', true);
  await until(() => reports.some((s) => s.restarts === 1 && s.ready === true && s.started === true), 'the restarted container starts and becomes ready');
});

test('the agent takes readiness and startup from the wire and reports started and each check outcome', () => {
  const t = probedTask({ readiness: exec('ready?', 2), startup: exec('started?', 5) });
  assert.deepEqual(t.template!.readiness, { probe: { $case: 'exec', value: { command: ['ready?'] } }, intervalSeconds: 1, timeoutSeconds: 1, failureThreshold: 2, initialDelaySeconds: 0, successThreshold: 0 });
  assert.equal(t.template!.startup!.failureThreshold, 5);
  assert.equal(t.template!.health, undefined);
  const wire = toProtoStatus({
    namespace: 'default', name: 'web-1', uid: 'u', phase: 'running', restarts: 0, ready: false, started: true,
    lastProbe: 'exec alive?: exit 0', lastStartupProbe: 'exec started?: exit 0', lastReadinessProbe: 'exec ready?: exit 1',
  });
  assert.deepEqual([wire.ready, wire.started, wire.lastProbe, wire.lastStartupProbe, wire.lastReadinessProbe],
    [false, true, 'exec alive?: exit 0', 'exec started?: exit 0', 'exec ready?: exit 1']);
  const bare = toProtoStatus({ namespace: 'default', name: 'web-1', uid: 'u', phase: 'preparing', restarts: 0 });
  assert.deepEqual([bare.started, bare.lastStartupProbe, bare.lastReadinessProbe], [false, '', '']);
});

test('the gateway stores started and the outcomes; started, like ready, only for a running task', async () => {
  const { fromProtoStatus, toProtoTemplate } = await import('../../control-plane/gateway/convert.js');
  const wire = {
    namespace: 'default', name: 't', uid: 'u', phase: 'running', containerId: 'c', pid: 1, ip: '10.244.0.5', hasExitCode: false, exitCode: 0, reason: '', message: '',
    restarts: 0, startedAt: '', finishedAt: '', imageDigest: '', pullBytesDone: 0, pullBytesTotal: 0, ready: false, lastProbe: '',
    started: false, lastStartupProbe: 'exec started?: exit 1', lastReadinessProbe: '',
  };
  assert.deepEqual(fromProtoStatus(wire), { phase: 'running', restarts: 0, containerId: 'c', pid: 1, ip: '10.244.0.5', ready: false, started: false, lastStartupProbe: 'exec started?: exit 1' });
  assert.equal(fromProtoStatus({ ...wire, phase: 'failed', started: true })!.started, undefined);
  const tpl = toProtoTemplate({ image: 'x', readiness: { exec: { command: ['test', '-f', '/tmp/ready'] }, failureThreshold: 1 }, startup: { tcp: { port: 5432 } } });
  assert.deepEqual([tpl.readiness?.probe, tpl.readiness?.failureThreshold, tpl.startup?.probe],
    [{ $case: 'exec', value: { command: ['test', '-f', '/tmp/ready'] } }, 1, { $case: 'tcp', value: { port: 5432 } }]);
});

test('admission wants exactly one probe kind and an absolute http path in readiness and startup too', async () => {
  const { admitServiceSpec } = await import('../../control-plane/objects/validation.js');
  const spec = (tpl: object) => ({ replicas: 1, template: { image: 'oci-archive:/seed/busybox.tar', ...tpl } });
  const cases: Array<[object, string | undefined]> = [
    [{ readiness: { exec: { command: ['test', '-f', '/tmp/ready'] }, intervalSeconds: 1, failureThreshold: 1 } }, undefined],
    [{ startup: { http: { path: '/started', port: 8080 }, failureThreshold: 30 }, readiness: { tcp: { port: 8080 } }, health: { tcp: { port: 8080 } } }, undefined],
    [{ readiness: { intervalSeconds: 2 } }, 'spec.template.readiness: must have exactly one of http, tcp or exec (got none)'],
    [{ startup: { tcp: { port: 1 }, exec: { command: ['x'] } } }, 'spec.template.startup: must have exactly one of http, tcp or exec (got tcp, exec)'],
    [{ readiness: { http: { path: 'ready', port: 80 } } }, 'spec.template.readiness.http.path: must start with /'],
    [{ startup: { http: { path: 'up', port: 80 } } }, 'spec.template.startup.http.path: must start with /'],
  ];
  for (const [tpl, want] of cases) {
    const r = admitServiceSpec(spec(tpl) as never);
    if (want === undefined) assert.ok(r.ok, `${JSON.stringify(tpl)}: expected admitted, seen ${JSON.stringify(r)}`);
    else assert.ok(!r.ok && JSON.stringify(r.error).includes(want), `${JSON.stringify(tpl)}: expected "${want}", seen ${JSON.stringify(r)}`);
  }
});

test('berth describe task shows the checks, started, ready and each check\'s last outcome', async () => {
  const { describeTask } = await import('../../control-plane/cli/describe.js');
  const task: Task = {
    kind: 'Task',
    metadata: { name: 'web-1', namespace: 'default', uid: 'u', generation: 1, labels: {}, createdAt: '2026-01-01T00:00:00Z' },
    spec: {
      service: 'web', nodeName: 'n1', revision: 1, desiredState: 'running',
      template: { image: 'x', health: { tcp: { port: 80 }, intervalSeconds: 5 }, readiness: { exec: { command: ['test', '-f', '/tmp/ready'] }, failureThreshold: 1 }, startup: { http: { path: '/up', port: 80 }, failureThreshold: 30 } },
    },
    status: {
      phase: 'running', restarts: 0, started: true, ready: false,
      lastProbe: 'tcp :80: connected', lastStartupProbe: 'http :80/up: HTTP 200', lastReadinessProbe: 'exec test: exit 1',
    },
  } as Task;
  const out = describeTask(task, Date.parse('2026-01-01T00:01:00Z'));
  for (const line of [
    /Startup:\s+http-get :80\/up delay=0s timeout=1s period=10s #success=1 #failure=30\n/,
    /Liveness:\s+tcp-socket :80 delay=0s timeout=1s period=5s #success=1 #failure=3\n/,
    /Readiness:\s+exec \[test -f \/tmp\/ready\] delay=0s timeout=1s period=10s #success=1 #failure=1\n/,
    /Started:\s+true\n/, /Ready:\s+false\n/,
    /Last probe:\s+tcp :80: connected \(liveness\)\n/, /Last startup probe:\s+http :80\/up: HTTP 200\n/, /Last readiness probe:\s+exec test: exit 1\n/,
  ]) assert.match(out, line);
  const pending = describeTask({ ...task, status: { phase: 'pending', restarts: 0 } }, 0);
  assert.doesNotMatch(pending, /Started:|Ready:/, 'no started or ready before the task runs');
});
