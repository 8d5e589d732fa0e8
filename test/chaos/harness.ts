/**
 * One chaos run on a running cluster: the etcd history and the samplers watch, the workload
 * writes, and the faults of the scenario are injected one at a time (each held for a drawn time,
 * then healed) until the duration is spent. Then the workload stops, the cluster must converge
 * to exactly the desired state within the bound, the acknowledged writes must all be there, and
 * deleting every workload service must leave nothing behind. All random choices come from the
 * seed: the fault schedule and the workload's operations replay; what the cluster does in
 * between is real and timing-dependent.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isNodeReady } from '../../control-plane/objects/conditions.js';
import type { ChaosCluster, Replica } from './cluster.js';
import { waitFor } from '../support/cluster.js';
import { apiProblems, CLEANUP_BOUND_S, CONVERGE_BOUND_S, runningOn, waitExact } from './converge.js';
import type { ActiveFault, FaultContext } from './faults/fault.js';
import type { Scenario } from './faults/index.js';
import { History } from './history.js';
import { componentsDown, Liveness } from './liveness.js';
import { Observer, readApi } from './observe.js';
import { Rng, streamSeed } from './random.js';
import { checksOf, copyLogs, logExcerpts, type ChaosResult, type FaultRecord } from './report.js';
import type { SafetyNet } from './safety.js';
import { Violations } from './violations.js';
import { Workload } from './workload.js';

/** RunOptions selects the scenario, the seed and how long faults are injected. */
export interface RunOptions {
  scenario: Scenario;
  seed: number;
  durationS: number;
  /** artifactsDir receives copies of the cluster's logs; none when absent. */
  artifactsDir?: string;
  /** log receives progress lines (default: stderr). */
  log?: (line: string) => void;
}

/** GAP_S is the range of the pause between two faults. */
const GAP_S: readonly [number, number] = [1, 5];
/** READY_WAIT_MS bounds the wait for a healthy, empty cluster before a run. */
const READY_WAIT_MS = 90_000;
/** HEAL_ATTEMPTS bounds retries of a heal that failed (a component that did not come back). */
const HEAL_ATTEMPTS = 3;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** waitHealthy waits until every node is Ready and no task is left from an earlier run. */
async function waitHealthy(cluster: ChaosCluster): Promise<void> {
  let why = '';
  await waitFor(async () => {
    try {
      const s = await readApi(cluster, cluster.status.controlPlanes);
      const ready = s.nodes.filter((n) => isNodeReady(n)).length;
      if (ready === cluster.status.hosts.length && s.tasks.length === 0) return true;
      why = `${ready}/${cluster.status.hosts.length} nodes Ready, ${s.tasks.length} tasks left`;
    } catch (err) {
      why = (err as Error).message;
    }
    return undefined;
  }, READY_WAIT_MS, () => `the cluster is not healthy and empty before the run: ${why}`, 1_000);
}

