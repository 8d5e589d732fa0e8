/**
 * The `density` benchmark: N `sleep` containers started concurrently on ONE real agent (a 1-host
 * local cluster). It measures apply → all N running, the memory the per-container shims and the
 * agent hold while they run, and delete → every task and shim gone. The runtime bench calls it
 * too (issue 3 asks for these figures beside the start-to-exit latencies).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Task } from '../../control-plane/objects/types.js';
import { clusterStatus, localCluster, REPO_ROOT, type ClusterHost } from '../support/cluster.js';
import { ensureSeedImage, SEED_ARCHIVE } from '../support/images.js';
import { apiFetch, type SecureTarget } from '../support/secure.js';
import { fmt, nowMs, parseFlags, positiveInt, round, table, type Bench } from './report.js';

/** CLUSTER_NAME is the bench's own local cluster; an existing one of that name makes `up` refuse. */
const CLUSTER_NAME = 'density';
/** DEFAULT_CONTAINERS is issue 3's density figure. */
export const DEFAULT_CONTAINERS = 300;
/** POLL_MS is how often the API is read while waiting (figures are up to one poll late). */
const POLL_MS = 100;
/** RUNNING_TIMEOUT_MS / GONE_TIMEOUT_MS bound each wait; 300 containers on 2 cores take tens of seconds. */
const RUNNING_TIMEOUT_MS = 600_000;
const GONE_TIMEOUT_MS = 600_000;
/** PROGRESS_EVERY_MS spaces the progress lines printed while waiting. */
const PROGRESS_EVERY_MS = 5_000;
/** CLUSTER_TIMEOUT_MS bounds `local-cluster up` and `down`. */
const CLUSTER_TIMEOUT_MS = 240_000;
/** SHIM_PATH is the binary whose processes are counted as shims. */
const SHIM_PATH = join(REPO_ROOT, 'native', 'build', 'Release', 'berth-shim');
const SERVICE = 'density';
const WARMUP_SERVICE = 'density-warmup';
/** COMMAND is what issue 3 asks for; `sleep` as PID 1 ignores SIGTERM, so each stop waits the agent's grace then SIGKILLs. */
const COMMAND = ['sleep', '100000'];
/** WARMUP_COMMAND exits on SIGTERM (within its `sleep 1`), so the warm-up's delete costs ~1 s instead of the grace. */
const WARMUP_COMMAND = ['sh', '-c', "trap 'exit 0' TERM; while :; do sleep 1; done"];
/** RESOURCES are tiny so 300 fit the scheduler: 0.3 cores, 1.2 GiB, 2400 pids in all. */
const RESOURCES = { cpu: 0.001, memory: '4Mi', pids: 8 };

/** DensityResult is what one density run measured. */
export interface DensityResult {
  containers: number;
  secondsToRunning: number;
  secondsToGone: number;
  secondsToTasksGone: number;
  shimCount: number;
  shimRssKbTotal: number;
  /** shimPssKbTotal splits pages shared between shims (the binary, libc) fairly; undefined without smaps_rollup. */
  shimPssKbTotal: number | undefined;
  agentRssKb: number;
  agentRssPeakKb: number;
}

/** densityJson is the `density` object of the final JSON line (MiB/KiB/s as the field names say). */
export function densityJson(r: DensityResult): Record<string, number | null> {
  return {
    containers: r.containers,
    seconds_to_running: round(r.secondsToRunning, 3),
    shim_rss_mb_total: round(r.shimRssKbTotal / 1024),
    shim_rss_kb_avg: round(r.shimRssKbTotal / Math.max(1, r.shimCount), 1),
    shim_pss_mb_total: r.shimPssKbTotal === undefined ? null : round(r.shimPssKbTotal / 1024),
    shims: r.shimCount,
    agent_rss_mb: round(r.agentRssKb / 1024),
    agent_rss_peak_mb: round(r.agentRssPeakKb / 1024),
    seconds_to_gone: round(r.secondsToGone, 3),
    seconds_to_tasks_gone: round(r.secondsToTasksGone, 3),
  };
}

/** printDensity prints the human table of one density run. */
export function printDensity(r: DensityResult): void {
  const rows = [
    ['containers (sleep 100000)', String(r.containers)],
    ['apply → all running (s)', fmt(r.secondsToRunning, 3)],
    [`shims counted (${SHIM_PATH.slice(REPO_ROOT.length + 1)})`, String(r.shimCount)],
    ['shim RSS total (MiB)', fmt(r.shimRssKbTotal / 1024)],
    ['shim RSS average (KiB)', fmt(r.shimRssKbTotal / Math.max(1, r.shimCount), 1)],
    ['shim PSS total (MiB, shared pages split)', r.shimPssKbTotal === undefined ? 'n/a' : fmt(r.shimPssKbTotal / 1024)],
    ['agent RSS (MiB) / peak VmHWM (MiB)', `${fmt(r.agentRssKb / 1024)} / ${fmt(r.agentRssPeakKb / 1024)}`],
    ['delete → task list empty (s)', fmt(r.secondsToTasksGone, 3)],
    ['delete → tasks and shims gone (s)', fmt(r.secondsToGone, 3)],
  ];
  process.stdout.write('\n' + table(['density', 'value'], rows) + '\n\n');
  process.stdout.write(`polled GET /v1/namespaces/default/tasks every ${POLL_MS} ms; RSS is VmRSS from /proc/PID/status while all ran.\n` +
    '`sleep` as PID 1 ignores SIGTERM: each stop waits the agent\'s grace period, then SIGKILL; that is most of "delete → gone".\n\n');
}

