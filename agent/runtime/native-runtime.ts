import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { detectCgroupVersion, DEFAULT_CGROUP_ROOT, removeCgroupDirs, type CgroupReader, type CgroupVersion } from './cgroup.js';
import { CgroupV1Reader } from './cgroup-v1.js';
import { CgroupV2Reader } from './cgroup-v2.js';
import { fromNative, RuntimeError } from './errors.js';
import type { ContainerSpec, ContainerState, ContainerStats, ExecRequest, ExecResult, ExecStream, ExecStreamRequest, Runtime, SignalLike } from './runtime.js';
import { encodeExecRequest, EXEC_DEADLINE_SLACK_MS, fromNativeExec, toExecResult, validateExecRequest, type NativeExecResult } from './native-exec.js';
import { startExecStream, validateExecStreamRequest } from './native-exec-stream.js';
import { findHalfMade } from './native-sweep.js';
import { encodeShimSpec } from './shim-spec.js';
import { storableSpec, type StoredSpec } from './stored-spec.js';
import { SHIM_SOCKET, ShimChannel } from './shim-channel.js';
import { signalNumber } from './signals.js';
import { silentLogger, type Logger } from '../../common/log.js';

/** NativeRuntimeOptions configure where containers live and which cgroup they hang under. */
export interface NativeRuntimeOptions {
  /** stateDir holds `containers/<id>/` (spec.json, pid, shim.pid, shim.sock, exit, container.log, upper, work). */
  stateDir: string;
  /** cgroupParent is relative to the cgroup root, e.g. `berth` or `berth/<node>`. */
  cgroupParent?: string;
  /** shimPath defaults to the built `native/build/Release/berth-shim`. */
  shimPath?: string;
  /** initPath defaults to the built `native/build/Release/berth-init` (for specs with init). */
  initPath?: string;
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
/** KILL_WAIT_MS bounds the wait for the pushed exit after SIGKILL. */
const KILL_WAIT_MS = 10_000;
/** SIGKILL is the signal a stop escalates to once its grace has passed. */
const SIGKILL = 9;
/** WAIT_RECONNECTS bounds how often wait() connects again to a shim that dropped it without an exit. */
const WAIT_RECONNECTS = 3;
/** SHIM_MAX_SPEC_BYTES is the largest spec the shim reads (MAX_SPEC_BYTES in native/src/shim/main.cc). */
const SHIM_MAX_SPEC_BYTES = 1024 * 1024;
const ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

interface NativeAddon {
  spawnShim(shimPath: string, containerDir: string, specText: string): Promise<{ pid: number; shimPid: number }>;
  execInContainer(shimPath: string, containerDir: string, pid: number, requestText: string, deadlineMs: number): Promise<NativeExecResult>;
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

/** settlesWithin resolves true if p settles within ms (the timer is cleared either way). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((res) => { timer = setTimeout(() => res(false), Math.max(0, ms)); });
  try {
    return await Promise.race([p.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function toSignal(id: string, sig: SignalLike): number {
  const n = signalNumber(sig);
  if (n === undefined) throw new RuntimeError('BERTH_ERR_RUNTIME_INVALID_SPEC', `container ${id}: unknown signal ${JSON.stringify(sig)}`);
  return n;
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

/**
 * NativeRuntime runs containers through the berth-shim, one shim per container. Signals and exits
 * go through each shim's control channel (shim-channel.ts); this class never signals a PID.
 */
export class NativeRuntime implements Runtime {
  readonly cgroupVersion: CgroupVersion;
  private readonly containersDir: string;
  private readonly cgroupParent: string;
  private readonly cgroupRoot: string;
  private readonly shimPath: string;
  private readonly initPath: string;
  /** channels holds one connection per container whose shim someone waits on or signals. */
  private readonly channels = new Map<string, Promise<ShimChannel | undefined>>();
  private readonly logMaxBytes: number;
  private readonly cgroups: CgroupReader;
  private readonly log: Logger;

