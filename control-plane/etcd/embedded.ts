/**
 * The embedded etcd: a child process with its data under <data-dir>/etcd, logs appended to
 * <data-dir>/etcd.log, bound to 127.0.0.1. It must never outlive the control plane: it is
 * spawned under `setpriv --pdeathsig KILL` when available (the kernel kills it if we die,
 * even by SIGKILL), and killed synchronously on every exit path we can see.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { etcdAnswers } from '../store/etcd.js';
import { BerthError } from '../errors.js';
import type { Logger } from '../../common/log.js';
import { processAlive } from '../../common/process.js';

/** DEFAULT_DATA_DIR is berth-control-plane's default --data-dir (the embedded etcd lives in its etcd/). */
export const DEFAULT_DATA_DIR = '/var/lib/berth/control-plane';
/** DEFAULT_ETCD_CLIENT_PORT is the default --etcd-client-port. */
export const DEFAULT_ETCD_CLIENT_PORT = 2379;
/** DEFAULT_ETCD_PEER_PORT is the default --etcd-peer-port. */
export const DEFAULT_ETCD_PEER_PORT = 2380;
/** EMBEDDED_MEMBER_NAME is the embedded etcd's --name; a snapshot restored for it must carry the same. */
export const EMBEDDED_MEMBER_NAME = 'berth';
/** EMBEDDED_CLUSTER_TOKEN is the embedded etcd's --initial-cluster-token (etcd's default, said explicitly). */
export const EMBEDDED_CLUSTER_TOKEN = 'etcd-cluster';
/** DEFAULT_ETCD_BIN is Debian's etcd-server binary; BERTH_ETCD_BIN overrides it. */
export const DEFAULT_ETCD_BIN = '/usr/bin/etcd';
/** ETCD_READY_TIMEOUT_MS bounds the wait for a healthy etcd after spawn. */
export const ETCD_READY_TIMEOUT_MS = 20_000;
/** ETCD_STOP_GRACE_MS is how long SIGTERM gets before SIGKILL. */
export const ETCD_STOP_GRACE_MS = 5_000;
const POLL_INTERVAL_MS = 100;
const PROBE_TIMEOUT_MS = 1_000;
const SETPRIV = '/usr/bin/setpriv';

/** EmbeddedEtcdOptions places the embedded etcd. */
export interface EmbeddedEtcdOptions {
  dataDir: string;
  clientPort: number;
  peerPort: number;
  log: Logger;
}

/** EmbeddedEtcd is a running child etcd; stop() is idempotent. */
export interface EmbeddedEtcd {
  endpoint: string;
  pid: number;
  logFile: string;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** killEmbeddedEtcdsSync SIGKILLs every embedded etcd still running; safe inside process 'exit'. */
export function killEmbeddedEtcdsSync(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}


function checkPreviousEtcd(pidFile: string, etcdDir: string): void {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0 || !processAlive(pid)) return;
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return;
  }
  if (cmdline.includes('etcd') && cmdline.includes(etcdDir)) {
    throw new BerthError('BERTH_ERR_ETCD_LOCKED',
      `a previous embedded etcd (pid ${pid}) still holds ${etcdDir}; stop it (kill ${pid}) or use another --data-dir`);
  }
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** startEmbeddedEtcd spawns etcd and resolves once it answers a read, or throws BERTH_ERR_ETCD_START. */
export async function startEmbeddedEtcd(opts: EmbeddedEtcdOptions): Promise<EmbeddedEtcd> {
  const etcdDir = join(opts.dataDir, 'etcd');
  const logFile = join(opts.dataDir, 'etcd.log');
  const pidFile = join(opts.dataDir, 'etcd.pid');
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  checkPreviousEtcd(pidFile, etcdDir);
  const bin = process.env.BERTH_ETCD_BIN ?? DEFAULT_ETCD_BIN;
  const client = `http://127.0.0.1:${opts.clientPort}`;
  const peer = `http://127.0.0.1:${opts.peerPort}`;
  const args = [
    '--name', EMBEDDED_MEMBER_NAME, '--data-dir', etcdDir,
    '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `${EMBEDDED_MEMBER_NAME}=${peer}`, '--initial-cluster-state', 'new', '--initial-cluster-token', EMBEDDED_CLUSTER_TOKEN,
    '--auto-compaction-mode', 'revision', '--auto-compaction-retention', '100000',
  ];
  const [cmd, argv] = existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'KILL', '--', bin, ...args]] : [bin, args];
  const logFd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd, argv, { stdio: ['ignore', logFd, logFd] });
  } finally {
    closeSync(logFd);
  }
  const pid = child.pid;
  if (pid === undefined) {
    throw new BerthError('BERTH_ERR_ETCD_START', `cannot start ${bin}; see ${logFile}`);
  }
  live.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', killEmbeddedEtcdsSync);
  }
  writeFileSync(pidFile, `${pid}\n`);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitPromise = new Promise<void>((resolve) => child.once('exit', (code, signal) => {
    exited = { code, signal };
    live.delete(child);
    resolve();
  }));
  opts.log.info('embedded etcd started', { pid, endpoint: client, dataDir: etcdDir, log: logFile });

  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), ETCD_STOP_GRACE_MS);
      await exitPromise;
      clearTimeout(timer);
      opts.log.info('embedded etcd stopped', { pid });
    }
    rmSync(pidFile, { force: true });
  };

  const deadline = Date.now() + ETCD_READY_TIMEOUT_MS;
  try {
    while (!(await etcdAnswers(client, PROBE_TIMEOUT_MS))) {
      if (exited) {
        throw new BerthError('BERTH_ERR_ETCD_START',
          `embedded etcd exited (code ${exited.code}, signal ${exited.signal}) before becoming healthy; see ${logFile}:\n${tail(logFile, 8)}`);
      }
      if (Date.now() > deadline) {
        throw new BerthError('BERTH_ERR_ETCD_START',
          `embedded etcd not healthy after ${ETCD_READY_TIMEOUT_MS} ms; see ${logFile}:\n${tail(logFile, 8)}`);
      }
      await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { endpoint: client, pid, logFile, stop };
}
