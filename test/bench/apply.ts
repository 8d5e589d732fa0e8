/**
 * The `apply` benchmark: on its own 3-host local cluster, how long from `berth apply` to all N
 * replicas running, and from `berth delete` to all tasks gone. Progress is read from the REST
 * API every 50 ms (not through the CLI, whose start-up would blur the figures); the CLI's own
 * latency is reported beside it. Both authenticate as the cluster's admin (its config file).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Task } from '../../control-plane/objects/types.js';
import { cliEnv, clusterStatus, localCluster, REPO_ROOT } from '../support/cluster.js';
import { ensureSeedImage, SEED_ARCHIVE } from '../support/images.js';
import { apiJson, type SecureTarget } from '../support/secure.js';
import { fmt, FlagError, nowMs, parseFlags, positiveInt, round, table, type Bench } from './report.js';

/** CLUSTER_NAME is the bench's own local cluster; an existing one of that name makes `up` refuse. */
const CLUSTER_NAME = 'bench';
const HOSTS = 3;
const DEFAULT_REPLICAS = [6, 30, 60];
/** POLL_MS is how often the API is read while waiting. */
const POLL_MS = 50;
/** RUNNING_TIMEOUT_MS / GONE_TIMEOUT_MS bound each wait; 60 replicas on 2 cores take seconds, not minutes. */
const RUNNING_TIMEOUT_MS = 300_000;
const GONE_TIMEOUT_MS = 300_000;
/** WARMUP_REPLICAS (one per host under spread) makes every agent unpack the image before timing. */
const WARMUP_REPLICAS = HOSTS;
/** COMMAND exits on SIGTERM; busybox sh runs the trap only once its `sleep 1` child returns (≤ 1 s). */
const COMMAND = ['sh', '-c', "trap 'exit 0' TERM; while :; do sleep 1; done"];
const CLI = join(REPO_ROOT, 'dist', 'control-plane', 'cli', 'main.js');

interface Result {
  replicas: number;
  applyCliMs: number;
  applyToRunningMs: number;
  deleteCliMs: number;
  deleteToGoneMs: number;
}

function serviceDoc(name: string, replicas: number): string {
  return JSON.stringify({
    kind: 'Service',
    metadata: { name, labels: { bench: 'apply' } },
    spec: {
      replicas,
      template: { image: `oci-archive:${SEED_ARCHIVE}`, command: COMMAND, resources: { cpu: 0.01, memory: '16Mi' } },
    },
  });
}

/** cli runs the berth CLI as the cluster's admin asynchronously and resolves with its exit code and the monotonic time it exited. */
function cli(target: SecureTarget, args: string[], input?: string): Promise<{ code: number; stderr: string; exitAt: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['pipe', 'ignore', 'pipe'], env: cliEnv(target.apiUrl), // the admin config clusterStatus() registered
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stderr, exitAt: nowMs() });
    });
    child.stdin.end(input ?? '');
  });
}

