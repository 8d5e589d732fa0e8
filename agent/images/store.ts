/**
 * The image store: resolves an image reference to its digest, run defaults and unpacked layer
 * directories, following the task's pull policy. Layout under `<root>`:
 *   blobs/sha256/<hex>     content-addressed blobs (manifests, configs; registry layers)
 *   layers/<chainid-hex>/  each layer unpacked once, shared read-only by every container
 *   catalogue.json         images, their references, layers and last use (refs.ts)
 * Layers are unpacked into a `.tmp-` directory and renamed into place, and removed by renaming
 * back to `.tmp-` first, so a crash never leaves something that looks complete; init() sweeps.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { AgentError, messageOf } from '../errors.js';
import { silentLogger, type Logger } from '../../common/log.js';
import type { ImageConfig } from './image-config.js';
import { defaultMarks, unpackLayer, type UnpackMarks } from './layer-unpack.js';
import { digestHex, openArchive, openLayoutDir, type ImagePlan, type LayerPlan } from './oci-source.js';
import { planOciImage } from './oci-plan.js';
import { DOCKER_ARCHIVE_PREFIX, openDockerArchive, parseDockerArchiveReference } from './docker-archive.js';
import { parseImageReference, type ImageReference } from './reference.js';
import { Catalogue, type ImageRecord } from './refs.js';
import { DEFAULT_IMAGE_GC_AFTER_MS, DEFAULT_IMAGE_STORE_BUDGET_BYTES, IMAGE_GC_GRACE_MS, planGc, type GcPlan } from './gc.js';
import { decompressed, directoryBytes } from './streams.js';
import { RegistryPuller, type CredentialsHook } from './registry/index.js';
import { DEFAULT_INSECURE_REGISTRIES, type RegistriesConfig } from '../config.js';

const TMP_PREFIX = '.tmp-';

/** DEFAULT_MAX_LAYER_BYTES bounds one layer's unpacked content (agent config maxLayerBytes). */
export const DEFAULT_MAX_LAYER_BYTES = 8 * 1024 ** 3;

/** ResolvedImage is what a container needs from its image. */
export interface ResolvedImage {
  reference: string;
  /** digest is the manifest digest ("sha256:..."); for docker-archive, the config digest. */
  digest: string;
  /** lowerDirs are the unpacked layers, topmost first (overlayfs lowerdir order). */
  lowerDirs: string[];
  config: ImageConfig;
}

/** PullPolicy says when a reference is fetched again (Kubernetes' imagePullPolicy). */
export type PullPolicy = 'always' | 'if-not-present' | 'never';

/** ResolveOptions tune one resolve: the task's pull policy and a progress callback. */
export interface ResolveOptions {
  /** policy defaults to if-not-present. */
  policy?: PullPolicy;
  /** onProgress receives bytes done and total while fetching or unpacking (not throttled). */
  onProgress?(done: number, total: number): void;
}

/** Images is the narrow view the reconciler needs (so tests can fake it). */
export interface Images {
  resolve(reference: string, opts?: ResolveOptions): Promise<ResolvedImage>;
}

/** ContainerUse is what the store needs to know of one container in the runtime. */
export interface ContainerUse {
  imageDigest?: string;
  lowerDirs?: string[];
}

/** StoredImage is one image as the node reports it. */
export interface StoredImage {
  references: string[];
  digest: string;
  sizeBytes: number;
  lastUsed: string;
  inUse: boolean;
}

