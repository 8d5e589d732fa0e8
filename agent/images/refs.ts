/**
 * The store's catalogue: which images it holds (by manifest digest), the references that
 * resolved to each, their layers (chain ids) and blobs, sizes and when each was last used.
 * It lives in one JSON file written through a temp file and rename, so a crash leaves either
 * the old or the new catalogue, never half of one. The unpacked layers themselves stay the
 * truth: a record whose layer directory is gone is treated as absent.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import type { ImageConfig } from './image-config.js';
import type { Logger } from '../../common/log.js';

/** CATALOGUE_VERSION changes when the file's shape does; an unknown version starts empty. */
export const CATALOGUE_VERSION = 1;

/** ImageRecord is one image in the store. */
export interface ImageRecord {
  digest: string;
  /** references are every reference currently resolving to this image (each at most once in the store). */
  references: string[];
  /** chainIds are the layers' chain id hex digests, bottom layer first. */
  chainIds: string[];
  /** blobs are digests this image keeps under blobs/sha256 (manifest, config, layers when stored). */
  blobs: string[];
  config: ImageConfig;
  createdMs: number;
  lastUsedMs: number;
}

/** CatalogueDoc is the file's content. */
export interface CatalogueDoc {
  version: number;
  images: Record<string, ImageRecord>;
  /** layerBytes maps a chain id hex to its unpacked size. */
  layerBytes: Record<string, number>;
}

/** Catalogue is the in-memory catalogue with serialised, atomic saves. */
export class Catalogue {
  private doc: CatalogueDoc = { version: CATALOGUE_VERSION, images: {}, layerBytes: {} };
  private saving: Promise<void> = Promise.resolve();

  constructor(private readonly path: string, private readonly log: Logger) {}

  /** load reads the file; a missing or unreadable one starts an empty catalogue (layers are re-found on use). */
  async load(): Promise<void> {
    try {
      const doc = JSON.parse(await readFile(this.path, 'utf8')) as CatalogueDoc;
      if (doc.version === CATALOGUE_VERSION && typeof doc.images === 'object' && typeof doc.layerBytes === 'object') this.doc = doc;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn('image catalogue unreadable; starting empty', { path: this.path });
    }
  }

  /** save writes the catalogue atomically; saves run one after another. */
  save(): Promise<void> {
    const body = JSON.stringify(this.doc);
    this.saving = this.saving.then(async () => {
      const tmp = `${this.path}.tmp-${randomBytes(4).toString('hex')}`;
      try {
        await writeFile(tmp, body, { mode: 0o600 });
        await rename(tmp, this.path);
      } catch (err) {
        await rm(tmp, { force: true });
        this.log.error('image catalogue not saved', { path: this.path, error: (err as Error).message });
      }
    });
    return this.saving;
  }

  /** images returns every record (live objects: callers treat them as read-only). */
  images(): ImageRecord[] {
    return Object.values(this.doc.images);
  }

  /** byReference finds the image a reference last resolved to. */
  byReference(reference: string): ImageRecord | undefined {
    return this.images().find((r) => r.references.includes(reference));
  }

  /** get finds an image by digest. */
  get(digest: string): ImageRecord | undefined {
    return this.doc.images[digest];
  }

  /** put records an image under `reference`, moving the reference off any other image. */
  put(reference: string, image: Omit<ImageRecord, 'references' | 'createdMs' | 'lastUsedMs'>, nowMs: number): ImageRecord {
    for (const other of this.images()) {
      if (other.digest !== image.digest) other.references = other.references.filter((r) => r !== reference);
    }
    const prev = this.doc.images[image.digest];
    const rec: ImageRecord = {
      ...image,
      references: prev ? [...new Set([...prev.references, reference])] : [reference],
      createdMs: prev?.createdMs ?? nowMs,
      lastUsedMs: nowMs,
    };
    this.doc.images[image.digest] = rec;
    return rec;
  }

  /** touch marks an image used now. */
  touch(digest: string, nowMs: number): void {
    const rec = this.doc.images[digest];
    if (rec && rec.lastUsedMs < nowMs) rec.lastUsedMs = nowMs;
  }

  /** removeImage forgets an image. */
  removeImage(digest: string): void {
    delete this.doc.images[digest];
  }

  /** layerBytes returns the recorded size of a layer, if known. */
  layerSize(chainHex: string): number | undefined {
    return this.doc.layerBytes[chainHex];
  }

  /** setLayerSize records a layer's unpacked size. */
  setLayerSize(chainHex: string, bytes: number): void {
    this.doc.layerBytes[chainHex] = bytes;
  }

  /** removeLayer forgets a layer's size. */
  removeLayer(chainHex: string): void {
    delete this.doc.layerBytes[chainHex];
  }
}
