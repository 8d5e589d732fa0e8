/**
 * The agent's named volumes (agent/volumes) on a temporary state dir: made on first use with the
 * contract's layout and modes, found again by a new manager (an agent restart), in use while a
 * container's label names them or a start holds them, deleted only when unused, measured like
 * du, reported on noticeable changes; and the container spec's mounts for named and bind volumes.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../common/log.js';
import { AgentError } from '../../agent/errors.js';
import { addVolumeMounts } from '../../agent/reconciler/spec.js';
import type { DesiredTask, VolumeMount } from '../../agent/reconciler/task.js';
import type { ContainerSpec } from '../../agent/runtime/runtime.js';
import { waitFor } from '../support/cluster.js';
import { diskUsageBytes, LABEL_VOLUMES, noticeablyDifferent, VolumeManager, type VolumeInfo } from '../../agent/volumes/index.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempRoot(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'berth-volumes-'));
  dirs.push(d);
  return join(d, 'volumes');
}

/** manager builds a VolumeManager over root whose containers are `containers` and whose reports land in `reports`. */
function manager(root: string, containers: { labels: Record<string, string> }[] = [], reports: VolumeInfo[][] = [], startHoldMs = 0): VolumeManager {
  return new VolumeManager({ root, log: silentLogger, containers: async () => containers, onChange: (l) => reports.push(l), startHoldMs });
}

