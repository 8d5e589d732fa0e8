import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';

import { NativeRuntime } from '../../agent/runtime/native-runtime.js';
import type { ContainerSpec, ContainerState } from '../../agent/runtime/runtime.js';
import { addBusybox, removeContainers, waitExited } from '../support/runtime.js';
import { removeCgroupParent } from '../support/cgroups.js';
import { V1_CONTROLLERS } from '../../agent/runtime/cgroup-v1.js';

const BUSYBOX = '/usr/bin/busybox';
const APPLETS = ['sh', 'sleep', 'hostname', 'cat', 'true', 'echo', 'id'];
const WAIT_POLL_MS = 10;
const WAIT_LIMIT_MS = 15_000;
const canRun = process.getuid?.() === 0 && existsSync(BUSYBOX);

function mountPoints(text: string): string[] {
  return text.split('\n').filter(Boolean).map((line) => line.split(' ')[4]!).sort();
}

describe('native runtime with real containers', { skip: !canRun && 'needs root and busybox-static' }, () => {
  const cgroupParent = `berth-test-${process.pid}`;
  let work: string;
  let rootfs: string;
  let rt: NativeRuntime;
  let hostMounts: string[];
  const started = new Set<string>();

  const spec = (id: string, args: string[], extra: Partial<ContainerSpec> = {}): ContainerSpec => ({
    id,
    hostname: `box-${id}`,
    lowerDirs: [rootfs],
    args,
    env: ['PATH=/bin'],
    cwd: '/',
    uid: 0,
    gid: 0,
    limits: {},
    labels: { test: 'runtime' },
    ...extra,
  });
  const run = async (s: ContainerSpec): Promise<ContainerState> => {
    started.add(s.id);
    return rt.run(s);
  };

  before(async () => {
    hostMounts = mountPoints(await readFile('/proc/self/mountinfo', 'utf8'));
    work = await mkdtemp(join(tmpdir(), 'berth-runtime-'));
    rootfs = join(work, 'rootfs');
    await addBusybox(rootfs, APPLETS);
    rt = new NativeRuntime({ stateDir: join(work, 'state'), cgroupParent });
  });

  after(async () => {
    await removeContainers(rt, started);
    await removeCgroupParent(cgroupParent);
    await rm(work, { recursive: true, force: true });
  });

  it('runs the command as PID 1 with the spec hostname, logs stdout/stderr in CRI format and collects the exit code', async () => {
    const st = await run(spec('exit7', ['sh', '-c', 'echo pid=$$; hostname; echo oops >&2; exit 7']));
    assert.equal(st.status, 'running');
    assert.ok(st.pid > 1 && st.shimPid > 1);
    const done = await waitExited(rt, 'exit7');
    assert.equal(done.exitCode, 7);
    assert.equal(done.signal, undefined);
    assert.equal(done.oomKilled, false);
    const log = await readFile(done.logPath, 'utf8');
    const cri = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) F (.*)$/;
    const records = log.trimEnd().split('\n').map((line) => {
      const m = cri.exec(line);
      assert.ok(m, `CRI log line expected, saw ${JSON.stringify(line)}`);
      return `${m[1]} ${m[2]}`;
    });
    assert.deepEqual(records.filter((r) => r.startsWith('stdout')), ['stdout pid=1', 'stdout box-exit7']);
    assert.deepEqual(records.filter((r) => r.startsWith('stderr')), ['stderr oops']);
  });

  it('puts a long-running container in its own pid namespace and cgroup with the spec limits, and reports stats', async () => {
    const limits = { memoryBytes: 64 * 1024 * 1024, cpuCores: 0.5, pids: 32 };
    const st = await run(spec('sleeper', ['sleep', '1000'], { limits }));
    assert.notEqual(await readlink(`/proc/${st.pid}/ns/pid`), await readlink('/proc/self/ns/pid'));
    assert.notEqual(await readlink(`/proc/${st.pid}/ns/net`), await readlink('/proc/self/ns/net'));
    assert.notEqual(await readlink(`/proc/${st.pid}/ns/mnt`), await readlink('/proc/self/ns/mnt'));
    assert.equal(rt.cgroupVersion, 'v1', 'this host is cgroup v1 (hybrid)');
    const cg = (c: string, file: string) => readFile(`/sys/fs/cgroup/${c}/${cgroupParent}/sleeper/${file}`, 'utf8').then((s) => s.trim());
    assert.equal(await cg('memory', 'memory.limit_in_bytes'), String(limits.memoryBytes));
    assert.equal(await cg('cpu', 'cpu.cfs_quota_us'), '50000');
    assert.equal(await cg('cpu', 'cpu.cfs_period_us'), '100000');
    assert.equal(await cg('pids', 'pids.max'), '32');
    assert.ok((await cg('pids', 'cgroup.procs')).split('\n').includes(String(st.pid)), 'init is in the pids cgroup');

    const stats = await rt.stats('sleeper');
    assert.ok(stats, 'a running container has stats');
    assert.equal(stats.memoryLimitBytes, limits.memoryBytes);
    assert.ok(stats.memoryUsageBytes > 0, `memory usage > 0, saw ${stats.memoryUsageBytes}`);
    assert.ok(stats.memoryWorkingSetBytes <= stats.memoryUsageBytes);
    assert.equal(stats.pids, 1);
    assert.ok(stats.cpuUsageSeconds > 0 && stats.cpuUsageSeconds < 60, `cpu seconds plausible, saw ${stats.cpuUsageSeconds}`);

    const adopted = new NativeRuntime({ stateDir: join(work, 'state'), cgroupParent });
    const listed = (await adopted.list()).find((c) => c.id === 'sleeper');
    assert.equal(listed?.status, 'running', 'a fresh runtime on the same state dir re-adopts the container');
    assert.deepEqual(listed?.labels, { test: 'runtime' });

    await assert.rejects(rt.remove('sleeper'), { code: 'BERTH_ERR_RUNTIME_RUNNING' });
    // sleep is PID 1 of its namespace without a SIGTERM handler, so the kernel drops SIGTERM and
    // only the SIGKILL after the grace period ends it (as with `docker stop` without --init).
    const stopped = await rt.stop('sleeper', 100);
    assert.equal(stopped?.status, 'exited');
    assert.equal(stopped?.signal, 9);
    assert.equal(stopped?.exitCode, 137);
    assert.equal(await rt.stats('sleeper'), undefined);

    await rt.remove('sleeper');
    for (const c of V1_CONTROLLERS) {
      assert.equal(existsSync(`/sys/fs/cgroup/${c}/${cgroupParent}/sleeper`), false, `no ${c} cgroup left`);
    }
    assert.equal(existsSync(join(work, 'state/containers/sleeper')), false, 'no state dir left');
    assert.equal(await rt.state('sleeper'), undefined);
  });

  it('stop() ends a container that handles SIGTERM with SIGTERM, before the grace period', async () => {
    await run(spec('graceful', ['sh', '-c', "trap 'echo got TERM; exit 143' TERM; sleep 1000 & wait"]));
    // Wait until the trap is installed (sh has caught SIGTERM), or the signal would be dropped.
    const deadline = Date.now() + WAIT_LIMIT_MS;
    for (;;) {
      const pid = (await rt.state('graceful'))!.pid;
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      const caught = BigInt('0x' + /SigCgt:\s*([0-9a-f]+)/.exec(status)![1]);
      if ((caught >> 14n) & 1n) break;
      assert.ok(Date.now() < deadline, 'sh never installed its TERM trap');
      await sleep(WAIT_POLL_MS);
    }
    const stopped = await rt.stop('graceful', WAIT_LIMIT_MS);
    assert.equal(stopped?.exitCode, 143);
    assert.equal(stopped?.signal, undefined, 'not SIGKILLed');
    assert.match(await readFile(stopped!.logPath, 'utf8'), /stdout F got TERM/);
    await rt.remove('graceful');
  });

  it('rejects an exec of a missing binary with errno, step and path, and leaves nothing behind', async () => {
    await assert.rejects(run(spec('nope', ['/bin/nope'])), (err: Error & Record<string, unknown>) => {
      assert.equal(err.code, 'BERTH_ERR_RUNTIME_START');
      assert.equal(err.errnoCode, 'ENOENT');
      assert.equal(err.step, 'exec');
      assert.equal(err.path, '/bin/nope');
      assert.match(err.message, /exec \/bin\/nope: ENOENT/);
      return true;
    });
    await assert.rejects(run(spec('nopath', ['nope-in-path'])), /exec nope-in-path: ENOENT/);
    assert.equal(existsSync(join(work, 'state/containers/nope')), false);
    for (const c of V1_CONTROLLERS) assert.equal(existsSync(`/sys/fs/cgroup/${c}/${cgroupParent}/nope`), false);
  });

  it('rejects a missing working directory clearly', async () => {
    await assert.rejects(run(spec('nocwd', ['true'], { cwd: '/does/not/exist' })), (err: Error & Record<string, unknown>) => {
      assert.match(err.message, /chdir \/does\/not\/exist: ENOENT/);
      assert.equal(err.step, 'chdir');
      return true;
    });
  });

  it('writes v2 limits and delegates controllers in a fake unified cgroupfs', async () => {
    const fakeRoot = join(work, 'fake-cgroup2');
    await mkdir(fakeRoot);
    const v2 = new NativeRuntime({ stateDir: join(work, 'state-v2'), cgroupParent: 'berth/node-a', cgroupRoot: fakeRoot, cgroupVersion: 'v2' });
    assert.equal(v2.cgroupVersion, 'v2');
    started.add('v2c');
    await v2.run(spec('v2c', ['true'], { limits: { memoryBytes: 1048576, cpuCores: 1.5, pids: 7 } }));
    await waitExited(v2, 'v2c');
    const read = (rel: string) => readFile(join(fakeRoot, rel), 'utf8');
    assert.equal(await read('berth/node-a/v2c/memory.max'), '1048576');
    assert.equal(await read('berth/node-a/v2c/cpu.max'), '150000 100000');
    assert.equal(await read('berth/node-a/v2c/pids.max'), '7');
    assert.match(await read('berth/node-a/v2c/cgroup.procs'), /^\d+$/);
    for (const level of ['', 'berth', 'berth/node-a']) {
      assert.match(await read(join(level, 'cgroup.subtree_control')), /\+pids/, `controllers enabled at "${level}"`);
    }
    // A fake cgroupfs keeps its files, so rmdir cannot remove it the way it removes a real cgroup.
    await rm(join(fakeRoot, 'berth/node-a/v2c'), { recursive: true });
    await v2.remove('v2c');
    assert.equal(existsSync(join(work, 'state-v2/containers/v2c')), false);
  });

  it('leaves no new mounts on the host and no container dirs', async () => {
    assert.deepEqual(mountPoints(await readFile('/proc/self/mountinfo', 'utf8')), hostMounts);
    const left = await readdir(join(work, 'state/containers')).catch(() => []);
    assert.deepEqual(left.filter((id) => id !== 'exit7'), []);
  });
});
