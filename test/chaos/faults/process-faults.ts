/**
 * Process faults: SIGKILL or SIGSTOP of an agent, of the control-plane leader or of the other
 * replica. A killed process is started again by local-cluster with its original command line; a
 * stopped one gets SIGCONT. Containers outlive their agent, so an agent fault tests re-adoption;
 * a stopped agent or replica also tests what happens when a peer is alive but silent.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../../support/cluster.js';
import type { Replica } from '../cluster.js';
import type { Rng } from '../random.js';
import { signalPid } from '../safety.js';
import { pickHost, type ActiveFault, type FaultContext, type FaultKind } from './fault.js';

/** restartSync brings a component back from a signal handler (the normal path is asynchronous). */
function restartSync(cluster: string, verb: string, flag: string, n: number): void {
  spawnSync(join(REPO_ROOT, 'deploy', 'local-cluster'), [verb, flag, String(n), '--name', cluster], { stdio: 'ignore', timeout: 60_000 });
}

function agentFault(signal: 'SIGKILL' | 'SIGSTOP'): FaultKind {
  return {
    name: signal === 'SIGKILL' ? 'agent-kill' : 'agent-stop',
    summary: `${signal} of one agent, then ${signal === 'SIGKILL' ? 'started again' : 'SIGCONT'}`,
    holdS: signal === 'SIGKILL' ? [2, 12] : [2, 14],
    async inject(ctx: FaultContext, rng: Rng): Promise<ActiveFault> {
      const { index, node } = pickHost(ctx, rng);
      const status = await ctx.cluster.refresh();
      const pid = status.hosts[index - 1]!.agentPid;
      if (!pid) throw new Error(`agent of h${index} is not running before the fault`);
      const unregister = ctx.safety.register(`${signal} of agent h${index} (pid ${pid})`, signal === 'SIGSTOP'
        ? () => signalPid(pid, 'SIGCONT')
        : () => restartSync(ctx.cluster.name, 'start-agent', '--host', index));
      if (signal === 'SIGKILL') ctx.expectExit(pid);
      signalPid(pid, signal);
      return {
        target: `h${index} agent pid ${pid}`,
        affects: [node],
        notes: [],
        heal: async () => {
          if (signal === 'SIGSTOP') signalPid(pid, 'SIGCONT');
          else await ctx.cluster.startAgent(index);
          unregister();
        },
      };
    },
  };
}

/** pickReplica finds the leader (or the other replica); without a leader mid-election it takes replica 1. */
async function pickReplica(ctx: FaultContext, role: 'leader' | 'follower'): Promise<{ replica: Replica; label: string }> {
  const status = await ctx.cluster.refresh();
  const leader = await ctx.cluster.leader();
  const replicas = status.controlPlanes;
  if (!leader) return { replica: replicas[0]!, label: `replica 1 (no leader elected)` };
  if (role === 'leader') return { replica: leader, label: `replica ${leader.replica} (leader)` };
  const other = replicas.find((r) => r.replica !== leader.replica) ?? leader;
  return { replica: other, label: `replica ${other.replica} (follower)` };
}

function replicaFault(role: 'leader' | 'follower', signal: 'SIGKILL' | 'SIGSTOP'): FaultKind {
  return {
    name: `${role}-${signal === 'SIGKILL' ? 'kill' : 'stop'}`,
    summary: `${signal} of the control-plane ${role === 'leader' ? 'leader' : 'replica that does not lead'}, then ${signal === 'SIGKILL' ? 'started again' : 'SIGCONT'}`,
    holdS: [2, 10],
    async inject(ctx: FaultContext): Promise<ActiveFault> {
      const { replica, label } = await pickReplica(ctx, role);
      const pid = replica.pid;
      if (!pid) throw new Error(`control plane ${replica.replica} is not running before the fault`);
      const unregister = ctx.safety.register(`${signal} of control plane ${replica.replica} (pid ${pid})`, signal === 'SIGSTOP'
        ? () => signalPid(pid, 'SIGCONT')
        : () => restartSync(ctx.cluster.name, 'start-control-plane', '--replica', replica.replica));
      if (signal === 'SIGKILL') ctx.expectExit(pid);
      signalPid(pid, signal);
      return {
        target: `${label} pid ${pid}`,
        affects: 'all',
        replica: replica.replica,
        notes: [],
        heal: async () => {
          if (signal === 'SIGSTOP') signalPid(pid, 'SIGCONT');
          else await ctx.cluster.startControlPlane(replica.replica);
          unregister();
        },
      };
    },
  };
}

/** AGENT_KILL kills one agent (containers keep running) and starts it again: re-adoption. */
export const AGENT_KILL = agentFault('SIGKILL');
/** AGENT_STOP freezes one agent: its session stays open but silent, its node's lease runs out. */
export const AGENT_STOP = agentFault('SIGSTOP');
/** LEADER_KILL kills the replica holding the election key: takeover, fencing of the old term. */
export const LEADER_KILL = replicaFault('leader', 'SIGKILL');
/** LEADER_STOP freezes the leader: it wakes up deposed and must not act on its old term. */
export const LEADER_STOP = replicaFault('leader', 'SIGSTOP');
/** FOLLOWER_KILL kills the replica that does not lead: its agent sessions move to the leader. */
export const FOLLOWER_KILL = replicaFault('follower', 'SIGKILL');
/** FOLLOWER_STOP freezes the replica that does not lead, with whatever sessions it holds. */
export const FOLLOWER_STOP = replicaFault('follower', 'SIGSTOP');
