/**
 * How the agent stops tasks and hears of exits, with real containers: the reconciler over the
 * native runtime (no control plane; images faked by a busybox rootfs). The resync backstop is
 * set an hour away, so every exit the reconciler reports here was pushed by a shim. Templates
 * carry init (default on), stopSignal and stopGracePeriodSeconds.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import type { ContainerTemplate } from '../../proto/gen/berth/v1/agent.js';
import type { Images, ResolvedImage } from '../../agent/images/index.js';
import { fromAssignment } from '../../agent/convert.js';
import { Reconciler, type DesiredTask, type Resources, type TaskStatusView } from '../../agent/reconciler/index.js';
import { NativeRuntime } from '../../agent/runtime/native-runtime.js';
import type { Logger } from '../../common/log.js';
import { removeCgroupParent } from '../support/cgroups.js';
import { waitFor } from '../support/cluster.js';
import { addBusybox, removeContainers } from '../support/runtime.js';

const BUSYBOX = '/usr/bin/busybox';
const APPLETS = ['sh', 'sleep', 'cat', 'echo', 'touch', 'true'];
/** RESYNC_MS keeps the backstop out of these tests: an exit seen here came by push. */
const RESYNC_MS = 3_600_000;
/** LONG_GRACE_SECONDS is never waited out when the stop signal works; SIGKILL would show as 137. */
const LONG_GRACE_SECONDS = 120;
const STEP_LIMIT_MS = 30_000;
const POLL_MS = 20;
const canRun = process.getuid?.() === 0 && existsSync(BUSYBOX);

/** LoggedStop is one 'container stopped' line the reconciler logged. */
interface LoggedStop {
  id: string;
  exitCode?: number;
  exitSignal?: number;
}

