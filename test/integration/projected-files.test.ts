import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import type { ContainerTemplate, DesiredTasks } from '../../proto/gen/berth/v1/agent.js';
import type { Images, ResolvedImage } from '../../agent/images/index.js';
import { fromDesiredTasks } from '../../agent/convert.js';
import { Reconciler, type TaskStatusView } from '../../agent/reconciler/index.js';
import { NativeRuntime } from '../../agent/runtime/native-runtime.js';
import type { Logger } from '../../common/log.js';
import type { ContainerFile, ContainerSpec, ContainerState } from '../../agent/runtime/runtime.js';
import { removeCgroupParent } from '../support/cgroups.js';
import { addBusybox, BUSYBOX, removeContainers, waitExited } from '../support/runtime.js';
import { waitFor } from '../support/cluster.js';

const APPLETS = ['sh', 'sleep', 'cat', 'echo', 'id', 'grep', 'stat', 'touch', 'ls', 'mount'];
const canRun = process.getuid?.() === 0 && existsSync(BUSYBOX);
const USERNS_BASE = 100000;

// A value distinctive enough that finding it anywhere on disk can only mean it leaked.
const SECRET_VALUE = `pw-${process.pid}-${Date.now()}-correct-horse`;
const SECRET_B64 = Buffer.from(SECRET_VALUE).toString('base64');

/** filesUnder lists every regular file below dir (symlinks not followed). */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(p)));
    else if (entry.isFile()) out.push(p);
  }
  return out;
}

/** leaks names the files below dirs whose bytes hold the secret value, plain or base64. */
async function leaks(...dirs: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const dir of dirs) {
    for (const file of await filesUnder(dir)) {
      const text = (await readFile(file).catch(() => Buffer.alloc(0))).toString('latin1');
      if (text.includes(SECRET_VALUE) || text.includes(SECRET_B64)) found.push(file);
    }
  }
  return found;
}

