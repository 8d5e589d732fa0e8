/**
 * A small tar reader: ustar, GNU (long names, base-256 sizes) and pax extended headers.
 * It is ours rather than npm `tar` because the layer store needs per-entry control (whiteouts,
 * path safety, no silent rewriting of unsafe names) and reading headers of an oci-archive by
 * offset; parsing tar is ~150 lines, a dependency would be larger than that.
 */
import type { FileHandle } from 'node:fs/promises';

const BLOCK = 512;

/** TarEntryType is the kind of one archive member after meta headers are folded in. */
export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo' | 'other';

/** TarHeader describes one member; `name` and `linkname` are as stored (not yet sanitised). */
export interface TarHeader {
  name: string;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeSec: number;
  linkname: string;
  devMajor: number;
  devMinor: number;
}

/** TarEntry is a header plus its content, which must be read (or ignored) before the next entry. */
export interface TarEntry {
  header: TarHeader;
  body(): AsyncIterable<Buffer>;
}

/** TarFormatError reports a malformed archive; callers wrap it in their own error code. */
export class TarFormatError extends Error {}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink',
  '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo',
};

function cstring(buf: Buffer, start: number, len: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end === -1 || end > start + len ? start + len : end);
}

function numeric(buf: Buffer, start: number, len: number): number {
  if (buf[start]! & 0x80) {
    // GNU base-256: big-endian two's complement in the remaining bytes.
    let v = 0;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + buf[i]!;
    return v;
  }
  const s = cstring(buf, start, len).trim();
  return s === '' ? 0 : parseInt(s, 8);
}

function isZeroBlock(buf: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (buf[i] !== 0) return false;
  return true;
}

