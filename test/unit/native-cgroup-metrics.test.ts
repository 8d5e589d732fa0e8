import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createAgentMetrics } from '../../agent/metrics/index.js';
import type { ContainerState, ContainerStats, Runtime } from '../../agent/runtime/runtime.js';

const STATS: ContainerStats = {
  cpuUsageSeconds: 3, memoryUsageBytes: 4096, memoryWorkingSetBytes: 2048, memoryLimitBytes: 8192, pids: 2,
  cpuUserSeconds: 2, cpuSystemSeconds: 1, cfsPeriods: 40, cfsThrottledPeriods: 7, cfsThrottledSeconds: 0.5,
  memoryRssBytes: 3000, memoryCacheBytes: 1000, memorySwapLimitBytes: 8192, oomKills: 1,
  cpuQuotaUs: 50000, cpuPeriodUs: 100000, cpuShares: 512,
};

function runtimeWith(states: ContainerState[], stats: ContainerStats): Runtime {
  return {
    cgroupVersion: 'v1',
    run: async () => { throw new Error('unused'); },
    state: async (id) => states.find((s) => s.id === id),
    list: async () => states,
    stop: async () => undefined,
    remove: async () => undefined,
    stats: async (id) => (states.some((s) => s.id === id && s.status === 'running') ? stats : undefined),
  };
}

test('cgroup stats are exported under cAdvisor names with the container labels', async () => {
  const state: ContainerState = { id: 'c1', status: 'running', pid: 10, shimPid: 9, startedAt: '2024-01-01T00:00:00.000Z', labels: {}, logPath: '' };
  const metrics = createAgentMetrics({ runtime: runtimeWith([state], STATS), nodeName: 'n1', cgroupParent: 'berth' });
  const text = await metrics.render();
  const series = '{id="/berth/c1",name="c1",namespace="",service="",task="",node="n1",image=""}';
  for (const [name, value] of [
    ['container_cpu_user_seconds_total', 2], ['container_cpu_system_seconds_total', 1],
    ['container_cpu_cfs_periods_total', 40], ['container_cpu_cfs_throttled_periods_total', 7],
    ['container_cpu_cfs_throttled_seconds_total', 0.5], ['container_memory_rss', 3000], ['container_memory_cache', 1000],
    ['container_oom_events_total', 1], ['container_spec_cpu_quota', 50000], ['container_spec_cpu_period', 100000],
    ['container_spec_cpu_shares', 512], ['container_spec_memory_swap_limit_bytes', 8192],
  ] as const) {
    assert.ok(text.includes(`${name}${series} ${value}\n`), `expected ${name}${series} ${value}`);
  }
  assert.match(text, /# TYPE container_oom_events_total counter/);
  assert.match(text, /# TYPE container_memory_rss gauge/);
  // A second scrape must not double the counters (they are reset and re-set from cumulative stats).
  const again = await metrics.render();
  assert.ok(again.includes(`container_cpu_cfs_periods_total${series} 40\n`), 'counters are not accumulated across scrapes');
});

test('stats without the optional cgroup fields export only the base series', async () => {
  const state: ContainerState = { id: 'c2', status: 'running', pid: 10, shimPid: 9, startedAt: '2024-01-01T00:00:00.000Z', labels: {}, logPath: '' };
  const base: ContainerStats = { cpuUsageSeconds: 1, memoryUsageBytes: 1, memoryWorkingSetBytes: 1, memoryLimitBytes: 0, pids: 1 };
  const text = await createAgentMetrics({ runtime: runtimeWith([state], base), nodeName: 'n1', cgroupParent: 'berth' }).render();
  assert.match(text, /container_cpu_usage_seconds_total\{/);
  assert.doesNotMatch(text, /container_memory_rss\{/);
});
