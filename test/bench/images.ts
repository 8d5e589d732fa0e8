/**
 * The `images` benchmark: pull + verify + unpack of a multi-layer image (~100 MB of incompressible
 * layers) from a local docker-registry, (a) by berth's ImageStore into an empty store vs (b)
 * `skopeo copy docker://… oci:DIR` plus `tar -xzf` of every layer into one dir, interleaved per
 * round (the order alternates so neither always runs on a warm page cache). Then the registry is
 * stopped and a second resolve of the cached image is timed: it must not need the registry.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageStore } from '../../agent/images/index.js';
import { ensureSeedImage, SEED_DIR } from '../support/images.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { addImage, addLayer, copySeed, initLayout, tagInLayout } from '../support/oci-build.js';
import { fmt, nowMs, parseFlags, positiveInt, round, table, type Bench } from './report.js';

const DEFAULT_ROUNDS = 3;
const DEFAULT_LAYERS = 4;
const DEFAULT_LAYER_MB = 25;
/** GZIP_LEVEL keeps image building quick; random data does not compress at any level. */
const GZIP_LEVEL = 1;

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr || r.error?.message}`);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function buildImage(work: string, layers: number, layerMb: number): Promise<{ layout: string; bytes: number }> {
  const layout = join(work, 'layout');
  await initLayout(layout);
  const base = await copySeed(layout, join(SEED_DIR, 'busybox'));
  const built = [];
  let bytes = 0;
  for (let i = 0; i < layers; i++) {
    const dir = join(work, `layer${i}`);
    await mkdir(join(dir, `data${i}`), { recursive: true });
    // A few files per layer so unpacking does some metadata work too.
    const files = 5;
    for (let f = 0; f < files; f++) await writeFile(join(dir, `data${i}`, `blob${f}`), randomBytes(Math.floor((layerMb * 1024 * 1024) / files)));
    const layer = await addLayer(layout, dir, GZIP_LEVEL);
    bytes += layer.desc.size;
    built.push(layer);
    await rm(dir, { recursive: true, force: true });
  }
  await tagInLayout(layout, 'bench', await addImage(layout, base, built));
  return { layout, bytes };
}

async function timeBerth(ref: string, root: string): Promise<{ seconds: number; store: ImageStore }> {
  const store = new ImageStore({ root });
  await store.init();
  const t0 = nowMs();
  await store.resolve(ref);
  return { seconds: (nowMs() - t0) / 1000, store };
}

async function timeSkopeoTar(reg: TestRegistry, name: string, dir: string): Promise<number> {
  const t0 = nowMs();
  run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${reg.host}/${name}`, `oci:${join(dir, 'oci')}:bench`]);
  const index = JSON.parse(await readFile(join(dir, 'oci/index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const blob = (d: string): string => join(dir, 'oci/blobs/sha256', d.slice(7));
  const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
  await mkdir(join(dir, 'rootfs'));
  for (const l of manifest.layers) run('tar', ['-xzf', blob(l.digest), '-C', join(dir, 'rootfs')]);
  return (nowMs() - t0) / 1000;
}

/** imagesBench compares berth's registry pull with skopeo+tar and times a cached resolve. */
export const imagesBench: Bench = {
  name: 'images',
  summary: 'registry pull + unpack of a ~100 MB image: berth vs skopeo copy + tar; cached resolve time',
  usage: 'npm run bench -- images [--rounds N] [--layers N] [--layer-mb N]',
  async run(args) {
    const flags = parseFlags(args, ['rounds', 'layers', 'layer-mb']);
    const rounds = positiveInt('rounds', flags.get('rounds') ?? String(DEFAULT_ROUNDS));
    const layers = positiveInt('layers', flags.get('layers') ?? String(DEFAULT_LAYERS));
    const layerMb = positiveInt('layer-mb', flags.get('layer-mb') ?? String(DEFAULT_LAYER_MB));
    ensureSeedImage();
    const work = await mkdtemp(join(tmpdir(), 'berth-bench-images-'));
    let reg: TestRegistry | undefined;
    try {
      const { layout, bytes } = await buildImage(work, layers, layerMb);
      reg = await startRegistry();
      reg.push(`oci:${layout}:bench`, 'berth/bench:v1');
      const ref = `${reg.host}/berth/bench:v1`;
      const berth: number[] = [];
      const skopeo: number[] = [];
      let last: ImageStore | undefined;
      for (let r = 0; r < rounds; r++) {
        const dir = join(work, `round${r}`);
        await mkdir(dir);
        const doBerth = async (): Promise<void> => {
          if (last) await rm(last.storeRoot, { recursive: true, force: true });
          const res = await timeBerth(ref, join(dir, 'berth'));
          berth.push(res.seconds);
          last = res.store;
        };
        const doSkopeo = async (): Promise<void> => {
          await mkdir(join(dir, 'skopeo'));
          skopeo.push(await timeSkopeoTar(reg!, 'berth/bench:v1', join(dir, 'skopeo')));
          await rm(join(dir, 'skopeo'), { recursive: true, force: true });
        };
        if (r % 2 === 0) {
          await doBerth();
          await doSkopeo();
        } else {
          await doSkopeo();
          await doBerth();
        }
      }
      // The cached start: no registry at all, so any contact would fail the resolve.
      await reg.stop();
      reg = undefined;
      const t0 = nowMs();
      await last!.resolve(ref);
      const cachedMs = nowMs() - t0;
      const restarted = new ImageStore({ root: last!.storeRoot });
      await restarted.init();
      const t1 = nowMs();
      await restarted.resolve(ref);
      const restartedMs = nowMs() - t1;

      const b = median(berth);
      const s = median(skopeo);
      process.stdout.write(`image: ${layers} layers x ${layerMb} MB random data + seed busybox; ${(bytes / 1048576).toFixed(1)} MiB compressed; ${rounds} rounds, interleaved\n\n`);
      process.stdout.write(`${table(['path', 'median s', 'rounds (s)'], [
        ['berth ImageStore.resolve (pull+verify+unpack)', fmt(b, 3), berth.map((x) => fmt(x, 2)).join(' ')],
        ['skopeo copy + tar -xzf', fmt(s, 3), skopeo.map((x) => fmt(x, 2)).join(' ')],
      ])}\n\n`);
      process.stdout.write(`ratio berth / skopeo+tar: ${fmt(b / s, 2)}\n`);
      process.stdout.write(`cached resolve with the registry stopped: ${fmt(cachedMs, 2)} ms (same store), ${fmt(restartedMs, 2)} ms (new store on the same dir)\n`);
      process.stdout.write(`${JSON.stringify({
        bench: 'images',
        seconds: { berth: round(b, 3), skopeo_tar: round(s, 3) },
        ratio_vs_skopeo_tar: round(b / s, 3),
        cached_start_ms: round(cachedMs, 2),
        cached_start_new_store_ms: round(restartedMs, 2),
        compressed_mib: round(bytes / 1048576, 1),
        rounds,
      })}\n`);
    } finally {
      await reg?.stop();
      await rm(work, { recursive: true, force: true });
    }
  },
};
