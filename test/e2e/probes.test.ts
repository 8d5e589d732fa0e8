/**
 * Readiness and startup checks on a two-host local cluster, end to end: a replica whose
 * readiness check fails leaves the service's DNS answers (asked of the client's node resolver,
 * the other host) and the routing mesh, without being restarted, and comes back when the check
 * passes again; a container whose startup check never passes is restarted after its
 * failureThreshold, never started nor ready; one whose startup check passes late runs on
 * unrestarted. Traffic goes only to the containers and hosts this test creates.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Node, Task } from '../../control-plane/objects/types.js';
import { berth, berthJson, downCluster, REPO_ROOT, run, upCluster, waitFor, type ClusterHost, type ClusterStatus } from '../support/cluster.js';
import { SEED_ARCHIVE, ensureSeedImage } from '../support/images.js';

const CLUSTER = `prb${process.pid % 10000}`;
const WAIT_MS = 90_000;
/** CHANGE_WAIT_MS bounds one readiness change reaching DNS: probes at 1 s, a status write, the endpoints push, with slack for a loaded machine. */
const CHANGE_WAIT_MS = 30_000;
const MESH_PORT = 18_931;

const servicesYaml = (clientNode: string): string => `kind: Service
metadata: { name: web }
spec:
  replicas: 2
  placement: { spread: node.name }
  template:
    image: oci-archive:${SEED_ARCHIVE}
    command: ["sh", "-c", "touch /tmp/ready; exec sleep 100000"]
    resources: { cpu: 0.1, memory: 32Mi, pids: 32 }
    ports: [{ name: http, containerPort: 8080, hostPort: ${MESH_PORT}, protocol: tcp, mode: ingress }]
    readiness: { exec: { command: ["test", "-f", "/tmp/ready"] }, intervalSeconds: 1, failureThreshold: 1 }
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

const startupYaml = `kind: Service
metadata: { name: never-starts }
spec:
  replicas: 1
  template:
    image: oci-archive:${SEED_ARCHIVE}
    command: ["sleep", "100000"]
    resources: { cpu: 0.1, memory: 32Mi, pids: 32 }
    startup: { exec: { command: ["test", "-f", "/tmp/started"] }, intervalSeconds: 1, failureThreshold: 3 }
    readiness: { exec: { command: ["true"] }, intervalSeconds: 1 }
    restart: { policy: always, backoffSeconds: 3, maxBackoffSeconds: 3 }
---
kind: Service
metadata: { name: starts-late }
spec:
  replicas: 1
  template:
    image: oci-archive:${SEED_ARCHIVE}
    command: ["sh", "-c", "sleep 3; touch /tmp/started; exec sleep 100000"]
    resources: { cpu: 0.1, memory: 32Mi, pids: 32 }
    startup: { exec: { command: ["test", "-f", "/tmp/started"] }, intervalSeconds: 1, failureThreshold: 30 }
    health: { exec: { command: ["test", "-f", "/tmp/started"] }, intervalSeconds: 1, failureThreshold: 1 }
