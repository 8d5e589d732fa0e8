/**
 * The `network` benchmark:
 * - setup: what `BridgeNetwork.attach` adds to a container start (and `detach` to a stop), over
 *   N real containers of the native runtime, measured by a worker inside a network namespace the
 *   bench creates, so berth0 never appears in the machine's own namespace;
 * - throughput: bytes/s from a container on host A to a container on host B of a 2-host local
 *   cluster versus from host A's namespace to host B's directly, same tool both ways;
 * - dns_qps: A-query answers per second from host A's resolver (bridge gateway, port 53).
 * The workers are this same bench re-entered with a hidden flag (`--setup-worker`, `--dns-worker`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { ImageStore } from '../../agent/images/index.js';
import { BridgeNetwork } from '../../agent/network/index.js';
import { createRuntime, type Runtime } from '../../agent/runtime/index.js';
import type { Node } from '../../control-plane/objects/types.js';
import { berth, berthJson, clusterStatus, localCluster, REPO_ROOT, run, waitFor, type ClusterStatus } from '../support/cluster.js';
import { runDnsLoad, type DnsLoadResult } from '../support/dns-load.js';
import { ensureSeedImage, SEED_ARCHIVE } from '../support/images.js';
import { listTasks, runningWithIp, STOPS_ON_TERM } from '../support/network.js';
import { fmt, nowMs, parseFlags, positiveInt, round, summarize, table, type Bench, type Summary } from './report.js';
import { removeCgroupTree } from './runc-bundle.js';
import { measureThroughput, type ThroughputFigures } from '../support/throughput.js';

const DEFAULT_CONTAINERS = 200;
const DEFAULT_MIB = 512;
const DEFAULT_ROUNDS = 3;
const DEFAULT_QUERIES = 20_000;
const DEFAULT_WINDOW = 64;
/** WARMUP_CONTAINERS are started, attached and discarded: the first pay for page cache and lazy loading. */
const WARMUP_CONTAINERS = 3;
/** SETUP_SUBNET / SETUP_CLUSTER_CIDR live only in the bench's own netns. */
const SETUP_SUBNET = '10.250.0.0/24';
const SETUP_CLUSTER_CIDR = '10.250.0.0/16';
/** CGROUP_PARENT is the setup worker's cgroup subtree, removed entirely at the end. */
const CGROUP_PARENT = 'berth-bench-network';
const WORKER_TIMEOUT_MS = 900_000;
const DNS_DEADLINE_MS = 120_000;
const RUN_JS = join(REPO_ROOT, 'dist', 'test', 'bench', 'run.js');

/** SetupFigures are the setup worker's samples, in milliseconds. */
interface SetupFigures {
  runMs: number[];
  attachMs: number[];
  detachMs: number[];
}

/** setupWorker runs inside the bench's netns: start N containers, time attach, then time detach of each. */
async function setupWorker(containers: number): Promise<SetupFigures> {
  const work = await mkdtemp(join(tmpdir(), 'berth-bench-network-'));
  const stateDir = join(work, 'containers');
  const rt: Runtime = createRuntime({ stateDir, cgroupParent: `${CGROUP_PARENT}/c` });
  const net = new BridgeNetwork(join(work, 'agent'));
  const live: string[] = [];
  const figures: SetupFigures = { runMs: [], attachMs: [], detachMs: [] };
  try {
    const images = new ImageStore({ root: join(work, 'images') });
    await images.init();
    const image = await images.resolve(`oci-archive:${SEED_ARCHIVE}`);
    await net.recover([]);
    await net.setSubnet(SETUP_SUBNET, SETUP_CLUSTER_CIDR);
    // All N stay up until every one is attached, so the last attaches see a bridge with N ports.
    for (let i = 0; i < WARMUP_CONTAINERS + containers; i++) {
      const id = `net-${i}`;
      const t0 = nowMs();
      live.push(id);
      const st = await rt.run({
        id, hostname: id, lowerDirs: image.lowerDirs, args: STOPS_ON_TERM, env: ['PATH=/bin'], cwd: '/', uid: 0, gid: 0,
        limits: { memoryBytes: 16 * 1024 * 1024, cpuCores: 0.1, pids: 16 }, labels: { bench: 'network' },
      });
      const t1 = nowMs();
      await net.attach(id, st.pid, []);
      const t2 = nowMs();
      if (i < WARMUP_CONTAINERS) continue;
      figures.runMs.push(t1 - t0);
      figures.attachMs.push(t2 - t1);
    }
    for (const [i, id] of live.entries()) {
      const t0 = nowMs();
      await net.detach(id);
      if (i >= WARMUP_CONTAINERS) figures.detachMs.push(nowMs() - t0);
    }
    return figures;
  } finally {
    for (const id of live) {
      await net.detach(id).catch(() => undefined);
      await rt.stop(id, 0).catch(() => undefined);
      await rt.remove(id).catch(() => undefined);
    }
    await rm(work, { recursive: true, force: true });
  }
}

