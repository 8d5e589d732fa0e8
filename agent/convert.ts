/**
 * Translation between the agent protocol (proto/berth/v1/agent.proto) and the agent's domain, at
 * its session: desired tasks come in as DesiredTask, statuses go out as the wire's TaskStatus.
 * The wire's conventions ("" and 0 for "default", absent messages, enums as strings) are settled
 * here once, so the reconciler and what it drives never read a proto type.
 */
import type {
  ContainerTemplate, DesiredTasks, FileProjection as ProtoFileProjection, HealthCheck as ProtoHealthCheck, ObjectData as ProtoObjectData, PortMapping, VolumeMount as ProtoVolumeMount, RestartPolicy, SecurityContext, TaskAssignment, TaskStatus as ProtoTaskStatus,
} from '../proto/gen/berth/v1/agent.js';
import type { PullPolicy } from './images/index.js';
import type { HostPort } from './network/ports.js';
import type { HealthCheck } from './probes/index.js';
import type { ContainerSecurity } from './runtime/runtime.js';
import { RESTART_BACKOFF_DEFAULT_MS, RESTART_BACKOFF_MAX_DEFAULT_MS, restartPolicyName, type RestartSettings } from './reconciler/restart.js';
import type { TaskStatusView } from './reconciler/status.js';
import { NO_RESOURCES, type DesiredTask, type FileProjection, type ObjectData, type TaskTemplate, type VolumeMount } from './reconciler/task.js';

/**
 * fromDesiredTasks turns a node's desired set into the tasks the reconciler converges on, each
 * with its template (its own, or the shared one its templateRef names). A task whose template
 * did not come is returned without one; the reconciler then keeps it from starting.
 */
export function fromDesiredTasks(m: DesiredTasks): DesiredTask[] {
  return m.tasks.map((a) => withObjects(fromAssignment(a.template === undefined && a.templateRef ? { ...a, template: m.templates[a.templateRef] } : a), m));
}

/**
 * withObjects hands a task the content of the secrets and configs its template projects, from
 * the desired set's maps (keyed "<namespace>/<name>"); an object the set lacks is left out, and
 * the reconciler keeps the task preparing until a later set brings it.
 */
export function withObjects(task: DesiredTask, m: Partial<Pick<DesiredTasks, 'secrets' | 'configs'>>): DesiredTask {
  const pick = (projections: FileProjection[] | undefined, from: Record<string, ProtoObjectData> = {}): Record<string, ObjectData> | undefined => {
    if (!projections || projections.length === 0) return undefined;
    const out: Record<string, ObjectData> = {};
    for (const p of projections) {
      const found = from[`${task.namespace}/${p.name}`];
      if (found) out[p.name] = { generation: found.generation, data: found.data };
    }
    return out;
  };
  const secrets = pick(task.template?.secrets, m.secrets);
  const configs = pick(task.template?.configs, m.configs);
  return { ...task, ...(secrets ? { secrets } : {}), ...(configs ? { configs } : {}) };
}

/** fromAssignment turns what the control plane sent into the task the reconciler converges on. */
export function fromAssignment(a: TaskAssignment): DesiredTask {
  return {
    namespace: a.namespace,
    service: a.service,
    name: a.name,
    uid: a.uid,
    // Anything but "running" stops the task: an unknown state must never start a container.
    desiredState: a.desiredState === 'running' ? 'running' : 'stopped',
    revision: a.revision,
    ...(a.template ? { template: templateFrom(a.template) } : {}),
  };
}

/** templateFrom settles a wire template's defaults. */
export function templateFrom(t: ContainerTemplate): TaskTemplate {
  const r = t.resources;
  const out: TaskTemplate = {
    image: t.image,
    command: [...t.command],
    env: { ...t.env },
    resources: r ? { cpuCores: positive(r.cpuCores), memoryBytes: positive(r.memoryBytes), pids: positive(r.pids) } : { ...NO_RESOURCES },
    hostPorts: hostPortsOf(t.ports),
    pullPolicy: pullPolicyOf(t.pullPolicy),
    restart: restartSettings(t.restart),
    // Absent means true: templates run berth-init unless they say init: false.
    init: t.init !== false,
  };
  if (t.workingDir) out.workingDir = t.workingDir;
  if (t.user) out.user = t.user;
  const security = securityFrom(t.security);
  if (security) out.security = security;
  if (t.health) out.health = healthFrom(t.health);
  if (t.readiness) out.readiness = healthFrom(t.readiness);
  if (t.startup) out.startup = healthFrom(t.startup);
  // Defensive about the lists: a template made in memory (not decoded) may leave them out.
  if (t.secrets?.length) out.secrets = t.secrets.map(projectionFrom);
  if (t.configs?.length) out.configs = t.configs.map(projectionFrom);
  if (t.volumes?.length) out.volumes = t.volumes.map(volumeFrom);
  if (t.stopSignal) out.stopSignal = t.stopSignal;
  if (t.stopGracePeriodSeconds !== undefined) out.stopGracePeriodSeconds = t.stopGracePeriodSeconds;
  return out;
}

