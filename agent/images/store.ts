/**
 * The image store: resolves an image reference to its manifest digest, run defaults and
 * unpacked layer directories. Each layer is unpacked once into `<root>/layers/<chainid-hex>/`
 * (via a temp dir renamed into place, so a crash never leaves something that looks complete)
 * and shared by every container; concurrent requests for one layer share one promise.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { AgentError, messageOf } from '../errors.js';
import { silentLogger, type Logger } from '../../common/log.js';
import { parseImageConfig, type ImageConfig } from './image-config.js';
import { defaultMarks, unpackLayer, type UnpackMarks } from './layer-unpack.js';
import { digestHex, openArchive, openLayoutDir, parseJson, readVerifiedBlob, type BlobSource, type Descriptor } from './oci-source.js';
import { parseImageReference } from './reference.js';

const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
const MANIFEST_TYPES = new Set(['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json']);
const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);
const TMP_PREFIX = '.tmp-';

/** ResolvedImage is what a container needs from its image. */
export interface ResolvedImage {
  reference: string;
  /** digest is the manifest digest ("sha256:..."). */
  digest: string;
  /** lowerDirs are the unpacked layers, topmost first (overlayfs lowerdir order). */
  lowerDirs: string[];
  config: ImageConfig;
}

/** ImageStoreOptions configures where layers live and how overlay marks are made. */
export interface ImageStoreOptions {
  /** root is `<state>/images`. */
  root: string;
  marks?: UnpackMarks;
  log?: Logger;
}

/** Images is the narrow view the reconciler needs (so tests can fake it). */
export interface Images {
  resolve(reference: string): Promise<ResolvedImage>;
}

const GOARCH: Partial<Record<NodeJS.Architecture, string>> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' };

/** chainIds computes OCI chain ids from diff ids: chain(0)=diff(0), chain(n)=sha256(chain(n-1)+" "+diff(n)). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const diff of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? diff : `sha256:${createHash('sha256').update(`${prev} ${diff}`).digest('hex')}`);
  }
  return out;
}

function invalid(label: string, what: string): AgentError {
  return new AgentError('BERTH_ERR_IMAGE_INVALID', `${label}: ${what}`);
}

function asDescriptor(v: unknown, label: string, where: string): Descriptor {
  const d = v as Partial<Descriptor> | null;
  if (typeof d !== 'object' || d === null || typeof d.digest !== 'string' || typeof d.size !== 'number') {
    throw invalid(label, `${where} is not a valid descriptor`);
  }
  return { ...d, mediaType: typeof d.mediaType === 'string' ? d.mediaType : '' } as Descriptor;
}

function listOf(doc: unknown, field: string, label: string, what: string): unknown[] {
  const v = (doc as Record<string, unknown> | null)?.[field];
  if (!Array.isArray(v)) throw invalid(label, `${what} has no ${field} list`);
  return v;
}

/** layerCompression maps a layer media type to how its bytes are compressed. */
export function layerCompression(mediaType: string, label: string): 'gzip' | 'none' {
  if (mediaType.endsWith('+gzip') || mediaType.endsWith('.tar.gzip')) return 'gzip';
  if (mediaType.endsWith('.tar') || mediaType.endsWith('layer.v1.tar')) return 'none';
  throw invalid(label, `unsupported layer media type ${JSON.stringify(mediaType)}`);
}

/** ImageStore implements Images over local OCI layouts and archives. */
export class ImageStore implements Images {
  private readonly layersDir: string;
  private readonly marks: UnpackMarks;
  private readonly log: Logger;
  private readonly layers = new Map<string, Promise<string>>();
  private readonly resolved = new Map<string, Promise<ResolvedImage>>();

  constructor(opts: ImageStoreOptions) {
    this.layersDir = `${opts.root}/layers`;
    this.marks = opts.marks ?? defaultMarks;
    this.log = opts.log ?? silentLogger;
  }

