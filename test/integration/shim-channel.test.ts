/**
 * The shim owns its container: the runtime kills and waits through each shim's control socket
 * (never by PID), exits are pushed, and berth-init as PID 1 forwards signals and reaps orphans.
 * Real containers through NativeRuntime; no etcd, no network.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { NativeRuntime } from '../../agent/runtime/native-runtime.js';
import type { ContainerSpec, ContainerState } from '../../agent/runtime/runtime.js';
import { removeCgroupParent } from '../support/cgroups.js';
import { pidAlive, REPO_ROOT, waitFor } from '../support/cluster.js';
import { addBusybox, removeContainers, waitExited } from '../support/runtime.js';

const BUSYBOX = '/usr/bin/busybox';
const APPLETS = ['sh', 'sleep', 'cat', 'echo', 'touch', 'true'];
const SHIM = join(REPO_ROOT, 'native/build/Release/berth-shim');
/** LONG_GRACE_MS is a grace a forwarded SIGTERM never needs; were it needed, the test would see SIGKILL. */
const LONG_GRACE_MS = 60_000;
/** SHORT_GRACE_MS is the grace of stops that must escalate to SIGKILL. */
const SHORT_GRACE_MS = 300;
const STEP_LIMIT_MS = 15_000;
const POLL_MS = 20;
const canRun = process.getuid?.() === 0 && existsSync(BUSYBOX);

/** killSpy records every process.kill of the test process until restored. */
function killSpy(): { calls: Array<[number, string | number | undefined]>; restore(): void } {
  const real = process.kill.bind(process);
  const calls: Array<[number, string | number | undefined]> = [];
  process.kill = ((pid: number, sig?: string | number) => {
    calls.push([pid, sig]);
    return real(pid, sig);
  }) as typeof process.kill;
  return { calls, restore: () => { process.kill = real; } };
}

