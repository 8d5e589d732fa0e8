/**
 * The real state of one host, read from the machine rather than from berth: which containers
 * have live processes (their cgroups), the addresses their network namespaces hold
 * (/proc/PID/net/fib_trie), the veths, berth's per-container nat rules and address records in
 * the host's netns and state dir, mounts under the state dir, shims, and every process in the
 * host's network namespace. Nothing here asks the agent.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { hostVethName } from '../../agent/network/links.js';
import { UPLINK_IF } from '../support/network.js';
import type { ChaosHost } from './cluster.js';

/** LiveContainer is a container with at least one live process. */
export interface LiveContainer {
  id: string;
  /** pid is the container's first process (host pid namespace). */
  pid: number;
  /** ips are the addresses its network namespace holds (loopback left out). */
  ips: string[];
  task?: string;
  service?: string;
}

/** HostState is one host's real state at one moment. */
export interface HostState {
  node: string;
  containers: LiveContainer[];
  /** containerDirs are the runtime's state dirs (<state>/containers/<id>). */
  containerDirs: string[];
  /** cgroupIds are container cgroups under the host's cgroup parent, in any hierarchy. */
  cgroupIds: string[];
  /** veths are veth names in the host netns other than its uplink. */
  veths: string[];
  /** natIds are container ids named by berth's per-container nat rules (`berth:<id>` comments). */
  natIds: string[];
  /** ipam maps each address record to the container id it holds. */
  ipam: Map<string, string>;
  /** mounts are mount points below the state dir (the state tmpfs itself left out). */
  mounts: string[];
  /** shims maps container id → shim pid for every live berth-shim of this host. */
  shims: Map<string, number>;
  /** netnsProcesses are every process in the host's network namespace, but the agent and its shims. */
  netnsProcesses: { pid: number; cmd: string }[];
  /** errors are reads that failed (reported, never silently taken as "nothing there"). */
  errors: string[];
}

/** exec runs a command and returns its stdout; a failure rejects with its stderr. */
export function exec(cmd: string, args: string[], timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function listDir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

/** cgroupRoots are the hierarchy roots: every v1 controller mount, or the unified root on v2. */
export function cgroupRoots(): string[] {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return ['/sys/fs/cgroup'];
  return listDir('/sys/fs/cgroup').map((d) => join('/sys/fs/cgroup', d)).filter((d) => existsSync(join(d, 'cgroup.procs')));
}

/** localAddresses parses /proc/PID/net/fib_trie: the /32 host LOCAL entries, loopback left out. */
export function localAddresses(fibTrie: string): string[] {
  const out = new Set<string>();
  let last: string | undefined;
  for (const line of fibTrie.split('\n')) {
    const leaf = /\|--\s+(\d+\.\d+\.\d+\.\d+)/.exec(line);
    if (leaf) { last = leaf[1]; continue; }
    if (last && /\/32 host LOCAL/.test(line) && !last.startsWith('127.')) out.add(last);
  }
  return [...out].sort();
}

/** ProcessInfo is one process of the machine. */
export interface ProcessInfo {
  pid: number;
  cmd: string;
}

/** processTable reads every process's command line once (shared by every host of a sample). */
export function processTable(): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  for (const p of listDir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    const cmd = readText(`/proc/${p}/cmdline`);
    if (cmd !== undefined) out.push({ pid: Number(p), cmd: cmd.replaceAll('\0', ' ').trim() });
  }
  return out;
}

function cgroupProcs(dirs: string[]): number[] {
  const pids = new Set<number>();
  for (const d of dirs) {
    for (const l of (readText(join(d, 'cgroup.procs')) ?? '').split('\n')) if (l.trim()) pids.add(Number(l));
  }
  return [...pids];
}