// A quantity that is not a positive number asks for nothing (the wire's 0).
function positive(n: number): number {
  return n > 0 ? n : 0;
}

/** hostPortsOf keeps the mappings this node publishes for the container: hostPort > 0 and mode host (or unset). */
export function hostPortsOf(ports: readonly PortMapping[]): HostPort[] {
  return ports.filter((p) => p.hostPort > 0 && p.mode !== 'ingress')
    .map((p) => ({ hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol === 'udp' ? 'udp' : 'tcp' }));
}

/** pullPolicyOf maps the wire's pull policy ("" = default) to the store's. */
export function pullPolicyOf(raw: string | undefined): PullPolicy {
  return raw === 'always' || raw === 'never' ? raw : 'if-not-present';
}

/** restartSettings fills a wire policy's defaults; an unknown policy name reads as `always`. */
export function restartSettings(p: RestartPolicy | undefined): RestartSettings {
  const backoffMs = p && p.backoffSeconds > 0 ? p.backoffSeconds * 1000 : RESTART_BACKOFF_DEFAULT_MS;
  const maxBackoffMs = Math.max(backoffMs, p && p.maxBackoffSeconds > 0 ? p.maxBackoffSeconds * 1000 : RESTART_BACKOFF_MAX_DEFAULT_MS);
  return { policy: restartPolicyName(p?.policy), backoffMs, maxBackoffMs };
}

/** securityFrom maps a template's security context; undefined when it changes no default. */
export function securityFrom(s: SecurityContext | undefined): ContainerSecurity | undefined {
  if (!s) return undefined;
  const out: ContainerSecurity = {};
  if (s.capAdd.length > 0) out.capAdd = [...s.capAdd];
  if (s.capDrop.length > 0) out.capDrop = [...s.capDrop];
  if (s.readOnlyRootfs) out.readOnlyRootfs = true;
  if (s.userNamespace) out.userNamespace = true;
  if (s.seccomp === 'unconfined') out.seccomp = 'unconfined';
  return Object.keys(out).length > 0 ? out : undefined;
}

/** healthFrom copies a wire check (health, readiness or startup); its 0s keep meaning "default" (probes/probe-state.ts settles them). */
export function healthFrom(h: ProtoHealthCheck): HealthCheck {
  const p = h.probe;
  const probe: HealthCheck['probe'] = p?.$case === 'http' ? { $case: 'http', value: { path: p.value.path, port: p.value.port } }
    : p?.$case === 'tcp' ? { $case: 'tcp', value: { port: p.value.port } }
      : p?.$case === 'exec' ? { $case: 'exec', value: { command: [...p.value.command] } } : undefined;
  return {
    ...(probe ? { probe } : {}),
    intervalSeconds: h.intervalSeconds,
    timeoutSeconds: h.timeoutSeconds,
    failureThreshold: h.failureThreshold,
    initialDelaySeconds: h.initialDelaySeconds,
    successThreshold: h.successThreshold,
  };
}

/** projectionFrom settles a wire projection: "" key and 0 mode mean "default", uid/gid absent the container's user. */
export function projectionFrom(p: ProtoFileProjection): FileProjection {
  return {
    name: p.name,
    target: p.target,
    ...(p.key ? { key: p.key } : {}),
    ...(p.mode > 0 ? { mode: p.mode } : {}),
    ...(p.uid !== undefined ? { uid: p.uid } : {}),
    ...(p.gid !== undefined ? { gid: p.gid } : {}),
  };
}

/** volumeFrom maps a wire volume mount; an unknown type reads as a named volume (admission allows only the three). */
export function volumeFrom(v: ProtoVolumeMount): VolumeMount {
  const type = v.type === 'tmpfs' || v.type === 'bind' ? v.type : 'volume';
  return { type, name: v.name, source: v.source, target: v.target, readOnly: v.readOnly, sizeBytes: v.sizeBytes > 0 ? v.sizeBytes : 0 };
}

/** toProtoStatus converts a status for the wire. */
export function toProtoStatus(s: TaskStatusView): ProtoTaskStatus {
  return {
    namespace: s.namespace, name: s.name, uid: s.uid, phase: s.phase, containerId: s.containerId ?? '', pid: s.pid ?? 0,
    ip: s.ip ?? '', hasExitCode: s.exitCode !== undefined, exitCode: s.exitCode ?? 0, reason: s.reason ?? '', message: s.message ?? '',
    restarts: s.restarts, startedAt: s.startedAt ?? '', finishedAt: s.finishedAt ?? '', imageDigest: s.imageDigest ?? '',
    pullBytesDone: s.pullBytesDone ?? 0, pullBytesTotal: s.pullBytesTotal ?? 0, ready: s.ready ?? false, lastProbe: s.lastProbe ?? '',
    started: s.started ?? false, lastStartupProbe: s.lastStartupProbe ?? '', lastReadinessProbe: s.lastReadinessProbe ?? '',
  };
}
