/**
 * The scenarios: which faults each one injects and how often, registered here explicitly.
 * A scenario draws one fault at a time (weights below), holds it, heals it, pauses, and repeats
 * until its duration is spent; faults never overlap, so every effect is attributable to one.
 */
import { ETCD_CUT, ETCD_MEMBER_KILL } from './etcd-faults.js';
import type { FaultKind } from './fault.js';
import { DISK_FULL, NETWORK_CUT } from './host-faults.js';
import { AGENT_KILL, AGENT_STOP, FOLLOWER_KILL, FOLLOWER_STOP, LEADER_KILL, LEADER_STOP } from './process-faults.js';

/** Scenario is a named mix of faults. */
export interface Scenario {
  name: string;
  summary: string;
  /** faults with their relative weights. */
  faults: readonly (readonly [FaultKind, number])[];
}

/** SCENARIOS lists every scenario by name. */
export const SCENARIOS: readonly Scenario[] = [
  { name: 'agents', summary: 'SIGKILL and SIGSTOP of agents', faults: [[AGENT_KILL, 1], [AGENT_STOP, 1]] },
  {
    name: 'control-plane',
    summary: 'SIGKILL and SIGSTOP of the leader and of the other replica; the etcd connection of one replica cut with a compaction',
    faults: [[LEADER_KILL, 1], [LEADER_STOP, 1], [FOLLOWER_KILL, 1], [FOLLOWER_STOP, 1], [ETCD_CUT, 2]],
  },
  { name: 'etcd', summary: 'one etcd member killed and started again', faults: [[ETCD_MEMBER_KILL, 1]] },
  { name: 'network', summary: "a host's network cut in its netns and restored", faults: [[NETWORK_CUT, 1]] },
  { name: 'disk', summary: "an agent's state tmpfs filled up and freed", faults: [[DISK_FULL, 1]] },
  {
    name: 'all',
    summary: 'every fault above, mixed',
    faults: [[AGENT_KILL, 1], [AGENT_STOP, 1], [LEADER_KILL, 1], [LEADER_STOP, 1], [FOLLOWER_KILL, 1], [FOLLOWER_STOP, 1],
      [ETCD_CUT, 1], [ETCD_MEMBER_KILL, 1], [NETWORK_CUT, 1], [DISK_FULL, 1]],
  },
];

/** scenarioNamed finds a scenario, or undefined. */
export function scenarioNamed(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
