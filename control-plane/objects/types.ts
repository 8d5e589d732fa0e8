/**
 * The stored object model (DESIGN.md, "Data model"). Every object is
 * { kind, metadata, spec, status }: users write spec, the system writes status.
 * These types are shared by the API, the store, the controllers and the CLI.
 */
import type { TaskStatus } from '../../common/task-status.js';
import type { ClusterCa, NodeRevocation, Token } from './security-types.js';
import type { Config, Secret, SecretKey } from './secret-types.js';

export type { TaskPhase, TaskStatus } from '../../common/task-status.js';

/** ObjectMeta is the identity and bookkeeping every stored object carries. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid: string;
  /** generation increments on every spec change; status.observedGeneration follows it. */
  generation: number;
  labels: Record<string, string>;
  createdAt: string;
  /** resourceVersion is etcd's mod_revision of the key, as a decimal string; set on read. */
  resourceVersion?: string;
}

/** Condition follows the Kubernetes convention: reason is one CamelCase word, message is for people. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
}

/** Resources are limits for a container and what the scheduler reserves for it (cores, bytes, count). */
export interface Resources {
  cpu: number;
  memory: number;
  pids: number;
}

/** PortSpec publishes containerPort; hostPort 0 means not published. */
export interface PortSpec {
  name?: string;
  containerPort: number;
  hostPort?: number;
  protocol: 'tcp' | 'udp';
  /** mode host (default) publishes on the nodes running a replica; ingress on every node (routing mesh). */
  mode?: 'host' | 'ingress';
}

/** ContainerTemplate is what every replica of a service runs. Quantities are normalised on admission. */
export interface ContainerTemplate {
  image: string;
  command?: string[];
  env?: Record<string, string>;
  workingDir?: string;
  user?: string;
  resources?: Partial<Resources>;
  ports?: PortSpec[];
  /** health is probed by the agent; a task is ready only while it passes. */
  health?: HealthSpec;
  /** restart is applied by the agent when a container exits; absent means policy always. */
  restart?: RestartSpec;
  /** security edits the runtime's default privileges (capabilities, seccomp, rootfs, user namespace). */
  security?: SecuritySpec;
  /** pullPolicy says when the agent fetches the image again; absent means if-not-present. */
  pullPolicy?: PullPolicy;
  /** stopSignal is sent first when a task stops, a canonical name such as SIGTERM after admission; absent: SIGTERM. */
  stopSignal?: string;
  /** stopGracePeriodSeconds (0..3600) is the wait between stopSignal and SIGKILL; absent: 10. */
  stopGracePeriodSeconds?: number;
  /** init runs berth-init as PID 1 (signals forwarded, orphans reaped); absent: true. */
  init?: boolean;
  /** readiness gates DNS, the mesh and rollouts; a failing one never restarts the container. */
  readiness?: HealthSpec;
  /** startup holds health and readiness until it passes once; failing past its threshold restarts. */
  startup?: HealthSpec;
  /** secrets are projected as files on a tmpfs private to the container (default /run/secrets/<name>). */
  secrets?: FileProjection[];
  /** configs are projected like secrets, readable by everyone in the container (default /run/configs/<name>). */
  configs?: FileProjection[];
  /** volumes mount node-local named volumes, tmpfs or (by namespace policy) host paths. */
  volumes?: VolumeSpec[];
}

/**
 * FileProjection puts a Secret's or Config's keys into the container: without key, a directory
 * at target holding one file per key; with key, that key alone as the file target. A relative
 * target is under /run/secrets (secrets) or /run/configs (configs). generation is set by the
 * control plane in revisions (the object's generation the revision was made with), so changing
 * a secret makes a new revision and rolls the services that use it.
 */
export interface FileProjection {
  name: string;
  key?: string;
  target?: string;
  /** mode of each file; default 0400 for secrets, 0444 for configs. */
  mode?: number;
  /** uid / gid own the files; default: the container's user. */
  uid?: number;
  gid?: number;
  generation?: number;
}

/** VolumeSpec is one mount: a named node-local volume, a tmpfs, or a host path (bind). */
export interface VolumeSpec {
  type: 'volume' | 'tmpfs' | 'bind';
  /** name of the named volume (type volume). */
  name?: string;
  /** source is the host path (type bind). */
  source?: string;
  target: string;
  readOnly?: boolean;
  /** size of a tmpfs in bytes after admission (a quantity such as 64Mi before); default 64 MiB. */
  size?: number;
}

