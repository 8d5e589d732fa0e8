import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { AgentError } from '../../agent/errors.js';
import { ImageStore, type ContainerUse } from '../../agent/images/index.js';
import { tarOf, writeLayout } from '../support/oci-layout.js';

const base = await mkdtemp(`${tmpdir()}/berth-store-`);
after(() => rm(base, { recursive: true, force: true }));
let n = 0;
const noMarks = { async whiteout() {}, async opaque() {} };

async function stage(fill: (dir: string) => Promise<void>): Promise<Buffer> {
  const dir = `${base}/stage-${++n}`;
  await mkdir(dir);
  await fill(dir);
  return tarOf(dir);
}

async function layout(layers: Buffer[], tag = 'latest'): Promise<string> {
  const dir = `${base}/layout-${++n}`;
  await writeLayout(dir, layers, tag);
  return dir;
}

async function store(opts: Partial<ConstructorParameters<typeof ImageStore>[0]> = {}): Promise<ImageStore> {
  const s = new ImageStore({ root: `${base}/store-${++n}`, marks: noMarks, ...opts });
  await s.init();
  return s;
}

const setuidLayer = await stage(async (d) => {
  await mkdir(`${d}/bin`);
  await writeFile(`${d}/bin/su`, 'x');
  await chmod(`${d}/bin/su`, 0o4755);
  await writeFile(`${d}/bin/wall`, 'x');
  await chmod(`${d}/bin/wall`, 0o2755);
});

test('setuid/setgid bits are kept by default (like Docker) and stripped with allowSetuid: false', async () => {
  const dir = await layout([setuidLayer]);
  const keep = await (await store()).resolve(`oci:${dir}`);
  assert.equal((await stat(`${keep.lowerDirs[0]}/bin/su`)).mode & 0o7777, 0o4755);
  const strip = await (await store({ allowSetuid: false })).resolve(`oci:${dir}`);
  assert.equal((await stat(`${strip.lowerDirs[0]}/bin/su`)).mode & 0o7777, 0o755);
  assert.equal((await stat(`${strip.lowerDirs[0]}/bin/wall`)).mode & 0o7777, 0o755);
});

test('a layer over maxLayerBytes fails naming the layer and the entry, and leaves nothing behind', async () => {
  const big = await stage(async (d) => { await writeFile(`${d}/small`, 'x'); await writeFile(`${d}/big`, Buffer.alloc(64 * 1024)); });
  const dir = await layout([big]);
  const s = await store({ maxLayerBytes: 32 * 1024 });
  await assert.rejects(s.resolve(`oci:${dir}`), (e: unknown) => {
    assert.ok(e instanceof AgentError && e.code === 'BERTH_ERR_IMAGE_LAYER_TOO_LARGE', String(e));
    assert.match(e.message, /layer sha256:[0-9a-f]{64}.*larger than the limit of 32768 bytes \(at entry "\.\/big"\)/);
    return true;
  });
  assert.deepEqual(await readdir(`${s.storeRoot}/layers`), []);
});

test('escaping entries fail the pull, name the entry, write nothing outside the store, and a later good pull works', async () => {
  const outside = `${base}/sentinel-dir`;
  await mkdir(outside);
  // A relative symlink climbing out of the layer, the first step of the classic write-through escape.
  const escape = await stage(async (d) => { execFileSync('ln', ['-s', '../../../../../../../../..' + outside, `${d}/up`]); });
  const s = await store();
  await assert.rejects(s.resolve(`oci:${await layout([escape])}`), (e: unknown) =>
    e instanceof AgentError && e.code === 'BERTH_ERR_IMAGE_UNSAFE_ENTRY' && /layer entry "\.\/up": symlink target/.test(e.message));
  assert.deepEqual(await readdir(outside), [], 'nothing was written outside the store');
  assert.deepEqual(await readdir(`${s.storeRoot}/layers`), []);
  const good = await s.resolve(`oci:${await layout([setuidLayer])}`);
  assert.ok((await lstat(`${good.lowerDirs[0]}/bin/su`)).isFile());
});

