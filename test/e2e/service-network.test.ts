/**
 * The issue 6 scenario on a three-host local cluster: a busybox httpd service with 3 replicas
 * publishing a hostPort (so one per host) and a client pinned to host A. The client reaches a
 * replica on host B by IP and by service name; the hostPort answers on every host's address from
 * another host's netns; after scaling to 0 the name has no address and the port is closed.
 * Traffic goes only to the cluster's own host addresses and the containers this test starts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Node, Task } from '../../control-plane/objects/types.js';
import { berth, berthJson, downCluster, upCluster, waitFor, type ClusterHost, type ClusterStatus } from '../support/cluster.js';
import { ensureSeedImage, SEED_ARCHIVE } from '../support/images.js';
import { inNetns, listTasks, runningWithIp, STOPS_ON_TERM } from '../support/network.js';

const CLUSTER = `sn${process.pid % 10000}`;
const WEB = 'web';
const CLIENT = 'client';
const HOSTS = 3;
const CONTAINER_PORT = 8080;
const HOST_PORT = 18080;
/** WGET_TIMEOUT_MS bounds one fetch from a host netns; busybox 1.35's `wget -T` segfaults (exit 139) on the host too, so the process timeout bounds it. */
const WGET_TIMEOUT_MS = 10_000;
const RUNNING_TIMEOUT_MS = 120_000;
/** PROPAGATION_TIMEOUT_MS bounds how long endpoints, DNS answers and port rules may lag the task list. */
const PROPAGATION_TIMEOUT_MS = 30_000;

// httpd daemonises under sh, which stays PID 1 and exits on SIGTERM (httpd as PID 1 would ignore
// it and cost the 10 s grace); the page names the replica so a fetch says who answered.
const WEB_COMMAND = ['sh', '-c',
  `trap 'exit 0' TERM; mkdir -p /tmp/www && echo "page from $(hostname)" > /tmp/www/index.html && httpd -p ${CONTAINER_PORT} -h /tmp/www; while :; do sleep 1; done`];

const webDoc = (replicas: number): string => JSON.stringify({
  kind: 'Service',
  metadata: { name: WEB },
  spec: {
    replicas,
    template: {
      image: `oci-archive:${SEED_ARCHIVE}`, command: WEB_COMMAND, resources: { cpu: 0.05, memory: '32Mi', pids: 32 },
      ports: [{ name: 'http', containerPort: CONTAINER_PORT, hostPort: HOST_PORT, protocol: 'tcp' }],
    },
  },
});

const clientDoc = (node: string): string => JSON.stringify({
  kind: 'Service',
  metadata: { name: CLIENT },
  spec: {
    replicas: 1,
    template: { image: `oci-archive:${SEED_ARCHIVE}`, command: STOPS_ON_TERM, resources: { cpu: 0.01, memory: '16Mi', pids: 16 } },
    placement: { constraints: [`node.name == ${node}`] },
  },
});

/** pageOf is what the replica running as task t serves. */
const pageOf = (t: Task): string => `page from ${t.metadata.name}`;

/** answeredAddresses are the addresses in `nslookup NAME` output other than the resolver's own. */
function answeredAddresses(out: string, resolver: string): string[] {
  const ips: string[] = [];
  for (const line of out.split('\n')) {
    const m = /^Address(?:\s+\d+)?:?\s+(\d+\.\d+\.\d+\.\d+)(:53)?/.exec(line.trim());
    if (m && !m[2] && m[1] !== resolver) ips.push(m[1]!);
  }
  return ips.sort();
}

