/**
 * HTTP and TCP probes run inside the container's network namespace: a container may have no
 * routable address (`--network none`), and probing 127.0.0.1 in the container's own netns is what
 * a check means anyway ("is the server listening where the container expects it"). The agent
 * cannot setns one of its own threads, and images need not ship wget or nc (busybox's nc has no
 * -z), so the probe is `nsenter --net=/proc/PID/ns/net <this node binary> -e <script>`: image
 * independent, needs only util-linux's nsenter on the host, and costs one short node start-up
 * (measured on these machines: ~100 ms wall and ~40 ms of CPU per probe; at the default 10 s
 * interval that is 0.4% of a core per probed container). A long-lived helper per netns would be
 * cheaper; it is not worth its lifecycle until clusters probe hundreds of containers per node.
 */
import { spawn } from 'node:child_process';
import type { ProbeResult } from './probe-state.js';

/** NSENTER_PATH is util-linux's nsenter. */
export const NSENTER_PATH = '/usr/bin/nsenter';
/** PROBE_SPAWN_SLACK_MS is how long past the probe's own timeout the helper may take to start and exit. */
export const PROBE_SPAWN_SLACK_MS = 3_000;
/** PROBE_OUTPUT_MAX_BYTES caps what a probe helper may print. */
export const PROBE_OUTPUT_MAX_BYTES = 1024;

// The helper prints one line and exits 0 on success, 1 on failure. Any 2xx/3xx answer passes (Kubernetes).
const HTTP_SCRIPT = `
const [port, path, timeout] = process.argv.slice(1);
const req = require('http').get({ host: '127.0.0.1', port: Number(port), path, timeout: Number(timeout), headers: { 'user-agent': 'berth-probe' } }, (res) => {
  res.resume();
  const ok = res.statusCode >= 200 && res.statusCode < 400;
  process.stdout.write('HTTP ' + res.statusCode);
  process.exit(ok ? 0 : 1);
});
req.on('timeout', () => { process.stdout.write('timed out after ' + timeout + 'ms'); process.exit(1); });
req.on('error', (e) => { process.stdout.write(e.code || e.message); process.exit(1); });
`;
const TCP_SCRIPT = `
const [port, timeout] = process.argv.slice(1);
const s = require('net').connect({ host: '127.0.0.1', port: Number(port), timeout: Number(timeout) }, () => { process.stdout.write('connected'); process.exit(0); });
s.on('timeout', () => { process.stdout.write('timed out after ' + timeout + 'ms'); process.exit(1); });
s.on('error', (e) => { process.stdout.write(e.code || e.message); process.exit(1); });
`;

/** NetProbeTarget says where to probe: the container's init pid (for its netns) and the port. */
export interface NetProbeTarget {
  pid: number;
  port: number;
  timeoutMs: number;
}

/** httpProbe GETs http://127.0.0.1:port/path inside the container's netns; 2xx and 3xx pass. */
export function httpProbe(t: NetProbeTarget, path: string): Promise<ProbeResult> {
  return runHelper(t, HTTP_SCRIPT, [String(t.port), path.startsWith('/') ? path : `/${path}`, String(t.timeoutMs)],
    (msg) => `http :${t.port}${path}: ${msg}`);
}

/** tcpProbe connects to 127.0.0.1:port inside the container's netns. */
export function tcpProbe(t: NetProbeTarget): Promise<ProbeResult> {
  return runHelper(t, TCP_SCRIPT, [String(t.port), String(t.timeoutMs)], (msg) => `tcp :${t.port}: ${msg}`);
}

function runHelper(t: NetProbeTarget, script: string, args: string[], describe: (msg: string) => string): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const child = spawn(NSENTER_PATH, [`--net=/proc/${t.pid}/ns/net`, '--', process.execPath, '-e', script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {},
    });
    let out = '';
    const take = (b: Buffer): void => { if (out.length < PROBE_OUTPUT_MAX_BYTES) out += b.toString('utf8'); };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(() => child.kill('SIGKILL'), t.timeoutMs + PROBE_SPAWN_SLACK_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, message: describe(`cannot run ${NSENTER_PATH}: ${err.message}`) });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const msg = out.trim().split('\n')[0]?.slice(0, 200) || (signal ? `probe helper killed by ${signal}` : `probe helper exited ${code}`);
      resolve({ ok: code === 0, message: describe(msg) });
    });
  });
}
