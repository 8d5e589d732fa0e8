/**
 * etcdctl (Debian's etcd-client, v3 API) as the snapshot command uses it: snapshots are taken,
 * checked and restored by etcd's own tooling, never by a dump of our own, so a file written here
 * can be restored by any etcd operator with the stock procedure.
 */
import { spawn } from 'node:child_process';
import { SnapshotError } from './errors.js';

/** DEFAULT_ETCDCTL_BIN is Debian's etcdctl; BERTH_ETCDCTL_BIN overrides it. */
export const DEFAULT_ETCDCTL_BIN = '/usr/bin/etcdctl';
/** PROBE_DIAL_TIMEOUT_S bounds the connection attempt of an endpoint probe. */
export const PROBE_DIAL_TIMEOUT_S = 2;
/** PROBE_COMMAND_TIMEOUT_S bounds one endpoint probe. */
export const PROBE_COMMAND_TIMEOUT_S = 3;
/** LOCAL_COMMAND_TIMEOUT_MS bounds etcdctl commands that only read or write local files. */
export const LOCAL_COMMAND_TIMEOUT_MS = 10 * 60_000;

/** EtcdctlResult is what one etcdctl run printed and returned. */
export interface EtcdctlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** SnapshotStatus is `etcdctl snapshot status -w json`: the database's hash, revision, key count and size. */
export interface SnapshotStatus {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
}

/** EndpointStatus is one member as `etcdctl endpoint status -w json` describes it; ids stay strings (they pass 2^53). */
export interface EndpointStatus {
  endpoint: string;
  memberId: string;
  leaderId: string;
  revision: number;
}

function etcdctlBin(): string {
  return process.env.BERTH_ETCDCTL_BIN ?? DEFAULT_ETCDCTL_BIN;
}

/** runEtcdctl runs etcdctl with args, killing it after timeoutMs; only a missing binary throws. */
export function runEtcdctl(args: string[], timeoutMs: number): Promise<EtcdctlResult> {
  const bin = etcdctlBin();
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: { ...process.env, ETCDCTL_API: '3' }, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT'
        ? new SnapshotError('BERTH_ERR_ETCDCTL_MISSING', `${bin} not found: install the Debian package etcd-client (deploy/install-deps does), or set BERTH_ETCDCTL_BIN`, { cause: err })
        : new SnapshotError('BERTH_ERR_SNAPSHOT_FAILED', `cannot run ${bin}: ${err.message}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      if (signal === 'SIGKILL' && code === null) stderr += `\nError: etcdctl did not finish within ${Math.round(timeoutMs / 1000)} s`;
      resolve({ code: code ?? 128 + 9, stdout, stderr });
    });
  });
}

/**
 * etcdctlError is the line of etcdctl's stderr that says what went wrong: its `Error: ...` line
 * (or the last plain line) rather than the structured log lines it prints around it.
 */
export function etcdctlError(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const plain = lines.filter((l) => !l.startsWith('{'));
  const error = [...plain].reverse().find((l) => l.startsWith('Error:'));
  if (error) return error.slice('Error:'.length).trim();
  if (plain.length > 0) return plain[plain.length - 1]!;
  for (const l of [...lines].reverse()) {
    try {
      const j = JSON.parse(l) as { msg?: string; error?: string };
      if (j.error || j.msg) return [j.msg, j.error].filter(Boolean).join(': ');
    } catch {
      // not JSON after all
    }
  }
  return 'etcdctl failed without a message';
}

/** parseSnapshotStatus reads `snapshot status -w json` output, or returns undefined if it is not that. */
export function parseSnapshotStatus(stdout: string): SnapshotStatus | undefined {
  try {
    const j = JSON.parse(stdout) as Partial<SnapshotStatus>;
    const fields = [j.hash, j.revision, j.totalKey, j.totalSize];
    if (fields.some((v) => typeof v !== 'number' || !Number.isFinite(v))) return undefined;
    return { hash: j.hash!, revision: j.revision!, totalKey: j.totalKey!, totalSize: j.totalSize! };
  } catch {
    return undefined;
  }
}

/** snapshotStatus checks a snapshot file with etcdctl; a file etcdctl cannot read is BERTH_ERR_SNAPSHOT_INVALID. */
export async function snapshotStatus(file: string): Promise<SnapshotStatus> {
  const r = await runEtcdctl(['snapshot', 'status', file, '-w', 'json'], LOCAL_COMMAND_TIMEOUT_MS);
  const status = r.code === 0 ? parseSnapshotStatus(r.stdout) : undefined;
  if (!status) throw new SnapshotError('BERTH_ERR_SNAPSHOT_INVALID', `${file} is not a readable etcd snapshot: ${etcdctlError(r.stderr)}`);
  return status;
}

/**
 * parseEndpointStatus reads one endpoint's `endpoint status -w json` output. The member and
 * leader ids are 64-bit, so they are cut out of the text: JSON.parse would round them and could
 * make two members look alike.
 */
export function parseEndpointStatus(endpoint: string, stdout: string): EndpointStatus | undefined {
  const memberId = /"member_id":(\d+)/.exec(stdout)?.[1];
  const leaderId = /"leader":(\d+)/.exec(stdout)?.[1];
  const revision = /"revision":(\d+)/.exec(stdout)?.[1];
  if (memberId === undefined || leaderId === undefined) return undefined;
  return { endpoint, memberId, leaderId, revision: Number(revision ?? 0) };
}

/** probeEndpoint asks one endpoint for its status; failures are values (the reason). */
export async function probeEndpoint(endpoint: string): Promise<{ ok: true; status: EndpointStatus } | { ok: false; reason: string }> {
  const r = await runEtcdctl(['--endpoints', endpoint, '--dial-timeout', `${PROBE_DIAL_TIMEOUT_S}s`, '--command-timeout', `${PROBE_COMMAND_TIMEOUT_S}s`,
    'endpoint', 'status', '-w', 'json'], (PROBE_DIAL_TIMEOUT_S + PROBE_COMMAND_TIMEOUT_S + 5) * 1000);
  const status = r.code === 0 ? parseEndpointStatus(endpoint, r.stdout) : undefined;
  return status ? { ok: true, status } : { ok: false, reason: etcdctlError(r.stderr) };
}

/**
 * chooseEndpoint picks the member to snapshot among those that answered: the leader, whose
 * state is the newest committed one; else the first that answered, in the order given.
 */
export function chooseEndpoint(answered: readonly EndpointStatus[]): EndpointStatus | undefined {
  return answered.find((s) => s.memberId === s.leaderId) ?? answered[0];
}
