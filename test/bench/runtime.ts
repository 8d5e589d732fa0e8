/**
 * The `runtime` benchmark: start-to-exit latency of /bin/true in a busybox container with pid,
 * mount, uts, ipc, net (and cgroup) namespaces, an overlay rootfs and memory/cpu/pids limits,
 * through (a) the native addon path the agent uses, (b) `berth-runtime run` and (c) `runc run`,
 * interleaved a, b, c, a, b, c so all see the same background noise. (b) and (c) run the very
 * same config.json (from `runc spec`, edited) on the same kind of overlay rootfs. Then, unless
 * --no-density, the density bench (density.ts) runs and its figures join the final JSON line.
 */
import { existsSync, watch } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ImageStore } from '../../agent/images/index.js';
import { createRuntime, type ContainerSpec, type Runtime } from '../../agent/runtime/index.js';
import { ensureSeedImage, SEED_ARCHIVE } from '../support/images.js';
import { DEFAULT_CONTAINERS, densityJson, measureDensity, printDensity } from './density.js';
import { fmt, FlagError, nowMs, parseFlags, positiveInt, round, summarize, table, type Bench, type Summary } from './report.js';
import { removeCgroupTree, RuncBundle, runcVersion, type BenchLimits } from './runc-bundle.js';
import { REPO_ROOT } from '../support/cluster.js';

/** BERTH_RUNTIME is the OCI runtime CLI built by node-gyp (column (b)). */
const BERTH_RUNTIME = join(REPO_ROOT, 'native', 'build', 'Release', 'berth-runtime');

/** DEFAULT_RUNS is the number of measured runs per path. */
const DEFAULT_RUNS = 200;
/** WARMUP_RUNS per path are discarded: the first runs pay for page cache and lazy loading. */
const WARMUP_RUNS = 3;
/** EXIT_WAIT_MS bounds the wait for one container's exit record. */
const EXIT_WAIT_MS = 30_000;
/** EXIT_POLL_MS backs up the inotify watch in case an event is missed. */
const EXIT_POLL_MS = 5;
/** CGROUP_PARENT is the bench's own cgroup subtree, removed entirely at the end. */
const CGROUP_PARENT = 'berth-bench';
const LIMITS: BenchLimits = { memoryBytes: 64 * 1024 * 1024, cpuCores: 0.5, pids: 64 };
const ROOTFS_NOTE =
  'runc rootfs: an overlay of the same unpacked layer dir with a fresh upper per run, mounted before and unmounted ' +
  'after the timed interval (the shim mounts its overlay inside it, so runc is favoured by one mount(2)); chosen ' +
  'over a copied rootfs so both paths resolve /bin/true through the same overlayfs.';

interface AddonSample {
  runResolveMs: number;
  startToExitMs: number;
  removeMs: number;
}

/** waitForFile resolves with the monotonic time at which dir/name was first seen. */
function waitForFile(dir: string, name: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let done = false;
    const path = join(dir, name);
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      const at = nowMs();
      watcher?.close();
      clearInterval(poll);
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(at);
    };
    // The shim renames exit.tmp to exit, which inotify reports as a rename naming "exit".
    const watcher = (() => {
      try {
        return watch(dir, (_event, file) => { if (file === name) finish(); });
      } catch {
        return undefined;
      }
    })();
    const poll = setInterval(() => { if (existsSync(path)) finish(); }, EXIT_POLL_MS);
    const timer = setTimeout(() => finish(new Error(`${path} did not appear within ${timeoutMs} ms`)), timeoutMs);
    if (existsSync(path)) finish();
  });
}

class AddonPath {
  private readonly live = new Set<string>();

  constructor(private readonly rt: Runtime, private readonly stateDir: string, private readonly lowerDirs: string[]) {}

