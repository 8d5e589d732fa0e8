/**
 * Container networking across hosts: node subnets from the cluster CIDR, an address per
 * container from its node's subnet, host-gw routes between hosts, and clean-up on stop. Traffic
 * goes only to the containers this test starts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { cidrContains, ipToNumber, parseCidr } from '../../common/cidr.js';
import type { Node, Task } from '../../control-plane/objects/types.js';
import { berth, berthJson, pidAlive, run, waitFor, type ClusterStatus, downCluster, upCluster } from '../support/cluster.js';
import { SEED_ARCHIVE, ensureSeedImage } from '../support/images.js';

const CLUSTER = `net${process.pid % 10000}`;
const SERVICE = 'netweb';
const REPLICAS = 4;

const serviceYaml = (replicas: number): string => `kind: Service
metadata: { name: ${SERVICE} }
spec:
  replicas: ${replicas}
  template:
    image: oci-archive:${SEED_ARCHIVE}
    command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
    resources: { cpu: 0.1, memory: 32Mi, pids: 32 }
`;

describe('container networking on a two-host local cluster', () => {
  let cluster: ClusterStatus;
  let server = '';

  before(() => {
    ensureSeedImage();
    cluster = upCluster(CLUSTER, 2);
    server = cluster.server;
  });

  after(() => {
    // berth0 and every veth live in the hosts' namespaces; with those gone nothing is left.
    downCluster(CLUSTER);
  });

  test('each node gets its own /24 of the cluster CIDR', async () => {
    const nodes = await waitFor(() => {
      const ns = berthJson<Node[]>(server, ['get', 'nodes']);
      return ns.length === 2 && ns.every((n) => n.status.subnet) ? ns : undefined;
    }, 30_000, () => berth(server, ['get', 'nodes', '-o', 'json']).stdout);
    const cluster16 = parseCidr('10.244.0.0/16')!;
    const subnets = nodes.map((n) => n.status.subnet!);
    assert.equal(new Set(subnets).size, 2, `distinct subnets expected, got ${subnets.join(', ')}`);
    for (const s of subnets) {
      const c = parseCidr(s);
      assert.ok(c && c.bits === 24 && cidrContains(cluster16, c.base), `${s} is a /24 inside 10.244.0.0/16`);
    }
  });

  test('containers on different hosts get addresses from their node subnets and reach each other', async () => {
    assert.equal(berth(server, ['apply', '-f', '-'], serviceYaml(REPLICAS)).code, 0);
    const tasks = await waitFor(() => {
      const ts = berthJson<Task[]>(server, ['get', 'tasks', '--service', SERVICE]).filter((t) => t.status.phase === 'running' && t.status.ip);
      return ts.length === REPLICAS ? ts : undefined;
    }, 90_000, () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout);
    const subnetOf = new Map(berthJson<Node[]>(server, ['get', 'nodes']).map((n) => [n.metadata.name, parseCidr(n.status.subnet!)!]));
    for (const t of tasks) {
      assert.ok(cidrContains(subnetOf.get(t.spec.nodeName!)!, ipToNumber(t.status.ip!)!), `${t.metadata.name}: ${t.status.ip} in ${t.spec.nodeName}'s subnet`);
    }
    assert.equal(new Set(tasks.map((t) => t.status.ip)).size, REPLICAS, 'no address handed out twice');
    const a = tasks[0]!;
    const b = tasks.find((t) => t.spec.nodeName !== a.spec.nodeName);
    assert.ok(b, `replicas on both hosts expected: ${tasks.map((t) => t.spec.nodeName).join(', ')}`);
    const got = berth(server, ['exec', a.metadata.name, '--', 'wget', '-O', '-', `http://${b.status.ip}:8080/`]);
    assert.equal(got.code, 0, `wget from ${a.metadata.name} (${a.spec.nodeName}) to ${b.status.ip} (${b.spec.nodeName}): ${got.stdout}${got.stderr}`);
    assert.ok(got.stdout.length > 0, 'a page expected');
    // The page crossed b's eth0: its agent counts the bytes per interface, loopback left out.
    const node = berthJson<Node[]>(server, ['get', 'nodes']).find((n) => n.metadata.name === b.spec.nodeName)!;
    const text = await (await fetch(node.status.metricsUrl)).text();
    for (const name of ['container_network_receive_bytes_total', 'container_network_transmit_bytes_total', 'container_network_receive_packets_total', 'container_network_transmit_packets_total']) {
      const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`task="${b.metadata.name}"`) && l.includes('interface="eth0"'));
      assert.ok(line, `${name} for ${b.metadata.name} eth0 expected`);
      assert.ok(Number(line.split(' ').pop()) > 0, `${line}: counted traffic expected`);
    }
    assert.ok(!text.includes('interface="lo"'), 'loopback is not exported');
  });

  test('an agent restart keeps every running container\'s address and connectivity', async () => {
    const before = berthJson<Task[]>(server, ['get', 'tasks', '--service', SERVICE]).filter((t) => t.status.phase === 'running');
    const host = cluster.hosts[1]!;
    // Restart the agent with its own command line, in its host's netns; `down` kills whatever runs there.
    const argv = readFileSync(`/proc/${host.agentPid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    process.kill(host.agentPid, 'SIGTERM');
    await waitFor(() => (pidAlive(host.agentPid) ? undefined : true), 20_000, () => `agent ${host.agentPid} still alive`);
    const out = openSync(`${host.stateDir}/agent-restarted.log`, 'a');
    const child = spawn('nsenter', [`--net=/run/netns/${host.netns}`, ...argv], { detached: true, stdio: ['ignore', out, out] });
    closeSync(out);
    child.unref();
    const onHost = before.filter((t) => t.spec.nodeName === host.node);
    assert.ok(onHost.length > 0, `a replica on ${host.node} expected`);
    await waitFor(() => {
      const now = berthJson<Task[]>(server, ['get', 'tasks', '--service', SERVICE]);
      const n = berthJson<Node[]>(server, ['get', 'nodes']).find((x) => x.metadata.name === host.node);
      const ready = n?.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True');
      return ready && onHost.every((t) => now.some((x) => x.metadata.uid === t.metadata.uid && x.status.phase === 'running' && x.status.ip === t.status.ip)) ? true : undefined;
    }, 30_000, () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout);
    assert.deepEqual(readdirSync(`${host.stateDir}/ipam`).sort(), onHost.map((t) => t.status.ip!).sort(), 'address records survive the restart');
    const from = before.find((t) => t.spec.nodeName !== host.node)!;
    const got = berth(server, ['exec', from.metadata.name, '--', 'wget', '-O', '-', `http://${onHost[0]!.status.ip}:8080/`]);
    assert.equal(got.code, 0, `wget after the agent restart: ${got.stdout}${got.stderr}`);
  });

  test('stopping the containers removes their veths and releases their addresses', async () => {
    assert.equal(berth(server, ['delete', 'service', SERVICE]).code, 0);
    await waitFor(() => (berthJson<Task[]>(server, ['get', 'tasks', '--service', SERVICE]).length === 0 ? true : undefined),
      60_000, () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout);
    for (const h of cluster.hosts) {
      const left = await waitFor(() => {
        const links = run('ip', ['-n', h.netns, '-br', 'link']).stdout.split('\n').filter((l) => l.startsWith('vb'));
        const addrs = readdirSync(`${h.stateDir}/ipam`);
        return links.length === 0 && addrs.length === 0 ? true : undefined;
      }, 20_000, () => `${h.node}: ${run('ip', ['-n', h.netns, '-br', 'link']).stdout} ipam=${readdirSync(`${h.stateDir}/ipam`).join(',')}`);
      assert.ok(left);
    }
  });
});
