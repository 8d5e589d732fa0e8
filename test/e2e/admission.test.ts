/**
 * Bad input never changes stored state or crashes a component, and a killed control plane
 * loses nothing: etcd holds every service and task, containers keep running meanwhile.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readlinkSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import type { Node, Task } from '../../control-plane/objects/types.js';
import {
  berth, berthJson, clusterStatus, localCluster, pidAlive, waitFor, type ClusterStatus,
} from '../support/cluster.js';
import { SEED_ARCHIVE, ensureSeedImage } from '../support/images.js';

const CLUSTER = `adm${process.pid % 10000}`;

async function storedState(etcdUrl: string): Promise<Record<string, string>> {
  const client = new Etcd3({ hosts: etcdUrl });
  try {
    return await client.getAll().prefix('/berth/v1/').strings();
  } finally {
    client.close();
  }
}

describe('admission and durability on a one-host cluster', () => {
  let cluster: ClusterStatus;
  let server = '';

  before(() => {
    ensureSeedImage();
    localCluster(['down', '--name', CLUSTER]);
    const up = localCluster(['up', '--hosts', '1', '--name', CLUSTER]);
    assert.equal(up.code, 0, `local-cluster up failed:\n${up.stdout}\n${up.stderr}`);
    cluster = clusterStatus(CLUSTER);
    server = cluster.server;
    assert.ok(cluster.etcd, 'local-cluster status names the etcd endpoint');
    assert.ok(cluster.controlPlanePid, 'local-cluster status names the control plane pid');
  });

  after(() => {
    const down = localCluster(['down', '--name', CLUSTER]);
    assert.equal(down.code, 0, `local-cluster down failed: ${down.stderr}`);
  });

  const good = `kind: Service
metadata: { name: steady }
spec:
  replicas: 2
  template:
    image: oci-archive:${SEED_ARCHIVE}
    command: ["sleep", "100000"]
    resources: { memory: 16Mi }
`;

  test('a valid service is accepted and runs', async () => {
    const r = berth(server, ['apply', '-f', '-'], good);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(() => {
      const tasks = berthJson<Task[]>(server, ['get', 'tasks', '--service', 'steady']);
      return tasks.filter((t) => t.status.phase === 'running').length === 2 ? true : undefined;
    }, 60_000, () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout);
  });

  const rejected: { name: string; doc: string; exit: number; says: RegExp }[] = [
    { name: 'invalid YAML', doc: 'kind: Service\nmetadata: { name: bad\nspec: [', exit: 2, says: /<stdin>:\d+:\d+: invalid YAML/ },
    { name: 'an unknown field', exit: 1, says: /spec\.template.*imagee|imagee.*spec\.template/,
      doc: 'kind: Service\nmetadata: { name: bad }\nspec: { replicas: 1, template: { imagee: x } }\n' },
    { name: 'negative replicas', exit: 1, says: /spec\.replicas/,
      doc: `kind: Service\nmetadata: { name: bad }\nspec: { replicas: -1, template: { image: "oci-archive:${SEED_ARCHIVE}" } }\n` },
    { name: 'a missing image', exit: 1, says: /spec\.template\.image/,
      doc: 'kind: Service\nmetadata: { name: bad }\nspec: { replicas: 1, template: { command: [sh] } }\n' },
    { name: 'a bad memory quantity', exit: 1, says: /spec\.template\.resources\.memory/,
      doc: `kind: Service\nmetadata: { name: bad }\nspec: { replicas: 1, template: { image: "oci-archive:${SEED_ARCHIVE}", resources: { memory: lots } } }\n` },
    { name: 'an invalid name', exit: 1, says: /Bad_Name.*DNS label/,
      doc: `kind: Service\nmetadata: { name: Bad_Name }\nspec: { replicas: 1, template: { image: "oci-archive:${SEED_ARCHIVE}" } }\n` },
  ];

  for (const c of rejected) {
    test(`${c.name} is rejected with a specific message and stored state is unchanged`, async () => {
      const before = await storedState(cluster.etcd!);
      const r = berth(server, ['apply', '-f', '-'], c.doc);
      assert.equal(r.code, c.exit, `exit code; stderr: ${r.stderr}`);
      assert.match(r.stderr, c.says);
      assert.match(r.stderr, /^error: /m);
      assert.deepEqual(await storedState(cluster.etcd!), before, 'etcd unchanged');
      assert.ok(pidAlive(cluster.controlPlanePid!), 'control plane still running');
      for (const h of cluster.hosts) assert.ok(pidAlive(h.agentPid), `agent ${h.node} still running`);
    });
  }

  test('an image path that does not exist keeps the task preparing with ImagePullBackOff naming the path, without churn', async () => {
    // Like a Kubernetes container stuck Waiting: the agent retries the pull with back-off
    // (ErrImagePull first, then ImagePullBackOff) instead of failing, so no replacements churn.
    const missing = '/var/lib/berth/seed/does-not-exist.tar';
    const r = berth(server, ['apply', '-f', '-'], `kind: Service
metadata: { name: ghost }
spec: { replicas: 1, template: { image: "oci-archive:${missing}" } }
`);
    assert.equal(r.code, 0, r.stderr);
    const task = await waitFor(() => {
      const t = berthJson<Task[]>(server, ['get', 'tasks', '--service', 'ghost'])[0];
      return t?.status.phase === 'preparing' && t.status.reason === 'ImagePullBackOff' ? t : undefined;
    }, 60_000, () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout);
    assert.match(task.status.message ?? '', /ImageNotFound/, `message carries the cause: ${task.status.message}`);
    assert.ok(task.status.message?.includes(missing), `message names the path: ${task.status.message}`);
    const tasks = berthJson<Task[]>(server, ['get', 'tasks', '--service', 'ghost']);
    assert.deepEqual(tasks.map((t) => t.metadata.name), [task.metadata.name], 'the same single task, no replacements');
    const described = berth(server, ['describe', 'task', task.metadata.name]);
    assert.equal(described.code, 0, described.stderr);
    assert.match(described.stdout, /Reason:\s+ImagePullBackOff/);
    assert.equal(berth(server, ['delete', 'service', 'ghost']).code, 0);
  });

  test('killing and restarting the control plane loses no service or task', async () => {
    const before = berthJson<Task[]>(server, ['get', 'tasks', '--service', 'steady']);
    const pid = cluster.controlPlanePid!;
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const cwd = readlinkSync(`/proc/${pid}/cwd`);
    process.kill(pid, 'SIGKILL');
    await waitFor(() => (pidAlive(pid) ? undefined : true), 10_000, () => `control plane ${pid} still alive`);
    for (const t of before) assert.ok(pidAlive(t.status.pid!), `container ${t.metadata.name} outlives the control plane`);

    const log = openSync(`/tmp/berth-${CLUSTER}-restarted-control-plane.log`, 'a');
    const child = spawn(argv[0]!, argv.slice(1), { cwd, detached: true, stdio: ['ignore', log, log] });
    closeSync(log);
    child.unref();
    await waitFor(() => (berth(server, ['get', 'services']).code === 0 ? true : undefined), 60_000,
      () => 'control plane API did not come back');

    const after = berthJson<Task[]>(server, ['get', 'tasks', '--service', 'steady']);
    assert.deepEqual(after.map((t) => t.metadata.name).sort(), before.map((t) => t.metadata.name).sort(),
      'same tasks after restart');
    assert.equal(berthJson<{ spec: { replicas: number } }>(server, ['get', 'services', 'steady']).spec.replicas, 2);
    await waitFor(() => {
      const nodes = berthJson<Node[]>(server, ['get', 'nodes']);
      return nodes.every((n) => n.status.conditions.find((c) => c.type === 'Ready')?.status === 'True') ? true : undefined;
    }, 60_000, () => 'agents did not reconnect to the restarted control plane');
    const running = berthJson<Task[]>(server, ['get', 'tasks', '--service', 'steady']).filter((t) => t.status.phase === 'running');
    assert.deepEqual(running.map((t) => t.status.pid).sort(), before.map((t) => t.status.pid).sort(),
      'the same containers keep running; none restarted or duplicated');
    // local-cluster down finds the new process through its pid file, so record it there.
    cluster.controlPlanePid = child.pid;
  });
});
