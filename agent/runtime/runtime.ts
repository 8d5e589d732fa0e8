/**
 * The agent's view of the native core. `agent/runtime` is the only module that reaches
 * `native/`; everything else in the agent programs against this interface.
 */
import type { Readable, Writable } from 'node:stream';
import type { SignalLike } from './signals.js';

export type { SignalLike } from './signals.js';

/** ContainerLimits are applied through the container's cgroup; absent or 0 means unlimited. */
export interface ContainerLimits {
  memoryBytes?: number;
  cpuCores?: number;
  pids?: number;
  /** swapBytes is swap allowed on top of memoryBytes (default 0: no swap). */
  swapBytes?: number;
  /** cpus pins the container to a cpuset list such as "0-1,3" (default: any cpu). */
  cpus?: string;
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
  /** security tightens or relaxes the runtime's defaults (Docker's 14 caps, seccomp, rw root). */
  security?: ContainerSecurity;
  /** groups are supplementary gids of the process (default: none). */
  groups?: number[];
  /** rlimits are set before exec; NOFILE defaults to 1048576 (capped by the agent's hard limit). */
  rlimits?: ContainerRlimit[];
  /** mounts bind host paths into the container; targets are resolved inside the rootfs. */
  mounts?: ContainerMount[];
  /** tmpfs mounts a fresh memory-backed filesystem at each target (inside the rootfs). */
  tmpfs?: ContainerTmpfs[];
  /**
   * files are written into the container at start, on a tmpfs private to its mount namespace
   * (secrets, configs): their content never touches the node's disk and is never stored in the
   * container's state dir, so a restart of the container needs the spec again.
   */
  files?: ContainerFile[];
  /** etcHosts / resolvConf replace the generated /etc/hosts and the host's /etc/resolv.conf. */
  etcHosts?: string;
  resolvConf?: string;
  /**
   * init runs berth-init as PID 1 with args as its child: it forwards signals and reaps orphans
   * (Docker's --init). Default false here, as in `docker run`; task templates default it on.
   */
  init?: boolean;
}

/** ContainerSecurity is the per-container privilege setting; absent fields keep the defaults. */
export interface ContainerSecurity {
  /** capAdd / capDrop edit the default set: names with or without CAP_, any case, or "ALL". */
  capAdd?: string[];
  capDrop?: string[];
  readOnlyRootfs?: boolean;
  /** seccomp 'unconfined' turns the default filter off (for debugging). */
  seccomp?: 'default' | 'unconfined';
  /** userNamespace maps container ids 0..size-1 to host base.. (default 100000, 65536 ids). */
  userNamespace?: boolean | { uidBase: number; gidBase: number; size: number };
}

/** ContainerRlimit is one resource limit, e.g. { name: 'NOFILE', soft: 1024, hard: 4096 }. */
export interface ContainerRlimit {
  name: string;
  soft: number | 'unlimited';
  hard: number | 'unlimited';
}

/** ContainerMount binds the host path source at target in the container. */
export interface ContainerMount {
  source: string;
  target: string;
  readonly?: boolean;
}

/** ContainerTmpfs is one tmpfs mount; sizeBytes bounds it, mode is its root directory's mode. */
export interface ContainerTmpfs {
  target: string;
  sizeBytes: number;
  /** mode of the mount's root directory (default 0o1777, as /tmp). */
  mode?: number;
  readonly?: boolean;
}

/** ContainerFile is one projected file: content at target (resolved inside the rootfs), mode, owner. */
export interface ContainerFile {
  target: string;
  content: Buffer;
  mode: number;
  uid: number;
  gid: number;
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
  /** cpuUserSeconds / cpuSystemSeconds split cpuUsageSeconds by mode. */
  cpuUserSeconds?: number;
  cpuSystemSeconds?: number;
  /** cfsPeriods counts elapsed CFS enforcement periods; cfsThrottledPeriods those that hit the quota. */
  cfsPeriods?: number;
  cfsThrottledPeriods?: number;
  cfsThrottledSeconds?: number;
  /** memoryRssBytes is anonymous memory and swap cache; memoryCacheBytes is page cache. */
  memoryRssBytes?: number;
  memoryCacheBytes?: number;
  /** memorySwapLimitBytes is the memory+swap limit (cAdvisor semantics; 0: unlimited). */
  memorySwapLimitBytes?: number;
  /** oomKills counts OOM-killer kills inside the container's cgroup. */
  oomKills?: number;
  /** cpuQuotaUs / cpuPeriodUs / cpuShares are the applied CFS limits (0: none). */
  cpuQuotaUs?: number;
  cpuPeriodUs?: number;
  cpuShares?: number;
}

/** ExecRequest is one command to run inside a running container. */
export interface ExecRequest {
  /** args is the command and its arguments; args[0] is looked up in the container's PATH. */
  args: string[];
  /** env holds extra "KEY=value" strings, overriding the container's. */
  env?: string[];
  /** cwd defaults to the container's working directory. */
  cwd?: string;
  /** timeoutMs kills the command (SIGKILL) after this long; 0 or absent: no limit. */
  timeoutMs?: number;
}

