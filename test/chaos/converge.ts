/**
 * Convergence: once the faults are healed and the workload has stopped, the cluster must reach
 * exactly the desired state within CONVERGE_BOUND_S, as the API reports it and as the hosts
 * really are. Then the clean-up: every workload service deleted, and nothing of theirs left on
 * any host within CLEANUP_BOUND_S.
 */
import { isNodeReady } from '../../control-plane/objects/conditions.js';
import type { Task } from '../../control-plane/objects/types.js';
import type { ChaosCluster, Replica } from './cluster.js';
import { compareHost } from './host-checks.js';
import { processTable, readHostState, type HostState } from './host-state.js';
import { serviceName } from './invariants.js';
import { readApi, type ApiSample } from './observe.js';

/**
 * CONVERGE_BOUND_S is the stated bound. Its parts: a failed task is replaced after the service's
 * failure backoff, which doubles up to 60 s (control-plane REPLACE_BACKOFF_MAX_MS) when a fault
 * made tasks fail again and again (a full disk); then the replacement is placed, started and
 * reported, and the node's agent reconnects (backoff at most 5 s) — 30 s more is ample.
 */
export const CONVERGE_BOUND_S = 90;
/** CLEANUP_BOUND_S bounds the removal of every workload service and of what it ran. */
export const CLEANUP_BOUND_S = 60;
const POLL_MS = 2_000;

/** apiProblems lists how an API sample differs from the converged state of its services and nodes. */
export function apiProblems(sample: ApiSample, hosts: number, isWorkload: (service: string) => boolean): string[] {
  const problems: string[] = [];
  const ready = sample.nodes.filter((n) => isNodeReady(n));
  if (ready.length !== hosts) problems.push(`${ready.length}/${hosts} nodes Ready (${sample.nodes.filter((n) => !isNodeReady(n)).map((n) => n.metadata.name).join(', ')} not)`);
  const tasksOf = new Map<string, Task[]>();
  for (const t of sample.tasks) {
    const k = `${t.metadata.namespace}/${t.spec.service}`;
    tasksOf.set(k, [...(tasksOf.get(k) ?? []), t]);
  }
  const readyNames = new Set(ready.map((n) => n.metadata.name));
  for (const svc of sample.services) {
    const k = serviceName(svc);
    if (!isWorkload(svc.metadata.name)) continue;
    const tasks = tasksOf.get(k) ?? [];
    tasksOf.delete(k);
    if (svc.status?.observedGeneration !== svc.metadata.generation) problems.push(`${k}: observedGeneration ${svc.status?.observedGeneration} != generation ${svc.metadata.generation}`);
    const desired = tasks.filter((t) => t.spec.desiredState === 'running');
    if (desired.length !== svc.spec.replicas) problems.push(`${k}: ${desired.length} tasks desired running, want ${svc.spec.replicas}`);
    for (const t of desired) {
      if (t.status.phase !== 'running') problems.push(`${k}: task ${t.metadata.name} is ${t.status.phase}${t.status.reason ? ` (${t.status.reason}: ${t.status.message ?? ''})` : ''} on ${t.spec.nodeName || 'no node'}`);
      else if (!readyNames.has(t.spec.nodeName)) problems.push(`${k}: task ${t.metadata.name} runs on ${t.spec.nodeName}, which is not Ready`);
      // A rollout halted by a failure (a fault made a new task fail) stays mixed until an operator
      // acts: that is its desired state, as with Swarm's update failure action "pause".
      const halted = svc.status?.haltedRevision !== undefined && svc.status.haltedRevision === svc.status.updateRevision;
      const allowed = halted ? [svc.status?.updateRevision, svc.status?.currentRevision] : [svc.status?.updateRevision];
      if (svc.status?.updateRevision !== undefined && !allowed.includes(t.spec.revision)) problems.push(`${k}: task ${t.metadata.name} runs revision ${t.spec.revision}, the service is at ${svc.status.updateRevision}`);
    }
    for (const t of tasks.filter((x) => x.spec.desiredState === 'stopped')) problems.push(`${k}: task ${t.metadata.name} desired stopped is still there (${t.status.phase} on ${t.spec.nodeName || 'no node'})`);
  }
  for (const [k, tasks] of tasksOf) {
    if (!isWorkload(tasks[0]!.spec.service)) continue;
    problems.push(`${k}: service gone but ${tasks.length} task(s) remain: ${tasks.map((t) => `${t.metadata.name} ${t.status.phase}`).join(', ')}`);
  }
  return problems;
}

/** ConvergeResult is the outcome of one wait. */
export interface ConvergeResult {
  converged: boolean;
  seconds: number;
  /** problems are what still differed at the end (empty when converged). */
  problems: string[];
  sample?: ApiSample;
}

/** readHosts reads every host's real state once. */
export async function readHosts(cluster: ChaosCluster): Promise<HostState[]> {
  const procs = processTable();
  return Promise.all(cluster.status.hosts.map((h) => readHostState(h, h.agentPid, procs)));
}

/**
 * waitExact polls until the API and every host match exactly (expectedRunning decides which
 * tasks each host must run: all running tasks for convergence, none for the clean-up) or the
 * bound passes. Two reads in a row must agree on a stray process before it counts.
 */
export async function waitExact(cluster: ChaosCluster, replicas: () => Replica[], boundS: number,
  check: (sample: ApiSample) => string[], expectedRunning: (sample: ApiSample, node: string) => Task[]): Promise<ConvergeResult> {
  const started = Date.now();
  let previous: HostState[] = [];
  let last: ConvergeResult = { converged: false, seconds: 0, problems: ['not checked yet'] };
  // The state counts as reached at the first clean read, confirmed by a second clean read (which
  // also has a previous read to tell a lingering stray process from a passing helper).
  let cleanSince: number | undefined;
  for (;;) {
    let problems: string[];
    let sample: ApiSample | undefined;
    try {
      await cluster.refresh();
      sample = await readApi(cluster, replicas());
      const hosts = await readHosts(cluster);
      problems = check(sample);
      for (const h of hosts) {
        problems.push(...compareHost(h, expectedRunning(sample, h.node), previous.find((p) => p.node === h.node)));
      }
      previous = hosts;
    } catch (err) {
      problems = [`could not read the cluster: ${(err as Error).message}`];
    }
    const seconds = (Date.now() - started) / 1000;
    if (problems.length > 0) cleanSince = undefined;
    else if (cleanSince === undefined) {
      cleanSince = seconds;
      if (seconds <= boundS) {
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        continue;
      }
    }
    last = { converged: cleanSince !== undefined, seconds: cleanSince ?? seconds, problems, ...(sample ? { sample } : {}) };
    if (last.converged || seconds > boundS) return last;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** runningOn is what a converged node runs: the tasks desired running and running there. */
export function runningOn(sample: ApiSample, node: string): Task[] {
  return sample.tasks.filter((t) => t.spec.nodeName === node && t.spec.desiredState === 'running' && t.status.phase === 'running');
}
