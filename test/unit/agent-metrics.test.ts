import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerState, ContainerStats, Runtime } from '../../agent/runtime/runtime.js';
import { createAgentMetrics, startMetricsServer } from '../../agent/metrics/index.js';
import { silentLogger } from '../../common/log.js';

const containers = new Map<string, ContainerState>();
const runtime: Runtime = {
  cgroupVersion: 'v1',
  run: async () => { throw new Error('unused'); },
  state: async (id) => containers.get(id),
  list: async () => [...containers.values()],
  stop: async () => undefined,
  remove: async (id) => { containers.delete(id); },
  stats: async (id): Promise<ContainerStats | undefined> => (containers.get(id)?.status === 'running'
    ? { cpuUsageSeconds: 1.5, memoryUsageBytes: 4096, memoryWorkingSetBytes: 2048, memoryLimitBytes: 67108864, pids: 1 } : undefined),
};
const labels = { 'berth.namespace': 'default', 'berth.service': 'web', 'berth.task': 'web-1', 'berth.uid': 'u1', 'berth.image': 'oci:/seed/busybox:1.36' };
containers.set('u1', { id: 'u1', status: 'running', pid: 10, shimPid: 9, startedAt: '2024-01-01T00:00:00.000Z', labels, logPath: '' });

test('/metrics shows cAdvisor-named series per running container and drops them once removed', async () => {
  const metrics = createAgentMetrics({ runtime, nodeName: 'node-a', cgroupParent: 'berth/node-a' });
  const server = await startMetricsServer(metrics, '127.0.0.1', 0, silentLogger);
  after(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/metrics`;
  const text = await (await fetch(url)).text();
  const series = '{id="/berth/node-a/u1",name="u1",namespace="default",service="web",task="web-1",node="node-a",image="oci:/seed/busybox:1.36"}';
  for (const line of [
    `container_cpu_usage_seconds_total${series} 1.5`,
    `container_memory_usage_bytes${series} 4096`,
    `container_memory_working_set_bytes${series} 2048`,
    `container_spec_memory_limit_bytes${series} 67108864`,
    `container_start_time_seconds${series} 1704067200`,
    'berth_agent_containers{state="running"} 1',
  ]) assert.ok(text.includes(line), `expected line ${line}`);
  assert.match(text, /# TYPE container_cpu_usage_seconds_total counter/);
  assert.match(text, /berth_agent_process_cpu_seconds_total/);
  containers.clear();
  const after2 = await (await fetch(url)).text();
  assert.doesNotMatch(after2, /container_memory_working_set_bytes\{/);
  assert.equal((await fetch(url.replace('/metrics', '/other'))).status, 404);
});