test('pull policies: never fails when absent, if-not-present reuses, always re-reads the source and reuses layers', async () => {
  const dir = await layout([setuidLayer]);
  const ref = `oci:${dir}`;
  const s = await store();
  await assert.rejects(s.resolve(ref, { policy: 'never' }), (e: unknown) =>
    e instanceof AgentError && e.reason === 'ErrImageNeverPull' && e.message.includes(ref));
  const progress: [number, number][] = [];
  const a = await s.resolve(ref, { onProgress: (d, t) => progress.push([d, t]) });
  assert.ok(progress.length > 0 && progress.at(-1)![0] === progress.at(-1)![1], 'progress ends at its total');
  const inode = (await lstat(a.lowerDirs[0]!)).ino;
  await rm(dir, { recursive: true });
  assert.equal((await s.resolve(ref, { policy: 'never' })).digest, a.digest, 'never uses the present image');
  assert.equal((await s.resolve(ref)).digest, a.digest, 'if-not-present does not touch the (now gone) source');
  await assert.rejects(s.resolve(ref, { policy: 'always' }), (e: unknown) => e instanceof AgentError && e.reason === 'ImageNotFound');
  await writeLayout(dir, [setuidLayer]);
  const again = await s.resolve(ref, { policy: 'always' });
  assert.equal((await lstat(again.lowerDirs[0]!)).ino, inode, 'always reused the layer it had');
  const restarted = new ImageStore({ root: s.storeRoot, marks: noMarks });
  await restarted.init();
  assert.equal((await restarted.resolve(ref, { policy: 'never' })).digest, a.digest, 'the catalogue survives a restart');
});

test('docker-archive (made by skopeo from an oci layout) resolves to the same layers as the layout', async () => {
  const dir = await layout([setuidLayer], '1.0');
  const tar = `${base}/docker-${++n}.tar`;
  execFileSync('skopeo', ['copy', '-q', `oci:${dir}:1.0`, `docker-archive:${tar}:test/setuid:1.0`]);
  const s = await store();
  const fromOci = await s.resolve(`oci:${dir}:1.0`);
  const fromDocker = await s.resolve(`docker-archive:${tar}`);
  assert.deepEqual(fromDocker.lowerDirs, fromOci.lowerDirs);
  assert.deepEqual(fromDocker.config.cmd, ['sh']);
  assert.match(fromDocker.digest, /^sha256:[0-9a-f]{64}$/);
  await assert.rejects(s.resolve(`docker-archive:${base}/nope.tar`), (e: unknown) => e instanceof AgentError && e.reason === 'ImageNotFound' && e.message.includes('nope.tar'));
});

test('gc removes an idle image and its blobs but keeps one a container uses; list reports both states', async () => {
  const used: ContainerUse[] = [];
  const changes: number[] = [];
  const s = await store({ containers: async () => used, onChange: () => changes.push(1), gcAfterMs: 1_000 });
  const a = await s.resolve(`oci:${await layout([setuidLayer], 'a')}:a`);
  const other = await stage(async (d) => writeFile(`${d}/other`, 'o'));
  const b = await s.resolve(`oci:${await layout([other], 'b')}:b`);
  used.push({ imageDigest: a.digest });
  const listed = await s.list();
  assert.deepEqual(listed.map((i) => [i.digest, i.inUse]).sort(), [[a.digest, true], [b.digest, false]].sort());
  assert.equal(await readFile(`${s.storeRoot}/blobs/sha256/${b.digest.slice(7)}`).then(() => true), true);
  const plan = await s.gc({ nowMs: Date.now() + 3_600_000 });
  assert.deepEqual(plan.images, [b.digest]);
  assert.deepEqual((await s.list()).map((i) => i.digest), [a.digest]);
  await assert.rejects(stat(b.lowerDirs[0]!), 'the unused layer is gone');
  await assert.rejects(stat(`${s.storeRoot}/blobs/sha256/${b.digest.slice(7)}`), 'its manifest blob is gone');
  assert.ok((await stat(a.lowerDirs[0]!)).isDirectory(), 'the layer in use stays');
  assert.ok(changes.length >= 3, 'each pull and the gc announced a change');
});
