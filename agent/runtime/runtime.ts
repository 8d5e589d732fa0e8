/**
 * The agent's view of the native core. `agent/runtime` is the only module that reaches
 * `native/`; everything else in the agent programs against this interface.
 */

/** ContainerLimits are applied through the container's cgroup; absent or 0 means unlimited. */
export interface ContainerLimits {
  memoryBytes?: number;
  cpuCores?: number;
  pids?: number;
}

/** ContainerSpec is everything the native core needs to create and start one container. */
export interface ContainerSpec {
  /** id names the container's state dir and cgroup; [a-z0-9-]{1,63}. */
  id: string;
  hostname: string;
  /** lowerDirs are unpacked image layers, topmost first (overlayfs lowerdir order). */
  lowerDirs: string[];
  args: string[];
  /** env holds "KEY=value" strings. */
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  limits: ContainerLimits;
  /** labels are stored with the container so a restarted agent can re-adopt it. */
  labels: Record<string, string>;
}

/** ContainerState is what the core knows about one container. */
export interface ContainerState {
  id: string;
  status: 'running' | 'exited';
  /** pid is the host PID of the container's first process. */
  pid: number;
  shimPid: number;
  startedAt: string;
  exitCode?: number;
  /** signal is set when the process was killed by a signal (exitCode is then 128 + signal). */
  signal?: number;
  oomKilled?: boolean;
  finishedAt?: string;
  labels: Record<string, string>;
  logPath: string;
}

/** ContainerStats are read from the container's cgroup (cAdvisor semantics). */
export interface ContainerStats {
  cpuUsageSeconds: number;
  memoryUsageBytes: number;
  memoryWorkingSetBytes: number;
  memoryLimitBytes: number;
  pids: number;
}

/** Runtime creates, inspects and removes containers on this host. */
export interface Runtime {
  /** cgroupVersion is detected once at start: 'v1' (legacy or hybrid) or 'v2' (unified). */
  readonly cgroupVersion: 'v1' | 'v2';
  /** run creates and starts a container; it resolves once the process has exec'd. */
  run(spec: ContainerSpec): Promise<ContainerState>;
  /** state returns undefined for an unknown id. */
  state(id: string): Promise<ContainerState | undefined>;
  /** list returns every container in the state dir, running or exited (for re-adoption). */
  list(): Promise<ContainerState[]>;
  /** stop sends SIGTERM, then SIGKILL after graceMs, and resolves with the exited state. */
  stop(id: string, graceMs: number): Promise<ContainerState | undefined>;
  /** remove deletes an exited container's cgroup, upper dir, state dir (and log unless keepLog). */
  remove(id: string): Promise<void>;
  /** stats returns undefined when the container is not running. */
  stats(id: string): Promise<ContainerStats | undefined>;
}