/** ExecResult is how an exec'd command ended and what it printed (each stream capped at 4 MiB). */
export interface ExecResult {
  /** exitCode is 128 + signal when the command was killed; 127 when it could not be executed. */
  exitCode: number;
  signal?: number;
  /** timedOut is true when the command was killed at its timeout. */
  timedOut: boolean;
  stdout: Buffer;
  stderr: Buffer;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

/** ExecStreamRequest is one interactive command (`berth exec -i/-t`) to run in a running container. */
export interface ExecStreamRequest {
  /** args is the command and its arguments; args[0] is looked up in the container's PATH. */
  args: string[];
  /** tty runs the command on a pty allocated inside the container, as its controlling terminal. */
  tty: boolean;
  /** stdin false closes the command's stdin at once (it reads EOF). */
  stdin: boolean;
  /** rows / cols are the terminal's first size (tty only; 0 or absent: the kernel's default). */
  rows?: number;
  cols?: number;
  /** env holds extra "KEY=value" strings, overriding the container's. */
  env?: string[];
  /** cwd defaults to the container's working directory. */
  cwd?: string;
}

/** ExecStreamExit is how an interactive command ended: exitCode is 128 + signal when killed. */
export interface ExecStreamExit {
  exitCode: number;
  signal?: number;
}

/**
 * ExecStream is a running interactive command. Its streams carry back-pressure end to end: a
 * stdout nobody reads stops the command (it blocks on its pty or pipe), and stdin's write()
 * returning false means the command is not reading.
 */
export interface ExecStream {
  /** stdin is the command's input (with a tty: the keyboard; its end types the EOF character). */
  stdin: Writable;
  /** stdout is the command's output; with a tty, everything the terminal shows. */
  stdout: Readable;
  /** stderr is the command's error output; absent with a tty, where it shares stdout. */
  stderr?: Readable;
  /** resize sets the terminal's size (the command gets SIGWINCH); ignored without a tty. */
  resize(rows: number, cols: number): void;
  /**
   * signal delivers sig as a terminal would: to its foreground process group with a tty, else to
   * the command's process group. It throws BERTH_ERR_RUNTIME_INVALID_SPEC for an unknown signal.
   */
  signal(sig: SignalLike): void;
  /** hangUp is the client going away: the command gets SIGHUP (with a tty, the pty is closed). */
  hangUp(): void;
  /** kill ends the command at once (SIGKILL), whatever it does with SIGHUP. */
  kill(): void;
  /**
   * exit settles once the command has exited and its helper is done: with the exit, or with a
   * RuntimeError (BERTH_ERR_RUNTIME_NOT_RUNNING, BERTH_ERR_RUNTIME_EXEC) when it never ran.
   * Output still unread stays readable on stdout/stderr.
   */
  exit: Promise<ExecStreamExit>;
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
  /**
   * stop sends signal (default SIGTERM) to the container through its shim, SIGKILL after graceMs,
   * and resolves with the exited state (its `signal` tells whether the SIGKILL was needed).
   */
  stop(id: string, graceMs: number, signal?: SignalLike): Promise<ContainerState | undefined>;
  /**
   * kill sends one signal to the container's init through its shim, never to a PID; it rejects
   * with BERTH_ERR_RUNTIME_NOT_RUNNING once the container has exited.
   */
  kill?(id: string, signal: SignalLike): Promise<void>;
  /**
   * wait resolves with the container's state once it is no longer running. The exit is pushed
   * by the container's shim, not polled; it works for containers of an earlier agent too.
   */
  wait?(id: string): Promise<ContainerState | undefined>;
  /** remove deletes an exited container's cgroup, upper dir, state dir (and log unless keepLog). */
  remove(id: string): Promise<void>;
  /** stats returns undefined when the container is not running. */
  stats(id: string): Promise<ContainerStats | undefined>;
  /**
   * exec runs a command inside a running container: its namespaces, cgroup, user and security
   * settings. It rejects with BERTH_ERR_RUNTIME_NOT_RUNNING when the container is not running.
   */
  exec?(id: string, req: ExecRequest): Promise<ExecResult>;
  /**
   * execStream starts an interactive command in a running container (stdin, optional pty,
   * resize, signals). It rejects with BERTH_ERR_RUNTIME_NOT_RUNNING when the container is not
   * running and BERTH_ERR_RUNTIME_INVALID_SPEC for a bad request; later failures settle `exit`.
   */
  execStream?(id: string, req: ExecStreamRequest): Promise<ExecStream>;
  /**
   * recover runs once when the agent starts, before list(): it removes half-made containers
   * (no pid file and no live shim, left by a crash mid-create) and returns their ids.
   */
  recover?(): Promise<string[]>;
}