describe('VolumeManager', () => {
  it('makes <root>/<ns>/<name>/_data (0755) with meta.json beside it on first use, and reports it', async () => {
    const root = await tempRoot();
    const reports: VolumeInfo[][] = [];
    const m = manager(root, [], reports);
    await m.init();
    const data = await m.ensure('default', 'db-data');
    assert.equal(data, join(root, 'default', 'db-data', '_data'));
    const st = await stat(data);
    assert.ok(st.isDirectory());
    assert.equal(st.mode & 0o777, 0o755, `mode: expected 0755, saw ${(st.mode & 0o777).toString(8)}`);
    const meta = JSON.parse(await readFile(join(root, 'default', 'db-data', 'meta.json'), 'utf8')) as { createdAt: string };
    assert.ok(!Number.isNaN(Date.parse(meta.createdAt)), `meta.json createdAt: ${meta.createdAt}`);
    assert.deepEqual(m.list().map((v) => [v.namespace, v.name, v.inUse]), [['default', 'db-data', true]]);
    assert.equal(reports.length, 1, `expected one report after the volume was made, saw ${reports.length}`);
    assert.equal(await m.ensure('default', 'db-data'), data, 'a second ensure returns the same directory');
  });

  it('keeps the data and the creation time across a new manager (an agent restart)', async () => {
    const root = await tempRoot();
    const first = manager(root);
    await first.init();
    const data = await first.ensure('prod', 'cache');
    await writeFile(join(data, 'file'), 'kept');
    const createdAt = first.list()[0]!.createdAt;
    const second = manager(root);
    await second.init();
    await second.measure();
    const [v] = second.list();
    assert.deepEqual([v?.namespace, v?.name, v?.createdAt], ['prod', 'cache', createdAt]);
    assert.ok((v?.sizeBytes ?? 0) > 0, 'measured');
    assert.equal(await readFile(join(await second.ensure('prod', 'cache'), 'file'), 'utf8'), 'kept');
  });

  it('refuses names that are not DNS labels (they become path segments)', async () => {
    const m = manager(await tempRoot());
    await m.init();
    for (const [ns, name] of [['default', '../etc'], ['..', 'x'], ['default', 'A']] as const) {
      await assert.rejects(m.ensure(ns, name), (err: unknown) => err instanceof AgentError && err.code === 'BERTH_ERR_VOLUME_FAILED', `${ns}/${name} must be refused`);
    }
  });

  it('refuses to delete a volume a container mounts, deletes it once none does', async () => {
    const root = await tempRoot();
    const containers = [{ labels: { [LABEL_VOLUMES]: 'default/other,default/db' } }];
    const m = manager(root, containers);
    await m.init();
    await m.ensure('default', 'db');
    const refused = await m.delete('default', 'db');
    assert.deepEqual(refused.ok ? 'deleted' : refused.code, 'BERTH_ERR_VOLUME_IN_USE');
    containers.length = 0;
    const done = await m.delete('default', 'db');
    assert.ok(done.ok, `expected deleted, saw ${JSON.stringify(done)}`);
    await assert.rejects(stat(join(root, 'default')), 'the namespace directory goes with its last volume');
    assert.deepEqual(m.list(), []);
    const again = await m.delete('default', 'db');
    assert.deepEqual(again.ok ? 'deleted' : again.code, 'BERTH_ERR_VOLUME_NOT_FOUND');
  });

  it('holds a volume while starts that asked for it are in flight, until each releases it', async () => {
    const containers: { labels: Record<string, string> }[] = [];
    const m = manager(await tempRoot(), containers, [], 60_000);
    await m.init();
    await m.ensure('default', 'db');
    await m.ensure('default', 'db');
    const held = await m.delete('default', 'db');
    assert.equal(held.ok ? 'deleted' : held.code, 'BERTH_ERR_VOLUME_IN_USE', 'a start in progress holds it');
    m.release('default', 'db');
    const stillHeld = await m.delete('default', 'db');
    assert.equal(stillHeld.ok ? 'deleted' : stillHeld.code, 'BERTH_ERR_VOLUME_IN_USE', 'the second start still holds it');
    containers.push({ labels: { [LABEL_VOLUMES]: 'default/db' } });
    m.release('default', 'db');
    const used = await m.delete('default', 'db');
    assert.equal(used.ok ? 'deleted' : used.code, 'BERTH_ERR_VOLUME_IN_USE', 'the started container mounts it');
    containers.length = 0;
    await m.checkInUse();
    assert.equal(m.list()[0]?.inUse, false, 'no start and no container: not in use');
    assert.ok((await m.delete('default', 'db')).ok, 'deleted at once, with no wait for a hold to lapse');
  });

  it('lets a hold lapse when its start never releases it', async () => {
    const m = manager(await tempRoot(), [], [], 1);
    await m.init();
    await m.ensure('default', 'db');
    await waitFor(async () => ((await m.delete('default', 'db')).ok ? true : undefined), 5_000, () => 'the lapsed hold frees the volume');
  });

  it('measures usage after writes and reports a noticeable change', async () => {
    const reports: VolumeInfo[][] = [];
    const m = manager(await tempRoot(), [], reports);
    await m.init();
    const data = await m.ensure('default', 'logs');
    const before = m.list()[0]!.sizeBytes;
    await writeFile(join(data, 'big'), Buffer.alloc(2 * 1024 * 1024, 1));
    await m.measure();
    const afterSize = m.list()[0]!.sizeBytes;
    assert.ok(afterSize >= before + 2 * 1024 * 1024, `expected at least 2 MiB more than ${before}, saw ${afterSize}`);
    assert.equal(afterSize, await diskUsageBytes(data));
  });
});

describe('diskUsageBytes and noticeablyDifferent', () => {
  it('counts a hard-linked file once and a missing dir as 0', async () => {
    const root = await tempRoot();
    const m = manager(root);
    await m.init();
    const data = await m.ensure('default', 'd');
    await writeFile(join(data, 'a'), Buffer.alloc(64 * 1024, 1));
    const one = await diskUsageBytes(data);
    const { link } = await import('node:fs/promises');
    await link(join(data, 'a'), join(data, 'b'));
    assert.equal(await diskUsageBytes(data), one);
    assert.equal(await diskUsageBytes(join(root, 'absent')), 0);
  });

  it('a table of before/after lists and whether they are worth a report', () => {
    const v = (over: Partial<VolumeInfo> = {}): VolumeInfo => ({ namespace: 'default', name: 'd', sizeBytes: 100 * 1024 * 1024, inUse: true, createdAt: '2026-01-01T00:00:00Z', ...over });
    const m = (...list: VolumeInfo[]) => new Map(list.map((x) => [`${x.namespace}/${x.name}`, x]));
    const cases: [string, Map<string, VolumeInfo>, Map<string, VolumeInfo>, boolean][] = [
      ['same', m(v()), m(v()), false],
      ['a volume came', m(), m(v()), true],
      ['use flipped', m(v()), m(v({ inUse: false })), true],
      ['100 MiB grew by 4 KiB', m(v()), m(v({ sizeBytes: 100 * 1024 * 1024 + 4096 })), false],
      ['100 MiB grew by 1 MiB', m(v()), m(v({ sizeBytes: 101 * 1024 * 1024 })), true],
      ['4 KiB grew to 8 KiB (5% of a small volume)', m(v({ sizeBytes: 4096 })), m(v({ sizeBytes: 8192 })), true],
    ];
    for (const [name, before, after, expected] of cases) assert.equal(noticeablyDifferent(before, after), expected, name);
  });
});

