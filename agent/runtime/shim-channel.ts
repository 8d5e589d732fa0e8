/**
 * The agent's end of a shim's control channel, `<container dir>/shim.sock` (the protocol is in
 * native/src/lib/control.h). The shim is the container init's parent, so it alone can signal the
 * init without a PID race (through a pidfd it opened while the init was its unreaped child), and
 * it sees the exit first: kill goes through it and it pushes the exit. Nothing here signals a PID.
 */
import { constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';

/** SHIM_SOCKET is the control socket's name in the container dir. */
export const SHIM_SOCKET = 'shim.sock';
/** SHIM_REQUEST_TIMEOUT_MS bounds one request's round trip; a live shim answers in microseconds. */
export const SHIM_REQUEST_TIMEOUT_MS = 5_000;
/** MAX_SUN_PATH_BYTES is the longest path a unix socket address holds (sun_path less its NUL). */
const MAX_SUN_PATH_BYTES = 107;
/** MAX_LINE_BYTES bounds one line from the shim; its longest is an `exit` line of a few bytes. */
const MAX_LINE_BYTES = 256;

/** ShimExit is how the container ended, as the shim pushed it. */
export interface ShimExit {
  exitCode: number;
  /** signal killed the command (exitCode is then 128 + signal); 0 when it exited. */
  signal: number;
  oomKilled: boolean;
}

/** KillOutcome: the shim signalled the init, or the init had already exited and nothing was signalled. */
export type KillOutcome = 'signalled' | 'exited';

interface Pending {
  resolve(line: string): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** parseExitLine reads `exit <code> <signal> <0|1>`; undefined for anything else. */
export function parseExitLine(line: string): ShimExit | undefined {
  const m = /^exit (\d{1,3}) (\d{1,2}) ([01])$/.exec(line);
  return m ? { exitCode: Number(m[1]), signal: Number(m[2]), oomKilled: m[3] === '1' } : undefined;
}

/**
 * ShimChannel is one connection to one container's shim. It keeps the process alive only while
 * someone awaits it (a request, or a wait not yet answered), like a timer would.
 */
export class ShimChannel {
  /** closed resolves once the connection is gone (the shim exited, or close() was called). */
  readonly closed: Promise<void>;
  private readonly pending: Pending[] = [];
  private buffer = '';
  private exit?: ShimExit;
  private exitPromise?: Promise<ShimExit | undefined>;
  private settleExit?: (exit: ShimExit | undefined) => void;
  private isClosed = false;
  private exitSettled = false;

  private constructor(private readonly socket: Socket) {
    socket.unref();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    // An error is always followed by 'close', which settles everything.
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.isClosed = true;
      for (const p of this.pending.splice(0)) {
        clearTimeout(p.timer);
        p.resolve('closed');
      }
      this.settleExit?.(this.exit);
      resolve();
    }));
  }

  /** holdProcess refs the socket while anything is awaited on it, and unrefs it otherwise. */
  private holdProcess(): void {
    if (this.pending.length > 0 || (this.exitPromise !== undefined && !this.exitSettled)) this.socket.ref();
    else this.socket.unref();
  }

  /**
   * open connects to the shim of the container in dir; undefined when no shim listens there
   * (it has exited, or was never started): the exit record in dir then tells how it ended.
   */
  static async open(dir: string): Promise<ShimChannel | undefined> {
    const path = join(dir, SHIM_SOCKET);
    // A path longer than sun_path is reached through a descriptor of its directory.
    const handle = Buffer.byteLength(path) > MAX_SUN_PATH_BYTES
      ? await open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY).catch(() => undefined)
      : undefined;
    const address = handle ? `/proc/self/fd/${handle.fd}/${SHIM_SOCKET}` : path;
    try {
      return await new Promise<ShimChannel | undefined>((resolve, reject) => {
        const socket = createConnection({ path: address });
        socket.once('connect', () => {
          socket.removeAllListeners('error');
          resolve(new ShimChannel(socket));
        });
        socket.once('error', (err: NodeJS.ErrnoException) => {
          socket.destroy();
          if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ENOTDIR') resolve(undefined);
          else reject(err);
        });
      });
    } finally {
      await handle?.close();
    }
  }

  /**
   * kill asks the shim to send signal to the container's init. 'exited': the init had already
   * exited (or the shim is gone with it) and nothing was signalled.
   */
  async kill(signal: number): Promise<KillOutcome> {
    if (!Number.isInteger(signal) || signal < 1 || signal > 64) throw new Error(`signal ${signal} out of range 1..64`);
    const reply = await this.request(`kill ${signal}`);
    if (reply === 'ok') return 'signalled';
    if (reply === 'err ESRCH' || reply === 'closed') return 'exited';
    throw new Error(`shim refused kill ${signal}: ${reply}`);
  }

  /**
   * wait resolves with the exit once the shim pushes it, or undefined if the connection ends
   * first (the shim died; the container died with it). One `wait` per channel, shared.
   */
  wait(): Promise<ShimExit | undefined> {
    if (!this.exitPromise) {
      this.exitPromise = new Promise((resolve) => {
        this.settleExit = (exit) => {
          this.exitSettled = true;
          this.holdProcess();
          resolve(exit);
        };
      });
      if (this.isClosed) this.settleExit?.(this.exit);
      else {
        this.socket.write('wait\n');
        this.holdProcess();
      }
    }
    return this.exitPromise;
  }

  /** close drops the connection; a pending wait resolves with what is known. */
  close(): void {
    this.socket.destroy();
  }

  private request(line: string): Promise<string> {
    if (this.isClosed) return Promise.resolve('closed');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`shim did not answer "${line}" within ${SHIM_REQUEST_TIMEOUT_MS} ms`));
        this.socket.destroy();
      }, SHIM_REQUEST_TIMEOUT_MS);
      timer.unref();
      this.pending.push({ resolve, reject, timer });
      this.holdProcess();
      this.socket.write(`${line}\n`);
    });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      const exit = line.startsWith('exit ') ? parseExitLine(line) : undefined;
      if (exit) {
        this.exit = exit;
        this.settleExit?.(exit);
        continue;
      }
      const p = this.pending.shift();
      if (!p) continue; // nothing asked: not a reply to us
      clearTimeout(p.timer);
      p.resolve(line);
    }
    this.holdProcess();
    if (this.buffer.length > MAX_LINE_BYTES) this.socket.destroy();
  }
}
