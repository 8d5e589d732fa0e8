import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import type { HealthCheck } from '../../proto/gen/berth/v1/agent.js';
import type { ContainerSpec, ContainerState, ContainerStats, ExecRequest, ExecResult, Runtime } from '../../agent/runtime/runtime.js';
import type { Images, ResolvedImage } from '../../agent/images/index.js';
import { Reconciler, type DesiredTask, type TaskStatusView } from '../../agent/reconciler/index.js';
import { fromAssignment } from '../../agent/convert.js';
import { initialHealth, nextHealth, probeSettings, ProbeLoop, runProbe, type HealthState, type ProbeResult } from '../../agent/probes/index.js';

const check = (over: Partial<HealthCheck> = {}): HealthCheck => ({
  probe: { $case: 'tcp', value: { port: 1 } }, intervalSeconds: 0, timeoutSeconds: 0, failureThreshold: 0, initialDelaySeconds: 0, successThreshold: 0, ...over,
});

test('probe settings fill Kubernetes-like defaults: 10 s interval, 1 s timeout, 3 failures, 1 success', () => {
  assert.deepEqual(probeSettings(check()), { intervalMs: 10_000, timeoutMs: 1000, failureThreshold: 3, successThreshold: 1, initialDelayMs: 0 });
  assert.deepEqual(probeSettings(check({ intervalSeconds: 2, timeoutSeconds: 3, failureThreshold: 5, successThreshold: 2, initialDelaySeconds: 4 })),
    { intervalMs: 2000, timeoutMs: 3000, failureThreshold: 5, successThreshold: 2, initialDelayMs: 4000 });
});

test('health state machine: thresholds on consecutive results decide ready and unhealthy', () => {
  const t = { failureThreshold: 3, successThreshold: 2 };
  // results (1 pass, 0 fail) -> [ready, unhealthy] after each
  const rows: Array<[string, Array<[boolean, boolean]>]> = [
    ['11', [[false, false], [true, false]]],
    ['101', [[false, false], [false, false], [false, false]]],
    ['110', [[false, false], [true, false], [true, false]]],
    ['11000', [[false, false], [true, false], [true, false], [true, false], [false, true]]],
    ['1100100', [[false, false], [true, false], [true, false], [true, false], [true, false], [true, false], [true, false]]],
    ['0001', [[false, false], [false, false], [false, true], [false, true]]],
  ];
  for (const [seq, want] of rows) {
    let s: HealthState = initialHealth;
    const seen = [...seq].map((c) => { s = nextHealth(s, c === '1', t); return [s.ready, s.unhealthy] as [boolean, boolean]; });
    assert.deepEqual(seen, want, `sequence ${seq}`);
  }
});

test('a probe loop reports only changes of verdict and stops once unhealthy', async () => {
  const results = [true, true, false, true, false, false, false, true];
  const changes: Array<{ ready: boolean; unhealthy: boolean; msg: string }> = [];
  let calls = 0;
  const loop = new ProbeLoop({
    check: check({ intervalSeconds: 1, failureThreshold: 3 }),
    target: { runtime: {} as Runtime, containerId: 'c', pid: 1 },
    probe: async () => { const ok = results[calls++] ?? true; return { ok, message: ok ? 'ok' : 'bad' }; },
    onChange: (h, last) => changes.push({ ready: h.ready, unhealthy: h.unhealthy, msg: last.message }),
  });
  // Drive the loop faster than its 1 s interval: tick is private, so call it through the prototype.
  const tick = (loop as unknown as { tick(): Promise<void> }).tick.bind(loop);
  loop.stop(); // no timers: the test drives every tick
  (loop as unknown as { stopped: boolean }).stopped = false;
  for (let i = 0; i < results.length; i++) await tick();
  loop.stop();
  assert.deepEqual(changes, [{ ready: true, unhealthy: false, msg: 'ok' }, { ready: false, unhealthy: true, msg: 'bad' }]);
  assert.equal(loop.health.unhealthy, true);
});