/** measureSetup creates a netns, runs the setup worker in it, and removes both whatever happens. */
async function measureSetup(containers: number): Promise<SetupFigures> {
  const netns = `berth-bench-net-${process.pid}`;
  const add = run('ip', ['netns', 'add', netns]);
  if (add.code !== 0) throw new Error(`ip netns add ${netns}: ${add.stderr}`);
  try {
    run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    // nsenter joins only the network namespace: `ip netns exec` would remount /sys and hide
    // /sys/fs/cgroup, which the runtime needs (the same reason deploy/local-cluster uses nsenter).
    const r = spawnSync('nsenter', [`--net=/run/netns/${netns}`, process.execPath, RUN_JS, 'network', '--setup-worker', '--containers', String(containers)],
      { encoding: 'utf8', timeout: WORKER_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 1024 * 1024 });
    if (r.status !== 0) throw new Error(`setup worker exited ${r.status ?? r.signal}`);
    const last = r.stdout.trim().split('\n').pop() ?? '';
    return JSON.parse(last) as SetupFigures;
  } finally {
    run('ip', ['netns', 'del', netns]);
    await removeCgroupTree(CGROUP_PARENT).catch((err) => process.stderr.write(`cleanup (cgroups): ${String(err)}\n`));
    if (existsSync(`/run/netns/${netns}`)) process.stderr.write(`cleanup: netns ${netns} is still there\n`);
  }
}

/** DnsFigures are the dns_qps figures, or why there are none. */
type DnsFigures = (DnsLoadResult & { queries: number; window: number; name: string }) | { skipped: string };

