import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, openSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, readlink, rm, rmdir, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';

import { exitReason } from '../../agent/reconciler/status.js';
import { V1_CONTROLLERS } from '../../agent/runtime/cgroup-v1.js';
import { NativeRuntime } from '../../agent/runtime/native-runtime.js';
import type { ContainerSpec, ContainerState, ContainerStats } from '../../agent/runtime/runtime.js';

const BUSYBOX = '/usr/bin/busybox';
const APPLETS = ['sh', 'sleep', 'cat', 'true', 'echo', 'head', 'tr', 'mknod', 'grep', 'mkdir'];
const CGROUP_ROOT = '/sys/fs/cgroup';
const UNIFIED_ROOT = '/sys/fs/cgroup/unified';
const POLL_MS = 20;
const WAIT_LIMIT_MS = 20_000;
const MiB = 1024 * 1024;
const canRun = process.getuid?.() === 0 && existsSync(BUSYBOX) && existsSync(join(CGROUP_ROOT, 'memory'));

/** DEVICE_SCRIPT makes one disallowed block and char device and one allowed char device, and uses each. */
const DEVICE_SCRIPT = (disk: string) => `mkdir -p /tmp
mknod /tmp/disk b ${disk} && echo mknod-block-ok
head -c 512 /tmp/disk >/dev/null && echo read-block-ok
mknod /tmp/tun c 10 200 && cat /tmp/tun
mknod /tmp/null2 c 1 3 && echo hi >/tmp/null2 && echo write-null-ok`;

/**
 * openableBlockDevice returns "MAJOR MINOR" of a block device the host itself may open (the test
 * host can sit behind its own device policy), so a denial inside the container is ours alone.
 */
