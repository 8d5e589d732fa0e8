/**
 * `berth logs` end to end on an HA local cluster (two control-plane replicas on a 3-member etcd,
 * two hosts): follow with the latency from the container's write to the CLI printed, --tail,
 * a followed service picking up a task created after it started, --previous after a restart,
 * and logs and exec (one-shot and with stdin) through the replica that does not hold the node's
 * agent session (relay).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import type { Task } from '../../control-plane/objects/types.js';
import { ROOT_PREFIX } from '../../control-plane/store/keys.js';
import type { NodeLease } from '../../control-plane/store/informers.js';
import { REPO_ROOT, berth, berthJson, cliEnv, localCluster, useConfigFor, waitFor } from '../support/cluster.js';
import { SEED_ARCHIVE, ensureSeedImage } from '../support/images.js';
import type { ChaosStatus } from '../chaos/cluster.js';

const CLUSTER = `lg${process.pid % 10000}`;
const TICKER = 'ticker';
const CRASHER = 'crasher';

function serviceYaml(name: string, replicas: number, script: string): string {
  return `kind: Service
metadata: { name: ${name} }
spec:
  replicas: ${replicas}
  template:
    image: oci-archive:${SEED_ARCHIVE}
    command: ["sh", "-c", ${JSON.stringify(script)}]
    resources: { cpu: 0.05, memory: 16Mi, pids: 16 }
    restart: { policy: always, backoffSeconds: 1, maxBackoffSeconds: 2 }
`;
}

/** follower runs `berth ARGS` in the background, collecting stdout lines with their arrival times. */
function follower(server: string, args: string[]): { child: ChildProcess; lines: { at: number; text: string }[]; stderr: () => string } {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'control-plane', 'cli', 'main.js'), ...args], { env: cliEnv(server), stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: { at: number; text: string }[] = [];
  let rest = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => {
    const at = Date.now();
    rest += b.toString();
    for (let i = rest.indexOf('\n'); i >= 0; i = rest.indexOf('\n')) {
      lines.push({ at, text: rest.slice(0, i) });
      rest = rest.slice(i + 1);
    }
  });
  child.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
  return { child, lines, stderr: () => err };
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