/** measureDns runs the DNS load from host A's netns against its gateway address, if a resolver answers there. */
function measureDns(cluster: ClusterStatus, gateway: string, name: string, queries: number, window: number): DnsFigures {
  if (!existsSync(join(REPO_ROOT, 'dist', 'agent', 'dns'))) return { skipped: 'no DNS server in the tree (agent/dns) yet' };
  const r = spawnSync('nsenter', [`--net=/run/netns/${cluster.hosts[0]!.netns}`, process.execPath, RUN_JS, 'network', '--dns-worker',
    '--server', gateway, '--name', name, '--queries', String(queries), '--window', String(window)],
  { encoding: 'utf8', timeout: DNS_DEADLINE_MS + 30_000, stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) return { skipped: `dns worker exited ${r.status ?? r.signal}` };
  const res = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as DnsLoadResult & { probe?: string };
  if (res.probe) return { skipped: res.probe };
  return { ...res, queries, window, name };
}

/** dnsWorker probes the resolver once, then runs the load; it prints one JSON line. */
async function dnsWorker(server: string, name: string, queries: number, window: number): Promise<void> {
  const probe = await runDnsLoad({ server, name, queries: 1, window: 1, deadlineMs: 3_000 });
  if (probe.answered !== 1) {
    process.stdout.write(JSON.stringify({ probe: `no answer with an address from ${server}:53 for ${name} (rcodes ${JSON.stringify(probe.rcodes)}, lost ${probe.lost})` }) + '\n');
    return;
  }
  process.stdout.write(JSON.stringify(await runDnsLoad({ server, name, queries, window, deadlineMs: DNS_DEADLINE_MS })) + '\n');
}

interface ClusterFigures {
  throughput: ThroughputFigures;
  dns: DnsFigures;
}

/** measureCluster brings up a 2-host local cluster, a container pinned to each host, then throughput and DNS. */
async function measureCluster(mib: number, rounds: number, queries: number, window: number): Promise<ClusterFigures> {
  const name = `nb${process.pid % 10000}`;
  localCluster(['down', '--name', name]);
  const up = localCluster(['up', '--hosts', '2', '--name', name], 240_000);
  try {
    if (up.code !== 0) throw new Error(`local-cluster up --name ${name} exited ${up.code}: ${up.stderr.trim().slice(-2000)}`);
    const cluster = clusterStatus(name);
    const server = cluster.server;
    const nodes = await waitFor(() => {
      const ns = berthJson<Node[]>(server, ['get', 'nodes']);
      return ns.length === 2 && ns.every((n) => n.status.subnet) ? ns : undefined;
    }, 30_000, () => berth(server, ['get', 'nodes', '-o', 'json']).stdout);
    const [hostA, hostB] = cluster.hosts as [typeof cluster.hosts[0], typeof cluster.hosts[0]];
    for (const [svc, node] of [['tput-a', hostA.node], ['tput-b', hostB.node]] as const) {
      const doc = JSON.stringify({ kind: 'Service', metadata: { name: svc }, spec: { replicas: 1,
        template: { image: `oci-archive:${SEED_ARCHIVE}`, command: STOPS_ON_TERM }, placement: { constraints: [`node.name == ${node}`] } } });
      const r = berth(server, ['apply', '-f', '-'], doc);
      if (r.code !== 0) throw new Error(`apply ${svc}: ${r.stderr}`);
    }
    const task = async (svc: string) => (await waitFor(async () => runningWithIp(await listTasks(server, svc))[0], 120_000,
      () => berth(server, ['get', 'tasks', '-o', 'wide']).stdout));
    const a = await task('tput-a');
    const b = await task('tput-b');
    if (!a.status.pid || !b.status.pid) throw new Error('tasks report no pid');
    process.stdout.write(`throughput: ${a.metadata.name} (${a.status.ip}, ${hostA.node}) → ${b.metadata.name} (${b.status.ip}, ${hostB.node}); hosts ${hostA.address} → ${hostB.address}\n`);
    const throughput = await measureThroughput({
      container: { from: `/proc/${a.status.pid}/ns/net`, to: `/proc/${b.status.pid}/ns/net`, address: b.status.ip! },
      host: { from: `/run/netns/${hostA.netns}`, to: `/run/netns/${hostB.netns}`, address: hostB.address },
      bytes: mib * 1024 * 1024, rounds,
    });
    const subnetA = nodes.find((n) => n.metadata.name === hostA.node)!.status.subnet!;
    const gateway = subnetA.replace(/\.0\/\d+$/, '.1');
    // The endpoints reach the agent's resolver asynchronously; give them a moment before probing.
    await sleep(2_000);
    const dns = measureDns(cluster, gateway, 'tput-b.default.svc.berth', queries, window);
    return { throughput, dns };
  } finally {
    const down = localCluster(['down', '--name', name], 240_000);
    if (down.code !== 0) process.stderr.write(`local-cluster down --name ${name} exited ${down.code}: ${down.stderr}\n`);
  }
}

function row(label: string, s: Summary): string[] {
  return [label, String(s.count), fmt(s.p50), fmt(s.p90), fmt(s.p99), fmt(s.mean), fmt(s.max)];
}

function report(containers: number, setup: SetupFigures, c: ClusterFigures): void {
  const attach = summarize(setup.attachMs);
  const detach = summarize(setup.detachMs);
  const start = summarize(setup.runMs);
  process.stdout.write('\n' + table(['setup (ms)', 'n', 'p50', 'p90', 'p99', 'mean', 'max'], [
    row('container start (runtime.run)', start),
    row('+ BridgeNetwork.attach', attach),
    row('BridgeNetwork.detach', detach),
  ]) + '\n');
  process.stdout.write(`attach adds ${fmt((attach.p50 / start.p50) * 100, 0)}% to a container start at p50 (${containers} containers, all up while attaching)\n\n`);
  const t = c.throughput;
  process.stdout.write(table(['throughput', 'MiB/s per round', 'median MiB/s'], [
    ['container A → container B', t.containerBps.map((v) => fmt(v / 1048576, 0)).join(', '), fmt(t.containerMedianBps / 1048576, 0)],
    ['host netns A → host netns B', t.hostBps.map((v) => fmt(v / 1048576, 0)).join(', '), fmt(t.hostMedianBps / 1048576, 0)],
  ]) + '\n');
  process.stdout.write(`throughput ratio container/host (medians): ${fmt(t.ratio, 3)} (target ≥ 0.9); ${t.note}\n\n`);
  const dnsQps = 'skipped' in c.dns ? null : c.dns.qps;
  if ('skipped' in c.dns) process.stdout.write(`dns_qps: null (${c.dns.skipped})\n\n`);
  else process.stdout.write(`dns: ${c.dns.answered} answered of ${c.dns.queries} A queries for ${c.dns.name} (${c.dns.window} in flight) in ${fmt(c.dns.elapsedMs / 1000, 2)} s: ${fmt(c.dns.qps, 0)} answers/s; other replies ${c.dns.otherReplies}, lost ${c.dns.lost}\n\n`);
  process.stdout.write(JSON.stringify({
    bench: 'network',
    containers,
    setup_p50_ms: round(attach.p50), setup_p99_ms: round(attach.p99),
    detach_p50_ms: round(detach.p50), detach_p99_ms: round(detach.p99),
    start_p50_ms: round(start.p50),
    throughput_ratio: round(t.ratio, 3),
    container_mib_s: round(t.containerMedianBps / 1048576, 1), host_mib_s: round(t.hostMedianBps / 1048576, 1),
    dns_qps: dnsQps === null ? null : round(dnsQps, 0),
    ...('skipped' in c.dns ? { dns_note: c.dns.skipped } : { dns_lost: c.dns.lost, dns_other: c.dns.otherReplies }),
  }) + '\n');
}

/** networkBench is registered in run.ts as `network`. */
export const networkBench: Bench = {
  name: 'network',
  summary: 'container network set-up (attach/detach p50/p99), cross-host throughput vs host-to-host, DNS answers/s (needs root)',
  usage: 'npm run bench -- network [--containers 200] [--mib 512] [--rounds 3] [--queries 20000] [--window 64]',
  async run(args) {
    const flags = parseFlags(args, ['containers', 'mib', 'rounds', 'queries', 'window', 'server', 'name'], ['setup-worker', 'dns-worker']);
    const num = (flag: string, dflt: number): number => (flags.has(flag) ? positiveInt(flag, flags.get(flag)!) : dflt);
    const containers = num('containers', DEFAULT_CONTAINERS);
    if (flags.has('setup-worker')) {
      process.stdout.write(JSON.stringify(await setupWorker(containers)) + '\n');
      return;
    }
    if (flags.has('dns-worker')) {
      await dnsWorker(flags.get('server') ?? '', flags.get('name') ?? '', num('queries', DEFAULT_QUERIES), num('window', DEFAULT_WINDOW));
      return;
    }
    if (process.getuid?.() !== 0) throw new Error('the network bench needs root (netns, containers, a local cluster)');
    ensureSeedImage();
    process.stdout.write(`network bench: set-up over ${containers} containers (+${WARMUP_CONTAINERS} warm-up) in netns berth-bench-net-${process.pid}\n`);
    const setup = await measureSetup(containers);
    const cluster = await measureCluster(num('mib', DEFAULT_MIB), num('rounds', DEFAULT_ROUNDS), num('queries', DEFAULT_QUERIES), num('window', DEFAULT_WINDOW));
    report(containers, setup, cluster);
  },
};
