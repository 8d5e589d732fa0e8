/**
 * What every benchmark shares: the module shape run.ts registers, flag parsing, percentiles and
 * the plain-text table. Benchmarks print a table for people and one final JSON line for tools.
 */

/** Bench is one benchmark; run() owns its cleanup and prints its own table and JSON line. */
export interface Bench {
  name: string;
  summary: string;
  usage: string;
  run(args: string[]): Promise<void>;
}

/** Summary holds the usual latency figures of one sample set, in milliseconds. */
export interface Summary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** percentile uses the nearest-rank method, so every figure is a latency that was observed. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** summarize computes p50/p90/p99/mean/min/max of samples. */
export function summarize(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = sorted.reduce((s, v) => s + v, 0) / Math.max(1, sorted.length);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    mean: sorted.length ? mean : NaN,
    min: sorted[0] ?? NaN,
    max: sorted[sorted.length - 1] ?? NaN,
  };
}

/** round keeps figures readable in JSON: two decimals, NaN becomes null. */
export function round(value: number, decimals = 2): number | null {
  if (!Number.isFinite(value)) return null;
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}

/** table renders rows as left-aligned, space-padded columns under a header and a rule. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** fmt prints a number with a fixed number of decimals, or "n/a". */
export function fmt(value: number | null | undefined, decimals = 2): string {
  return value === null || value === undefined || !Number.isFinite(value) ? 'n/a' : value.toFixed(decimals);
}

/** FlagError is a usage mistake: run.ts prints it with the bench's usage and exits 2. */
export class FlagError extends Error {}

/**
 * parseFlags reads `--name value` and `--name=value` pairs; every flag must be in allowed and
 * carry a value, so a typo fails loudly instead of silently running the defaults. Names in
 * switches take no value and map to "true".
 */
export function parseFlags(args: string[], allowed: string[], switches: string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) throw new FlagError(`unexpected argument ${JSON.stringify(arg)}`);
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    if (switches.includes(name)) {
      if (eq > 0) throw new FlagError(`--${name} takes no value`);
      out.set(name, 'true');
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
    if (!allowed.includes(name)) throw new FlagError(`unknown flag --${name}`);
    if (value === undefined || value === '') throw new FlagError(`--${name} needs a value`);
    out.set(name, value);
  }
  return out;
}

/** positiveInt parses a flag value that must be a whole number ≥ 1. */
export function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new FlagError(`--${flag} must be a whole number ≥ 1, got ${JSON.stringify(value)}`);
  return n;
}

/** nowMs is a monotonic clock in milliseconds (wall-clock jumps must not bend latencies). */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