async function listen<T extends Server>(server: T): Promise<number> {
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  after(() => server.close());
  return (server.address() as AddressInfo).port;
}

test('http and tcp probes run in the target netns (here: the test process own) and judge the answer', async () => {
  const server = createHttpServer((req, res) => { res.statusCode = req.url === '/ok' ? 200 : req.url === '/moved' ? 302 : 500; res.end(); });
  const httpPort = await listen(server);
  const tcpPort = await listen(createTcpServer((s) => s.end()));
  const target = { runtime: {} as Runtime, containerId: 'self', pid: process.pid };
  const http = (path: string, port = httpPort): HealthCheck => check({ probe: { $case: 'http', value: { path, port } } });
  const cases: Array<[HealthCheck, boolean, RegExp]> = [
    [http('/ok'), true, /^http :\d+\/ok: HTTP 200$/],
    [http('/moved'), true, /HTTP 302/],
    [http('/broken'), false, /HTTP 500/],
    [http('/ok', tcpPort), false, /http :\d+\/ok: /],
    [check({ probe: { $case: 'tcp', value: { port: tcpPort } } }), true, /connected/],
  ];
  for (const [c, ok, msg] of cases) {
    const r = await runProbe(c, target, 1000);
    assert.equal(r.ok, ok, `${JSON.stringify(c.probe)}: ${r.message}`);
    assert.match(r.message, msg);
  }
  // A closed port: find one by opening and closing a listener.
  const closed = createTcpServer();
  const closedPort = await listen(closed);
  await new Promise<void>((res) => closed.close(() => res()));
  const r = await runProbe(check({ probe: { $case: 'tcp', value: { port: closedPort } } }), target, 1000);
  assert.deepEqual([r.ok, r.message], [false, `tcp :${closedPort}: ECONNREFUSED`]);
  const gone = await runProbe(check({ probe: { $case: 'tcp', value: { port: tcpPort } } }), { ...target, pid: 2 ** 22 + 1 }, 1000);
  assert.equal(gone.ok, false, 'a vanished container fails its probe');
});

test('an exec probe passes on exit 0 and reports the exit code and first line otherwise', async () => {
  const exec = async (_id: string, req: ExecRequest): Promise<ExecResult> => ({
    exitCode: req.args[0] === 'ok' ? 0 : 3, timedOut: false, stdout: Buffer.from('said this\nand more'), stderr: Buffer.alloc(0), stdoutTruncated: false, stderrTruncated: false,
  });
  const target = { runtime: { exec } as unknown as Runtime, containerId: 'c', pid: 1 };
  assert.deepEqual(await runProbe(check({ probe: { $case: 'exec', value: { command: ['ok'] } } }), target, 1000), { ok: true, message: 'exec ok: exit 0 (said this)' });
  assert.deepEqual(await runProbe(check({ probe: { $case: 'exec', value: { command: ['bad'] } } }), target, 1000), { ok: false, message: 'exec bad: exit 3 (said this)' });
  const noExec = await runProbe(check({ probe: { $case: 'exec', value: { command: ['x'] } } }), { ...target, runtime: {} as Runtime }, 1000);
  assert.equal(noExec.ok, false);
});

/** FakeRuntime: in-memory containers; stop() ends one with 143. */
class FakeRuntime implements Runtime {
  readonly cgroupVersion = 'v1' as const;
  readonly containers = new Map<string, ContainerState>();
  runs = 0;
  private nextPid = 5000;
  async run(spec: ContainerSpec): Promise<ContainerState> {
    this.runs++;
    const st: ContainerState = { id: spec.id, status: 'running', pid: this.nextPid++, shimPid: 1, startedAt: new Date().toISOString(), labels: spec.labels, logPath: '/dev/null' };
    this.containers.set(spec.id, st);
    return { ...st };
  }
  async state(id: string) { const s = this.containers.get(id); return s && { ...s }; }
  async list() { return [...this.containers.values()].map((s) => ({ ...s })); }
  async stop(id: string) {
    const s = this.containers.get(id);
    if (s?.status === 'running') Object.assign(s, { status: 'exited', exitCode: 143, signal: 15, finishedAt: new Date().toISOString() });
    return this.state(id);
  }
  async remove(id: string) { this.containers.delete(id); }
  async stats(): Promise<ContainerStats | undefined> { return undefined; }
}

