/**
 * The start-up sweep: a container dir without a `pid` file and without a live shim is what a
 * crash mid-create leaves behind (the agent died between making the dir and the shim's reply,
 * or the shim died before the container ran). Such a dir can never be re-adopted; it is removed
 * with its cgroup dirs. Nothing is mounted on the host for it: the rootfs lived only in the
 * container's own mount namespace.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** liveShimDirs returns the container dirs of every running `berth-shim <dir>` on this host. */
export async function liveShimDirs(): Promise<Set<string>> {
  const dirs = new Set<string>();
  for (const name of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    let cmdline: string;
    try {
      cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const argv = cmdline.split('\0');
    // A creating shim is `berth-shim DIR`; `berth-shim --exec DIR PID` only exists for running ones.
    if (argv[0]?.endsWith('berth-shim') && argv[1] && argv[1] !== '--exec') dirs.add(argv[1]);
  }
  return dirs;
}

/** HalfMade is a container dir the sweep will remove, with the cgroup parent it was created under. */
export interface HalfMade {
  id: string;
  dir: string;
  cgroupParent?: string;
}

/** findHalfMade lists the container dirs under containersDir that have no pid file and no live shim. */
export async function findHalfMade(containersDir: string): Promise<HalfMade[]> {
  let ids: string[];
  try {
    ids = await readdir(containersDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const live = await liveShimDirs();
  const out: HalfMade[] = [];
  for (const id of ids) {
    const dir = join(containersDir, id);
    const files = await readdir(dir).catch(() => undefined);
    if (!files || files.includes('pid') || live.has(dir)) continue;
    let cgroupParent: string | undefined;
    if (files.includes('spec.json')) {
      try {
        cgroupParent = (JSON.parse(await readFile(join(dir, 'spec.json'), 'utf8')) as { cgroupParent?: string }).cgroupParent;
      } catch {
        // a torn spec.json is part of the same crash; the default parent applies
      }
    }
    out.push({ id, dir, ...(cgroupParent ? { cgroupParent } : {}) });
  }
  return out;
}
