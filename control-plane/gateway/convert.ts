/** Translation between stored objects and the agent protocol (proto/berth/v1/agent.proto). */
import type {
  ContainerTemplate as ProtoTemplate, DesiredTasks, FileProjection as ProtoProjection, HealthCheck as ProtoHealth, NodeImage as ProtoNodeImage, NodeVolume as ProtoNodeVolume, Register, TaskAssignment, TaskStatus as ProtoTaskStatus,
} from '../../proto/gen/berth/v1/agent.js';
import { AGENT_PHASES } from '../../common/task-status.js';
import { projectionTarget } from '../objects/secret-validation.js';
import type { ContainerTemplate, FileProjection, HealthSpec, Node, NodeImage, NodeVolume, Task, TaskPhase, TaskStatus } from '../objects/types.js';

/** toProtoTemplate converts a stored template; absent quantities become 0 ("no limit"). */
export function toProtoTemplate(t: ContainerTemplate): ProtoTemplate {
  return {
    image: t.image,
    command: [...(t.command ?? [])],
    env: { ...(t.env ?? {}) },
    workingDir: t.workingDir ?? '',
    user: t.user ?? '',
    resources: { cpuCores: t.resources?.cpu ?? 0, memoryBytes: t.resources?.memory ?? 0, pids: t.resources?.pids ?? 0 },
    ports: (t.ports ?? []).map((p) => ({ name: p.name ?? '', containerPort: p.containerPort, hostPort: p.hostPort ?? 0, protocol: p.protocol, mode: p.mode ?? 'host' })),
    security: t.security && {
      readOnlyRootfs: t.security.readOnlyRootfs ?? false,
      capAdd: [...(t.security.capAdd ?? [])],
      capDrop: [...(t.security.capDrop ?? [])],
      userNamespace: t.security.userNamespace ?? false,
      seccomp: t.security.seccomp ?? '',
    },
    pullPolicy: t.pullPolicy ?? '',
    health: t.health && toProtoHealth(t.health),
    restart: t.restart && {
      policy: t.restart.policy, backoffSeconds: t.restart.backoffSeconds ?? 0, maxBackoffSeconds: t.restart.maxBackoffSeconds ?? 0,
    },
    stopSignal: t.stopSignal,
    stopGracePeriodSeconds: t.stopGracePeriodSeconds,
    init: t.init,
    readiness: t.readiness && toProtoHealth(t.readiness),
    startup: t.startup && toProtoHealth(t.startup),
    secrets: (t.secrets ?? []).map((p) => toProtoProjection(p, SECRETS_DIR)),
    configs: (t.configs ?? []).map((p) => toProtoProjection(p, CONFIGS_DIR)),
    volumes: (t.volumes ?? []).map((v) => ({
      type: v.type, name: v.name ?? '', source: v.source ?? '', target: v.target, readOnly: v.readOnly ?? false, sizeBytes: v.size ?? 0,
    })),
  };
}

/** SECRETS_DIR is where a secret projection with no target or a relative one lands in the container. */
export const SECRETS_DIR = '/run/secrets';
/** CONFIGS_DIR is where a config projection with no target or a relative one lands. */
export const CONFIGS_DIR = '/run/configs';

/** toProtoProjection resolves a projection's target (default <dir>/<name>, relative under dir). */
export function toProtoProjection(p: FileProjection, dir: string): ProtoProjection {
  return { name: p.name, key: p.key ?? '', target: projectionTarget(p, dir), mode: p.mode ?? 0, uid: p.uid, gid: p.gid, generation: p.generation ?? 0 };
}

/** toProtoHealth converts a stored health check; a check with no probe kind is sent without one. */
export function toProtoHealth(h: HealthSpec): ProtoHealth {
  const probe: ProtoHealth['probe'] = h.http ? { $case: 'http', value: { path: h.http.path, port: h.http.port } }
    : h.tcp ? { $case: 'tcp', value: { port: h.tcp.port } }
      : h.exec ? { $case: 'exec', value: { command: [...h.exec.command] } } : undefined;
  return {
    probe,
    intervalSeconds: h.intervalSeconds ?? 0,
    timeoutSeconds: h.timeoutSeconds ?? 0,
    failureThreshold: h.failureThreshold ?? 0,
    initialDelaySeconds: h.initialDelaySeconds ?? 0,
    successThreshold: h.successThreshold ?? 0,
  };
}

/**
 * toDesiredTasks is a node's complete desired set as its agent receives it: tasks sorted by
 * namespace and name, and each stored template (templateRef) converted and sent once.
 */