function serviceDoc(name: string, replicas: number, command: string[]): string {
  return JSON.stringify({
    kind: 'Service',
    metadata: { name, labels: { bench: 'density' } },
    spec: { replicas, template: { image: `oci-archive:${SEED_ARCHIVE}`, command, resources: RESOURCES } },
  });
}

/** api sends one request to the cluster's API as its admin; a non-2xx throws with the answer. */
async function api(target: SecureTarget, method: string, path: string, body?: string): Promise<unknown> {
  const res = await apiFetch(target, method, path, body === undefined ? {} : { raw: body });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function listTasks(target: SecureTarget, service: string): Promise<Task[]> {
  const out = await api(target, 'GET', `/v1/namespaces/default/tasks?service=${encodeURIComponent(service)}`);
  return (out as { items: Task[] }).items;
}

/** describeTasks counts phases and quotes a few distinct task messages (the scheduler says why it refuses). */
function describeTasks(tasks: Task[]): string {
  const count = new Map<string, number>();
  const messages = new Set<string>();
  for (const t of tasks) {
    count.set(t.status.phase, (count.get(t.status.phase) ?? 0) + 1);
    if (t.status.message && messages.size < 3) messages.add(t.status.message);
  }
  const phases = [...count].map(([p, n]) => `${p}=${n}`).join(', ') || 'none';
  return `${tasks.length} task(s): ${phases}${messages.size ? `; messages: ${[...messages].join(' | ')}` : ''}`;
}

function runningCount(tasks: Task[]): number {
  return tasks.filter((t) => t.spec.desiredState === 'running' && t.status.phase === 'running').length;
}

/** waitUntil polls the service's tasks every POLL_MS until done() holds; returns the monotonic time it first held. */
async function waitUntil(target: SecureTarget, service: string, timeoutMs: number, what: string,
  done: (tasks: Task[]) => Promise<boolean> | boolean): Promise<number> {
  const start = nowMs();
  let nextProgress = start + PROGRESS_EVERY_MS;
  for (;;) {
    const tasks = await listTasks(target, service);
    if (await done(tasks)) return nowMs();
    const now = nowMs();
    if (now - start > timeoutMs) throw new Error(`service ${service}: not ${what} after ${timeoutMs} ms: ${describeTasks(tasks)}`);
    if (now >= nextProgress) {
      process.stdout.write(`  ${fmt((now - start) / 1000, 1)} s: waiting for ${what}: ${describeTasks(tasks)}\n`);
      nextProgress += PROGRESS_EVERY_MS;
    }
    await sleep(POLL_MS);
  }
}

/** statusKb reads one `Field:  N kB` line of /proc/PID/status; undefined when the process is gone. */
async function statusKb(pid: number, field: string): Promise<number | undefined> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  const m = text === undefined ? null : new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

async function pssKb(pid: number): Promise<number | undefined> {
  const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => undefined);
  const m = text === undefined ? null : /^Pss:\s+(\d+) kB$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** clusterShimPids lists processes whose argv[0] is the shim binary and whose command line names stateDir. */
export async function clusterShimPids(stateDir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const argv = cmdline.split('\0');
    if (argv[0] === SHIM_PATH && cmdline.includes(stateDir)) pids.push(Number(entry));
  }
  return pids;
}

interface ShimMemory {
  count: number;
  rssKb: number;
  pssKb: number | undefined;
}

async function shimMemory(stateDir: string): Promise<ShimMemory> {
  let count = 0;
  let rssKb = 0;
  let pss: number | undefined = 0;
  for (const pid of await clusterShimPids(stateDir)) {
    const rss = await statusKb(pid, 'VmRSS');
    if (rss === undefined) continue;
    count++;
    rssKb += rss;
    const p = await pssKb(pid);
    pss = p === undefined || pss === undefined ? undefined : pss + p;
  }
  return { count, rssKb, pssKb: pss };
}

async function agentMemory(host: ClusterHost): Promise<{ rssKb: number; peakKb: number }> {
  const cmdline = await readFile(`/proc/${host.agentPid}/cmdline`, 'utf8').catch(() => '');
  if (!cmdline.includes('agent/main.js')) throw new Error(`pid ${host.agentPid} is not the agent of ${host.node}: ${JSON.stringify(cmdline)}`);
  const rssKb = await statusKb(host.agentPid, 'VmRSS');
  const peakKb = await statusKb(host.agentPid, 'VmHWM');
  if (rssKb === undefined || peakKb === undefined) throw new Error(`agent pid ${host.agentPid} has no VmRSS/VmHWM`);
  return { rssKb, peakKb };
}