describe('the shim owns its container', { skip: !canRun && 'needs root and busybox-static' }, () => {
  const cgroupParent = `berth-shimch-test-${process.pid}`;
  let work: string;
  let rootfs: string;
  let rt: NativeRuntime;
  const started = new Set<string>();
  const hostProcs: ChildProcess[] = [];

  const spec = (id: string, args: string[], extra: Partial<ContainerSpec> = {}): ContainerSpec => ({
    id, hostname: id, lowerDirs: [rootfs], args, env: ['PATH=/bin'], cwd: '/', uid: 0, gid: 0, limits: { pids: 32 }, labels: {}, ...extra,
  });
  const run = async (s: ContainerSpec, runtime = rt): Promise<ContainerState> => {
    started.add(s.id);
    return runtime.run(s);
  };
  const sh = async (id: string, script: string): Promise<string> => {
    const r = await rt.exec(id, { args: ['sh', '-c', script] });
    assert.equal(r.exitCode, 0, `exec in ${id} failed: ${r.stderr.toString()}`);
    return r.stdout.toString();
  };
  /** ready waits until the container's log has the line its script prints once its traps are set. */
  const ready = (st: ContainerState): Promise<true> => waitFor(async () => (/stdout F ready$/m.test(await readFile(st.logPath, 'utf8').catch(() => '')) ? true : undefined),
    STEP_LIMIT_MS, () => `container ${st.id} never printed "ready"`, POLL_MS);

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-shimch-'));
    rootfs = join(work, 'rootfs');
    await addBusybox(rootfs, APPLETS);
    await mkdir(join(rootfs, 'tmp'));
    rt = new NativeRuntime({ stateDir: join(work, 'state'), cgroupParent });
  });

  after(async () => {
    for (const p of hostProcs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await removeContainers(rt, started);
    await removeCgroupParent(cgroupParent);
    await rm(work, { recursive: true, force: true });
  });

  it('with an init, PID 1 is a read-only /dev/init and the command its child; without, PID 1 is the command', async () => {
    await run(spec('with-init', ['sleep', '3600'], { init: true }));
    await run(spec('no-init', ['sleep', '3600'], { init: false }));
    assert.equal(await sh('with-init', 'cat /proc/1/cmdline'), '/dev/init\0sleep\x003600\0');
    assert.equal(await sh('with-init', 'cat /proc/2/cmdline'), 'sleep\x003600\0');
    assert.equal(await sh('no-init', 'cat /proc/1/cmdline'), 'sleep\x003600\0');
    // Read-only, so /proc/1/exe can never be opened for writing the host's binary.
    const mount = (await sh('with-init', 'cat /proc/self/mountinfo')).split('\n').find((l) => l.split(' ')[4] === '/dev/init');
    assert.ok(mount, 'berth-init is a mount of its own at /dev/init');
    assert.ok(mount.split(' ')[5]!.split(',').includes('ro'), `mounted read-only, saw ${mount}`);
  });

  it('with an init, a command that cannot be executed is still a start error naming errno, step and path', async () => {
    await assert.rejects(run(spec('init-nope', ['/bin/nope'], { init: true })), (err: Error & Record<string, unknown>) => {
      assert.equal(err.code, 'BERTH_ERR_RUNTIME_START');
      assert.equal(err.errnoCode, 'ENOENT');
      assert.equal(err.step, 'exec');
      assert.equal(err.path, '/bin/nope');
      return true;
    });
    assert.equal(existsSync(join(work, 'state/containers/init-nope')), false, 'nothing left behind');
  });

  it('stops `sleep` by the SIGTERM the init forwards: no SIGKILL needed; without an init the grace runs out', async () => {
    const spy = killSpy();
    let withInit: ContainerState | undefined;
    let bare: ContainerState | undefined;
    try {
      withInit = await rt.stop('with-init', LONG_GRACE_MS);
      bare = await rt.stop('no-init', SHORT_GRACE_MS);
    } finally {
      spy.restore();
    }
    assert.equal(withInit?.status, 'exited');
    assert.equal(withInit?.signal, 15, `sleep ended by the forwarded SIGTERM, saw ${JSON.stringify(withInit)}`);
    assert.equal(withInit?.exitCode, 143);
    // sleep as PID 1 has no SIGTERM handler, so the kernel drops SIGTERM: only the SIGKILL after the grace ends it.
    assert.equal(bare?.signal, 9, `bare sleep needed the SIGKILL, saw ${JSON.stringify(bare)}`);
    assert.equal(bare?.exitCode, 137);
    assert.deepEqual(spy.calls, [], 'the runtime never calls process.kill: every signal goes through the shim');
  });

  it('sends the stop signal (SIGUSR1) to the command\'s trap, and SIGKILLs one that ignores it after the grace', async () => {
    const usr1 = await run(spec('usr1', ['sh', '-c', "trap 'echo got USR1; exit 0' USR1; echo ready; while :; do sleep 0.05; done"], { init: true }));
    const deaf = await run(spec('deaf', ['sh', '-c', "trap '' TERM; echo ready; while :; do sleep 0.05; done"], { init: true }));
    await ready(usr1);
    await ready(deaf);
    const stopped = await rt.stop('usr1', LONG_GRACE_MS, 'SIGUSR1');
    assert.equal(stopped?.exitCode, 0, `the trap ran and exited 0, saw ${JSON.stringify(stopped)}`);
    assert.equal(stopped?.signal, undefined);
    assert.match(await readFile(usr1.logPath, 'utf8'), /stdout F got USR1/);
    const killed = await rt.stop('deaf', SHORT_GRACE_MS);
    assert.equal(killed?.signal, 9, `SIGTERM was ignored, so the grace ran out and SIGKILL was needed; saw ${JSON.stringify(killed)}`);
    assert.equal(killed?.exitCode, 137);
  });

  it('reaps orphans with an init; without one they stay zombies', async () => {
    // The subshell exits at once; its background sleep is reparented to PID 1 and exits later.
    const script = '( sleep 0.2 & echo $! > /tmp/orphan ); exec sleep 3600';
    await run(spec('reaper', ['sh', '-c', script], { init: true }));
    await run(spec('no-reaper', ['sh', '-c', script], { init: false }));
    const orphanState = async (id: string): Promise<string> => {
      await waitFor(async () => ((await rt.exec(id, { args: ['cat', '/tmp/orphan'] })).exitCode === 0 ? true : undefined),
        STEP_LIMIT_MS, () => `${id} never wrote /tmp/orphan`, POLL_MS);
      return sh(id, 'cat /proc/$(cat /tmp/orphan)/stat 2>/dev/null || echo gone');
    };
    // With the init: the orphan's /proc entry goes away, which only reaping does.
    await waitFor(async () => ((await orphanState('reaper')).trim() === 'gone' ? true : undefined),
      STEP_LIMIT_MS, () => 'the orphan in "reaper" was never reaped', POLL_MS);
    const zombies = (await sh('reaper', 'cat /proc/[0-9]*/stat')).split('\n').filter((l) => / Z /.test(l.slice(l.lastIndexOf(')'))));
    assert.deepEqual(zombies, [], 'no zombie is left in a container with an init');
    // Without: `sleep` is PID 1 and never waits, so the exited orphan stays a zombie.
    await waitFor(async () => (/\) Z /.test(await orphanState('no-reaper')) ? true : undefined),
      STEP_LIMIT_MS, () => 'the orphan in "no-reaper" never became a zombie', POLL_MS);
  });

  it('pushes the exit: wait() resolves when the container exits on its own', async () => {
    await run(spec('exits', ['sh', '-c', 'while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 3'], { init: true }));
    const waited = rt.wait('exits');
    await sh('exits', 'touch /tmp/go');
    const st = await waited;
    assert.equal(st?.status, 'exited');
    assert.equal(st?.exitCode, 3);
    assert.equal(st?.signal, undefined);
  });

  it('kills and waits through the socket even when its path is longer than a socket address', async () => {
    const deep = new NativeRuntime({ stateDir: join(work, 'd'.repeat(90), 'state'), cgroupParent });
    const st = await run(spec('long-path-container-id-0123456789', ['sleep', '3600'], { init: true }), deep);
    try {
      assert.ok(join(work, 'd'.repeat(90), 'state/containers', st.id, 'shim.sock').length > 108);
      const waited = deep.wait(st.id);
      await deep.kill(st.id, 'TERM');
      const done = await waited;
      assert.equal(done?.signal, 15);
      await assert.rejects(deep.kill(st.id, 'TERM'), { code: 'BERTH_ERR_RUNTIME_NOT_RUNNING' });
    } finally {
      await removeContainers(deep, [st.id]);
    }
  });

  it('never signals the PID in a pid file: a foreign process there survives stop and kill', async () => {
    // What PID reuse produces, made on purpose: the container has exited, its pid file now names
    // another process (the sentinel), and a berth-shim for its dir still runs (one that never got
    // a spec, so it has no socket). The state reads "running" with the sentinel's PID.
    const victim = await run(spec('victim', ['true'], { init: true }));
    await waitExited(rt, 'victim');
    const dir = join(work, 'state/containers/victim');
    const sentinel = spawn('sleep', ['1000'], { stdio: 'ignore' });
    hostProcs.push(sentinel);
    const shim = spawn(SHIM, [dir], { stdio: ['pipe', 'ignore', 'ignore'] });
    hostProcs.push(shim);
    await writeFile(join(dir, 'pid'), String(sentinel.pid));
    await writeFile(join(dir, 'shim.pid'), String(shim.pid));
    await unlink(join(dir, 'exit'));
    const st = await waitFor(async () => {
      const s = await rt.state('victim');
      return s?.status === 'running' ? s : undefined;
    }, STEP_LIMIT_MS, () => 'the forged state never read running', POLL_MS);
    assert.equal(st.pid, sentinel.pid, 'the forged state names the sentinel');
    assert.notEqual(st.pid, victim.pid);
    const spy = killSpy();
    try {
      await assert.rejects(rt.stop('victim', 0), { code: 'BERTH_ERR_RUNTIME_SHIM_UNREACHABLE' });
      await assert.rejects(rt.kill('victim', 'SIGKILL'), { code: 'BERTH_ERR_RUNTIME_SHIM_UNREACHABLE' });
    } finally {
      spy.restore();
    }
    assert.deepEqual(spy.calls, [], 'no process.kill at all');
    assert.ok(pidAlive(sentinel.pid!), 'the sentinel survives');
    // Clean up: the spec-less shim exits at EOF on stdin; the sentinel is killed in after().
    const shimGone = new Promise((resolve) => shim.once('exit', resolve));
    shim.stdin!.end();
    await shimGone;
    sentinel.kill('SIGKILL');
    await rt.remove('victim');
  });
});
