/**
 * Stop settings and the init, from template to container: admission of stopSignal,
 * stopGracePeriodSeconds and init (a clear 400 naming the field, canonical signal names), how the
 * agent turns them into a container spec and labels, the wire pieces the runtime uses, and a
 * guard that no agent module signals a PID itself.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/cluster.js';
import { buildApi } from '../../control-plane/api/server.js';
import { createLogger } from '../../common/log.js';
import { ADMIN_HEADERS, testAuthenticator } from '../support/api-auth.js';
import { admitService } from '../../control-plane/objects/validation.js';
import { canonicalSignal } from '../../control-plane/objects/signals.js';
import type { Store } from '../../control-plane/store/store.js';
import type { TaskAssignment } from '../../proto/gen/berth/v1/agent.js';
import { buildContainerSpec, LABEL_STOP_GRACE_SECONDS, LABEL_STOP_SIGNAL, stopSettings } from '../../agent/reconciler/spec.js';
import { fromAssignment } from '../../agent/convert.js';
import type { DesiredTask } from '../../agent/reconciler/index.js';
import type { ResolvedImage } from '../../agent/images/index.js';
import { signalNumber } from '../../agent/runtime/signals.js';
import { encodeShimSpec } from '../../agent/runtime/shim-spec.js';
import { parseExitLine } from '../../agent/runtime/shim-channel.js';

const untouchable = new Proxy({}, { get: (_t, p) => { throw new Error(`store.${String(p)} touched during validation`); } }) as Store;
const app = buildApi(untouchable, createLogger('error'), { auth: testAuthenticator() });
after(() => app.close());

const service = (template: Record<string, unknown>) => ({ kind: 'Service', metadata: { name: 'web' }, spec: { replicas: 1, template: { image: 'oci:/x', ...template } } });

const refused: Array<{ name: string; template: Record<string, unknown>; field: string; message: string | RegExp }> = [
  { name: 'an unknown signal name', template: { stopSignal: 'SIGFOO' }, field: 'spec.template.stopSignal',
    message: 'spec.template.stopSignal: unknown signal "SIGFOO" (a name such as SIGTERM, TERM or SIGQUIT, or a number 1-31)' },
  { name: 'signal number 0', template: { stopSignal: 0 }, field: 'spec.template.stopSignal', message: /unknown signal 0/ },
  { name: 'signal number 99', template: { stopSignal: 99 }, field: 'spec.template.stopSignal', message: /unknown signal 99/ },
  { name: 'an empty signal', template: { stopSignal: '' }, field: 'spec.template.stopSignal', message: /unknown signal ""/ },
  { name: 'a boolean signal', template: { stopSignal: true }, field: 'spec.template.stopSignal', message: 'spec.template.stopSignal: must be a string or integer' },
  { name: 'a negative grace', template: { stopGracePeriodSeconds: -1 }, field: 'spec.template.stopGracePeriodSeconds', message: 'spec.template.stopGracePeriodSeconds: must be >= 0' },
  { name: 'a grace over an hour', template: { stopGracePeriodSeconds: 3601 }, field: 'spec.template.stopGracePeriodSeconds', message: 'spec.template.stopGracePeriodSeconds: must be <= 3600' },
  { name: 'a fractional grace', template: { stopGracePeriodSeconds: 1.5 }, field: 'spec.template.stopGracePeriodSeconds', message: 'spec.template.stopGracePeriodSeconds: must be an integer' },
  { name: 'a string init', template: { init: 'no' }, field: 'spec.template.init', message: 'spec.template.init: must be a boolean' },
];

for (const c of refused) {
  test(`PUT service refuses ${c.name} with a 400 naming the field`, async () => {
    const res = await app.inject({ method: 'PUT', url: '/v1/namespaces/default/services/web', headers: ADMIN_HEADERS, payload: service(c.template) });
    const body = res.json() as { error: { code: string; message: string; field?: string } };
    assert.equal(res.statusCode, 400, res.body);
    assert.equal(body.error.code, 'BERTH_ERR_VALIDATION');
    assert.equal(body.error.field, c.field);
    if (typeof c.message === 'string') assert.equal(body.error.message, c.message);
    else assert.match(body.error.message, c.message);
  });
}

test('admission stores a stop signal by its canonical name and keeps grace and init as written', () => {
  const cases: Array<[string | number, string]> = [['TERM', 'SIGTERM'], ['sigusr1', 'SIGUSR1'], ['SIGQUIT', 'SIGQUIT'], [10, 'SIGUSR1'], ['15', 'SIGTERM'], [' int ', 'SIGINT'], ['IOT', 'SIGABRT']];
  for (const [written, stored] of cases) {
    const r = admitService(service({ stopSignal: written, stopGracePeriodSeconds: 0, init: false }) as never, { namespace: 'default' });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.value.spec.template.stopSignal, stored, `${JSON.stringify(written)} is stored as ${stored}`);
    assert.equal(r.value.spec.template.stopGracePeriodSeconds, 0);
    assert.equal(r.value.spec.template.init, false);
  }
  const plain = admitService(service({}) as never, { namespace: 'default' });
  assert.ok(plain.ok);
  assert.deepEqual([plain.value.spec.template.stopSignal, plain.value.spec.template.stopGracePeriodSeconds, plain.value.spec.template.init], [undefined, undefined, undefined]);
  assert.equal(canonicalSignal(32), undefined, 'real-time signals are not stop signals');
});

const IMAGE: ResolvedImage = {
  reference: 'oci:/x', digest: 'sha256:' + 'c'.repeat(64), lowerDirs: ['/nonexistent/layer'],
  config: { entrypoint: [], cmd: ['sleep', '3600'], env: [], workingDir: '/', user: '' },
};
// What the control plane sends, through the agent's boundary, as the reconciler receives it.
const assignment = (over: Partial<NonNullable<TaskAssignment['template']>> = {}): DesiredTask => fromAssignment({
  namespace: 'default', service: 'web', name: 'web-1', uid: 'uid-1', desiredState: 'running', revision: 1,
  template: { image: 'oci:/x', command: [], env: {}, workingDir: '', user: '', resources: undefined, ports: [], security: undefined, pullPolicy: '', readiness: undefined, startup: undefined, secrets: [], configs: [], volumes: [], health: undefined, restart: undefined, ...over },
});

test('a task gets an init unless its template says init: false, and carries its stop settings as labels', async () => {
  const plain = await buildContainerSpec(assignment(), 'uid-1', IMAGE);
  assert.equal(plain.init, true, 'templates default to an init');
  assert.equal(plain.labels[LABEL_STOP_SIGNAL], undefined);
  assert.equal(plain.labels[LABEL_STOP_GRACE_SECONDS], undefined);
  assert.deepEqual(stopSettings(plain.labels), { signal: 'SIGTERM' }, 'SIGTERM and the agent\'s default grace');

  const tuned = await buildContainerSpec(assignment({ init: false, stopSignal: 'SIGUSR1', stopGracePeriodSeconds: 0 }), 'uid-1', IMAGE);
  assert.equal(tuned.init, undefined);
  assert.deepEqual(stopSettings(tuned.labels), { signal: 'SIGUSR1', graceMs: 0 }, 'a zero grace is a grace, not "unset"');
  assert.deepEqual(stopSettings({ [LABEL_STOP_GRACE_SECONDS]: 'x' }), { signal: 'SIGTERM' }, 'a garbled label falls back to the default');
});

test('the runtime resolves signal names with the host\'s numbering', () => {
  const cases: Array<[string | number, number | undefined]> = [['SIGUSR1', 10], ['term', 15], ['KILL', 9], [9, 9], ['2', 2], ['NOPE', undefined], [0, undefined], [65, undefined], ['', undefined]];
  for (const [sig, n] of cases) assert.equal(signalNumber(sig), n, `signalNumber(${JSON.stringify(sig)})`);
});

test('the shim spec carries the init\'s path only when the container has an init', () => {
  const spec = { id: 'c', hostname: 'c', lowerDirs: ['/l'], args: ['true'], env: [], cwd: '/', uid: 0, gid: 0, limits: {}, labels: {} };
  const opts = { cgroupParent: 'berth', cgroupRoot: '/sys/fs/cgroup', cgroupVersion: 'v1' as const, logMaxBytes: 1, initPath: '/opt/berth/berth-init' };
  assert.doesNotMatch(encodeShimSpec(spec, opts), /^init=/m);
  assert.match(encodeShimSpec({ ...spec, init: true }, opts), /^init=\/opt\/berth\/berth-init$/m);
});

test('the shim\'s exit line is parsed strictly', () => {
  assert.deepEqual(parseExitLine('exit 143 15 0'), { exitCode: 143, signal: 15, oomKilled: false });
  assert.deepEqual(parseExitLine('exit 137 9 1'), { exitCode: 137, signal: 9, oomKilled: true });
  for (const bad of ['exit 143 15', 'exit x 15 0', 'exit 1 0 2', 'ok', 'exit 1 0 0 extra']) assert.equal(parseExitLine(bad), undefined, bad);
});

test('no agent module signals a process by PID: signals go to containers through their shims', () => {
  const offenders: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.name.endsWith('.ts') && /\bprocess\.kill\s*\(/.test(readFileSync(path, 'utf8'))) offenders.push(path.slice(REPO_ROOT.length + 1));
    }
  };
  walk(join(REPO_ROOT, 'agent'));
  assert.deepEqual(offenders, [], 'process.kill(pid) may hit a reused PID; use runtime.kill / runtime.stop');
});
