/**
 * Invariants over the hosts' real state. Continuously: no two live containers share an address,
 * and a container without a desired-running task on its node does not outlive the orphan bound
 * once nothing disturbs that node. At convergence and after clean-up: each host holds exactly
 * the containers of its running tasks, with their addresses, and nothing else (veths, address
 * records, cgroups, container dirs, nat rules, mounts, shims, stray processes).
 */
import type { Task } from '../../control-plane/objects/types.js';
import { vethOf, type HostState } from './host-state.js';
import { taskName } from './invariants.js';
import type { NewViolation } from './violations.js';

/** ORPHAN_BOUND_S is how long a container may run without a desired task on its node once its node is undisturbed. */
export const ORPHAN_BOUND_S = 45;

/** checkHostIps: no address is held by two live containers anywhere. */
export function checkHostIps(states: readonly HostState[]): NewViolation[] {
  const byIp = new Map<string, string[]>();
  for (const s of states) {
    for (const c of s.containers) for (const ip of c.ips) byIp.set(ip, [...(byIp.get(ip) ?? []), `container ${c.id} (task ${c.task ?? '?'}) on ${s.node} pid ${c.pid}`]);
  }
  return [...byIp].filter(([, holders]) => holders.length > 1).map(([ip, holders]) => ({
    invariant: 'ip-unique' as const, source: 'hosts', objects: [`ip ${ip}`, ...holders],
    message: `${holders.length} live containers hold ${ip}`,
  }));
}

/** OrphanClock remembers when each container was first seen without a desired task. */
export class OrphanClock {
  private readonly since = new Map<string, number>();

  /**
   * check reports containers orphaned for longer than the bound. desired(node) is the set of task
   * uids desired running on node; undisturbedSince(node) is when the last fault that could delay
   * that node ended (Infinity while one is active).
   */
  check(states: readonly HostState[], desired: (node: string) => Set<string>, undisturbedSince: (node: string) => number, tasks: Map<string, Task>, now = Date.now()): NewViolation[] {
    const out: NewViolation[] = [];
    const seen = new Set<string>();
    for (const s of states) {
      const want = desired(s.node);
      for (const c of s.containers) {
        const key = `${s.node}/${c.id}`;
        if (want.has(c.id)) continue;
        seen.add(key);
        const first = this.since.get(key) ?? now;
        this.since.set(key, first);
        const from = Math.max(first, undisturbedSince(s.node));
        if (now - from > ORPHAN_BOUND_S * 1000) {
          const t = tasks.get(c.id);
          out.push({
            invariant: 'orphan-container', source: `host:${s.node}`,
            objects: [`container ${c.id} on ${s.node} pid ${c.pid}`, `task ${c.task ?? '?'} of service ${c.service ?? '?'}`],
            message: `live for ${Math.round((now - first) / 1000)} s without a desired-running task on ${s.node} (${t ? `task ${taskName(t)} is on ${t.spec.nodeName || 'no node'}, desired ${t.spec.desiredState}, phase ${t.status.phase}` : 'no such task any more'}); bound ${ORPHAN_BOUND_S} s after the node was last disturbed`,
          });
        }
      }
    }
    for (const k of [...this.since.keys()]) if (!seen.has(k)) this.since.delete(k);
    return out;
  }
}

function diff(label: string, have: Iterable<string>, want: Iterable<string>): string[] {
  const h = new Set(have);
  const w = new Set(want);
  return [
    ...[...h].filter((x) => !w.has(x)).map((x) => `${label} ${x} left over`),
    ...[...w].filter((x) => !h.has(x)).map((x) => `${label} ${x} missing`),
  ];
}

/**
 * compareHost lists how host state s differs from exactly `running` (the tasks the API reports
 * running on that node). strays are netns processes seen in the previous read too (a helper
 * the agent runs for a moment is not a leak; one that stays is).
 */
export function compareHost(s: HostState, running: readonly Task[], previous?: HostState): string[] {
  const problems: string[] = [];
  const byUid = new Map(running.map((t) => [t.metadata.uid, t]));
  const live = new Map(s.containers.map((c) => [c.id, c]));
  for (const [uid, t] of byUid) {
    const c = live.get(uid);
    if (!c) problems.push(`task ${taskName(t)} uid ${uid} is running in the API but has no live container on ${s.node}`);
    else if (t.status.ip && !c.ips.includes(t.status.ip)) problems.push(`task ${taskName(t)}: API says ip ${t.status.ip}, its container holds ${c.ips.join(',') || 'none'}`);
  }
  for (const c of s.containers) {
    if (!byUid.has(c.id)) problems.push(`container ${c.id} (task ${c.task ?? '?'}, service ${c.service ?? '?'}) live on ${s.node} pid ${c.pid} without a running task there`);
  }
  const liveIds = [...live.keys()];
  problems.push(...diff(`${s.node}: veth`, s.veths, liveIds.map(vethOf)));
  problems.push(...diff(`${s.node}: container cgroup`, s.cgroupIds, liveIds));
  problems.push(...diff(`${s.node}: container state dir`, s.containerDirs, liveIds));
  problems.push(...diff(`${s.node}: shim of`, s.shims.keys(), liveIds));
  problems.push(...diff(`${s.node}: address record of`, s.ipam.values(), liveIds));
  for (const [ip, id] of s.ipam) {
    const c = live.get(id);
    if (c && !c.ips.includes(ip)) problems.push(`${s.node}: address record ${ip} names container ${id}, which holds ${c.ips.join(',') || 'none'}`);
  }
  for (const id of s.natIds) if (!live.has(id)) problems.push(`${s.node}: nat rule of container ${id} left over`);
  for (const m of s.mounts) problems.push(`${s.node}: mount ${m} left over`);
  const before = new Set(previous?.netnsProcesses.map((p) => `${p.pid} ${p.cmd}`) ?? []);
  for (const p of s.netnsProcesses) {
    if (before.has(`${p.pid} ${p.cmd}`)) problems.push(`${s.node}: process ${p.pid} (${p.cmd}) left in the host netns`);
  }
  for (const e of s.errors) problems.push(`${s.node}: could not read: ${e}`);
  return problems;
}
