/**
 * The leak check after `local-cluster down`: nothing of the cluster may be left on the machine —
 * network namespaces, links on its bridge, cgroups, processes naming its dirs or still stopped by
 * the suite, mounts, dirs, its index entry, and iptables rules in the root namespace that name
 * its bridge or subnets (the agents' rules live in the hosts' namespaces and go with them).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../support/cluster.js';
import { CUT_COMMENT } from './faults/host-faults.js';
import type { NewViolation } from './violations.js';

/** RootFirewall is the root namespace's iptables rules, to compare before and after a run. */
export function rootFirewall(): string[] {
  const out: string[] = [];
  for (const table of ['filter', 'nat']) {
    const r = run('iptables', ['-w', '5', '-t', table, '-S']);
    if (r.code === 0) out.push(...r.stdout.split('\n').filter((l) => l.trim()).map((l) => `${table}: ${l}`));
  }
  return out;
}

function processesMentioning(texts: string[]): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (texts.some((t) => cmd.includes(t))) found.push(`process ${pid}: ${cmd.trim()}`);
    } catch {
      // gone while we looked
    }
  }
  return found;
}

/**
 * teardownLeaks lists what is left of cluster name (bridge index idx) after down. firewallBefore
 * is rootFirewall() from before the cluster existed; stoppedPids are every pid the suite SIGSTOPped.
 */
export function teardownLeaks(name: string, idx: string | undefined, firewallBefore: string[], stoppedPids: number[]): NewViolation[] {
  const found: string[] = [];
  for (const line of run('ip', ['netns', 'list']).stdout.split('\n')) if (line.startsWith(`berth-${name}-`)) found.push(`netns ${line.split(' ')[0]}`);
  if (idx) {
    for (const line of run('ip', ['-o', 'link', 'show']).stdout.split('\n')) {
      const link = line.split(': ')[1]?.split('@')[0];
      if (link === `bl${idx}` || link?.startsWith(`bl${idx}h`)) found.push(`link ${link}`);
    }
    if (existsSync(`/run/berth-local/.index/${idx}`) && readFileSync(`/run/berth-local/.index/${idx}`, 'utf8').trim() === name) found.push(`index entry ${idx}`);
  }
  for (const ctrl of readdirSync('/sys/fs/cgroup')) {
    if (existsSync(join('/sys/fs/cgroup', ctrl, `berth-${name}`))) found.push(`cgroup ${ctrl}/berth-${name}`);
  }
  if (existsSync(`/sys/fs/cgroup/berth-${name}`)) found.push(`cgroup berth-${name}`);
  const stateDir = `/var/lib/berth-local/${name}`;
  const runDir = `/run/berth-local/${name}`;
  found.push(...processesMentioning([`${stateDir}/`, `${runDir}/`, `${runDir} `]));
  for (const pid of stoppedPids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('T')) found.push(`process ${pid} still stopped`);
    } catch {
      // gone: as it should be
    }
  }
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) if (line.includes(stateDir)) found.push(`mount ${line.split(' ')[4]}`);
  for (const dir of [stateDir, runDir]) if (existsSync(dir)) found.push(`dir ${dir}`);
  const before = new Set(firewallBefore);
  for (const rule of rootFirewall()) {
    if (before.has(rule)) continue;
    if ((idx && (rule.includes(`bl${idx}`) || rule.includes(`10.88.${idx}.`))) || rule.includes(CUT_COMMENT)) found.push(`root iptables ${rule}`);
  }
  return found.map((f) => ({ invariant: 'leak-after-teardown' as const, source: 'teardown', objects: [f], message: `left after local-cluster down --name ${name}` }));
}
