/**
 * Named node-local volumes: one directory per volume at `<root>/<namespace>/<name>/_data`
 * (Docker's layout, so metadata sits beside the data, in `meta.json`), made on first use and
 * kept across container restarts, agent restarts and rescheduling onto the same node, until
 * deleted by request while no container mounts it. The manager keeps the node's volume list
 * (size, in use) current: in use from the containers' LABEL_VOLUMES labels every
 * IN_USE_INTERVAL_MS, sizes by a du-like walk every USAGE_INTERVAL_MS, and it reports the list
 * when a volume is made or deleted, one's use changes, or its size moves noticeably.
 */
import { chmod, mkdir, readdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../common/log.js';
import { AgentError, messageOf } from '../errors.js';
import { volumesOfLabels } from './labels.js';
import { diskUsageBytes } from './usage.js';

/** USAGE_INTERVAL_MS is how often every volume's disk usage is measured. */
export const USAGE_INTERVAL_MS = 60_000;
/** IN_USE_INTERVAL_MS is how often the containers are read to tell which volumes are mounted. */
export const IN_USE_INTERVAL_MS = 10_000;
/**
 * START_HOLD_MS bounds how long a start keeps a volume counted in use: from the moment it asks for
 * the volume until it releases it (its container exists, and its label says the rest, or the start
 * failed), so a delete cannot remove a directory a starting container is about to mount. The bound
 * only matters for a start that never releases.
 */
export const START_HOLD_MS = 30_000;
/**
 * REPORT_MIN_DELTA_BYTES and REPORT_MIN_DELTA_RATIO: a size change is reported once it reaches
 * either (1 MiB, or 5% of the size before), so a busy large volume does not write to etcd for
 * every few kilobytes while a small one still shows its first files.
 */
export const REPORT_MIN_DELTA_BYTES = 1024 * 1024;
/** REPORT_MIN_DELTA_RATIO: see REPORT_MIN_DELTA_BYTES. */
export const REPORT_MIN_DELTA_RATIO = 0.05;
/** DATA_DIR_MODE: the data directory is readable by every user, as a fresh Docker volume's. */
const DATA_DIR_MODE = 0o755;
/** PRIVATE_DIR_MODE keeps the tree above the data from other host users. */
const PRIVATE_DIR_MODE = 0o700;

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** VolumeInfo is one named volume as the node reports it. */
export interface VolumeInfo {
  namespace: string;
  name: string;
  sizeBytes: number;
  inUse: boolean;
  createdAt: string;
}

/** VolumeDeleteOutcome is a delete's result: done, or why not (a catalogue code and a message). */
export type VolumeDeleteOutcome =
  | { ok: true }
  | { ok: false; code: 'BERTH_ERR_VOLUME_IN_USE' | 'BERTH_ERR_VOLUME_NOT_FOUND' | 'BERTH_ERR_VOLUME_FAILED'; message: string };

/**
 * VolumeProvider is what a container start needs: the data directory of a volume, made if absent
 * and held in use until release (called once the start has succeeded or failed).
 */
export interface VolumeProvider {
  ensure(namespace: string, name: string): Promise<string>;
  release?(namespace: string, name: string): void;
}

/** VolumeManagerOptions: where the volumes live, how to see the containers, and whom to tell. */
export interface VolumeManagerOptions {
  /** root is `<agent state dir>/volumes`. */
  root: string;
  /** containers lists the runtime's containers (running or exited) with their labels. */
  containers: () => Promise<readonly { labels: Readonly<Record<string, string>> }[]>;
  log: Logger;
  /** onChange receives the whole list after a noticeable change. */
  onChange?: (volumes: VolumeInfo[]) => void;
  usageIntervalMs?: number;
  inUseIntervalMs?: number;
  startHoldMs?: number;
}

function keyOf(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** VolumeManager owns the node's named volumes; every mutation runs one at a time. */
export class VolumeManager implements VolumeProvider {
  private readonly volumes = new Map<string, VolumeInfo>();
  // In-flight starts per volume and when their hold lapses.
  private readonly holds = new Map<string, { starts: number; until: number }>();
  private reported = new Map<string, VolumeInfo>();
  private mutations: Promise<unknown> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];
  private measuring: Promise<void> | undefined;

  constructor(private readonly o: VolumeManagerOptions) {}

  /**
   * init makes the root and reads the volumes already there with their use; their sizes are
   * measured by start(), in the background, so a large volume never delays the agent's start.
   */
  async init(): Promise<void> {
    await mkdir(this.o.root, { recursive: true, mode: PRIVATE_DIR_MODE });
    for (const ns of await dirs(this.o.root)) {
      if (!NAME.test(ns)) continue;
      for (const name of await dirs(join(this.o.root, ns))) {
        if (!NAME.test(name)) continue;
        this.volumes.set(keyOf(ns, name), { namespace: ns, name, sizeBytes: 0, inUse: false, createdAt: await this.createdAt(ns, name) });
      }
    }
    await this.checkInUse();
    this.reported = this.snapshot();
  }

  /** start measures every volume now and then periodically, and checks their use; stop ends it. */
  start(): void {
    const guarded = (run: () => Promise<void>) => (): void => void run().catch((err: unknown) => this.o.log.warn('volume check failed', { error: messageOf(err) }));
    const every = (ms: number, run: () => Promise<void>): void => {
      const t = setInterval(guarded(run), ms);
      t.unref();
      this.timers.push(t);
    };
    guarded(async () => {
      await this.measure();
      this.reportIfChanged();
    })();
    every(this.o.inUseIntervalMs ?? IN_USE_INTERVAL_MS, async () => {
      await this.checkInUse();
      this.reportIfChanged();
    });
    every(this.o.usageIntervalMs ?? USAGE_INTERVAL_MS, async () => {
      await this.measure();
      this.reportIfChanged();
    });
  }

  /** stop ends the periodic work. */
  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  /** list is the node's volumes as last measured, by namespace and name. */
  list(): VolumeInfo[] {
    return [...this.volumes.values()].map((v) => ({ ...v })).sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
  }

  /** dataDir is where a volume's data lives (it may not exist). */
  dataDir(namespace: string, name: string): string {
    return join(this.o.root, namespace, name, '_data');
  }

  /**
   * ensure returns the volume's data directory, making it (mode 0755, owned by the agent's user,
   * root) when absent; the volume counts as in use from now until its container exists.
   */
  ensure(namespace: string, name: string): Promise<string> {
    return this.serially(async () => {
      checkNames(namespace, name);
      const key = keyOf(namespace, name);
      this.holds.set(key, { starts: (this.holds.get(key)?.starts ?? 0) + 1, until: Date.now() + (this.o.startHoldMs ?? START_HOLD_MS) });
      const data = this.dataDir(namespace, name);
      const existing = this.volumes.get(key);
      if (existing && await isDirectory(data)) {
        if (!existing.inUse) {
          existing.inUse = true;
          this.reportIfChanged();
        }
        return data;
      }
      try {
        await mkdir(join(this.o.root, namespace), { recursive: true, mode: PRIVATE_DIR_MODE });
        await mkdir(join(this.o.root, namespace, name), { recursive: true, mode: PRIVATE_DIR_MODE });
        // mkdir's mode is filtered by the umask; the data directory's mode is part of the contract.
        await mkdir(data, { recursive: true, mode: DATA_DIR_MODE });
        await chmod(data, DATA_DIR_MODE);
        const createdAt = existing?.createdAt ?? new Date().toISOString();
        await writeFile(join(this.o.root, namespace, name, 'meta.json'), `${JSON.stringify({ namespace, name, createdAt })}\n`, { mode: 0o600 });
        this.volumes.set(key, { namespace, name, sizeBytes: await diskUsageBytes(data), inUse: true, createdAt });
      } catch (err) {
        throw new AgentError('BERTH_ERR_VOLUME_FAILED', `volume ${key}: cannot make ${data}: ${messageOf(err)}`, { cause: err });
      }
      this.o.log.info('volume created', { namespace, name, path: data });
      this.reportIfChanged();
      return data;
    });
  }

  /** release ends one start's hold on a volume (see START_HOLD_MS); the last one clears it. */
  release(namespace: string, name: string): void {
    const key = keyOf(namespace, name);
    const h = this.holds.get(key);
    if (!h) return;
    if (h.starts <= 1) this.holds.delete(key);
    else h.starts -= 1;
  }

  /** delete removes a volume and its data, refused while a container (or one starting) mounts it. */
  delete(namespace: string, name: string): Promise<VolumeDeleteOutcome> {
    return this.serially(async (): Promise<VolumeDeleteOutcome> => {
      const key = keyOf(namespace, name);
      if (!NAME.test(namespace) || !NAME.test(name) || !this.volumes.has(key)) {
        return { ok: false, code: 'BERTH_ERR_VOLUME_NOT_FOUND', message: `volume ${key} does not exist on this node` };
      }
      const users = await this.users();
      const held = (this.holds.get(key)?.until ?? 0) > Date.now();
      if (users.has(key) || held) {
        return { ok: false, code: 'BERTH_ERR_VOLUME_IN_USE', message: `volume ${key} is mounted by ${users.has(key) ? 'a container' : 'a container being started'} on this node` };
      }
      try {
        await rm(join(this.o.root, namespace, name), { recursive: true, force: true });
        // The namespace's directory goes with its last volume; another volume keeps it (ENOTEMPTY).
        await rmdir(join(this.o.root, namespace)).catch(() => undefined);
      } catch (err) {
        return { ok: false, code: 'BERTH_ERR_VOLUME_FAILED', message: `volume ${key}: ${messageOf(err)}` };
      }
      this.volumes.delete(key);
      this.holds.delete(key);
      this.o.log.info('volume deleted', { namespace, name });
      this.reportIfChanged();
      return { ok: true };
    });
  }

  /** measure walks every volume's data once (a measurement already running is joined, not doubled). */
  measure(): Promise<void> {
    if (this.measuring) return this.measuring;
    const run = (async () => {
      for (const v of [...this.volumes.values()]) v.sizeBytes = await diskUsageBytes(this.dataDir(v.namespace, v.name));
    })();
    // Cleared only by the run it belongs to, once it is the one recorded (a run can end synchronously).
    const recorded = run.finally(() => {
      if (this.measuring === recorded) this.measuring = undefined;
    });
    this.measuring = recorded;
    return recorded;
  }

  /** checkInUse marks the volumes a container mounts, or one being started. */
  async checkInUse(): Promise<void> {
    const users = await this.users();
    const now = Date.now();
    for (const [key, h] of this.holds) if (h.until <= now) this.holds.delete(key);
    for (const [key, v] of this.volumes) v.inUse = users.has(key) || this.holds.has(key);
  }

  /** reportIfChanged sends the list when a volume came or went, its use changed or its size moved noticeably. */
  private reportIfChanged(): void {
    const now = this.snapshot();
    if (!noticeablyDifferent(this.reported, now)) return;
    this.reported = now;
    this.o.onChange?.(this.list());
  }

  private snapshot(): Map<string, VolumeInfo> {
    return new Map([...this.volumes].map(([k, v]) => [k, { ...v }]));
  }

  private async users(): Promise<Set<string>> {
    const out = new Set<string>();
    for (const c of await this.o.containers()) for (const v of volumesOfLabels(c.labels)) out.add(v);
    return out;
  }

  private async createdAt(namespace: string, name: string): Promise<string> {
    const dir = join(this.o.root, namespace, name);
    try {
      const meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as { createdAt?: unknown };
      if (typeof meta.createdAt === 'string' && !Number.isNaN(Date.parse(meta.createdAt))) return meta.createdAt;
    } catch {
      // no metadata (made by hand, or by a crash before it was written): the directory's time
    }
    return (await stat(dir)).mtime.toISOString();
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.mutations.then(work, work);
    this.mutations = run.catch(() => undefined);
    return run;
  }
}

/** noticeablyDifferent: a volume came or went, its use flipped, or its size moved by the report thresholds. */
export function noticeablyDifferent(before: ReadonlyMap<string, VolumeInfo>, after: ReadonlyMap<string, VolumeInfo>): boolean {
  if (before.size !== after.size) return true;
  for (const [key, v] of after) {
    const was = before.get(key);
    if (!was || was.inUse !== v.inUse) return true;
    const delta = Math.abs(v.sizeBytes - was.sizeBytes);
    if (delta > 0 && delta >= Math.min(REPORT_MIN_DELTA_BYTES, REPORT_MIN_DELTA_RATIO * was.sizeBytes)) return true;
  }
  return false;
}

function checkNames(namespace: string, name: string): void {
  // Both are DNS labels at admission; checked again because they become path segments here.
  if (!NAME.test(namespace) || !NAME.test(name)) {
    throw new AgentError('BERTH_ERR_VOLUME_FAILED', `volume ${JSON.stringify(`${namespace}/${name}`)}: namespace and name must be DNS labels`);
  }
}

async function dirs(path: string): Promise<string[]> {
  const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory()).map((e) => e.name);
}

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}
