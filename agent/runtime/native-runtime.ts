import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { detectCgroupVersion, DEFAULT_CGROUP_ROOT, removeCgroupDirs, type CgroupReader, type CgroupVersion } from './cgroup.js';
import { CgroupV1Reader } from './cgroup-v1.js';
import { CgroupV2Reader } from './cgroup-v2.js';
import { fromNative, RuntimeError } from './errors.js';
import type { ContainerSpec, ContainerState, ContainerStats, ExecRequest, ExecResult, Runtime } from './runtime.js';
import { encodeExecRequest, EXEC_DEADLINE_SLACK_MS, fromNativeExec, toExecResult, validateExecRequest, type NativeExecResult } from './native-exec.js';
import { findHalfMade } from './native-sweep.js';
import { encodeShimSpec } from './shim-spec.js';
import { processAlive } from '../../common/process.js';
import { silentLogger, type Logger } from '../../common/log.js';

/** NativeRuntimeOptions configure where containers live and which cgroup they hang under. */
export interface NativeRuntimeOptions {
  /** stateDir holds `containers/<id>/` (spec.json, pid, shim.pid, exit, container.log, upper, work). */
  stateDir: string;
  /** cgroupParent is relative to the cgroup root, e.g. `berth` or `berth/<node>`. */
  cgroupParent?: string;
  /** shimPath defaults to the built `native/build/Release/berth-shim`. */
  shimPath?: string;
  /** cgroupRoot defaults to $BERTH_CGROUP_ROOT or /sys/fs/cgroup. */
  cgroupRoot?: string;
  /** cgroupVersion forces a backend instead of detecting it from cgroupRoot. */
  cgroupVersion?: CgroupVersion;
  /** logMaxBytes is the size at which container.log rotates to container.log.1. */
  logMaxBytes?: number;
  /** log receives what recover() removed. */
  log?: Logger;
}

/** DEFAULT_LOG_MAX_BYTES caps one generation of a container's log. */
export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
/** EXIT_POLL_MS is how often stop() looks for the shim's exit file. */
const EXIT_POLL_MS = 10;
/** KILL_WAIT_MS bounds the wait for the exit file after SIGKILL. */
const KILL_WAIT_MS = 10_000;
const ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

interface NativeAddon {
  spawnShim(shimPath: string, containerDir: string, specText: string): Promise<{ pid: number; shimPid: number }>;
  execInContainer(shimPath: string, containerDir: string, pid: number, requestText: string, deadlineMs: number): Promise<NativeExecResult>;
}

/** StoredSpec is spec.json: what a restarted agent needs to re-adopt a container. */
interface StoredSpec {
  spec: ContainerSpec;
  cgroupParent: string;
  createdAt: string;
}

interface ExitRecord {
  exitCode: number;
  signal: number;
  oomKilled: boolean;
  finishedAt: string;
}

function nativeBuildDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // Compiled: dist/agent/runtime → repo root is three levels up; from sources it is two.
  const candidates = [resolve(here, '../../../native/build/Release'), resolve(here, '../../native/build/Release')];
  return candidates.find((dir) => existsSync(join(dir, 'berth-shim'))) ?? candidates[0]!;
}

let addon: NativeAddon | undefined;

function loadAddon(): NativeAddon {
  if (addon) return addon;
  const path = join(nativeBuildDir(), 'berth_native.node');
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (err) {
    throw new RuntimeError('BERTH_ERR_RUNTIME_NATIVE_MISSING', `native addon not loadable at ${path} (run npm ci)`, {}, err);
  }
  return addon;
}

function createCgroupReader(version: CgroupVersion, root: string): CgroupReader {
  return version === 'v2' ? new CgroupV2Reader(root) : new CgroupV1Reader(root);
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}


function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

function validate(spec: ContainerSpec): void {
  const bad = (field: string, why: string): never => {
    throw new RuntimeError('BERTH_ERR_RUNTIME_INVALID_SPEC', `container spec: ${field} ${why}`);
  };
  if (!ID_PATTERN.test(spec.id)) bad('id', `"${spec.id}" must match ${ID_PATTERN.source}`);
  if (spec.args.length === 0) bad('args', 'must not be empty');
  if (spec.lowerDirs.length === 0) bad('lowerDirs', 'must not be empty');
  for (const dir of spec.lowerDirs) if (!dir.startsWith('/') || /[:,]/.test(dir)) bad('lowerDirs', `"${dir}" must be absolute without ':' or ','`);
  if (!spec.cwd.startsWith('/')) bad('cwd', 'must be absolute');
}

