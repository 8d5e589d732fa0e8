/**
 * The error catalogue of `berth-control-plane snapshot`. Each failure maps to one code and one
 * exit status, so a backup script can tell "etcd is down" from "the file is already there".
 * 0 and 2 keep the meaning they have for every berth command (success, bad usage).
 *
 * | code                          | exit | meaning                                                   |
 * |-------------------------------|------|-----------------------------------------------------------|
 * | BERTH_ERR_SNAPSHOT_USAGE      | 2    | unknown flag, missing or malformed argument, bad config   |
 * | BERTH_ERR_SNAPSHOT_FAILED     | 1    | etcdctl failed or a file could not be written             |
 * | BERTH_ERR_ETCDCTL_MISSING     | 1    | no etcdctl binary (Debian package etcd-client)            |
 * | BERTH_ERR_ETCD_UNREACHABLE    | 3    | no etcd endpoint answered                                 |
 * | BERTH_ERR_SNAPSHOT_EXISTS     | 4    | save: the output file exists (pass --force)               |
 * | BERTH_ERR_ETCD_DIR_EXISTS     | 4    | restore: <data-dir>/etcd exists (pass --force)            |
 * | BERTH_ERR_DATA_DIR_IN_USE     | 5    | restore: a control plane or its etcd runs on the data dir |
 * | BERTH_ERR_SNAPSHOT_INVALID    | 6    | the snapshot file is missing, unreadable or not a snapshot |
 */

/** SnapshotErrorCode lists every code the snapshot command can report. */
export type SnapshotErrorCode =
  | 'BERTH_ERR_SNAPSHOT_USAGE'
  | 'BERTH_ERR_SNAPSHOT_FAILED'
  | 'BERTH_ERR_ETCDCTL_MISSING'
  | 'BERTH_ERR_ETCD_UNREACHABLE'
  | 'BERTH_ERR_SNAPSHOT_EXISTS'
  | 'BERTH_ERR_ETCD_DIR_EXISTS'
  | 'BERTH_ERR_DATA_DIR_IN_USE'
  | 'BERTH_ERR_SNAPSHOT_INVALID';

/** EXIT_BY_CODE is the process exit status of each code (table above). */
export const EXIT_BY_CODE: Readonly<Record<SnapshotErrorCode, number>> = {
  BERTH_ERR_SNAPSHOT_USAGE: 2,
  BERTH_ERR_SNAPSHOT_FAILED: 1,
  BERTH_ERR_ETCDCTL_MISSING: 1,
  BERTH_ERR_ETCD_UNREACHABLE: 3,
  BERTH_ERR_SNAPSHOT_EXISTS: 4,
  BERTH_ERR_ETCD_DIR_EXISTS: 4,
  BERTH_ERR_DATA_DIR_IN_USE: 5,
  BERTH_ERR_SNAPSHOT_INVALID: 6,
};

/** SnapshotError is a failure of save or restore; exitCode follows from code. */
export class SnapshotError extends Error {
  constructor(readonly code: SnapshotErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SnapshotError';
  }

  /** exitCode is the process exit status for this error. */
  get exitCode(): number {
    return EXIT_BY_CODE[this.code];
  }
}
