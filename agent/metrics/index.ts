/** The agent's Prometheus metrics: per-container series and the endpoint that serves them. */
export { createAgentMetrics, type AgentMetrics, type AgentMetricsOptions } from './container-metrics.js';
export { parseListen, startMetricsServer } from './server.js';
