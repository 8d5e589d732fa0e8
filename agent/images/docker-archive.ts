/**
 * `docker-archive:/path.tar`: the `docker save` format. manifest.json lists, per image, its
 * config file, RepoTags and layer files (`<id>/layer.tar` in classic docker, `<hex>.tar` from
 * skopeo, `blobs/sha256/<hex>` from docker 25+). There is no manifest digest: like docker, the
 * image is identified by its config digest, and each layer is verified against its diff id.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { AgentError, messageOf } from '../errors.js';
import { parseImageConfig } from './image-config.js';
import { MAX_JSON_BLOB_BYTES, parseJson, type ImagePlan } from './oci-source.js';
import { indexTarFile, type TarMember } from './tar.js';

/** DOCKER_ARCHIVE_PREFIX is the reference scheme. */
export const DOCKER_ARCHIVE_PREFIX = 'docker-archive:';

/** parseDockerArchiveReference returns the archive path of `docker-archive:/abs.tar`. */
export function parseDockerArchiveReference(raw: string): string {
  const path = raw.trim().slice(DOCKER_ARCHIVE_PREFIX.length);
  if (!path.startsWith('/') || path.length === 1 || path.split('/').includes('..') || path.includes('\0')) {
    throw new AgentError('BERTH_ERR_IMAGE_INVALID', `image ${raw}: path must be absolute and free of '..'`);
  }
  return path;
}

interface ManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

function isEntry(v: unknown): v is ManifestEntry {
  const e = v as Partial<ManifestEntry> | null;
  return typeof e === 'object' && e !== null && typeof e.Config === 'string'
    && Array.isArray(e.Layers) && e.Layers.every((l) => typeof l === 'string');
}

/** openDockerArchive reads the archive's manifest and config and plans its layers. */
export async function openDockerArchive(path: string): Promise<ImagePlan> {
  const label = `docker-archive ${path}`;
  const fh = await open(path, 'r').catch((err) => {
    throw new AgentError('BERTH_ERR_IMAGE_NOT_FOUND', `${label}: no such file`, { cause: err });
  });
  let members: Map<string, TarMember>;
  try {
    if (!(await fh.stat()).isFile()) throw new AgentError('BERTH_ERR_IMAGE_INVALID', `${label}: not a regular file`);
    members = await indexTarFile(fh);
  } catch (err) {
    if (err instanceof AgentError) throw err;
    throw new AgentError('BERTH_ERR_IMAGE_INVALID', `${label}: not a tar archive: ${messageOf(err)}`, { cause: err });
  } finally {
    await fh.close();
  }
  const member = (name: string, what: string): TarMember => {
    const m = members.get(name.replace(/^(\.\/)+/, ''));
    if (!m) throw new AgentError('BERTH_ERR_IMAGE_NOT_FOUND', `${label}: ${what} ${JSON.stringify(name)} missing`);
    return m;
  };
  const streamOf = (m: TarMember): Readable =>
    m.size === 0 ? Readable.from([]) : createReadStream(path, { start: m.offset, end: m.offset + m.size - 1 });
  const readSmall = async (m: TarMember, what: string): Promise<Buffer> => {
    if (m.size > MAX_JSON_BLOB_BYTES) throw new AgentError('BERTH_ERR_IMAGE_INVALID', `${label}: ${what} is larger than ${MAX_JSON_BLOB_BYTES} bytes`);
    const chunks: Buffer[] = [];
    for await (const c of streamOf(m)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };

  const manifest = parseJson(await readSmall(member('manifest.json', 'file'), 'manifest.json'), label, 'manifest.json');
  if (!Array.isArray(manifest) || manifest.length === 0 || !manifest.every(isEntry)) {
    throw new AgentError('BERTH_ERR_IMAGE_INVALID', `${label}: manifest.json is not a list of {Config, Layers} entries`);
  }
  if (manifest.length > 1) {
    throw new AgentError('BERTH_ERR_IMAGE_INVALID', `${label}: holds ${manifest.length} images; save one image per archive`);
  }
  const entry = manifest[0]!;
  const configBuf = await readSmall(member(entry.Config, 'config'), 'config');
  const digest = `sha256:${createHash('sha256').update(configBuf).digest('hex')}`;
  const doc = parseImageConfig(parseJson(configBuf, label, 'config'), label);
  if (doc.diffIds.length !== entry.Layers.length) {
    throw new AgentError('BERTH_ERR_IMAGE_INVALID', `${label}: config lists ${doc.diffIds.length} diff ids for ${entry.Layers.length} layers`);
  }
  const layers = entry.Layers.map((name, i) => {
    const m = member(name, 'layer');
    return { digest: doc.diffIds[i]!, diffId: doc.diffIds[i]!, size: m.size, compression: 'auto' as const, open: async () => streamOf(m) };
  });
  return { label, digest, config: doc.config, diffIds: doc.diffIds, layers, documents: new Map([[digest, configBuf]]) };
}
