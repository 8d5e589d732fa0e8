/**
 * `snapshot restore`: turns a snapshot into the embedded etcd's data dir (<data-dir>/etcd) with
 * `etcdctl snapshot restore`, as the member etcd/embedded.ts starts (same name, peer URL and
 * cluster token), so the next `berth-control-plane --data-dir DIR` simply runs on it. Offline
 * only: nothing may run on the data dir. The previous etcd dir is moved aside, never deleted.
 */
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { dataDirUsers, embeddedEtcdDir, embeddedPeerUrl, EMBEDDED_CLUSTER_TOKEN, EMBEDDED_MEMBER_NAME } from './data-dir.js';
import { SnapshotError } from './errors.js';
import { etcdctlError, LOCAL_COMMAND_TIMEOUT_MS, runEtcdctl, snapshotStatus, type SnapshotStatus } from './etcdctl.js';

/** MAX_ASIDE_ATTEMPTS bounds the search for a free etcd.before-restore-<timestamp> name. */
const MAX_ASIDE_ATTEMPTS = 100;

/** RestoreOptions says which snapshot goes into which data dir. */
export interface RestoreOptions {
  file: string;
  dataDir: string;
  etcdPeerPort: number;
  force: boolean;
  /** sealingKeyFile is what the next start opens the restored CA key with (default <data-dir>/sealing.key). */
  sealingKeyFile?: string;
  /** now is the clock for the moved-aside dir's name (tests). */
  now?: () => Date;
}

/** RestoredSnapshot says what a restore did and what the operator still has to check. */
export interface RestoredSnapshot {
  file: string;
  etcdDir: string;
  /** movedAside is where the previous etcd dir went, if there was one. */
  movedAside?: string;
  status: SnapshotStatus;
  /** warnings are things the next start will trip on (a missing sealing key file). */
  warnings: string[];
}

/** stamp is a file-name-safe UTC time: 20250102T030405Z. */
export function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** freeName is base, or base-2, base-3... whichever does not exist yet. */
function freeName(base: string): string {
  for (let i = 1; i <= MAX_ASIDE_ATTEMPTS; i++) {
    const name = i === 1 ? base : `${base}-${i}`;
    if (!existsSync(name)) return name;
  }
  throw new SnapshotError('BERTH_ERR_SNAPSHOT_FAILED', `no free name for ${base} after ${MAX_ASIDE_ATTEMPTS} tries; clean up old ones`);
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** checkNotInUse refuses a data dir that a running control plane or etcd uses. */
export function checkNotInUse(dataDir: string): void {
  const users = dataDirUsers(dataDir);
  if (users.length === 0) return;
  const who = users.map((u) => `${u.what} (pid ${u.pid})`).join(', ');
  throw new SnapshotError('BERTH_ERR_DATA_DIR_IN_USE',
    `${resolve(dataDir)} is in use by ${who}; stop the control plane first (a restore replaces the data etcd is running on)`);
}

/** restoreSnapshot verifies the snapshot, then makes it <data-dir>/etcd. */
export async function restoreSnapshot(opts: RestoreOptions): Promise<RestoredSnapshot> {
  const file = resolve(opts.file);
  if (!existsSync(file)) throw new SnapshotError('BERTH_ERR_SNAPSHOT_INVALID', `${file} does not exist`);
  if (!statSync(file).isFile()) throw new SnapshotError('BERTH_ERR_SNAPSHOT_INVALID', `${file} is not a file`);
  const status = await snapshotStatus(file);
  const dataDir = resolve(opts.dataDir);
  checkNotInUse(dataDir);
  const etcdDir = embeddedEtcdDir(dataDir);
  if (existsSync(etcdDir) && !opts.force) {
    throw new SnapshotError('BERTH_ERR_ETCD_DIR_EXISTS',
      `${etcdDir} exists; pass --force to move it aside (to ${etcdDir}.before-restore-<time>) and restore in its place`);
  }

  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const when = stamp((opts.now ?? (() => new Date()))());
  // etcdctl refuses an existing target, and a half-restored dir must never be <data-dir>/etcd:
  // restore beside it, then swap with renames.
  const staging = freeName(join(dataDir, `etcd.restoring-${when}`));
  const peer = embeddedPeerUrl(opts.etcdPeerPort);
  const r = await runEtcdctl(['snapshot', 'restore', file, '--data-dir', staging, '--name', EMBEDDED_MEMBER_NAME,
    '--initial-cluster', `${EMBEDDED_MEMBER_NAME}=${peer}`, '--initial-advertise-peer-urls', peer,
    '--initial-cluster-token', EMBEDDED_CLUSTER_TOKEN], LOCAL_COMMAND_TIMEOUT_MS);
  if (r.code !== 0) {
    // Only the staging dir made by this run is removed; nothing else is touched.
    rmSync(staging, { recursive: true, force: true });
    const why = etcdctlError(r.stderr);
    const code = /sha256|hash|invalid database|snapshot file/i.test(why) ? 'BERTH_ERR_SNAPSHOT_INVALID' : 'BERTH_ERR_SNAPSHOT_FAILED';
    throw new SnapshotError(code, `etcdctl snapshot restore of ${file} failed: ${why}`);
  }
  let movedAside: string | undefined;
  try {
    if (existsSync(etcdDir)) {
      movedAside = freeName(join(dataDir, `etcd.before-restore-${when}`));
      renameSync(etcdDir, movedAside);
    }
    renameSync(staging, etcdDir);
    chmodSync(etcdDir, 0o700);
    fsyncDir(dataDir);
  } catch (err) {
    throw new SnapshotError('BERTH_ERR_SNAPSHOT_FAILED',
      `restored into ${staging} but could not put it in place as ${etcdDir}: ${(err as Error).message}${movedAside ? ` (the previous data is in ${movedAside})` : ''}`, { cause: err });
  }

  const warnings: string[] = [];
  const sealingKey = opts.sealingKeyFile ?? join(dataDir, 'sealing.key');
  if (!existsSync(sealingKey)) {
    warnings.push(`the sealing key file ${sealingKey} is missing: the control plane cannot open the restored cluster CA without the very key ` +
      'that sealed it (it is not in etcd); copy it from your backup (mode 0600) before starting');
  }
  return { file, etcdDir, ...(movedAside ? { movedAside } : {}), status, warnings };
}
