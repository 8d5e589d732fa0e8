/**
 * The walking skeleton end to end: a real embedded etcd, the control plane, two agents each in
 * its own network namespace, real containers from the native core, driven by the real CLI.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import type { Node, Service, Task } from '../../control-plane/objects/types.js';
import {
  berth, berthJson, pidAlive, run, waitFor, type ClusterStatus, downCluster, upCluster } from '../support/cluster.js';
import { SEED_ARCHIVE, ensureSeedImage } from '../support/images.js';
import { startPrometheus } from '../support/prometheus.js';

const CLUSTER = `e2e${process.pid % 10000}`;
const SERVICE = 'echo';

function serviceYaml(replicas: number, extra = ''): string {
  return `kind: Service
metadata: { name: ${SERVICE}, labels: { app: ${SERVICE} } }
spec:
  replicas: ${replicas}
  template:
    image: oci-archive:${SEED_ARCHIVE}
    command: ["sleep", "100000"]
    resources: { cpu: 0.1, memory: 32Mi, pids: 32 }
${extra}`;
}

function runningTasks(server: string): Task[] {
  return berthJson<Task[]>(server, ['get', 'tasks', '--service', SERVICE])
    .filter((t) => t.status.phase === 'running');
}

async function metricsText(node: Node): Promise<string> {
  const res = await fetch(node.status.metricsUrl);
  assert.equal(res.status, 200, `GET ${node.status.metricsUrl}`);
  return res.text();
}

describe('a two-host local cluster', () => {
  let cluster: ClusterStatus;
  let server = '';

  before(async () => {
    ensureSeedImage();
    cluster = upCluster(CLUSTER, 2);
    server = cluster.server;
  });

  after(() => {
    downCluster(CLUSTER);
  });

  test('both hosts register as Ready nodes with their own address and metrics URL', () => {
    const nodes = berthJson<Node[]>(server, ['get', 'nodes']);
    assert.equal(nodes.length, 2, `expected 2 nodes, saw ${nodes.map((n) => n.metadata.name)}`);
    const addresses = new Set(nodes.map((n) => n.status.addresses[0]?.address));
    assert.equal(addresses.size, 2, 'each node has its own address');
    for (const n of nodes) {
      const ready = n.status.conditions.find((c) => c.type === 'Ready');
      assert.equal(ready?.status, 'True', `${n.metadata.name} Ready`);
      assert.match(n.status.metricsUrl, /^http:\/\/[\d.]+:\d+\/metrics$/);
    }
  });

  test('a 4-replica service runs 4 isolated containers, 2 per host, hostname = task name', async () => {
    const applied = berth(server, ['apply', '-f', '-'], serviceYaml(4));
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /service\/echo created/);
    const tasks = await waitFor(() => {
      const r = runningTasks(server);
      return r.length === 4 ? r : undefined;
    }, 90_000, () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout);

    const perNode = new Map<string, number>();
    for (const t of tasks) perNode.set(t.spec.nodeName, (perNode.get(t.spec.nodeName) ?? 0) + 1);
    assert.deepEqual([...perNode.values()], [2, 2], `spread: ${JSON.stringify([...perNode])}`);

    const hostPidNs = readlinkSync('/proc/self/ns/pid');
    for (const t of tasks) {
      const pid = t.status.pid!;
      assert.ok(pidAlive(pid), `task ${t.metadata.name} pid ${pid} alive`);
      assert.notEqual(readlinkSync(`/proc/${pid}/ns/pid`), hostPidNs, 'own pid namespace');
      const hostname = run('nsenter', ['-t', String(pid), '-u', 'hostname']);
      assert.equal(hostname.stdout.trim(), t.metadata.name, 'hostname inside = task name');
    }
  });

  test('every container has its series on its agent /metrics', async () => {
    const nodes = berthJson<Node[]>(server, ['get', 'nodes']);
    const tasks = runningTasks(server);
    for (const t of tasks) {
      const node = nodes.find((n) => n.metadata.name === t.spec.nodeName)!;
      const text = await metricsText(node);
      for (const metric of ['container_cpu_usage_seconds_total', 'container_memory_working_set_bytes',
        'container_memory_usage_bytes', 'container_spec_memory_limit_bytes', 'container_start_time_seconds']) {
        const line = text.split('\n').find((l) => l.startsWith(metric + '{') && l.includes(`task="${t.metadata.name}"`));
        assert.ok(line, `${metric} for ${t.metadata.name} on ${node.metadata.name}`);
        assert.match(line!, new RegExp(`service="${SERVICE}"`));
        assert.match(line!, new RegExp(`node="${node.metadata.name}"`));
      }
      const limit = text.split('\n').find((l) => l.startsWith('container_spec_memory_limit_bytes{')
        && l.includes(`task="${t.metadata.name}"`))!;
      assert.equal(Number(limit.split(' ').pop()), 32 * 1024 * 1024, 'memory limit from the spec');
    }
  });

  test('a real Prometheus scraping the agents sees working-set series for every running task', async () => {
    const nodes = berthJson<Node[]>(server, ['get', 'nodes']);
    const targets = nodes.map((n) => new URL(n.status.metricsUrl).host);
    const prom = await startPrometheus(targets);
    try {
      const tasks = runningTasks(server).map((t) => t.metadata.name).sort();
      const seen = await waitFor(async () => {
        const result = await prom.query(`container_memory_working_set_bytes{service="${SERVICE}"}`);
        const names = result.map((r) => r.metric.task).sort();
        return JSON.stringify(names) === JSON.stringify(tasks) ? result : undefined;
      }, 60_000, () => `expected series for ${tasks.join(',')}`);
      for (const r of seen) assert.ok(Number(r.value[1]) > 0, `working set of ${r.metric.task} > 0`);
    } finally {
      await prom.stop();
    }
  });

  test('scaling to 1 stops 3 containers', async () => {
    const before = runningTasks(server);
    const scaled = berth(server, ['scale', SERVICE, '1']);
    assert.equal(scaled.code, 0, scaled.stderr);
    const remaining = await waitFor(() => {
      const all = berthJson<Task[]>(server, ['get', 'tasks', '--service', SERVICE]);
      return all.length === 1 && all[0]!.status.phase === 'running' ? all : undefined;
    }, 60_000, () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout);
    const gone = before.filter((t) => t.metadata.name !== remaining[0]!.metadata.name);
    assert.equal(gone.length, 3);
    await waitFor(() => (gone.every((t) => !pidAlive(t.status.pid!)) ? true : undefined), 30_000,
      () => `pids still alive: ${gone.filter((t) => pidAlive(t.status.pid!)).map((t) => t.status.pid)}`);
  });

  test('deleting the service stops every container and its metrics vanish', async () => {
    const last = runningTasks(server);
    const deleted = berth(server, ['delete', 'service', SERVICE]);
    assert.equal(deleted.code, 0, deleted.stderr);
    await waitFor(() => (berthJson<Task[]>(server, ['get', 'tasks', '--service', SERVICE]).length === 0 ? true : undefined),
      60_000, () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout);
    for (const t of last) assert.ok(!pidAlive(t.status.pid!), `pid ${t.status.pid} gone`);
    const services = berthJson<Service[]>(server, ['get', 'services']);
    assert.equal(services.length, 0);
    const nodes = berthJson<Node[]>(server, ['get', 'nodes']);
    await waitFor(async () => {
      for (const n of nodes) if ((await metricsText(n)).includes(`service="${SERVICE}"`)) return undefined;
      return true;
    }, 15_000, () => 'container series still exported after delete');
  });
  test('an image pushed to the cluster registry is pulled by every host and listed per node', async () => {
    const ref = `${cluster.registry}/library/busybox:1.36`;
    const push = run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci-archive:${SEED_ARCHIVE}`, `docker://${ref}`], 120_000);
    assert.equal(push.code, 0, `skopeo push failed: ${push.stderr}`);
    const doc = `kind: Service
metadata: { name: pulled }
spec:
  replicas: 2
  template: { image: "${ref}", command: ["sleep", "100000"], resources: { memory: 16Mi } }
`;
    assert.equal(berth(server, ['apply', '-f', '-'], doc).code, 0);
    const tasks = await waitFor(() => {
      const ts = berthJson<Task[]>(server, ['get', 'tasks', '--service', 'pulled']).filter((t) => t.status.phase === 'running');
      return ts.length === 2 ? ts : undefined;
    }, 90_000, () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout);
    assert.deepEqual(new Set(tasks.map((t) => t.spec.nodeName)).size, 2, 'one replica per host');
    for (const t of tasks) assert.match(t.status.imageDigest ?? '', /^sha256:[0-9a-f]{64}$/, 'the digest actually run is reported');
    const images = await waitFor(() => {
      const r = berth(server, ['get', 'images']);
      return r.code === 0 && r.stdout.split('\n').filter((l) => l.includes(ref)).length === 2 ? r.stdout : undefined;
    }, 30_000, () => berth(server, ['get', 'images']).stdout + berth(server, ['get', 'images']).stderr);
    assert.match(images, new RegExp(`${ref.replace(/[.]/g, '\\.')}`));
    assert.equal(berth(server, ['delete', 'service', 'pulled']).code, 0);
    await waitFor(() => (berthJson<Task[]>(server, ['get', 'tasks', '--service', 'pulled']).length === 0 ? true : undefined),
      60_000, () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout);
  });
});
