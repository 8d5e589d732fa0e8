/** Facts about this host that the agent registers with: capacity, addresses, version. */
import { readFile } from 'node:fs/promises';
import { availableParallelism, networkInterfaces } from 'node:os';
import type { Resources } from './reconciler/index.js';

/**
 * NodeCapacity is what the host has in total (cores, bytes, pids). The agent registers it as its
 * capacity, the control plane offers all of it as allocatable, and the agent's admission check
 * holds its tasks to it.
 */
export type NodeCapacity = Resources;

/** parseMemTotalBytes reads MemTotal (kB) out of /proc/meminfo text. */
export function parseMemTotalBytes(meminfo: string): number {
  const m = /^MemTotal:\s+(\d+)\s+kB$/m.exec(meminfo);
  if (!m) throw new Error('MemTotal missing from /proc/meminfo');
  return Number(m[1]) * 1024;
}

/** readCapacity reads cpu count, MemTotal and pid_max from /proc. */
export async function readCapacity(): Promise<NodeCapacity> {
  const [meminfo, pidMax] = await Promise.all([readFile('/proc/meminfo', 'utf8'), readFile('/proc/sys/kernel/pid_max', 'utf8')]);
  return { cpuCores: availableParallelism(), memoryBytes: parseMemTotalBytes(meminfo), pids: Number(pidMax.trim()) };
}

/**
 * firstNonLoopbackIPv4 picks the address to advertise. Inside a network namespace with one veth
 * that is the veth's address; interfaces are taken in name order so the choice is stable.
 */
export function firstNonLoopbackIPv4(ifaces = networkInterfaces()): string | undefined {
  for (const name of Object.keys(ifaces).sort()) {
    for (const a of ifaces[name] ?? []) {
      if (a.family === 'IPv4' && !a.internal) return a.address;
    }
  }
  return undefined;
}

/** parseLabels turns "k=v,k=v" into a map; it throws on an entry without '=' or an empty key. */
export function parseLabels(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`invalid label ${JSON.stringify(part)} (want key=value)`);
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

