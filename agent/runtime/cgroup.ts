import { statfsSync } from 'node:fs';
import { readFile, rmdir } from 'node:fs/promises';
import { join } from 'node:path';

import type { ContainerStats } from './runtime.js';

/** CGROUP2_SUPER_MAGIC is statfs' f_type of a cgroup2 (unified) mount. */
export const CGROUP2_SUPER_MAGIC = 0x63677270;

/** DEFAULT_CGROUP_ROOT is where the host's cgroup filesystems are mounted. */
export const DEFAULT_CGROUP_ROOT = '/sys/fs/cgroup';

/** CgroupVersion is 'v1' (legacy or hybrid) or 'v2' (unified). */
export type CgroupVersion = 'v1' | 'v2';

/** CgroupReader reads a container's cgroup; `rel` is `<cgroupParent>/<id>`. */
export interface CgroupReader {
  readonly version: CgroupVersion;
  /** stats returns undefined when the cgroup does not exist (the container is gone). */
  stats(rel: string): Promise<ContainerStats | undefined>;
  /** dirs lists the cgroup's directories (one per controller on v1), for cleanup. */
  dirs(rel: string): string[];
}

/** detectCgroupVersion decides once, from the root's filesystem type, which backend applies. */
export function detectCgroupVersion(root: string): CgroupVersion {
  return Number(statfsSync(root).type) === CGROUP2_SUPER_MAGIC ? 'v2' : 'v1';
}

/** readNumber reads a one-number cgroup file; undefined if missing, `max` or unparsable. */
export async function readNumber(path: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const n = Number(text.trim().split(/\s+/)[0]);
  return Number.isFinite(n) ? n : undefined;
}

/** readKeyed reads a flat-keyed cgroup file (`key value` lines) such as memory.stat. */
export async function readKeyed(path: string): Promise<Map<string, number> | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [key, value] = line.split(' ');
    if (key && value !== undefined) out.set(key, Number(value));
  }
  return out;
}

/** removeCgroupDirs removes leftover cgroup dirs (a shim that died never cleaned up). */
export async function removeCgroupDirs(dirs: string[]): Promise<void> {
  for (const dir of dirs) {
    try {
      await rmdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/** cgroupPath joins root and a relative cgroup path. */
export function cgroupPath(root: string, ...parts: string[]): string {
  return join(root, ...parts);
}
