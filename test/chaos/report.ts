/**
 * The run's report: a readable table (faults, operations, invariants with their checks and
 * violations, convergence), every violation with its objects, the seed to replay it and the log
 * lines of the control planes and agents that mention those objects, then one JSON line.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { OpRecord } from './workload.js';
import { INVARIANTS, type InvariantName, type Violation, type Violations } from './violations.js';

/** FaultRecord is one fault as run. */
export interface FaultRecord {
  name: string;
  target: string;
  atS: number;
  heldS: number;
  healed: boolean;
  notes: string[];
}

/** ChaosResult is everything one run produced. */
export interface ChaosResult {
  scenario: string;
  seed: number;
  durationS: number;
  faults: FaultRecord[];
  operations: OpRecord[];
  violations: Violation[];
  checks: Record<string, number>;
  convergeS: number | null;
  convergeBoundS: number;
  historyRevisions: number;
  historyGaps: number;
  apiSamples: number;
  apiErrors: number;
  hostSamples: number;
  /** artifacts is where the logs were copied, if anywhere. */
  artifacts?: string;
  /** excerpts maps a violation index to the log lines that mention its objects. */
  excerpts: string[][];
}

/** replayCommand is how to run the same schedule again. */
export function replayCommand(r: Pick<ChaosResult, 'scenario' | 'seed' | 'durationS'>): string {
  return `npm run chaos -- --scenario ${r.scenario} --seed ${r.seed} --duration ${r.durationS}`;
}

/** checksOf turns the recorder's counters into a plain record for the result. */
export function checksOf(v: Violations): Record<string, number> {
  return Object.fromEntries((Object.keys(INVARIANTS) as InvariantName[]).map((k) => [k, v.checks(k)]));
}

/**
 * tokensOf picks the searchable names out of a violation's objects: uids and container ids,
 * addresses, and task or service names (never node names, which are on nearly every line).
 */
function tokensOf(v: Violation): string[] {
  const out = new Set<string>();
  for (const o of v.objects) {
    for (const m of o.matchAll(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g)) out.add(m[0]);
    for (const m of o.matchAll(/\b\d+\.\d+\.\d+\.\d+\b/g)) out.add(m[0]);
    for (const m of o.matchAll(/\b(?:task|service)\s+(?:[a-z0-9-]+\/)?([a-z0-9]+(?:-[a-z0-9]+)+)/g)) out.add(m[1]!);
  }
  return [...out];
}

/** logExcerpts finds up to max log lines in the files that mention any object of v, oldest first. */
export function logExcerpts(v: Violation, logFiles: readonly string[], max = 14): string[] {
  const tokens = tokensOf(v);
  if (tokens.length === 0) return [];
  const hits: string[] = [];
  for (const file of logFiles) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) if (tokens.some((t) => line.includes(t))) hits.push(`${basename(file)}: ${line.slice(0, 400)}`);
  }
  // Log lines start with an ISO time after the file name: sort on it, keep the last ones.
  const at = (l: string): string => l.slice(l.indexOf(': ') + 2, l.indexOf(': ') + 26);
  return hits.sort((a, b) => at(a).localeCompare(at(b))).slice(-max);
}

/** copyLogs copies the cluster's logs (control planes, agents, proxy, etcd members) into dir. */
export function copyLogs(runDir: string, etcdLogs: readonly string[], dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const copied: string[] = [];
  const files = existsSync(runDir) ? readdirSync(runDir).filter((f) => f.endsWith('.log')).map((f) => join(runDir, f)) : [];
  for (const f of [...files, ...etcdLogs]) {
    try {
      const to = join(dir, basename(f));
      copyFileSync(f, to);
      copied.push(to);
    } catch {
      // a log that never existed (a component that was not started)
    }
  }
  return copied;
}

function pad(s: string | number, n: number): string {
  return String(s).padEnd(n);
}

/** formatReport renders the table and the violations (everything but the JSON line). */
export function formatReport(r: ChaosResult, clusterName: string): string {
  const lines: string[] = [];
  lines.push(`chaos: scenario ${r.scenario}, seed ${r.seed}, ${r.durationS} s of faults, cluster ${clusterName}`);
  lines.push('');
  lines.push(`${pad('fault', 18)}${pad('target', 44)}${pad('at s', 8)}${pad('held s', 8)}notes`);
  for (const f of r.faults) lines.push(`${pad(f.name, 18)}${pad(f.target, 44)}${pad(f.atS.toFixed(1), 8)}${pad(f.heldS.toFixed(1), 8)}${f.healed ? '' : 'NOT HEALED '}${f.notes.join('; ')}`);
  lines.push('');
  const kinds = ['create', 'scale', 'update', 'delete'] as const;
  lines.push(`${pad('operation', 18)}${pad('ok', 8)}${pad('failed', 8)}unknown`);
  for (const k of kinds) {
    const ops = r.operations.filter((o) => o.kind === k);
    lines.push(`${pad(k, 18)}${pad(ops.filter((o) => o.outcome === 'ok').length, 8)}${pad(ops.filter((o) => o.outcome === 'failed').length, 8)}${ops.filter((o) => o.outcome === 'unknown').length}`);
  }
  lines.push('');
  lines.push(`${pad('invariant', 22)}${pad('checks', 10)}violations`);
  for (const k of Object.keys(INVARIANTS) as InvariantName[]) {
    lines.push(`${pad(k, 22)}${pad(r.checks[k] ?? 0, 10)}${r.violations.filter((v) => v.invariant === k).length}`);
  }
  lines.push('');
  lines.push(`etcd history: ${r.historyRevisions} revisions checked, ${r.historyGaps} gaps; api samples ${r.apiSamples} (${r.apiErrors} failed on every replica); host samples ${r.hostSamples}`);
  lines.push(r.convergeS === null ? `convergence: NOT reached within ${r.convergeBoundS} s` : `convergence: ${r.convergeS.toFixed(1)} s after the last fault was healed and the workload stopped (bound ${r.convergeBoundS} s)`);
  if (r.artifacts) lines.push(`logs copied to ${r.artifacts}`);
  r.violations.forEach((v, i) => {
    lines.push('');
    lines.push(`VIOLATION ${i + 1}: ${v.invariant} — ${INVARIANTS[v.invariant]}`);
    lines.push(`  seen ${v.count}x from ${v.firstAtS.toFixed(1)} s to ${v.lastAtS.toFixed(1)} s, by ${v.source}`);
    lines.push(`  ${v.message}`);
    for (const o of v.objects.slice(0, 20)) lines.push(`  - ${o}`);
    if (v.objects.length > 20) lines.push(`  - ... ${v.objects.length - 20} more`);
    lines.push(`  replay: ${replayCommand(r)}`);
    const ex = r.excerpts[i] ?? [];
    if (ex.length) lines.push('  log lines naming these objects:', ...ex.map((l) => `    ${l}`));
  });
  lines.push('');
  lines.push(`seed ${r.seed} (replay: ${replayCommand(r)})`);
  return lines.join('\n');
}

/** jsonLine is the final machine-readable line. */
export function jsonLine(r: ChaosResult): string {
  return JSON.stringify({
    chaos: r.scenario, seed: r.seed, duration_s: r.durationS, faults: r.faults.length, operations: r.operations.length,
    violations: r.violations.length, converge_s: r.convergeS === null ? null : Number(r.convergeS.toFixed(1)), converge_bound_s: r.convergeBoundS,
  });
}
