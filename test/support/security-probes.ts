/**
 * Helpers for tests that attack a secure local cluster: the real CLI run with exactly the
 * credential a test chooses (nothing inherited from the machine), config files for foreign CAs
 * and client certificates, and the audit log read back and matched against what a test did.
 */
import { spawnSync } from 'node:child_process';
import { request } from 'node:https';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { AuditRecord } from '../../control-plane/security/audit.js';
import { createCsr, distinguishedName, generateKeyPair } from '../../common/x509.js';
import { REPO_ROOT, type CommandResult } from './cluster.js';

/** CLI_TIMEOUT_MS bounds one CLI run. */
export const CLI_TIMEOUT_MS = 60_000;

/**
 * CliCredential is how a CLI run authenticates: a token with the cluster's config (its CA),
 * a whole config file, or nothing at all (only BERTH_SERVER, plus any extra environment).
 */
export type CliCredential =
  | { token: string; config: string }
  | { configFile: string }
  | { none: true; server: string; env?: Record<string, string> };

let emptyHome: string | undefined;

/** berthAs runs the real CLI with exactly cred: BERTH_* and HOME come from cred only, never from the machine. */
export function berthAs(cred: CliCredential, args: string[], input?: string): CommandResult {
  // An empty HOME: a ~/.berth/config on the machine must not lend the run a credential.
  emptyHome ??= mkdtempSync(join(tmpdir(), 'berth-sec-home-'));
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: emptyHome };
  for (const k of ['BERTH_TOKEN', 'BERTH_CONFIG', 'BERTH_SERVER', 'NODE_EXTRA_CA_CERTS']) delete env[k];
  if ('token' in cred) Object.assign(env, { BERTH_CONFIG: cred.config, BERTH_TOKEN: cred.token });
  else if ('configFile' in cred) env.BERTH_CONFIG = cred.configFile;
  else Object.assign(env, { BERTH_SERVER: cred.server }, cred.env ?? {});
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'dist', 'control-plane', 'cli', 'main.js'), ...args], {
    encoding: 'utf8', timeout: CLI_TIMEOUT_MS, input, env,
  });
  if (r.error) throw r.error;
  return { code: r.status ?? 128 + 9, stdout: r.stdout, stderr: r.stderr };
}

/** disposeProbeHome removes the empty HOME berthAs runs the CLI with. */
export function disposeProbeHome(): void {
  if (emptyHome) rmSync(emptyHome, { recursive: true, force: true });
  emptyHome = undefined;
}

/** show renders a CLI result for failure messages. */
export function show(r: CommandResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** writeConfigFile writes a berth config (mode 0600) into dir and returns its path. */
export function writeConfigFile(dir: string, name: string, doc: Record<string, string>): string {
  const path = join(dir, name);
  writeFileSync(path, stringify({ apiVersion: 'berth/v1', kind: 'Config', ...doc }, { lineWidth: 0 }), { mode: 0o600 });
  return path;
}

/** RawAnswer is the status of a response and the first chunk of its body ('' if none came in time). */
export interface RawAnswer {
  status: number;
  firstChunk: string;
}

/**
 * rawGet sends one GET with the path exactly as given, trusting only caPem: unlike fetch, which
 * resolves `..` and `//` before sending, the server sees what an attacker would send. It reads
 * the status and the first body chunk (a watch streams for ever), then closes the connection.
 */
export function rawGet(server: string, caPem: string, path: string, token: string, timeoutMs = 10_000): Promise<RawAnswer> {
  const url = new URL(server);
  return new Promise<RawAnswer>((resolve, reject) => {
    let status: number | undefined;
    const req = request({ host: url.hostname, port: url.port, path, method: 'GET', ca: caPem, agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      status = res.statusCode ?? 0;
      res.once('data', (chunk: Buffer) => done({ status: status!, firstChunk: chunk.toString('utf8') }));
      res.once('end', () => done({ status: status!, firstChunk: '' }));
    });
    const timer = setTimeout(() => (status === undefined
      ? fail(new Error(`GET ${path}: no answer within ${timeoutMs} ms`))
      : done({ status, firstChunk: '' })), timeoutMs);
    function done(a: RawAnswer): void {
      clearTimeout(timer);
      req.destroy();
      resolve(a);
    }
    function fail(err: Error): void {
      clearTimeout(timer);
      req.destroy();
      reject(err);
    }
    req.on('error', (err) => (status === undefined ? fail(err) : undefined));
    req.end();
  });
}

/** ClientKeyAndCsr is a fresh key and a certificate request for a client subject. */
export interface ClientKeyAndCsr {
  keyPem: string;
  csr: string;
}

/** clientCsr makes an ECDSA P-256 key and a request for CN=name, O=organizations. */
export async function clientCsr(name: string, organizations: string[]): Promise<ClientKeyAndCsr> {
  const key = await generateKeyPair();
  return { keyPem: key.privateKeyPem, csr: await createCsr(key.keys, distinguishedName(name, organizations)) };
}

/** AuditExpectation is one thing a test did that the audit log must show. */
export interface AuditExpectation {
  /** what names the refusal in a failure message. */
  what: string;
  /** since is when the test did it (records before it are someone else's). */
  since: number;
  match(r: AuditRecord): boolean;
}

/**
 * unmatchedExpectations pairs every expectation with its own record (oldest first, each record
 * used once, so two identical refusals need two lines) and returns the ones left without a line.
 */
export function unmatchedExpectations(records: readonly AuditRecord[], expected: readonly AuditExpectation[]): AuditExpectation[] {
  const sorted = [...records].sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
  const used = new Set<AuditRecord>();
  const missing: AuditExpectation[] = [];
  for (const e of expected) {
    // The control plane stamps records with its own clock; allow a second of difference.
    const hit = sorted.find((r) => !used.has(r) && Date.parse(r.time) >= e.since - 1000 && e.match(r));
    if (hit) used.add(hit);
    else missing.push(e);
  }
  return missing;
}