  /** init creates the store and removes temp dirs left by a crash mid-unpack. */
  async init(): Promise<void> {
    await mkdir(this.layersDir, { recursive: true, mode: 0o700 });
    for (const name of await readdir(this.layersDir)) {
      if (name.startsWith(TMP_PREFIX)) await rm(`${this.layersDir}/${name}`, { recursive: true, force: true });
    }
  }

  /** resolve returns the image's digest, config and unpacked layers, unpacking what is missing. */
  async resolve(reference: string): Promise<ResolvedImage> {
    const ref = parseImageReference(reference);
    if (ref.kind === 'registry') {
      throw new AgentError('BERTH_ERR_IMAGE_UNSUPPORTED_REFERENCE',
        `image ${reference}: registry pulls are not supported yet; use oci-archive:/path.tar or oci:/path/layout[:tag]`);
    }
    const src = ref.kind === 'oci' ? await openLayoutDir(ref.path) : await openArchive(ref.path);
    const tag = ref.kind === 'oci' ? ref.tag : undefined;
    // Cached by reference and the source's version; a changed layout or archive re-resolves.
    const key = `${ref.raw}\n${src.version}`;
    let p = this.resolved.get(key);
    if (!p) {
      p = this.resolveFrom(ref.raw, src, tag);
      this.resolved.set(key, p);
      p.catch(() => this.resolved.delete(key));
    }
    return p;
  }

  private async resolveFrom(raw: string, src: BlobSource, tag: string | undefined): Promise<ResolvedImage> {
    const manifestDesc = await this.selectManifest(src, tag);
    const manifest = parseJson(await readVerifiedBlob(src, manifestDesc), src.label, 'manifest');
    const configDesc = asDescriptor((manifest as Record<string, unknown>).config, src.label, 'manifest config');
    const layerDescs = listOf(manifest, 'layers', src.label, 'manifest').map((l, i) => asDescriptor(l, src.label, `layer ${i}`));
    const doc = parseImageConfig(parseJson(await readVerifiedBlob(src, configDesc), src.label, 'config'), src.label);
    if (doc.diffIds.length !== layerDescs.length) {
      throw invalid(src.label, `config lists ${doc.diffIds.length} diff ids for ${layerDescs.length} layers`);
    }
    const chains = chainIds(doc.diffIds);
    const dirs = await Promise.all(layerDescs.map((d, i) => this.ensureLayer(src, d, doc.diffIds[i]!, chains[i]!)));
    return { reference: raw, digest: manifestDesc.digest, lowerDirs: dirs.reverse(), config: doc.config };
  }