async function listTasks(target: SecureTarget, service: string): Promise<Task[]> {
  const r = await apiJson<{ items: Task[] }>(target, 'GET', `/v1/namespaces/default/tasks?service=${encodeURIComponent(service)}`);
  if (r.status !== 200) throw new Error(`GET tasks of ${service}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.items;
}

/** waitUntil polls the task list every POLL_MS and returns the monotonic time done() first held. */
async function waitUntil(target: SecureTarget, service: string, timeoutMs: number, done: (tasks: Task[]) => boolean,
  describe: (tasks: Task[]) => string): Promise<number> {
  const deadline = nowMs() + timeoutMs;
  for (;;) {
    const tasks = await listTasks(target, service);
    if (done(tasks)) return nowMs();
    if (nowMs() > deadline) throw new Error(`service ${service}: timed out after ${timeoutMs} ms: ${describe(tasks)}`);
    await sleep(POLL_MS);
  }
}

function phases(tasks: Task[]): string {
  const count = new Map<string, number>();
  for (const t of tasks) count.set(t.status.phase, (count.get(t.status.phase) ?? 0) + 1);
  return `${tasks.length} task(s): ${[...count].map(([p, n]) => `${p}=${n}`).join(', ') || 'none'}`;
}

function allRunning(replicas: number): (tasks: Task[]) => boolean {
  return (tasks) => {
    const running = tasks.filter((t) => t.spec.desiredState === 'running' && t.status.phase === 'running');
    return running.length === replicas;
  };
}

async function applyAndDelete(target: SecureTarget, name: string, replicas: number): Promise<Result> {
  const t0 = nowMs();
  const applying = cli(target, ['apply', '-f', '-'], serviceDoc(name, replicas));
  const runningAt = await waitUntil(target, name, RUNNING_TIMEOUT_MS, allRunning(replicas), phases);
  const applied = await applying;
  if (applied.code !== 0) throw new Error(`berth apply ${name} exited ${applied.code}: ${applied.stderr.trim()}`);

  const t1 = nowMs();
  const deleting = cli(target, ['delete', 'service', name]);
  const goneAt = await waitUntil(target, name, GONE_TIMEOUT_MS, (tasks) => tasks.length === 0, phases);
  const deleted = await deleting;
  if (deleted.code !== 0) throw new Error(`berth delete service ${name} exited ${deleted.code}: ${deleted.stderr.trim()}`);
  return {
    replicas,
    applyCliMs: applied.exitAt - t0,
    applyToRunningMs: runningAt - t0,
    deleteCliMs: deleted.exitAt - t1,
    deleteToGoneMs: goneAt - t1,
  };
}

function parseReplicas(value: string): number[] {
  const list = value.split(',').map((v) => positiveInt('replicas', v.trim()));
  if (list.length === 0) throw new FlagError('--replicas needs at least one count');
  return list;
}

async function measure(replicaCounts: number[]): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the apply bench needs root (it brings up a local cluster)');
  ensureSeedImage();
  process.stdout.write(`apply bench: local cluster "${CLUSTER_NAME}" with ${HOSTS} hosts; replicas ${replicaCounts.join(', ')}\n`);
  const upStart = nowMs();
  const up = localCluster(['up', '--hosts', String(HOSTS), '--name', CLUSTER_NAME], 240_000);
  try {
    if (up.code !== 0) {
      throw new Error(`local-cluster up --name ${CLUSTER_NAME} exited ${up.code}` +
        ` (an existing "${CLUSTER_NAME}" cluster makes it refuse): ${up.stderr.trim().slice(-2000)}`);
    }
    const status = clusterStatus(CLUSTER_NAME);
    const target: SecureTarget = { apiUrl: status.server, adminConfig: status.config };
    process.stdout.write(`cluster up in ${fmt((nowMs() - upStart) / 1000, 1)} s; API ${status.server}\n`);
    await applyAndDelete(target, 'bench-warmup', WARMUP_REPLICAS);
    process.stdout.write(`warm-up (${WARMUP_REPLICAS} replicas, image unpacked on each agent) done\n`);
    const results: Result[] = [];
    for (const n of replicaCounts) {
      const r = await applyAndDelete(target, `bench-r${n}`, n);
      results.push(r);
      process.stdout.write(`  ${n} replicas: running after ${fmt(r.applyToRunningMs / 1000, 3)} s, gone ${fmt(r.deleteToGoneMs / 1000, 3)} s after delete\n`);
    }
    report(results);
  } finally {
    const down = localCluster(['down', '--name', CLUSTER_NAME], 240_000);
    if (down.code !== 0) process.stderr.write(`local-cluster down --name ${CLUSTER_NAME} exited ${down.code}: ${down.stderr}\n`);
  }
}

function report(results: Result[]): void {
  const header = ['replicas', 'apply CLI (s)', 'apply → all running (s)', 'delete CLI (s)', 'delete → all gone (s)'];
  const rows = results.map((r) => [String(r.replicas), fmt(r.applyCliMs / 1000, 3), fmt(r.applyToRunningMs / 1000, 3),
    fmt(r.deleteCliMs / 1000, 3), fmt(r.deleteToGoneMs / 1000, 3)]);
  process.stdout.write('\n' + table(header, rows) + '\n\n');
  process.stdout.write(`polled GET /v1/namespaces/default/tasks every ${POLL_MS} ms (figures are ≤ ${POLL_MS} ms + one request late).\n`);
  process.stdout.write('tasks run `sh -c "trap \'exit 0\' TERM; while :; do sleep 1; done"`: busybox sh runs the trap only after its\n' +
    'current `sleep 1` child returns, so each stop takes up to 1 s instead of the agent\'s 10 s SIGKILL grace.\n\n');
  process.stdout.write(JSON.stringify({
    bench: 'apply',
    hosts: HOSTS,
    results: results.map((r) => ({
      replicas: r.replicas,
      apply_to_running_s: round(r.applyToRunningMs / 1000, 3),
      delete_to_gone_s: round(r.deleteToGoneMs / 1000, 3),
      apply_cli_s: round(r.applyCliMs / 1000, 3),
      delete_cli_s: round(r.deleteCliMs / 1000, 3),
    })),
  }) + '\n');
}

/** applyBench is registered in run.ts as `apply`. */
export const applyBench: Bench = {
  name: 'apply',
  summary: 'apply N busybox replicas on a 3-host local cluster: time to all running, delete to all gone (needs root)',
  usage: 'npm run bench -- apply [--replicas 6,30,60]',
  async run(args) {
    const flags = parseFlags(args, ['replicas']);
    await measure(flags.has('replicas') ? parseReplicas(flags.get('replicas')!) : DEFAULT_REPLICAS);
  },
};
