import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, lstat, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { AgentError } from '../../agent/errors.js';
import { ImageStore } from '../../agent/images/index.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const base = await mkdtemp(`${tmpdir()}/berth-busybox-`);
after(() => rm(base, { recursive: true, force: true }));
const out = execFileSync(`${REPO}/deploy/build-busybox-image`, ['--out', `${base}/seed`]).toString().trim().split('\n');
const LAYOUT = `${base}/seed/busybox`;

async function blob(digest: string): Promise<Buffer> {
  const buf = await readFile(`${LAYOUT}/blobs/sha256/${digest.slice('sha256:'.length)}`);
  assert.equal(`sha256:${createHash('sha256').update(buf).digest('hex')}`, digest, `blob ${digest} hashes to its name`);
  return buf;
}

test('build-busybox-image prints both references', () => {
  assert.deepEqual(out, [`oci:${base}/seed/busybox:1.36`, `oci-archive:${base}/seed/busybox.tar`]);
});

test('build-busybox-image writes a layout whose index, manifest, config and layer digests verify', async () => {
  const index = JSON.parse(await readFile(`${LAYOUT}/index.json`, 'utf8'));
  assert.equal(index.manifests.length, 1);
  assert.equal(index.manifests[0].annotations['org.opencontainers.image.ref.name'], '1.36');
  const manifestBuf = await blob(index.manifests[0].digest);
  assert.equal(manifestBuf.length, index.manifests[0].size);
  const manifest = JSON.parse(manifestBuf.toString());
  const config = JSON.parse((await blob(manifest.config.digest)).toString());
  assert.deepEqual(config.config, { Cmd: ['sh'], Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], WorkingDir: '/' });
  assert.equal(manifest.layers.length, 1);
  const layer = await blob(manifest.layers[0].digest);
  const diff = createHash('sha256').update(gunzipSync(layer)).digest('hex');
  assert.deepEqual(config.rootfs.diff_ids, [`sha256:${diff}`]);
});

test('build-busybox-image is reproducible: a second run gives the same archive bytes', async () => {
  const first = await readFile(`${base}/seed/busybox.tar`);
  execFileSync(`${REPO}/deploy/build-busybox-image`, ['--out', `${base}/seed`]);
  assert.ok(first.equals(await readFile(`${base}/seed/busybox.tar`)));
});

test('the store unpacks the busybox image once and shares the layer between oci and oci-archive', async () => {
  const store = new ImageStore({ root: `${base}/images` });
  await store.init();
  const a = await store.resolve(`oci:${LAYOUT}:1.36`);
  assert.equal(a.lowerDirs.length, 1);
  assert.deepEqual(a.config, { entrypoint: [], cmd: ['sh'], env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], workingDir: '/', user: '' });
  const root = a.lowerDirs[0]!;
  assert.ok((await lstat(`${root}/bin/busybox`)).isFile());
  assert.equal(await readlink(`${root}/bin/sh`), 'busybox');
  assert.equal(await readFile(`${root}/var/www/index.html`, 'utf8'), 'hello from berth\n');
  const inode = (await lstat(root)).ino;

  const fresh = new ImageStore({ root: `${base}/images` }); // a restarted agent: no in-memory cache
  await fresh.init();
  const [b, c] = await Promise.all([fresh.resolve(`oci-archive:${base}/seed/busybox.tar`), fresh.resolve(`oci:${LAYOUT}`)]);
  assert.equal(b.digest, a.digest);
  assert.deepEqual([b.lowerDirs, c.lowerDirs], [a.lowerDirs, a.lowerDirs]);
  assert.equal((await lstat(root)).ino, inode, 'the layer directory was not re-created');
  assert.deepEqual((await readdir(`${base}/images/layers`)).filter((n) => n.startsWith('.')), [], 'no temp dirs left');
});

test('missing images and tampered blobs fail with ImageNotFound and ImageInvalid', async () => {
  const store = new ImageStore({ root: `${base}/images-bad` });
  await store.init();
  await assert.rejects(store.resolve('oci-archive:/x.tar'), (e: unknown) =>
    e instanceof AgentError && e.reason === 'ImageNotFound' && e.message === 'oci-archive /x.tar: no such file');
  await assert.rejects(store.resolve(`oci:${LAYOUT}:2.0`), (e: unknown) => e instanceof AgentError && e.reason === 'ImageNotFound');
  const copy = `${base}/tampered`;
  await cp(LAYOUT, copy, { recursive: true });
  const index = JSON.parse(await readFile(`${copy}/index.json`, 'utf8'));
  const manifest = JSON.parse(await readFile(`${copy}/blobs/sha256/${index.manifests[0].digest.slice(7)}`, 'utf8'));
  const layerPath = `${copy}/blobs/sha256/${manifest.layers[0].digest.slice(7)}`;
  const layer = await readFile(layerPath);
  layer[layer.length - 20] ^= 0xff;
  await writeFile(layerPath, layer);
  await assert.rejects(store.resolve(`oci:${copy}:1.36`), (e: unknown) => e instanceof AgentError && e.reason === 'ImageInvalid');
  assert.deepEqual(await readdir(`${base}/images-bad/layers`), [], 'nothing that looks complete is left behind');
});