async function openableBlockDevice(): Promise<string> {
  for (const entry of await readdir('/sys/dev/block')) {
    const name = basename(await readlink(join('/sys/dev/block', entry)));
    try {
      closeSync(openSync(join('/dev', name), constants.O_RDONLY));
      return entry.replace(':', ' ');
    } catch {
      // not openable on the host: try the next one
    }
  }
  throw new Error('no block device the host can open');
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out after ${WAIT_LIMIT_MS} ms waiting for ${what}`);
    await sleep(POLL_MS);
  }
}

describe('cgroup limits on real containers (v1 here, v2 device program on the unified mount)', { skip: !canRun && 'needs root, busybox-static and cgroup v1' }, () => {
  const cgroupParent = `berth-cgtest-${process.pid}`;
  let work: string;
  let rootfs: string;
  let rt: NativeRuntime;
  const runtimes: NativeRuntime[] = [];
  const started: Array<[NativeRuntime, string]> = [];

  const spec = (id: string, args: string[], extra: Partial<ContainerSpec> = {}): ContainerSpec => ({
    id, hostname: id, lowerDirs: [rootfs], args, env: ['PATH=/bin'], cwd: '/', uid: 0, gid: 0, limits: {}, labels: {}, ...extra,
  });
  const run = async (r: NativeRuntime, s: ContainerSpec): Promise<ContainerState> => {
    started.push([r, s.id]);
    return r.run(s);
  };
  const exited = (r: NativeRuntime, id: string) => until(`${id} to exit`, async () => {
    const st = await r.state(id);
    return st?.status === 'exited' ? st : undefined;
  });
  const logText = async (st: ContainerState) => (await readFile(st.logPath, 'utf8'));
  const cg = (c: string, id: string, file: string) => readFile(join(CGROUP_ROOT, c, cgroupParent, id, file), 'utf8').then((s) => s.trim());

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-cgtest-'));
    rootfs = join(work, 'rootfs');
    await mkdir(join(rootfs, 'bin'), { recursive: true });
    await mkdir(join(rootfs, 'tmp'), { recursive: true });
    await copyFile(BUSYBOX, join(rootfs, 'bin/busybox'));
    for (const applet of APPLETS) await symlink('busybox', join(rootfs, 'bin', applet));
    rt = new NativeRuntime({ stateDir: join(work, 'state'), cgroupParent });
    runtimes.push(rt);
  });

  after(async () => {
    for (const [r, id] of started) {
      await r.stop(id, 0).catch(() => undefined);
      await r.remove(id).catch(() => undefined);
    }
    for (const c of V1_CONTROLLERS) await rmdir(join(CGROUP_ROOT, c, cgroupParent)).catch(() => undefined);
    await rmdir(join(UNIFIED_ROOT, cgroupParent)).catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  });

  it('writes memory+swap, cpu quota/shares, pids, cpuset and device rules, and reports every stat', async () => {
    const limits = { memoryBytes: 64 * MiB, swapBytes: 16 * MiB, cpuCores: 0.5, pids: 16, cpus: '0' };
    await run(rt, spec('limits', ['sh', '-c', 'grep Cpus_allowed_list /proc/self/status; exec sleep 1000'], { limits }));
    assert.equal(await cg('memory', 'limits', 'memory.limit_in_bytes'), String(64 * MiB));
    if (existsSync(join(CGROUP_ROOT, 'memory', 'memory.memsw.limit_in_bytes'))) {
      assert.equal(await cg('memory', 'limits', 'memory.memsw.limit_in_bytes'), String(80 * MiB), 'memsw = memory + swap');
    }
    assert.equal(await cg('cpu', 'limits', 'cpu.cfs_quota_us'), '50000');
    assert.equal(await cg('cpu', 'limits', 'cpu.shares'), '512', 'shares = cores * 1024');
    assert.equal(await cg('pids', 'limits', 'pids.max'), '16');
    assert.equal(await cg('cpuset', 'limits', 'cpuset.cpus'), '0');
    const devices = (await cg('devices', 'limits', 'devices.list')).split('\n');
    assert.ok(!devices.includes('a *:* rwm'), `device access is restricted, saw ${devices.join(', ')}`);
    for (const rule of ['c *:* m', 'b *:* m', 'c 1:3 rwm', 'c 5:2 rwm', 'c 136:* rwm']) assert.ok(devices.includes(rule), `devices.list has "${rule}"`);

    const stats = await until<ContainerStats>('stats', async () => rt.stats('limits'));
    assert.equal(stats.memoryLimitBytes, 64 * MiB);
    assert.equal(stats.cpuQuotaUs, 50000);
    assert.equal(stats.cpuPeriodUs, 100000);
    assert.equal(stats.cpuShares, 512);
    assert.equal(stats.oomKills, 0);
    assert.ok((stats.memoryRssBytes ?? -1) >= 0 && (stats.memoryCacheBytes ?? -1) >= 0);
    const st = await until('the cpuset line in the log', async () => {
      const s = await rt.state('limits');
      return s && (await logText(s)).includes('Cpus_allowed_list') ? s : undefined;
    });
    assert.match(await logText(st), /Cpus_allowed_list:\s+0\n/, 'the container runs on cpu 0 only');

    await rt.stop('limits', 0);
    await rt.remove('limits');
    for (const c of V1_CONTROLLERS) assert.equal(existsSync(join(CGROUP_ROOT, c, cgroupParent, 'limits')), false, `no ${c} cgroup left`);
  });

  it('OOM-kills a container that allocates past its memory limit and reports OOMKilled', async () => {
    const script = 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived';
    await run(rt, spec('oom', ['sh', '-c', script], { limits: { memoryBytes: 32 * MiB } }));
    const st = await exited(rt, 'oom');
    assert.equal(st.oomKilled, true, `expected oomKilled, saw exit ${st.exitCode} signal ${st.signal}`);
    assert.doesNotMatch(await logText(st), /survived/);
    assert.notEqual(st.exitCode, 0);
    assert.equal(exitReason(st.exitCode!, st.oomKilled === true), 'OOMKilled', 'the task status reason');
  });

  it('contains a fork bomb at its pids limit while the host keeps forking', async () => {
    const bomb = 'f() { f | f & }; f 2>/dev/null; while :; do sleep 1; done 2>/dev/null';
    await run(rt, spec('bomb', ['sh', '-c', bomb], { limits: { pids: 32, cpuCores: 1 } }));
    const refused = await until('a refused fork', async () => {
      const events = await cg('pids', 'bomb', 'pids.events').catch(() => '');
      const n = Number(/max (\d+)/.exec(events)?.[1] ?? 0);
      return n > 0 ? n : undefined;
    });
    assert.ok(refused > 0);
    for (let i = 0; i < 20; i++) {
      const current = Number(await cg('pids', 'bomb', 'pids.current'));
      assert.ok(current <= 32, `pids.current ${current} stays within 32`);
    }
    const host = spawnSync('/bin/true', { timeout: 10_000 });
    assert.equal(host.status, 0, 'the host can still fork and exec');
    const stopped = await rt.stop('bomb', 0);
    assert.equal(stopped?.status, 'exited');
  });

  it('throttles a busy loop at its cpu quota and counts user time', async () => {
    await run(rt, spec('busy', ['sh', '-c', 'while :; do :; done'], { limits: { cpuCores: 0.1 } }));
    const stats = await until<ContainerStats>('throttled periods', async () => {
      const s = await rt.stats('busy');
      return s && (s.cfsThrottledPeriods ?? 0) >= 3 ? s : undefined;
    });
    assert.ok((stats.cfsPeriods ?? 0) >= (stats.cfsThrottledPeriods ?? 0));
    assert.ok((stats.cfsThrottledSeconds ?? 0) > 0, 'throttled time grows');
    const later = await until<ContainerStats>('user cpu time', async () => {
      const s = await rt.stats('busy');
      return s && (s.cpuUserSeconds ?? 0) + (s.cpuSystemSeconds ?? 0) > 0 ? s : undefined;
    });
    assert.ok(later.cpuUsageSeconds > 0);
    assert.equal(later.cpuShares, 102);
    await rt.stop('busy', 0);
  });

  it('v1 device rules: mknod works but a block device and /dev/net/tun cannot be opened; /dev/null can', async () => {
    await run(rt, spec('devv1', ['sh', '-c', DEVICE_SCRIPT(await openableBlockDevice())]));
    const log = await logText(await exited(rt, 'devv1'));
    assert.match(log, /mknod-block-ok/, 'mknod is allowed (c/b *:* m)');
    assert.doesNotMatch(log, /read-block-ok/, 'reading the host disk is denied');
    assert.match(log, /\/tmp\/disk.*Operation not permitted/);
    assert.match(log, /\/tmp\/tun.*Operation not permitted/);
    assert.match(log, /write-null-ok/);
  });

  it('v2 backend writes every limit file in a fake cgroupfs (and, with no device program, devices stay open)', async () => {
    const fakeRoot = join(work, 'fake-cgroup2');
    await mkdir(fakeRoot);
    const v2 = new NativeRuntime({ stateDir: join(work, 'state-fake'), cgroupParent: 'berth/node-a', cgroupRoot: fakeRoot, cgroupVersion: 'v2' });
    const limits = { memoryBytes: 64 * MiB, cpuCores: 0.25, pids: 9, cpus: '0-1' };
    await run(v2, spec('fake', ['sh', '-c', DEVICE_SCRIPT(await openableBlockDevice())], { limits }));
    const log = await logText(await exited(v2, 'fake'));
    const read = (rel: string) => readFile(join(fakeRoot, rel), 'utf8');
    const expected: Record<string, string> = {
      'memory.max': String(64 * MiB),
      'memory.swap.max': '0',
      'memory.oom.group': '1',
      'cpu.max': '25000 100000',
      'cpu.weight': String(1 + Math.floor(((256 - 2) * 9999) / 262142)),
      'pids.max': '9',
      'cpuset.cpus': '0-1',
    };
    for (const [file, value] of Object.entries(expected)) assert.equal(await read(`berth/node-a/fake/${file}`), value, file);
    for (const level of ['', 'berth', 'berth/node-a']) {
      assert.equal(await read(join(level, 'cgroup.subtree_control')), '+cpu +memory +pids +cpuset', `controllers enabled at "${level}"`);
    }
    // The control for the device tests: a process outside any device-restricted cgroup can read the disk.
    assert.match(log, /read-block-ok/, 'without a device program the disk is readable (control)');
    await rm(join(fakeRoot, 'berth/node-a/fake'), { recursive: true });
    await v2.remove('fake');
  });

  it('v2 swap: memory.swap.max carries the requested swap', async () => {
    const fakeRoot = join(work, 'fake-cgroup2-swap');
    await mkdir(fakeRoot);
    const v2 = new NativeRuntime({ stateDir: join(work, 'state-swap'), cgroupParent: 'berth', cgroupRoot: fakeRoot, cgroupVersion: 'v2' });
    await run(v2, spec('swap', ['true'], { limits: { memoryBytes: 32 * MiB, swapBytes: 8 * MiB } }));
    await exited(v2, 'swap');
    assert.equal(await readFile(join(fakeRoot, 'berth/swap/memory.swap.max'), 'utf8'), String(8 * MiB));
    assert.equal(await readFile(join(fakeRoot, 'cgroup.subtree_control'), 'utf8'), '+cpu +memory +pids', 'cpuset only when cpus are pinned');
    await rm(join(fakeRoot, 'berth/swap'), { recursive: true });
    await v2.remove('swap');
  });

  it('v2 device program on the real unified mount denies the same devices', { skip: !existsSync(join(UNIFIED_ROOT, 'cgroup.procs')) && 'no cgroup2 mount' }, async () => {
    const v2 = new NativeRuntime({ stateDir: join(work, 'state-v2'), cgroupParent, cgroupRoot: UNIFIED_ROOT, cgroupVersion: 'v2' });
    await run(v2, spec('devv2', ['sh', '-c', DEVICE_SCRIPT(await openableBlockDevice())]));
    const log = await logText(await exited(v2, 'devv2'));
    assert.match(log, /mknod-block-ok/);
    assert.doesNotMatch(log, /read-block-ok/);
    assert.match(log, /\/tmp\/disk.*Operation not permitted/);
    assert.match(log, /\/tmp\/tun.*Operation not permitted/);
    assert.match(log, /write-null-ok/);
    await v2.remove('devv2');
    assert.equal(existsSync(join(UNIFIED_ROOT, cgroupParent, 'devv2')), false, 'the shim removed the v2 cgroup');
  });
});
