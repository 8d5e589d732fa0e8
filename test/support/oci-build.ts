/**
 * Building OCI image layouts in tests: layers from directories (tar with fixed owners and times,
 * gzip), configs and manifests on top of the seed busybox image, and multi-platform indexes.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

/** OciDescriptor is a content descriptor in a layout we write. */
export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** initLayout creates an empty OCI layout directory. */
export async function initLayout(dir: string): Promise<void> {
  await mkdir(join(dir, 'blobs/sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  if (!existsSync(join(dir, 'index.json'))) await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [] }));
}

/** writeBlob stores bytes in the layout and returns their digest and size. */
export async function writeBlob(dir: string, bytes: Buffer, mediaType: string): Promise<OciDescriptor> {
  const digest = sha(bytes);
  await writeFile(join(dir, 'blobs/sha256', digest.slice(7)), bytes);
  return { mediaType, digest, size: bytes.length };
}

/** tarDir makes a reproducible tar of a directory's contents (owner 0, mtime 0, sorted). */
export function tarDir(src: string): Buffer {
  const r = spawnSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', src, '-cf', '-', '.'],
    { maxBuffer: 512 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`tar of ${src} failed: ${r.stderr.toString()}`);
  return r.stdout;
}

/** LayerBlob is a gzip layer written to a layout, with its diff id. */
export interface LayerBlob {
  desc: OciDescriptor;
  diffId: string;
}

/** addLayer tars and gzips a directory into the layout. */
export async function addLayer(dir: string, src: string, level = 6): Promise<LayerBlob> {
  const tar = tarDir(src);
  const desc = await writeBlob(dir, gzipSync(tar, { level }), 'application/vnd.oci.image.layer.v1.tar+gzip');
  return { desc, diffId: sha(tar) };
}

/** SeedBase is the seed image's layers and config, copied into a layout. */
export interface SeedBase {
  layers: LayerBlob[];
  config: Record<string, unknown>;
}

/** copySeed copies the seed busybox image's layers into `dir` and returns them with its config. */
export async function copySeed(dir: string, seedLayout: string): Promise<SeedBase> {
  const index = JSON.parse(await readFile(join(seedLayout, 'index.json'), 'utf8')) as { manifests: OciDescriptor[] };
  const blob = (d: string): string => join(seedLayout, 'blobs/sha256', d.slice(7));
  const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as { config: OciDescriptor; layers: OciDescriptor[] };
  const config = JSON.parse(await readFile(blob(manifest.config.digest), 'utf8')) as Record<string, unknown> & { rootfs: { diff_ids: string[] } };
  for (const l of manifest.layers) await copyFile(blob(l.digest), join(dir, 'blobs/sha256', l.digest.slice(7)));
  return { layers: manifest.layers.map((desc, i) => ({ desc, diffId: config.rootfs.diff_ids[i]! })), config };
}

/** addImage writes config and manifest for `layers` (bottom first) and returns the manifest descriptor. */
export async function addImage(dir: string, base: SeedBase, layers: LayerBlob[], platform = { os: 'linux', architecture: 'amd64' }, mediaTypes = {
  manifest: 'application/vnd.oci.image.manifest.v1+json', config: 'application/vnd.oci.image.config.v1+json',
}): Promise<OciDescriptor> {
  const all = [...base.layers, ...layers];
  const config = { ...base.config, ...platform, rootfs: { type: 'layers', diff_ids: all.map((l) => l.diffId) } };
  const configDesc = await writeBlob(dir, Buffer.from(JSON.stringify(config)), mediaTypes.config);
  const manifest = { schemaVersion: 2, mediaType: mediaTypes.manifest, config: configDesc, layers: all.map((l) => l.desc) };
  return { ...(await writeBlob(dir, Buffer.from(JSON.stringify(manifest)), mediaTypes.manifest)), platform };
}

/** addIndex writes an OCI image index over per-platform manifests. */
export async function addIndex(dir: string, manifests: OciDescriptor[]): Promise<OciDescriptor> {
  const index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests };
  return writeBlob(dir, Buffer.from(JSON.stringify(index)), 'application/vnd.oci.image.index.v1+json');
}

/** tagInLayout lists `desc` in the layout's index.json under `tag`. */
export async function tagInLayout(dir: string, tag: string, desc: OciDescriptor): Promise<void> {
  const file = join(dir, 'index.json');
  const index = JSON.parse(await readFile(file, 'utf8')) as { schemaVersion: number; manifests: OciDescriptor[] };
  const { platform: _platform, ...plain } = desc;
  index.manifests = index.manifests.filter((m) => m.annotations?.['org.opencontainers.image.ref.name'] !== tag);
  index.manifests.push({ ...plain, annotations: { 'org.opencontainers.image.ref.name': tag } });
  await writeFile(file, JSON.stringify(index));
}
