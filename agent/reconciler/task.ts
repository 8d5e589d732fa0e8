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
  /** health is the liveness check; undefined: the task is ready once running. */
  health?: HealthCheck;
  restart: RestartSettings;
  /** stopSignal / stopGracePeriodSeconds: undefined means SIGTERM and the agent's default grace. */
  stopSignal?: string;
  stopGracePeriodSeconds?: number;
  /** init runs berth-init as PID 1. */
  init: boolean;
}

/** NO_RESOURCES is a request for nothing. */
export const NO_RESOURCES: Readonly<Resources> = Object.freeze({ cpuCores: 0, memoryBytes: 0, pids: 0 });