/** readHostState reads one host; agentPid is excluded from its netns processes. */
export async function readHostState(host: ChaosHost, agentPid: number | null, procs: readonly ProcessInfo[]): Promise<HostState> {
  const errors: string[] = [];
  const containersDir = join(host.stateDir, 'containers');
  // Container cgroups: <root>/<cgroupParent>/<id> in each hierarchy; a container lives while any holds a process.
  const cgroupDirs = new Map<string, string[]>();
  for (const root of cgroupRoots()) {
    for (const id of listDir(join(root, host.cgroupParent))) {
      const d = join(root, host.cgroupParent, id);
      if (!existsSync(join(d, 'cgroup.procs'))) continue;
      cgroupDirs.set(id, [...(cgroupDirs.get(id) ?? []), d]);
    }
  }
  const containers: LiveContainer[] = [];
  for (const [id, dirs] of cgroupDirs) {
    const pids = cgroupProcs(dirs);
    if (pids.length === 0) continue;
    const recorded = Number(readText(join(containersDir, id, 'pid'))?.trim() ?? 0);
    const pid = pids.includes(recorded) ? recorded : Math.min(...pids);
    const spec = readText(join(containersDir, id, 'spec.json'));
    const labels = spec ? (JSON.parse(spec) as { spec?: { labels?: Record<string, string> } }).spec?.labels ?? {} : {};
    containers.push({ id, pid, ips: localAddresses(readText(`/proc/${pid}/net/fib_trie`) ?? ''), task: labels['berth.task'], service: labels['berth.service'] });
  }
  const shims = new Map<string, number>();
  const shimMarker = `${containersDir}/`;
  for (const p of procs) {
    if (!p.cmd.includes('berth-shim') || !p.cmd.includes(shimMarker)) continue;
    const id = p.cmd.slice(p.cmd.indexOf(shimMarker) + shimMarker.length).split(/[\s/]/)[0]!;
    shims.set(id, p.pid);
  }
  const ipam = new Map<string, string>();
  for (const ip of listDir(join(host.stateDir, 'ipam'))) {
    if (/^\d+\.\d+\.\d+\.\d+$/.test(ip)) ipam.set(ip, (readText(join(host.stateDir, 'ipam', ip)) ?? '').trim());
  }
  const mounts = (readText('/proc/self/mountinfo') ?? '').split('\n').map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(`${host.stateDir}/`));
  const [veths, natIds, netnsPids] = await Promise.all([
    exec('ip', ['-n', host.netns, '-o', 'link', 'show', 'type', 'veth']).then(
      (out) => out.split('\n').map((l) => /^\d+:\s+([^@:\s]+)/.exec(l)?.[1]).filter((n): n is string => !!n && n !== UPLINK_IF),
      (err: Error) => { errors.push(err.message); return []; }),
    exec('nsenter', [`--net=/run/netns/${host.netns}`, 'iptables', '-w', '5', '-t', 'nat', '-S']).then(
      (out) => [...out.matchAll(/--comment "?berth:([a-z0-9-]+)"?/g)].map((m) => m[1]!),
      (err: Error) => { errors.push(err.message); return []; }),
    exec('ip', ['netns', 'pids', host.netns]).then(
      (out) => out.split('\n').filter((l) => l.trim()).map(Number),
      (err: Error) => { errors.push(err.message); return [] as number[]; }),
  ]);
  const shimPids = new Set(shims.values());
  const cmdOf = new Map(procs.map((p) => [p.pid, p.cmd]));
  const netnsProcesses = netnsPids.filter((pid) => pid !== agentPid && !shimPids.has(pid))
    .map((pid) => ({ pid, cmd: cmdOf.get(pid) ?? readText(`/proc/${pid}/cmdline`)?.replaceAll('\0', ' ').trim() ?? '?' }));
  return {
    node: host.node, containers, containerDirs: listDir(containersDir), cgroupIds: [...cgroupDirs.keys()].sort(),
    veths, natIds: [...new Set(natIds)].sort(), ipam, mounts, shims, netnsProcesses, errors,
  };
}

/** vethOf is the host-side veth name the agent gives container id (agent/network/links.ts). */
export function vethOf(id: string): string {
  return hostVethName(id);
}
