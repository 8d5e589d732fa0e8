/**
 * The runc side of the runtime benchmark: one OCI bundle whose config.json comes from
 * `runc spec`, edited to match what the berth shim does (namespaces, limits, writable overlay
 * rootfs), and a fresh overlay upper dir per run. Also the cgroup sweep both sides share.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdir, readFile, rm, mkdir, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { nowMs } from './report.js';

/** BenchLimits are the cgroup limits both paths apply. */
export interface BenchLimits {
  memoryBytes: number;
  cpuCores: number;
  pids: number;
}

/** CPU_PERIOD_US matches the shim's CFS period, so the same quota means the same share. */
const CPU_PERIOD_US = 100_000;
/** RUNC_TIMEOUT_MS bounds one `runc run` of /bin/true; far above any sane start-to-exit. */
const RUNC_TIMEOUT_MS = 30_000;

function check(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** runcVersion returns the first line of `runc --version`, throwing if runc cannot run. */
export function runcVersion(): string {
  return check('runc', ['--version']).split('\n')[0]!.trim();
}

/** RuncBundle runs /bin/true through `runc run` on an overlay of the image's layer dirs. */
export class RuncBundle {
  private readonly bundle: string;
  private readonly rootfs: string;
  private readonly stateRoot: string;
  private baseConfig: Record<string, any> = {};
  private mounted = false;
  private current: string | undefined;

  /**
   * runtime is the OCI runtime binary that runs the bundle: runc, or berth-runtime for column (b),
   * which reads the very same config.json; name keeps two instances' dirs apart.
   */
  constructor(private readonly workDir: string, private readonly lowerDirs: string[],
    private readonly limits: BenchLimits, private readonly cgroupParent: string,
    private readonly runtime = 'runc', private readonly name = 'runc') {
    this.bundle = join(workDir, `${name}-bundle`);
    this.rootfs = join(this.bundle, 'rootfs');
    this.stateRoot = join(workDir, `${name}-state`);
  }

  /** prepare writes the base config with `runc spec` and edits it as JSON. */
  async prepare(): Promise<void> {
    await mkdir(this.rootfs, { recursive: true });
    await mkdir(this.stateRoot, { recursive: true });
    check('runc', ['spec', '--bundle', this.bundle]);
    const cfg = JSON.parse(await readFile(join(this.bundle, 'config.json'), 'utf8')) as Record<string, any>;
    cfg.process.terminal = false;
    cfg.process.args = ['/bin/true'];
    cfg.process.env = ['PATH=/bin'];
    cfg.process.cwd = '/';
    // The shim's rootfs is a writable overlay; runc's default is read-only.
    cfg.root = { path: 'rootfs', readonly: false };
    cfg.hostname = 'bench';
    // The shim unshares pid, mount, uts, ipc, net and (after joining its cgroup) cgroup.
    cfg.linux.namespaces = ['pid', 'network', 'ipc', 'uts', 'mount', 'cgroup'].map((type) => ({ type }));
    cfg.linux.resources = {
      ...cfg.linux.resources,
      memory: { limit: this.limits.memoryBytes },
      cpu: { quota: Math.round(this.limits.cpuCores * CPU_PERIOD_US), period: CPU_PERIOD_US },
      pids: { limit: this.limits.pids },
    };
    this.baseConfig = cfg;
  }

  /**
   * runOnce mounts a fresh overlay (untimed), then times `runc run` from spawn to runc's exit,
   * which is after runc has reaped /bin/true and deleted the container and its cgroup.
   */
  async runOnce(index: number): Promise<number> {
    const id = `${this.name}-${index}`;
    const upper = join(this.workDir, `${this.name}-upper`, id);
    await mkdir(join(upper, 'upper'), { recursive: true });
    await mkdir(join(upper, 'work'), { recursive: true });
    const cfg = structuredClone(this.baseConfig);
    cfg.linux.cgroupsPath = `/${this.cgroupParent}/${id}`;
    await writeFile(join(this.bundle, 'config.json'), JSON.stringify(cfg));
    const opts = `lowerdir=${this.lowerDirs.join(':')},upperdir=${join(upper, 'upper')},workdir=${join(upper, 'work')}`;
    check('mount', ['-t', 'overlay', 'overlay', '-o', opts, this.rootfs]);
    this.mounted = true;
    this.current = id;
    try {
      const t0 = nowMs();
      const { code, stderr } = await runProcess(this.runtime, ['--root', this.stateRoot, 'run', '--bundle', this.bundle, id]);
      const elapsed = nowMs() - t0;
      if (code !== 0) throw new Error(`${this.runtime} run ${id} exited ${code}: ${stderr.trim()}`);
      this.current = undefined;
      return elapsed;
    } finally {
      this.unmount();
      await rm(upper, { recursive: true, force: true });
    }
  }

  /** cleanup force-deletes a container a failed run left behind and unmounts the rootfs. */
  async cleanup(): Promise<void> {
    if (this.current) {
      spawnSync(this.runtime, ['--root', this.stateRoot, 'delete', '--force', this.current], { timeout: 10_000 });
      this.current = undefined;
    }
    this.unmount();
  }

  private unmount(): void {
    if (!this.mounted) return;
    // Lazy, so a process still holding the rootfs cannot make cleanup fail.
    spawnSync('umount', ['-l', this.rootfs], { timeout: 10_000 });
    this.mounted = false;
  }
}

function runProcess(cmd: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), RUNC_TIMEOUT_MS);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128 + (sig ? 9 : 0), stderr });
    });
  });
}

async function sweep(dir: string): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) await sweep(join(dir, e.name));
  // A leftover process (a container that outlived a failed run) would keep the dir busy.
  const procs = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
  for (const pid of procs.split('\n').filter(Boolean)) {
    try { process.kill(Number(pid), 'SIGKILL'); } catch { /* already gone */ }
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * removeCgroupTree removes `<root>/<hierarchy>/<parent>` bottom-up in every mounted hierarchy:
 * runc joins every v1 controller (devices, freezer, ...), not just the limited ones.
 */
export async function removeCgroupTree(parent: string, root = '/sys/fs/cgroup'): Promise<void> {
  const hierarchies = await readdir(root).catch(() => [] as string[]);
  for (const h of hierarchies) await sweep(join(root, h, parent));
}
