/**
 * Helpers for tests that drive a real local multi-host cluster (deploy/local-cluster) through
 * the real CLI. Every wait is bounded in time; every failure message says what was expected.
 */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** REPO_ROOT is the repository checkout (this file runs from dist/test/support). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** ClusterHost is one host of `deploy/local-cluster status`. */
export interface ClusterHost {
  node: string;
  netns: string;
  address: string;
  agentPid: number;
  stateDir: string;
}

/** ClusterStatus is the JSON printed by `deploy/local-cluster status`. */
export interface ClusterStatus {
  server: string;
  /** config is the cluster's admin berth config file (server, CA, admin token). */
  config: string;
  /** ca is the cluster CA certificate file. */
  ca: string;
  registry: string;
  hosts: ClusterHost[];
  controlPlanePid?: number;
  etcd?: string;
}

/** CommandResult is what a finished command printed and returned. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

function finished(r: SpawnSyncReturns<string>): CommandResult {
  if (r.error) throw r.error;
  return { code: r.status ?? 128 + 9, stdout: r.stdout, stderr: r.stderr };
}

/** localCluster runs deploy/local-cluster with args; it never throws on a non-zero exit. */
export function localCluster(args: string[], timeoutMs = 180_000): CommandResult {
  return finished(spawnSync(join(REPO_ROOT, 'deploy', 'local-cluster'), args,
    { encoding: 'utf8', timeout: timeoutMs, cwd: REPO_ROOT }));
}

/** clusterStatus parses `local-cluster status --name NAME`, throwing with its stderr on failure. */
export function clusterStatus(name: string): ClusterStatus {
  const r = localCluster(['status', '--name', name], 30_000);
  if (r.code !== 0) throw new Error(`local-cluster status --name ${name} exited ${r.code}: ${r.stderr}`);
  const status = JSON.parse(r.stdout) as ClusterStatus;
  useConfigFor(status.server, status.config);
  return status;
}

const configs = new Map<string, string>();

/**
 * useConfigFor makes berth() and berthJson() authenticate to server with the berth config file
 * at path (the admin config of a local cluster or an in-process control plane), as an operator
 * who exported BERTH_CONFIG would. clusterStatus() does it for every cluster it reads.
 */
export function useConfigFor(server: string, path: string): void {
  configs.set(server, path);
}

/** configFor is the berth config registered for server, if any. */
export function configFor(server: string): string | undefined {
  return configs.get(server);
}

/** cliEnv is the environment the CLI runs with against server: its config (if registered) and the server URL. */
export function cliEnv(server: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const config = configs.get(server);
  const env: NodeJS.ProcessEnv = { ...process.env, BERTH_SERVER: server, ...extra };
  delete env.BERTH_TOKEN;
  if (config) env.BERTH_CONFIG = config;
  else delete env.BERTH_CONFIG;
  return env;
}

/** berth runs the real CLI against server with input on stdin; it never throws on a non-zero exit. */
export function berth(server: string, args: string[], input?: string): CommandResult {
  return finished(spawnSync(process.execPath, [join(REPO_ROOT, 'dist', 'control-plane', 'cli', 'main.js'), ...args], {
    encoding: 'utf8', timeout: 60_000, input, env: cliEnv(server),
  }));
}

/** berthJson runs the CLI with `-o json` appended and parses the output; a failure throws. */
export function berthJson<T>(server: string, args: string[]): T {
  const r = berth(server, [...args, '-o', 'json']);
  if (r.code !== 0) throw new Error(`berth ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** waitFor polls check until it returns a value other than undefined, or throws describe() after timeoutMs. */
export async function waitFor<T>(check: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number, describe: () => string, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** pidAlive says whether a host PID exists and is not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** run executes a command and returns its result; it never throws on a non-zero exit. */
export function run(cmd: string, args: string[], timeoutMs = 30_000): CommandResult {
  return finished(spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs }));
}

/** upCluster brings up a fresh local cluster of `hosts` hosts (removing a stale one first) and returns its status. */
export function upCluster(name: string, hosts: number): ClusterStatus {
  localCluster(['down', '--name', name]);
  const up = localCluster(['up', '--hosts', String(hosts), '--name', name]);
  assert.equal(up.code, 0, `local-cluster up failed:\n${up.stdout}\n${up.stderr}`);
  return clusterStatus(name);
}

/** downCluster removes the cluster and asserts none of its network namespaces is left. */
export function downCluster(name: string): void {
  const down = localCluster(['down', '--name', name]);
  assert.equal(down.code, 0, `local-cluster down failed: ${down.stderr}`);
  const netns = run('ip', ['netns', 'list']).stdout;
  assert.ok(!netns.includes(`berth-${name}-`), `netns left behind:\n${netns}`);
}
