import { readFile } from 'node:fs/promises';

import { cgroupPath, readKeyed, readNumber, type CgroupReader } from './cgroup.js';
import type { ContainerStats } from './runtime.js';

const USEC_PER_SECOND = 1e6;

/** sharesFromWeight inverts the shares → cpu.weight mapping so v1 and v2 report the same cpu_shares. */
export function sharesFromWeight(weight: number): number {
  return 2 + Math.floor(((weight - 1) * 262142) / 9999);
}

/** readCpuMax reads cpu.max ("QUOTA PERIOD", QUOTA may be "max"); a missing file yields undefined. */
async function readCpuMax(path: string): Promise<{ quotaUs: number; periodUs: number } | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const [quota, period] = text.trim().split(/\s+/);
  const quotaUs = Number(quota);
  return { quotaUs: Number.isFinite(quotaUs) ? quotaUs : 0, periodUs: Number(period) || 0 };
}

/** CgroupV2Reader reads stats from the unified hierarchy under root. */
export class CgroupV2Reader implements CgroupReader {
  readonly version = 'v2' as const;

  constructor(private readonly root: string) {}

  dirs(rel: string): string[] {
    return [cgroupPath(this.root, rel)];
  }

  async stats(rel: string): Promise<ContainerStats | undefined> {
    const dir = cgroupPath(this.root, rel);
    const [cpuStat, cpuMax, weight, current, memStat, max, swapMax, events, pids] = await Promise.all([
      readKeyed(cgroupPath(dir, 'cpu.stat')),
      readCpuMax(cgroupPath(dir, 'cpu.max')),
      readNumber(cgroupPath(dir, 'cpu.weight')),
      readNumber(cgroupPath(dir, 'memory.current')),
      readKeyed(cgroupPath(dir, 'memory.stat')),
      // memory.max holds "max" when unlimited, which readNumber maps to undefined → 0.
      readNumber(cgroupPath(dir, 'memory.max')),
      readNumber(cgroupPath(dir, 'memory.swap.max')),
      readKeyed(cgroupPath(dir, 'memory.events')),
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
      cpuUserSeconds: (cpuStat?.get('user_usec') ?? 0) / USEC_PER_SECOND,
      cpuSystemSeconds: (cpuStat?.get('system_usec') ?? 0) / USEC_PER_SECOND,
      cfsPeriods: cpuStat?.get('nr_periods') ?? 0,
      cfsThrottledPeriods: cpuStat?.get('nr_throttled') ?? 0,
      cfsThrottledSeconds: (cpuStat?.get('throttled_usec') ?? 0) / USEC_PER_SECOND,
      memoryRssBytes: memStat?.get('anon') ?? 0,
      memoryCacheBytes: memStat?.get('file') ?? 0,
      // Reported like v1's memsw (memory + swap) so one series means one thing on both versions.
      memorySwapLimitBytes: max !== undefined && swapMax !== undefined ? max + swapMax : 0,
      oomKills: events?.get('oom_kill') ?? 0,
      cpuQuotaUs: cpuMax?.quotaUs ?? 0,
      cpuPeriodUs: cpuMax?.periodUs ?? 0,
      cpuShares: weight === undefined ? 0 : sharesFromWeight(weight),
    };
  }
}