/** ImageStoreOptions configures where layers live, the unpack policies and garbage collection. */
export interface ImageStoreOptions {
  /** root is `<state>/images`. */
  root: string;
  marks?: UnpackMarks;
  log?: Logger;
  /** allowSetuid keeps setuid/setgid bits in layers (default true, like Docker). */
  allowSetuid?: boolean;
  /** maxLayerBytes bounds one layer's unpacked size (default 8 GiB). */
  maxLayerBytes?: number;
  /** gcAfterMs is how long an unused image is kept (default 1 h). */
  gcAfterMs?: number;
  /** budgetBytes is the store size above which unused images go, LRU first (default 20 GiB). */
  budgetBytes?: number;
  /** containers lists the runtime's containers, so GC never removes what one uses. */
  containers?: () => Promise<ContainerUse[]>;
  /** onChange is told when the set of images changes (to report it to the control plane). */
  onChange?: () => void;
  /** now is the clock in ms (tests). */
  now?: () => number;
  /** registries holds per-registry settings (agent config); default: loopback is insecure. */
  registries?: RegistriesConfig;
  /** credentials supplies registry credentials ahead of the config (pull secrets). */
  credentials?: CredentialsHook;
}

/** chainIds computes OCI chain ids from diff ids: chain(0)=diff(0), chain(n)=sha256(chain(n-1)+" "+diff(n)). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const diff of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? diff : `sha256:${createHash('sha256').update(`${prev} ${diff}`).digest('hex')}`);
  }
  return out;
}

/** ImageStore implements Images over local OCI layouts, oci- and docker-archives (and registries). */
export class ImageStore implements Images {
  private readonly root: string;
  private readonly layersDir: string;
  private readonly blobsDir: string;
  private readonly marks: UnpackMarks;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly catalogue: Catalogue;
  private readonly layers = new Map<string, Promise<string>>();
  private readonly pulls = new Map<string, Promise<ResolvedImage>>();
  /** pinned counts in-flight pulls per chain id: GC leaves those layers alone. */
  private readonly pinned = new Map<string, number>();
  private gcRunning?: Promise<GcPlan>;
  private readonly registry: RegistryPuller;

  constructor(private readonly opts: ImageStoreOptions) {
    this.root = opts.root;
    this.layersDir = `${opts.root}/layers`;
    this.blobsDir = `${opts.root}/blobs/sha256`;
    this.marks = opts.marks ?? defaultMarks;
    this.log = opts.log ?? silentLogger;
    this.now = opts.now ?? Date.now;
    this.catalogue = new Catalogue(`${opts.root}/catalogue.json`, this.log);
    this.registry = new RegistryPuller({
      root: opts.root,
      config: opts.registries ?? { registries: {}, insecureRegistries: DEFAULT_INSECURE_REGISTRIES },
      credentials: opts.credentials,
      log: this.log,
    });
  }

  /** init creates the store, removes temp dirs left by a crash mid-unpack and loads the catalogue. */
  async init(): Promise<void> {
    await mkdir(this.layersDir, { recursive: true, mode: 0o700 });
    await mkdir(this.blobsDir, { recursive: true, mode: 0o700 });
    await this.registry.init();
    for (const dir of [this.layersDir, this.blobsDir]) {
      for (const name of await readdir(dir)) {
        if (name.startsWith(TMP_PREFIX)) await rm(`${dir}/${name}`, { recursive: true, force: true });
      }
    }
    await this.catalogue.load();
    for (const name of await readdir(this.layersDir)) {
      // Layers from before the catalogue (or a lost one): measure once so budgets see them.
      if (this.catalogue.layerSize(name) === undefined) this.catalogue.setLayerSize(name, await directoryBytes(`${this.layersDir}/${name}`));
    }
    await this.catalogue.save();
  }

  /** resolve returns the image's digest, config and unpacked layers, pulling per the policy. */
  async resolve(reference: string, opts: ResolveOptions = {}): Promise<ResolvedImage> {
    const policy = opts.policy ?? 'if-not-present';
    const ref = reference.trim();
    if (policy !== 'always') {
      const present = await this.present(ref);
      if (present) return present;
      if (policy === 'never') {
        throw new AgentError('BERTH_ERR_IMAGE_NEVER_PULL', `image ${ref} is not present on this node and its pull policy is never`);
      }
    }
    // Concurrent resolves of one reference share one pull, whatever their policies.
    let p = this.pulls.get(ref);
    if (!p) {
      p = this.pull(ref, opts.onProgress);
      this.pulls.set(ref, p);
      void p.then(() => this.pulls.delete(ref), () => this.pulls.delete(ref));
    }
    return p;
  }

