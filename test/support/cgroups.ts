/**
 * Cgroup clean-up for tests: every hierarchy a container cgroup can live in, taken from the
 * runtime's own list so a new controller cannot be forgotten by one test and leak.
 */
import { existsSync } from 'node:fs';
import { readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { V1_CONTROLLERS } from '../../agent/runtime/cgroup-v1.js';

const CGROUP_ROOT = '/sys/fs/cgroup';

function parentDirs(parent: string): string[] {
  return [...V1_CONTROLLERS.map((c) => join(CGROUP_ROOT, c, parent)), join(CGROUP_ROOT, 'unified', parent)];
}

async function removeTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isDirectory()) await removeTree(join(dir, e.name));
  await rmdir(dir).catch(() => undefined);
}

/** removeCgroupParent removes parent and every cgroup below it, bottom-up, in every hierarchy. */
export async function removeCgroupParent(parent: string): Promise<void> {
  for (const dir of parentDirs(parent)) await removeTree(dir);
}

/** leftoverCgroups lists the directories of parent that still exist in any hierarchy. */
export function leftoverCgroups(parent: string): string[] {
  return parentDirs(parent).filter((d) => existsSync(d));
}
