/**
 * The chaos suite's short form for CI: one HA local cluster (3 hosts, 2 control-plane replicas,
 * a 3-member etcd), a few scenarios with fixed seeds and short fault phases, each asserting zero
 * violations and convergence within the bound; then the cluster is removed and nothing may be
 * left. The long form is `npm run chaos` (test/chaos/README.md). Everything is undone and removed
 * in `after`, also when a case fails or the runner times out (SIGTERM goes through the safety net).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureSeedImage } from '../support/images.js';
import { ChaosCluster, DEFAULT_TOPOLOGY } from './cluster.js';
import { scenarioNamed } from './faults/index.js';
import { runChaos } from './harness.js';
import { rootFirewall, teardownLeaks } from './leaks.js';
import { formatReport, jsonLine, type ChaosResult } from './report.js';
import { SafetyNet } from './safety.js';

/**
 * CASES are the fixed seeds CI runs (about 45-55 s each with convergence and clean-up), one per
 * scenario, each replayed clean by hand first: the control-plane seed cuts a replica's etcd link
 * before the leader and follower stops, the all seed mixes every kind of fault.
 */
const CASES: { scenario: string; seed: number; durationS: number }[] = [
  { scenario: 'agents', seed: 101, durationS: 25 },
  { scenario: 'control-plane', seed: 202, durationS: 25 },
  { scenario: 'network', seed: 303, durationS: 25 },
  { scenario: 'etcd', seed: 404, durationS: 20 },
  { scenario: 'disk', seed: 505, durationS: 20 },
  { scenario: 'all', seed: 606, durationS: 30 },
];

const NAME = `chs${process.pid % 10000}`;
const isRoot = process.getuid?.() === 0;
const canRun = isRoot && existsSync('/usr/bin/etcd');

describe('chaos, short form', { skip: !canRun && 'needs root and etcd' }, () => {
  const safety = new SafetyNet();
  let cluster: ChaosCluster | undefined;
  let firewallBefore: string[] = [];
  const stoppedPids: number[] = [];

  before(async () => {
    ensureSeedImage();
    firewallBefore = rootFirewall();
    safety.ownCluster(NAME);
    safety.installSignalHandlers();
    cluster = await ChaosCluster.up({ name: NAME, ...DEFAULT_TOPOLOGY });
  });

  after(async () => {
    safety.undoAll();
    const idx = cluster ? /10\.88\.(\d+)\.1/.exec(cluster.status.server)?.[1] : undefined;
    const down = cluster ? await cluster.down() : undefined;
    safety.ownCluster(undefined);
    safety.uninstall();
    if (down) assert.equal(down.code, 0, `local-cluster down failed: ${down.stderr}`);
    const left = teardownLeaks(NAME, idx, firewallBefore, stoppedPids);
    assert.deepEqual(left.map((v) => v.objects[0]), [], 'nothing of the cluster is left after local-cluster down');
  });

  for (const c of CASES) {
    test(`${c.scenario}, seed ${c.seed}: no invariant broken, converged within the bound`, async () => {
      assert.ok(cluster, 'the cluster came up');
      const artifactsDir = join(tmpdir(), 'berth-chaos', `ci-${c.scenario}-${c.seed}-${Date.now()}`);
      const lines: string[] = [];
      const result: ChaosResult = await runChaos(cluster, safety, {
        scenario: scenarioNamed(c.scenario)!, seed: c.seed, durationS: c.durationS, artifactsDir,
        log: (l) => lines.push(l),
      });
      for (const f of result.faults) if (f.name.endsWith('-stop')) stoppedPids.push(Number(/pid (\d+)/.exec(f.target)?.[1] ?? 0));
      const report = `${formatReport(result, NAME)}\n${jsonLine(result)}`;
      process.stdout.write(`${report}\n`);
      if (result.violations.length === 0) rmSync(artifactsDir, { recursive: true, force: true });
      assert.ok(result.faults.length > 0, 'faults were injected');
      assert.ok(result.faults.every((f) => f.healed), `every fault healed: ${JSON.stringify(result.faults)}`);
      assert.ok(result.operations.length > 0, 'the workload ran');
      assert.deepEqual(result.violations.map((v) => `${v.invariant}: ${v.message}`), [], `no violation (logs in ${artifactsDir}):\n${report}\n${lines.slice(-40).join('\n')}`);
      assert.notEqual(result.convergeS, null, 'converged');
      assert.ok(result.convergeS! <= result.convergeBoundS, `converged in ${result.convergeS} s, bound ${result.convergeBoundS} s`);
    });
  }
});
