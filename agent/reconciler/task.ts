/**
 * The desired task as the reconciler sees it: the agent's domain, not the wire. The session
 * translates each TaskAssignment into a DesiredTask (agent/convert.ts), settling the wire's
 * conventions ("" and 0 for "default", absent messages, strings for enums) once, so nothing
 * under agent/reconciler/ reads a proto type.
 */
import type { PullPolicy } from '../images/index.js';
import type { HostPort } from '../network/ports.js';
import type { HealthCheck } from '../probes/index.js';
import type { ContainerSecurity } from '../runtime/runtime.js';
import type { RestartSettings } from './restart.js';

/** TaskRef names one task: what every status report carries. */
export interface TaskRef {
  namespace: string;
  name: string;
  uid: string;
}

/** Resources is an amount of cpu (cores), memory (bytes) and pids; 0 means none requested, no limit. */
export interface Resources {
  cpuCores: number;
  memoryBytes: number;
  pids: number;
}

/** DesiredState is what the control plane wants of a task on this node. */
export type DesiredState = 'running' | 'stopped';

/** DesiredTask is one task this node should run or stop. */
export interface DesiredTask extends TaskRef {
  service: string;
  desiredState: DesiredState;
  revision: number;
  /** template is absent only when the control plane sent none; such a task fails to start. */
  template?: TaskTemplate;
  /**
   * secrets / configs hold the content of the objects the template projects, by name (in the
   * task's namespace), as the desired set carried them; a name missing here did not come, and
   * the task waits in preparing. Kept in memory only, never logged or written anywhere.
   */
  secrets?: Record<string, ObjectData>;
  configs?: Record<string, ObjectData>;
}

/** ObjectData is the content of one Secret or Config: its generation and its keys' bytes. */
export interface ObjectData {
  generation: number;
  data: Record<string, Buffer>;
}

/** FileProjection puts a Secret's or Config's keys into the container as files (template secrets/configs). */
export interface FileProjection {
  /** name is the Secret or Config in the task's namespace. */
  name: string;
  /** key projects that one key as the file target; undefined: one file per key at `<target>/<key>`. */
  key?: string;
  /** target is absolute (the control plane resolved the defaults). */
  target: string;
  /** mode undefined: 0400 for secrets, 0444 for configs. */
  mode?: number;
  /** uid / gid undefined: the container's user. */
  uid?: number;
  gid?: number;
}

/** VolumeMount is one template volume: a named node-local volume, a tmpfs or a host path. */
export interface VolumeMount {
  type: 'volume' | 'tmpfs' | 'bind';
  /** name is the named volume (type volume), in the task's namespace. */
  name: string;
  /** source is the host path (type bind). */
  source: string;
  target: string;
  readOnly: boolean;
  /** sizeBytes bounds a tmpfs; 0 means the default (64 MiB). */
  sizeBytes: number;
}

/** TaskTemplate is how a task's container is made, with the wire's defaults settled. */
export interface TaskTemplate {
  image: string;
  /** command replaces the image's Entrypoint and Cmd; empty: the image's. */
  command: string[];
  env: Record<string, string>;
  /** workingDir / user: undefined means the image's. */
  workingDir?: string;
  user?: string;
  /** resources are the container's limits and what it requests of the node (admission.ts). */
  resources: Resources;
  /** hostPorts are the ports published on this node's own addresses (ingress ports come with the endpoints). */
  hostPorts: HostPort[];
  security?: ContainerSecurity;
  pullPolicy: PullPolicy;
  /** health is the liveness check (failing past its threshold restarts); without readiness it also decides ready. */
  health?: HealthCheck;
  /** readiness decides ready (DNS, mesh, rollouts) and never restarts; undefined: health decides, or ready once started. */
  readiness?: HealthCheck;
  /** startup holds health and readiness until it passes once; failing past its threshold restarts. */
  startup?: HealthCheck;
  restart: RestartSettings;
  /** stopSignal / stopGracePeriodSeconds: undefined means SIGTERM and the agent's default grace. */
  stopSignal?: string;
  stopGracePeriodSeconds?: number;
  /** init runs berth-init as PID 1. */
  init: boolean;
  /** secrets / configs are projected as files (content in DesiredTask.secrets / configs); absent: none. */
  secrets?: FileProjection[];
  configs?: FileProjection[];
  /** volumes are mounted in the container; absent: none. */
  volumes?: VolumeMount[];
}

/** NO_RESOURCES is a request for nothing. */
export const NO_RESOURCES: Readonly<Resources> = Object.freeze({ cpuCores: 0, memoryBytes: 0, pids: 0 });
