/**
 * The content store: blobs by digest at `<images>/blobs/sha256/<hex>`. A download streams into
 * `<images>/blobs/ingest/<hex>` (named by digest so a retry or a restarted agent can resume it
 * with Range), is checked for size and sha256, then renamed into place; a file under sha256/ is
 * therefore always complete and verified. Concurrent requests for one digest share one fetch.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { AgentError, messageOf } from '../../errors.js';
import { digestHex } from '../oci-source.js';
import { RetryableError } from './retry.js';

/** INGEST_MAX_AGE_MS is how long a partial download is kept for resuming before init removes it. */
export const INGEST_MAX_AGE_MS = 24 * 60 * 60 * 1000;

/** BlobBody is one response to a blob request: where its bytes start and the bytes. */
export interface BlobBody {
  /** offset is where body starts in the blob: the Range start if honoured (206), else 0. */
  offset: number;
  body: Readable;
}

/** BlobFetcher opens the blob from `offset` (a Range request when > 0); it may ignore the range. */
export type BlobFetcher = (offset: number) => Promise<BlobBody>;

/** ContentStore keeps verified blobs by digest. */
export class ContentStore {
  readonly blobsDir: string;
  readonly ingestDir: string;
  private readonly inflight = new Map<string, Promise<string>>();
  /** downloads counts blob bodies fetched from a registry (for logs and tests). */
  downloads = 0;

  constructor(root: string) {
    this.blobsDir = `${root}/blobs/sha256`;
    this.ingestDir = `${root}/blobs/ingest`;
  }

  /**
   * init creates the directories. Partial ingests are kept to be resumed, unless untouched for
   * INGEST_MAX_AGE_MS: nobody is coming back for those, and they would hold disk forever.
   */
  async init(now = Date.now()): Promise<void> {
    await mkdir(this.blobsDir, { recursive: true, mode: 0o700 });
    await mkdir(this.ingestDir, { recursive: true, mode: 0o700 });
    for (const name of await readdir(this.ingestDir)) {
      const path = `${this.ingestDir}/${name}`;
      const st = await stat(path).catch(() => undefined);
      if (st && now - st.mtimeMs > INGEST_MAX_AGE_MS) await rm(path, { force: true });
    }
  }

  /** path is where a verified blob lives. */
  path(digest: string): string {
    return `${this.blobsDir}/${digestHex(digest, 'content store')}`;
  }

  /** has tells whether the blob is stored (and so verified). */
  async has(digest: string): Promise<boolean> {
    return stat(this.path(digest)).then((s) => s.isFile(), () => false);
  }

  /** readSmall reads a stored blob (manifests, configs) into memory, or undefined if absent. */
  async readSmall(digest: string): Promise<Buffer | undefined> {
    return readFile(this.path(digest)).catch(() => undefined);
  }

  /**
   * ensure returns the path of the verified blob, fetching it at most once at a time per digest.
   * `retry` wraps the download (each try resumes the partial ingest the last one left).
   */
  ensure(digest: string, size: number, label: string, fetcher: BlobFetcher, retry: (run: () => Promise<string>) => Promise<string> = (run) => run()): Promise<string> {
    const hex = digestHex(digest, label);
    let p = this.inflight.get(hex);
    if (!p) {
      p = (async () => {
        if (await this.has(digest)) return this.path(digest);
        return retry(() => this.ingest(hex, size, label, fetcher));
      })();
      this.inflight.set(hex, p);
      void p.finally(() => this.inflight.delete(hex)).catch(() => undefined);
    }
    return p;
  }

  /** ingest runs one download attempt, appending to the partial file when the server allows. */
  private async ingest(hex: string, size: number, label: string, fetcher: BlobFetcher): Promise<string> {
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new AgentError('BERTH_ERR_IMAGE_INVALID', `${label}: blob sha256:${hex} has unacceptable size ${size}`);
    }
    const partial = `${this.ingestDir}/${hex}`;
    const final = `${this.blobsDir}/${hex}`;
    let have = await stat(partial).then((s) => s.size, () => 0);
    if (have > size) {
      await rm(partial, { force: true });
      have = 0;
    }
    let hash = createHash('sha256');
    if (have > 0) {
      // Re-hash what is already on disk; sha256 state cannot be saved across processes.
      for await (const chunk of createReadStream(partial, { end: have - 1 })) hash.update(chunk as Buffer);
    }
    let written = have;
    if (have < size) {
      const { offset, body } = await fetcher(have);
      if (offset !== have) {
        // The server ignored Range and sent the whole blob: start the partial over.
        await rm(partial, { force: true });
        hash = createHash('sha256');
        written = 0;
      }
      this.downloads++;
      // Each chunk is written before the next is read, so after a cut the partial file holds
      // exactly what arrived and the next attempt's Range starts there.
      const fh = await open(partial, 'a', 0o600);
      try {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          if (written + chunk.length > size) {
            throw new AgentError('BERTH_ERR_IMAGE_DIGEST_MISMATCH', `${label}: blob sha256:${hex} is longer than its descriptor's ${size} bytes`);
          }
          hash.update(chunk);
          await fh.write(chunk);
          written += chunk.length;
        }
      } catch (err) {
        body.destroy();
        await fh.close();
        if (err instanceof AgentError) {
          await rm(partial, { force: true });
          throw err;
        }
        throw new RetryableError(`${label}: blob sha256:${hex} download interrupted at ${written}/${size} bytes: ${messageOf(err)}`, { cause: err });
      }
      await fh.close();
      if (written < size) throw new RetryableError(`${label}: blob sha256:${hex} ended early at ${written}/${size} bytes`);
    }
    const got = hash.digest('hex');
    if (got !== hex) {
      await rm(partial, { force: true });
      throw new AgentError('BERTH_ERR_IMAGE_DIGEST_MISMATCH', `${label}: blob sha256:${hex} does not match its digest (got sha256:${got}, ${written} bytes)`);
    }
    await rename(partial, final);
    return final;
  }
}