  async runOnce(index: number): Promise<AddonSample> {
    const id = `addon-${index}`;
    const spec: ContainerSpec = {
      id, hostname: 'bench', lowerDirs: this.lowerDirs, args: ['/bin/true'], env: ['PATH=/bin'], cwd: '/',
      uid: 0, gid: 0, limits: { ...LIMITS }, labels: { bench: 'runtime' },
    };
    this.live.add(id);
    const t0 = nowMs();
    const st = await this.rt.run(spec);
    const t1 = nowMs();
    const exitAt = await waitForFile(join(this.stateDir, 'containers', id), 'exit', EXIT_WAIT_MS);
    const final = await this.rt.state(id);
    if (final?.exitCode !== 0) throw new Error(`container ${id} (pid ${st.pid}) exited ${final?.exitCode}; see ${st.logPath}`);
    const t2 = nowMs();
    await this.rt.remove(id);
    this.live.delete(id);
    return { runResolveMs: t1 - t0, startToExitMs: exitAt - t0, removeMs: nowMs() - t2 };
  }

  async cleanup(): Promise<void> {
    for (const id of this.live) {
      await this.rt.stop(id, 0).catch(() => undefined);
      await this.rt.remove(id).catch(() => undefined);
    }
    this.live.clear();
  }
}

