import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerTemplate, DesiredTasks, FileProjection as WireProjection } from '../../proto/gen/berth/v1/agent.js';
import type { ContainerSpec, ContainerState, ContainerStats, Runtime } from '../../agent/runtime/runtime.js';
import type { Images, ResolvedImage } from '../../agent/images/index.js';
import { Reconciler, type DesiredTask, type TaskStatusView } from '../../agent/reconciler/index.js';
import { projectFiles, projectionProblem, tmpfsMounts, DEFAULT_TMPFS_BYTES } from '../../agent/reconciler/projections.js';
import { buildContainerSpec } from '../../agent/reconciler/spec.js';
import { fromDesiredTasks, projectionFrom, volumeFrom } from '../../agent/convert.js';
import { encodeShimSpec } from '../../agent/runtime/shim-spec.js';
import { storableSpec } from '../../agent/runtime/stored-spec.js';
import { waitFor } from '../support/cluster.js';

const IMAGE: ResolvedImage = {
  reference: 'oci:/seed/busybox:1.36', digest: 'sha256:' + 'a'.repeat(64), lowerDirs: ['/nonexistent/layer'],
  config: { entrypoint: [], cmd: ['sh'], env: ['PATH=/bin'], workingDir: '/', user: '' },
};
const images: Images = { async resolve() { return IMAGE; } };
const noUsers = { async user() { return undefined; }, async group() { return undefined; } };

function projection(over: Partial<WireProjection>): WireProjection {
  return { name: 'db', key: '', target: '/run/secrets/db', mode: 0, generation: 1, ...over };
}

function template(over: Partial<ContainerTemplate> = {}): ContainerTemplate {
  return {
    image: IMAGE.reference, command: ['sleep', '60'], env: {}, workingDir: '', user: '1000:1001', resources: undefined, ports: [],
    security: undefined, pullPolicy: '', health: undefined, restart: undefined, readiness: undefined, startup: undefined,
    secrets: [], configs: [], volumes: [], ...over,
  };
}

// A desired set as the session receives it, through the agent's boundary.
function desired(tpl: ContainerTemplate, objects: Partial<Pick<DesiredTasks, 'secrets' | 'configs'>> = {}): DesiredTask[] {
  return fromDesiredTasks({
    tasks: [{ namespace: 'default', service: 'app', name: 'app-1', uid: 'uid-1', desiredState: 'running', revision: 1, template: tpl }],
    templates: {}, secrets: objects.secrets ?? {}, configs: objects.configs ?? {},
  });
}

const DB = { generation: 3, data: { password: Buffer.from('s3cret'), user: Buffer.from('admin') } };

describe('secret and config projections → ContainerSpec.files', () => {
  it('without a key: one file per key at <target>/<key>, mode 0400, owned by the container user', async () => {
    const [task] = desired(template({ secrets: [projection({})] }), { secrets: { 'default/db': DB } });
    const spec = await buildContainerSpec(task!, 'c1', IMAGE, noUsers);
    assert.deepEqual(spec.files?.map((f) => [f.target, f.content.toString(), f.mode.toString(8), f.uid, f.gid]), [
      ['/run/secrets/db/password', 's3cret', '400', 1000, 1001],
      ['/run/secrets/db/user', 'admin', '400', 1000, 1001],
    ]);
  });

  it('with a key: that key alone at target; mode and owner as the projection sets them', () => {
    const [task] = desired(template({ secrets: [projection({ key: 'password', target: '/etc/pw', mode: 0o440, uid: 0, gid: 70 })] }), { secrets: { 'default/db': DB } });
    const got = projectFiles(task!, { uid: 1000, gid: 1001 });
    assert.ok(got.ok);
    assert.deepEqual(got.files.map((f) => [f.target, f.content.toString(), f.mode.toString(8), f.uid, f.gid]), [['/etc/pw', 's3cret', '440', 0, 70]]);
  });

  it('configs default to mode 0444', () => {
    const [task] = desired(template({ configs: [projection({ name: 'site', target: '/run/configs/site' })] }),
      { configs: { 'default/site': { generation: 1, data: { 'nginx.conf': Buffer.from('x') } } } });
    const got = projectFiles(task!, { uid: 5, gid: 6 });
    assert.ok(got.ok);
    assert.deepEqual(got.files.map((f) => [f.target, f.mode.toString(8)]), [['/run/configs/site/nginx.conf', '444']]);
  });

  it('a secret missing from the desired set is SecretNotFound naming <namespace>/<name>, never content', () => {
    const [task] = desired(template({ secrets: [projection({})] }), { secrets: { 'other/db': DB } });
    assert.deepEqual(projectionProblem(task!), { reason: 'SecretNotFound', message: 'secret default/db has not reached this node' });
    const [cfg] = desired(template({ configs: [projection({ name: 'site' })] }));
    assert.equal(projectionProblem(cfg!)?.reason, 'ConfigNotFound');
  });

  it('a missing key is SecretKeyNotFound / ConfigKeyNotFound naming the key', () => {
    const [task] = desired(template({ secrets: [projection({ key: 'token' })] }), { secrets: { 'default/db': DB } });
    assert.deepEqual(projectionProblem(task!), { reason: 'SecretKeyNotFound', message: 'secret default/db has no key "token"' });
    const [cfg] = desired(template({ configs: [projection({ name: 'db', key: 'token' })] }), { configs: { 'default/db': DB } });
    assert.equal(projectionProblem(cfg!)?.reason, 'ConfigKeyNotFound');
  });

  it('a key that is not a plain file name is never turned into a path', () => {
    const [task] = desired(template({ secrets: [projection({})] }), { secrets: { 'default/db': { generation: 1, data: { '../escape': Buffer.from('x') } } } });
    const problem = projectionProblem(task!);
    assert.equal(problem?.reason, 'SecretKeyNotFound', `expected a refusal, saw ${JSON.stringify(problem)}`);
  });

  it('a task only carries the objects its template projects', () => {
    const [task] = desired(template({ secrets: [projection({})] }), { secrets: { 'default/db': DB, 'default/other': DB } });
    assert.deepEqual(Object.keys(task!.secrets ?? {}), ['db']);
    assert.equal(task!.configs, undefined);
  });

  it('the wire projection settles its defaults: "" key and 0 mode mean default, absent uid the container user', () => {
    assert.deepEqual(projectionFrom(projection({})), { name: 'db', target: '/run/secrets/db' });
    assert.deepEqual(projectionFrom(projection({ key: 'k', mode: 0o400, uid: 0, gid: 0 })), { name: 'db', target: '/run/secrets/db', key: 'k', mode: 0o400, uid: 0, gid: 0 });
  });
});

