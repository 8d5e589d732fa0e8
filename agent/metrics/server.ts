/** The agent's metrics endpoint: GET /metrics on plain node:http. */
import { createServer, type Server } from 'node:http';
import type { AgentMetrics } from './container-metrics.js';
import type { Logger } from '../../common/log.js';

/** parseListen splits "ADDR:PORT" (IPv6 as "[::]:PORT") into host and port. */
export function parseListen(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`invalid listen address ${JSON.stringify(s)} (want ADDR:PORT)`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** startMetricsServer listens on host:port and resolves once bound (port 0 picks a free port). */
export async function startMetricsServer(metrics: AgentMetrics, host: string, port: number, log: Logger): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try GET /metrics\n');
      return;
    }
    metrics.render().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (err: unknown) => {
        log.error('metrics scrape failed', { error: err instanceof Error ? err.message : String(err) });
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  return server;
}