/** warmUp runs and deletes one untimed replica so the agent has unpacked the image before timing. */
async function warmUp(target: SecureTarget, stateDir: string): Promise<void> {
  const path = `/v1/namespaces/default/services/${WARMUP_SERVICE}`;
  await api(target, 'PUT', path, serviceDoc(WARMUP_SERVICE, 1, WARMUP_COMMAND));
  await waitUntil(target, WARMUP_SERVICE, RUNNING_TIMEOUT_MS, 'warm-up running', (tasks) => runningCount(tasks) === 1);
  await api(target, 'DELETE', path);
  await waitUntil(target, WARMUP_SERVICE, GONE_TIMEOUT_MS, 'warm-up gone',
    async (tasks) => tasks.length === 0 && (await clusterShimPids(stateDir)).length === 0);
}

async function densityOn(target: SecureTarget, host: ClusterHost, containers: number): Promise<DensityResult> {
  const path = `/v1/namespaces/default/services/${SERVICE}`;
  const t0 = nowMs();
  await api(target, 'PUT', path, serviceDoc(SERVICE, containers, COMMAND));
  const runningAt = await waitUntil(target, SERVICE, RUNNING_TIMEOUT_MS, `${containers} running`,
    (tasks) => runningCount(tasks) === containers);
  const shims = await shimMemory(host.stateDir);
  const agent = await agentMemory(host);
  process.stdout.write(`  all ${containers} running after ${fmt((runningAt - t0) / 1000, 3)} s; ${shims.count} shims\n`);

  const t1 = nowMs();
  await api(target, 'DELETE', path);
  let tasksGoneAt: number | undefined;
  const goneAt = await waitUntil(target, SERVICE, GONE_TIMEOUT_MS, 'all tasks and shims gone', async (tasks) => {
    if (tasks.length > 0) return false;
    tasksGoneAt ??= nowMs();
    return (await clusterShimPids(host.stateDir)).length === 0;
  });
  return {
    containers,
    secondsToRunning: (runningAt - t0) / 1000,
    secondsToGone: (goneAt - t1) / 1000,
    secondsToTasksGone: ((tasksGoneAt ?? goneAt) - t1) / 1000,
    shimCount: shims.count,
    shimRssKbTotal: shims.rssKb,
    shimPssKbTotal: shims.pssKb,
    agentRssKb: agent.rssKb,
    agentRssPeakKb: agent.peakKb,
  };
}

/** measureDensity brings up the 1-host cluster, measures, and always brings it down again. */
export async function measureDensity(containers: number): Promise<DensityResult> {
  if (process.getuid?.() !== 0) throw new Error('the density bench needs root (it brings up a local cluster)');
  ensureSeedImage();
  process.stdout.write(`density bench: ${containers} × ${JSON.stringify(COMMAND)} on local cluster "${CLUSTER_NAME}" (1 host); ` +
    `cpu ${RESOURCES.cpu}, memory ${RESOURCES.memory}, pids ${RESOURCES.pids} each\n`);
  const upStart = nowMs();
  const up = localCluster(['up', '--hosts', '1', '--name', CLUSTER_NAME], CLUSTER_TIMEOUT_MS);
  try {
    if (up.code !== 0) {
      throw new Error(`local-cluster up --name ${CLUSTER_NAME} exited ${up.code}` +
        ` (an existing "${CLUSTER_NAME}" cluster makes it refuse): ${up.stderr.trim().slice(-2000)}`);
    }
    const status = clusterStatus(CLUSTER_NAME);
    const host = status.hosts[0];
    if (!host || !host.agentPid) throw new Error(`cluster ${CLUSTER_NAME} has no running agent: ${JSON.stringify(status)}`);
    process.stdout.write(`cluster up in ${fmt((nowMs() - upStart) / 1000, 1)} s; API ${status.server}; agent pid ${host.agentPid}\n`);
    const target: SecureTarget = { apiUrl: status.server, adminConfig: status.config };
    await warmUp(target, host.stateDir);
    process.stdout.write('warm-up (1 replica, image unpacked on the agent) done\n');
    return await densityOn(target, host, containers);
  } finally {
    const down = localCluster(['down', '--name', CLUSTER_NAME], CLUSTER_TIMEOUT_MS);
    if (down.code !== 0) process.stderr.write(`local-cluster down --name ${CLUSTER_NAME} exited ${down.code}: ${down.stderr}\n`);
  }
}

/** densityBench is registered in run.ts as `density`; `runtime` runs it as well unless --no-density. */
export const densityBench: Bench = {
  name: 'density',
  summary: `N sleep containers on one agent: time to all running, shim and agent RSS, delete to gone (needs root)`,
  usage: `npm run bench -- density [--density N]   (default ${DEFAULT_CONTAINERS})`,
  async run(args) {
    const flags = parseFlags(args, ['density']);
    const n = flags.has('density') ? positiveInt('density', flags.get('density')!) : DEFAULT_CONTAINERS;
    const r = await measureDensity(n);
    printDensity(r);
    process.stdout.write(JSON.stringify({ bench: 'density', density: densityJson(r) }) + '\n');
  },
};