/** NativeRuntime runs containers through the berth-shim, one shim per container. */
export class NativeRuntime implements Runtime {
  readonly cgroupVersion: CgroupVersion;
  private readonly containersDir: string;
  private readonly cgroupParent: string;
  private readonly cgroupRoot: string;
  private readonly shimPath: string;
  private readonly logMaxBytes: number;
  private readonly cgroups: CgroupReader;
  private readonly log: Logger;

  constructor(options: NativeRuntimeOptions) {
    this.log = options.log ?? silentLogger;
    this.containersDir = join(options.stateDir, 'containers');
    this.cgroupParent = options.cgroupParent ?? 'berth';
    this.cgroupRoot = options.cgroupRoot ?? (process.env.BERTH_CGROUP_ROOT || DEFAULT_CGROUP_ROOT);
    this.shimPath = options.shimPath ?? join(nativeBuildDir(), 'berth-shim');
    this.logMaxBytes = options.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES;
    this.cgroupVersion = options.cgroupVersion ?? detectCgroupVersion(this.cgroupRoot);
    this.cgroups = createCgroupReader(this.cgroupVersion, this.cgroupRoot);
  }

  async run(spec: ContainerSpec): Promise<ContainerState> {
    validate(spec);
    const native = loadAddon();
    const dir = this.dir(spec.id);
    await mkdir(this.containersDir, { recursive: true });
    try {
      await mkdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new RuntimeError('BERTH_ERR_RUNTIME_EXISTS', `container ${spec.id} already exists`);
      }
      throw err;
    }
    // spec.json is written before the start so a crash right after it still leaves enough to re-adopt.
    const stored: StoredSpec = { spec, cgroupParent: this.cgroupParent, createdAt: new Date().toISOString() };
    await writeFile(join(dir, 'spec.json'), JSON.stringify(stored));
    const text = encodeShimSpec(spec, {
      cgroupParent: this.cgroupParent,
      cgroupRoot: this.cgroupRoot,
      cgroupVersion: this.cgroupVersion,
      logMaxBytes: this.logMaxBytes,
    });
    let started: { pid: number; shimPid: number };
    try {
      started = await native.spawnShim(this.shimPath, dir, text);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw fromNative(spec.id, err);
    }
    return {
      id: spec.id,
      status: 'running',
      pid: started.pid,
      shimPid: started.shimPid,
      startedAt: new Date().toISOString(),
      labels: spec.labels,
      logPath: join(dir, 'container.log'),
    };
  }

  async state(id: string): Promise<ContainerState | undefined> {
    if (!ID_PATTERN.test(id)) return undefined;
    const dir = this.dir(id);
    const specText = await readText(join(dir, 'spec.json'));
    if (specText === undefined) return undefined;
    const stored = JSON.parse(specText) as StoredSpec;
    const [pidText, shimText, exitText] = await Promise.all([
      readText(join(dir, 'pid')),
      readText(join(dir, 'shim.pid')),
      readText(join(dir, 'exit')),
    ]);
    const pidStat = pidText === undefined ? undefined : await stat(join(dir, 'pid')).catch(() => undefined);
    const base: ContainerState = {
      id,
      status: 'exited',
      pid: Number(pidText ?? 0),
      shimPid: Number(shimText ?? 0),
      // The shim writes `pid` right after the exec, so its mtime is the start time.
      startedAt: (pidStat?.mtime ?? new Date(stored.createdAt)).toISOString(),
      labels: stored.spec.labels,
      logPath: join(dir, 'container.log'),
    };
    if (exitText === undefined && base.pid > 0 && base.shimPid > 0 && (await this.shimAlive(base.shimPid, dir))) {
      return { ...base, status: 'running' };
    }
    // The shim writes `exit` before it exits, so a shim found gone may just have finished: look again.
    const exitNow = exitText ?? (await readText(join(dir, 'exit')));
    if (exitNow === undefined) {
      // No exit record and no shim: the shim died (or the start never completed); the status is lost.
      return base;
    }
    const exit = JSON.parse(exitNow) as ExitRecord;
    return {
      ...base,
      exitCode: exit.exitCode,
      ...(exit.signal ? { signal: exit.signal } : {}),
      oomKilled: exit.oomKilled,
      finishedAt: exit.finishedAt,
    };
  }

  async list(): Promise<ContainerState[]> {
    let ids: string[];
    try {
      ids = await readdir(this.containersDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const states = await Promise.all(ids.map((id) => this.state(id)));
    return states.filter((s): s is ContainerState => s !== undefined);
  }

  async stop(id: string, graceMs: number): Promise<ContainerState | undefined> {
    const st = await this.state(id);
    if (!st || st.status !== 'running') return st;
    signal(st.pid, 'SIGTERM');
    if (!(await this.waitForExit(id, st.shimPid, graceMs))) {
      signal(st.pid, 'SIGKILL');
      await this.waitForExit(id, st.shimPid, KILL_WAIT_MS);
    }
    return this.state(id);
  }

  async remove(id: string): Promise<void> {
    const dir = this.dir(id);
    const st = await this.state(id);
    if (st?.status === 'running') {
      throw new RuntimeError('BERTH_ERR_RUNTIME_RUNNING', `container ${id} is running; stop it first`);
    }
    const stored = await readText(join(dir, 'spec.json'));
    const parent = stored ? (JSON.parse(stored) as StoredSpec).cgroupParent : this.cgroupParent;
    await removeCgroupDirs(this.cgroups.dirs(`${parent}/${id}`));
    await rm(dir, { recursive: true, force: true });
  }

  async stats(id: string): Promise<ContainerStats | undefined> {
    const st = await this.state(id);
    if (!st || st.status !== 'running') return undefined;
    const stored = JSON.parse((await readText(join(this.dir(id), 'spec.json'))) ?? '{}') as StoredSpec;
    return this.cgroups.stats(`${stored.cgroupParent ?? this.cgroupParent}/${id}`);
  }

  async exec(id: string, req: ExecRequest): Promise<ExecResult> {
    validateExecRequest(id, req);
    const st = await this.state(id);
    if (!st || st.status !== 'running') {
      throw new RuntimeError('BERTH_ERR_RUNTIME_NOT_RUNNING', `container ${id} is ${st ? 'not running' : 'unknown'}`);
    }
    const deadlineMs = req.timeoutMs ? req.timeoutMs + EXEC_DEADLINE_SLACK_MS : 0;
    try {
      return toExecResult(await loadAddon().execInContainer(this.shimPath, this.dir(id), st.pid, encodeExecRequest(req), deadlineMs));
    } catch (err) {
      throw fromNativeExec(id, err);
    }
  }

  async recover(): Promise<string[]> {
    const removed: string[] = [];
    for (const half of await findHalfMade(this.containersDir)) {
      await removeCgroupDirs(this.cgroups.dirs(`${half.cgroupParent ?? this.cgroupParent}/${half.id}`));
      await rm(half.dir, { recursive: true, force: true });
      this.log.warn('removed half-made container left by a crash mid-create', { id: half.id, dir: half.dir });
      removed.push(half.id);
    }
    return removed;
  }

  private dir(id: string): string {
    return join(this.containersDir, id);
  }

  private async shimAlive(shimPid: number, dir: string): Promise<boolean> {
    if (!processAlive(shimPid)) return false;
    // Guard against PID reuse: the live process must be this container's shim.
    const cmdline = await readText(`/proc/${shimPid}/cmdline`).catch(() => undefined);
    return cmdline !== undefined && cmdline.includes('berth-shim') && cmdline.includes(dir);
  }

  /** waitForExit resolves true once the exit record exists or the shim is gone (no record will come). */
  private async waitForExit(id: string, shimPid: number, timeoutMs: number): Promise<boolean> {
    const exitPath = join(this.dir(id), 'exit');
    const deadline = Date.now() + Math.max(0, timeoutMs);
    for (;;) {
      if (existsSync(exitPath) || !processAlive(shimPid)) return true;
      if (Date.now() >= deadline) return false;
      await sleep(EXIT_POLL_MS);
    }
  }
}