  /** present returns the stored image for a reference when every layer is still on disk. */
  private async present(reference: string): Promise<ResolvedImage | undefined> {
    const rec = this.catalogue.byReference(reference);
    if (!rec) return undefined;
    const dirs = rec.chainIds.map((c) => `${this.layersDir}/${c}`);
    for (const dir of dirs) if (!(await stat(dir).then((s) => s.isDirectory(), () => false))) return undefined;
    this.catalogue.touch(rec.digest, this.now());
    void this.catalogue.save();
    return { reference, digest: rec.digest, lowerDirs: dirs.reverse(), config: rec.config };
  }

  private async pull(reference: string, onProgress: ResolveOptions['onProgress']): Promise<ResolvedImage> {
    const plan = await this.plan(reference, onProgress);
    const chains = chainIds(plan.diffIds).map((c) => digestHex(c, plan.label));
    for (const c of chains) this.pinned.set(c, (this.pinned.get(c) ?? 0) + 1);
    try {
      const dirs = await this.unpackAll(plan, chains, onProgress);
      await this.keepDocuments(plan.documents);
      const layerBlobs = plan.layers.flatMap((l) => (l.blobDigest ? [l.blobDigest] : []));
      const rec = this.catalogue.put(reference, {
        digest: plan.digest, chainIds: chains, blobs: [...plan.documents.keys(), ...layerBlobs], config: plan.config,
      }, this.now());
      await this.catalogue.save();
      this.opts.onChange?.();
      return { reference, digest: rec.digest, lowerDirs: dirs.reverse(), config: rec.config };
    } finally {
      for (const c of chains) {
        const n = (this.pinned.get(c) ?? 1) - 1;
        if (n <= 0) this.pinned.delete(c);
        else this.pinned.set(c, n);
      }
    }
  }

  /** plan reads a reference's source up to its layer list, without unpacking anything. */
  private async plan(reference: string, onProgress: ResolveOptions['onProgress']): Promise<ImagePlan> {
    if (reference.startsWith(DOCKER_ARCHIVE_PREFIX)) return openDockerArchive(parseDockerArchiveReference(reference));
    const ref = parseImageReference(reference);
    switch (ref.kind) {
      case 'registry': return this.planRegistry(ref, onProgress);
      case 'oci': return planOciImage(await openLayoutDir(ref.path), ref.tag);
      case 'oci-archive': return planOciImage(await openArchive(ref.path), undefined);
    }
  }

  /**
   * planRegistry is the registry branch: manifest and config are fetched now; each layer's open()
   * downloads its blob into blobs/sha256 (verified, resumable, once per digest) and reads it from
   * there, so progress counts bytes as the unpacker reads them.
   */
  private async planRegistry(ref: Extract<ImageReference, { kind: 'registry' }>, _onProgress: ResolveOptions['onProgress']): Promise<ImagePlan> {
    return this.registry.plan(ref.registry);
  }

  /** unpackAll unpacks what is missing, reporting raw bytes read against the total still to read. */
  private async unpackAll(plan: ImagePlan, chains: string[], onProgress: ResolveOptions['onProgress']): Promise<string[]> {
    const missing = await Promise.all(chains.map((c) => stat(`${this.layersDir}/${c}`).then(() => false, () => true)));
    const total = plan.layers.reduce((sum, l, i) => sum + (missing[i] && l.size > 0 ? l.size : 0), 0);
    let done = 0;
    const onBytes = (n: number): void => {
      done += n;
      if (total > 0) onProgress?.(Math.min(done, total), total);
    };
    return Promise.all(plan.layers.map((l, i) => this.ensureLayer(plan.label, l, chains[i]!, onBytes)));
  }

  private ensureLayer(label: string, layer: LayerPlan, chainHex: string, onBytes: (n: number) => void): Promise<string> {
    let p = this.layers.get(chainHex);
    if (!p) {
      p = this.unpackOnce(label, layer, chainHex, onBytes);
      this.layers.set(chainHex, p);
      p.catch(() => this.layers.delete(chainHex));
    }
    return p;
  }