/** parseHeader decodes one 512-byte header block; it throws TarFormatError on a bad checksum. */
export function parseHeader(block: Buffer): TarHeader & { typeflag: string } {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
  if (sum !== numeric(block, 148, 8)) throw new TarFormatError('tar header checksum mismatch');
  const typeflag = String.fromCharCode(block[156]!);
  let name = cstring(block, 0, 100);
  // POSIX ustar keeps a prefix; GNU's "ustar  " magic uses those bytes for other things.
  if (block.toString('latin1', 257, 263) === 'ustar\0') {
    const prefix = cstring(block, 345, 155);
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  return {
    typeflag,
    name,
    type: TYPES[typeflag] ?? 'other',
    mode: numeric(block, 100, 8) & 0o7777,
    uid: numeric(block, 108, 8),
    gid: numeric(block, 116, 8),
    size: numeric(block, 124, 12),
    mtimeSec: numeric(block, 136, 12),
    linkname: cstring(block, 157, 100),
    devMajor: numeric(block, 329, 8),
    devMinor: numeric(block, 337, 8),
  };
}

/** parsePax decodes "LEN key=value\n" records into a map. */
export function parsePax(buf: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < buf.length) {
    const space = buf.indexOf(0x20, pos);
    const len = parseInt(buf.toString('latin1', pos, space), 10);
    if (space === -1 || !Number.isFinite(len) || len <= 0) throw new TarFormatError('bad pax record');
    const record = buf.toString('utf8', space + 1, pos + len - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += len;
  }
  return out;
}

/** Meta collects GNU long names and pax overrides that apply to the next real header. */
class Meta {
  longName?: string;
  longLink?: string;
  pax?: Map<string, string>;

  /** absorb handles a meta header; it returns false for a real member. */
  absorb(typeflag: string, content: () => Promise<Buffer>): Promise<boolean> | false {
    if (typeflag === 'L') return content().then((b) => { this.longName = cstring(b, 0, b.length); return true; });
    if (typeflag === 'K') return content().then((b) => { this.longLink = cstring(b, 0, b.length); return true; });
    if (typeflag === 'x') return content().then((b) => { this.pax = parsePax(b); return true; });
    if (typeflag === 'g') return content().then(() => true); // global pax: nothing we rely on
    return false;
  }

  apply(h: TarHeader): TarHeader {
    const out = { ...h };
    if (this.longName !== undefined) out.name = this.longName;
    if (this.longLink !== undefined) out.linkname = this.longLink;
    const pax = this.pax;
    if (pax) {
      if (pax.has('path')) out.name = pax.get('path')!;
      if (pax.has('linkpath')) out.linkname = pax.get('linkpath')!;
      if (pax.has('size')) out.size = Number(pax.get('size'));
      if (pax.has('uid')) out.uid = Number(pax.get('uid'));
      if (pax.has('gid')) out.gid = Number(pax.get('gid'));
      if (pax.has('mtime')) out.mtimeSec = Math.floor(Number(pax.get('mtime')));
    }
    this.longName = this.longLink = this.pax = undefined;
    return out;
  }
}

/** ByteReader pulls exact byte counts out of an async chunk stream. */
class ByteReader {
  private buffered: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;
  private done = false;

  constructor(src: AsyncIterable<Buffer>) {
    this.it = src[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const next = await this.it.next();
    if (next.done) { this.done = true; return false; }
    this.buffered = this.buffered.length === 0 ? next.value : Buffer.concat([this.buffered, next.value]);
    return true;
  }

  /** read returns exactly n bytes, or fewer only at end of stream. */
  async read(n: number): Promise<Buffer> {
    while (this.buffered.length < n && (await this.fill()));
    const out = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(out.length);
    return out;
  }

  /** stream yields the next n bytes in chunks as they arrive. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buffered.length === 0 && !(await this.fill())) throw new TarFormatError('tar truncated');
      const take = this.buffered.subarray(0, left);
      this.buffered = this.buffered.subarray(take.length);
      left -= take.length;
      yield take;
    }
  }

  /** skip discards n bytes. */
  async skip(n: number): Promise<void> {
    for await (const chunk of this.stream(n)) void chunk;
  }

  /** close tells the source we stop reading early, so it can release files. */
  async close(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.it.return?.();
    }
  }

  /** drain reads to the end so that hashes over the whole stream are complete. */
  async drain(): Promise<void> {
    this.buffered = Buffer.alloc(0);
    while (await this.fill()) this.buffered = Buffer.alloc(0);
  }
}

const padding = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;

/** dataSize is how many content bytes follow a header: links carry none whatever `size` says. */
const dataSize = (h: TarHeader): number => (h.type === 'hardlink' || h.type === 'symlink' ? 0 : h.size);

/**
 * readTar yields the members of a tar stream. Each entry's body must be consumed before asking
 * for the next entry (what is left unread is skipped). The source is drained to its end.
 */
export async function* readTar(src: AsyncIterable<Buffer>): AsyncGenerator<TarEntry> {
  const r = new ByteReader(src);
  try {
    yield* entries(r);
    await r.drain();
  } finally {
    await r.close();
  }
}

async function* entries(r: ByteReader): AsyncGenerator<TarEntry> {
  const meta = new Meta();
  for (;;) {
    const block = await r.read(BLOCK);
    if (block.length === 0) break; // tolerate archives without the end-of-archive blocks
    if (block.length < BLOCK) throw new TarFormatError('tar truncated in a header');
    if (isZeroBlock(block)) break;
    const raw = parseHeader(block);
    const absorbed = meta.absorb(raw.typeflag, async () => {
      const content = await r.read(raw.size);
      if (content.length < raw.size) throw new TarFormatError('tar truncated in a meta header');
      await r.skip(padding(raw.size));
      return content;
    });
    if (absorbed !== false && (await absorbed)) continue;
    const header = meta.apply(raw);
    const size = dataSize(header);
    let consumed = false;
    const body = r.stream(size);
    yield {
      header,
      body: () => {
        if (consumed) throw new Error('tar entry body read twice');
        consumed = true;
        return body;
      },
    };
    if (!consumed) await r.skip(size);
    else for await (const rest of body) void rest; // finish a partly read body
    await r.skip(padding(size));
  }
}

/** TarMember locates one regular file inside an uncompressed tar file. */
export interface TarMember {
  offset: number;
  size: number;
}

/** indexTarFile maps member names (leading "./" removed) to their byte ranges, reading headers only. */
export async function indexTarFile(fh: FileHandle): Promise<Map<string, TarMember>> {
  const out = new Map<string, TarMember>();
  const meta = new Meta();
  const block = Buffer.alloc(BLOCK);
  let pos = 0;
  for (;;) {
    const { bytesRead } = await fh.read(block, 0, BLOCK, pos);
    if (bytesRead === 0) break;
    if (bytesRead < BLOCK) throw new TarFormatError('tar truncated in a header');
    if (isZeroBlock(block)) break;
    const raw = parseHeader(block);
    const dataAt = pos + BLOCK;
    const absorbed = meta.absorb(raw.typeflag, async () => {
      const content = Buffer.alloc(raw.size);
      const got = await fh.read(content, 0, raw.size, dataAt);
      if (got.bytesRead < raw.size) throw new TarFormatError('tar truncated in a meta header');
      return content;
    });
    let size = raw.size;
    if (absorbed === false || !(await absorbed)) {
      const header = meta.apply(raw);
      size = dataSize(header);
      if (header.type === 'file') out.set(header.name.replace(/^(\.\/)+/, ''), { offset: dataAt, size });
    }
    pos = dataAt + size + padding(size);
  }
  return out;
}
