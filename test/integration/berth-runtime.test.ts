/**
 * berth-runtime, the OCI runtime CLI, against real containers: the create → start → kill →
 * delete lifecycle with the exec-fifo gate, `run` exit codes, `exec`, and config errors that
 * name the field. Each container gets its own cgroup under berth-runtime-test, swept at the end.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { removeCgroupTree } from '../bench/runc-bundle.js';
import { REPO_ROOT } from '../support/cluster.js';

const RUNTIME = join(REPO_ROOT, 'native', 'build', 'Release', 'berth-runtime');
const BUSYBOX = '/usr/bin/busybox';
const APPLETS = ['sh', 'sleep', 'true', 'cat', 'echo', 'hostname', 'ps'];
const CGROUP_PARENT = 'berth-runtime-test';
/** CMD_TIMEOUT_MS bounds one berth-runtime invocation. */
const CMD_TIMEOUT_MS = 30_000;
/** STOP_WAIT_MS bounds the wait for a killed container to read as stopped. */
const STOP_WAIT_MS = 10_000;

const canRun = process.getuid?.() === 0 && existsSync(BUSYBOX) && existsSync(RUNTIME);

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

describe('berth-runtime OCI CLI', { skip: !canRun && 'needs root, busybox-static and a built berth-runtime' }, () => {
  let work: string;
  let root: string;
  const ids = new Set<string>();

  /** brt runs berth-runtime with stdio in files: a created container keeps them open. */
  function brt(args: string[]): Result {
    const out = join(work, 'out'), err = join(work, 'err');
    const fds = [openSync(out, 'w'), openSync(err, 'w')];
    try {
      const r = spawnSync(RUNTIME, ['--root', root, ...args], { stdio: ['ignore', fds[0], fds[1]], timeout: CMD_TIMEOUT_MS });
      if (r.error) throw r.error;
      return { status: r.status, stdout: readFileSync(out, 'utf8'), stderr: readFileSync(err, 'utf8') };
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  }

  function state(id: string): { status: string; pid: number; id: string; bundle: string } {
    const r = brt(['state', id]);
    assert.equal(r.status, 0, `state ${id} failed: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  /** bundle writes a bundle from `berth-runtime spec`, edited by change. */
  async function bundle(id: string, change: (cfg: any) => void): Promise<string> {
    const dir = join(work, `bundle-${id}`);
    await mkdir(join(dir, 'rootfs', 'bin'), { recursive: true });
    await copyFile(BUSYBOX, join(dir, 'rootfs', 'bin', 'busybox'));
    for (const applet of APPLETS) await symlink('busybox', join(dir, 'rootfs', 'bin', applet));
    const r = brt(['spec', '--bundle', dir]);
    assert.equal(r.status, 0, `spec failed: ${r.stderr}`);
    const cfg = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    cfg.linux.cgroupsPath = `/${CGROUP_PARENT}/${id}`;
    cfg.linux.resources = { memory: { limit: 64 * 1024 * 1024 }, pids: { limit: 32 } };
    change(cfg);
    await writeFile(join(dir, 'config.json'), JSON.stringify(cfg));
    ids.add(id);
    return dir;
  }

  async function waitStopped(id: string): Promise<void> {
    const deadline = Date.now() + STOP_WAIT_MS;
    while (Date.now() < deadline) {
      if (state(id).status === 'stopped') return;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail(`${id} did not stop within ${STOP_WAIT_MS} ms (status ${state(id).status})`);
  }

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-runtime-test-'));
    root = join(work, 'state');
  });

  after(async () => {
    for (const id of ids) brt(['delete', '--force', id]);
    await removeCgroupTree(CGROUP_PARENT);
    await rm(work, { recursive: true, force: true });
  });

  it('create → created (blocked) → start → running → kill → stopped → delete', async () => {
    const dir = await bundle('life', (c) => { c.process.args = ['sleep', '100']; });
    const pidFile = join(work, 'life.pid');
    const created = brt(['create', '--bundle', dir, '--pid-file', pidFile, 'life']);
    assert.equal(created.status, 0, `create failed: ${created.stderr}`);
    const s1 = state('life');
    assert.equal(s1.status, 'created');
    assert.equal(s1.bundle, dir);
    assert.ok(s1.pid > 0);
    assert.equal(Number(await readFile(pidFile, 'utf8')), s1.pid);
    // Blocked at the gate: still berth-runtime's image, not sleep, and waiting in open(2).
    assert.notEqual(readFileSync(`/proc/${s1.pid}/comm`, 'utf8').trim(), 'sleep');

    const started = brt(['start', 'life']);
    assert.equal(started.status, 0, `start failed: ${started.stderr}`);
    const s2 = state('life');
    assert.equal(s2.status, 'running');
    assert.equal(s2.pid, s1.pid);
    assert.equal(readFileSync(`/proc/${s2.pid}/comm`, 'utf8').trim(), 'sleep');
    assert.match(brt(['list']).stdout, /life\s+\d+\s+running/);

    const again = brt(['start', 'life']);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /cannot start a container that is running/);
    const refused = brt(['delete', 'life']);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /running/);

    // sleep is its pid namespace's init without a TERM handler, so TERM is delivered but
    // ignored (as with runc); KILL always ends it.
    assert.equal(brt(['kill', 'life', 'TERM']).status, 0);
    assert.equal(state('life').status, 'running');
    assert.equal(brt(['kill', 'life', '9']).status, 0);
    await waitStopped('life');
    assert.equal(brt(['kill', 'life', 'KILL']).status, 1, 'kill of a stopped container must fail');

    const deleted = brt(['delete', 'life']);
    assert.equal(deleted.status, 0, `delete failed: ${deleted.stderr}`);
    const gone = brt(['state', 'life']);
    assert.equal(gone.status, 1);
    assert.match(gone.stderr, /does not exist/);
    assert.equal(existsSync(join(root, 'life')), false);
    assert.equal(existsSync(`/sys/fs/cgroup/memory/${CGROUP_PARENT}/life`), false);
  });

  it('exec runs in the container (its pid namespace and hostname) and returns the exit code', async () => {
    const dir = await bundle('ex', (c) => { c.process.args = ['sleep', '100']; c.hostname = 'inside'; });
    assert.equal(brt(['run', '-d', '--bundle', dir, 'ex']).status, 0);
    const host = brt(['exec', 'ex', 'hostname']);
    assert.equal(host.status, 0, host.stderr);
    assert.equal(host.stdout.trim(), 'inside');
    const code = brt(['exec', 'ex', 'sh', '-c', 'exit 7']);
    assert.equal(code.status, 7);
    assert.equal(brt(['delete', '--force', 'ex']).status, 0);
    ids.delete('ex');
  });

  it('run waits and exits with the container exit code, then leaves nothing behind', async () => {
    const dir = await bundle('run3', (c) => { c.process.args = ['sh', '-c', 'echo hi; exit 3']; });
    const r = brt(['run', '--bundle', dir, 'run3']);
    assert.equal(r.status, 3, `stderr: ${r.stderr}`);
    assert.equal(r.stdout, 'hi\n');
    assert.equal(existsSync(join(root, 'run3')), false);
    assert.equal(existsSync(`/sys/fs/cgroup/memory/${CGROUP_PARENT}/run3`), false);
  });

  it('an exec failure is an error for run, and after start the init exits 127 saying why', async () => {
    const dir = await bundle('noexe', (c) => { c.process.args = ['/no/such/binary']; });
    const r = brt(['run', '--bundle', dir, 'noexe']);
    assert.equal(r.status, 1, `stderr: ${r.stderr}`);
    assert.match(r.stderr, /^berth-runtime: run noexe: exec \/no\/such\/binary: ENOENT/);
    assert.equal(existsSync(join(root, 'noexe')), false);
    // With the gate, create has already reported success: the failure can only be the init's
    // exit (127) and a line on the container's stderr (which is the caller's here).
    const errFile = join(work, 'noexe.err');
    const fd = openSync(errFile, 'w');
    try {
      const created = spawnSync(RUNTIME, ['--root', root, 'create', '--bundle', dir, 'noexe'], { stdio: ['ignore', 'ignore', fd], timeout: CMD_TIMEOUT_MS });
      assert.equal(created.status, 0);
    } finally {
      closeSync(fd);
    }
    assert.equal(brt(['start', 'noexe']).status, 0);
    await waitStopped('noexe');
    assert.match(readFileSync(errFile, 'utf8'), /berth-runtime: noexe: exec \/no\/such\/binary: ENOENT/);
    assert.equal(brt(['delete', 'noexe']).status, 0);
  });

  it('a bad config.json exits 1 with a message naming the field, and leaves no state', async () => {
    const dir = await bundle('bad', (c) => { c.process.cwd = 'relative'; });
    const r = brt(['create', '--bundle', dir, 'bad']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^berth-runtime: create bad: config\.json: process\.cwd: must be an absolute path/);
    assert.equal(existsSync(join(root, 'bad')), false);
    const usage = brt(['create', '--bundle', dir]);
    assert.equal(usage.status, 2, 'a missing ID is bad usage');
    const sysd = brt(['--systemd-cgroup', 'list']);
    assert.equal(sysd.status, 1);
    assert.match(sysd.stderr, /systemd-cgroup is not supported/);
  });
});
