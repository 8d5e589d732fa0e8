/**
 * Disk usage of a directory tree, as `du -s` counts it: allocated blocks of every entry, each
 * hard-linked file once, symlinks never followed, other filesystems mounted inside skipped.
 * The walk yields to the event loop between directories, so a large volume slows its own
 * measurement down, never the agent.
 */
import { lstat, opendir } from 'node:fs/promises';
import { join } from 'node:path';

/** BLOCK_BYTES is the unit of stat's st_blocks (POSIX: 512 bytes, whatever the filesystem block size). */
const BLOCK_BYTES = 512;

/**
 * diskUsageBytes sums the allocated bytes under root (root included); an entry that vanishes
 * while it is walked is skipped. A missing root is 0.
 */
export async function diskUsageBytes(root: string): Promise<number> {
  const top = await lstat(root, { bigint: false }).catch(() => undefined);
  if (!top) return 0;
  const seen = new Set<string>();
  let total = top.blocks * BLOCK_BYTES;
  if (!top.isDirectory()) return total;
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    const handle = await opendir(dir).catch(() => undefined);
    if (!handle) continue;
    for await (const entry of handle) {
      const path = join(dir, entry.name);
      const st = await lstat(path).catch(() => undefined);
      if (!st) continue;
      // Another filesystem mounted inside (a tmpfs, a bind) is not the volume's disk.
      if (st.dev !== top.dev) continue;
      if (st.nlink > 1 && !st.isDirectory()) {
        const id = `${st.ino}`;
        if (seen.has(id)) continue;
        seen.add(id);
      }
      total += st.blocks * BLOCK_BYTES;
      if (st.isDirectory()) pending.push(path);
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return total;
}
