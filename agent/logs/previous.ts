/**
 * The previous container's log. A container restarted in place keeps its id and its directory is
 * removed before the new run starts, so its log would go with it; `berth logs --previous` needs
 * it. Before the old container is removed, its log generations are copied (older first) to
 * `<stateDir>/logs/<container id>.previous.log`, replacing the one before: like the kubelet, one
 * previous run is kept per container. sweepPreviousLogs drops the copies of containers that are gone.
 */
import { appendFile, copyFile, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** previousLogPath is where a container's previous run's log is kept. */
export function previousLogPath(stateDir: string, containerId: string): string {
  return join(stateDir, 'logs', `${containerId}.previous.log`);
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

/** keepPreviousLog copies an exited container's log (both generations) aside before its removal. */
export async function keepPreviousLog(stateDir: string, containerId: string, logPath: string): Promise<void> {
  const dest = previousLogPath(stateDir, containerId);
  await mkdir(join(stateDir, 'logs'), { recursive: true, mode: 0o700 });
  const tmp = `${dest}.tmp`;
  await rm(tmp, { force: true });
  let wrote = false;
  try {
    await copyFile(`${logPath}.1`, tmp);
    wrote = true;
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
  try {
    if (wrote) await appendFile(tmp, await readFile(logPath));
    else await copyFile(logPath, tmp);
    wrote = true;
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
  if (wrote) await rename(tmp, dest);
  else await rm(dest, { force: true });
}


/** sweepPreviousLogs removes the kept logs of containers no longer on the node (their tasks are gone). */
export async function sweepPreviousLogs(stateDir: string, liveIds: Iterable<string>): Promise<string[]> {
  const live = new Set(liveIds);
  let names: string[];
  try {
    names = await readdir(join(stateDir, 'logs'));
  } catch (err) {
    if (isMissing(err)) return [];
    throw err;
  }
  const gone = names.filter((n) => n.endsWith('.previous.log') && !live.has(n.slice(0, -'.previous.log'.length)));
  await Promise.all(gone.map((n) => rm(join(stateDir, 'logs', n), { force: true })));
  return gone;
}
