/**
 * Agent kill -9 and restart with running containers: a real, secure control plane (in-process,
 * embedded etcd on its own ports) and a real agent process. The agent joins once with a join
 * token and keeps its key and certificate in <state-dir>/pki; the restarted agent comes back on
 * that certificate alone. Containers outlive the agent, the next agent re-adopts them without
 * starting new ones, exit codes are collected afterwards (pushed by the shims), a half-made
 * container left by a crash is swept at start, `berth exec` works end to end, and the new agent
 * stops the containers through their shims.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';

import { startControlPlane, type ControlPlane } from '../../control-plane/server.js';
import type { Task } from '../../control-plane/objects/types.js';
import { NativeRuntime } from '../../agent/runtime/native-runtime.js';
import { V1_CONTROLLERS } from '../../agent/runtime/cgroup-v1.js';
import { cliEnv, pidAlive, REPO_ROOT, useConfigFor, waitFor, type CommandResult } from '../support/cluster.js';
import { joinToken } from '../support/secure.js';
import { removeCgroupParent } from '../support/cgroups.js';
import { ensureSeedImage, SEED_ARCHIVE } from '../support/images.js';

const REPLICAS = 20;
const KILLED = 3;
const SERVICE = 'sleepers';
const NODE = 'restart-node';
const RUNNING_LIMIT_MS = 180_000;
const STEP_LIMIT_MS = 60_000;
const canRun = process.getuid?.() === 0 && existsSync('/usr/bin/etcd');

const CLI_LIMIT_MS = 60_000;

/**
 * berth runs the real CLI as the admin (the config registered with useConfigFor) without
 * blocking the event loop: the control plane under test runs in this process, so spawnSync would
 * stop it from answering.
 */
