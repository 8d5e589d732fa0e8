/**
 * Helpers for the networking tests and bench: what a local-cluster host's network
 * namespace holds (veths, nat rules), the agent's address records, and the task list read
 * straight from the REST API (a poll every few hundred ms through the CLI would cost a Node
 * start-up per sample).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Task } from '../../control-plane/objects/types.js';
import { configFor, run } from './cluster.js';
import { apiJson } from './secure.js';

/** STOPS_ON_TERM exits on SIGTERM: busybox sh runs the trap once its `sleep 1` returns (≤ 1 s), where `sleep` as PID 1 would cost the 10 s grace. */
export const STOPS_ON_TERM = ['sh', '-c', "trap 'exit 0' TERM; while :; do sleep 1; done"];

/** UPLINK_IF is the host netns' own veth to the cluster bridge (deploy/lib/cluster-net.sh), never a container's. */
export const UPLINK_IF = 'eth0';

/**
 * listTasks reads a service's tasks from GET /v1/namespaces/NS/tasks?service=S as the admin of
 * the config registered for server (clusterStatus or useConfigFor); a non-2xx throws.
 */
export async function listTasks(server: string, service: string, namespace = 'default'): Promise<Task[]> {
  const adminConfig = configFor(server);
  if (!adminConfig) throw new Error(`no berth config registered for ${server}: read the cluster with clusterStatus() or call useConfigFor()`);
  const r = await apiJson<{ items: Task[] }>({ apiUrl: server, adminConfig }, 'GET',
    `/v1/namespaces/${namespace}/tasks?service=${encodeURIComponent(service)}`, { signal: AbortSignal.timeout(10_000) });
  if (r.status !== 200) throw new Error(`GET tasks of ${service}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.items;
}

/** runningWithIp keeps the tasks the system reports running with an address. */
export function runningWithIp(tasks: readonly Task[]): Task[] {
  return tasks.filter((t) => t.status.phase === 'running' && t.status.ip);
}

/** duplicateIps lists every address held by more than one task, with the task names. */
export function duplicateIps(tasks: readonly Task[]): string[] {
  const byIp = new Map<string, string[]>();
  for (const t of tasks) {
    if (!t.status.ip) continue;
    byIp.set(t.status.ip, [...(byIp.get(t.status.ip) ?? []), t.metadata.name]);
  }
  return [...byIp].filter(([, names]) => names.length > 1).map(([ip, names]) => `${ip}: ${names.join(', ')}`);
}

/** containerVeths lists the veths in netns other than the host's uplink, one `ip -o` line each. */
export function containerVeths(netns: string): string[] {
  const r = run('ip', ['-n', netns, '-o', 'link', 'show', 'type', 'veth']);
  if (r.code !== 0) throw new Error(`ip -n ${netns} link show: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.trim() !== '' && !new RegExp(`^\\d+: ${UPLINK_IF}[@:]`).test(l));
}

/** natRules is `iptables -t nat -S` inside netns (the same iptables the agent runs there). */
export function natRules(netns: string): string[] {
  const r = run('nsenter', [`--net=/run/netns/${netns}`, 'iptables', '-w', '5', '-t', 'nat', '-S']);
  if (r.code !== 0) throw new Error(`iptables -t nat -S in ${netns}: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.trim() !== '');
}

/** perContainerNatRules keeps the nat rules berth adds per container or port (`berth:` comments), not the node-wide `berth egress`. */
export function perContainerNatRules(netns: string): string[] {
  return natRules(netns).filter((l) => /berth:/.test(l));
}

/** ipamRecords lists the addresses recorded under the agent's <state-dir>/ipam (missing dir: none). */
export function ipamRecords(stateDir: string): string[] {
  try {
    return readdirSync(join(stateDir, 'ipam')).filter((n) => /^\d+\.\d+\.\d+\.\d+$/.test(n)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** inNetns runs a command inside netns (network namespace only, like the cluster's agents). */
export function inNetns(netns: string, cmd: string, args: string[], timeoutMs = 30_000): ReturnType<typeof run> {
  return run('nsenter', [`--net=/run/netns/${netns}`, cmd, ...args], timeoutMs);
}