const IMAGE: ResolvedImage = {
  reference: 'oci:/seed/busybox:1.36', digest: 'sha256:' + 'c'.repeat(64), lowerDirs: ['/nonexistent'],
  config: { entrypoint: [], cmd: ['sh'], env: [], workingDir: '/', user: '' },
};
const images = { async resolve() { return IMAGE; } } as unknown as Images;

// What the control plane sends, through the agent's boundary, as the reconciler receives it.
function probedTask(policy: string): DesiredTask {
  return fromAssignment({
    namespace: 'default', service: 'web', name: 'web-1', uid: 'uid-web-1', desiredState: 'running', revision: 1,
    template: {
      image: IMAGE.reference, command: ['httpd'], env: {}, workingDir: '', user: '', resources: undefined, ports: [], security: undefined, pullPolicy: '', readiness: undefined, startup: undefined, secrets: [], configs: [], volumes: [],
      health: check({ probe: { $case: 'http', value: { path: '/', port: 80 } }, intervalSeconds: 1, failureThreshold: 2 }),
      restart: { policy, backoffSeconds: 1, maxBackoffSeconds: 1 },
    },
  });
}

async function until(cond: () => boolean, what: string, limitMs = 8000): Promise<void> {
  for (let i = 0; i < limitMs / 20 && !cond(); i++) await new Promise((res) => setTimeout(res, 20));
  assert.ok(cond(), `timed out waiting for ${what}`);
}

test('a task with a check is ready only once it passes; failing past the threshold restarts it with reason Unhealthy', async () => {
  const runtime = new FakeRuntime();
  const reports: TaskStatusView[] = [];
  let healthy = true;
  const probe = async (): Promise<ProbeResult> => (healthy ? { ok: true, message: 'http :80/: HTTP 200' } : { ok: false, message: 'http :80/: HTTP 500' });
  const r = new Reconciler({ runtime, images, report: (s) => reports.push(s), stopGraceMs: 10, resyncMs: 20, unhealthyStopGraceMs: 10, probe });
  after(() => r.close());
  await r.start();
  r.setDesired([probedTask('always')]);
  await until(() => reports.some((s) => s.phase === 'running'), 'running');
  assert.equal(reports.find((s) => s.phase === 'running')!.ready, false, 'not ready before the first probe');
  await until(() => reports.some((s) => s.ready === true), 'ready');
  assert.equal(reports.find((s) => s.ready)!.lastProbe, 'http :80/: HTTP 200');
  healthy = false;
  await until(() => reports.some((s) => s.reason === 'Unhealthy'), 'Unhealthy');
  const waiting = reports.find((s) => s.reason === 'Unhealthy')!;
  assert.deepEqual([waiting.phase, waiting.ready, waiting.exitCode], ['running', false, 143]);
  assert.match(waiting.message!, /^back-off 1s restarting unhealthy container \(http :80\/: HTTP 500\)$/);
  healthy = true;
  await until(() => reports.some((s) => s.restarts === 1 && s.ready === true), 'restarted and ready again');
  assert.equal(runtime.runs, 2);
});

test('under policy never an unhealthy container is killed and reported failed with reason Unhealthy', async () => {
  const runtime = new FakeRuntime();
  const reports: TaskStatusView[] = [];
  const probe = async (): Promise<ProbeResult> => ({ ok: false, message: 'tcp :80: ECONNREFUSED' });
  const r = new Reconciler({ runtime, images, report: (s) => reports.push(s), stopGraceMs: 10, resyncMs: 20, unhealthyStopGraceMs: 10, probe });
  after(() => r.close());
  await r.start();
  r.setDesired([probedTask('never')]);
  await until(() => reports.some((s) => s.phase === 'failed'), 'failed');
  const failed = reports.find((s) => s.phase === 'failed')!;
  assert.equal(failed.reason, 'Unhealthy');
  assert.match(failed.message!, /health check failed \(tcp :80: ECONNREFUSED\)/);
  assert.equal(runtime.runs, 1);
});

