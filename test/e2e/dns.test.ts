/**
 * Service discovery: a client container on one host of a two-host local cluster
 * resolves a service whose replicas run on both hosts, by bare name and by FQDN, to exactly the
 * ready replicas' addresses, and fetches a page by name; a replica that turns unready leaves the
 * answers, a service scaled to 0 exists without an address, and an unknown name is NXDOMAIN.
 * Last, the agent restarts with an upstream configured (a fake resolver this test runs on the
 * cluster bridge): the resolver binds again and relays foreign names to it.
 * Traffic goes only to the containers and hosts this test creates.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createSocket } from 'node:dgram';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { CLASS_IN, decodeMessage, encodeMessage, RRType } from '../../agent/dns/codec.js';
import type { Node, Task } from '../../control-plane/objects/types.js';
import { berth, berthJson, pidAlive, REPO_ROOT, waitFor, type ClusterStatus, downCluster, upCluster, cliEnv } from '../support/cluster.js';
import { SEED_ARCHIVE, ensureSeedImage } from '../support/images.js';

const CLUSTER = `dns${process.pid % 10000}`;
const WAIT_MS = 90_000;
/** UNREADY_WAIT_MS covers one health interval (1 s), the status write and the endpoints push, with slack. */
const UNREADY_WAIT_MS = 20_000;

const servicesYaml = (clientNode: string, replicas: number): string => `kind: Service
metadata: { name: web }
spec:
  replicas: ${replicas}
  placement: { spread: node.name }
  template:
    image: oci-archive:${SEED_ARCHIVE}
    command: ["sh", "-c", "echo hello-$(hostname) > /tmp/index.html; touch /tmp/ready; exec httpd -f -p 8080 -h /tmp"]
    resources: { cpu: 0.1, memory: 32Mi, pids: 32 }
    # The startup check holds the one-strike health check until the shell has made the file, so a
    # first probe that wins the race against it cannot restart the replica.
    startup: { exec: { command: ["test", "-f", "/tmp/ready"] }, intervalSeconds: 1, failureThreshold: 30 }
    health: { exec: { command: ["test", "-f", "/tmp/ready"] }, intervalSeconds: 1, failureThreshold: 1 }
    # A long back-off keeps an unhealthy replica out of service long enough to observe.
    restart: { policy: always, backoffSeconds: 300, maxBackoffSeconds: 300 }
---
kind: Service
metadata: { name: client }
spec:
  replicas: 1
  placement: { constraints: ["node.name == ${clientNode}"] }
  template:
    image: oci-archive:${SEED_ARCHIVE}
    command: ["sleep", "100000"]
    resources: { cpu: 0.1, memory: 32Mi, pids: 32 }
`;

/** answersIn reads the addresses busybox nslookup printed (the server's own line carries a port and is skipped). */
function answersIn(out: string): string[] {
  return [...out.matchAll(/^Address:\s+(\d+\.\d+\.\d+\.\d+)$/gm)].map((m) => m[1]!).sort();
}

/** lookupAsync runs nslookup through the CLI without blocking this process (whose event loop serves the fake upstream). */
async function lookupAsync(server: string, task: string, name: string): Promise<{ out: string; ips: string[] }> {
  const r = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'dist', 'control-plane', 'cli', 'main.js'), 'exec', task, '--', 'nslookup', name], {
    env: cliEnv(server), timeout: 60_000,
  }).catch((err: { stdout?: string; stderr?: string }) => ({ stdout: err.stdout ?? '', stderr: err.stderr ?? '' }));
  return { out: r.stdout + r.stderr, ips: answersIn(r.stdout) };
}

