/**
 * Rolling updates on a real 3-host local cluster: a healthy update completes without dropping
 * below replicas - maxUnavailable running tasks; an update whose tasks crash rolls back by itself;
 * history and undo work through the real CLI.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Revision, Service, Task } from '../../control-plane/objects/types.js';
import { REPO_ROOT, berth, clusterStatus, localCluster, run, waitFor, type ClusterStatus, cliEnv, configFor } from '../support/cluster.js';
import { apiJson } from '../support/secure.js';
import { SEED_ARCHIVE, ensureSeedImage } from '../support/images.js';

const CLUSTER = `ro${process.pid % 10000}`;
const SERVICE = 'roll';
const REPLICAS = 6;
const MAX_UNAVAILABLE = 0;
const SAMPLE_INTERVAL_MS = 100;
const ROLLOUT_TIMEOUT_S = 150;

function serviceYaml(command: string[], env: Record<string, string>, autoRollback = true, health = ''): string {
  return `kind: Service
metadata: { name: ${SERVICE}, labels: { app: ${SERVICE} } }
spec:
  replicas: ${REPLICAS}
  template:
    image: oci-archive:${SEED_ARCHIVE}
    command: ${JSON.stringify(command)}
    env: ${JSON.stringify(env)}
    resources: { cpu: 0.05, memory: 16Mi, pids: 16 }
${health ? `    health: ${health}\n` : ''}  update: { maxSurge: 1, maxUnavailable: ${MAX_UNAVAILABLE}, minReadySeconds: 1, progressDeadlineSeconds: 90, autoRollback: ${autoRollback} }
`;
}
const SLEEP = ['sleep', '100000'];

/** berthAsync runs the CLI without blocking the event loop (the sampler must keep running). */
function berthAsync(server: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'control-plane', 'cli', 'main.js'), ...args], { env: cliEnv(server) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('close', (code) => resolve({ code: code ?? 128, stdout, stderr }));
  });
}

async function getJson<T>(server: string, path: string): Promise<T> {
  const r = await apiJson<T>({ apiUrl: server, adminConfig: configFor(server)! }, 'GET', path);
  assert.equal(r.status, 200, `GET ${path}`);
  return r.body;
}
const tasksOf = async (server: string): Promise<Task[]> => (await getJson<{ items: Task[] }>(server, `/v1/namespaces/default/tasks?service=${SERVICE}`)).items;
const serviceOf = (server: string): Promise<Service> => getJson<Service>(server, `/v1/namespaces/default/services/${SERVICE}`);
const liveRunning = (ts: Task[]): Task[] => ts.filter((t) => t.spec.desiredState === 'running' && t.status.phase === 'running');

/** sampler counts desired-and-running tasks every SAMPLE_INTERVAL_MS until stopped; returns the minimum and a trace. */
function startSampler(server: string): { stop(): Promise<{ min: number; samples: number; trace: string[] }> } {
  let stopped = false;
  let min = Infinity;
  let samples = 0;
  const trace: string[] = [];
  const loop = (async () => {
    for (let i = 0; !stopped && i < 20_000; i++) {
      const n = liveRunning(await tasksOf(server)).length;
      samples += 1;
      if (n < min) trace.push(`sample ${samples}: ${n} running`);
      min = Math.min(min, n);
      await new Promise((r) => setTimeout(r, SAMPLE_INTERVAL_MS));
    }
  })();
  return { stop: async () => { stopped = true; await loop; return { min, samples, trace }; } };
}