/** PullPolicy: always re-resolve the reference, use a present image, or never fetch one. */
export type PullPolicy = 'always' | 'if-not-present' | 'never';

/** HealthSpec is one probe (http, exec or tcp) and its timing. */
export interface HealthSpec {
  http?: { path: string; port: number };
  exec?: { command: string[] };
  tcp?: { port: number };
  intervalSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
  /** initialDelaySeconds waits before the first probe; successThreshold successes make it ready. */
  initialDelaySeconds?: number;
  successThreshold?: number;
}

/** RestartSpec says when the agent restarts a task's container and how fast. */
export interface RestartSpec {
  policy: 'always' | 'on-failure' | 'never';
  backoffSeconds?: number;
  maxBackoffSeconds?: number;
}

/** SecuritySpec hardens a container beyond the defaults. */
export interface SecuritySpec {
  readOnlyRootfs?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  userNamespace?: boolean;
  /** seccomp 'unconfined' turns the runtime's default filter off (debugging only). */
  seccomp?: 'default' | 'unconfined';
}

/** UpdateSpec is the rolling-update strategy (defaults in controllers/rollout-plan.ts). */
export interface UpdateSpec {
  maxSurge?: number;
  maxUnavailable?: number;
  minReadySeconds?: number;
  progressDeadlineSeconds?: number;
  autoRollback?: boolean;
}

/** ServiceSpec is the user's desired state for a replicated service. */
export interface ServiceSpec {
  replicas: number;
  template: ContainerTemplate;
  placement?: { constraints?: string[]; spread?: string; strategy?: 'spread' | 'binpack' };
  mode?: 'replicated' | 'global';
  update?: UpdateSpec;
}

/** ServiceStatus is written by the service controller. */
export interface ServiceStatus {
  observedGeneration: number;
  replicas: number;
  runningReplicas: number;
  conditions: Condition[];
  // Rollout fields (rollout controller): optional so objects stored before rollouts still read.
  /** updatedReplicas counts active tasks whose template is the service's current template. */
  updatedReplicas?: number;
  /** readyReplicas counts active tasks that are running and ready. */
  readyReplicas?: number;
  /** currentRevision is the last revision every replica reached (the rollback target). */
  currentRevision?: number;
  /** updateRevision is the revision of spec.template. */
  updateRevision?: number;
  /** lastProgressTime is when the rollout last made progress (progressDeadlineSeconds counts from it). */
  lastProgressTime?: string;
  /** haltedRevision is the updateRevision whose rollout failed (no autoRollback); frozen until the template changes. */
  haltedRevision?: number;
  /** rolledBackRevision is the revision an automatic rollback created; Progressing stays RolledBack while it is the updateRevision. */
  rolledBackRevision?: number;
  /** failureStreak counts task failures since the service was last available; the replacement backoff doubles with it. */
  failureStreak?: number;
}

/** RevisionSpec is an immutable snapshot of a service's template. */
export interface RevisionSpec {
  service: string;
  revision: number;
  template: ContainerTemplate;
  changeCause?: string;
}

/** Revision is stored at /berth/v1/services/<ns>/<name>/revisions/<n>, written by the rollout controller. */
export interface Revision {
  kind: 'Revision';
  metadata: ObjectMeta;
  spec: RevisionSpec;
  status: Record<string, never>;
}

/** Service is stored at /berth/v1/services/<ns>/<name>. */
export interface Service {
  kind: 'Service';
  metadata: ObjectMeta;
  spec: ServiceSpec;
  status?: ServiceStatus;
}

/** PolicyLevel is a namespace's admission level (objects/admission-policy.ts), least to most strict. */
export type PolicyLevel = 'privileged' | 'baseline' | 'restricted';

/** NamespaceSpec is written by admins: the admission level of the namespace's services. */
export interface NamespaceSpec {
  policy: PolicyLevel;
}

/** NamespaceViolation is one service whose template breaks the namespace's level, with one message per field. */
export interface NamespaceViolation {
  service: string;
  violations: string[];
}

/** NamespaceStatus is computed on read by the API, never stored. */
export interface NamespaceStatus {
  /** violations lists the services that break spec.policy now (they keep running; their next template change must comply). */
  violations?: NamespaceViolation[];
  /** implicit: no Namespace object is stored; the namespace exists because services do, at the default level. */
  implicit?: boolean;
}

