/**
 * `berth exec -i/-t TASK -- COMMAND`: the interactive exec over the API's WebSocket (frames in
 * control-plane/api/exec-channels.ts). -i streams our stdin to the command; -t asks for a pty in
 * the container and, when our stdin is a terminal, puts it in raw mode (so ^C, ^Z and arrows go
 * to the command as bytes), sends our window size at the start and on every SIGWINCH, and
 * restores the terminal on every way out: the command's end, an error, a signal, a throw.
 * Without -t, a SIGINT or SIGTERM we receive is forwarded to the command instead of ending us.
 * The command's exit code becomes berth's; a request that fails is 1.
 *
 * Back-pressure: output is written to our stdout and the socket is paused until stdout drains;
 * stdin is paused while the socket holds more than STDIN_HIGH_WATER_BYTES unsent.
 */
import { WebSocket, type RawData } from 'ws';
import { decodeFrame, EXEC_CHANNEL, frame } from '../api/exec-channels.js';
import { clientOptions } from './config.js';
import type { CommandContext } from './context.js';
import { nsPath } from './context.js';
import { EXIT_REQUEST_FAILED } from './errors.js';

/** STDIN_HIGH_WATER_BYTES is the unsent stdin past which we stop reading our stdin. */
export const STDIN_HIGH_WATER_BYTES = 256 * 1024;
/** MAX_OUTPUT_FRAME_BYTES bounds one frame from the server (it sends at most 32 KiB). */
const MAX_OUTPUT_FRAME_BYTES = 1024 * 1024;
/** FORWARDED_SIGNALS are the signals we pass on to the command when we have no tty. */
const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const;
/** SIGNAL_EXIT is berth's own exit status when a signal ends it while the terminal is raw. */
const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129, SIGQUIT: 131 };

/** InteractiveOptions are the exec verb's -i/-t. */
export interface InteractiveOptions {
  stdin: boolean;
  tty: boolean;
}

/** TerminalLike is the part of a tty.ReadStream raw mode needs. */
interface TerminalLike {
  isTTY?: boolean;
  setRawMode?(raw: boolean): unknown;
}

/** OutputLike is a writable our output goes to; write() false means wait for 'drain'. */
interface OutputLike {
  write(chunk: Uint8Array | string): unknown;
  once?(event: 'drain', cb: () => void): unknown;
  isTTY?: boolean;
  rows?: number;
  columns?: number;
}

/** execStreamUrl is the WebSocket URL of the exec route for a command. */
export function execStreamUrl(server: string, namespace: string, task: string, command: string[], opts: InteractiveOptions & { rows?: number; cols?: number }): string {
  const base = server.replace(/^http/i, 'ws');
  const q = new URLSearchParams();
  for (const a of command) q.append('command', a);
  if (opts.stdin) q.set('stdin', '1');
  if (opts.tty) q.set('tty', '1');
  if (opts.tty && opts.rows && opts.cols) {
    q.set('rows', String(opts.rows));
    q.set('cols', String(opts.cols));
  }
  return `${base}${nsPath(namespace)}/tasks/${encodeURIComponent(task)}/exec?${q.toString()}`;
}

/** errorOfBody reads `{"error":{code,message}}` from a refused upgrade's body. */
export function errorOfBody(status: number, text: string): string {
  try {
    const e = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
    if (typeof e?.message === 'string') return `${e.message}${typeof e.code === 'string' ? ` (${e.code})` : ''}`;
  } catch {
    // not JSON: a proxy, or a server without this route
  }
  return `the server answered HTTP ${status}${text.trim() ? `: ${text.trim().slice(0, 200)}` : ''}`;
}

