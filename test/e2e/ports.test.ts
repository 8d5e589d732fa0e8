/**
 * Published ports on a two-host local cluster: host-mode ports DNAT on the hosts
 * running a replica (hairpin included) and vanish when the task stops; two services with the
 * same host port never share a host; an ingress-mode port reaches its replica from every host.
 * Traffic goes only to this cluster's host addresses.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TERMINAL_PHASES } from '../../control-plane/objects/conditions.js';
import type { Task } from '../../control-plane/objects/types.js';
import type { ServiceEndpoints } from '../../proto/gen/berth/v1/agent.js';
import { berth, berthJson, run, waitFor, REPO_ROOT, type ClusterHost, type ClusterStatus, downCluster, upCluster } from '../support/cluster.js';
import { apiFetch } from '../support/secure.js';
import { SEED_ARCHIVE, ensureSeedImage } from '../support/images.js';

const CLUSTER = `p${process.pid % 10000}`;
const HOST_PORT = 18080;
const MESH_PORT = 30080;
const WGET_TIMEOUT_MS = 20_000;

const serviceYaml = (name: string, replicas: number, hostPort: number, mode: 'host' | 'ingress' = 'host'): string => `kind: Service
metadata: { name: ${name} }
spec:
  replicas: ${replicas}
  template:
    image: oci-archive:${SEED_ARCHIVE}
    command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
    resources: { cpu: 0.1, memory: 32Mi, pids: 32 }
    ports: [{ name: http, containerPort: 8080, hostPort: ${hostPort}, protocol: tcp, mode: ${mode} }]
`;

/** fetchFrom runs busybox wget in a host's netns against url (no -T: it crashes this busybox; run() bounds it). */
function fetchFrom(h: ClusterHost, url: string): { code: number; out: string } {
  const r = run('ip', ['netns', 'exec', h.netns, 'busybox', 'wget', '-O', '-', url], WGET_TIMEOUT_MS);
  return { code: r.code, out: r.stdout + r.stderr };
}

function natRules(h: ClusterHost): string {
  return run('ip', ['netns', 'exec', h.netns, 'iptables', '-w', '5', '-t', 'nat', '-S']).stdout;
}