describe('projected files and tmpfs mounts in real containers', { skip: !canRun && 'needs root and busybox-static' }, () => {
  const cgroupParent = `berth-pf-${process.pid}`;
  let work: string;
  let rootfs: string;
  let stateDir: string;
  let hostDir: string;
  let rt: NativeRuntime;
  let seq = 0;
  const started = new Set<string>();

  const secret = (target: string, over: Partial<ContainerFile> = {}): ContainerFile =>
    ({ target, content: Buffer.from(SECRET_VALUE), mode: 0o400, uid: 0, gid: 0, ...over });

  const spec = (args: string[], extra: Partial<ContainerSpec> = {}): ContainerSpec => ({
    id: `pf-${++seq}`, hostname: `pf-${seq}`, lowerDirs: [rootfs], args, env: ['PATH=/bin'], cwd: '/', uid: 0, gid: 0,
    limits: {}, labels: { test: 'projected-files' }, ...extra,
  });

  // run starts a container, waits for it and returns its stdout lines and exit code.
  const run = async (script: string, extra: Partial<ContainerSpec> = {}): Promise<{ out: string[]; code: number | undefined }> => {
    const s = spec(['sh', '-c', script], extra);
    started.add(s.id);
    await rt.run(s);
    const done = await waitExited(rt, s.id);
    const lines = (await readFile(done.logPath, 'utf8')).split('\n').filter(Boolean);
    return { out: lines.filter((l) => l.split(' ')[1] === 'stdout').map((l) => l.split(' ').slice(3).join(' ')), code: done.exitCode };
  };

  // running starts a container that stays up until the test removes it.
  const running = async (extra: Partial<ContainerSpec>): Promise<ContainerState> => {
    const s = spec(['sleep', '600'], extra);
    started.add(s.id);
    return rt.run(s);
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-pf-'));
    // A user-namespaced init reaches its layers as an unprivileged host uid.
    await chmod(work, 0o755);
    rootfs = join(work, 'rootfs');
    await mkdir(join(rootfs, 'etc'), { recursive: true });
    await writeFile(join(rootfs, 'etc/passwd'), 'root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n');
    await addBusybox(rootfs, APPLETS);
    hostDir = join(work, 'host-dir');
    await mkdir(hostDir);
    // Symlinks in the image that point at a host directory by its absolute host path; the same
    // path exists inside the image too, so a resolution inside the root has somewhere to land.
    await mkdir(join(rootfs, hostDir), { recursive: true });
    await mkdir(join(rootfs, 'run'), { recursive: true });
    await symlink(hostDir, join(rootfs, 'run/planted'));
    await symlink(hostDir, join(rootfs, 'planted-tmp'));
    stateDir = join(work, 'state');
    rt = new NativeRuntime({ stateDir, cgroupParent });
  });

  after(async () => {
    await removeContainers(rt, started);
    await removeCgroupParent(cgroupParent);
    await rm(work, { recursive: true, force: true });
  });

  it('writes each file with its content, mode and owner, read-only on a tmpfs', async () => {
    const { out, code } = await run(
      'cat /run/secrets/db/password; echo; stat -c "%a %u %g" /run/secrets/db/password /etc/app.conf; cat /etc/app.conf; '
      + 'grep -E " /run/secrets/db/password | /etc/app.conf " /proc/self/mountinfo; echo x > /run/secrets/db/password; echo rc=$?',
      { files: [secret('/run/secrets/db/password'), { target: '/etc/app.conf', content: Buffer.from('port=1\n'), mode: 0o644, uid: 12, gid: 34 }] });
    assert.equal(code, 0);
    assert.equal(out[0], SECRET_VALUE);
    assert.deepEqual(out.slice(1, 4), ['400 0 0', '644 12 34', 'port=1']);
    const mounts = out.filter((l) => l.includes(' - '));
    assert.equal(mounts.length, 2, `expected two mounts in the container's mountinfo, saw ${JSON.stringify(mounts)}`);
    for (const m of mounts) {
      assert.match(m, / - tmpfs /, `a projected file must sit on a tmpfs: ${m}`);
      assert.match(m.split(' ')[5]!, /(^|,)ro(,|$)/, `a projected file must be mounted read-only: ${m}`);
    }
    assert.equal(out.at(-1), 'rc=1', 'writing a projected file fails');
  });

  it('gives a non-root user its own files and keeps it out of root\'s', async () => {
    const { out } = await run('id -u; cat /run/secrets/mine; echo; cat /run/secrets/roots; echo rc=$?', {
      uid: 1000, gid: 1000,
      files: [secret('/run/secrets/mine', { uid: 1000, gid: 1000 }), secret('/run/secrets/roots')],
    });
    assert.deepEqual(out, ['1000', SECRET_VALUE, 'rc=1']);
  });

  it('owns files by the container ids in a user namespace (host ids shifted by the map)', async () => {
    const st = await running({ uid: 1000, gid: 1000, security: { userNamespace: true }, files: [secret('/run/secrets/mine', { uid: 1000, gid: 1000 })] });
    const host = await stat(`/proc/${st.pid}/root/run/secrets/mine`);
    assert.deepEqual([host.uid, host.gid], [USERNS_BASE + 1000, USERNS_BASE + 1000], 'seen from the host the owner is the mapped id');
    const dir = await stat(join(stateDir, 'containers', st.id));
    assert.deepEqual([dir.mode & 0o777, dir.gid], [0o710, USERNS_BASE], 'the container dir is passable only by the mapped root\'s group');
    await rt.stop(st.id, 0);
    const { out } = await run('id -u; stat -c "%a %u %g" /run/secrets/mine; cat /run/secrets/mine',
      { uid: 1000, gid: 1000, security: { userNamespace: true }, files: [secret('/run/secrets/mine', { uid: 1000, gid: 1000 })] });
    assert.deepEqual(out, ['1000', '400 1000 1000', SECRET_VALUE]);
  });

  it('works with a read-only rootfs, and a tmpfs mount stays writable there', async () => {
    const { out } = await run('cat /run/secrets/pw; echo; touch /newfile; echo rc=$?; echo ok > /scratch/f; cat /scratch/f', {
      security: { readOnlyRootfs: true },
      files: [secret('/run/secrets/pw')],
      tmpfs: [{ target: '/scratch', sizeBytes: 1 << 20 }],
    });
    assert.deepEqual(out, [SECRET_VALUE, 'rc=1', 'ok']);
  });

  it('never puts the content on the node\'s disk, nor its mounts in the host\'s mount table', async () => {
    // An agent state dir of its own: the other tests' containers print the value to their logs.
    const ownState = join(work, 'state-leak');
    const own = new NativeRuntime({ stateDir: ownState, cgroupParent });
    const s = spec(['sleep', '600'], { files: [secret('/run/secrets/db/password')], tmpfs: [{ target: '/scratch', sizeBytes: 1 << 20 }] });
    let st: ContainerState;
    try {
      st = await own.run(s);
    } catch (err) {
      await own.remove(s.id).catch(() => undefined);
      throw err;
    }
    after(() => removeContainers(own, [s.id]));
    const stateDir = ownState;
    const containerDir = join(stateDir, 'containers', st.id);
    assert.deepEqual(await leaks(stateDir, join(containerDir, 'upper')), [], 'no file in the state dir or the overlay upper dir holds the secret');
    assert.equal((await stat(join(containerDir, 'upper/run/secrets/db/password'))).size, 0, 'the mount point on the upper dir is empty');
    assert.equal((await stat(containerDir)).mode & 0o777, 0o700, 'the container dir is closed to other users');
    assert.equal((await stat(join(containerDir, 'spec.json'))).mode & 0o777, 0o600, 'spec.json is readable by root only');
    const hostMounts = await readFile('/proc/self/mountinfo', 'utf8');
    assert.ok(!hostMounts.includes(st.id) && !hostMounts.includes('/run/secrets/db'), 'the host mount table has no mount of the container');
    const inside = await readFile(`/proc/${st.pid}/mountinfo`, 'utf8');
    assert.match(inside, / \/run\/secrets\/db\/password .* - tmpfs /, 'the container\'s own mount table has the file on a tmpfs');
    assert.match(inside, / \/scratch .* - tmpfs /);
    assert.doesNotMatch(inside, /\.berth-files/, 'the staging tmpfs is gone once the files are bound');
    assert.equal(await readFile(`/proc/${st.pid}/root/run/secrets/db/password`, 'utf8'), SECRET_VALUE);
    await own.stop(st.id, 0);
    assert.deepEqual(await leaks(stateDir), [], 'nor after the container exited');
  });

  it('a symlink planted in the image cannot send a file or a tmpfs onto the host', async () => {
    const st = await running({ files: [secret('/run/planted/password')], tmpfs: [{ target: '/planted-tmp', sizeBytes: 1 << 20 }] });
    assert.deepEqual(await readdir(hostDir), [], 'nothing may appear in the host directory the symlinks name');
    const hostMounts = await readFile('/proc/self/mountinfo', 'utf8');
    assert.ok(!hostMounts.includes(hostDir), 'no mount on the host directory');
    // Resolved inside the root: the file and the tmpfs land at the same path within the image.
    assert.equal(await readFile(`/proc/${st.pid}/root${hostDir}/password`, 'utf8'), SECRET_VALUE);
    const inside = await readFile(`/proc/${st.pid}/mountinfo`, 'utf8');
    assert.ok(inside.split('\n').some((l) => l.includes(` ${hostDir} `) && l.includes(' - tmpfs ')), 'the tmpfs is mounted inside the root');
    assert.equal((await lstat(join(rootfs, 'planted-tmp'))).isSymbolicLink(), true);
  });

  it('a tmpfs mount has the given size and mode, read-only when asked', async () => {
    const { out } = await run('grep -E " /(cache|ro) " /proc/self/mountinfo; stat -c "%a" /cache /ro; touch /ro/x; echo rc=$?', {
      uid: 1000, gid: 1000,
      tmpfs: [{ target: '/cache', sizeBytes: 2 * 1024 * 1024 }, { target: '/ro', sizeBytes: 1 << 20, mode: 0o755, readonly: true }],
    });
    const cache = out.find((l) => l.includes(' /cache '));
    const ro = out.find((l) => l.includes(' /ro '));
    assert.match(cache ?? '', / - tmpfs .*size=2048k/, `expected a 2 MiB tmpfs, saw ${cache}`);
    assert.match(cache ?? '', /nosuid,nodev/, `expected nosuid,nodev, saw ${cache}`);
    assert.match(ro?.split(' ')[5] ?? '', /(^|,)ro(,|$)/, `expected a read-only mount, saw ${ro}`);
    assert.ok(out.includes('1777') && out.includes('755'), `modes 1777 and 755, saw ${JSON.stringify(out)}`);
    assert.equal(out.at(-1), 'rc=1');
  });

  it('refuses a malformed file entry with the field named, without echoing the content', async () => {
    const s = spec(['true'], { files: [{ target: 'relative/path', content: Buffer.from(SECRET_VALUE), mode: 0o400, uid: 0, gid: 0 }] });
    started.add(s.id);
    await assert.rejects(rt.run(s), (err: Error) => {
      assert.match(err.message, /file/);
      assert.doesNotMatch(err.message, new RegExp(SECRET_VALUE));
      return true;
    });
    await waitFor(() => (existsSync(join(stateDir, 'containers', s.id)) ? undefined : true), 5_000, () => 'the failed container dir is removed');
  });
});

