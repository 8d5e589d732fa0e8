import { cgroupPath, readKeyed, readNumber, type CgroupReader } from './cgroup.js';
import type { ContainerStats } from './runtime.js';

/** V1_CONTROLLERS are the hierarchies a container cgroup may live in (cpuset only when cpus are pinned). */
export const V1_CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'pids', 'devices', 'cpuset'] as const;

/** V1_UNLIMITED_BYTES: a memory limit at or above this means "no limit" (the kernel's is ~2^63). */
const V1_UNLIMITED_BYTES = 2 ** 62;
const NS_PER_SECOND = 1e9;
/** USER_HZ is the tick cpuacct.stat counts in; Linux fixes it at 100 for user space. */
const USER_HZ = 100;

/** CgroupV1Reader reads stats from one directory per controller under root. */
export class CgroupV1Reader implements CgroupReader {
  readonly version = 'v1' as const;

  constructor(private readonly root: string) {}

  dirs(rel: string): string[] {
    return V1_CONTROLLERS.map((c) => cgroupPath(this.root, c, rel));
  }

  async stats(rel: string): Promise<ContainerStats | undefined> {
    const mem = cgroupPath(this.root, 'memory', rel);
    const cpu = cgroupPath(this.root, 'cpu', rel);
    const cpuacct = cgroupPath(this.root, 'cpuacct', rel);
    const [cpuNs, cpuacctStat, cpuStat, quota, period, shares, usage, memStat, limit, memswLimit, oomControl, pids] = await Promise.all([
      readNumber(cgroupPath(cpuacct, 'cpuacct.usage')),
      readKeyed(cgroupPath(cpuacct, 'cpuacct.stat')),
      readKeyed(cgroupPath(cpu, 'cpu.stat')),
      readNumber(cgroupPath(cpu, 'cpu.cfs_quota_us')),
      readNumber(cgroupPath(cpu, 'cpu.cfs_period_us')),
      readNumber(cgroupPath(cpu, 'cpu.shares')),
      readNumber(cgroupPath(mem, 'memory.usage_in_bytes')),
      readKeyed(cgroupPath(mem, 'memory.stat')),
      readNumber(cgroupPath(mem, 'memory.limit_in_bytes')),
      readNumber(cgroupPath(mem, 'memory.memsw.limit_in_bytes')),
      readKeyed(cgroupPath(mem, 'memory.oom_control')),
      readNumber(cgroupPath(this.root, 'pids', rel, 'pids.current')),
    ]);
    if (usage === undefined && cpuNs === undefined) return undefined;
    const inactive = memStat?.get('total_inactive_file') ?? 0;
    const memoryUsageBytes = usage ?? 0;
    const bytesLimit = (n: number | undefined): number => (n === undefined || n >= V1_UNLIMITED_BYTES ? 0 : n);
    return {
      cpuUsageSeconds: (cpuNs ?? 0) / NS_PER_SECOND,
      memoryUsageBytes,
      memoryWorkingSetBytes: Math.max(0, memoryUsageBytes - inactive),
      memoryLimitBytes: bytesLimit(limit),
      pids: pids ?? 0,
      cpuUserSeconds: (cpuacctStat?.get('user') ?? 0) / USER_HZ,
      cpuSystemSeconds: (cpuacctStat?.get('system') ?? 0) / USER_HZ,
      cfsPeriods: cpuStat?.get('nr_periods') ?? 0,
      cfsThrottledPeriods: cpuStat?.get('nr_throttled') ?? 0,
      cfsThrottledSeconds: (cpuStat?.get('throttled_time') ?? 0) / NS_PER_SECOND,
      memoryRssBytes: memStat?.get('total_rss') ?? 0,
      memoryCacheBytes: memStat?.get('total_cache') ?? 0,
      memorySwapLimitBytes: bytesLimit(memswLimit),
      oomKills: oomControl?.get('oom_kill') ?? 0,
      // cfs_quota_us is -1 when unlimited; cAdvisor reports no quota as 0.
      cpuQuotaUs: quota !== undefined && quota > 0 ? quota : 0,
      cpuPeriodUs: period ?? 0,
      cpuShares: shares ?? 0,
    };
  }
}
