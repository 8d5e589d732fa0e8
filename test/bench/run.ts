/**
 * The benchmark dispatcher: `node dist/test/bench/run.js NAME [args]` (or `npm run bench -- NAME`).
 * Benchmarks are registered here explicitly; importing a bench module has no side effects.
 */
import { applyBench } from './apply.js';
import { densityBench } from './density.js';
import { imagesBench } from './images.js';
import { networkBench } from './network.js';
import { FlagError, type Bench } from './report.js';
import { runtimeBench } from './runtime.js';
import { schedulerBench } from './scheduler.js';

/** BENCHES lists every benchmark by name. */
const BENCHES: Bench[] = [runtimeBench, densityBench, applyBench, imagesBench, schedulerBench, networkBench];

function listBenches(): string {
  const lines = BENCHES.map((b) => `  ${b.name.padEnd(10)} ${b.summary}\n  ${' '.repeat(10)} usage: ${b.usage}`);
  return `usage: npm run bench -- NAME [args]\n\navailable benchmarks:\n${lines.join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const bench = BENCHES.find((b) => b.name === name);
  if (!bench) {
    if (name !== undefined) process.stderr.write(`unknown benchmark ${JSON.stringify(name)}\n\n`);
    process.stderr.write(listBenches());
    return 2;
  }
  try {
    await bench.run(rest);
    return 0;
  } catch (err) {
    if (err instanceof FlagError) {
      process.stderr.write(`bench ${bench.name}: ${err.message}\nusage: ${bench.usage}\n`);
      return 2;
    }
    process.stderr.write(`bench ${bench.name} failed: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
