/**
 * Interactive exec against real containers of the native runtime: stdin, a pty made inside the
 * container, resize, ^C and signals, exit codes, and back-pressure from a reader that stops.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';

import { NativeRuntime } from '../../agent/runtime/native-runtime.js';
import type { ContainerSpec, ExecStream, ExecStreamRequest } from '../../agent/runtime/runtime.js';
import { removeCgroupParent } from '../support/cgroups.js';
import { waitFor } from '../support/cluster.js';
import { addBusybox, BUSYBOX, removeContainers } from '../support/runtime.js';

const APPLETS = ['sh', 'sleep', 'cat', 'tty', 'stty', 'head', 'echo', 'id'];
const WAIT_LIMIT_MS = 15_000;
/** FLOOD_BYTES is far more than every buffer on the way holds together (pipe, pump, socket). */
const FLOOD_BYTES = 64 * 1024 * 1024;
/** BUFFER_BOUND_BYTES is what the agent may hold for a reader that stopped: a window, not the flood. */
const BUFFER_BOUND_BYTES = 1024 * 1024;
/** WRITE_SYSCALL is write(2)'s number, as /proc/PID/syscall shows a process blocked in it. */
const WRITE_SYSCALL: Record<string, string> = { x64: '1', arm64: '64' };
const canRun = process.getuid?.() === 0 && existsSync(BUSYBOX);

/** Output collects a stream's bytes and lets a test wait for some text in them. */
class Output {
  text = '';
  constructor(stream: Readable | undefined) {
    stream?.on('data', (b: Buffer) => { this.text += b.toString('latin1'); });
  }
  until(want: string | RegExp): Promise<string> {
    const seen = (): boolean => (typeof want === 'string' ? this.text.includes(want) : want.test(this.text));
    return waitFor(() => (seen() ? this.text : undefined), WAIT_LIMIT_MS, () => `expected ${String(want)} in the output, saw ${JSON.stringify(this.text)}`, 20);
  }
}

