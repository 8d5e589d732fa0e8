/**
 * `snapshot save`: a consistent point-in-time copy of the cluster's etcd, taken by
 * `etcdctl snapshot save` from one healthy member (the leader when it answers). The file holds
 * the sealed CA key and the token hashes, so it is written 0600 and appears whole or not at all:
 * etcdctl writes into a private directory beside the target, the result is checked with
 * `etcdctl snapshot status`, then moved into place.
 */
import { closeSync, existsSync, fsyncSync, linkSync, mkdtempSync, openSync, renameSync, rmSync, statSync, chmodSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { dataDirUsers } from './data-dir.js';
import { SnapshotError } from './errors.js';
import { chooseEndpoint, etcdctlError, probeEndpoint, runEtcdctl, snapshotStatus, type EndpointStatus, type SnapshotStatus } from './etcdctl.js';

/** SAVE_TIMEOUT_S bounds the transfer of one snapshot (etcdctl's --command-timeout covers the whole save). */
export const SAVE_TIMEOUT_S = 600;
/** SNAPSHOT_FILE_MODE: the snapshot holds the sealed CA key and token hashes. */
export const SNAPSHOT_FILE_MODE = 0o600;

/** SaveOptions says what to snapshot and where to write it. */
export interface SaveOptions {
  file: string;
  /** etcd lists external endpoints; absent or empty means the embedded etcd of dataDir. */
  etcd?: string[];
  dataDir: string;
  etcdClientPort: number;
  force: boolean;
  /** note receives remarks for the operator (stderr). */
  note?: (line: string) => void;
}

/** SavedSnapshot describes a written snapshot. */
export interface SavedSnapshot {
  file: string;
  /** endpoint is the member the snapshot came from. */
  endpoint: string;
  leader: boolean;
  sizeBytes: number;
  status: SnapshotStatus;
}

/**
 * embeddedEndpoint is the client URL of dataDir's embedded etcd: the one its running etcd
 * listens on, else the one --etcd-client-port implies.
 */
export function embeddedEndpoint(dataDir: string, clientPort: number, note: (line: string) => void): string {
  const running = dataDirUsers(dataDir).find((u) => u.what === 'etcd' && u.clientUrls?.length);
  if (running) return running.clientUrls![0]!;
  const url = `http://127.0.0.1:${clientPort}`;
  note(`no embedded etcd process found for data dir ${resolve(dataDir)}; trying ${url}`);
  return url;
}

/** pickMember probes every endpoint and returns the one to snapshot, or BERTH_ERR_ETCD_UNREACHABLE naming each failure. */
export async function pickMember(endpoints: readonly string[], hint: string): Promise<EndpointStatus> {
  const probes = await Promise.all(endpoints.map(async (e) => ({ endpoint: e, r: await probeEndpoint(e) })));
  const answered = probes.flatMap((p) => (p.r.ok ? [p.r.status] : []));
  const chosen = chooseEndpoint(answered);
  if (chosen) return chosen;
  const why = probes.map((p) => `${p.endpoint}: ${p.r.ok ? 'ok' : p.r.reason}`).join('; ');
  throw new SnapshotError('BERTH_ERR_ETCD_UNREACHABLE', `no etcd endpoint answered (${why})${hint}`);
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** place moves tmp to file: never over an existing file unless force (link refuses to clobber). */
function place(tmp: string, file: string, force: boolean): void {
  if (force) {
    renameSync(tmp, file);
    return;
  }
  try {
    linkSync(tmp, file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new SnapshotError('BERTH_ERR_SNAPSHOT_EXISTS', `${file} appeared while the snapshot was taken; pass --force to replace it`);
    // A file system without hard links: the check before the save is the best we can do.
    if (existsSync(file)) throw new SnapshotError('BERTH_ERR_SNAPSHOT_EXISTS', `${file} exists; pass --force to replace it`);
    renameSync(tmp, file);
  }
}

/** checkTarget refuses an output path that cannot or must not be written, before etcd is asked anything. */
export function checkTarget(file: string, force: boolean): void {
  const dir = dirname(file);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new SnapshotError('BERTH_ERR_SNAPSHOT_USAGE', `directory ${dir} does not exist`);
  }
  if (!existsSync(file)) return;
  if (statSync(file).isDirectory()) throw new SnapshotError('BERTH_ERR_SNAPSHOT_USAGE', `${file} is a directory; name the snapshot file`);
  if (!force) throw new SnapshotError('BERTH_ERR_SNAPSHOT_EXISTS', `${file} exists; pass --force to replace it`);
}

/** saveSnapshot takes a snapshot of the cluster's etcd into opts.file. */
export async function saveSnapshot(opts: SaveOptions): Promise<SavedSnapshot> {
  const note = opts.note ?? (() => undefined);
  const file = resolve(opts.file);
  checkTarget(file, opts.force);
  const external = (opts.etcd ?? []).filter((e) => e !== '');
  const endpoints = external.length > 0 ? external : [embeddedEndpoint(opts.dataDir, opts.etcdClientPort, note)];
  const hint = external.length > 0 ? '' : `; is the control plane of --data-dir ${resolve(opts.dataDir)} running? a snapshot is taken from a running etcd`;
  const member = await pickMember(endpoints, hint);

  // A private directory (0700) beside the target: same file system for the final rename, and
  // nobody can open the file in the moment before its mode is checked.
  const work = mkdtempSync(join(dirname(file), `.${basename(file)}.saving-`));
  try {
    const tmp = join(work, 'snapshot.db');
    const r = await runEtcdctl(['--endpoints', member.endpoint, '--command-timeout', `${SAVE_TIMEOUT_S}s`, 'snapshot', 'save', tmp], (SAVE_TIMEOUT_S + 30) * 1000);
    if (r.code !== 0 || !existsSync(tmp)) {
      throw new SnapshotError('BERTH_ERR_SNAPSHOT_FAILED', `etcdctl snapshot save from ${member.endpoint} failed: ${etcdctlError(r.stderr)}`);
    }
    const status = await snapshotStatus(tmp).catch((err: unknown) => {
      throw new SnapshotError('BERTH_ERR_SNAPSHOT_FAILED', `the snapshot etcdctl wrote does not check out: ${(err as Error).message}`, { cause: err });
    });
    chmodSync(tmp, SNAPSHOT_FILE_MODE);
    fsyncPath(tmp);
    const sizeBytes = statSync(tmp).size;
    place(tmp, file, opts.force);
    fsyncPath(dirname(file));
    return { file, endpoint: member.endpoint, leader: member.memberId === member.leaderId, sizeBytes, status };
  } catch (err) {
    if (err instanceof SnapshotError) throw err;
    throw new SnapshotError('BERTH_ERR_SNAPSHOT_FAILED', `cannot write ${file}: ${(err as Error).message}`, { cause: err });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
