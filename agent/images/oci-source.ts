/**
 * Where an image's blobs come from: an OCI image layout directory or an oci-archive (a tar of
 * one). Both expose index.json and digest-addressed blobs; every blob read here is checked
 * against the descriptor's sha256 and size.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { AgentError, messageOf } from '../errors.js';
import { indexTarFile, type TarMember } from './tar.js';
import type { ImageDocument } from './image-config.js';

/** MAX_JSON_BLOB_BYTES bounds index, manifest and config documents read into memory. */
export const MAX_JSON_BLOB_BYTES = 4 * 1024 * 1024;

/** Descriptor is an OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture?: string; os?: string };
}

/** BlobSource reads an image layout's index and its blobs. */
export interface BlobSource {
  /** label names the source in errors, e.g. "oci-archive /x.tar". */
  readonly label: string;
  /** version changes when the underlying files change (mtime and size), for caching. */
  readonly version: string;
  readIndex(): Promise<Buffer>;
  /** openBlob streams a blob's raw bytes; it does not verify them (the caller hashes). */
  openBlob(digest: string): Promise<Readable>;
}

/** digestHex validates a "sha256:<64 hex>" digest and returns the hex part. */
export function digestHex(digest: string, label: string): string {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!m) throw new AgentError('BERTH_ERR_IMAGE_INVALID', `${label}: unsupported digest ${JSON.stringify(digest)}`);
  return m[1]!;
}

function notFound(label: string, what: string, cause?: unknown): AgentError {
  return new AgentError('BERTH_ERR_IMAGE_NOT_FOUND', `${label}: ${what}`, { cause });
}

/** readVerifiedBlob reads a (small) blob fully and checks its size and sha256. */
export async function readVerifiedBlob(src: BlobSource, d: Descriptor): Promise<Buffer> {
  const hex = digestHex(d.digest, src.label);
  if (!Number.isSafeInteger(d.size) || d.size < 0 || d.size > MAX_JSON_BLOB_BYTES) {
    throw new AgentError('BERTH_ERR_IMAGE_INVALID', `${src.label}: blob ${d.digest} has unacceptable size ${d.size}`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of await src.openBlob(d.digest)) {
    total += (chunk as Buffer).length;
    if (total > d.size) break;
    chunks.push(chunk as Buffer);
  }
  const buf = Buffer.concat(chunks);
  const got = createHash('sha256').update(buf).digest('hex');
  if (total !== d.size || got !== hex) {
    throw new AgentError('BERTH_ERR_IMAGE_DIGEST_MISMATCH',
      `${src.label}: blob ${d.digest} does not match its descriptor (size ${total}/${d.size}, sha256:${got})`);
  }
  return buf;
}

/** parseJson parses a document, mapping syntax errors to ImageInvalid. */
export function parseJson(buf: Buffer, label: string, what: string): unknown {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new AgentError('BERTH_ERR_IMAGE_INVALID', `${label}: ${what} is not valid JSON: ${messageOf(err)}`, { cause: err });
  }
}

/** openLayoutDir opens an OCI image layout directory. */
export async function openLayoutDir(path: string): Promise<BlobSource> {
  const label = `oci ${path}`;
  const st = await stat(path).catch((err) => { throw notFound(label, 'no such file', err); });
  if (!st.isDirectory()) throw new AgentError('BERTH_ERR_IMAGE_INVALID', `${label}: not a directory`);
  const indexStat = await stat(`${path}/index.json`).catch((err) => { throw notFound(label, 'no index.json', err); });
  return {
    label,
    version: `${indexStat.mtimeMs}:${indexStat.size}`,
    readIndex: () => readFile(`${path}/index.json`),
    async openBlob(digest) {
      const file = `${path}/blobs/sha256/${digestHex(digest, label)}`;
      await stat(file).catch((err) => { throw notFound(label, `blob ${digest} missing`, err); });
      return createReadStream(file);
    },
  };
}

/** openArchive opens an oci-archive: an uncompressed tar holding an OCI image layout. */
export async function openArchive(path: string): Promise<BlobSource> {
  const label = `oci-archive ${path}`;
  const fh = await open(path, 'r').catch((err) => { throw notFound(label, 'no such file', err); });
  let members: Map<string, TarMember>;
  let version: string;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new AgentError('BERTH_ERR_IMAGE_INVALID', `${label}: not a regular file`);
    version = `${st.mtimeMs}:${st.size}`;
    members = await indexTarFile(fh);
  } catch (err) {
    if (err instanceof AgentError) throw err;
    throw new AgentError('BERTH_ERR_IMAGE_INVALID', `${label}: not a tar archive: ${messageOf(err)}`, { cause: err });
  } finally {
    await fh.close();
  }
  const member = (name: string, what: string): TarMember => {
    const m = members.get(name);
    if (!m) throw notFound(label, what);
    return m;
  };
  const streamOf = (m: TarMember): Readable =>
    m.size === 0 ? Readable.from([]) : createReadStream(path, { start: m.offset, end: m.offset + m.size - 1 });
  return {
    label,
    version,
    async readIndex() {
      const m = member('index.json', 'no index.json in archive');
      const chunks: Buffer[] = [];
      for await (const c of streamOf(m)) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    },
    async openBlob(digest) {
      return streamOf(member(`blobs/sha256/${digestHex(digest, label)}`, `blob ${digest} missing`));
    },
  };
}

/** LayerPlan is one layer an image needs, and how to read its bytes. */
export interface LayerPlan {
  /** digest names the layer in errors and progress: the blob digest, or the diff id when there is no blob. */
  digest: string;
  diffId: string;
  /** blobDigest, when known, is checked against the raw bytes (with `size`). */
  blobDigest?: string;
  /** size is the raw (possibly compressed) byte count, for progress; -1 when unknown. */
  size: number;
  /** compression 'auto' sniffs the gzip magic (docker-archive layers may be either). */
  compression: 'gzip' | 'none' | 'auto';
  open(): Promise<Readable>;
}

/** ImagePlan is a resolved image before its layers are unpacked. */
export interface ImagePlan {
  label: string;
  /** digest identifies the image: the manifest digest (docker-archive: the config digest). */
  digest: string;
  config: ImageDocument['config'];
  /** diffIds are the uncompressed layer digests, bottom first. */
  diffIds: string[];
  layers: LayerPlan[];
  /** documents are small blobs worth keeping in the store (manifest, config), by digest. */
  documents: Map<string, Buffer>;
}