describe('interactive exec (execStream)', { skip: !canRun && 'needs root and busybox-static' }, () => {
  const cgroupParent = `berth-exec-tty-test-${process.pid}`;
  let work: string;
  let rootfs: string;
  let rt: NativeRuntime;
  const started = new Set<string>();
  const streams: ExecStream[] = [];

  const spec = (id: string, args: string[]): ContainerSpec => ({
    id, hostname: `box-${id}`, lowerDirs: [rootfs], args, env: ['PATH=/bin'], cwd: '/', uid: 0, gid: 0,
    limits: { pids: 32 }, labels: { test: 'exec-tty' },
  });
  const exec = async (req: Partial<ExecStreamRequest> & { args: string[] }): Promise<ExecStream> => {
    const s = await rt.execStream('target', { tty: false, stdin: false, ...req });
    streams.push(s);
    return s;
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-exec-tty-'));
    rootfs = join(work, 'rootfs');
    await mkdir(join(rootfs, 'bin'), { recursive: true });
    await mkdir(join(rootfs, 'tmp'));
    await addBusybox(rootfs, APPLETS);
    rt = new NativeRuntime({ stateDir: join(work, 'state'), cgroupParent });
    started.add('target');
    await rt.run(spec('target', ['sleep', '100000']));
  });

  after(async () => {
    // A test that failed half-way leaves its command running: its helper's death takes it along.
    for (const s of streams) s.kill();
    await Promise.allSettled(streams.map((s) => s.exit));
    await removeContainers(rt, started);
    await removeCgroupParent(cgroupParent);
    await rm(work, { recursive: true, force: true });
  });

  it('gives the command a pty of the container\'s own devpts as its controlling terminal', async () => {
    const s = await exec({ args: ['sh', '-c', 'tty; [ -t 0 ] && echo stdin-is-a-tty'], tty: true, rows: 24, cols: 80 });
    assert.equal(s.stderr, undefined, 'no separate stderr with a tty');
    const out = new Output(s.stdout);
    const exit = await s.exit;
    await out.until('stdin-is-a-tty');
    assert.match(out.text, /^\/dev\/pts\/\d+\r\n/, `tty printed ${JSON.stringify(out.text)}`);
    assert.deepEqual(exit, { exitCode: 0 });
  });

  it('streams stdin to the command and ends it with EOF when stdin ends', async () => {
    const s = await exec({ args: ['cat'], stdin: true });
    const out = new Output(s.stdout);
    s.stdin.write('hello\n');
    await out.until('hello\n');
    s.stdin.end('world\n');
    assert.deepEqual(await s.exit, { exitCode: 0 });
    await out.until('hello\nworld\n');
  });

  it('sets the first window size and changes it on resize', async () => {
    const s = await exec({ args: ['sh', '-c', 'stty size; read x; stty size'], tty: true, stdin: true, rows: 24, cols: 80 });
    const out = new Output(s.stdout);
    await out.until('24 80');
    s.resize(50, 132);
    s.stdin.write('go\n');
    await out.until('50 132');
    assert.deepEqual(await s.exit, { exitCode: 0 });
  });

  it('a ^C typed on the terminal interrupts the command: exit 130', async () => {
    const s = await exec({ args: ['sleep', '100'], tty: true, stdin: true });
    s.stdin.write('\x03');
    assert.deepEqual(await s.exit, { exitCode: 130, signal: 2 });
  });

  it('a signal without a tty reaches the command: SIGINT ends sleep with 130', async () => {
    const s = await exec({ args: ['sleep', '100'] });
    s.signal('SIGINT');
    assert.deepEqual(await s.exit, { exitCode: 130, signal: 2 });
  });

  it('keeps the command\'s exit code and its stderr apart from stdout', async () => {
    const s = await exec({ args: ['sh', '-c', 'echo out; echo err >&2; exit 7'] });
    const out = new Output(s.stdout);
    const err = new Output(s.stderr);
    assert.deepEqual(await s.exit, { exitCode: 7 });
    await out.until('out\n');
    await err.until('err\n');
    assert.equal(out.text, 'out\n');
  });

  it('a command that cannot be executed exits 127 and says why', async () => {
    const s = await exec({ args: ['no-such-command'] });
    const err = new Output(s.stderr);
    assert.deepEqual(await s.exit, { exitCode: 127 });
    await err.until(/no-such-command.*ENOENT/);
  });

  it('a reader that stops reading stops the command instead of growing the agent\'s memory', async (t) => {
    const write = WRITE_SYSCALL[process.arch];
    if (write === undefined) return t.skip(`no write(2) number for ${process.arch}`);
    const s = await exec({ args: ['head', '-c', String(FLOOD_BYTES), '/dev/zero'] });
    s.stdout.pause();
    const pid = await waitFor(async () => findPid(String(FLOOD_BYTES)), WAIT_LIMIT_MS, () => 'the head process to appear', 20);
    // Blocked in write(2): nothing downstream takes its bytes any more.
    await waitFor(async () => {
      const sys = await readFile(`/proc/${pid}/syscall`, 'utf8').catch(() => '');
      return sys.split(' ')[0] === write ? true : undefined;
    }, WAIT_LIMIT_MS, () => `head (pid ${pid}) to block in write(2)`, 20);
    const written = Number(/wchar: (\d+)/.exec(await readFile(`/proc/${pid}/io`, 'utf8'))?.[1]);
    assert.ok(written < FLOOD_BYTES, `head stopped early: wrote ${written} of ${FLOOD_BYTES} bytes`);
    assert.ok(s.stdout.readableLength <= BUFFER_BOUND_BYTES,
      `expected at most ${BUFFER_BOUND_BYTES} bytes buffered in the agent, saw ${s.stdout.readableLength}`);
    let total = 0;
    s.stdout.on('data', (b: Buffer) => { total += b.length; });
    s.stdout.resume();
    assert.deepEqual(await s.exit, { exitCode: 0 });
    await waitFor(() => (total === FLOOD_BYTES ? true : undefined), WAIT_LIMIT_MS, () => `expected ${FLOOD_BYTES} bytes, got ${total}`, 20);
  });

  it('refuses a container that is not running, and a bad window size', async () => {
    await assert.rejects(rt.execStream('nope', { args: ['true'], tty: false, stdin: false }), { code: 'BERTH_ERR_RUNTIME_NOT_RUNNING' });
    await assert.rejects(rt.execStream('target', { args: ['sh'], tty: true, stdin: true, rows: 70_000, cols: 80 }), { code: 'BERTH_ERR_RUNTIME_INVALID_SPEC' });
  });
});

/** findPid finds the one process whose command line has marker (an argument no other has). */
async function findPid(marker: string): Promise<number | undefined> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const args = argv.split('\0');
    if (args[0] === 'head' && args.includes(marker)) return Number(entry);
  }
  return undefined;
}
