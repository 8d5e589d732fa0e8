/** Byte-stream helpers for the layer store: decompression and measuring a directory. */
import { lstat, readdir } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';

const GZIP_MAGIC = [0x1f, 0x8b];

/** decompressed yields a layer's tar bytes; 'auto' sniffs the gzip magic in the first chunk. */
export async function* decompressed(src: AsyncIterable<Buffer>, compression: 'gzip' | 'none' | 'auto'): AsyncGenerator<Buffer> {
  if (compression === 'none') return yield* src;
  if (compression === 'gzip') return yield* gunzip(src);
  const it = src[Symbol.asyncIterator]();
  let first = await it.next();
  while (!first.done && first.value.length < GZIP_MAGIC.length) {
    // A tiny first chunk cannot be sniffed; join it with the next (streams rarely do this).
    const next = await it.next();
    if (next.done) break;
    first = { done: false, value: Buffer.concat([first.value, next.value]) };
  }
  if (first.done) return;
  const head = first.value;
  const rest = (async function* () {
    yield head;
    for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
  })();
  const gz = head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1];
  yield* gz ? gunzip(rest) : rest;
}

/** GUNZIP_CHUNK_BYTES is zlib's output chunk size for layer decompression. */
export const GUNZIP_CHUNK_BYTES = 1 << 20;

/** gunzip decompresses an async chunk stream. */
export async function* gunzip(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  // 1 MiB output chunks: zlib's 16 KiB default made gunzip the slowest step of a pull (~6x).
  const z = createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES });
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

/** directoryBytes sums the sizes of regular files under dir (not following symlinks). */
export async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  const stack = [dir];
  while (stack.length > 0) {
    const cur = stack.pop()!;
    for (const e of await readdir(cur, { withFileTypes: true }).catch(() => [])) {
      const p = `${cur}/${e.name}`;
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) total += (await lstat(p).catch(() => undefined))?.size ?? 0;
    }
  }
  return total;
}