  constructor(options: NativeRuntimeOptions) {
    this.log = options.log ?? silentLogger;
    this.containersDir = join(options.stateDir, 'containers');
    this.cgroupParent = options.cgroupParent ?? 'berth';
    this.cgroupRoot = options.cgroupRoot ?? (process.env.BERTH_CGROUP_ROOT || DEFAULT_CGROUP_ROOT);
    this.shimPath = options.shimPath ?? join(nativeBuildDir(), 'berth-shim');
    this.initPath = options.initPath ?? join(nativeBuildDir(), 'berth-init');
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
      // 0700: spec.json and the shim's spec hold env values, and the logs what the container printed.
      await mkdir(dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new RuntimeError('BERTH_ERR_RUNTIME_EXISTS', `container ${spec.id} already exists`);
      }
      throw err;
    }
    // spec.json is written before the start so a crash right after it still leaves enough to re-adopt.
    // Written whole or not at all (a full disk must not leave a truncated one), and a container
    // whose spec could not be written is not left behind.
    const stored: StoredSpec = { spec: storableSpec(spec), cgroupParent: this.cgroupParent, createdAt: new Date().toISOString() };
    try {
      await writeFile(join(dir, 'spec.json.tmp'), JSON.stringify(stored), { mode: 0o600 });
      await rename(join(dir, 'spec.json.tmp'), join(dir, 'spec.json'));
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw new RuntimeError('BERTH_ERR_RUNTIME_START', `container ${spec.id}: cannot record its spec: ${(err as Error).message}`, { errnoCode: (err as NodeJS.ErrnoException).code, step: 'record spec', path: join(dir, 'spec.json') }, err);
    }
    const text = encodeShimSpec(spec, {
      cgroupParent: this.cgroupParent,
      cgroupRoot: this.cgroupRoot,
      cgroupVersion: this.cgroupVersion,
      logMaxBytes: this.logMaxBytes,
      initPath: this.initPath,
    });
    if (Buffer.byteLength(text) > SHIM_MAX_SPEC_BYTES) {
      await rm(dir, { recursive: true, force: true });
      throw new RuntimeError('BERTH_ERR_RUNTIME_INVALID_SPEC',
        `container ${spec.id}: its spec is ${Buffer.byteLength(text)} bytes, over the shim's ${SHIM_MAX_SPEC_BYTES} (projected files count base64-encoded)`);
    }
    // A channel to an earlier container of the same id (a restart) must not be mistaken for this one's.
    this.forget(spec.id);
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
    const stored = await this.storedSpec(id);
    if (stored === undefined) return undefined;
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

  async stop(id: string, graceMs: number, signal: SignalLike = 'SIGTERM'): Promise<ContainerState | undefined> {
    const first = toSignal(id, signal);
    const st = await this.state(id);
    if (!st || st.status !== 'running') return st;
    const ch = await this.channel(id);
    if (!ch) return this.withoutShim(id);
    const exited = ch.wait();
    // 'exited': the init is already gone, and the record follows once the logs are drained.
    const sent = await ch.kill(first);
    if (!(await settlesWithin(exited, sent === 'exited' ? KILL_WAIT_MS : graceMs))) {
      await ch.kill(SIGKILL);
      await settlesWithin(exited, KILL_WAIT_MS);
    }
    return this.state(id);
  }

  async kill(id: string, signal: SignalLike): Promise<void> {
    const sig = toSignal(id, signal);
    const ch = await this.channel(id);
    if (!ch) await this.withoutShim(id);
    if (!ch || (await ch.kill(sig)) === 'exited') {
      throw new RuntimeError('BERTH_ERR_RUNTIME_NOT_RUNNING', `container ${id} is not running`);
    }
  }

  async wait(id: string): Promise<ContainerState | undefined> {
    // A connection lost while the shim lives on (a request timed out) is opened again, a few times.
    for (let attempt = 0; attempt < WAIT_RECONNECTS; attempt++) {
      const st = await this.state(id);
      if (!st || st.status !== 'running') return st;
      const ch = await this.channel(id);
      if (!ch) return this.withoutShim(id);
      await ch.wait();
    }
    // The shim writes the exit record before it pushes the exit, so the state now has it.
    const st = await this.state(id);
    if (st?.status === 'running') {
      throw new RuntimeError('BERTH_ERR_RUNTIME_SHIM_UNREACHABLE', `container ${id}: lost the connection to its shim ${WAIT_RECONNECTS} times`);
    }
    return st;
  }