describe('a replicated httpd service reached by IP, by name and through its hostPort across three hosts', () => {
  let cluster: ClusterStatus;
  let server = '';
  let hostA: ClusterHost;
  let web: Task[] = [];
  let client: Task;

  /** clientExec runs a command in the client container on host A. */
  const clientExec = (args: string[]): ReturnType<typeof berth> => berth(server, ['exec', client.metadata.name, '--', ...args]);
  /** resolver is host A's DNS address: its bridge gateway, the .1 of its subnet. */
  let resolver = '';

  before(async () => {
    ensureSeedImage();
    cluster = upCluster(CLUSTER, HOSTS);
    server = cluster.server;
    hostA = cluster.hosts[0]!;
    const nodes = await waitFor(() => {
      const ns = berthJson<Node[]>(server, ['get', 'nodes']);
      return ns.length === HOSTS && ns.every((n) => n.status.subnet) ? ns : undefined;
    }, 30_000, () => berth(server, ['get', 'nodes', '-o', 'json']).stdout);
    const subnetA = nodes.find((n) => n.metadata.name === hostA.node)!.status.subnet!;
    resolver = subnetA.replace(/\.0\/\d+$/, '.1');
  });

  after(() => {
    berth(server, ['delete', 'service', CLIENT]);
    berth(server, ['delete', 'service', WEB]);
    downCluster(CLUSTER);
  });

  test('the hostPort puts one replica on each host; the client runs on host A', async () => {
    assert.equal(berth(server, ['apply', '-f', '-'], webDoc(HOSTS)).code, 0);
    assert.equal(berth(server, ['apply', '-f', '-'], clientDoc(hostA.node)).code, 0);
    web = await waitFor(async () => {
      const ts = runningWithIp(await listTasks(server, WEB));
      return ts.length === HOSTS ? ts : undefined;
    }, RUNNING_TIMEOUT_MS, () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout);
    [client] = await waitFor(async () => {
      const ts = runningWithIp(await listTasks(server, CLIENT));
      return ts.length === 1 ? ts : undefined;
    }, RUNNING_TIMEOUT_MS, () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout) as [Task];
    assert.deepEqual(web.map((t) => t.spec.nodeName).sort(), cluster.hosts.map((h) => h.node).sort(), 'one web replica per host');
    assert.equal(client.spec.nodeName, hostA.node, 'the client is pinned to host A');
  });

  test('the client on host A fetches a page from a replica on host B by IP', () => {
    const b = web.find((t) => t.spec.nodeName !== hostA.node)!;
    const got = clientExec(['wget', '-O', '-', `http://${b.status.ip}:${CONTAINER_PORT}/`]);
    assert.equal(got.code, 0, `wget ${b.status.ip} (${b.spec.nodeName}) from ${hostA.node}: ${got.stdout}${got.stderr}`);
    assert.match(got.stdout, new RegExp(pageOf(b)), 'the page of the replica on host B');
  });

  test('the service name resolves to every ready replica and serves a page', async () => {
    const ips = web.map((t) => t.status.ip!).sort();
    for (const name of [WEB, `${WEB}.default.svc.berth`]) {
      const answered = await waitFor(() => {
        const r = clientExec(['nslookup', name]);
        const got = answeredAddresses(r.stdout, resolver);
        return got.length === ips.length ? got : undefined;
      }, PROPAGATION_TIMEOUT_MS, () => `nslookup ${name}: ${clientExec(['nslookup', name]).stdout}`);
      assert.deepEqual(answered, ips, `${name} answers with the replicas' addresses (host B's among them)`);
    }
    const got = clientExec(['wget', '-O', '-', `http://${WEB}:${CONTAINER_PORT}/`]);
    assert.equal(got.code, 0, `wget http://${WEB}:${CONTAINER_PORT}/: ${got.stdout}${got.stderr}`);
    assert.ok(web.some((t) => got.stdout.includes(pageOf(t))), `a replica's page expected, got ${JSON.stringify(got.stdout)}`);
  });

  test('the hostPort answers on every host\'s address from another host\'s netns', async () => {
    for (const [i, h] of cluster.hosts.entries()) {
      const from = cluster.hosts[(i + 1) % HOSTS]!;
      const local = web.find((t) => t.spec.nodeName === h.node)!;
      const url = `http://${h.address}:${HOST_PORT}/`;
      const got = await waitFor(() => {
        const r = inNetns(from.netns, 'busybox', ['wget', '-O', '-', url], WGET_TIMEOUT_MS);
        return r.code === 0 ? r : undefined;
      }, PROPAGATION_TIMEOUT_MS, () => {
        const r = inNetns(from.netns, 'busybox', ['wget', '-O', '-', url], WGET_TIMEOUT_MS);
        return `wget ${url} from ${from.netns}: exit ${r.code} ${r.stderr}`;
      });
      assert.match(got.stdout, new RegExp(pageOf(local)), `${url} reaches the replica on ${h.node}`);
    }
  });

  test('after scaling to 0 the name has no address and the port is closed on every host', async () => {
    const was = new Set(web.map((t) => t.status.ip!));
    assert.equal(berth(server, ['scale', WEB, '0']).code, 0);
    await waitFor(async () => ((await listTasks(server, WEB)).length === 0 ? true : undefined),
      RUNNING_TIMEOUT_MS, () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout);
    for (const name of [WEB, `${WEB}.default.svc.berth`]) {
      // The resolver must have been asked (its address is in the output), so a failed exec cannot pass.
      const out = await waitFor(() => {
        const r = clientExec(['nslookup', name]);
        const text = `${r.stdout}${r.stderr}`;
        return text.includes(resolver) && answeredAddresses(r.stdout, resolver).length === 0 ? text : undefined;
      }, PROPAGATION_TIMEOUT_MS, () => `nslookup ${name} still answers: ${clientExec(['nslookup', name]).stdout}`);
      assert.ok(![...was].some((ip) => out.includes(ip)), `${name} names none of the replicas' former addresses:\n${out}`);
    }
    for (const [i, h] of cluster.hosts.entries()) {
      const from = cluster.hosts[(i + 1) % HOSTS]!;
      const url = `http://${h.address}:${HOST_PORT}/`;
      const refused = await waitFor(() => {
        const r = inNetns(from.netns, 'busybox', ['wget', '-O', '-', url], WGET_TIMEOUT_MS);
        return r.code !== 0 && /refused/i.test(r.stderr) ? r : undefined;
      }, PROPAGATION_TIMEOUT_MS, () => {
        const r = inNetns(from.netns, 'busybox', ['wget', '-O', '-', url], WGET_TIMEOUT_MS);
        return `${url} from ${from.netns}: exit ${r.code} ${r.stdout}${r.stderr}`;
      });
      assert.notEqual(refused.code, 0, `${url} is closed`);
    }
  });
});