describe('service discovery on a two-host local cluster', () => {
  let cluster: ClusterStatus;
  let server = '';
  let client = '';

  const readyIps = (): string[] => berthJson<Task[]>(server, ['get', 'tasks', '--service', 'web'])
    .filter((t) => t.status.phase === 'running' && t.status.ready && t.status.ip).map((t) => t.status.ip!).sort();
  const lookup = (name: string): { code: number; out: string; ips: string[] } => {
    const r = berth(server, ['exec', client, '--', 'nslookup', name]);
    return { code: r.code, out: r.stdout + r.stderr, ips: answersIn(r.stdout) };
  };

  before(async () => {
    ensureSeedImage();
    cluster = upCluster(CLUSTER, 2);
    server = cluster.server;
    const hostA = cluster.hosts[0]!.node;
    assert.equal(berth(server, ['apply', '-f', '-'], servicesYaml(hostA, 2)).code, 0);
    const tasks = await waitFor(() => {
      const ts = berthJson<Task[]>(server, ['get', 'tasks']).filter((t) => t.status.phase === 'running' && t.status.ready && t.status.ip);
      return ts.length === 3 ? ts : undefined;
    }, WAIT_MS, () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout);
    client = tasks.find((t) => t.spec.service === 'client')!.metadata.name;
    const webNodes = new Set(tasks.filter((t) => t.spec.service === 'web').map((t) => t.spec.nodeName));
    assert.equal(webNodes.size, 2, 'web replicas on both hosts');
  });

  after(() => {
    downCluster(CLUSTER);
  });

  test('the client container\'s resolv.conf points at its node\'s resolver with the namespace search list', () => {
    const r = berth(server, ['exec', client, '--', 'cat', '/etc/resolv.conf']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^nameserver 10\.244\.\d+\.1\nsearch default\.svc\.berth svc\.berth\noptions ndots:2\n$/);
  });

  test('the FQDN and the bare name resolve to exactly the ready replicas, across hosts', async () => {
    const want = readyIps();
    assert.equal(want.length, 2);
    const fqdn = await waitFor(() => {
      const r = lookup('web.default.svc.berth');
      return r.code === 0 && r.ips.join() === want.join() ? r : undefined;
    }, UNREADY_WAIT_MS, () => `want ${want.join(', ')}; saw ${lookup('web.default.svc.berth').out}`);
    assert.deepEqual(fqdn.ips, want);
    // busybox nslookup asks NAME.<each search domain> and exits 1 when any of them is NXDOMAIN
    // (web.svc.berth is); the answers it prints are what counts.
    const bare = lookup('web');
    assert.deepEqual(bare.ips, want, bare.out);
    assert.match(bare.out, /Name:\s+web\.default\.svc\.berth/);
  });

  test('a page is fetched by service name (libc resolver, search list applied)', () => {
    for (const name of ['web', 'web.default', 'web.default.svc.berth']) {
      const r = berth(server, ['exec', client, '--', 'wget', '-O', '-', `http://${name}:8080/`]);
      assert.equal(r.code, 0, `wget http://${name}:8080/: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /^hello-web-/, name);
    }
  });

  test('an unknown name is NXDOMAIN and is counted in the node metrics', async () => {
    const r = lookup('nosuch.default.svc.berth');
    assert.notEqual(r.code, 0);
    assert.match(r.out, /can't find nosuch\.default\.svc\.berth: NXDOMAIN/);
    assert.deepEqual(r.ips, []);
    const node = berthJson<Node[]>(server, ['get', 'nodes']).find((n) => n.metadata.name === cluster.hosts[0]!.node)!;
    const text = await (await fetch(node.status.metricsUrl, { signal: AbortSignal.timeout(5_000) })).text();
    assert.match(text, /berth_agent_dns_queries_total\{rcode="NXDOMAIN"\} [1-9]/);
  });

  test('a replica that turns unready drops out of the answers', async () => {
    const tasks = berthJson<Task[]>(server, ['get', 'tasks', '--service', 'web']);
    const victim = tasks.find((t) => t.spec.nodeName !== cluster.hosts[0]!.node)!;
    const keep = tasks.find((t) => t !== victim)!;
    assert.equal(berth(server, ['exec', victim.metadata.name, '--', 'rm', '/tmp/ready']).code, 0);
    const r = await waitFor(() => {
      const l = lookup('web.default.svc.berth');
      return l.code === 0 && l.ips.join() === keep.status.ip ? l : undefined;
    }, UNREADY_WAIT_MS, () => `want only ${keep.status.ip}; saw ${lookup('web.default.svc.berth').out}`);
    assert.deepEqual(r.ips, [keep.status.ip]);
  });

  test('a service scaled to 0 still exists but has no address', async () => {
    assert.equal(berth(server, ['scale', 'web', '0']).code, 0);
    const r = await waitFor(() => {
      const l = lookup('web.default.svc.berth');
      return l.code === 0 && l.ips.length === 0 ? l : undefined;
    }, WAIT_MS, () => lookup('web.default.svc.berth').out);
    assert.doesNotMatch(r.out, /NXDOMAIN/);
  });

  test('after an agent restart with dns.upstreams the resolver answers again and relays foreign names', async (t) => {
    const host = cluster.hosts[0]!;
    const bridge = cluster.registry.slice(0, cluster.registry.lastIndexOf(':'));
    const upstream = createSocket('udp4');
    t.after(() => upstream.close());
    await new Promise<void>((resolve) => upstream.bind(0, bridge, resolve));
    let relayed = 0;
    upstream.on('message', (msg, rinfo) => {
      const q = decodeMessage(msg);
      if (!q || q.questions.length !== 1) return;
      relayed++;
      const a = q.questions[0]!.type === RRType.A ? [{ name: q.questions[0]!.name, type: RRType.A, class: CLASS_IN, ttl: 30, rdata: Uint8Array.from([192, 0, 2, 7]) }] : [];
      upstream.send(encodeMessage({ ...q, flags: { ...q.flags, qr: true, ra: true }, answers: a }), rinfo.port, rinfo.address);
    });
    const argv = readFileSync(`/proc/${host.agentPid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const at = argv.indexOf('--config');
    assert.ok(at > 0, `agent runs with --config: ${argv.join(' ')}`);
    const config = `${host.stateDir}/agent-config-dns.yaml`;
    writeFileSync(config, `${readFileSync(argv[at + 1]!, 'utf8')}dns: { upstreams: ["${bridge}:${upstream.address().port}"] }\n`);
    argv[at + 1] = config;
    process.kill(host.agentPid, 'SIGTERM');
    await waitFor(() => (pidAlive(host.agentPid) ? undefined : true), 20_000, () => `agent ${host.agentPid} still alive`);
    // `local-cluster down` kills whatever runs in the host's netns, this agent included.
    const out = openSync(`${host.stateDir}/agent-restarted.log`, 'a');
    const child = spawn('nsenter', [`--net=/run/netns/${host.netns}`, ...argv], { detached: true, stdio: ['ignore', out, out] });
    closeSync(out);
    child.unref();

    let last = '';
    const foreign = await waitFor(async () => {
      const l = await lookupAsync(server, client, 'example.test');
      last = l.out;
      return l.ips.includes('192.0.2.7') ? l : undefined;
    }, WAIT_MS, () => `${last}\nagent log: ${readFileSync(`${host.stateDir}/agent-restarted.log`, 'utf8').slice(-2_000)}`);
    assert.deepEqual(foreign.ips, ['192.0.2.7']);
    assert.ok(relayed > 0);
    // berth's own names are still answered locally (web exists, scaled to 0), not relayed.
    const before = relayed;
    const own = await lookupAsync(server, client, 'web.default.svc.berth');
    assert.doesNotMatch(own.out, /can't find/, own.out);
    assert.deepEqual(own.ips, []);
    assert.equal(relayed, before, 'svc.berth names are never relayed');
  });
});