describe('the agent projects secrets and configs from the desired set', { skip: !canRun && 'needs root and busybox-static' }, () => {
  const cgroupParent = `berth-pfa-${process.pid}`;
  const STEP_LIMIT_MS = 30_000;
  let work: string;
  let stateDir: string;
  let images: Images;
  const reconcilers: Reconciler[] = [];
  const reports: TaskStatusView[] = [];
  const logged: string[] = [];
  const log: Logger = {
    debug: (msg, f) => logged.push(msg + JSON.stringify(f ?? {})), info: (msg, f) => logged.push(msg + JSON.stringify(f ?? {})),
    warn: (msg, f) => logged.push(msg + JSON.stringify(f ?? {})), error: (msg, f) => logged.push(msg + JSON.stringify(f ?? {})), child: () => log,
  };

  const template: ContainerTemplate = {
    image: 'oci:/test/busybox', command: ['sleep', '600'], env: {}, workingDir: '', user: '1000:1000', resources: undefined, ports: [],
    security: undefined, pullPolicy: '', health: undefined, restart: undefined, readiness: undefined, startup: undefined,
    secrets: [{ name: 'db', key: '', target: '/run/secrets/db', mode: 0, generation: 1 }],
    configs: [{ name: 'site', key: 'app.conf', target: '/etc/app.conf', mode: 0, generation: 1 }],
    volumes: [{ type: 'tmpfs', name: '', source: '', target: '/scratch', readOnly: false, sizeBytes: 0 }],
  };
  const set = (objects: Partial<Pick<DesiredTasks, 'secrets' | 'configs'>>): ReturnType<typeof fromDesiredTasks> => fromDesiredTasks({
    tasks: [{ namespace: 'default', service: 'app', name: 'app-1', uid: 'pfa-uid-1', desiredState: 'running', revision: 1, template }],
    templates: {}, secrets: objects.secrets ?? {}, configs: objects.configs ?? {},
  });
  const DB = { 'default/db': { generation: 1, data: { password: Buffer.from(SECRET_VALUE) } } };
  const SITE = { 'default/site': { generation: 1, data: { 'app.conf': Buffer.from('port=80\n') } } };
  const last = (): TaskStatusView | undefined => reports.filter((s) => s.name === 'app-1').at(-1);
  const reported = (what: (s: TaskStatusView) => boolean, describe: string): Promise<TaskStatusView> =>
    waitFor(() => { const s = last(); return s && what(s) ? s : undefined; }, STEP_LIMIT_MS, () => `${describe}; last report ${JSON.stringify(last())}`, 20);
  const reconciler = async (): Promise<Reconciler> => {
    const r = new Reconciler({ runtime: new NativeRuntime({ stateDir, cgroupParent }), images, log, report: (st) => reports.push(st) });
    reconcilers.push(r);
    await r.start();
    return r;
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-pfa-'));
    await chmod(work, 0o755);
    const rootfs = join(work, 'rootfs');
    await mkdir(join(rootfs, 'etc'), { recursive: true });
    await writeFile(join(rootfs, 'etc/passwd'), 'root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n');
    await addBusybox(rootfs, APPLETS);
    const image: ResolvedImage = {
      reference: template.image, digest: `sha256:${'b'.repeat(64)}`, lowerDirs: [rootfs],
      config: { entrypoint: [], cmd: [], env: ['PATH=/bin'], workingDir: '/', user: '' },
    };
    images = { async resolve() { return image; } };
    stateDir = join(work, 'state');
  });

  after(async () => {
    for (const r of reconcilers) await r.close();
    await removeContainers(new NativeRuntime({ stateDir, cgroupParent }), ['pfa-uid-1']);
    await removeCgroupParent(cgroupParent);
    await rm(work, { recursive: true, force: true });
  });

  it('waits in preparing for a missing secret, starts once it arrives, and keeps its content off disk and out of logs', async () => {
    const r = await reconciler();
    r.setDesired(set({ configs: SITE }));
    const waiting = await reported((s) => s.reason === 'SecretNotFound', 'the task waits for its secret');
    assert.equal(waiting.phase, 'preparing');
    assert.match(waiting.message ?? '', /default\/db/);
    assert.equal(existsSync(join(stateDir, 'containers', 'pfa-uid-1')), false, 'no container is made without the secret');
    r.setDesired(set({ secrets: DB, configs: SITE }));
    const up = await reported((s) => s.phase === 'running', 'the task runs once the secret arrived');
    const root = `/proc/${up.pid}/root`;
    assert.equal(await readFile(`${root}/run/secrets/db/password`, 'utf8'), SECRET_VALUE);
    assert.equal(await readFile(`${root}/etc/app.conf`, 'utf8'), 'port=80\n');
    const pw = await stat(`${root}/run/secrets/db/password`);
    const conf = await stat(`${root}/etc/app.conf`);
    assert.deepEqual([pw.mode & 0o777, pw.uid, pw.gid, conf.mode & 0o777], [0o400, 1000, 1000, 0o444], 'secret 0400 and config 0444, owned by the container user');
    const mounts = await readFile(`/proc/${up.pid}/mountinfo`, 'utf8');
    assert.match(mounts, / \/scratch .* - tmpfs .*size=65536k/, 'a tmpfs volume without size is 64 MiB');
    const specJson = await readFile(join(stateDir, 'containers', 'pfa-uid-1', 'spec.json'), 'utf8');
    assert.ok(!specJson.includes(SECRET_VALUE) && !specJson.includes(SECRET_B64), 'spec.json holds no secret content');
    assert.match(specJson, /\/run\/secrets\/db\/password/, 'spec.json still names the file');
    for (const line of [...logged, ...reports.map((x) => JSON.stringify(x))]) {
      assert.ok(!line.includes(SECRET_VALUE) && !line.includes(SECRET_B64), `a log line or status carries the secret: ${line}`);
    }
  });

  it('a restarted agent re-adopts the running container without the secret\'s content', async () => {
    const before = last();
    await reconcilers.at(-1)!.close();
    const r = await reconciler();
    const readopted = r.statuses().find((s) => s.name === 'app-1');
    assert.equal(readopted?.phase, 'running', `re-adopted as running, saw ${JSON.stringify(readopted)}`);
    assert.equal(readopted?.pid, before?.pid, 'the same container');
    // The next desired set brings the content again; a running container is left as it is.
    r.setDesired(set({ secrets: DB, configs: SITE }));
    await r.idle();
    assert.equal(last()?.pid, before?.pid);
  });
});