/** runChaos runs one scenario with one seed and returns what it found. */
export async function runChaos(cluster: ChaosCluster, safety: SafetyNet, o: RunOptions): Promise<ChaosResult> {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  await cluster.refresh();
  await waitHealthy(cluster);
  const t0 = Date.now();
  const at = (): string => ((Date.now() - t0) / 1000).toFixed(1).padStart(6);
  const lines: string[] = [];
  const say = (line: string): void => {
    const stamped = `[${at()} s] ${line}`;
    lines.push(`${new Date().toISOString()} ${stamped}`);
    log(stamped);
  };
  const violations = new Violations(t0);
  const history = new History(cluster.etcd(), violations, say);
  const liveness = new Liveness();
  liveness.update(cluster.status);
  const faults: FaultRecord[] = [];
  const active = new Map<number, ActiveFault>();
  const lastEnd = new Map<string, number>();
  let nextFault = 0;

  const undisturbedSince = (node: string): number => {
    for (const f of active.values()) if (f.affects === 'all' || f.affects.includes(node)) return Infinity;
    return Math.max(t0, lastEnd.get('all') ?? 0, lastEnd.get(node) ?? 0);
  };
  // Samplers read from a replica no active fault touches; the workload is a client with both addresses.
  const replicaOrder = (): Replica[] => {
    const disturbed = new Set([...active.values()].map((f) => f.replica).filter((r) => r !== undefined));
    const all = cluster.status.controlPlanes;
    return [...all.filter((r) => !disturbed.has(r.replica)), ...all.filter((r) => disturbed.has(r.replica))];
  };

  await history.start();
  const observer = new Observer({ cluster, history, violations, liveness, replicaOrder, undisturbedSince, log: say });
  const clusterCpu = history.snapshot().nodes.reduce((sum, n) => sum + (n.status?.allocatable?.cpu ?? 0), 0);
  const workload = new Workload({
    servers: () => cluster.status.controlPlanes.map((r) => r.server), rng: new Rng(streamSeed(o.seed, 2)),
    runTag: `c${o.seed.toString(36)}`, clusterCpu, startedAtMs: t0, log: say,
  });
  const ctx: FaultContext = { cluster, safety, log: say, historyRevision: () => history.revision, expectExit: (pid) => liveness.expectExit(pid) };
  let convergeS: number | null = null;
  try {
    observer.start();
    workload.start();
    const rng = new Rng(streamSeed(o.seed, 1));
    const deadline = t0 + o.durationS * 1000;
    while (Date.now() < deadline) {
      // Draw everything for this fault first, so the schedule does not depend on what happens.
      const kind = rng.weighted(o.scenario.faults);
      const holdMs = Math.round(rng.between(kind.holdS[0], kind.holdS[1]) * 1000);
      const gapMs = Math.round(rng.between(GAP_S[0], GAP_S[1]) * 1000);
      const faultRng = new Rng(streamSeed(o.seed, 100 + faults.length));
      const rec: FaultRecord = { name: kind.name, target: '?', atS: (Date.now() - t0) / 1000, heldS: 0, healed: false, notes: [] };
      faults.push(rec);
      let fault: ActiveFault;
      try {
        fault = await kind.inject(ctx, faultRng);
      } catch (err) {
        rec.notes.push(`not injected: ${(err as Error).message}`);
        rec.healed = true;
        say(`fault ${kind.name} not injected: ${(err as Error).message}`);
        await sleep(gapMs);
        continue;
      }
      const id = nextFault++;
      active.set(id, fault);
      rec.target = fault.target;
      rec.notes = fault.notes;
      const injectedAt = Date.now();
      say(`fault ${kind.name} on ${fault.target}, held ${(holdMs / 1000).toFixed(1)} s`);
      if (fault.midway) {
        await sleep(holdMs / 2);
        await fault.midway().catch((err: unknown) => rec.notes.push(`midway step failed: ${(err as Error).message}`));
        await sleep(holdMs - (Date.now() - injectedAt));
      } else {
        await sleep(holdMs);
      }
      for (let attempt = 1; attempt <= HEAL_ATTEMPTS && !rec.healed; attempt++) {
        try {
          await fault.heal();
          rec.healed = true;
        } catch (err) {
          rec.notes.push(`heal attempt ${attempt} failed: ${(err as Error).message.split('\n')[0]}`);
          await sleep(2_000);
        }
      }
      rec.heldS = (Date.now() - injectedAt) / 1000;
      active.delete(id);
      const end = Date.now();
      if (fault.affects === 'all') lastEnd.set('all', end);
      else for (const n of fault.affects) lastEnd.set(n, end);
      say(`fault ${kind.name} ${rec.healed ? 'healed' : 'NOT healed'} after ${rec.heldS.toFixed(1)} s`);
      if (Date.now() >= deadline) break;
      await sleep(gapMs);
    }
    say('faults done; stopping the workload');
    await workload.stop();
    say(`converging (bound ${CONVERGE_BOUND_S} s)`);
    const names = new Set(workload.names);
    const conv = await waitExact(cluster, replicaOrder, CONVERGE_BOUND_S,
      (s) => [...componentsDown(cluster.status), ...apiProblems(s, cluster.status.hosts.length, (svc) => names.has(svc))], runningOn);
    violations.checked('convergence');
    if (conv.converged && conv.seconds <= CONVERGE_BOUND_S) {
      convergeS = conv.seconds;
      say(`converged in ${conv.seconds.toFixed(1)} s`);
    } else {
      say(`NOT converged after ${conv.seconds.toFixed(1)} s: ${conv.problems.length} problems`);
      violations.add({ invariant: 'convergence', source: 'convergence', objects: conv.problems.slice(0, 40),
        message: `not at the desired state ${CONVERGE_BOUND_S} s after the faults stopped (${conv.problems.length} differences, listed)` });
    }
    const served = conv.sample?.services ?? (await readApi(cluster, replicaOrder())).services;
    violations.checked('acked-write-lost', names.size);
    for (const v of workload.checkAcknowledged(served)) violations.add(v);
    await observer.stop();
    liveness.update(cluster.status);
    for (const v of liveness.check()) violations.add(v);

    say('deleting the workload services');
    const undeleted = await workload.deleteAll();
    const clean = await waitExact(cluster, replicaOrder, CLEANUP_BOUND_S,
      (s) => [...undeleted.map((n) => `service ${n} could not be deleted`), ...s.services.filter((x) => names.has(x.metadata.name)).map((x) => `service ${x.metadata.name} still exists`),
        ...s.tasks.filter((t) => names.has(t.spec.service)).map((t) => `task ${t.metadata.name} of ${t.spec.service} still exists (${t.status.phase}, desired ${t.spec.desiredState}, on ${t.spec.nodeName || 'no node'})`)],
      () => []);
    violations.checked('leak');
    if (!clean.converged) {
      violations.add({ invariant: 'leak', source: 'clean-up', objects: clean.problems.slice(0, 40),
        message: `${CLEANUP_BOUND_S} s after deleting every workload service, ${clean.problems.length} things remain (listed)` });
    }
  } finally {
    safety.undoAll(say);
    await workload.stop().catch(() => undefined);
    await observer.stop().catch(() => undefined);
    await history.stop();
  }
  return finish(cluster, o, { faults, workload, violations, history, observer, convergeS, lines }, say);
}

