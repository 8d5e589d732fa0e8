/**
 * Interactive exec through `berth-shim --exec-stream DIR PID` (native/src/lib/exec_io.h): the
 * helper's fds 0-2 are the command's stdio (with a tty, the pty's master behind fds 0 and 1),
 * fd 3 carries the request up to an empty line and then control lines (`resize=ROWS COLS`,
 * `signal=SIGNO`; its end hangs the command up), fd 4 brings back one status line.
 *
 * The helper is spawned with node's child_process rather than the addon: the streams then come
 * with node's own back-pressure (a paused stdout stops reading the socket, the helper stops
 * reading the pty, the command blocks), which the addon would have to rebuild. It still runs
 * outside this process's threads: the helper joins the namespaces, never the agent.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

import { RuntimeError } from './errors.js';
import { encodeExecRequest, validateExecRequest } from './native-exec.js';
import type { ExecStream, ExecStreamExit, ExecStreamRequest } from './runtime.js';
import { signalNumber, type SignalLike } from './signals.js';

/** MAX_TERMINAL_SIZE is the largest rows or cols a terminal can have (a 16-bit winsize field). */
export const MAX_TERMINAL_SIZE = 65_535;
/** CONTROL_FD / STATUS_FD are the helper's control-in and status-out descriptors. */
const CONTROL_FD = 3;
const STATUS_FD = 4;
/** MAX_STATUS_BYTES bounds the one status line read back from the helper. */
const MAX_STATUS_BYTES = 4096;
/** SIGKILL is what kill() sends the helper; the command dies with it (PR_SET_PDEATHSIG). */
const SIGKILL = 9;

/** validateExecStreamRequest refuses what the helper would refuse, with the field named. */
export function validateExecStreamRequest(id: string, req: ExecStreamRequest): void {
  validateExecRequest(id, { args: req.args, ...(req.env ? { env: req.env } : {}), ...(req.cwd !== undefined ? { cwd: req.cwd } : {}) });
  for (const [name, v] of [['rows', req.rows], ['cols', req.cols]] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > MAX_TERMINAL_SIZE)) {
      throw new RuntimeError('BERTH_ERR_RUNTIME_INVALID_SPEC', `exec in ${id}: ${name} must be an integer from 0 to ${MAX_TERMINAL_SIZE}`);
    }
  }
}

/** encodeExecStreamRequest renders the request for fd 3, ended by the empty line. */
export function encodeExecStreamRequest(req: ExecStreamRequest): string {
  let text = encodeExecRequest({ args: req.args, ...(req.env ? { env: req.env } : {}), ...(req.cwd ? { cwd: req.cwd } : {}) });
  if (req.tty) {
    text += 'tty=1\n';
    if (req.rows && req.cols) text += `rows=${req.rows}\ncols=${req.cols}\n`;
  }
  return text + '\n';
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/**
 * parseExecStatus reads the helper's status line: `exit CODE SIGNAL` is the command's end,
 * `err\tERRNO\tSTEP\tPATH` a failure before it ran (ESRCH: the container is no longer running).
 */
export function parseExecStatus(id: string, text: string): ExecStreamExit | RuntimeError {
  const line = text.split('\n')[0] ?? '';
  const exit = /^exit (\d+) (\d+)$/.exec(line);
  if (exit) {
    const signal = Number(exit[2]);
    return { exitCode: Number(exit[1]), ...(signal ? { signal } : {}) };
  }
  const [tag, errnoText, step, path] = line.split('\t');
  if (tag === 'err' && errnoText !== undefined) {
    const errno = Number(errnoText);
    const errnoCode = ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
    const fields = { errnoCode, errno, step, path };
    if (errnoCode === 'ESRCH') return new RuntimeError('BERTH_ERR_RUNTIME_NOT_RUNNING', `container ${id} is not running`, fields);
    return new RuntimeError('BERTH_ERR_RUNTIME_EXEC', `exec in ${id}: ${step} ${path}: ${errnoCode}`, fields);
  }
  return new RuntimeError('BERTH_ERR_RUNTIME_EXEC', `exec in ${id}: the exec helper ended without a status${line ? ` (said "${line.slice(0, 200)}")` : ''}`);
}

/** startExecStream spawns the helper for a validated request against a running container's init pid. */
export function startExecStream(shimPath: string, containerDir: string, pid: number, id: string, req: ExecStreamRequest): ExecStream {
  // detached: the helper gets its own session, so a ^C on the agent's own terminal is not the command's.
  const child = spawn(shimPath, ['--exec-stream', containerDir, String(pid)], { stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'], detached: true });
  const stdin = child.stdin!;
  const stdout = child.stdout!;
  const stderr = child.stderr!;
  const control = child.stdio[CONTROL_FD] as NodeJS.WritableStream & { destroyed: boolean; on(ev: 'error', cb: () => void): unknown };
  const status = child.stdio[STATUS_FD] as NodeJS.ReadableStream;
  // A command that stops reading stdin, or exits, closes the far end: that is not the agent's error.
  stdin.on('error', () => undefined);
  control.on('error', () => undefined);
  let killed = false;
  const exit = new Promise<ExecStreamExit>((resolve, reject) => {
    let text = '';
    let statusDone = false;
    let exited = false;
    const settle = (): void => {
      if (!statusDone || !exited) return;
      const r = parseExecStatus(id, text);
      if (r instanceof RuntimeError && killed) resolve({ exitCode: 128 + SIGKILL, signal: SIGKILL });
      else if (r instanceof RuntimeError) reject(r);
      else resolve(r);
    };
    status.on('data', (b: Buffer) => { if (text.length < MAX_STATUS_BYTES) text += b.toString('utf8'); });
    status.on('error', () => undefined);
    status.on('close', () => { statusDone = true; settle(); });
    child.on('exit', () => { exited = true; settle(); });
    child.on('error', (err: NodeJS.ErrnoException) => {
      const code = err.code === 'ENOENT' ? 'BERTH_ERR_RUNTIME_NATIVE_MISSING' : 'BERTH_ERR_RUNTIME_EXEC';
      reject(new RuntimeError(code, `exec in ${id}: spawn ${shimPath}: ${err.message}`, { errnoCode: err.code }, err));
    });
  });
  // The request first; control lines written later queue behind it on the same socket.
  control.write(encodeExecStreamRequest(req));
  if (!req.stdin) stdin.end();
  const sendControl = (line: string): void => {
    if (!control.destroyed) control.write(`${line}\n`);
  };
  if (req.tty) stderr.resume();
  return {
    stdin,
    stdout,
    ...(req.tty ? {} : { stderr }),
    resize: (rows, cols) => {
      if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1 || rows > MAX_TERMINAL_SIZE || cols > MAX_TERMINAL_SIZE) return;
      sendControl(`resize=${rows} ${cols}`);
    },
    signal: (sig: SignalLike) => {
      const n = signalNumber(sig);
      if (n === undefined) throw new RuntimeError('BERTH_ERR_RUNTIME_INVALID_SPEC', `exec in ${id}: unknown signal ${JSON.stringify(sig)}`);
      sendControl(`signal=${n}`);
    },
    hangUp: () => control.end(),
    kill: () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      killed = true;
      child.kill('SIGKILL');
    },
    exit,
  };
}
