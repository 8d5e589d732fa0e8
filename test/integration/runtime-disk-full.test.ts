/**
 * The agent's state dir on a full disk (found by the chaos suite, scenario disk, seed 21): a
 * spec.json that could not be written whole used to stay behind truncated, and from then on
 * every state() and list() threw "Unexpected end of JSON input", so the agent could neither
 * reconcile nor register again. Now the start fails cleanly and leaves nothing, a truncated
 * spec.json left by an older agent is swept, and the runtime starts containers again once
 * there is room.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NativeRuntime } from '../../agent/runtime/native-runtime.js';
import type { ContainerSpec } from '../../agent/runtime/runtime.js';
import { removeCgroupParent } from '../support/cgroups.js';
import { addBusybox, BUSYBOX, removeContainers, waitExited } from '../support/runtime.js';

const canRun = process.getuid?.() === 0 && existsSync(BUSYBOX);

describe('native runtime on a full state disk', { skip: !canRun && 'needs root and busybox-static' }, () => {
  const cgroupParent = `berth-test-full-${process.pid}`;
  let work: string;
  let state: string;
  let rootfs: string;
  let rt: NativeRuntime;
  let mounted = false;
  const started = new Set<string>();

  const spec = (id: string): ContainerSpec => ({
    id, hostname: id, lowerDirs: [rootfs], args: ['/bin/true'], env: ['PATH=/bin'], cwd: '/', uid: 0, gid: 0, limits: {},
    labels: { test: 'disk-full', pad: 'x'.repeat(4096) },
  });

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-disk-full-'));
    rootfs = join(work, 'rootfs');
    await addBusybox(rootfs, ['true']);
    state = join(work, 'state');
    await mkdir(state);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', state]);
    mounted = true;
    rt = new NativeRuntime({ stateDir: state, cgroupParent });
  });

  after(async () => {
    await removeContainers(rt, started).catch(() => undefined);
    if (mounted) execFileSync('umount', ['-l', state]);
    await removeCgroupParent(cgroupParent);
    await rm(work, { recursive: true, force: true });
  });

  it('a start that cannot record its spec fails cleanly and leaves no container dir', async () => {
    await mkdir(join(state, 'containers'));
    // Fill the disk, leaving less than one spec.json of room.
    const filler = join(state, 'filler');
    for (let i = 0; i < 1024; i++) {
      try {
        await writeFile(`${filler}-${i}`, Buffer.alloc(16 * 1024));
      } catch {
        break;
      }
    }
    started.add('full-1');
    await assert.rejects(rt.run(spec('full-1')), (err: Error & { code?: string; errnoCode?: string }) =>
      err.code === 'BERTH_ERR_RUNTIME_START' && /cannot record its spec/.test(err.message));
    assert.deepEqual(await readdir(join(state, 'containers')), [], 'nothing left behind');
    assert.deepEqual(await rt.list(), []);
    for (const f of await readdir(state)) if (f.startsWith('filler')) await rm(join(state, f));
    const st = await rt.run(spec('full-1'));
    assert.equal(st.status, 'running');
    assert.equal((await waitExited(rt, 'full-1')).exitCode, 0, 'the runtime starts containers again once there is room');
  });

  it('a truncated spec.json left by an older agent is swept instead of breaking every list', async () => {
    const dir = join(state, 'containers', 'torn-1');
    await mkdir(dir);
    await writeFile(join(dir, 'spec.json'), '{"spec":{"id":"torn-1","hostn');
    assert.equal(await rt.state('torn-1'), undefined);
    assert.ok(!(await rt.list()).some((c) => c.id === 'torn-1'));
    assert.ok(!existsSync(dir), 'the never-started container dir is gone');
  });
});
