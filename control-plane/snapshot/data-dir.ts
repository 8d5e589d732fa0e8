/**
 * What a control-plane data directory implies for snapshots: where its embedded etcd keeps its
 * data, how that etcd is named, and which running processes use the directory (read from
 * /proc, so a control plane started by hand, by systemd or inside a test is found alike).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';

export { DEFAULT_DATA_DIR, DEFAULT_ETCD_CLIENT_PORT, DEFAULT_ETCD_PEER_PORT, EMBEDDED_CLUSTER_TOKEN, EMBEDDED_MEMBER_NAME } from '../etcd/embedded.js';

/** embeddedEtcdDir is where the embedded etcd of dataDir keeps its data. */
export function embeddedEtcdDir(dataDir: string): string {
  return join(resolve(dataDir), 'etcd');
}

/** embeddedPeerUrl is the embedded etcd's peer URL for peerPort (127.0.0.1 only, as embedded.ts binds it). */
export function embeddedPeerUrl(peerPort: number): string {
  return `http://127.0.0.1:${peerPort}`;
}

/** DataDirUser is a running process that uses a data dir. */
export interface DataDirUser {
  pid: number;
  what: 'etcd' | 'control plane';
  /** clientUrls is an etcd's --listen-client-urls, when it is one. */
  clientUrls?: string[];
}

/** flagValue returns the value of --name or --name=value in argv. */
export function flagValue(argv: readonly string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === name) return argv[i + 1];
    if (a.startsWith(`${name}=`)) return a.slice(name.length + 1);
  }
  return undefined;
}

function isEtcd(argv: readonly string[]): boolean {
  return argv.some((a) => /(^|\/)etcd$/.test(a));
}

function isControlPlane(argv: readonly string[]): boolean {
  const i = argv.findIndex((a) => /(^|\/)(berth-control-plane|control-plane\/main\.js)$/.test(a));
  // `berth-control-plane snapshot ...` is a tool run like this one, not a server.
  return i >= 0 && argv[i + 1] !== 'snapshot';
}

/**
 * classify tells whether argv (of a process whose working directory is cwd) uses dataDir: an
 * etcd whose --data-dir is <dataDir>/etcd, or a control plane whose --data-dir is dataDir.
 */
export function classify(argv: readonly string[], cwd: string, dataDir: string): Omit<DataDirUser, 'pid'> | undefined {
  const value = flagValue(argv, '--data-dir');
  if (value === undefined) return undefined;
  const dir = resolve(cwd, value);
  if (isEtcd(argv) && dir === embeddedEtcdDir(dataDir)) {
    const urls = flagValue(argv, '--listen-client-urls');
    return { what: 'etcd', ...(urls ? { clientUrls: urls.split(',') } : {}) };
  }
  if (isControlPlane(argv) && dir === resolve(dataDir)) return { what: 'control plane' };
  return undefined;
}

/** dataDirUsers lists the running processes (other than this one) that use dataDir. */
export function dataDirUsers(dataDir: string): DataDirUser[] {
  const users: DataDirUser[] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return users;
  }
  for (const p of pids) {
    const pid = Number(p);
    if (pid === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
      if (!argv.some((a) => a.startsWith('--data-dir'))) continue;
      const found = classify(argv, readlinkSync(`/proc/${p}/cwd`), dataDir);
      if (found) users.push({ pid, ...found });
    } catch {
      // the process ended while we looked, or is not ours to read
    }
  }
  return users;
}