describe('addVolumeMounts', () => {
  const task = (volumes: Partial<VolumeMount>[]): DesiredTask => ({
    namespace: 'default', name: 'db-1', uid: 'u1', service: 'db', desiredState: 'running', revision: 1,
    template: {
      image: 'x', command: [], env: {}, resources: { cpuCores: 0, memoryBytes: 0, pids: 0 }, hostPorts: [], pullPolicy: 'if-not-present',
      restart: { policy: 'always', backoffMs: 1000, maxBackoffMs: 1000 }, init: true,
      volumes: volumes.map((v) => ({ type: 'volume', name: '', source: '', target: '/', readOnly: false, sizeBytes: 0, ...v })),
    },
  });
  const spec = (): ContainerSpec => ({ id: 'c', hostname: 'h', lowerDirs: [], args: ['true'], env: [], cwd: '/', uid: 0, gid: 0, limits: {}, labels: {} });

  it('mounts named volumes\' data and existing host paths, labels the container, leaves tmpfs alone', async () => {
    const root = await tempRoot();
    const m = manager(root);
    await m.init();
    const s = spec();
    await addVolumeMounts(s, task([
      { type: 'volume', name: 'data', target: '/data' }, { type: 'volume', name: 'data', target: '/again', readOnly: true },
      { type: 'bind', source: tmpdir(), target: '/host', readOnly: true }, { type: 'tmpfs', target: '/t', sizeBytes: 4096 },
    ]), m);
    const data = join(root, 'default', 'data', '_data');
    assert.deepEqual(s.mounts, [
      { source: data, target: '/data' }, { source: data, target: '/again', readonly: true }, { source: tmpdir(), target: '/host', readonly: true },
    ]);
    assert.equal(s.labels[LABEL_VOLUMES], 'default/data');
  });

  it('fails with HostPathNotFound naming a missing bind source, before making any volume', async () => {
    const root = await tempRoot();
    const m = manager(root);
    await m.init();
    await assert.rejects(addVolumeMounts(spec(), task([{ type: 'volume', name: 'data', target: '/data' }, { type: 'bind', source: '/no/such/berth/path', target: '/x' }]), m),
      (err: unknown) => err instanceof AgentError && err.reason === 'HostPathNotFound' && err.message.includes('/no/such/berth/path'));
    assert.deepEqual(m.list(), [], 'no volume made for a task that cannot start');
  });
});

describe('volume metrics', () => {
  it('expose each volume\'s size and the count by state, dropping a deleted volume\'s series', async () => {
    const { Registry } = await import('prom-client');
    const { registerVolumeMetrics } = await import('../../agent/metrics/volume-metrics.js');
    const registry = new Registry();
    let list = [
      { namespace: 'default', name: 'db', sizeBytes: 8192, inUse: true },
      { namespace: 'shop', name: 'uploads', sizeBytes: 4096, inUse: false },
    ];
    registerVolumeMetrics(registry, () => list);
    const text = await registry.metrics();
    assert.match(text, /^berth_volume_bytes\{namespace="default",volume="db"\} 8192$/m);
    assert.match(text, /^berth_volume_bytes\{namespace="shop",volume="uploads"\} 4096$/m);
    assert.match(text, /^berth_volumes\{state="in-use"\} 1$/m);
    assert.match(text, /^berth_volumes\{state="unused"\} 1$/m);
    list = [list[0]!];
    const after = await registry.metrics();
    assert.doesNotMatch(after, /volume="uploads"/, 'a deleted volume has no series');
    assert.match(after, /^berth_volumes\{state="unused"\} 0$/m);
  });
});