function berth(server: string, args: string[], input?: string): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/control-plane/cli/main.js'), ...args],
      { env: cliEnv(server), stdio: ['pipe', 'pipe', 'pipe'], timeout: CLI_LIMIT_MS });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    child.on('error', reject);
    child.on('close', (code, sig) => resolve({ code: code ?? 128 + (sig === 'SIGKILL' ? 9 : 15), stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

async function berthJson<T>(server: string, args: string[]): Promise<T> {
  const r = await berth(server, [...args, '-o', 'json']);
  if (r.code !== 0) throw new Error(`berth ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

function serviceYaml(): string {
  return `kind: Service
metadata: { name: ${SERVICE} }
spec:
  replicas: ${REPLICAS}
  template:
    image: oci-archive:${SEED_ARCHIVE}
    command: ["sleep", "100000"]
    resources: { cpu: 0.05, memory: 16Mi, pids: 16 }
    # the last step checks how a killed container's exit is reported, so the agent must not restart it
    restart: { policy: never }
`;
}

describe('agent kill -9 and restart with 20 running containers', { skip: !canRun && 'needs root and etcd' }, () => {
  const cgroupParent = `berth-restart-${process.pid}`;
  let work: string;
  let stateDir: string;
  let cp: ControlPlane;
  let agent: ChildProcess | undefined;
  let agentLog: string;
  let agentRuns = 0;
  const before20 = new Map<string, number>();

  /** startAgent starts the agent; only a first start passes a join token, later ones rely on pki/. */
  const startAgent = (token?: string): ChildProcess => {
    const out = openSync(agentLog, 'a');
    agentRuns++;
    const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/agent/main.js'),
      '--name', NODE, '--server', cp.gatewayAddress, '--state-dir', stateDir, '--cgroup-parent', cgroupParent,
      '--metrics-listen', '127.0.0.1:0', '--advertise-address', '127.0.0.1', '--log-level', 'info',
      // This agent shares the machine's own network namespace: no bridge there.
      '--network', 'none',
      // Never the host's /etc/berth/agent.yaml: its registries or flags would change what runs.
      '--config', '/dev/null',
      ...(token === undefined ? [] : ['--join-token', token])],
    { stdio: ['ignore', out, out] });
    closeSync(out);
    return child;
  };
  const stopAgent = async (sig: NodeJS.Signals): Promise<void> => {
    const a = agent;
    agent = undefined;
    if (!a || a.exitCode !== null || a.signalCode !== null) return;
    const exited = new Promise((resolve) => a.once('exit', resolve));
    a.kill(sig);
    await Promise.race([exited, sleep(10_000)]);
  };
  const tasks = (): Promise<Task[]> => berthJson<Task[]>(cp.apiUrl, ['get', 'tasks', '--service', SERVICE]);
  const running = async (): Promise<Task[]> => (await tasks()).filter((t) => t.status.phase === 'running');
  let lastSeen = '';
  const containerDirs = async (): Promise<string[]> => (await readdir(join(stateDir, 'containers')).catch(() => [] as string[])).sort();

  before(async () => {
    ensureSeedImage();
    work = await mkdtemp(join(tmpdir(), 'berth-restart-'));
    stateDir = join(work, 'agent');
    agentLog = join(work, 'agent.log');
    cp = await startControlPlane({
      listen: '127.0.0.1:0', gatewayListen: '127.0.0.1:0', dataDir: join(work, 'cp'),
      etcdClientPort: 23891, etcdPeerPort: 23901, nodeLeaseTtlSeconds: 3, logLevel: 'warn',
    });
    useConfigFor(cp.apiUrl, cp.adminConfig);
    agent = startAgent(await joinToken(cp));
  });

  after(async () => {
    if (cp) {
      await berth(cp.apiUrl, ['delete', 'service', SERVICE]);
      // The agent stops and removes the containers once their tasks are gone; bounded wait.
      const deadline = Date.now() + STEP_LIMIT_MS;
      while (agent && Date.now() < deadline && (await containerDirs()).length > 0) await sleep(250);
    }
    await stopAgent('SIGTERM');
    // Whatever is still running (a failed test) is killed through its own runtime.
    const rt = new NativeRuntime({ stateDir, cgroupParent });
    for (const c of await rt.list().catch(() => [])) {
      await rt.stop(c.id, 0).catch(() => undefined);
      await rt.remove(c.id).catch(() => undefined);
    }
    await cp?.stop();
    await removeCgroupParent(cgroupParent);
    if (process.env.BERTH_TEST_KEEP_LOGS) process.stderr.write(await readFile(agentLog, 'utf8').catch(() => ''));
    await rm(work, { recursive: true, force: true });
  });

  it('runs 20 replicas, which keep running while the agent is dead', async () => {
    const applied = await berth(cp.apiUrl, ['apply', '-f', '-'], serviceYaml());
    assert.equal(applied.code, 0, applied.stderr);
    const up = await waitFor(async () => {
      const all = await tasks();
      lastSeen = JSON.stringify(all.map((t) => t.status.phase));
      const r = all.filter((t) => t.status.phase === 'running');
      return r.length === REPLICAS && r.every((t) => (t.status.pid ?? 0) > 0) ? r : undefined;
    }, RUNNING_LIMIT_MS, () => `${REPLICAS} running tasks with pids; saw ${lastSeen}`, 1000);
    for (const t of up) before20.set(t.metadata.name, t.status.pid!);
    assert.equal(new Set(before20.values()).size, REPLICAS, 'twenty distinct container PIDs');

    await stopAgent('SIGKILL');
    await sleep(500);
    for (const [name, pid] of before20) assert.ok(pidAlive(pid), `task ${name}'s container (pid ${pid}) survives the agent's kill -9`);
  });

  it('kept the key and certificate it joined with in <state-dir>/pki, readable by root only', () => {
    const dirMode = statSync(join(stateDir, 'pki')).mode & 0o777;
    assert.equal(dirMode, 0o700, `pki/ has mode 0700, saw 0${dirMode.toString(8)}`);
    for (const file of ['ca.crt', 'node.key', 'node.crt']) {
      const path = join(stateDir, 'pki', file);
      assert.ok(existsSync(path), `${path} exists after the join`);
      const mode = statSync(path).mode & 0o777;
      assert.equal(mode, 0o600, `${path} has mode 0600, saw 0${mode.toString(8)}`);
    }
  });

  it('re-adopts the same 20 containers after a restart, and sweeps a half-made one', async () => {
    assert.equal(before20.size, REPLICAS, 'the previous step recorded 20 containers');
    const ids = await containerDirs();
    assert.equal(ids.length, REPLICAS);
    // What a crash between mkdir and the shim's reply leaves: a dir with spec.json, no pid, no shim.
    const half = join(stateDir, 'containers', 'half-made');
    await mkdir(half);
    await writeFile(join(half, 'spec.json'), JSON.stringify({ cgroupParent, spec: {}, createdAt: new Date().toISOString() }));
    for (const c of V1_CONTROLLERS) await mkdir(`/sys/fs/cgroup/${c}/${cgroupParent}/half-made`, { recursive: true });

    // No join token this time: the agent must come back on the certificate in pki/.
    agent = startAgent();
    await waitFor(async () => (existsSync(half) ? undefined : true), STEP_LIMIT_MS, () => 'the half-made container dir is removed at start');
    for (const c of V1_CONTROLLERS) assert.equal(existsSync(`/sys/fs/cgroup/${c}/${cgroupParent}/half-made`), false, `its ${c} cgroup is removed`);
    await waitFor(async () => (/removed half-made container.*id=half-made/.test(await readFile(agentLog, 'utf8')) ? true : undefined),
      STEP_LIMIT_MS, () => 'the sweep is reported in the agent log');

    await waitFor(async () => (/re-adopted container/.test(await readFile(agentLog, 'utf8')) && agentRuns === 2 ? true : undefined),
      STEP_LIMIT_MS, () => 'the restarted agent re-adopts containers');
    // Give the new session time to register and report, then compare: same tasks, same PIDs.
    const after20 = await waitFor(async () => {
      const r = await running();
      lastSeen = JSON.stringify(r.map((t) => [t.metadata.name, t.status.pid]));
      return r.length === REPLICAS && r.every((t) => before20.get(t.metadata.name) === t.status.pid) ? r : undefined;
    }, STEP_LIMIT_MS, () => `the same ${REPLICAS} tasks running with the same pids; saw ${lastSeen}`, 1000);
    assert.equal(after20.length, REPLICAS);
    assert.deepEqual(await containerDirs(), ids, 'no container was created or removed');
    const joins = (await readFile(agentLog, 'utf8')).match(/joined the cluster/g)?.length ?? 0;
    assert.equal(joins, 1, `only the first agent joined; the restarted one used its stored certificate (saw ${joins} joins)`);
  });

  it('runs `berth exec` in a re-adopted container, with its output and exit code', async () => {
    const [name] = [...before20.keys()];
    const r = await berth(cp.apiUrl, ['exec', name!, '--', 'sh', '-c', 'echo out $(hostname); echo err >&2; exit 5']);
    assert.equal(r.code, 5, `exit code of the command; stderr: ${r.stderr}`);
    assert.equal(r.stdout, `out ${name}\n`);
    assert.equal(r.stderr, 'err\n');
    const missing = await berth(cp.apiUrl, ['exec', 'no-such-task', '--', 'true']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /not found/);
    const slow = await berth(cp.apiUrl, ['exec', '--timeout', '1', name!, '--', 'sleep', '30']);
    assert.equal(slow.code, 1);
    assert.match(slow.stderr, /ran longer than 1 s/);
  });

  it('collects exit code 137 for containers SIGKILLed after the re-adoption', async () => {
    const victims = [...before20].slice(0, KILLED);
    // The shims push exits at once and the control plane replaces a failed task within seconds,
    // so `failed` is a short-lived state: watch the task stream instead of polling for it.
    const watch = spawn(process.execPath, [join(REPO_ROOT, 'dist/control-plane/cli/main.js'), 'get', 'tasks', '--service', SERVICE,
      '-w', '-o', 'json', '--timeout', String(STEP_LIMIT_MS / 1000)], { env: cliEnv(cp.apiUrl), stdio: ['ignore', 'pipe', 'ignore'] });
    const seen = new Map<string, Task>();
    let lines = 0;
    let rest = '';
    watch.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      rest += chunk;
      for (let nl = rest.indexOf('\n'); nl >= 0; nl = rest.indexOf('\n')) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        if (line.trim() === '') continue;
        lines++;
        const t = (JSON.parse(line) as { object: Task }).object;
        if (t.status.phase === 'failed') seen.set(t.metadata.name, t);
      }
    });
    try {
      // The stream starts with every current task (ADDED); from then on no change is missed.
      await waitFor(async () => (lines >= REPLICAS ? true : undefined), STEP_LIMIT_MS, () => `the task watch listed the tasks; saw ${lines} lines`);
      for (const [, pid] of victims) process.kill(pid, 'SIGKILL');
      await waitFor(async () => (victims.every(([name]) => seen.get(name)?.status.replaceAfter) ? true : undefined), STEP_LIMIT_MS,
        () => `every victim reported failed and held for replacement; saw ${JSON.stringify([...seen.keys()])}`);
    } finally {
      watch.kill('SIGTERM');
    }
    for (const [name] of victims) assert.equal(seen.get(name)!.status.exitCode, 137, `task ${name}: exit code of a SIGKILLed container`);
    // The victim held longest before its replacement still exists: exec there says why it cannot run.
    const [held] = victims.map(([name]) => seen.get(name)!).sort((a, b) => Date.parse(b.status.replaceAfter!) - Date.parse(a.status.replaceAfter!));
    const notExec = await berth(cp.apiUrl, ['exec', held!.metadata.name, '--', 'true']);
    assert.equal(notExec.code, 1);
    assert.match(notExec.stderr, /not running/);
    for (const [name, pid] of [...before20].slice(KILLED)) assert.ok(pidAlive(pid), `task ${name} still runs`);
  });

  it('stops the re-adopted containers through their shims: each init forwards SIGTERM, no SIGKILL needed', async () => {
    const deleted = await berth(cp.apiUrl, ['delete', 'service', SERVICE]);
    assert.equal(deleted.code, 0, deleted.stderr);
    await waitFor(async () => ((await containerDirs()).length === 0 ? true : undefined), STEP_LIMIT_MS,
      () => 'the restarted agent stops and removes every container of the deleted service');
    // One line per container the agent stopped; exitSignal 9 would mean the grace ran out.
    const stopped = (await readFile(agentLog, 'utf8')).split('\n').filter((l) => / container stopped /.test(l));
    assert.ok(stopped.length >= REPLICAS - KILLED, `the ${REPLICAS - KILLED} surviving containers were stopped, saw ${stopped.length} stops`);
    for (const line of stopped) assert.match(line, /exitCode=143 exitSignal=15$/, `stopped by the forwarded SIGTERM: ${line}`);
  });
});
