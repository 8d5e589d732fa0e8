/**
 * Per-container metrics with cAdvisor's names and label conventions, read from the runtime on
 * every scrape. Gauges are reset before each refresh so a removed container's series vanish.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Runtime } from '../runtime/runtime.js';
import { LABEL_IMAGE, LABEL_NAMESPACE, LABEL_SERVICE, LABEL_TASK } from '../reconciler/spec.js';
import { createCgroupSeries } from './cgroup-metrics.js';
import { createNetworkSeries, readContainerInterfaces } from './network-metrics.js';

const CONTAINER_LABELS = ['id', 'name', 'namespace', 'service', 'task', 'node', 'image'] as const;

/** AgentMetricsOptions names the node and the cgroup parent used to build cAdvisor `id` labels. */
export interface AgentMetricsOptions {
  runtime: Runtime;
  nodeName: string;
  cgroupParent: string;
}

/** AgentMetrics owns the agent's registry (never prom-client's global one). */
export interface AgentMetrics {
  readonly registry: Registry;
  /** sessionConnected is 1 while the session to the control plane is registered. */
  readonly sessionConnected: Gauge;
  /** render refreshes container series and returns the exposition text. */
  render(): Promise<string>;
}

/** createAgentMetrics builds the registry with container, self and process metrics. */
export function createAgentMetrics(opts: AgentMetricsOptions): AgentMetrics {
  const registry = new Registry();
  const labelNames = [...CONTAINER_LABELS];
  const cpu = new Counter({ name: 'container_cpu_usage_seconds_total', help: 'Cumulative cpu time consumed in seconds.', labelNames, registers: [registry] });
  const mem = new Gauge({ name: 'container_memory_usage_bytes', help: 'Current memory usage in bytes, including all memory regardless of when it was accessed.', labelNames, registers: [registry] });
  const ws = new Gauge({ name: 'container_memory_working_set_bytes', help: 'Current working set in bytes.', labelNames, registers: [registry] });
  const limit = new Gauge({ name: 'container_spec_memory_limit_bytes', help: 'Memory limit for the container (0: unlimited).', labelNames, registers: [registry] });
  const start = new Gauge({ name: 'container_start_time_seconds', help: 'Start time of the container since unix epoch in seconds.', labelNames, registers: [registry] });
  const pids = new Gauge({ name: 'container_processes', help: 'Number of processes running inside the container.', labelNames, registers: [registry] });
  const containers = new Gauge({ name: 'berth_agent_containers', help: 'Containers known to the runtime on this node, by state.', labelNames: ['state'], registers: [registry] });
  const sessionConnected = new Gauge({ name: 'berth_agent_session_connected', help: '1 while the agent holds a registered session with the control plane.', registers: [registry] });
  collectDefaultMetrics({ register: registry, prefix: 'berth_agent_' });
  const parent = opts.cgroupParent.replace(/^\/+|\/+$/g, '');
  const cgroupSeries = createCgroupSeries(registry, labelNames);
  const networkSeries = createNetworkSeries(registry, labelNames);
  const perContainer = [cpu, mem, ws, limit, start, pids, ...cgroupSeries.all, ...networkSeries.all];

  const refresh = async (): Promise<void> => {
    const states = await opts.runtime.list();
    const stats = await Promise.all(states.map((s) => (s.status === 'running' ? opts.runtime.stats(s.id).catch(() => undefined) : undefined)));
    const interfaces = await Promise.all(states.map((s) => (s.status === 'running' ? readContainerInterfaces(s.pid) : [])));
    for (const m of perContainer) m.reset();
    containers.reset();
    containers.set({ state: 'running' }, states.filter((s) => s.status === 'running').length);
    containers.set({ state: 'exited' }, states.filter((s) => s.status === 'exited').length);
    states.forEach((s, i) => {
      const st = stats[i];
      if (!st) return;
      const labels = {
        id: `/${parent}/${s.id}`,
        name: s.id,
        namespace: s.labels[LABEL_NAMESPACE] ?? '',
        service: s.labels[LABEL_SERVICE] ?? '',
        task: s.labels[LABEL_TASK] ?? '',
        node: opts.nodeName,
        image: s.labels[LABEL_IMAGE] ?? '',
      };
      cpu.inc(labels, Math.max(0, st.cpuUsageSeconds));
      mem.set(labels, st.memoryUsageBytes);
      ws.set(labels, st.memoryWorkingSetBytes);
      limit.set(labels, st.memoryLimitBytes);
      pids.set(labels, st.pids);
      cgroupSeries.record(labels, st);
      networkSeries.record(labels, interfaces[i] ?? []);
      const startedMs = Date.parse(s.startedAt);
      if (Number.isFinite(startedMs)) start.set(labels, startedMs / 1000);
    });
  };

  // Concurrent scrapes share one refresh so they never interleave resets and sets.
  let pending: Promise<string> | undefined;
  const render = (): Promise<string> => {
    pending ??= refresh().then(() => registry.metrics()).finally(() => { pending = undefined; });
    return pending;
  };
  return { registry, sessionConnected, render };
}