/** execInteractive runs command in task over the WebSocket and resolves to the command's exit code. */
export async function execInteractive(ctx: CommandContext, task: string, command: string[], opts: InteractiveOptions): Promise<number> {
  const io = ctx.io;
  const out = io.stdout as OutputLike;
  const err = io.stderr as OutputLike;
  const stdin = io.stdin as NodeJS.ReadableStream & TerminalLike;
  const c = clientOptions(ctx.connection);
  const size = (): { rows?: number; cols?: number } => (out.isTTY && out.rows && out.columns ? { rows: out.rows, cols: out.columns } : {});
  const url = execStreamUrl(ctx.client.server, ctx.namespace, task, command, { ...opts, ...size() });
  const ws = new WebSocket(url, {
    ...(c.ca ? { ca: c.ca } : {}), ...(c.cert ? { cert: c.cert } : {}), ...(c.key ? { key: c.key } : {}),
    headers: c.token ? { authorization: `Bearer ${c.token}` } : {},
    maxPayload: MAX_OUTPUT_FRAME_BYTES, perMessageDeflate: false,
  });
  const raw = opts.tty && opts.stdin && stdin.isTTY === true && typeof stdin.setRawMode === 'function';
  const cleanups: Array<() => void> = [];
  const cleanup = (): void => {
    for (const f of cleanups.splice(0).reverse()) {
      try {
        f();
      } catch {
        // restoring must go on with the next step whatever this one did
      }
    }
  };
  try {
    return await new Promise<number>((resolve) => {
      let done = false;
      const finish = (code: number, message?: string): void => {
        if (done) return;
        done = true;
        cleanup();
        if (message) err.write(`error: ${message}\n`);
        if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.terminate();
        resolve(code);
      };
      ws.on('unexpected-response', (_req, res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (s: string) => { if (text.length < 64 * 1024) text += s; });
        res.on('end', () => finish(EXIT_REQUEST_FAILED, errorOfBody(res.statusCode ?? 0, text)));
        res.on('error', () => finish(EXIT_REQUEST_FAILED, errorOfBody(res.statusCode ?? 0, text)));
      });
      ws.on('error', (e: Error) => finish(EXIT_REQUEST_FAILED, `cannot reach the control plane at ${ctx.client.server}: ${e.message}`));
      ws.on('close', (code: number, reason: Buffer) => finish(EXIT_REQUEST_FAILED,
        `the connection closed before the command ended (${code}${reason.length ? ` ${reason.toString()}` : ''})`));
      ws.on('open', () => {
        if (raw) {
          stdin.setRawMode!(true);
          cleanups.push(() => stdin.setRawMode!(false));
          // A last resort for a path that never reaches cleanup (process.exit elsewhere).
          const restore = (): void => { stdin.setRawMode!(false); };
          process.once('exit', restore);
          cleanups.push(() => process.off('exit', restore));
        }
        if (opts.tty && out.isTTY) {
          const onResize = (): void => {
            const s = size();
            if (s.rows && s.cols) ws.send(frame(EXEC_CHANNEL.resize, JSON.stringify({ rows: s.rows, cols: s.cols })));
          };
          process.on('SIGWINCH', onResize);
          cleanups.push(() => process.off('SIGWINCH', onResize));
        }
        for (const sig of FORWARDED_SIGNALS) {
          // With a raw terminal the keys are bytes; a signal from elsewhere ends us, terminal restored.
          const onSignal = raw ? () => finish(SIGNAL_EXIT[sig] ?? EXIT_REQUEST_FAILED) : () => ws.send(frame(EXEC_CHANNEL.signal, sig));
          process.on(sig, onSignal);
          cleanups.push(() => process.off(sig, onSignal));
        }
        if (opts.stdin) pumpStdin(stdin, ws, cleanups);
      });
      ws.on('message', (data: RawData, isBinary: boolean) => {
        const f = isBinary ? decodeFrame(toBuffer(data)) : 'a text frame';
        if (typeof f === 'string') return finish(EXIT_REQUEST_FAILED, `the server broke the exec protocol: ${f}`);
        if (f.channel === EXEC_CHANNEL.stdout || f.channel === EXEC_CHANNEL.stderr) {
          const target = f.channel === EXEC_CHANNEL.stdout ? out : err;
          if (target.write(f.data) === false && target.once) {
            ws.pause();
            target.once('drain', () => ws.resume());
          }
          return;
        }
        if (f.channel === EXEC_CHANNEL.status) {
          if ('exitCode' in f.status) return finish(f.status.exitCode);
          return finish(EXIT_REQUEST_FAILED, `${f.status.error.message} (${f.status.error.code})`);
        }
      });
    });
  } finally {
    cleanup();
  }
}

/** pumpStdin sends our stdin as stdin frames, pausing it while the socket is full; its end is EOF. */
function pumpStdin(stdin: NodeJS.ReadableStream, ws: WebSocket, cleanups: Array<() => void>): void {
  const onData = (chunk: Buffer | string): void => {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (ws.readyState !== ws.OPEN) return;
    ws.send(frame(EXEC_CHANNEL.stdin, b), () => {
      if (ws.bufferedAmount <= STDIN_HIGH_WATER_BYTES / 2 && stdin.isPaused()) stdin.resume();
    });
    if (ws.bufferedAmount > STDIN_HIGH_WATER_BYTES) stdin.pause();
  };
  const onEnd = (): void => {
    if (ws.readyState === ws.OPEN) ws.send(frame(EXEC_CHANNEL.stdin));
  };
  stdin.on('data', onData);
  stdin.once('end', onEnd);
  stdin.resume();
  cleanups.push(() => {
    stdin.off('data', onData);
    stdin.off('end', onEnd);
    stdin.pause();
  });
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
