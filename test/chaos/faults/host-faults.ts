/**
 * Host faults: a host's network cut with iptables DROP rules in its network namespace (the
 * agent's session, heartbeats and container traffic all stop; the processes keep running), and
 * the agent's disk filled: its state dir is a small tmpfs (local-cluster --host-state-size) and a
 * filler file takes every free byte, so creating containers, logs and address records fails.
 */
import { spawnSync } from 'node:child_process';
import { rmSync, statfsSync, writeSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { Rng } from '../random.js';
import { pickHost, type ActiveFault, type FaultContext, type FaultKind } from './fault.js';

/** CUT_COMMENT tags the suite's iptables rules, so they are found and never confused with berth's. */
export const CUT_COMMENT = 'berth-chaos-cut';
/** FILLER_NAME is the file the disk fault writes in a host's state dir. */
export const FILLER_NAME = '.chaos-filler';
const FILL_CHUNK_BYTES = 1 << 20;

/** cutRules are the DROP rules (chain and match) that cut a host's uplink eth0. */
const CUT_RULES: string[][] = [
  ['INPUT', '-i', 'eth0'], ['OUTPUT', '-o', 'eth0'], ['FORWARD', '-i', 'eth0'], ['FORWARD', '-o', 'eth0'],
];

function iptables(netns: string, args: string[]): { code: number; stderr: string } {
  const r = spawnSync('nsenter', [`--net=/run/netns/${netns}`, 'iptables', '-w', '5', ...args], { encoding: 'utf8', timeout: 15_000 });
  return { code: r.status ?? 1, stderr: r.stderr ?? String(r.error) };
}

/** uncutHost removes every rule of the suite from netns (repeated deletes until none is left); safe to repeat. */
export function uncutHost(netns: string): void {
  for (const [chain, ...match] of CUT_RULES) {
    for (let i = 0; i < 10; i++) {
      if (iptables(netns, ['-D', chain!, ...match, '-m', 'comment', '--comment', CUT_COMMENT, '-j', 'DROP']).code !== 0) break;
    }
  }
}

/** NETWORK_CUT drops all traffic on one host's uplink for the hold, then removes the rules. */
export const NETWORK_CUT: FaultKind = {
  name: 'network-cut',
  summary: "a host's uplink cut (iptables DROP in its netns), then restored",
  holdS: [3, 16],
  async inject(ctx: FaultContext, rng: Rng): Promise<ActiveFault> {
    const { index, node } = pickHost(ctx, rng);
    const netns = ctx.cluster.status.hosts[index - 1]!.netns;
    const unregister = ctx.safety.register(`network cut of h${index}`, () => uncutHost(netns));
    for (const [chain, ...match] of CUT_RULES) {
      const r = iptables(netns, ['-I', chain!, '1', ...match, '-m', 'comment', '--comment', CUT_COMMENT, '-j', 'DROP']);
      if (r.code !== 0) {
        uncutHost(netns);
        unregister();
        throw new Error(`iptables -I ${chain} in ${netns}: ${r.stderr}`);
      }
    }
    return {
      target: `h${index} (${netns})`,
      affects: [node],
      notes: [],
      heal: async () => {
        uncutHost(netns);
        unregister();
      },
    };
  },
};

/** fill writes zeros to path until the filesystem is full (bounded by its size); returns the bytes written. */
function fill(path: string): number {
  const fd = openSync(path, 'w', 0o600);
  const chunk = Buffer.alloc(FILL_CHUNK_BYTES);
  let written = 0;
  try {
    // A tmpfs cannot grow, so the loop ends at ENOSPC; the bound guards against a mistaken path.
    for (let i = 0; i < 4096; i++) {
      try {
        written += writeSync(fd, chunk, 0, chunk.length);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        // Take the last partial block too, a page at a time.
        for (let j = 0; j < 256; j++) {
          try { written += writeSync(fd, chunk, 0, 4096); } catch { break; }
        }
        return written;
      }
    }
    return written;
  } finally {
    closeSync(fd);
  }
}

/** DISK_FULL fills one agent's state tmpfs for the hold, then deletes the filler. */
export const DISK_FULL: FaultKind = {
  name: 'disk-full',
  summary: "an agent's state dir (a small tmpfs) filled up, then freed",
  holdS: [5, 20],
  async inject(ctx: FaultContext, rng: Rng): Promise<ActiveFault> {
    const { index, node } = pickHost(ctx, rng);
    const host = ctx.cluster.status.hosts[index - 1]!;
    if (!host.stateSize) throw new Error('the hosts have no state tmpfs (local-cluster --host-state-size)');
    const path = join(host.stateDir, FILLER_NAME);
    const unregister = ctx.safety.register(`disk fill of h${index}`, () => rmSync(path, { force: true }));
    const bytes = fill(path);
    const free = statfsSync(host.stateDir);
    return {
      target: `h${index} ${host.stateDir}`,
      affects: [node],
      notes: [`filled ${(bytes / 1048576).toFixed(1)} MiB, ${free.bavail * free.bsize} bytes left`],
      heal: async () => {
        rmSync(path, { force: true });
        unregister();
      },
    };
  },
};