  private async unpackOnce(label: string, layer: LayerPlan, chainHex: string, onBytes: (n: number) => void): Promise<string> {
    const final = `${this.layersDir}/${chainHex}`;
    if (await stat(final).then(() => true, () => false)) return final;
    const maxBytes = this.opts.maxLayerBytes ?? DEFAULT_MAX_LAYER_BYTES;
    const wantDiff = digestHex(layer.diffId, label);
    const tmp = `${this.layersDir}/${TMP_PREFIX}${chainHex.slice(0, 16)}-${randomBytes(4).toString('hex')}`;
    await mkdir(tmp, { mode: 0o755 });
    const started = this.now();
    try {
      const blobHash = createHash('sha256');
      const diffHash = createHash('sha256');
      let blobBytes = 0;
      let tarBytes = 0;
      const raw = await layer.open();
      const counted = (async function* () {
        for await (const chunk of raw) {
          blobHash.update(chunk as Buffer);
          blobBytes += (chunk as Buffer).length;
          onBytes((chunk as Buffer).length);
          yield chunk as Buffer;
        }
      })();
      const hashedTar = (async function* () {
        for await (const chunk of decompressed(counted, layer.compression)) {
          diffHash.update(chunk);
          tarBytes += chunk.length;
          // The unpacker sees each chunk first, so an oversized entry is refused by name there;
          // this bound catches what it cannot: metadata (a layer of millions of empty entries).
          yield chunk;
          if (tarBytes > maxBytes + maxBytes / 8) {
            throw new AgentError('BERTH_ERR_IMAGE_LAYER_TOO_LARGE', `layer ${layer.digest} is larger than the limit of ${maxBytes} bytes`);
          }
        }
      })();
      const stats = await unpackLayer(hashedTar, tmp, this.marks, {
        allowSetuid: this.opts.allowSetuid ?? true, maxBytes, layer: layer.digest,
      });
      if (layer.blobDigest !== undefined && (blobBytes !== layer.size || blobHash.digest('hex') !== digestHex(layer.blobDigest, label))) {
        throw new AgentError('BERTH_ERR_IMAGE_DIGEST_MISMATCH', `${label}: layer ${layer.digest} does not match its descriptor`);
      }
      if (diffHash.digest('hex') !== wantDiff) {
        throw new AgentError('BERTH_ERR_IMAGE_DIGEST_MISMATCH', `${label}: layer ${layer.digest} does not match diff id ${layer.diffId}`);
      }
      await rename(tmp, final).catch(async (err: NodeJS.ErrnoException) => {
        // Another agent process (same state dir) finished first; its copy is as good as ours.
        if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
        await rm(tmp, { recursive: true, force: true });
      });
      this.catalogue.setLayerSize(chainHex, stats.bytes);
      this.log.info('layer unpacked', { layer: layer.digest, chainId: chainHex, entries: stats.entries, bytes: stats.bytes, ms: this.now() - started });
      return final;
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      if (err instanceof AgentError) {
        if (err.code === 'BERTH_ERR_IMAGE_UNSAFE_ENTRY' || err.code === 'BERTH_ERR_IMAGE_LAYER_TOO_LARGE') {
          throw new AgentError(err.code, `${label}: layer ${layer.digest}: ${err.message}`, { cause: err });
        }
        throw err;
      }
      throw new AgentError('BERTH_ERR_IMAGE_INVALID', `${label}: layer ${layer.digest}: ${messageOf(err)}`, { cause: err });
    }
  }

  /** keepDocuments stores small blobs (manifest, config) content-addressed, atomically. */
  private async keepDocuments(docs: Map<string, Buffer>): Promise<void> {
    for (const [digest, body] of docs) {
      const path = `${this.blobsDir}/${digestHex(digest, 'blob')}`;
      if (await stat(path).then(() => true, () => false)) continue;
      const tmp = `${this.blobsDir}/${TMP_PREFIX}${randomBytes(6).toString('hex')}`;
      await writeFile(tmp, body, { mode: 0o600 });
      await rename(tmp, path);
    }
  }

