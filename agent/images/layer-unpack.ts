/**
 * Unpack one layer tar into its own directory, converted for overlayfs and confined to that
 * directory: names with '..' or a leading '/', parents that are symlinks, symlinks or hardlinks
 * leading outside the root, and device nodes are refused with an error naming the entry. Limits
 * bound the layer's size and can strip setuid/setgid bits from files (directories keep setgid:
 * it only steers group inheritance).
 */
import { constants as fsc } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, rm, symlink, utimes } from 'node:fs/promises';
import { posix } from 'node:path';
import { AgentError } from '../errors.js';
import { readTar, type TarHeader } from './tar.js';
import { makeFifo, makeWhiteout, markOpaque } from './overlay-marks.js';

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';

/** UnpackMarks lets tests replace the two privileged overlay operations. */
export interface UnpackMarks {
  whiteout(path: string): Promise<void>;
  opaque(dir: string): Promise<void>;
}

/** defaultMarks makes real whiteouts (mknod) and opaque xattrs. */
export const defaultMarks: UnpackMarks = { whiteout: makeWhiteout, opaque: markOpaque };

/** UnpackStats counts what one layer held, for logs and tests. */
export interface UnpackStats {
  entries: number;
  whiteouts: number;
  opaqueDirs: number;
  /** bytes is the sum of regular files' sizes: the layer's share of the store. */
  bytes: number;
}

/** UnpackLimits are the agent's policies for what a layer may hold. */
export interface UnpackLimits {
  /** allowSetuid keeps setuid/setgid bits on files (Docker's default); false strips them. */
  allowSetuid?: boolean;
  /** maxBytes bounds the layer's content; an entry that would pass it fails the layer. */
  maxBytes?: number;
  /** layer names the layer in errors (e.g. its digest). */
  layer?: string;
}

/** SETID_BITS are S_ISUID | S_ISGID. */
const SETID_BITS = 0o6000;

function unsafe(entry: string, why: string): AgentError {
  return new AgentError('BERTH_ERR_IMAGE_UNSAFE_ENTRY', `layer entry ${JSON.stringify(entry)}: ${why}`);
}

/**
 * safeRelativePath normalises a tar member name to a path relative to the layer root, or
 * throws for names that are absolute or contain '..'. '' means the root itself.
 */
export function safeRelativePath(name: string): string {
  if (name.startsWith('/')) throw unsafe(name, 'absolute path');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw unsafe(name, "path contains '..'");
  return parts.join('/');
}

/** symlinkEscapes tells whether a relative symlink target at `rel` climbs above the root. */
export function symlinkEscapes(rel: string, target: string): boolean {
  if (target.startsWith('/')) return false; // resolved inside the container's root at run time
  const resolved = posix.normalize(posix.join(posix.dirname(rel), target));
  return resolved === '..' || resolved.startsWith('../');
}

const isRoot = process.getuid?.() === 0;

/**
 * ensureParents walks the parent directories of `rel`, refusing to pass through a symlink;
 * with `create` it makes missing ones, otherwise a missing one is left for the caller to find.
 */
async function ensureParents(root: string, rel: string, entry: string, create = true): Promise<void> {
  const parts = rel.split('/').slice(0, -1);
  let cur = root;
  for (const part of parts) {
    cur = `${cur}/${part}`;
    const st = await lstat(cur).catch(() => undefined);
    if (!st && !create) return;
    if (!st) await mkdir(cur, { mode: 0o755 });
    else if (st.isSymbolicLink()) throw unsafe(entry, `parent ${JSON.stringify(cur.slice(root.length + 1))} is a symlink`);
    else if (!st.isDirectory()) throw unsafe(entry, `parent ${JSON.stringify(cur.slice(root.length + 1))} is not a directory`);
  }
}

async function removeExisting(path: string, keepDir: boolean): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return;
  if (keepDir && st.isDirectory()) return;
  await rm(path, { recursive: true, force: true });
}