`;

// The resolver watch: asks a node's DNS server for one name every DNS_WATCH_EVERY_MS from inside
// that node's netns and prints `{"at": ms, "ips": "a,b"}` whenever the answer changes, so the
// moment a replica leaves the answers is seen to within that period (berth exec is too slow).
const DNS_WATCH_EVERY_MS = 50;
const DNS_WATCH_SCRIPT = `
const [codecUrl, server, name, everyMs] = process.argv.slice(1);
const { encodeMessage, decodeMessage, addressOf, RRType, CLASS_IN } = await import(codecUrl);
const sock = (await import('node:dgram')).createSocket('udp4');
let last;
let id = 0;
sock.on('message', (buf) => {
  const m = decodeMessage(buf);
  if (!m) return;
  const ips = m.answers.map(addressOf).filter(Boolean).sort().join(',');
  if (ips !== last) { last = ips; process.stdout.write(JSON.stringify({ at: Date.now(), ips }) + '\\n'); }
});
setInterval(() => {
  id = (id + 1) & 0xffff;
  const flags = { qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, rcode: 0 };
  sock.send(encodeMessage({ id, flags, questions: [{ name, type: RRType.A, class: CLASS_IN }], answers: [], authorities: [], additionals: [] }), 53, server);
}, Number(everyMs));
`;

/** DnsChange is one change of the answers the resolver watch saw. */
interface DnsChange {
  at: number;
  ips: string;
}

/** watchDns starts the resolver watch in host's netns against its DNS server at bridge; the caller stops it. */
function watchDns(host: ClusterHost, bridge: string, name: string): { changes: DnsChange[]; stop: () => void } {
  const codec = pathToFileURL(join(REPO_ROOT, 'dist', 'agent', 'dns', 'codec.js')).href;
  const child = spawn('ip', ['netns', 'exec', host.netns, process.execPath, '--input-type=module', '-e', DNS_WATCH_SCRIPT, codec, bridge, name, String(DNS_WATCH_EVERY_MS)],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const changes: DnsChange[] = [];
  let buf = '';
  child.stdout.on('data', (b: Buffer) => {
    buf += b.toString('utf8');
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      changes.push(JSON.parse(buf.slice(0, i)) as DnsChange);
      buf = buf.slice(i + 1);
    }
  });
  return { changes, stop: () => child.kill() };
}

/** logTime is the time of the last line of an agent log that says msg about container id, or undefined. */
function logTime(log: string, msg: string, id: string): number | undefined {
  const line = readFileSync(log, 'utf8').split('\n').filter((l) => l.includes(` ${msg} `) && l.includes(`id=${id}`)).at(-1);
  return line === undefined ? undefined : Date.parse(line.slice(0, line.indexOf(' ')));
}

/** answersIn reads the addresses busybox nslookup printed (the server's own line carries a port and is skipped). */
function answersIn(out: string): string[] {
  return [...out.matchAll(/^Address:\s+(\d+\.\d+\.\d+\.\d+)$/gm)].map((m) => m[1]!).sort();
}

describe('readiness and startup checks on a two-host local cluster', () => {
  let cluster: ClusterStatus;
  let server = '';
  let client = '';

  const tasksOf = (service: string): Task[] => berthJson<Task[]>(server, ['get', 'tasks', '--service', service]);
  const lookup = (): { code: number; out: string; ips: string[] } => {
    const r = berth(server, ['exec', client, '--', 'nslookup', 'web.default.svc.berth']);
    return { code: r.code, out: r.stdout + r.stderr, ips: answersIn(r.stdout) };
  };
  // meshTargets lists the replica addresses the client host's routing mesh sends MESH_PORT to.
  const meshTargets = (): string[] => {
    const r = run('ip', ['netns', 'exec', cluster.hosts[0]!.netns, 'iptables', '-t', 'nat', '-S', 'BERTH-INGRESS']);
    assert.equal(r.code, 0, `iptables -S BERTH-INGRESS: ${r.stderr}`);
    return [...r.stdout.matchAll(new RegExp(`--dport ${MESH_PORT} .*--to-destination (\\d+\\.\\d+\\.\\d+\\.\\d+):8080`, 'g'))].map((m) => m[1]!).sort();
  };

  before(async () => {
    ensureSeedImage();
    cluster = upCluster(CLUSTER, 2);
    server = cluster.server;
    const applied = berth(server, ['apply', '-f', '-'], servicesYaml(cluster.hosts[0]!.node));
    assert.equal(applied.code, 0, `apply: ${applied.stderr}`);
    const tasks = await waitFor(() => {
      const ts = berthJson<Task[]>(server, ['get', 'tasks']).filter((t) => t.status.phase === 'running' && t.status.ready && t.status.ip);
      return ts.length === 3 ? ts : undefined;
    }, WAIT_MS, () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout);
    client = tasks.find((t) => t.spec.service === 'client')!.metadata.name;
    assert.equal(new Set(tasks.filter((t) => t.spec.service === 'web').map((t) => t.spec.nodeName)).size, 2, 'web replicas on both hosts');
  });

  after(() => {
    downCluster(CLUSTER);
  });

  test('a replica failing readiness leaves DNS and the mesh without a restart, and returns when it passes', async (t) => {
    const web = tasksOf('web');
    const all = web.map((w) => w.status.ip!).sort();
    // The victim runs on the other host than the client, so the change travels agent → etcd → gateway → the client's agent.
    const victim = web.find((w) => w.spec.nodeName !== cluster.hosts[0]!.node)!;
    const keep = web.find((w) => w !== victim)!;
    const before = await waitFor(() => {
      const l = lookup();
      return l.code === 0 && l.ips.join() === all.join() ? l : undefined;
    }, CHANGE_WAIT_MS, () => `want ${all.join(', ')}; saw ${lookup().out}`);
    assert.deepEqual(before.ips, all);
    assert.deepEqual(meshTargets(), all, 'the mesh spreads over both ready replicas');
    assert.equal(victim.status.started, true, 'started without a startup check');

    // Time the path: the victim's agent judging it unready → status → etcd → gateway → the client node's resolver.
    const clientHost = cluster.hosts[0]!;
    const subnet = berthJson<Node[]>(server, ['get', 'nodes']).find((n) => n.metadata.name === clientHost.node)!.status.subnet!;
    const bridge = subnet.replace(/\.0\/\d+$/, '.1');
    const watch = watchDns(clientHost, bridge, 'web.default.svc.berth');
    t.after(() => watch.stop());
    await waitFor(() => (watch.changes.at(-1)?.ips === all.join() ? true : undefined), CHANGE_WAIT_MS, () => `resolver watch: ${JSON.stringify(watch.changes)}`);

    const removing = Date.now();
    const rm = berth(server, ['exec', victim.metadata.name, '--', 'rm', '/tmp/ready']);
    assert.equal(rm.code, 0, `berth exec rm: ${rm.stderr}`);
    const removed = Date.now();
    const out = await waitFor(() => {
      const l = lookup();
      return l.code === 0 && l.ips.join() === keep.status.ip ? l : undefined;
    }, CHANGE_WAIT_MS, () => `want only ${keep.status.ip}; saw ${lookup().out}`);
    assert.deepEqual(out.ips, [keep.status.ip]);
    // berth() blocks this process's event loop; the watch's lines are read once it turns again.
    const left = await waitFor(() => watch.changes.find((c) => c.at >= removing && c.ips === keep.status.ip), CHANGE_WAIT_MS,
      () => `resolver watch: ${JSON.stringify(watch.changes)}`, 20);
    const victimHost = cluster.hosts.find((h) => h.node === victim.spec.nodeName) as ClusterHost & { log: string };
    const judged = logTime(victimHost.log, 'task not ready', victim.status.containerId!);
    t.diagnostic(`left DNS ${left.at - removed}..${left.at - removing} ms after the file was removed (probe interval 1000 ms, failureThreshold 1); `
      + `${judged ? left.at - judged : '?'} ms after its agent judged it unready`);
    await waitFor(() => (meshTargets().join() === keep.status.ip ? true : undefined), CHANGE_WAIT_MS,
      () => `mesh: want only ${keep.status.ip}; saw ${meshTargets().join(', ')}`);

    const unready = tasksOf('web').find((w) => w.metadata.uid === victim.metadata.uid)!;
    assert.deepEqual(
      [unready.status.phase, unready.status.ready, unready.status.restarts, unready.status.containerId, unready.status.pid],
      ['running', false, 0, victim.status.containerId, victim.status.pid], 'phase, ready, restarts, container and pid of the unready replica');
    assert.match(unready.status.lastReadinessProbe ?? '', /^exec test: exit 1/);
    const described = berth(server, ['describe', 'task', victim.metadata.name]);
    assert.equal(described.code, 0, described.stderr);
    assert.match(described.stdout, /Ready:\s+false\n/);
    assert.match(described.stdout, /Last readiness probe:\s+exec test: exit 1/);
    assert.match(described.stdout, /Readiness:\s+exec \[test -f \/tmp\/ready\]/);

    const touch = berth(server, ['exec', victim.metadata.name, '--', 'touch', '/tmp/ready']);
    assert.equal(touch.code, 0, `berth exec touch: ${touch.stderr}`);
    const back = await waitFor(() => {
      const l = lookup();
      return l.code === 0 && l.ips.join() === all.join() ? l : undefined;
    }, CHANGE_WAIT_MS, () => `want ${all.join(', ')} again; saw ${lookup().out}`);
    assert.deepEqual(back.ips, all);
    await waitFor(() => (meshTargets().join() === all.join() ? true : undefined), CHANGE_WAIT_MS,
      () => `mesh: want ${all.join(', ')} again; saw ${meshTargets().join(', ')}`);
    const again = tasksOf('web').find((w) => w.metadata.uid === victim.metadata.uid)!;
    assert.deepEqual([again.status.ready, again.status.restarts, again.status.pid], [true, 0, victim.status.pid], 'ready, restarts and pid after coming back');
  });

  test('a container whose startup check never passes is restarted after failureThreshold; one that starts late is not', async () => {
    assert.equal(berth(server, ['apply', '-f', '-'], startupYaml).code, 0);
    const everReadyOrStarted: string[] = [];
    const waits: string[] = [];
    const restarted = await waitFor(() => {
      const ts = tasksOf('never-starts');
      for (const x of ts) {
        if (x.status.ready || x.status.started) everReadyOrStarted.push(`${x.metadata.name} ready=${x.status.ready} started=${x.status.started}`);
        if (x.status.reason) waits.push(`${x.status.reason}: ${x.status.message ?? ''}`);
      }
      return ts.find((x) => (x.status.restarts ?? 0) >= 1);
    }, WAIT_MS, () => JSON.stringify(tasksOf('never-starts').map((x) => x.status)), 200);
    assert.deepEqual(everReadyOrStarted, [], 'a container that never passed its startup check is never started nor ready');
    assert.equal(tasksOf('never-starts').length, 1, 'restarted in place, not replaced');
    assert.equal(restarted.status.phase, 'running', 'phase while restarting');
    // The back-off (3 s) keeps the reason visible to a 200 ms poll.
    assert.ok(waits.some((w) => /^Unhealthy: back-off 3s restarting unhealthy container \(startup check: exec test: exit 1\)$/.test(w)),
      `expected an Unhealthy wait naming the startup check; saw ${JSON.stringify([...new Set(waits)])}`);
    assert.match(restarted.status.lastStartupProbe ?? '', /^exec test: exit 1/);

    const late = await waitFor(() => {
      const s = tasksOf('starts-late')[0]?.status;
      return s?.phase === 'running' && s.started && s.ready ? s : undefined;
    }, WAIT_MS, () => JSON.stringify(tasksOf('starts-late')[0]?.status));
    assert.deepEqual([late.restarts, late.lastStartupProbe], [0, 'exec test: exit 0'], 'restarts and last startup outcome of the late starter');
  });
});