function row(label: string, s: Summary | undefined): string[] {
  if (!s) return [label, 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a'];
  return [label, String(s.count), fmt(s.p50), fmt(s.p90), fmt(s.p99), fmt(s.mean), fmt(s.max)];
}

/** LatencyFigures are the start-to-exit fields of the final JSON line. */
type LatencyFigures = Record<string, unknown>;

async function measure(runs: number): Promise<LatencyFigures> {
  if (process.getuid?.() !== 0) throw new Error('the runtime bench needs root (namespaces, mounts, cgroups)');
  const version = runcVersion();
  ensureSeedImage();
  const work = await mkdtemp(join(tmpdir(), 'berth-bench-runtime-'));
  const stateDir = join(work, 'addon-state');
  let addon: AddonPath | undefined;
  let runc: RuncBundle | undefined;
  let cli: RuncBundle | undefined;
  try {
    const images = new ImageStore({ root: join(work, 'images') });
    await images.init();
    const image = await images.resolve(`oci-archive:${SEED_ARCHIVE}`);
    const rt = createRuntime({ stateDir, cgroupParent: `${CGROUP_PARENT}/addon` });
    if (rt.cgroupVersion !== 'v1') process.stdout.write(`note: cgroup ${rt.cgroupVersion}; runc cgroupsPath semantics differ\n`);
    addon = new AddonPath(rt, stateDir, image.lowerDirs);
    runc = new RuncBundle(work, image.lowerDirs, LIMITS, `${CGROUP_PARENT}/runc`);
    await runc.prepare();
    if (!existsSync(BERTH_RUNTIME)) throw new Error(`${BERTH_RUNTIME} is missing: npx node-gyp rebuild --directory native`);
    cli = new RuncBundle(work, image.lowerDirs, LIMITS, `${CGROUP_PARENT}/cli`, BERTH_RUNTIME, 'cli');
    await cli.prepare();

    process.stdout.write(`runtime bench: ${runs} runs per path (+${WARMUP_RUNS} warm-up), interleaved addon/berth-runtime/runc; ${version}\n`);
    process.stdout.write(`image ${image.digest}, ${image.lowerDirs.length} layer(s); limits memory 64Mi, cpu 0.5, pids 64\n`);
    const a: AddonSample[] = [];
    const b: number[] = [];
    const c: number[] = [];
    for (let i = 0; i < WARMUP_RUNS + runs; i++) {
      const sa = await addon.runOnce(i);
      const sb = await cli.runOnce(i);
      const sc = await runc.runOnce(i);
      if (i < WARMUP_RUNS) continue;
      a.push(sa);
      b.push(sb);
      c.push(sc);
      if ((i - WARMUP_RUNS + 1) % 50 === 0) process.stdout.write(`  ${i - WARMUP_RUNS + 1}/${runs}\n`);
    }
    return report(runs, a, b, c);
  } finally {
    await addon?.cleanup().catch((err) => process.stderr.write(`cleanup (addon): ${String(err)}\n`));
    await runc?.cleanup().catch((err) => process.stderr.write(`cleanup (runc): ${String(err)}\n`));
    await cli?.cleanup().catch((err) => process.stderr.write(`cleanup (berth-runtime): ${String(err)}\n`));
    await removeCgroupTree(CGROUP_PARENT).catch((err) => process.stderr.write(`cleanup (cgroups): ${String(err)}\n`));
    await rm(work, { recursive: true, force: true });
  }
}

function report(runs: number, a: AddonSample[], b: number[], c: number[]): LatencyFigures {
  const cli = summarize(b);
  const addonExit = summarize(a.map((s) => s.startToExitMs));
  const addonRun = summarize(a.map((s) => s.runResolveMs));
  const addonRemove = summarize(a.map((s) => s.removeMs));
  const runc = summarize(c);
  const header = ['path (ms)', 'runs', 'p50', 'p90', 'p99', 'mean', 'max'];
  process.stdout.write('\n' + table(header, [
    row('(a) addon: run() start → exit seen', addonExit),
    row('    addon: run() resolved', addonRun),
    row('    addon: remove() (not in (a))', addonRemove),
    row('(b) berth-runtime run (spawn → exit)', cli),
    row('(c) runc run (spawn → runc exit)', runc),
  ]) + '\n\n');
  const ratio = addonExit.p50 / runc.p50;
  const ratioCli = cli.p50 / runc.p50;
  process.stdout.write(`ratio addon/runc (p50): ${fmt(ratio, 3)}   (mean: ${fmt(addonExit.mean / runc.mean, 3)})\n`);
  process.stdout.write(`ratio berth-runtime/runc (p50): ${fmt(ratioCli, 3)}   (mean: ${fmt(cli.mean / runc.mean, 3)})\n`);
  process.stdout.write(`${ROOTFS_NOTE}\n`);
  process.stdout.write('namespaces all paths: pid, mount, uts, ipc, net, cgroup; the shim and berth-runtime also bring up lo, runc (no hooks) does not. (b) parses the same config.json as (c).\n\n');
  return {
    bench: 'runtime',
    runs,
    p50_ms: { addon: round(addonExit.p50), cli: round(cli.p50), runc: round(runc.p50) },
    p90_ms: { addon: round(addonExit.p90), cli: round(cli.p90), runc: round(runc.p90) },
    p99_ms: { addon: round(addonExit.p99), cli: round(cli.p99), runc: round(runc.p99) },
    mean_ms: { addon: round(addonExit.mean), cli: round(cli.mean), runc: round(runc.mean) },
    addon_run_resolve_ms: { p50: round(addonRun.p50), p99: round(addonRun.p99) },
    ratio_addon_vs_runc: round(ratio, 3),
    ratio_cli_vs_runc: round(ratioCli, 3),
  };
}

/**
 * densityFigures runs the density bench after the latency runs (never during: 300 sleeping
 * containers would be background noise). A failure is reported in the JSON line instead of
 * losing the latency figures, and makes the bench exit 1.
 */
async function densityFigures(containers: number): Promise<Record<string, unknown>> {
  try {
    const r = await measureDensity(containers);
    printDensity(r);
    return densityJson(r);
  } catch (err) {
    process.stderr.write(`density failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
    return { containers, error: (err as Error).message };
  }
}

/** runtimeBench is registered in run.ts as `runtime`. */
export const runtimeBench: Bench = {
  name: 'runtime',
  summary: '/bin/true start-to-exit: addon vs berth-runtime vs runc, then density (needs root)',
  usage: `npm run bench -- runtime [--runs N] [--density N | --no-density]   (defaults 200, ${DEFAULT_CONTAINERS})`,
  async run(args) {
    const flags = parseFlags(args, ['runs', 'density'], ['no-density']);
    const runs = flags.has('runs') ? positiveInt('runs', flags.get('runs')!) : DEFAULT_RUNS;
    const containers = flags.has('density') ? positiveInt('density', flags.get('density')!) : DEFAULT_CONTAINERS;
    if (flags.has('no-density') && flags.has('density')) throw new FlagError('--density and --no-density exclude each other');
    const figures = await measure(runs);
    if (!flags.has('no-density')) figures.density = await densityFigures(containers);
    process.stdout.write(JSON.stringify(figures) + '\n');
  },
};
