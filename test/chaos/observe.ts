/**
 * Continuous sampling while faults run: what the API serves (from a replica no fault touches at
 * the moment) and every host's real state, each checked against the invariants. The API sample
 * reads services, then tasks, then services again, so the surge bound covers every spec from
 * the oldest the controller might still be acting on to the newest that may have made a task.
 */
import type { Node, Service, Task } from '../../control-plane/objects/types.js';
import { apiJson } from '../support/secure.js';
import type { ChaosCluster, Replica } from './cluster.js';
import type { History } from './history.js';
import { checkHostIps, OrphanClock } from './host-checks.js';
import { processTable, readHostState } from './host-state.js';
import { checkApiIps, checkCapacity, checkSurge, type Snapshot } from './invariants.js';
import type { Liveness } from './liveness.js';
import type { Violations } from './violations.js';

/** SAMPLE_INTERVAL_MS is the pause between two samples of one kind. */
export const SAMPLE_INTERVAL_MS = 2_500;
/** API_TIMEOUT_MS bounds one API request of a sample. */
const API_TIMEOUT_MS = 8_000;

/** ApiSample is one read of the API. */
export interface ApiSample extends Snapshot {
  /** servicesBefore are the services read before the tasks (services are read after them). */
  servicesBefore: Service[];
  replica: number;
}

async function list<T>(cluster: ChaosCluster, replica: Replica, path: string): Promise<T[]> {
  const r = await apiJson<{ items: T[] }>({ apiUrl: replica.server, adminConfig: cluster.status.config }, 'GET', path, { signal: AbortSignal.timeout(API_TIMEOUT_MS) });
  if (r.status !== 200) throw new Error(`GET ${path} on replica ${replica.replica}: HTTP ${r.status}`);
  return r.body.items;
}

/** readApi reads one sample from the first replica in order that answers every request. */
export async function readApi(cluster: ChaosCluster, order: readonly Replica[]): Promise<ApiSample> {
  let last: Error | undefined;
  for (const replica of order) {
    try {
      const servicesBefore = await list<Service>(cluster, replica, '/v1/services');
      const tasks = await list<Task>(cluster, replica, '/v1/tasks');
      const services = await list<Service>(cluster, replica, '/v1/services');
      const nodes = await list<Node>(cluster, replica, '/v1/nodes');
      return { servicesBefore, tasks, services, nodes, replica: replica.replica };
    } catch (err) {
      last = err as Error;
    }
  }
  throw last ?? new Error('no replica to read from');
}

/** Observer runs the API and host samplers until stop(). */
export class Observer {
  private stopped = false;
  private loops: Promise<void>[] = [];
  private readonly orphans = new OrphanClock();
  /** counters for the report. */
  apiSamples = 0;
  apiErrors = 0;
  hostSamples = 0;

  constructor(private readonly o: {
    cluster: ChaosCluster;
    history: History;
    violations: Violations;
    liveness: Liveness;
    /** replicaOrder lists the replicas to read from, undisturbed ones first. */
    replicaOrder: () => Replica[];
    /** undisturbedSince is when the last fault that could delay node ended (Infinity while one is active). */
    undisturbedSince: (node: string) => number;
    log: (line: string) => void;
  }) {}

  /** start begins both sampling loops. */
  start(): void {
    this.loops = [this.every(() => this.sampleApi()), this.every(() => this.sampleHosts())];
  }

  /** stop ends the loops after their current sample. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  private async every(fn: () => Promise<void>): Promise<void> {
    while (!this.stopped) {
      await fn().catch((err: unknown) => this.o.log(`sampler: ${(err as Error).message}`));
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_INTERVAL_MS));
    }
  }

  private async sampleApi(): Promise<void> {
    let sample: ApiSample;
    try {
      sample = await readApi(this.o.cluster, this.o.replicaOrder());
    } catch (err) {
      this.apiErrors++;
      this.o.log(`api sample failed on every replica: ${(err as Error).message}`);
      return;
    }
    this.apiSamples++;
    const source = `api@replica${sample.replica}`;
    const before = new Map(sample.servicesBefore.map((s) => [s.metadata.uid, s]));
    const [surge, surgeChecks] = checkSurge(sample, (svc) => {
      const first = before.get(svc.metadata.uid);
      return this.o.history.boundBetween(svc, first?.status?.observedGeneration ?? svc.status?.observedGeneration ?? 1);
    }, source);
    const [capacity, capacityChecks] = checkCapacity(sample, source);
    for (const v of [...surge, ...capacity, ...checkApiIps(sample, source)]) this.o.violations.add(v);
    this.o.violations.checked('surge', surgeChecks);
    this.o.violations.checked('capacity', capacityChecks);
    this.o.violations.checked('ip-unique-api');
  }

  private async sampleHosts(): Promise<void> {
    const procs = processTable();
    const status = this.o.cluster.status;
    const states = await Promise.all(status.hosts.map((h) => readHostState(h, h.agentPid, procs)));
    this.hostSamples++;
    this.o.liveness.update(status);
    for (const v of this.o.liveness.check()) this.o.violations.add(v);
    this.o.violations.checked('no-crash');
    for (const v of checkHostIps(states)) this.o.violations.add(v);
    this.o.violations.checked('ip-unique');
    const h = this.o.history;
    for (const v of this.orphans.check(states, (node) => h.desiredOn(node), this.o.undisturbedSince, h.taskByUid())) this.o.violations.add(v);
    this.o.violations.checked('orphan-container');
  }
}
