/**
 * Build small OCI image layouts in tests: each layer is a staging directory packed with GNU tar
 * (or raw tar bytes), gzip-compressed and written content-addressed with a matching config.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** tarOf packs `names` under `dir` as an uncompressed GNU tar with numeric owners. */
export function tarOf(dir: string, names: string[] = ['.']): Buffer {
  return execFileSync('tar', ['-cf', '-', '--format=gnu', '--numeric-owner', '-C', dir, ...names], { maxBuffer: 1 << 30 });
}

/** writeLayout writes an OCI layout at `dir` with the given uncompressed layer tars and tag; it returns the manifest digest. */
export async function writeLayout(dir: string, layers: Buffer[], tag = 'latest', cmd = ['sh']): Promise<string> {
  await mkdir(`${dir}/blobs/sha256`, { recursive: true });
  const put = async (b: Buffer): Promise<string> => {
    const hex = sha(b);
    await writeFile(`${dir}/blobs/sha256/${hex}`, b);
    return `sha256:${hex}`;
  };
  const descs = [];
  for (const tar of layers) {
    const gz = gzipSync(tar);
    descs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: await put(gz), size: gz.length });
  }
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', config: { Cmd: cmd, Env: ['PATH=/bin'] },
    rootfs: { type: 'layers', diff_ids: layers.map((t) => `sha256:${sha(t)}`) },
  }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await put(config), size: config.length },
    layers: descs,
  }));
  const digest = await put(manifest);
  await writeFile(`${dir}/oci-layout`, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(`${dir}/index.json`, JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  }));
  return digest;
}