describe('tmpfs volumes → ContainerSpec.tmpfs', () => {
  it('size 0 means 64 MiB, mode 1777, read-only as asked; other types are not tmpfs', async () => {
    const volumes = [
      { type: 'tmpfs', name: '', source: '', target: '/scratch', readOnly: false, sizeBytes: 0 },
      { type: 'tmpfs', name: '', source: '', target: '/ro', readOnly: true, sizeBytes: 1 << 20 },
      { type: 'volume', name: 'data', source: '', target: '/data', readOnly: false, sizeBytes: 0 },
    ].map(volumeFrom);
    assert.deepEqual(tmpfsMounts(volumes), [
      { target: '/scratch', sizeBytes: DEFAULT_TMPFS_BYTES, mode: 0o1777 },
      { target: '/ro', sizeBytes: 1 << 20, mode: 0o1777, readonly: true },
    ]);
    const [task] = desired(template({ volumes: [{ type: 'tmpfs', name: '', source: '', target: '/scratch', readOnly: false, sizeBytes: 0 }] }));
    const spec = await buildContainerSpec(task!, 'c1', IMAGE, noUsers);
    assert.deepEqual(spec.tmpfs, [{ target: '/scratch', sizeBytes: DEFAULT_TMPFS_BYTES, mode: 0o1777 }]);
  });
});

describe('shim wire and stored spec', () => {
  const opts = { cgroupParent: 'berth', cgroupRoot: '/sys/fs/cgroup', cgroupVersion: 'v2' as const, logMaxBytes: 1024 };
  const base: ContainerSpec = { id: 'c1', hostname: 'h', lowerDirs: ['/l'], args: ['true'], env: [], cwd: '/', uid: 0, gid: 0, limits: {}, labels: {} };

  it('encodes tmpfs and file lines exactly as native/test/spec_test.cc parses them', () => {
    const text = encodeShimSpec({
      ...base,
      tmpfs: [{ target: '/run/cache', sizeBytes: 1048576 }, { target: '/ro', sizeBytes: 4096, mode: 0o755, readonly: true }],
      files: [
        { target: '/run/secrets/db/password', content: Buffer.from('hello'), mode: 0o400, uid: 1000, gid: 1001 },
        { target: '/etc/bin.conf', content: Buffer.from([0, 1, 2, 255]), mode: 0o644, uid: 0, gid: 0 },
        { target: '/empty', content: Buffer.alloc(0), mode: 0o444, uid: 0, gid: 0 },
      ],
    }, opts);
    const lines = text.split('\n').filter((l) => l.startsWith('tmpfs=') || l.startsWith('file='));
    assert.deepEqual(lines, [
      'tmpfs=/run/cache\t1048576\t1777\trw',
      'tmpfs=/ro\t4096\t755\tro',
      'file=/run/secrets/db/password\t400\t1000\t1001\taGVsbG8=',
      'file=/etc/bin.conf\t644\t0\t0\tAAEC/w==',
      'file=/empty\t444\t0\t0\t',
    ]);
  });

  it('spec.json keeps a file\'s target, mode and owner but not its content', () => {
    const spec: ContainerSpec = { ...base, files: [{ target: '/run/secrets/x', content: Buffer.from('s3cret'), mode: 0o400, uid: 1, gid: 2 }] };
    const stored = JSON.stringify(storableSpec(spec));
    assert.doesNotMatch(stored, /s3cret|czNjcmV0/, 'the stored spec must not hold the content, plain or base64');
    const back = JSON.parse(stored) as ContainerSpec;
    assert.deepEqual(back.files?.map((f) => [f.target, f.mode, f.uid, f.gid]), [['/run/secrets/x', 0o400, 1, 2]]);
    assert.equal(spec.files?.[0]?.content.toString(), 's3cret', 'the caller\'s spec is left as it was');
  });
});