async function writeFile(path: string, h: TarHeader, body: AsyncIterable<Buffer>, mode: number): Promise<void> {
  // O_EXCL|O_NOFOLLOW: the path was just cleared, so anything there now is a race we refuse.
  const fh = await open(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  try {
    for await (const chunk of body) await fh.write(chunk);
    if (isRoot) await fh.chown(h.uid, h.gid);
    await fh.chmod(mode); // after chown, which clears setuid bits
    await fh.utimes(h.mtimeSec, h.mtimeSec);
  } finally {
    await fh.close();
  }
}

/**
 * unpackLayer extracts an uncompressed tar stream into `root` (an existing, empty directory).
 * Directory modes and times are applied last so read-only directories can still be filled.
 */
export async function unpackLayer(src: AsyncIterable<Buffer>, root: string, marks: UnpackMarks = defaultMarks,
  limits: UnpackLimits = {}): Promise<UnpackStats> {
  const stats: UnpackStats = { entries: 0, whiteouts: 0, opaqueDirs: 0, bytes: 0 };
  const maxBytes = limits.maxBytes ?? Number.POSITIVE_INFINITY;
  const dirs: { path: string; h: TarHeader }[] = [];
  for await (const entry of readTar(src)) {
    const h = entry.header;
    const rel = safeRelativePath(h.name);
    stats.entries++;
    if (rel === '') {
      if (h.type === 'dir') dirs.push({ path: root, h });
      continue;
    }
    await ensureParents(root, rel, h.name);
    const path = `${root}/${rel}`;
    const base = posix.basename(rel);
    if (base === OPAQUE_MARKER) {
      await marks.opaque(posix.dirname(path));
      stats.opaqueDirs++;
      continue;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const hidden = base.slice(WHITEOUT_PREFIX.length);
      if (hidden === '' || hidden === '.' || hidden === '..') throw unsafe(h.name, 'empty whiteout name');
      const target = `${posix.dirname(path)}/${hidden}`;
      await removeExisting(target, false);
      await marks.whiteout(target);
      stats.whiteouts++;
      continue;
    }
    switch (h.type) {
      case 'dir':
        await removeExisting(path, true);
        await mkdir(path, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
        dirs.push({ path, h });
        break;
      case 'file': {
        // Checked on the header, before a byte is written: the size is what the entry claims.
        if (stats.bytes + h.size > maxBytes) {
          throw new AgentError('BERTH_ERR_IMAGE_LAYER_TOO_LARGE',
            `layer ${limits.layer ?? '<unnamed>'} is larger than the limit of ${maxBytes} bytes (at entry ${JSON.stringify(h.name)})`);
        }
        stats.bytes += h.size;
        await removeExisting(path, false);
        await writeFile(path, h, entry.body(), limits.allowSetuid === false ? h.mode & ~SETID_BITS : h.mode);
        break;
      }
      case 'symlink':
        if (symlinkEscapes(rel, h.linkname)) throw unsafe(h.name, `symlink target ${JSON.stringify(h.linkname)} leads outside the layer`);
        await removeExisting(path, false);
        await symlink(h.linkname, path);
        if (isRoot) await lchown(path, h.uid, h.gid);
        await lutimes(path, h.mtimeSec, h.mtimeSec);
        break;
      case 'hardlink': {
        let targetRel: string;
        try {
          targetRel = safeRelativePath(h.linkname);
        } catch {
          throw unsafe(h.name, `hardlink target ${JSON.stringify(h.linkname)} leads outside the layer`);
        }
        await ensureParents(root, targetRel, h.name, false);
        const target = `${root}/${targetRel}`;
        const st = await lstat(target).catch(() => undefined);
        if (!st || st.isDirectory()) throw unsafe(h.name, `hardlink target ${JSON.stringify(h.linkname)} is not a file in this layer`);
        await removeExisting(path, false);
        await link(target, path);
        break;
      }
      case 'fifo':
        await removeExisting(path, false);
        await makeFifo(path, h.mode & 0o777);
        if (isRoot) await lchown(path, h.uid, h.gid);
        break;
      case 'char':
      case 'block':
        throw unsafe(h.name, 'device nodes are not allowed in layers');
      case 'other':
        break; // vendor extensions (GNU sparse/dumpdir, ...): nothing a container needs
    }
  }
  for (const { path, h } of dirs.reverse()) {
    if (isRoot) await lchown(path, h.uid, h.gid);
    await chmod(path, h.mode);
    await utimes(path, h.mtimeSec, h.mtimeSec);
  }
  return stats;
}