describe('rolling updates on a 3-host cluster', () => {
  let cluster: ClusterStatus;
  let server = '';

  before(async () => {
    ensureSeedImage();
    localCluster(['down', '--name', CLUSTER]);
    const up = localCluster(['up', '--hosts', '3', '--name', CLUSTER]);
    assert.equal(up.code, 0, `local-cluster up failed:\n${up.stdout}\n${up.stderr}`);
    cluster = clusterStatus(CLUSTER);
    server = cluster.server;
    const applied = berth(server, ['apply', '-f', '-'], serviceYaml(SLEEP, { V: '1' }));
    assert.equal(applied.code, 0, applied.stderr);
    await waitFor(async () => (liveRunning(await tasksOf(server)).length === REPLICAS ? true : undefined), 120_000,
      () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout);
    const first = await berthAsync(server, ['rollout', 'status', SERVICE, '--timeout', '60']);
    assert.equal(first.code, 0, `initial rollout status: ${first.stdout}${first.stderr}`);
  });

  after(() => {
    // BERTH_TEST_SAVE_LOGS=DIR keeps the control plane's log for a post-mortem.
    const keep = process.env.BERTH_TEST_SAVE_LOGS;
    if (keep) run('sh', ['-c', `cp /run/berth-local/${CLUSTER}/control-plane.log ${keep}/ 2>/dev/null || true`]);
    const down = localCluster(['down', '--name', CLUSTER]);
    assert.equal(down.code, 0, `local-cluster down failed: ${down.stderr}`);
    const netns = run('ip', ['netns', 'list']).stdout;
    assert.ok(!netns.includes(`berth-${CLUSTER}-`), `netns left behind:\n${netns}`);
  });

  test('a healthy update rolls out with never fewer than replicas - maxUnavailable running', async () => {
    const sampler = startSampler(server);
    const applied = berth(server, ['apply', '-f', '-'], serviceYaml(SLEEP, { V: '2' }));
    assert.equal(applied.code, 0, applied.stderr);
    const status = await berthAsync(server, ['rollout', 'status', SERVICE, '--timeout', String(ROLLOUT_TIMEOUT_S)]);
    const { min, samples, trace } = await sampler.stop();
    assert.equal(status.code, 0, `rollout status exited ${status.code}:\n${status.stdout}${status.stderr}`);
    assert.match(status.stdout, /\[[#.]{10}\] \d\/6 updated, \d ready/);
    assert.match(status.stdout, /successfully rolled out \(revision 2\)/);
    assert.ok(samples > 10, `sampled ${samples} times`);
    assert.ok(min >= REPLICAS - MAX_UNAVAILABLE, `a sample saw ${min} running tasks (< ${REPLICAS - MAX_UNAVAILABLE}):\n${trace.join('\n')}`);
    const running = liveRunning(await tasksOf(server));
    assert.equal(running.length, REPLICAS);
    assert.ok(running.every((t) => t.spec.template.env?.V === '2' && t.spec.revision === 2), 'every running task is of revision 2');
    const svc = await serviceOf(server);
    assert.deepEqual([svc.status?.currentRevision, svc.status?.updateRevision, svc.status?.updatedReplicas, svc.status?.readyReplicas], [2, 2, 6, 6]);
  });

  test('an update whose tasks exit 1 rolls back by itself; rollout status exits 1', async () => {
    const before = await serviceOf(server);
    const oldNames = liveRunning(await tasksOf(server)).map((t) => t.metadata.name).sort();
    const applied = berth(server, ['apply', '-f', '-'], serviceYaml(['sh', '-c', 'exit 1'], { V: '3' }));
    assert.equal(applied.code, 0, applied.stderr);
    const status = await berthAsync(server, ['rollout', 'status', SERVICE, '--timeout', String(ROLLOUT_TIMEOUT_S)]);
    assert.equal(status.code, 1, `rollout status should fail:\n${status.stdout}${status.stderr}`);
    assert.match(status.stdout, /RolledBack.*rolled back to revision 2/);
    const svc = await serviceOf(server);
    assert.deepEqual(svc.spec.template, before.spec.template, 'the template is the old one again');
    const cond = svc.status?.conditions.find((c) => c.type === 'Progressing');
    assert.deepEqual([cond?.status, cond?.reason], ['False', 'RolledBack']);
    const settled = await waitFor(async () => {
      const ts = await tasksOf(server);
      const live = ts.filter((t) => t.spec.desiredState === 'running');
      return live.length === REPLICAS && live.every((t) => t.status.phase === 'running' && t.spec.template.env?.V === '2') ? live : undefined;
    }, 60_000, () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout);
    assert.deepEqual(settled.map((t) => t.metadata.name).sort(), oldNames, 'the 6 old-revision tasks kept running');
    const history = berth(server, ['rollout', 'history', SERVICE]);
    assert.equal(history.code, 0, history.stderr);
    assert.match(history.stdout, /^REVISION\s+IMAGE\s+CREATED\s+CHANGE-CAUSE/);
    assert.match(history.stdout, /\n4 \*\s+\S+\s+\S+\s+automatic rollback to revision 2/);
    const events = berth(server, ['events']);
    assert.match(events.stdout, /Warning\s+RolledBack\s+service\/roll\s+rolled back to revision 2/i, events.stdout + events.stderr);
  });

  test('rollout undo --to-revision 1 rolls the first template out again as a new revision', async () => {
    const undo = berth(server, ['rollout', 'undo', SERVICE, '--to-revision', '1']);
    assert.equal(undo.code, 0, undo.stderr);
    assert.match(undo.stdout, /rolled back to revision 1/);
    const status = await berthAsync(server, ['rollout', 'status', SERVICE, '--timeout', String(ROLLOUT_TIMEOUT_S)]);
    assert.equal(status.code, 0, `${status.stdout}${status.stderr}`);
    assert.match(status.stdout, /revision 5/, berth(server, ['rollout', 'history', SERVICE]).stdout);
    const running = liveRunning(await tasksOf(server));
    assert.equal(running.length, REPLICAS);
    assert.ok(running.every((t) => t.spec.template.env?.V === '1'));
    const revs = (await getJson<{ items: Revision[] }>(server, `/v1/namespaces/default/services/${SERVICE}/revisions`)).items;
    assert.deepEqual(revs.map((r) => r.spec.revision), [1, 2, 3, 4, 5]);
  });

  test('without autoRollback a failing update halts: old tasks keep running until the next change', async () => {
    const oldNames = liveRunning(await tasksOf(server)).map((t) => t.metadata.name).sort();
    const bad = berth(server, ['apply', '-f', '-'], serviceYaml(['sh', '-c', 'exit 1'], { V: '6' }, false));
    assert.equal(bad.code, 0, bad.stderr);
    const status = await berthAsync(server, ['rollout', 'status', SERVICE, '--timeout', String(ROLLOUT_TIMEOUT_S)]);
    assert.equal(status.code, 1, `${status.stdout}${status.stderr}`);
    assert.match(status.stdout, /RolloutFailed.*revision 6.*rollout halted/);
    const svc = await serviceOf(server);
    assert.equal(svc.spec.template.env?.V, '6', 'without autoRollback the template stays');
    assert.equal(svc.status?.haltedRevision, 6);
    const running = liveRunning(await tasksOf(server));
    assert.deepEqual(running.filter((t) => t.spec.template.env?.V === '1').map((t) => t.metadata.name).sort(), oldNames, 'the old tasks were not replaced');
    const good = berth(server, ['apply', '-f', '-'], serviceYaml(SLEEP, { V: '7' }, false));
    assert.equal(good.code, 0, good.stderr);
    const next = await berthAsync(server, ['rollout', 'status', SERVICE, '--timeout', String(ROLLOUT_TIMEOUT_S)]);
    assert.equal(next.code, 0, `a new template resumes rolling: ${next.stdout}${next.stderr}`);
    assert.match(next.stdout, /revision 7/);
  });

  test('an update whose health check fails rolls back by itself', async () => {
    const before = await serviceOf(server);
    const oldNames = liveRunning(await tasksOf(server)).map((t) => t.metadata.name).sort();
    const sampler = startSampler(server);
    const applied = berth(server, ['apply', '-f', '-'], serviceYaml(SLEEP, { V: '8' }, true, '{ exec: { command: ["false"] }, intervalSeconds: 1, failureThreshold: 2 }'));
    assert.equal(applied.code, 0, applied.stderr);
    const status = await berthAsync(server, ['rollout', 'status', SERVICE, '--timeout', String(ROLLOUT_TIMEOUT_S)]);
    const { min, trace } = await sampler.stop();
    assert.equal(status.code, 1, `${status.stdout}${status.stderr}`);
    assert.match(status.stdout, /RolledBack.*rolled back to revision 7.*Unhealthy/);
    assert.ok(min >= REPLICAS - MAX_UNAVAILABLE, `a sample saw ${min} running tasks:\n${trace.join('\n')}`);
    const svc = await serviceOf(server);
    assert.deepEqual(svc.spec.template, before.spec.template);
    const settled = await waitFor(async () => {
      const live = (await tasksOf(server)).filter((t) => t.spec.desiredState === 'running');
      return live.length === REPLICAS && live.every((t) => t.status.phase === 'running' && t.spec.template.env?.V === '7') ? live : undefined;
    }, 60_000, () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout);
    assert.deepEqual(settled.map((t) => t.metadata.name).sort(), oldNames);
  });
});
