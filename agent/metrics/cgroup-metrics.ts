/**
 * The cgroup-derived per-container series beyond usage: cpu split and throttling, memory
 * breakdown, OOM kills and the applied limits, all under cAdvisor's names and semantics.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ContainerStats } from '../runtime/runtime.js';

/** CgroupSeries are the extra series and how one container's stats land in them. */
export interface CgroupSeries {
  /** all lists every metric so the caller can reset them before a refresh. */
  readonly all: Array<Counter | Gauge>;
  /** record sets every series for one container from its stats (absent fields are skipped). */
  record(labels: Record<string, string>, st: ContainerStats): void;
}

type StatField = Exclude<keyof ContainerStats, 'cpuUsageSeconds' | 'memoryUsageBytes' | 'memoryWorkingSetBytes' | 'memoryLimitBytes' | 'pids'>;

/** SERIES maps a stats field to its cAdvisor metric; counters are cumulative, gauges instantaneous. */
const SERIES: Array<{ field: StatField; name: string; kind: 'counter' | 'gauge'; help: string }> = [
  { field: 'cpuUserSeconds', name: 'container_cpu_user_seconds_total', kind: 'counter', help: 'Cumulative user cpu time consumed in seconds.' },
  { field: 'cpuSystemSeconds', name: 'container_cpu_system_seconds_total', kind: 'counter', help: 'Cumulative system cpu time consumed in seconds.' },
  { field: 'cfsPeriods', name: 'container_cpu_cfs_periods_total', kind: 'counter', help: 'Number of elapsed enforcement period intervals.' },
  { field: 'cfsThrottledPeriods', name: 'container_cpu_cfs_throttled_periods_total', kind: 'counter', help: 'Number of throttled period intervals.' },
  { field: 'cfsThrottledSeconds', name: 'container_cpu_cfs_throttled_seconds_total', kind: 'counter', help: 'Total time duration the container has been throttled.' },
  { field: 'memoryRssBytes', name: 'container_memory_rss', kind: 'gauge', help: 'Size of RSS in bytes.' },
  { field: 'memoryCacheBytes', name: 'container_memory_cache', kind: 'gauge', help: 'Number of bytes of page cache memory.' },
  { field: 'oomKills', name: 'container_oom_events_total', kind: 'counter', help: 'Count of out of memory events observed for the container.' },
  { field: 'cpuQuotaUs', name: 'container_spec_cpu_quota', kind: 'gauge', help: 'CPU quota of the container (microseconds per period; 0: none).' },
  { field: 'cpuPeriodUs', name: 'container_spec_cpu_period', kind: 'gauge', help: 'CPU period of the container (microseconds).' },
  { field: 'cpuShares', name: 'container_spec_cpu_shares', kind: 'gauge', help: 'CPU share of the container (v2: derived from cpu.weight).' },
  { field: 'memorySwapLimitBytes', name: 'container_spec_memory_swap_limit_bytes', kind: 'gauge', help: 'Memory plus swap limit for the container (0: unlimited).' },
];

/** createCgroupSeries registers the series on registry with the container label set. */
export function createCgroupSeries(registry: Registry, labelNames: string[]): CgroupSeries {
  const metrics = SERIES.map((s) => ({
    field: s.field,
    metric: s.kind === 'counter'
      ? new Counter({ name: s.name, help: s.help, labelNames, registers: [registry] })
      : new Gauge({ name: s.name, help: s.help, labelNames, registers: [registry] }),
  }));
  return {
    all: metrics.map((m) => m.metric),
    record(labels, st) {
      for (const { field, metric } of metrics) {
        const value = st[field];
        if (typeof value !== 'number' || !Number.isFinite(value)) continue;
        // Counters are reset before every refresh, so inc() by the cumulative value sets it.
        if (metric instanceof Counter) metric.inc(labels, Math.max(0, value));
        else metric.set(labels, value);
      }
    },
  };
}
