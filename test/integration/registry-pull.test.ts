/**
 * Pulling from a real registry (Debian's docker-registry on loopback, images pushed with skopeo):
 * by tag and by digest, a Docker schema2 image, platform selection from an index, and a container
 * that sees exactly the merged filesystem of a multi-layer image with a whiteout and an opaque dir.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ImageStore, type ResolvedImage } from '../../agent/images/index.js';
import { RegistryPuller, MEDIA_TYPES } from '../../agent/images/registry/index.js';
import { parseRegistryReference } from '../../agent/images/reference.js';
import { createRuntime, type ContainerState, type Runtime } from '../../agent/runtime/index.js';
import { AgentError } from '../../agent/errors.js';
import { ensureSeedImage, SEED_ARCHIVE, SEED_DIR } from '../support/images.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { addImage, addIndex, addLayer, copySeed, initLayout, tagInLayout } from '../support/oci-build.js';
import { removeCgroupParent } from '../support/cgroups.js';

const canRun = process.getuid?.() === 0 && existsSync('/usr/bin/docker-registry') && existsSync('/usr/bin/skopeo');
const WAIT_LIMIT_MS = 15_000;

/** manifestDigest asks the registry for a tag's digest the way a client would (HEAD + Accept). */
async function manifestDigest(host: string, name: string, tag: string, accept: string): Promise<string> {
  const res = await fetch(`http://${host}/v2/${name}/manifests/${tag}`, { method: 'HEAD', headers: { accept } });
  assert.equal(res.status, 200, `HEAD ${name}:${tag}`);
  return res.headers.get('docker-content-digest') ?? '';
}

