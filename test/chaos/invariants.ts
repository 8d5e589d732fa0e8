/**
 * The invariants over the cluster's objects, as pure functions of one consistent snapshot
 * (services, tasks, nodes at one etcd revision, or one API sample). The history applies them at
 * every etcd revision; the API sampler applies them to what the API serves.
 */
import { strategyOf } from '../../control-plane/controllers/rollout-plan.js';
import { TERMINAL_PHASES } from '../../control-plane/objects/conditions.js';
import type { Node, Service, Task } from '../../control-plane/objects/types.js';
import type { NewViolation } from './violations.js';

/** Snapshot is the objects the invariants look at. */
export interface Snapshot {
  services: readonly Service[];
  tasks: readonly Task[];
  nodes: readonly Node[];
}

/** SpecVersion is what the surge bound needs from one generation of a service's spec. */
export interface SpecVersion {
  replicas: number;
  maxSurge: number;
}

/** specVersion extracts the surge bound's inputs from a service (maxSurge with its defaults). */
export function specVersion(svc: Service): SpecVersion {
  return { replicas: svc.spec.replicas, maxSurge: strategyOf(svc.spec.update).maxSurge };
}

/**
 * SurgeBound says how many running tasks a service may have now: the largest replicas + maxSurge
 * among the generations from status.observedGeneration to the current one (a scale-down the
 * controller has not acted on yet is not a surge), or undefined when a generation is unknown.
 */
export type SurgeBound = (svc: Service) => { allowed: number; detail: string } | undefined;

/** taskName is "<ns>/<name>" of a task, for reports. */
export function taskName(t: Task): string {
  return `${t.metadata.namespace}/${t.metadata.name}`;
}

/** serviceName is "<ns>/<name>" of a service, for reports. */
export function serviceName(s: Service): string {
  return `${s.metadata.namespace}/${s.metadata.name}`;
}

function byService(tasks: readonly Task[]): Map<string, Task[]> {
  const m = new Map<string, Task[]>();
  for (const t of tasks) {
    const k = `${t.metadata.namespace}/${t.spec.service}`;
    m.set(k, [...(m.get(k) ?? []), t]);
  }
  return m;
}

/** checkSurge: running tasks desired running of each service never exceed its bound. Returns [violations, checks]. */
export function checkSurge(s: Snapshot, bound: SurgeBound, source: string): [NewViolation[], number] {
  const out: NewViolation[] = [];
  let checks = 0;
  const tasks = byService(s.tasks);
  for (const svc of s.services) {
    if (svc.spec.mode === 'global') continue;
    const b = bound(svc);
    if (!b) continue;
    checks++;
    const running = (tasks.get(serviceName(svc)) ?? []).filter((t) => t.spec.desiredState === 'running' && t.status.phase === 'running');
    if (running.length > b.allowed) {
      out.push({
        invariant: 'surge', source,
        objects: [`service ${serviceName(svc)}`, ...running.map((t) => `task ${taskName(t)} on ${t.spec.nodeName} uid ${t.metadata.uid}`)],
        message: `${running.length} tasks desired running and running, more than ${b.allowed} (${b.detail})`,
      });
    }
  }
  return [out, checks];
}

/** checkApiIps: no two tasks reported running hold one IP address. */
export function checkApiIps(s: Snapshot, source: string): NewViolation[] {
  const byIp = new Map<string, Task[]>();
  for (const t of s.tasks) {
    if (t.status.phase !== 'running' || !t.status.ip) continue;
    byIp.set(t.status.ip, [...(byIp.get(t.status.ip) ?? []), t]);
  }
  return [...byIp].filter(([, ts]) => ts.length > 1).map(([ip, ts]) => ({
    invariant: 'ip-unique-api' as const, source,
    objects: [`ip ${ip}`, ...ts.map((t) => `task ${taskName(t)} on ${t.spec.nodeName} uid ${t.metadata.uid} desired ${t.spec.desiredState}`)],
    message: `${ts.length} tasks reported running with address ${ip}`,
  }));
}

/** CPU_EPSILON absorbs float sums of fractional cores (0.1 + 0.2 ...). */
const CPU_EPSILON = 1e-6;

/**
 * checkCapacity: on each node, the unfinished tasks (the scheduler's own rule: not in a terminal
 * phase, whatever their desired state) fit the node's allocatable cpu and memory.
 */
export function checkCapacity(s: Snapshot, source: string): [NewViolation[], number] {
  const out: NewViolation[] = [];
  for (const n of s.nodes) {
    const on = s.tasks.filter((t) => t.spec.nodeName === n.metadata.name && !TERMINAL_PHASES.has(t.status.phase));
    // A task whose stored template is missing counts for nothing here; convergence names it.
    const cpu = on.reduce((sum, t) => sum + (t.spec.template?.resources?.cpu ?? 0), 0);
    const memory = on.reduce((sum, t) => sum + (t.spec.template?.resources?.memory ?? 0), 0);
    const alloc = n.status?.allocatable;
    if (!alloc) continue;
    const over: string[] = [];
    if (cpu > alloc.cpu + CPU_EPSILON) over.push(`cpu ${cpu.toFixed(3)} > ${alloc.cpu}`);
    if (memory > alloc.memory) over.push(`memory ${memory} > ${alloc.memory}`);
    if (over.length > 0) {
      out.push({
        invariant: 'capacity', source,
        objects: [`node ${n.metadata.name}`, ...on.map((t) => `task ${taskName(t)} ${t.status.phase}`)],
        message: `unfinished tasks exceed allocatable: ${over.join(', ')}`,
      });
    }
  }
  return [out, s.nodes.length];
}
