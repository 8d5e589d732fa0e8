/**
 * The chaos cluster: deploy/local-cluster with the HA topology (N hosts, R control-plane replicas
 * on an external 3-member etcd, the last replica behind a cuttable etcd proxy, every host's state
 * dir on a small tmpfs). local-cluster is the one place that knows how to start each part; this
 * module only calls it (asynchronously, so the harness's watches and samplers keep running) and
 * reads its status.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import type { LeaderRecord } from '../../control-plane/election.js';
import { ROOT_PREFIX } from '../../control-plane/store/keys.js';
import { REPO_ROOT, useConfigFor, type ClusterHost, type CommandResult } from '../support/cluster.js';

/** ChaosTopology is what `up` is asked for. */
export interface ChaosTopology {
  name: string;
  hosts: number;
  controlPlanes: number;
  /** stateSize is each host's state tmpfs (the disk-full fault fills it). */
  stateSize: string;
  /** controlPlaneArgs are extra berth-control-plane flags (short leases make faults bite within a run). */
  controlPlaneArgs: string;
}

/** DEFAULT_TOPOLOGY is the cluster the issue asks for: 3 hosts, 2 replicas, a 3-member etcd. */
export const DEFAULT_TOPOLOGY: Omit<ChaosTopology, 'name'> = {
  hosts: 3,
  controlPlanes: 2,
  stateSize: '64M',
  // A node is not Ready 4 s after its last heartbeat and its tasks are lost 6 s later, so a fault
  // of a few seconds already makes the control plane replace work (and the node's return undo it).
  controlPlaneArgs: '--node-lease-ttl 4 --node-lost-grace 6 --leader-lease-ttl 2',
};

/** ChaosHost is one host as local-cluster status describes it. */
export interface ChaosHost extends ClusterHost {
  log: string;
  cgroupParent: string;
  stateSize: string;
}

/** Replica is one control-plane replica. */
export interface Replica {
  replica: number;
  server: string;
  gateway: string;
  pid: number | null;
  log: string;
  dataDir: string;
  etcd: string;
}

/** EtcdMember is one member of the external etcd. */
export interface EtcdMember {
  name: string;
  pid: number;
  alive: boolean;
  healthy: boolean;
  client: string;
  log: string;
}

/** ChaosStatus is `local-cluster status` of an HA cluster. */
export interface ChaosStatus {
  server: string;
  config: string;
  ca: string;
  etcd: string;
  runDir: string;
  controlPlanes: Replica[];
  etcdCluster: { endpoints: string; members: EtcdMember[] } | null;
  etcdProxy: { pid: number | null; listen: string; replica: number; log: string } | null;
  hosts: ChaosHost[];
}

const SCRIPT = join(REPO_ROOT, 'deploy', 'local-cluster');
/** UP_TIMEOUT_MS bounds `up` (etcd, two replicas, three agents joining). */
const UP_TIMEOUT_MS = 180_000;
/** START_TIMEOUT_MS bounds a start-* verb (a replica waits for its API). */
const START_TIMEOUT_MS = 60_000;

/** localClusterAsync runs deploy/local-cluster without blocking the event loop; it never throws on a non-zero exit. */
export function localClusterAsync(args: string[], timeoutMs: number): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(SCRIPT, args, { encoding: 'utf8', timeout: timeoutMs, cwd: REPO_ROOT, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr: stderr + (err && typeof err.code !== 'number' ? `\n${err.message}` : '') });
    });
  });
}

/** ChaosCluster drives one local cluster with the HA topology. */
export class ChaosCluster {
  private etcdClient: Etcd3 | undefined;

  private constructor(readonly topology: ChaosTopology, private current: ChaosStatus) {}

  /** up removes a stale cluster of the same name, brings a fresh one up and reads its status. */
  static async up(topology: ChaosTopology): Promise<ChaosCluster> {
    await localClusterAsync(['down', '--name', topology.name], UP_TIMEOUT_MS);
    const r = await localClusterAsync(['up', '--name', topology.name, '--hosts', String(topology.hosts),
      '--control-planes', String(topology.controlPlanes), '--etcd-members', '3', '--etcd-proxy',
      '--host-state-size', topology.stateSize, '--control-plane-args', topology.controlPlaneArgs], UP_TIMEOUT_MS);
    if (r.code !== 0) throw new Error(`local-cluster up --name ${topology.name} exited ${r.code}:\n${r.stderr}`);
    return new ChaosCluster(topology, await ChaosCluster.readStatus(topology.name));
  }

  private static async readStatus(name: string): Promise<ChaosStatus> {
    const r = await localClusterAsync(['status', '--name', name], 30_000);
    if (r.code !== 0) throw new Error(`local-cluster status --name ${name} exited ${r.code}: ${r.stderr}`);
    const status = JSON.parse(r.stdout) as ChaosStatus;
    // The admin config names replica 1; the CLI and API helpers reach every replica with it.
    for (const cp of status.controlPlanes) useConfigFor(cp.server, status.config);
    return status;
  }

  /** status is the last status read (refresh() reads it again). */
  get status(): ChaosStatus {
    return this.current;
  }

  /** name is the cluster's name. */
  get name(): string {
    return this.topology.name;
  }

  /** refresh reads local-cluster status again (pids change when components restart). */
  async refresh(): Promise<ChaosStatus> {
    this.current = await ChaosCluster.readStatus(this.name);
    return this.current;
  }

  /** etcdEndpoints are the members' client URLs (never the proxy). */
  get etcdEndpoints(): string[] {
    return (this.current.etcdCluster?.endpoints ?? this.current.etcd).split(',').filter(Boolean);
  }

  /** etcd is the harness's own client to every member: leader lookup, compaction and the history watch. */
  etcd(): Etcd3 {
    this.etcdClient ??= new Etcd3({ hosts: this.etcdEndpoints, dialTimeout: 3_000 });
    return this.etcdClient;
  }

  /** leader is the replica holding the election key, if any (its record names its API URL). */
  async leader(): Promise<Replica | undefined> {
    const raw = await this.etcd().get(`${ROOT_PREFIX}election/leader`).string().catch(() => null);
    if (!raw) return undefined;
    const record = JSON.parse(raw) as LeaderRecord;
    return this.current.controlPlanes.find((r) => r.server === record.apiUrl);
  }

  /** startAgent starts host i's agent again (1-based), as `up` did. */
  async startAgent(i: number): Promise<void> {
    await this.start(['start-agent', '--host', String(i)]);
  }

  /** startControlPlane starts replica r again and waits for its API. */
  async startControlPlane(r: number): Promise<void> {
    await this.start(['start-control-plane', '--replica', String(r)]);
  }

  /** startEtcdMember starts etcd member m again and waits until it is healthy. */
  async startEtcdMember(m: number): Promise<void> {
    await this.start(['start-etcd-member', '--member', String(m)]);
  }

  private async start(args: string[]): Promise<void> {
    const r = await localClusterAsync([...args, '--name', this.name], START_TIMEOUT_MS);
    if (r.code !== 0) throw new Error(`local-cluster ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    await this.refresh();
  }

  /** close ends the harness's etcd client (a later etcd() makes a new one). */
  close(): void {
    this.etcdClient?.close();
    this.etcdClient = undefined;
  }

  /** down stops everything (local-cluster down) and closes the harness's etcd client. */
  async down(): Promise<CommandResult> {
    this.close();
    return localClusterAsync(['down', '--name', this.name], UP_TIMEOUT_MS);
  }
}