describe('registry pulls against a real docker-registry', { skip: !canRun && 'needs root, docker-registry and skopeo' }, () => {
  let work: string;
  let reg: TestRegistry;
  let runtime: Runtime;
  const cgroupParent = `berth-regtest-${process.pid}`;
  const containers: string[] = [];

  before(async () => {
    ensureSeedImage();
    work = await mkdtemp(join(tmpdir(), 'berth-regpull-'));
    reg = await startRegistry();
    const layout = join(work, 'layout');
    await initLayout(layout);
    const base = await copySeed(layout, join(SEED_DIR, 'busybox'));
    // Layer A: files, a file to be whited out, a directory to be made opaque.
    const a = join(work, 'a');
    await mkdir(join(a, 'etc/app'), { recursive: true });
    await mkdir(join(a, 'data/old'), { recursive: true });
    await writeFile(join(a, 'etc/app/keep'), 'kept\n');
    await writeFile(join(a, 'etc/app/gone'), 'should be hidden\n');
    await writeFile(join(a, 'data/old/x'), 'x\n');
    await writeFile(join(a, 'data/old/y'), 'y\n');
    // Layer B: whiteout of etc/app/gone, opaque data/old with one new file, a new top-level file.
    const b = join(work, 'b');
    await mkdir(join(b, 'etc/app'), { recursive: true });
    await mkdir(join(b, 'data/old'), { recursive: true });
    await writeFile(join(b, 'etc/app/.wh.gone'), '');
    await writeFile(join(b, 'data/old/.wh..wh..opq'), '');
    await writeFile(join(b, 'data/old/new'), 'new\n');
    await writeFile(join(b, 'hello.txt'), 'hello from the registry\n');
    const multi = await addImage(layout, base, [await addLayer(layout, a), await addLayer(layout, b)]);
    await tagInLayout(layout, 'multi', multi);
    // Two platforms, each with a marker layer naming its architecture.
    const perArch = [];
    for (const architecture of ['amd64', 'arm64']) {
      const dir = join(work, `m-${architecture}`);
      await mkdir(dir);
      await writeFile(join(dir, 'platform'), `${architecture}\n`);
      perArch.push(await addImage(layout, base, [await addLayer(layout, dir)], { os: 'linux', architecture }));
    }
    await tagInLayout(layout, 'multiarch', await addIndex(layout, perArch));
    reg.push(`oci:${layout}:multi`, 'berth/multi:v1');
    reg.push(`oci:${layout}:multiarch`, 'berth/multiarch:v1', { all: true });
    reg.push(`oci-archive:${SEED_ARCHIVE}`, 'berth/busybox:v2s2', { format: 'v2s2' });
    runtime = createRuntime({ stateDir: join(work, 'runtime'), cgroupParent });
  });

  after(async () => {
    for (const id of containers) {
      await runtime.stop(id, 0).catch(() => undefined);
      await runtime.remove(id).catch(() => undefined);
    }
    await removeCgroupParent(cgroupParent);
    await reg?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const newStore = async (name: string): Promise<ImageStore> => {
    const store = new ImageStore({ root: join(work, name, 'images') });
    await store.init();
    return store;
  };

  /** runIn runs a shell script in a container on the image and returns its stdout lines. */
  const runIn = async (image: ResolvedImage, id: string, script: string): Promise<string[]> => {
    containers.push(id);
    await runtime.run({
      id, hostname: id, lowerDirs: image.lowerDirs, args: ['/bin/sh', '-c', script], env: ['PATH=/bin'],
      cwd: '/', uid: 0, gid: 0, limits: {}, labels: {},
    });
    const deadline = Date.now() + WAIT_LIMIT_MS;
    let st: ContainerState | undefined;
    for (;;) {
      st = await runtime.state(id);
      if (st?.status === 'exited') break;
      if (Date.now() > deadline) assert.fail(`container ${id} did not exit within ${WAIT_LIMIT_MS} ms`);
      await sleep(20);
    }
    const log = await readFile(st.logPath, 'utf8');
    assert.equal(st.exitCode, 0, `container ${id} exit code; log:\n${log}`);
    return log.split('\n').filter((l) => l.includes(' stdout ')).map((l) => l.replace(/^\S+ stdout [FP] /, ''));
  };

  it('pulls a multi-layer image by tag and the container sees exactly the merged filesystem', async () => {
    const store = await newStore('by-tag');
    const image = await store.resolve(`${reg.host}/berth/multi:v1`);
    assert.equal(image.digest, await manifestDigest(reg.host, 'berth/multi', 'v1', MEDIA_TYPES.ociManifest));
    assert.equal(image.lowerDirs.length, 3, 'seed layer + two layers');
    const out = await runIn(image, 'regpull-merged', 'cat /etc/app/keep; ls /etc/app; echo --; ls /data/old; cat /hello.txt; test -e /etc/app/gone || echo gone-hidden');
    assert.deepEqual(out, ['kept', 'keep', '--', 'new', 'hello from the registry', 'gone-hidden']);
    // Blobs landed in the content store, verified, and nothing is left mid-ingest.
    const blobs = join(store.storeRoot, 'blobs');
    assert.ok(existsSync(join(blobs, 'sha256', image.digest.slice(7))), 'manifest kept in the content store');
    const { readdir } = await import('node:fs/promises');
    assert.deepEqual(await readdir(join(blobs, 'ingest')), [], 'no partial downloads left');
  });

  it('pulls by digest into a fresh store and gets the same image', async () => {
    const digest = await manifestDigest(reg.host, 'berth/multi', 'v1', MEDIA_TYPES.ociManifest);
    const store = await newStore('by-digest');
    const image = await store.resolve(`${reg.host}/berth/multi@${digest}`);
    assert.equal(image.digest, digest);
    const out = await runIn(image, 'regpull-digest', 'cat /hello.txt');
    assert.deepEqual(out, ['hello from the registry']);
  });

  it('pulls a Docker schema2 image (skopeo --format v2s2)', async () => {
    const want = await manifestDigest(reg.host, 'berth/busybox', 'v2s2', MEDIA_TYPES.dockerManifest);
    const puller = new RegistryPuller({ root: join(work, 'v2s2-probe'), config: { registries: {}, insecureRegistries: ['127.0.0.1'] } });
    const m = await puller.fetchManifest(parseRegistryReference(`${reg.host}/berth/busybox:v2s2`), 'v2s2');
    await puller.close();
    assert.equal(m.mediaType, MEDIA_TYPES.dockerManifest, 'the registry serves a Docker schema2 manifest');
    const image = await (await newStore('v2s2')).resolve(`${reg.host}/berth/busybox:v2s2`);
    assert.equal(image.digest, want);
    assert.deepEqual(await runIn(image, 'regpull-v2s2', 'echo schema2-ok'), ['schema2-ok']);
  });

  it('selects the node platform from an index, another platform on request, and lists what exists when none fits', async () => {
    const image = await (await newStore('index')).resolve(`${reg.host}/berth/multiarch:v1`);
    assert.deepEqual(await runIn(image, 'regpull-platform', 'cat /platform'), [process.arch === 'arm64' ? 'arm64' : 'amd64']);
    const ref = parseRegistryReference(`${reg.host}/berth/multiarch:v1`);
    const config = { registries: {}, insecureRegistries: ['127.0.0.1'] };
    const arm = new RegistryPuller({ root: join(work, 'arm'), config, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    await arm.init();
    const plan = await arm.plan(ref);
    assert.notEqual(plan.digest, image.digest, 'arm64 resolves to the other manifest');
    await arm.close();
    const s390 = new RegistryPuller({ root: join(work, 's390x'), config, platform: { os: 'linux', architecture: 's390x' } });
    await s390.init();
    await assert.rejects(s390.plan(ref), (err: unknown) => {
      assert.ok(err instanceof AgentError && err.code === 'BERTH_ERR_IMAGE_NOT_FOUND', String(err));
      assert.match(err.message, /no image for platform linux\/s390x; the index offers linux\/amd64, linux\/arm64/);
      return true;
    });
    await s390.close();
  });

  it('a missing tag is a clear NotFound naming the registry', async () => {
    await assert.rejects((await newStore('missing')).resolve(`${reg.host}/berth/multi:nope`), (err: unknown) => {
      assert.ok(err instanceof AgentError && err.code === 'BERTH_ERR_IMAGE_NOT_FOUND', String(err));
      assert.match(err.message, new RegExp(`registry ${reg.host}: manifest nope: 404`));
      return true;
    });
  });
});