/** FakeRuntime keeps containers in memory and the specs they were started with. */
class FakeRuntime implements Runtime {
  readonly cgroupVersion = 'v2' as const;
  readonly containers = new Map<string, ContainerState>();
  readonly specs: ContainerSpec[] = [];
  private nextPid = 1000;
  async run(spec: ContainerSpec): Promise<ContainerState> {
    const st: ContainerState = { id: spec.id, status: 'running', pid: this.nextPid++, shimPid: 1, startedAt: new Date().toISOString(), labels: spec.labels, logPath: '/dev/null' };
    this.containers.set(spec.id, st);
    this.specs.push(spec);
    return { ...st };
  }
  async state(id: string) { const s = this.containers.get(id); return s && { ...s }; }
  async list() { return [...this.containers.values()].map((s) => ({ ...s })); }
  async stop(id: string) {
    const s = this.containers.get(id);
    if (s) Object.assign(s, { status: 'exited', exitCode: 143, signal: 15, finishedAt: new Date().toISOString() });
    return this.state(id);
  }
  async remove(id: string) { this.containers.delete(id); }
  async stats(): Promise<ContainerStats | undefined> { return undefined; }
  exit(id: string, exitCode: number): void {
    Object.assign(this.containers.get(id)!, { status: 'exited', exitCode, finishedAt: new Date().toISOString() });
  }
}

describe('the reconciler and missing secrets', () => {
  function harness() {
    const runtime = new FakeRuntime();
    const reports: TaskStatusView[] = [];
    const r = new Reconciler({ runtime, images, report: (s) => reports.push(s), stopGraceMs: 10, resyncMs: 20 });
    after(() => r.close());
    return { runtime, r, reports };
  }

  it('keeps a task preparing with SecretNotFound until a later desired set brings the secret, then starts it', async () => {
    const { runtime, r, reports } = harness();
    await r.start();
    const tpl = template({ secrets: [projection({ key: 'password', target: '/run/secrets/pw' })] });
    r.setDesired(desired(tpl));
    await r.idle();
    r.setDesired(desired(tpl));
    await r.idle();
    assert.equal(runtime.specs.length, 0, 'no container may start without its secret');
    const waiting = reports.filter((s) => s.reason === 'SecretNotFound');
    assert.equal(waiting.length, 1, `expected one SecretNotFound report (repeated sets re-report nothing), saw ${JSON.stringify(reports.map((s) => [s.phase, s.reason]))}`);
    assert.equal(waiting[0]!.phase, 'preparing');
    assert.match(waiting[0]!.message ?? '', /secret default\/db /);
    r.setDesired(desired(tpl, { secrets: { 'default/db': DB } }));
    await r.idle();
    assert.equal(runtime.specs.length, 1);
    assert.deepEqual(runtime.specs[0]!.files?.map((f) => [f.target, f.content.toString()]), [['/run/secrets/pw', 's3cret']]);
    assert.equal(reports.at(-1)?.phase, 'running');
    for (const s of reports) assert.doesNotMatch(JSON.stringify(s), /s3cret/, 'a status must never carry secret content');
  });

  it('a missing key keeps the task preparing with SecretKeyNotFound', async () => {
    const { runtime, r, reports } = harness();
    await r.start();
    r.setDesired(desired(template({ secrets: [projection({ key: 'token' })] }), { secrets: { 'default/db': DB } }));
    await r.idle();
    assert.equal(runtime.specs.length, 0);
    assert.deepEqual([reports.at(-1)?.phase, reports.at(-1)?.reason], ['preparing', 'SecretKeyNotFound']);
  });

  it('an in-place restart projects the data of the latest desired set', async () => {
    const { runtime, r, reports } = harness();
    await r.start();
    const tpl = template({ secrets: [projection({ key: 'password', target: '/run/secrets/pw' })], restart: { policy: 'always', backoffSeconds: 0.01, maxBackoffSeconds: 0.01 } });
    r.setDesired(desired(tpl, { secrets: { 'default/db': DB } }));
    await r.idle();
    const rotated = { generation: 4, data: { password: Buffer.from('rotated') } };
    r.setDesired(desired(tpl, { secrets: { 'default/db': rotated } }));
    await r.idle();
    runtime.exit('uid-1', 1);
    r.setDesired(desired(tpl, { secrets: { 'default/db': rotated } }));
    await waitFor(() => (runtime.specs.length >= 2 ? true : undefined), 10_000,
      () => `expected a restart, saw ${JSON.stringify(reports.map((s) => [s.phase, s.reason]))}`, 10);
    assert.equal(runtime.specs[1]!.files?.[0]?.content.toString(), 'rotated');
  });
});
