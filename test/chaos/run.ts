/**
 * The chaos suite's entry: `npm run chaos -- [--duration S] [--seed N] [--scenario NAME] [--keep]`
 * (node dist/test/chaos/run.js). Brings up a local cluster with the HA topology, runs one
 * scenario, removes the cluster, checks that nothing is left, prints the table, the violations
 * and the seed, and ends with one JSON line. Exit status: 0 no violation, 1 violations, 2 bad usage,
 * 3 the harness itself failed.
 */
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ensureSeedImage } from '../support/images.js';
import { ChaosCluster, DEFAULT_TOPOLOGY } from './cluster.js';
import { SCENARIOS, scenarioNamed } from './faults/index.js';
import { runChaos } from './harness.js';
import { rootFirewall, teardownLeaks } from './leaks.js';
import { formatReport, jsonLine } from './report.js';
import { SafetyNet } from './safety.js';
import { INVARIANTS } from './violations.js';

/** DEFAULT_DURATION_S is how long faults are injected when --duration is not given. */
const DEFAULT_DURATION_S = 120;
/** MAX_DURATION_S bounds a run (faults only; convergence and clean-up come on top, bounded too). */
const MAX_DURATION_S = 3_600;

function usage(): string {
  return `usage: npm run chaos -- [--duration S] [--seed N] [--scenario NAME] [--keep]

  --duration S    seconds of fault injection (default ${DEFAULT_DURATION_S}, at most ${MAX_DURATION_S})
  --seed N        the seed of every random choice (default: random, printed); the same seed replays the schedule
  --scenario NAME one of: ${SCENARIOS.map((s) => s.name).join(', ')} (default all)
  --keep          leave the cluster up afterwards for inspection (remove it with deploy/local-cluster down --name NAME)

scenarios:
${SCENARIOS.map((s) => `  ${s.name.padEnd(14)} ${s.summary}`).join('\n')}

invariants:
${Object.entries(INVARIANTS).map(([k, v]) => `  ${k.padEnd(20)} ${v}`).join('\n')}
`;
}

interface Flags {
  durationS: number;
  seed: number;
  scenario: string;
  keep: boolean;
}

function parse(argv: string[]): Flags | string {
  const f: Flags = { durationS: DEFAULT_DURATION_S, seed: Math.floor(Math.random() * 2 ** 31), scenario: 'all', keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string | undefined => argv[++i];
    if (a === '--duration') f.durationS = Number(value());
    else if (a === '--seed') f.seed = Number(value());
    else if (a === '--scenario') f.scenario = value() ?? '';
    else if (a === '--keep') f.keep = true;
    else if (a === '-h' || a === '--help') return '';
    else return `unknown argument ${JSON.stringify(a)}`;
  }
  if (!Number.isFinite(f.durationS) || f.durationS < 1 || f.durationS > MAX_DURATION_S) return `--duration must be 1..${MAX_DURATION_S}`;
  if (!Number.isInteger(f.seed) || f.seed < 0 || f.seed >= 2 ** 32) return '--seed must be an integer 0..4294967295';
  if (!scenarioNamed(f.scenario)) return `unknown scenario ${JSON.stringify(f.scenario)}`;
  return f;
}

async function main(argv: string[]): Promise<number> {
  const flags = parse(argv);
  if (typeof flags === 'string') {
    process.stderr.write(`${flags ? `chaos: ${flags}\n\n` : ''}${usage()}`);
    return flags ? 2 : 0;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('chaos: must run as root (network namespaces, cgroups, iptables)\n');
    return 2;
  }
  const scenario = scenarioNamed(flags.scenario)!;
  const name = `chaos${process.pid % 100000}`;
  process.stdout.write(`chaos: scenario ${scenario.name}, seed ${flags.seed}, duration ${flags.durationS} s, cluster ${name}\n`);
  ensureSeedImage();
  const safety = new SafetyNet();
  safety.ownCluster(name);
  safety.installSignalHandlers();
  const firewallBefore = rootFirewall();
  const artifactsDir = join(tmpdir(), 'berth-chaos', `${scenario.name}-${flags.seed}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  let cluster: ChaosCluster | undefined;
  try {
    cluster = await ChaosCluster.up({ name, ...DEFAULT_TOPOLOGY });
    const idx = /10\.88\.(\d+)\.1/.exec(cluster.status.server)?.[1];
    const result = await runChaos(cluster, safety, { scenario, seed: flags.seed, durationS: flags.durationS, artifactsDir });
    const stoppedPids = result.faults.filter((f) => f.name.endsWith('-stop')).map((f) => Number(/pid (\d+)/.exec(f.target)?.[1] ?? 0)).filter((p) => p > 0);
    if (!flags.keep) {
      const down = await cluster.down();
      safety.ownCluster(undefined);
      if (down.code !== 0) process.stderr.write(`chaos: local-cluster down exited ${down.code}: ${down.stderr}\n`);
      result.checks['leak-after-teardown'] = 1;
      const leftovers = teardownLeaks(name, idx, firewallBefore, stoppedPids);
      result.violations.push(...leftovers.map((v) => ({ ...v, firstAtS: 0, lastAtS: 0, count: 1 })));
      result.excerpts.push(...leftovers.map(() => []));
    } else {
      safety.ownCluster(undefined);
      process.stdout.write(`chaos: cluster ${name} kept; remove it with deploy/local-cluster down --name ${name}\n`);
    }
    process.stdout.write(`${formatReport(result, name)}\n`);
    process.stdout.write(`${jsonLine(result)}\n`);
    return result.violations.length === 0 ? 0 : 1;
  } catch (err) {
    process.stderr.write(`chaos: the harness failed: ${(err as Error).stack ?? String(err)}\n`);
    process.stderr.write(`chaos: seed ${flags.seed} (replay: npm run chaos -- --scenario ${scenario.name} --seed ${flags.seed} --duration ${flags.durationS})\n`);
    if (!flags.keep) safety.abort();
    return 3;
  } finally {
    safety.uninstall();
    cluster?.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