  /** selectManifest picks the manifest by tag (or the only/`latest` one), following one index level by platform. */
  private async selectManifest(src: BlobSource, tag: string | undefined): Promise<Descriptor> {
    const index = parseJson(await src.readIndex(), src.label, 'index.json');
    const all = listOf(index, 'manifests', src.label, 'index.json').map((m, i) => asDescriptor(m, src.label, `index.json manifest ${i}`));
    const named = (t: string): Descriptor[] => all.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] === t);
    let pick: Descriptor | undefined;
    if (tag !== undefined) {
      pick = named(tag)[0];
      if (!pick) throw new AgentError('BERTH_ERR_IMAGE_NOT_FOUND', `${src.label}: no image tagged ${tag}`);
    } else if (new Set(all.map((d) => d.digest)).size === 1) {
      pick = all[0];
    } else {
      pick = named('latest')[0];
      if (!pick) throw invalid(src.label, `${all.length} images in index.json and none tagged latest; name a tag`);
    }
    if (!pick) throw invalid(src.label, 'index.json lists no images');
    if (INDEX_TYPES.has(pick.mediaType)) {
      const nested = parseJson(await readVerifiedBlob(src, pick), src.label, 'image index');
      const arch = GOARCH[process.arch] ?? process.arch;
      const candidates = listOf(nested, 'manifests', src.label, 'image index').map((m, i) => asDescriptor(m, src.label, `image index manifest ${i}`));
      const forUs = candidates.find((d) => d.platform?.os === 'linux' && d.platform?.architecture === arch);
      if (!forUs) throw new AgentError('BERTH_ERR_IMAGE_NOT_FOUND', `${src.label}: no image for linux/${arch}`);
      pick = forUs;
    }
    if (pick.mediaType !== '' && !MANIFEST_TYPES.has(pick.mediaType)) {
      throw invalid(src.label, `unsupported manifest media type ${JSON.stringify(pick.mediaType)}`);
    }
    return pick;
  }

  private ensureLayer(src: BlobSource, desc: Descriptor, diffId: string, chainId: string): Promise<string> {
    const hex = digestHex(chainId, src.label);
    let p = this.layers.get(hex);
    if (!p) {
      p = this.unpackOnce(src, desc, diffId, hex);
      this.layers.set(hex, p);
      p.catch(() => this.layers.delete(hex));
    }
    return p;
  }

  private async unpackOnce(src: BlobSource, desc: Descriptor, diffId: string, chainHex: string): Promise<string> {
    const final = `${this.layersDir}/${chainHex}`;
    if (await stat(final).then(() => true, () => false)) return final;
    const compression = layerCompression(desc.mediaType, src.label);
    const wantBlob = digestHex(desc.digest, src.label);
    const wantDiff = digestHex(diffId, src.label);
    const tmp = `${this.layersDir}/${TMP_PREFIX}${chainHex.slice(0, 16)}-${randomBytes(4).toString('hex')}`;
    await mkdir(tmp, { mode: 0o755 });
    const started = Date.now();
    try {
      const blobHash = createHash('sha256');
      const diffHash = createHash('sha256');
      let blobBytes = 0;
      const raw = await src.openBlob(desc.digest);
      const counted = (async function* () {
        for await (const chunk of raw) {
          blobHash.update(chunk as Buffer);
          blobBytes += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
      })();
      const plain: AsyncIterable<Buffer> = compression === 'gzip' ? gunzip(counted) : counted;
      const hashedTar = (async function* () {
        for await (const chunk of plain) {
          diffHash.update(chunk);
          yield chunk;
        }
      })();
      const stats = await unpackLayer(hashedTar, tmp, this.marks);
      if (blobBytes !== desc.size || blobHash.digest('hex') !== wantBlob) {
        throw new AgentError('BERTH_ERR_IMAGE_DIGEST_MISMATCH', `${src.label}: layer ${desc.digest} does not match its descriptor`);
      }
      if (diffHash.digest('hex') !== wantDiff) {
        throw new AgentError('BERTH_ERR_IMAGE_DIGEST_MISMATCH', `${src.label}: layer ${desc.digest} does not match diff id ${diffId}`);
      }
      await rename(tmp, final).catch(async (err: NodeJS.ErrnoException) => {
        // Another agent process (same state dir) finished first; its copy is as good as ours.
        if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
        await rm(tmp, { recursive: true, force: true });
      });
      this.log.info('layer unpacked', { layer: desc.digest, chainId: chainHex, entries: stats.entries, ms: Date.now() - started });
      return final;
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      if (err instanceof AgentError) throw err;
      throw new AgentError('BERTH_ERR_IMAGE_INVALID', `${src.label}: layer ${desc.digest}: ${messageOf(err)}`, { cause: err });
    }
  }
}

/** gunzip decompresses an async chunk stream. */
async function* gunzip(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const z = createGunzip();
  const feeding = (async () => {
    try {
      for await (const chunk of src) {
        if (z.destroyed) break; // the consumer gave up; stop reading the source
        if (!z.write(chunk)) await drainOrClose(z);
      }
      if (!z.destroyed) z.end();
    } catch (err) {
      z.destroy(err as Error);
    }
  })();
  try {
    for await (const chunk of z) yield chunk as Buffer;
  } finally {
    z.destroy();
    await feeding;
  }
}

function drainOrClose(z: NodeJS.EventEmitter): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      z.off('drain', done);
      z.off('close', done);
      resolve();
    };
    z.on('drain', done);
    z.on('close', done);
  });
}