function finish(cluster: ChaosCluster, o: RunOptions,
  r: { faults: FaultRecord[]; workload: Workload; violations: Violations; history: History; observer: Observer; convergeS: number | null; lines: string[] },
  say: (line: string) => void): ChaosResult {
  const status = cluster.status;
  const etcdLogs = status.etcdCluster?.members.map((m) => m.log) ?? [];
  let logFiles = [...status.hosts.map((h) => h.log), ...status.controlPlanes.map((c) => c.log), ...(status.etcdProxy ? [status.etcdProxy.log] : [])];
  let artifacts: string | undefined;
  if (o.artifactsDir) {
    const copied = copyLogs(status.runDir, etcdLogs, o.artifactsDir);
    // The history's journal (every change of a task, service or node, with its etcd revision) and
    // the harness's own lines go with the logs: together they tell what happened to an object.
    writeFileSync(join(o.artifactsDir, 'history.log'), `${r.history.journal.join('\n')}\n`);
    writeFileSync(join(o.artifactsDir, 'harness.log'), `${r.lines.join('\n')}\n`);
    artifacts = o.artifactsDir;
    logFiles = [...copied.filter((f) => !/\/(m\d|registry)\.log$/.test(f)), join(o.artifactsDir, 'history.log')];
    say(`logs copied to ${o.artifactsDir}`);
  }
  const list = r.violations.list();
  return {
    scenario: o.scenario.name, seed: o.seed, durationS: o.durationS, faults: r.faults, operations: [...r.workload.operations],
    violations: list, checks: checksOf(r.violations), convergeS: r.convergeS, convergeBoundS: CONVERGE_BOUND_S,
    historyRevisions: r.history.revisions, historyGaps: r.history.gaps, apiSamples: r.observer.apiSamples, apiErrors: r.observer.apiErrors,
    hostSamples: r.observer.hostSamples, excerpts: list.map((v) => logExcerpts(v, logFiles)),
    ...(artifacts ? { artifacts } : {}),
  };
}