  /** list returns the stored images for the node's status, most recently used first. */
  async list(): Promise<StoredImage[]> {
    const inUse = await this.inUse();
    return this.catalogue.images()
      .map((r) => ({
        references: [...r.references],
        digest: r.digest,
        sizeBytes: r.chainIds.reduce((sum, c) => sum + (this.catalogue.layerSize(c) ?? 0), 0),
        lastUsed: new Date(r.lastUsedMs).toISOString(),
        inUse: inUse.digests.has(r.digest) || r.chainIds.some((c) => inUse.layers.has(c)),
      }))
      .sort((a, b) => b.lastUsed.localeCompare(a.lastUsed) || a.digest.localeCompare(b.digest));
  }

  private async inUse(): Promise<{ digests: Set<string>; layers: Set<string> }> {
    const digests = new Set<string>();
    const layers = new Set<string>(this.pinned.keys());
    for (const c of (await this.opts.containers?.()) ?? []) {
      if (c.imageDigest) digests.add(c.imageDigest);
      for (const dir of c.lowerDirs ?? []) if (dir.startsWith(`${this.layersDir}/`)) layers.add(dir.slice(this.layersDir.length + 1));
    }
    return { digests, layers };
  }

  /** gc removes unused images and layers (idle too long, or LRU while over budget); one run at a time. */
  gc(opts: { nowMs?: number } = {}): Promise<GcPlan> {
    this.gcRunning ??= this.collect(opts.nowMs ?? this.now()).finally(() => { this.gcRunning = undefined; });
    return this.gcRunning;
  }

  private async collect(nowMs: number): Promise<GcPlan> {
    const inUse = await this.inUse();
    const onDisk = (await readdir(this.layersDir)).filter((n) => !n.startsWith(TMP_PREFIX));
    const plan = planGc({
      images: this.catalogue.images(),
      layerBytes: new Map(onDisk.map((c) => [c, this.catalogue.layerSize(c) ?? 0])),
      inUseDigests: inUse.digests,
      inUseLayers: inUse.layers,
      nowMs,
      maxIdleMs: this.opts.gcAfterMs ?? DEFAULT_IMAGE_GC_AFTER_MS,
      budgetBytes: this.opts.budgetBytes ?? DEFAULT_IMAGE_STORE_BUDGET_BYTES,
      graceMs: IMAGE_GC_GRACE_MS,
    });
    if (plan.images.length === 0 && plan.layers.length === 0) return plan;
    const removed: ImageRecord[] = plan.images.flatMap((d) => this.catalogue.get(d) ?? []);
    for (const d of plan.images) this.catalogue.removeImage(d);
    const stillWanted = new Set(this.catalogue.images().flatMap((r) => r.blobs));
    for (const chain of plan.layers) {
      if (this.pinned.has(chain)) continue; // a pull started while we planned
      this.layers.delete(chain);
      // Renamed to a temp name first: a crash mid-delete leaves a sweepable temp dir, not a half layer.
      const doomed = `${this.layersDir}/${TMP_PREFIX}gc-${chain.slice(0, 16)}-${randomBytes(4).toString('hex')}`;
      if (await rename(`${this.layersDir}/${chain}`, doomed).then(() => true, () => false)) await rm(doomed, { recursive: true, force: true });
      this.catalogue.removeLayer(chain);
    }
    for (const blob of new Set(removed.flatMap((r) => r.blobs))) {
      if (!stillWanted.has(blob)) await rm(`${this.blobsDir}/${digestHex(blob, 'blob')}`, { force: true });
    }
    await this.catalogue.save();
    this.log.info('image gc', { images: plan.images.length, layers: plan.layers.length, bytesAfter: plan.bytesAfter });
    this.opts.onChange?.();
    return plan;
  }

  /** storeRoot is the store's directory (for tests and diagnostics). */
  get storeRoot(): string {
    return this.root;
  }
}