describe('the reconciler stops tasks through their shims and hears exits pushed', { skip: !canRun && 'needs root and busybox-static' }, () => {
  const cgroupParent = `berth-recstop-test-${process.pid}`;
  let work: string;
  let stateDir: string;
  let image: ResolvedImage;
  let images: Images;
  const reconcilers: Reconciler[] = [];
  const reports: TaskStatusView[] = [];
  const stops: LoggedStop[] = [];

  const log: Logger = {
    debug: () => undefined, warn: () => undefined, error: () => undefined, child: () => log,
    info: (msg, fields) => { if (msg === 'container stopped') stops.push(fields as unknown as LoggedStop); },
  };
  const reconciler = async (allocatable?: Resources): Promise<{ r: Reconciler; rt: NativeRuntime }> => {
    const rt = new NativeRuntime({ stateDir, cgroupParent });
    const r = new Reconciler({ runtime: rt, images, log, resyncMs: RESYNC_MS, report: (s) => reports.push(s), ...(allocatable ? { allocatable: () => allocatable } : {}) });
    reconcilers.push(r);
    await r.start();
    return { r, rt };
  };
  // What the control plane sends, through the agent's boundary, as the reconciler receives it.
  const task = (n: string, command: string[], over: Partial<ContainerTemplate> = {}, desiredState = 'running'): DesiredTask => fromAssignment({
    namespace: 'default', service: 'stop', name: `stop-${n}`, uid: `uid-${n}`, desiredState, revision: 1,
    template: {
      image: image.reference, command, env: {}, workingDir: '', user: '', resources: { cpuCores: 0, memoryBytes: 0, pids: 32 }, ports: [],
      security: undefined, pullPolicy: '', health: undefined, restart: { policy: 'never', backoffSeconds: 0, maxBackoffSeconds: 0 },
      readiness: undefined, startup: undefined, secrets: [], configs: [], volumes: [], ...over,
    },
  });
  const last = (name: string): TaskStatusView | undefined => reports.filter((s) => s.name === `stop-${name}`).at(-1);
  const reported = (name: string, phase: string): Promise<TaskStatusView> => waitFor(() => {
    const s = last(name);
    return s?.phase === phase ? s : undefined;
  }, STEP_LIMIT_MS, () => `task stop-${name} reported ${phase}; last report ${JSON.stringify(last(name))}`, POLL_MS);
  const stopOf = (id: string): LoggedStop | undefined => stops.filter((s) => s.id === id).at(-1);
  const sh = async (rt: NativeRuntime, id: string, script: string): Promise<string> => {
    const r = await rt.exec(id, { args: ['sh', '-c', script] });
    assert.equal(r.exitCode, 0, `exec in ${id}: ${r.stderr.toString()}`);
    return r.stdout.toString();
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-recstop-'));
    stateDir = join(work, 'state');
    const rootfs = join(work, 'rootfs');
    await addBusybox(rootfs, APPLETS);
    await mkdir(join(rootfs, 'tmp'));
    image = { reference: 'oci:/test/busybox', digest: 'sha256:' + 'b'.repeat(64), lowerDirs: [rootfs],
      config: { entrypoint: [], cmd: ['sh'], env: ['PATH=/bin'], workingDir: '/', user: '' } };
    images = { resolve: async () => image };
  });

  after(async () => {
    for (const r of reconcilers) await r.close();
    const rt = new NativeRuntime({ stateDir, cgroupParent });
    await removeContainers(rt, (await rt.list().catch(() => [])).map((c) => c.id));
    await removeCgroupParent(cgroupParent);
    await rm(work, { recursive: true, force: true });
  });

  it('reports an exit the shim pushed, with the resync an hour away', async () => {
    const { r, rt } = await reconciler();
    const exits = task('exits', ['sh', '-c', 'while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 3']);
    r.setDesired([exits]);
    await reported('exits', 'running');
    await sh(rt, 'uid-exits', 'touch /tmp/go');
    const failed = await reported('exits', 'failed');
    assert.equal(failed.exitCode, 3);
    r.setDesired([]);
    await r.idle();
  });

  it('stops a task by the stop signals the template asks for: TERM through the init, USR1 to a trap, SIGKILL after the grace', async () => {
    const { r, rt } = await reconciler();
    const sleeper = task('sleeper', ['sleep', '3600'], { stopGracePeriodSeconds: LONG_GRACE_SECONDS });
    const bare = task('bare', ['sleep', '3600'], { init: false, stopGracePeriodSeconds: 0 });
    const usr1 = task('usr1', ['sh', '-c', "trap 'exit 0' USR1; echo ready > /tmp/ready; while :; do sleep 0.05; done"],
      { stopSignal: 'SIGUSR1', stopGracePeriodSeconds: LONG_GRACE_SECONDS });
    const deaf = task('deaf', ['sh', '-c', "trap '' TERM; echo ready > /tmp/ready; while :; do sleep 0.05; done"], { stopGracePeriodSeconds: 1 });
    r.setDesired([sleeper, bare, usr1, deaf]);
    for (const n of ['sleeper', 'bare', 'usr1', 'deaf']) await reported(n, 'running');
    assert.equal(await sh(rt, 'uid-sleeper', 'cat /proc/1/cmdline'), '/dev/init\0sleep\x003600\0', 'templates default to an init');
    assert.equal(await sh(rt, 'uid-bare', 'cat /proc/1/cmdline'), 'sleep\x003600\0', 'init: false makes the command PID 1');
    for (const id of ['uid-usr1', 'uid-deaf']) {
      await waitFor(async () => ((await rt.exec(id, { args: ['cat', '/tmp/ready'] })).exitCode === 0 ? true : undefined),
        STEP_LIMIT_MS, () => `${id} never set its trap`, POLL_MS);
    }
    r.setDesired([sleeper, bare, usr1, deaf].map((t) => ({ ...t, desiredState: 'stopped' })));
    for (const n of ['sleeper', 'bare', 'usr1', 'deaf']) await reported(n, 'stopped');
    assert.deepEqual(stopOf('uid-sleeper'), { id: 'uid-sleeper', exitCode: 143, exitSignal: 15 }, 'sleep ended by the forwarded SIGTERM; no SIGKILL needed');
    assert.deepEqual(stopOf('uid-bare'), { id: 'uid-bare', exitCode: 137, exitSignal: 9 }, 'PID 1 sleep drops SIGTERM: the SIGKILL after the (zero) grace ends it');
    assert.deepEqual(stopOf('uid-usr1'), { id: 'uid-usr1', exitCode: 0, exitSignal: undefined }, 'the USR1 trap ran');
    assert.deepEqual(stopOf('uid-deaf'), { id: 'uid-deaf', exitCode: 137, exitSignal: 9 }, 'SIGTERM ignored: SIGKILL once the grace ran out');
    assert.equal(last('sleeper')?.exitCode, 143);
    assert.equal(last('deaf')?.exitCode, 137);
    r.setDesired([]);
    await r.idle();
  });

  it('a restarted agent re-attaches to the shims: it hears their exits and stops their containers', async () => {
    const first = await reconciler();
    const a = task('adopt-a', ['sh', '-c', 'while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 4']);
    const b = task('adopt-b', ['sleep', '3600'], { stopGracePeriodSeconds: LONG_GRACE_SECONDS });
    first.r.setDesired([a, b]);
    await reported('adopt-a', 'running');
    await reported('adopt-b', 'running');
    const pids = [last('adopt-a')?.pid, last('adopt-b')?.pid];
    // The agent goes away; its containers stay with their shims.
    await first.r.close();
    const second = await reconciler();
    second.r.setDesired([a, b]);
    await second.r.idle();
    assert.deepEqual([last('adopt-a')?.pid, last('adopt-b')?.pid], pids, 'the same containers, re-adopted');
    await sh(second.rt, 'uid-adopt-a', 'touch /tmp/go');
    assert.equal((await reported('adopt-a', 'failed')).exitCode, 4, 'the exit of a re-adopted container is pushed to the new agent');
    second.r.setDesired([a, { ...b, desiredState: 'stopped' }]);
    await reported('adopt-b', 'stopped');
    assert.deepEqual(stopOf('uid-adopt-b'), { id: 'uid-adopt-b', exitCode: 143, exitSignal: 15 }, 'stopped through its shim by the new agent');
    second.r.setDesired([]);
    await second.r.idle();
  });

  it('refuses a task that would overcommit the node: reported failed with the reason, no container made', async () => {
    const MiB = 1024 * 1024;
    const { r, rt } = await reconciler({ cpuCores: 1, memoryBytes: 64 * MiB, pids: 100 });
    const fits = task('fits', ['sleep', '3600'], { resources: { cpuCores: 0.25, memoryBytes: 48 * MiB, pids: 32 } });
    const over = task('over', ['sleep', '3600'], { resources: { cpuCores: 0.25, memoryBytes: 32 * MiB, pids: 32 } });
    r.setDesired([over, fits]);
    await reported('fits', 'running');
    const refused = await reported('over', 'failed');
    assert.deepEqual([refused.reason, refused.message], ['OutOfMemory', 'needs 32 MiB of memory; 64 MiB allocatable, 48 MiB in use by 1 task']);
    assert.equal(refused.containerId, undefined);
    await r.idle();
    assert.equal(await rt.state('uid-over'), undefined, 'the runtime never made a container for the refused task');
    assert.ok(reports.filter((s) => s.name === 'stop-over').every((s) => s.phase === 'failed'), 'never preparing, starting or running');
    r.setDesired([]);
    await r.idle();
  });
});
