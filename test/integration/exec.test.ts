import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';

import { NativeRuntime } from '../../agent/runtime/native-runtime.js';
import type { ContainerSpec, ContainerState } from '../../agent/runtime/runtime.js';
import { removeCgroupParent } from '../support/cgroups.js';
import { addBusybox, removeContainers } from '../support/runtime.js';

const BUSYBOX = '/usr/bin/busybox';
const APPLETS = ['sh', 'sleep', 'hostname', 'cat', 'true', 'echo', 'id', 'pwd', 'ls', 'head', 'yes', 'env', 'grep'];
const WAIT_POLL_MS = 20;
const WAIT_LIMIT_MS = 10_000;
const MAX_EXEC_OUTPUT_BYTES = 4 * 1024 * 1024;
const canRun = process.getuid?.() === 0 && existsSync(BUSYBOX);

describe('exec into a running container', { skip: !canRun && 'needs root and busybox-static' }, () => {
  const cgroupParent = `berth-exec-test-${process.pid}`;
  let work: string;
  let rootfs: string;
  let rt: NativeRuntime;
  const started = new Set<string>();

  const spec = (id: string, args: string[], extra: Partial<ContainerSpec> = {}): ContainerSpec => ({
    id,
    hostname: `box-${id}`,
    lowerDirs: [rootfs],
    args,
    env: ['PATH=/bin', 'FROM_IMAGE=yes', 'OVERRIDE=image'],
    cwd: '/work',
    uid: 0,
    gid: 0,
    limits: { pids: 16 },
    labels: { test: 'exec' },
    ...extra,
  });
  const run = async (s: ContainerSpec): Promise<ContainerState> => {
    started.add(s.id);
    return rt.run(s);
  };
  const text = (b: Buffer) => b.toString('utf8');

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-exec-'));
    rootfs = join(work, 'rootfs');
    await mkdir(join(rootfs, 'bin'), { recursive: true });
    await mkdir(join(rootfs, 'work'));
    await mkdir(join(rootfs, 'tmp'));
    await addBusybox(rootfs, APPLETS);
    rt = new NativeRuntime({ stateDir: join(work, 'state'), cgroupParent });
    await run(spec('target', ['sleep', '100000']));
  });

  after(async () => {
    await removeContainers(rt, started);
    await removeCgroupParent(cgroupParent);
    await rm(work, { recursive: true, force: true });
  });

  it('runs in the container\'s pid, uts and mount namespaces, with its env, cwd, and the exit code and both streams returned', async () => {
    const r = await rt.exec('target', {
      args: ['sh', '-c', 'echo pid=$$; hostname; pwd; echo $FROM_IMAGE $OVERRIDE $EXTRA; set -- /proc/[0-9]*; echo $#; echo oops >&2; exit 3'],
      env: ['OVERRIDE=exec', 'EXTRA=1'],
    });
    assert.equal(r.exitCode, 3);
    assert.equal(r.timedOut, false);
    const lines = text(r.stdout).trimEnd().split('\n');
    assert.notEqual(lines[0], 'pid=1', 'not the init');
    assert.ok(Number(lines[0]!.slice(4)) < 100, `a pid of the container's namespace, saw ${lines[0]}`);
    assert.equal(lines[1], 'box-target', 'the container\'s hostname');
    assert.equal(lines[2], '/work', 'the container\'s cwd');
    assert.equal(lines[3], 'yes exec 1', 'image env kept, exec env added and overriding');
    // Counted by sh's own glob: a pipeline's count depended on whether grep existed yet when ls read /proc.
    assert.equal(lines[4], '2', 'only the container\'s processes are visible (init, sh)');
    assert.equal(text(r.stderr), 'oops\n');
    assert.equal(r.stdoutTruncated, false);
  });

  it('joins the container\'s cgroup, so its limits count the exec\'d process', async () => {
    const procs = `/sys/fs/cgroup/pids/${cgroupParent}/target/cgroup.procs`;
    const pending = rt.exec('target', { args: ['sleep', '2'] });
    const deadline = Date.now() + WAIT_LIMIT_MS;
    let seen: string[] = [];
    while (Date.now() < deadline) {
      seen = (await readFile(procs, 'utf8')).split('\n').filter(Boolean);
      if (seen.length >= 2) break; // the init and the exec'd sleep; the helper itself stays out
      await sleep(WAIT_POLL_MS);
    }
    assert.equal(seen.length, 2, `the exec'd sleep joins the pids cgroup next to the init, saw ${JSON.stringify(seen)}`);
    const init = String((await rt.state('target'))!.pid);
    const other = seen.find((p) => p !== init)!;
    assert.match(await readFile(`/proc/${other}/cmdline`, 'utf8'), /^sleep\0/);
    for (const ns of ['pid', 'mnt', 'net', 'uts', 'ipc', 'cgroup']) {
      assert.equal(await readlink(`/proc/${other}/ns/${ns}`), await readlink(`/proc/${init}/ns/${ns}`), `same ${ns} namespace as the init`);
    }
    assert.equal((await pending).exitCode, 0);
  });

  it('gives the command the init\'s capabilities, no_new_privs and seccomp filter', async () => {
    const fields = /^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):/;
    const r = await rt.exec('target', { args: ['sh', '-c', 'cat /proc/self/status; echo ===; cat /proc/1/status'] });
    const [mine, init] = text(r.stdout).split('===\n').map((part) => part.split('\n').filter((l) => fields.test(l)));
    assert.equal(mine!.length, 7, `all seven fields present, saw ${JSON.stringify(mine)}`);
    assert.deepEqual(mine, init);
    assert.ok(mine!.includes('NoNewPrivs:\t1'), 'no_new_privs is set');
    assert.ok(mine!.includes('Seccomp:\t2'), 'a seccomp filter is installed');
    assert.notEqual(mine!.find((l) => l.startsWith('CapBnd'))!, 'CapBnd:\t000001ffffffffff', 'the bounding set is reduced');
  });

  it('reports a missing binary as exit 127 with "exec NAME: ENOENT" on stderr', async () => {
    const r = await rt.exec('target', { args: ['nope'] });
    assert.equal(r.exitCode, 127);
    assert.equal(text(r.stderr), 'exec nope: ENOENT\n');
  });

  it('kills the command at its timeout', async () => {
    const r = await rt.exec('target', { args: ['sleep', '1000'], timeoutMs: 200 });
    assert.equal(r.timedOut, true);
    assert.equal(r.exitCode, 137);
    assert.equal(r.signal, 9);
  });

  it('caps each stream at 4 MiB and flags the truncation', async () => {
    const r = await rt.exec('target', { args: ['sh', '-c', 'yes | head -c 5000000'] });
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout.length, MAX_EXEC_OUTPUT_BYTES);
    assert.equal(r.stdoutTruncated, true);
    assert.equal(r.stderrTruncated, false);
  });

  it('runs as the container\'s user and group', async () => {
    await run(spec('nobody', ['sleep', '100000'], { uid: 1000, gid: 1001, cwd: '/tmp' }));
    const r = await rt.exec('nobody', { args: ['sh', '-c', 'id -u; id -g; id -G'], cwd: '/' });
    assert.equal(text(r.stdout), '1000\n1001\n1001\n');
  });

  it('refuses a container that is not running', async () => {
    await run(spec('done', ['true']));
    const deadline = Date.now() + WAIT_LIMIT_MS;
    while ((await rt.state('done'))?.status !== 'exited') {
      assert.ok(Date.now() < deadline, 'container "done" never exited');
      await sleep(WAIT_POLL_MS);
    }
    await assert.rejects(rt.exec('done', { args: ['true'] }), { code: 'BERTH_ERR_RUNTIME_NOT_RUNNING' });
    await assert.rejects(rt.exec('never-made', { args: ['true'] }), { code: 'BERTH_ERR_RUNTIME_NOT_RUNNING' });
    await assert.rejects(rt.exec('target', { args: [] }), { code: 'BERTH_ERR_RUNTIME_INVALID_SPEC' });
  });
});
