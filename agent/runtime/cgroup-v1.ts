import { cgroupPath, readKeyed, readNumber, type CgroupReader } from './cgroup.js';
import type { ContainerStats } from './runtime.js';

/** V1_CONTROLLERS are the hierarchies berth creates a container cgroup in (cpuset is left alone). */
export const V1_CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'pids'] as const;

/** V1_UNLIMITED_BYTES: memory.limit_in_bytes at or above this means "no limit" (the kernel's is ~2^63). */
const V1_UNLIMITED_BYTES = 2 ** 62;
const NS_PER_SECOND = 1e9;

/** CgroupV1Reader reads stats from one directory per controller under root. */
export class CgroupV1Reader implements CgroupReader {
  readonly version = 'v1' as const;

  constructor(private readonly root: string) {}

  dirs(rel: string): string[] {
    return V1_CONTROLLERS.map((c) => cgroupPath(this.root, c, rel));
  }

  async stats(rel: string): Promise<ContainerStats | undefined> {
    const mem = cgroupPath(this.root, 'memory', rel);
    const [cpuNs, usage, memStat, limit, pids] = await Promise.all([
      readNumber(cgroupPath(this.root, 'cpuacct', rel, 'cpuacct.usage')),
      readNumber(cgroupPath(mem, 'memory.usage_in_bytes')),
      readKeyed(cgroupPath(mem, 'memory.stat')),
      readNumber(cgroupPath(mem, 'memory.limit_in_bytes')),
      readNumber(cgroupPath(this.root, 'pids', rel, 'pids.current')),
    ]);
    if (usage === undefined && cpuNs === undefined) return undefined;
    const inactive = memStat?.get('total_inactive_file') ?? 0;
    const memoryUsageBytes = usage ?? 0;
    return {
      cpuUsageSeconds: (cpuNs ?? 0) / NS_PER_SECOND,
      memoryUsageBytes,
      memoryWorkingSetBytes: Math.max(0, memoryUsageBytes - inactive),
      memoryLimitBytes: limit === undefined || limit >= V1_UNLIMITED_BYTES ? 0 : limit,
      pids: pids ?? 0,
    };
  }
}
