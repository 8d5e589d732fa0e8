import { cgroupPath, readKeyed, readNumber, type CgroupReader } from './cgroup.js';
import type { ContainerStats } from './runtime.js';

const USEC_PER_SECOND = 1e6;

/** CgroupV2Reader reads stats from the unified hierarchy under root. */
export class CgroupV2Reader implements CgroupReader {
  readonly version = 'v2' as const;

  constructor(private readonly root: string) {}

  dirs(rel: string): string[] {
    return [cgroupPath(this.root, rel)];
  }

  async stats(rel: string): Promise<ContainerStats | undefined> {
    const dir = cgroupPath(this.root, rel);
    const [cpuStat, current, memStat, max, pids] = await Promise.all([
      readKeyed(cgroupPath(dir, 'cpu.stat')),
      readNumber(cgroupPath(dir, 'memory.current')),
      readKeyed(cgroupPath(dir, 'memory.stat')),
      // memory.max holds "max" when unlimited, which readNumber maps to undefined → 0.
      readNumber(cgroupPath(dir, 'memory.max')),
      readNumber(cgroupPath(dir, 'pids.current')),
    ]);
    if (cpuStat === undefined && current === undefined) return undefined;
    const memoryUsageBytes = current ?? 0;
    const inactive = memStat?.get('inactive_file') ?? 0;
    return {
      cpuUsageSeconds: (cpuStat?.get('usage_usec') ?? 0) / USEC_PER_SECOND,
      memoryUsageBytes,
      memoryWorkingSetBytes: Math.max(0, memoryUsageBytes - inactive),
      memoryLimitBytes: max ?? 0,
      pids: pids ?? 0,
    };
  }
}