  async remove(id: string): Promise<void> {
    const dir = this.dir(id);
    const st = await this.state(id);
    if (st?.status === 'running') {
      throw new RuntimeError('BERTH_ERR_RUNTIME_RUNNING', `container ${id} is running; stop it first`);
    }
    this.forget(id);
    const parent = (await this.storedSpec(id))?.cgroupParent ?? this.cgroupParent;
    await removeCgroupDirs(this.cgroups.dirs(`${parent}/${id}`));
    await rm(dir, { recursive: true, force: true });
  }

  async stats(id: string): Promise<ContainerStats | undefined> {
    const st = await this.state(id);
    if (!st || st.status !== 'running') return undefined;
    const stored = await this.storedSpec(id);
    return this.cgroups.stats(`${stored?.cgroupParent ?? this.cgroupParent}/${id}`);
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

  async execStream(id: string, req: ExecStreamRequest): Promise<ExecStream> {
    validateExecStreamRequest(id, req);
    const st = await this.state(id);
    if (!st || st.status !== 'running') {
      throw new RuntimeError('BERTH_ERR_RUNTIME_NOT_RUNNING', `container ${id} is ${st ? 'not running' : 'unknown'}`);
    }
    return startExecStream(this.shimPath, this.dir(id), st.pid, id, req);
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

  /**
   * channel returns the connection to id's shim, opening it once; undefined when no shim listens
   * (it has exited). A closed connection is dropped, so the next call connects afresh.
   */
  private channel(id: string): Promise<ShimChannel | undefined> {
    const known = this.channels.get(id);
    if (known) return known;
    const opening: Promise<ShimChannel | undefined> = ShimChannel.open(this.dir(id)).then((ch) => {
      if (!ch) this.channels.delete(id);
      else void ch.closed.then(() => { if (this.channels.get(id) === opening) this.channels.delete(id); });
      return ch;
    }, (err: unknown) => {
      this.channels.delete(id);
      throw err;
    });
    this.channels.set(id, opening);
    return opening;
  }

  /** forget drops the connection to id's shim, if any. */
  private forget(id: string): void {
    const known = this.channels.get(id);
    this.channels.delete(id);
    void known?.then((ch) => ch?.close(), () => undefined);
  }

  /**
   * withoutShim answers for a container whose shim does not listen: a shim that is gone leaves
   * the exit record (or nothing, if it was killed), and its container died with it. A shim that
   * still runs without a socket is not one this runtime can talk to; its container's PID is never
   * signalled instead, since by now it may name another process.
   */
  private async withoutShim(id: string): Promise<ContainerState | undefined> {
    const st = await this.state(id);
    if (st?.status !== 'running') return st;
    throw new RuntimeError('BERTH_ERR_RUNTIME_SHIM_UNREACHABLE',
      `container ${id}: its shim (pid ${st.shimPid}) does not answer on ${join(this.dir(id), SHIM_SOCKET)}; refusing to signal pid ${st.pid} directly`);
  }

  /**
   * storedSpec reads a container's spec.json; undefined when there is none. One that does not
   * parse (written by an older agent onto a full disk) belongs to a container that never
   * started: its directory is removed unless a shim still runs there, so it neither breaks
   * every list() nor stays behind.
   */
  private async storedSpec(id: string): Promise<StoredSpec | undefined> {
    const dir = this.dir(id);
    const text = await readText(join(dir, 'spec.json'));
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as StoredSpec;
    } catch {
      const shimPid = Number((await readText(join(dir, 'shim.pid'))) ?? 0);
      if (shimPid > 0 && (await this.shimAlive(shimPid, dir))) return undefined;
      await rm(dir, { recursive: true, force: true });
      this.log.warn('removed a container dir whose spec.json does not parse (never started)', { id, dir });
      return undefined;
    }
  }

  /** shimAlive tells whether shimPid is still this container's shim (read from /proc, no signal). */
  private async shimAlive(shimPid: number, dir: string): Promise<boolean> {
    // A gone process has no cmdline and a zombie an empty one; a reused PID (or an exec helper,
    // `berth-shim --exec DIR PID`) has another.
    const argv = (await readText(`/proc/${shimPid}/cmdline`).catch(() => undefined))?.split('\0') ?? [];
    return (argv[0] ?? '').endsWith('berth-shim') && argv[1] === dir;
  }
}
