/**
 * Registry pulls that go wrong, against a real docker-registry: a tampered blob, a body cut
 * short, a manifest over the size limit; and twenty concurrent resolves of one uncached image
 * downloading each blob once (counted at a proxy).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { ImageStore } from '../../agent/images/index.js';
import { AgentError } from '../../agent/errors.js';
import { MAX_MANIFEST_BYTES } from '../../agent/images/registry/index.js';
import { ensureSeedImage, SEED_DIR } from '../support/images.js';
import { startProxy, startRegistry, type RegistryProxy, type TestRegistry } from '../support/registry.js';
import { addImage, addLayer, copySeed, initLayout, tagInLayout, type OciDescriptor } from '../support/oci-build.js';

const canRun = process.getuid?.() === 0 && existsSync('/usr/bin/docker-registry') && existsSync('/usr/bin/skopeo');
const INSECURE = { registries: {}, insecureRegistries: ['127.0.0.1'] };
const DIST = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const KILL_WAIT_MS = 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('registry pull faults', { skip: !canRun && 'needs root, docker-registry and skopeo' }, () => {
  let work: string;
  let reg: TestRegistry;
  const proxies: RegistryProxy[] = [];
  let layout: string;
  let n = 0;

  before(async () => {
    ensureSeedImage();
    work = await mkdtemp(join(tmpdir(), 'berth-regfault-'));
    reg = await startRegistry();
    layout = join(work, 'layout');
    await initLayout(layout);
  });

  after(async () => {
    for (const p of proxies) await p.close();
    await reg?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** pushImage pushes the seed plus one layer of `bytes` random bytes as NAME:v1. */
  const pushImage = async (name: string, bytes: number): Promise<OciDescriptor> => {
    const base = await copySeed(layout, join(SEED_DIR, 'busybox'));
    const dir = join(work, `layer-${name}`);
    await mkdir(dir);
    await writeFile(join(dir, 'payload'), randomBytes(bytes));
    const layer = await addLayer(layout, dir);
    await tagInLayout(layout, name, await addImage(layout, base, [layer]));
    reg.push(`oci:${layout}:${name}`, `berth/${name}:v1`);
    return layer.desc;
  };
  const newStore = async (): Promise<ImageStore> => {
    const store = new ImageStore({ root: join(work, `store-${n++}`), registries: INSECURE });
    await store.init();
    return store;
  };

  it('a tampered blob fails with a digest mismatch, leaves nothing in the store, and a later good pull works', async () => {
    const layer = await pushImage('tampered', 64 * 1024);
    const file = reg.blobPath(layer.digest);
    const good = await readFile(file);
    const bad = Buffer.from(good);
    bad[bad.length - 10]! ^= 0xff;
    await writeFile(file, bad);
    const store = await newStore();
    await assert.rejects(store.resolve(`${reg.host}/berth/tampered:v1`), (err: unknown) => {
      assert.ok(err instanceof AgentError && err.code === 'BERTH_ERR_IMAGE_DIGEST_MISMATCH', String(err));
      assert.match(err.message, new RegExp(`blob ${layer.digest} does not match its digest`));
      return true;
    });
    const root = store.storeRoot;
    assert.equal(existsSync(join(root, 'blobs/sha256', layer.digest.slice(7))), false, 'the bad blob is not in the content store');
    // Sibling layers may still be downloading; the tampered blob leaves no partial behind.
    assert.equal(existsSync(join(root, 'blobs/ingest', layer.digest.slice(7))), false, 'no partial download of the bad blob left');
    // The seed layer may still be unpacking (in a .tmp- dir); the tampered layer never completes.
    const complete = (await readdir(join(root, 'layers'))).filter((d) => !d.startsWith('.tmp-'));
    assert.ok(complete.length <= 1, `at most the good base layer is complete, saw ${complete.join(', ')}`);
    await writeFile(file, good);
    const image = await store.resolve(`${reg.host}/berth/tampered:v1`);
    assert.equal(image.lowerDirs.length, 2);
  });

  it('a download cut short is retried, resuming with a Range request from the bytes on disk, and completes', async () => {
    const layer = await pushImage('truncated', 512 * 1024);
    const proxy = await startProxy(reg.host, { cutBlobsAfterBytes: 100_000 });
    proxies.push(proxy);
    const store = new ImageStore({ root: join(work, `store-${n++}`), registries: INSECURE });
    await store.init();
    const image = await store.resolve(`${proxy.host}/berth/truncated:v1`);
    assert.equal(image.lowerDirs.length, 2);
    const layerGets = proxy.requests.filter((r) => r.startsWith(`GET /v2/berth/truncated/blobs/${layer.digest}`));
    assert.equal(layerGets.length, 2, `one cut GET and one resumed GET, saw ${layerGets.join(', ')}`);
    assert.equal(layerGets[0], `GET /v2/berth/truncated/blobs/${layer.digest}`);
    // The retry resumes where the disk copy ends (at most the cut). When the client saw the cut
    // before any body byte reached it (undici reports the close first, now and then), there is
    // nothing to resume and the retry is a plain GET.
    const range = /range=bytes=(\d+)-$/.exec(layerGets[1]!);
    if (range) assert.ok(Number(range[1]) > 0 && Number(range[1]) <= 100_000, `Range start within the bytes sent, saw ${layerGets[1]}`);
    else assert.equal(layerGets[1], layerGets[0]);
    const payload = await readFile(join(image.lowerDirs[0]!, 'payload'));
    assert.equal(payload.length, 512 * 1024);
  });

  it('an agent killed mid-pull resumes the download after its restart and the store is consistent', async () => {
    const PAYLOAD_BYTES = 16 * 1024 * 1024;
    const layer = await pushImage('killed', PAYLOAD_BYTES);
    const hex = layer.digest.slice('sha256:'.length);
    // Paced at 8 MiB/s the layer takes about two seconds: time enough to kill the puller midway.
    const proxy = await startProxy(reg.host, { slowBlobsBytesPerSecond: 8 * 1024 * 1024 });
    proxies.push(proxy);
    const root = join(work, 'store-killed');
    const ref = `${proxy.host}/berth/killed:v1`;
    const script = join(work, 'pull-killed.mjs');
    await writeFile(script, `import { ImageStore } from ${JSON.stringify(join(DIST, 'agent/images/index.js'))};
const s = new ImageStore({ root: ${JSON.stringify(root)}, registries: ${JSON.stringify(INSECURE)} });
await s.init();
await s.resolve(${JSON.stringify(ref)});
console.log('done');
`);
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    after(() => { child.kill('SIGKILL'); });
    let out = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    const partial = join(root, 'blobs', 'ingest', hex);
    const deadline = Date.now() + KILL_WAIT_MS;
    for (;;) {
      const size = (await stat(partial).catch(() => undefined))?.size ?? 0;
      if (size > 1024 * 1024) break;
      assert.ok(!out.includes('done'), 'the pull finished before it could be killed');
      assert.ok(Date.now() < deadline, 'the layer download never started');
      await sleep(10);
    }
    child.kill('SIGKILL');
    await new Promise((res) => child.once('close', res));
    const keptBytes = (await stat(partial)).size;
    assert.ok(keptBytes < layer.size, `the download was cut midway (${keptBytes} of ${layer.size})`);
    assert.equal(existsSync(join(root, 'blobs', 'sha256', hex)), false, 'no half blob under its digest');
    const layers = await readdir(join(root, 'layers')).catch(() => [] as string[]);
    assert.ok(layers.every((l) => l.startsWith('.tmp-')), `no layer looks complete: ${layers.join(',')}`);

    const before = proxy.requests.length;
    const restarted = new ImageStore({ root, registries: INSECURE });
    await restarted.init();
    const image = await restarted.resolve(ref);
    const resumed = proxy.requests.slice(before).filter((r) => r.startsWith(`GET /v2/berth/killed/blobs/${layer.digest}`));
    assert.equal(resumed.length, 1, `one GET for the layer after the restart, saw ${resumed.join(', ')}`);
    const start = Number(/range=bytes=(\d+)-$/.exec(resumed[0]!)?.[1] ?? 0);
    assert.ok(start > 0 && start <= keptBytes, `resumed from the bytes on disk (${keptBytes}), saw ${resumed[0]}`);
    assert.equal((await stat(join(image.lowerDirs[0]!, 'payload'))).size, PAYLOAD_BYTES, 'the layer is complete');
    assert.deepEqual(await readdir(join(root, 'blobs', 'ingest')), [], 'nothing left in ingest');
    assert.ok(existsSync(join(root, 'blobs', 'sha256', hex)), 'the verified blob is stored under its digest');
  });

  it('a manifest over the size limit is refused before it is read whole (declared or streamed)', async () => {
    // docker-registry 2.8 itself refuses manifests over 4 MiB on push, so a tiny fake serves one.
    const big = Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20);
    let bytesSent = 0;
    const server = createServer((req, res) => {
      const chunked = req.url?.includes('chunked');
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', ...(chunked ? {} : { 'content-length': String(big.length) }) });
      if (chunked) {
        bytesSent += big.length;
        res.end(big);
      } else {
        res.end(); // the client must refuse on the header alone
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const host = `127.0.0.1:${(server.address() as { port: number }).port}`;
      const store = await newStore();
      for (const name of ['declared', 'chunked']) {
        await assert.rejects(store.resolve(`${host}/berth/${name}:v1`), (err: unknown) => {
          assert.ok(err instanceof AgentError && err.code === 'BERTH_ERR_IMAGE_TOO_LARGE', String(err));
          assert.match(err.message, new RegExp(`manifest v1 is .*bytes, over the ${MAX_MANIFEST_BYTES}-byte limit`));
          return true;
        });
      }
      assert.ok(bytesSent > 0);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('twenty concurrent resolves of one uncached image (by tag and by digest) download each blob once', async () => {
    await pushImage('shared', 256 * 1024);
    const proxy = await startProxy(reg.host);
    proxies.push(proxy);
    const head = await fetch(`http://${reg.host}/v2/berth/shared/manifests/v1`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    const digest = head.headers.get('docker-content-digest');
    const store = await newStore();
    const refs = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? `${proxy.host}/berth/shared:v1` : `${proxy.host}/berth/shared@${digest}`));
    const images = await Promise.all(refs.map((r) => store.resolve(r)));
    assert.equal(new Set(images.map((i) => i.digest)).size, 1);
    const blobGets = proxy.requests.filter((r) => r.startsWith('GET /v2/berth/shared/blobs/'));
    assert.equal(blobGets.length, 3, `config, seed layer and payload layer each fetched once, saw ${blobGets.join(', ')}`);
    assert.equal(new Set(blobGets).size, blobGets.length, 'no blob fetched twice');
  });
});