describe('published ports on a two-host local cluster', () => {
  let cluster: ClusterStatus;
  let server = '';
  let scratch = '';
  const tasksOf = (svc: string): Task[] => berthJson<Task[]>(server, ['get', 'tasks', '--service', svc]);
  const hostOf = (node: string): ClusterHost => cluster.hosts.find((h) => h.node === node)!;
  const wide = (): string => berth(server, ['get', 'tasks', '-o', 'wide']).stdout;

  before(() => {
    ensureSeedImage();
    scratch = mkdtempSync(join(tmpdir(), 'berth-ports-'));
    cluster = upCluster(CLUSTER, 2);
    server = cluster.server;
  });

  after(() => {
    rmSync(scratch, { recursive: true, force: true });
    // Every rule lives in the hosts' network namespaces; with those gone nothing is left.
    downCluster(CLUSTER);
  });

  test('a host port answers on every host running a replica, from another host and from the container itself', async () => {
    assert.equal(berth(server, ['apply', '-f', '-'], serviceYaml('pweb', 2, HOST_PORT)).code, 0);
    const tasks = await waitFor(() => {
      const ts = tasksOf('pweb').filter((t) => t.status.phase === 'running' && t.status.ip);
      return ts.length === 2 ? ts : undefined;
    }, 90_000, wide);
    assert.equal(new Set(tasks.map((t) => t.spec.nodeName)).size, 2, 'the two replicas with one host port are on different hosts');
    for (const t of tasks) {
      const h = hostOf(t.spec.nodeName!);
      const other = cluster.hosts.find((x) => x !== h)!;
      const got = fetchFrom(other, `http://${h.address}:${HOST_PORT}/`);
      assert.equal(got.code, 0, `wget from ${other.node} to ${h.address}:${HOST_PORT}: ${got.out}`);
      assert.match(got.out, /hello from berth/);
      // Hairpin: the replica reaches its own published port through its host's address.
      const self = berth(server, ['exec', t.metadata.name, '--', 'wget', '-O', '-', `http://${h.address}:${HOST_PORT}/`]);
      assert.equal(self.code, 0, `hairpin wget from ${t.metadata.name} to ${h.address}:${HOST_PORT}: ${self.stdout}${self.stderr}`);
      assert.match(natRules(h), new RegExp(`--dport ${HOST_PORT} -m comment --comment "?berth:`), `${h.node} holds the DNAT rule`);
    }
  });

  test('two services with the same host port never share a host', async () => {
    assert.equal(berth(server, ['apply', '-f', '-'], serviceYaml('pother', 1, HOST_PORT)).code, 0);
    const pending = await waitFor(() => tasksOf('pother').find((t) => t.status.phase === 'pending' && /host port/.test(t.status.message ?? '')), 30_000, wide);
    assert.equal(pending.spec.nodeName, '', `pother stays unplaced: ${pending.status.message}`);
    assert.equal(berth(server, ['scale', 'pweb', '1']).code, 0);
    const placed = await waitFor(() => tasksOf('pother').find((t) => t.status.phase === 'running' && t.status.ip), 90_000, wide);
    const left = await waitFor(() => {
      const ts = tasksOf('pweb').filter((t) => t.spec.desiredState === 'running');
      return ts.length === 1 ? ts[0] : undefined;
    }, 60_000, wide);
    assert.notEqual(placed.spec.nodeName, left.spec.nodeName, 'pother went to the node pweb freed');
    const h = hostOf(placed.spec.nodeName!);
    const got = fetchFrom(cluster.hosts.find((x) => x !== h)!, `http://${h.address}:${HOST_PORT}/`);
    assert.equal(got.code, 0, `pother answers on ${h.address}:${HOST_PORT}: ${got.out}`);
  });

  test('after scaling to 0 the host port is closed and no berth rule is left', async () => {
    const ids = [...tasksOf('pweb'), ...tasksOf('pother')].map((t) => t.metadata.uid);
    assert.equal(berth(server, ['scale', 'pweb', '0']).code, 0);
    assert.equal(berth(server, ['scale', 'pother', '0']).code, 0);
    await waitFor(() => ([...tasksOf('pweb'), ...tasksOf('pother')].every((t) => t.spec.desiredState !== 'running' && TERMINAL_PHASES.has(t.status.phase)) ? true : undefined), 60_000, wide);
    for (const h of cluster.hosts) {
      await waitFor(() => (/--comment "?berth:/.test(natRules(h)) ? undefined : true), 20_000, () => `${h.node}:\n${natRules(h)}`);
      const rules = natRules(h);
      for (const id of ids) assert.ok(!rules.includes(`berth:${id}`), `${h.node} has no rule of ${id}`);
      const got = fetchFrom(cluster.hosts.find((x) => x !== h)!, `http://${h.address}:${HOST_PORT}/`);
      assert.notEqual(got.code, 0, `${h.address}:${HOST_PORT} is closed: ${got.out}`);
    }
  });

  test('an ingress port reaches its single replica from every host\'s address', async () => {
    assert.equal(berth(server, ['apply', '-f', '-'], serviceYaml('pmesh', 1, MESH_PORT, 'ingress')).code, 0);
    const t = await waitFor(() => tasksOf('pmesh').find((x) => x.status.phase === 'running' && x.status.ip), 90_000, wide);
    // The control plane's endpoint push may not be wired yet: give each host the ready set the
    // way it would, through BridgeNetwork.setEndpoints in that host's netns.
    const endpoints: ServiceEndpoints[] = [{ namespace: 'default', service: 'pmesh', ips: [t.status.ip!],
      ports: [{ name: 'http', containerPort: 8080, hostPort: MESH_PORT, protocol: 'tcp', mode: 'ingress' }] }];
    const push = (h: ClusterHost, set: ServiceEndpoints[]): void => {
      const code = `const { BridgeNetwork } = await import(${JSON.stringify(join(REPO_ROOT, 'dist', 'agent', 'network', 'index.js'))});
        await new BridgeNetwork(${JSON.stringify(join(scratch, h.node))}).setEndpoints(${JSON.stringify(set)});`;
      const r = run('ip', ['netns', 'exec', h.netns, process.execPath, '--input-type=module', '-e', code]);
      assert.equal(r.code, 0, `setEndpoints in ${h.node}: ${r.stderr}`);
    };
    for (const h of cluster.hosts) push(h, endpoints);
    for (const h of cluster.hosts) {
      for (const from of cluster.hosts) {
        const got = fetchFrom(from, `http://${h.address}:${MESH_PORT}/`);
        assert.equal(got.code, 0, `wget from ${from.node} to ${h.address}:${MESH_PORT} (replica on ${t.spec.nodeName}): ${got.out}`);
        assert.match(got.out, /hello from berth/);
      }
    }
    // Admission: a host port on pmesh's ingress port would shadow the mesh on some node.
    const res = await apiFetch({ apiUrl: server, adminConfig: cluster.config }, 'POST', '/v1/namespaces/default/services', {
      body: { kind: 'Service', metadata: { name: 'pclash' }, spec: { replicas: 1, template: { image: `oci-archive:${SEED_ARCHIVE}`, ports: [{ containerPort: 80, hostPort: MESH_PORT, protocol: 'tcp' }] } } },
    });
    const body = await res.text();
    assert.equal(res.status, 409, body);
    assert.match(body, /default\/pmesh/, 'the refusal names the service holding the port');
    // Without pmesh the set is empty; an agent whose control plane pushes endpoints converges to it too.
    assert.equal(berth(server, ['delete', 'service', 'pmesh']).code, 0);
    for (const h of cluster.hosts) push(h, []);
    for (const h of cluster.hosts) {
      const from = cluster.hosts.find((x) => x !== h)!;
      await waitFor(() => (fetchFrom(from, `http://${h.address}:${MESH_PORT}/`).code !== 0 ? true : undefined), 30_000,
        () => `${h.address}:${MESH_PORT} still answers without a ready replica:\n${natRules(h)}`, 1_000);
    }
  });
});