export function toDesiredTasks(tasks: readonly Task[]): DesiredTasks {
  const templates: Record<string, ProtoTemplate> = {};
  const assignments = tasks.map((t) => {
    const ref = t.spec.templateRef;
    if (ref === undefined) return toAssignment(t);
    templates[ref] ??= toProtoTemplate(t.spec.template);
    return { ...toAssignment(t, false), templateRef: ref };
  }).sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
  return { tasks: assignments, templates, secrets: {}, configs: {} };
}

/** toAssignment converts a stored task into what its node's agent receives (withTemplate false: the template goes in DesiredTasks.templates). */
export function toAssignment(t: Task, withTemplate = true): TaskAssignment {
  return {
    namespace: t.metadata.namespace ?? '',
    service: t.spec.service,
    name: t.metadata.name,
    uid: t.metadata.uid,
    desiredState: t.spec.desiredState,
    template: withTemplate ? toProtoTemplate(t.spec.template) : undefined,
    revision: t.spec.revision,
  };
}

/** fromProtoStatus converts an agent's report into a stored status; undefined for an unknown phase. */
export function fromProtoStatus(s: ProtoTaskStatus): TaskStatus | undefined {
  // An agent reports only the phases it drives; pending, assigned and lost belong to the control plane.
  if (!AGENT_PHASES.has(s.phase)) return undefined;
  const out: TaskStatus = { phase: s.phase as TaskPhase, restarts: s.restarts };
  if (s.containerId) out.containerId = s.containerId;
  if (s.pid) out.pid = s.pid;
  if (s.ip) out.ip = s.ip;
  if (s.hasExitCode) out.exitCode = s.exitCode;
  if (s.reason) out.reason = s.reason;
  if (s.message) out.message = s.message;
  if (s.startedAt) out.startedAt = s.startedAt;
  if (s.finishedAt) out.finishedAt = s.finishedAt;
  if (s.imageDigest) out.imageDigest = s.imageDigest;
  // Only a running task can be ready; a stale flag on any other phase would mislead rollouts.
  if (out.phase === 'running') out.ready = s.ready;
  // Started, like ready, belongs to the running container; after it the flag would be stale.
  if (out.phase === 'running') out.started = s.started;
  if (s.lastProbe) out.lastProbe = s.lastProbe;
  if (s.lastStartupProbe) out.lastStartupProbe = s.lastStartupProbe;
  if (s.lastReadinessProbe) out.lastReadinessProbe = s.lastReadinessProbe;
  // Progress only means something while preparing; other phases drop it so it cannot go stale.
  if (out.phase === 'preparing' && s.pullBytesTotal > 0) {
    out.pullBytesDone = s.pullBytesDone;
    out.pullBytesTotal = s.pullBytesTotal;
  }
  return out;
}

/** nodeStatusFrom builds a node's reported status from its Register; conditions are left to the caller. */
export function nodeStatusFrom(r: Register, conditions: Node['status']['conditions']): Node['status'] {
  const capacity = { cpu: r.capacity?.cpuCores ?? 0, memory: r.capacity?.memoryBytes ?? 0, pids: r.capacity?.pids ?? 0 };
  return {
    capacity,
    allocatable: { ...capacity },
    addresses: r.addresses.map((a) => ({ type: 'InternalIP' as const, address: a.address })),
    metricsUrl: r.metricsUrl,
    conditions,
    agentVersion: r.agentVersion,
    cgroupVersion: r.cgroupVersion,
    lastHeartbeatTime: new Date().toISOString(),
    images: fromProtoImages(r.images),
    volumes: fromProtoVolumes(r.volumes),
  };
}

/** fromProtoVolumes converts a node's reported volume list, by namespace and name. */
export function fromProtoVolumes(volumes: readonly ProtoNodeVolume[]): NodeVolume[] {
  return volumes
    .map((v) => ({ namespace: v.namespace, name: v.name, sizeBytes: v.sizeBytes, inUse: v.inUse, createdAt: v.createdAt }))
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}

/** fromProtoImages converts a node's reported image list, most recently used first. */
export function fromProtoImages(images: ProtoNodeImage[]): NodeImage[] {
  return images
    .map((i) => ({ references: [...i.references], digest: i.digest, sizeBytes: i.sizeBytes, lastUsed: i.lastUsed, inUse: i.inUse }))
    .sort((a, b) => b.lastUsed.localeCompare(a.lastUsed) || a.digest.localeCompare(b.digest));
}