describe('berth logs on an HA local cluster', () => {
  let status: ChaosStatus;
  let server = '';
  const children: ChildProcess[] = [];
  let etcd: Etcd3 | undefined;

  const tasks = (service: string): Task[] => berthJson<Task[]>(server, ['get', 'tasks', '--service', service]);
  const runningTask = (service: string): Promise<Task> => waitFor(() => tasks(service).find((t) => t.status.phase === 'running' && t.status.containerId),
    60_000, () => `a running task of ${service}: ${JSON.stringify(tasks(service).map((t) => [t.metadata.name, t.status.phase]))}`);

  before(async () => {
    ensureSeedImage();
    localCluster(['down', '--name', CLUSTER]);
    const up = localCluster(['up', '--name', CLUSTER, '--hosts', '2', '--control-planes', '2', '--etcd-members', '3'], 240_000);
    assert.equal(up.code, 0, `local-cluster up failed:\n${up.stdout}\n${up.stderr}`);
    status = JSON.parse(localCluster(['status', '--name', CLUSTER]).stdout) as ChaosStatus;
    for (const cp of status.controlPlanes) useConfigFor(cp.server, status.config);
    server = status.controlPlanes[0]!.server;
    const apply = berth(server, ['apply', '-f', '-'], serviceYaml(TICKER, 1, 'i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.5; done'));
    assert.equal(apply.code, 0, apply.stderr);
  });

  after(async () => {
    for (const c of children) await stop(c);
    etcd?.close();
    const down = localCluster(['down', '--name', CLUSTER]);
    assert.equal(down.code, 0, `local-cluster down failed: ${down.stderr}`);
  });

  test('logs -f shows lines written after it started, each within a fraction of a second (latency printed)', async () => {
    const task = await runningTask(TICKER);
    const f = follower(server, ['logs', '-f', '--timestamps', task.metadata.name]);
    children.push(f.child);
    await waitFor(() => f.lines[0], 30_000, () => `the log so far; stderr ${f.stderr()}`);
    // Lines written after the first output arrived were written while the stream was open.
    const fresh = () => f.lines.filter((l) => Date.parse(l.text.slice(0, l.text.indexOf(' '))) > f.lines[0]!.at);
    await waitFor(() => (fresh().length >= 6 ? true : undefined), 30_000, () => `6 lines written after the start; saw ${JSON.stringify(f.lines.slice(-5))} stderr ${f.stderr()}`);
    const latencies = fresh().map((l) => l.at - Date.parse(l.text.slice(0, l.text.indexOf(' ')))).sort((a, b) => a - b);
    for (const l of fresh()) assert.match(l.text, /^\d{4}-\d\d-\d\dT\S+Z tick-\d+$/);
    process.stdout.write(`# logs -f latency (write in the container -> CLI), ms: p50 ${latencies[Math.floor(latencies.length / 2)]} max ${latencies.at(-1)} over ${latencies.length} lines\n`);
    await stop(f.child);
  });

  test('logs --tail N prints the last N lines and ends', async () => {
    const task = await runningTask(TICKER);
    const r = berth(server, ['logs', '--tail', '3', task.metadata.name]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 3, `expected 3 lines, saw ${JSON.stringify(lines)}`);
    const n = lines.map((l) => Number(/^tick-(\d+)$/.exec(l)?.[1]));
    assert.deepEqual(n, [n[0], n[0]! + 1, n[0]! + 2], `three consecutive ticks, saw ${JSON.stringify(lines)}`);
    const missing = berth(server, ['logs', 'no-such-task']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /not found/);
  });

  test('logs -f service/NAME prefixes each line with its task and picks up a task created after it started', async () => {
    const first = await runningTask(TICKER);
    const f = follower(server, ['logs', '-f', '--tail', '1', `service/${TICKER}`]);
    children.push(f.child);
    await waitFor(() => (f.lines.some((l) => l.text.startsWith(`[${first.metadata.name}] tick-`)) ? true : undefined), 30_000,
      () => `a prefixed line of ${first.metadata.name}; saw ${JSON.stringify(f.lines.slice(-3))} stderr ${f.stderr()}`);
    assert.equal(berth(server, ['scale', TICKER, '2']).code, 0);
    const second = await waitFor(() => tasks(TICKER).find((t) => t.metadata.name !== first.metadata.name && t.status.phase === 'running'), 60_000, () => 'a second running task');
    await waitFor(() => (f.lines.some((l) => l.text.startsWith(`[${second.metadata.name}] tick-`)) ? true : undefined), 30_000,
      () => `a line of the new task ${second.metadata.name}; saw ${JSON.stringify(f.lines.slice(-3))} stderr ${f.stderr()}`);
    for (const l of f.lines) assert.match(l.text, /^\[[a-z0-9-]+\] tick-\d+$/, `every line prefixed, saw ${l.text}`);
    await stop(f.child);
    assert.equal(berth(server, ['scale', TICKER, '1']).code, 0);
  });

  test('logs --previous shows the run before the last in-place restart', async () => {
    assert.equal(berth(server, ['apply', '-f', '-'], serviceYaml(CRASHER, 1, 'echo run-started; sleep 1; exit 3')).code, 0);
    const task = await waitFor(() => tasks(CRASHER).find((t) => (t.status.restarts ?? 0) >= 1 && t.status.containerId), 60_000, () => `a restarted ${CRASHER} task`);
    const r = berth(server, ['logs', '--previous', task.metadata.name]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'run-started\n');
    assert.equal(berth(server, ['delete', 'service', CRASHER]).code, 0);
  });

  test('logs and exec work through the replica that does not hold the node\'s agent session', async () => {
    const task = await runningTask(TICKER);
    etcd = new Etcd3({ hosts: status.etcd.split(',') });
    const lease = JSON.parse((await etcd.get(`${ROOT_PREFIX}leases/nodes/${task.spec.nodeName}`).string()) ?? '{}') as NodeLease;
    assert.ok(lease.relay, `the node lease names the holding replica's relay: ${JSON.stringify(lease)}`);
    const holder = status.controlPlanes.find((cp) => cp.gateway === lease.relay);
    const other = status.controlPlanes.find((cp) => cp.gateway !== lease.relay);
    assert.ok(holder && other, `one replica holds the session (${lease.relay}), the other does not: ${JSON.stringify(status.controlPlanes.map((c) => c.gateway))}`);
    const logs = berth(other.server, ['logs', '--tail', '2', task.metadata.name]);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /^tick-\d+\ntick-\d+\n$/);
    const f = follower(other.server, ['logs', '-f', '--tail', '0', task.metadata.name]);
    children.push(f.child);
    await waitFor(() => (f.lines.length >= 2 ? true : undefined), 30_000, () => `followed lines through the relay; stderr ${f.stderr()}`);
    await stop(f.child);
    const exec = berth(other.server, ['exec', task.metadata.name, '--', 'sh', '-c', 'echo via-relay; exit 4']);
    assert.equal(exec.stdout, 'via-relay\n', exec.stderr);
    assert.equal(exec.code, 4);
    // The streaming exec rides the relay too: stdin goes in through it, the output and exit code come back.
    const piped = berth(other.server, ['exec', '-i', task.metadata.name, '--', 'sh', '-c', 'cat; exit 6'], 'stdin through the relay\n');
    assert.equal(piped.stdout, 'stdin through the relay\n', piped.stderr);
    assert.equal(piped.code, 6);
  });
});