/** Namespace is stored at /berth/v1/namespaces/<name>; a namespace without one is implicit, at baseline. */
export interface Namespace {
  kind: 'Namespace';
  metadata: ObjectMeta;
  spec: NamespaceSpec;
  status: NamespaceStatus;
}

/** TaskSpec is written by controllers: which service, where, and whether it should run. */
export interface TaskSpec {
  service: string;
  nodeName: string;
  /** pinnedNode (global mode) is the only node the scheduler may place this task on. */
  pinnedNode?: string;
  desiredState: 'running' | 'stopped';
  /**
   * template is what the task runs. A task with templateRef is stored without it (one copy per
   * revision, at taskTemplateKey) and has it filled in when read; older tasks carry their own.
   */
  template: ContainerTemplate;
  /** templateRef is "<service uid>.<revision>", the stored template this task runs. */
  templateRef?: string;
  revision: number;
}

/** TaskTemplate is the one stored copy of a service revision's template that its tasks refer to. */
export interface TaskTemplate {
  kind: 'TaskTemplate';
  metadata: ObjectMeta;
  spec: { template: ContainerTemplate };
}

/** Task is stored at /berth/v1/tasks/<ns>/<service>/<name>. */
export interface Task {
  kind: 'Task';
  metadata: ObjectMeta;
  spec: TaskSpec;
  status: TaskStatus;
}

/** NodeAddress is how a node is reached; type is InternalIP for now. */
export interface NodeAddress {
  type: 'InternalIP';
  address: string;
}

/** NodeSpec is written by admins (cordon, labels live in metadata). */
export interface NodeSpec {
  unschedulable: boolean;
  taints: { key: string; value?: string; effect: 'NoSchedule' }[];
  /** drain (set with unschedulable by `berth drain`) asks controllers to move the node's tasks away. */
  drain?: boolean;
}

/** NodeStatus is reported by the agent through the gateway. */
export interface NodeStatus {
  capacity: Resources;
  allocatable: Resources;
  addresses: NodeAddress[];
  metricsUrl: string;
  conditions: Condition[];
  agentVersion: string;
  cgroupVersion: string;
  lastHeartbeatTime?: string;
  /** images are the images in the node's store, as its agent last reported them. */
  images?: NodeImage[];
  /** volumes are the node's named volumes, as its agent last reported them. */
  volumes?: NodeVolume[];
  /** subnet is the node's container subnet (CIDR) from the cluster CIDR, allocated at first registration. */
  subnet?: string;
}

/** NodeImage is one image in a node's store. */
export interface NodeImage {
  references: string[];
  digest: string;
  sizeBytes: number;
  lastUsed: string;
  inUse: boolean;
}

/** NodeVolume is one named volume on a node: a directory under the agent's state dir. */
export interface NodeVolume {
  namespace: string;
  name: string;
  /** sizeBytes is the disk usage of its directory, measured by the agent now and then. */
  sizeBytes: number;
  /** inUse: a container on the node mounts it. */
  inUse: boolean;
  /** createdAt is when the agent made its directory (RFC 3339). */
  createdAt: string;
}

/** Node is stored at /berth/v1/nodes/<name>. */
export interface Node {
  kind: 'Node';
  metadata: ObjectMeta;
  spec: NodeSpec;
  status: NodeStatus;
}

/** EventObjectRef names the object an event is about (nodes have no namespace). */
export interface EventObjectRef {
  kind: 'Service' | 'Task' | 'Node';
  name: string;
  namespace?: string;
}

/** Event is stored at /berth/v1/events/<ns>/<id> on a short etcd lease; written by controllers. */
export interface Event {
  kind: 'Event';
  metadata: ObjectMeta;
  involvedObject: EventObjectRef;
  type: 'Normal' | 'Warning';
  /** reason is one CamelCase word: Scheduled, Started, Died, OOMKilled, NodeNotReady, Rescheduled, RolledBack... */
  reason: string;
  message: string;
  /** source is the component that saw it happen (node-lifecycle, services, tasks, rollouts...). */
  source: string;
  lastTimestamp: string;
}

/** BerthObject is any stored object. */
export type BerthObject = Service | Task | TaskTemplate | Node | Revision | Namespace | ClusterCa | Token | NodeRevocation | Secret | Config | SecretKey;
