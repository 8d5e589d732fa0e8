/**
 * etcd faults: one member of the 3-member cluster SIGKILLed and started again (the cluster keeps
 * its quorum), and the etcd connection of one control-plane replica cut at the proxy local-cluster
 * puts in front of it, with a compaction while it is cut: when the connection comes back, that
 * replica's watches start from a compacted revision and must relist (reflector semantics).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../../support/cluster.js';
import type { Rng } from '../random.js';
import { signalPid } from '../safety.js';
import type { ActiveFault, FaultContext, FaultKind } from './fault.js';

/** ETCD_MEMBER_KILL kills one etcd member and starts it again from its data dir. */
export const ETCD_MEMBER_KILL: FaultKind = {
  name: 'etcd-member-kill',
  summary: 'SIGKILL of one etcd member, then started again from its data dir',
  holdS: [3, 15],
  async inject(ctx: FaultContext, rng: Rng): Promise<ActiveFault> {
    const status = await ctx.cluster.refresh();
    const members = status.etcdCluster?.members ?? [];
    if (members.length === 0) throw new Error('the cluster has no external etcd');
    const m = rng.int(1, members.length);
    const member = members[m - 1]!;
    if (!member.alive) throw new Error(`etcd ${member.name} is not running before the fault`);
    const unregister = ctx.safety.register(`SIGKILL of etcd ${member.name} (pid ${member.pid})`, () => {
      spawnSync(join(REPO_ROOT, 'deploy', 'local-cluster'), ['start-etcd-member', '--member', String(m), '--name', ctx.cluster.name], { stdio: 'ignore', timeout: 60_000 });
    });
    ctx.expectExit(member.pid);
    signalPid(member.pid, 'SIGKILL');
    return {
      target: `etcd ${member.name} pid ${member.pid}`,
      affects: 'all',
      notes: [],
      heal: async () => {
        await ctx.cluster.startEtcdMember(m);
        unregister();
      },
    };
  },
};

/** ETCD_CUT cuts the proxied replica's etcd connection, compacts etcd meanwhile, and restores it. */
export const ETCD_CUT: FaultKind = {
  name: 'etcd-cut',
  summary: "the etcd connection of the proxied replica cut, etcd compacted meanwhile, then restored",
  holdS: [4, 14],
  async inject(ctx: FaultContext): Promise<ActiveFault> {
    const status = await ctx.cluster.refresh();
    const proxy = status.etcdProxy;
    if (!proxy?.pid) throw new Error('the cluster has no running etcd proxy');
    const pid = proxy.pid;
    const unregister = ctx.safety.register(`cut of the etcd proxy (pid ${pid})`, () => signalPid(pid, 'SIGUSR2'));
    signalPid(pid, 'SIGUSR1');
    const notes: string[] = [];
    return {
      target: `replica ${proxy.replica} etcd link (proxy pid ${pid})`,
      affects: 'all',
      replica: proxy.replica,
      notes,
      midway: async () => {
        // Compact up to what the harness's own watch has seen, never past it: its history must stay gapless.
        const revision = ctx.historyRevision();
        await ctx.cluster.etcd().kv.compact({ revision: String(revision), physical: true });
        notes.push(`compacted at revision ${revision}`);
        ctx.log(`etcd compacted at revision ${revision} while replica ${proxy.replica} is cut off`);
      },
      heal: async () => {
        signalPid(pid, 'SIGUSR2');
        unregister();
      },
    };
  },
};
