import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ImageStore } from '../../agent/images/index.js';
import { NativeRuntime } from '../../agent/runtime/native-runtime.js';
import { LABEL_IMAGE_DIGEST } from '../../agent/reconciler/spec.js';
import { ensureSeedImage, SEED_ARCHIVE } from '../support/images.js';
import { tarOf, writeLayout } from '../support/oci-layout.js';
import { waitExited } from '../support/runtime.js';
import { removeCgroupParent } from '../support/cgroups.js';

const KILL_WAIT_MS = 60_000;
const DIST = fileURLToPath(new URL('../../', import.meta.url));
const canRun = process.getuid?.() === 0 && existsSync('/usr/bin/skopeo');

describe('image store with real containers', { skip: !canRun && 'needs root and skopeo' }, () => {
  const cgroupParent = `berth-imgtest-${process.pid}`;
  let work: string;
  let rt: NativeRuntime;
  let store: ImageStore;
  let dockerArchive: string;
  const started = new Set<string>();

  before(async () => {
    ensureSeedImage();
    work = await mkdtemp(join(tmpdir(), 'berth-images-'));
    rt = new NativeRuntime({ stateDir: join(work, 'state'), cgroupParent });
    store = new ImageStore({
      root: join(work, 'images'),
      containers: async () => (await rt.list()).map((s) => ({ imageDigest: s.labels[LABEL_IMAGE_DIGEST] })),
    });
    await store.init();
    dockerArchive = join(work, 'busybox-docker.tar');
    execFileSync('skopeo', ['copy', '-q', `oci-archive:${SEED_ARCHIVE}`, `docker-archive:${dockerArchive}:busybox:1.36`]);
  });

  after(async () => {
    for (const id of started) {
      await rt.stop(id, 0).catch(() => undefined);
      await rt.remove(id).catch(() => undefined);
    }
    await removeCgroupParent(cgroupParent);
    await rm(work, { recursive: true, force: true });
  });

  it('imports a docker-archive (docker save format) and runs a container from it', async () => {
    const image = await store.resolve(`docker-archive:${dockerArchive}`);
    started.add('from-docker');
    await rt.run({
      id: 'from-docker', hostname: 'from-docker', lowerDirs: image.lowerDirs, args: ['cat', '/var/www/index.html'],
      env: image.config.env, cwd: '/', uid: 0, gid: 0, limits: {}, labels: { [LABEL_IMAGE_DIGEST]: image.digest },
    });
    const done = await waitExited(rt, 'from-docker');
    assert.equal(done.exitCode, 0);
    assert.match(await readFile(done.logPath, 'utf8'), /stdout F hello from berth$/m);
  });

  it('gc removes an unused image and keeps the one a container (even exited) uses', async () => {
    const inUse = await store.resolve(`docker-archive:${dockerArchive}`);
    const stage = join(work, 'stage');
    await mkdir(stage);
    await writeFile(join(stage, 'unused'), 'u');
    await writeLayout(join(work, 'unused-layout'), [tarOf(stage)]);
    const unused = await store.resolve(`oci:${join(work, 'unused-layout')}`);
    const plan = await store.gc({ nowMs: Date.now() + 2 * 3_600_000 });
    assert.deepEqual(plan.images, [unused.digest]);
    assert.equal(existsSync(unused.lowerDirs[0]!), false, 'the unused layer is removed');
    for (const dir of inUse.lowerDirs) assert.ok((await stat(dir)).isDirectory(), `in-use layer ${dir} kept`);
    const listed = await store.list();
    assert.deepEqual(listed.map((i) => [i.digest, i.inUse]), [[inUse.digest, true]]);
  });

  it('killing the agent mid-unpack leaves nothing a later pull mistakes for complete', async () => {
    const stage = join(work, 'big');
    await mkdir(stage);
    // 256 MiB of zeros: cheap to gzip, slow enough to unpack that the kill lands mid-way.
    execFileSync('dd', ['if=/dev/zero', `of=${join(stage, 'big.bin')}`, 'bs=1M', 'count=256', 'status=none']);
    const layout = join(work, 'big-layout');
    await writeLayout(layout, [tarOf(stage)]);
    await rm(stage, { recursive: true });
    const root = join(work, 'images-kill');
    const script = join(work, 'pull.mjs');
    await writeFile(script, `import { ImageStore } from ${JSON.stringify(join(DIST, 'agent/images/index.js'))};
const s = new ImageStore({ root: ${JSON.stringify(root)} });
await s.init();
let said = false;
await s.resolve(${JSON.stringify(`oci:${layout}`)}, { onProgress: () => { if (!said) { said = true; console.log('unpacking'); } } });
console.log('done');
`);
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    after(() => { child.kill('SIGKILL'); });
    let out = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    const deadline = Date.now() + KILL_WAIT_MS;
    // Wait until the temp dir holds part of the file, then kill as a crash would.
    for (;;) {
      const tmp = existsSync(join(root, 'layers')) ? (await readdir(join(root, 'layers'))).filter((n) => n.startsWith('.tmp-')) : [];
      const partial = tmp.length > 0 && existsSync(join(root, 'layers', tmp[0]!, 'big.bin'))
        ? (await stat(join(root, 'layers', tmp[0]!, 'big.bin')).catch(() => undefined))?.size ?? 0 : 0;
      if (partial > 0) break;
      assert.ok(!out.includes('done'), 'the unpack finished before it could be killed');
      assert.ok(Date.now() < deadline, 'the unpack never started');
      await sleep(5);
    }
    child.kill('SIGKILL');
    await new Promise((res) => child.once('close', res));
    const names = await readdir(join(root, 'layers'));
    assert.ok(names.every((n) => n.startsWith('.tmp-')), `only temp dirs after the kill: ${names.join(',')}`);

    const restarted = new ImageStore({ root });
    await restarted.init();
    assert.deepEqual(await readdir(join(root, 'layers')), [], 'init swept the half-made layer');
    const image = await restarted.resolve(`oci:${layout}`);
    assert.equal((await stat(join(image.lowerDirs[0]!, 'big.bin'))).size, 256 * 1024 * 1024, 'the clean pull is complete');
  });
});