test('admission wants exactly one probe kind per health check and an absolute http path', async () => {
  const { admitServiceSpec } = await import('../../control-plane/objects/validation.js');
  const spec = (health: object) => ({ replicas: 1, template: { image: 'oci-archive:/seed/busybox.tar', health } });
  const cases: Array<[object, string | undefined]> = [
    [{ http: { path: '/', port: 80 } }, undefined],
    [{ tcp: { port: 80 }, intervalSeconds: 2, initialDelaySeconds: 3, successThreshold: 2 }, undefined],
    [{ intervalSeconds: 2 }, 'must have exactly one of http, tcp or exec (got none)'],
    [{ http: { path: '/', port: 80 }, tcp: { port: 80 } }, 'must have exactly one of http, tcp or exec (got http, tcp)'],
    [{ http: { path: 'healthz', port: 80 } }, 'must start with /'],
  ];
  for (const [health, want] of cases) {
    const r = admitServiceSpec(spec(health) as never);
    if (want === undefined) assert.ok(r.ok, JSON.stringify(health));
    else assert.ok(!r.ok && JSON.stringify(r.error).includes(want), `${JSON.stringify(health)}: ${JSON.stringify(r)}`);
  }
});

test('the gateway sends health and restart to the agent and stores ready only for running tasks', async () => {
  const { toProtoTemplate, fromProtoStatus } = await import('../../control-plane/gateway/convert.js');
  const tpl = toProtoTemplate({ image: 'x', health: { http: { path: '/h', port: 8080 }, intervalSeconds: 2 }, restart: { policy: 'on-failure', backoffSeconds: 3 } });
  assert.deepEqual(tpl.health, { probe: { $case: 'http', value: { path: '/h', port: 8080 } }, intervalSeconds: 2, timeoutSeconds: 0, failureThreshold: 0, initialDelaySeconds: 0, successThreshold: 0 });
  assert.deepEqual(tpl.restart, { policy: 'on-failure', backoffSeconds: 3, maxBackoffSeconds: 0 });
  assert.deepEqual([toProtoTemplate({ image: 'x' }).health, toProtoTemplate({ image: 'x' }).restart], [undefined, undefined]);
  // Stop settings reach the agent, including the values that are falsy on purpose (no grace, no init).
  const stop = toProtoTemplate({ image: 'x', stopSignal: 'SIGUSR1', stopGracePeriodSeconds: 0, init: false });
  assert.deepEqual([stop.stopSignal, stop.stopGracePeriodSeconds, stop.init], ['SIGUSR1', 0, false]);
  const defaults = toProtoTemplate({ image: 'x' });
  assert.deepEqual([defaults.stopSignal, defaults.stopGracePeriodSeconds, defaults.init], [undefined, undefined, undefined]);
  const wire = {
    namespace: 'default', name: 't', uid: 'u', phase: 'running', containerId: 'c', pid: 1, ip: '', hasExitCode: true, exitCode: 1, reason: '', message: '',
    restarts: 2, startedAt: '', finishedAt: '', imageDigest: '', pullBytesDone: 0, pullBytesTotal: 0, ready: true, lastProbe: 'http :8080/h: HTTP 200',
    started: true, lastStartupProbe: '', lastReadinessProbe: '',
  };
  assert.deepEqual(fromProtoStatus(wire), { phase: 'running', restarts: 2, containerId: 'c', pid: 1, exitCode: 1, ready: true, started: true, lastProbe: 'http :8080/h: HTTP 200' });
  assert.equal(fromProtoStatus({ ...wire, phase: 'failed' })!.ready, undefined);
  for (const phase of ['pending', 'assigned', 'lost', 'exploded']) {
    assert.equal(fromProtoStatus({ ...wire, phase }), undefined, `an agent may not report ${phase}`);
  }
});
