/**
 * The control plane's side of the session's stream multiplexer: open a logs or exec stream on a
 * node's agent session and consume it with flow control. The same handle comes back whether the
 * node's session is on this replica or on another one (replica-relay-client.ts), so callers never
 * care where the agent is.
 *
 * API:
 *
 *   const h: StreamHandle = gateway.openStream(node, { logs: {...LogsRequest without ids} })
 *                                              // or { exec: {...ExecStart without ids} }
 *   const o = await h.opened;   // { ok: true } once the agent accepted the stream, or
 *                               // { ok: false, code, message } (BERTH_ERR_TASK_NOT_RUNNING,
 *                               // BERTH_ERR_NODE_UNAVAILABLE...): answer an HTTP error then
 *   for await (const d of h.chunks) { d.channel; d.data }   // one consumer; taking a chunk is what
 *                               // grants the agent credit again, so a consumer that stops pulling
 *                               // stops the agent within one window; breaking out cancels
 *   const e = await h.end;      // the StreamEnd: exit code (exec) or error; always resolves
 *   await h.send({ data, eof, rows, cols, signal })   // ExecInput; data waits for the agent's
 *                               // input credit (resolves false once the stream ended)
 *   h.cancel()                  // the consumer went away: tells the agent, ends `end` with
 *                               // BERTH_ERR_STREAM_CANCELLED; idempotent
 *   h.onInputCredit(cb)         // sees each input credit the agent grants (the relay forwards them)
 *
 * Window: each stream grants windowBytes (default STREAM_WINDOW_BYTES) at open and tops it up as
 * chunks are taken, so at most one window per stream is ever buffered between agent and consumer.
 */
import { randomUUID } from 'node:crypto';
import type { ControlMessage, ExecInput, ExecStart, LogsRequest, StreamCredit, StreamData, StreamEnd } from '../../proto/gen/berth/v1/agent.js';

/** STREAM_WINDOW_BYTES is the default credit window of a stream. */
export const STREAM_WINDOW_BYTES = 256 * 1024;
/** STREAM_CANCELLED is the error code of a stream's end after cancel(). */
export const STREAM_CANCELLED = 'BERTH_ERR_STREAM_CANCELLED';

/** LogsOpen is a LogsRequest without the ids and window the multiplexer fills in. */
export type LogsOpen = Omit<LogsRequest, 'streamId' | 'windowBytes'>;
/** ExecOpen is an ExecStart without the ids and window the multiplexer fills in. */
export type ExecOpen = Omit<ExecStart, 'streamId' | 'windowBytes'>;
/** StreamOpen is what a stream is opened for. */
export type StreamOpen = { logs: LogsOpen } | { exec: ExecOpen };
/** StreamInput is an ExecInput without its stream id. */
export type StreamInput = Partial<Omit<ExecInput, 'streamId'>>;

/** OpenOutcome says whether the agent accepted a stream, or why not (a BERTH_ERR_* code). */
export type OpenOutcome = { ok: true } | { ok: false; code: string; message: string };

/** StreamHandle is one open stream as its consumer sees it; see the file comment. */
export interface StreamHandle {
  readonly id: string;
  readonly opened: Promise<OpenOutcome>;
  readonly chunks: AsyncIterable<StreamData>;
  readonly end: Promise<StreamEnd>;
  send(input: StreamInput): Promise<boolean>;
  cancel(): void;
  onInputCredit(cb: (bytes: number) => void): void;
}

/** StreamTransport is where a ClientStream's own messages go: a session, or a relay call. */
export interface StreamTransport {
  /** credit grants the agent bytes more output bytes. */
  credit(bytes: number): void;
  /** input forwards one ExecInput (already within input credit). */
  input(input: ExecInput): void;
  /** cancel tells the far side the consumer went away. */
  cancel(): void;
}

/** endOf makes a StreamEnd for an error the control plane itself decided. */
export function endOf(streamId: string, errorCode: string, errorMessage: string): StreamEnd {
  return { streamId, hasExitCode: false, exitCode: 0, errorCode, errorMessage };
}

/** ClientStream is the consumer's state of one stream: queued chunks, credit to give back, input credit. */
export class ClientStream implements StreamHandle {
  readonly opened: Promise<OpenOutcome>;
  readonly end: Promise<StreamEnd>;
  private resolveOpened!: (o: OpenOutcome) => void;
  private resolveEnd!: (e: StreamEnd) => void;
  private readonly queue: StreamData[] = [];
  private queuedBytes = 0;
  private consumed = 0;
  private inputCredit = 0;
  private finished: StreamEnd | undefined;
  private wakeReader: (() => void) | undefined;
  private wakeWriter: (() => void) | undefined;
  private transport: StreamTransport | undefined;
  private inputChain: Promise<unknown> = Promise.resolve();
  private creditSeen: ((bytes: number) => void) | undefined;

  constructor(readonly id: string, readonly windowBytes: number = STREAM_WINDOW_BYTES) {
    this.opened = new Promise((r) => { this.resolveOpened = r; });
    this.end = new Promise((r) => { this.resolveEnd = r; });
  }

  /** attach names where this stream's credit, input and cancel go (set once the stream is sent). */
  attach(t: StreamTransport): void {
    this.transport = t;
  }

  /** isFinished tells whether the stream has ended. */
  get isFinished(): boolean {
    return this.finished !== undefined;
  }

  get chunks(): AsyncIterable<StreamData> {
    return { [Symbol.asyncIterator]: () => this.iterator() };
  }

  private iterator(): AsyncIterator<StreamData> {
    return {
      next: async () => {
        for (;;) {
          const d = this.queue.shift();
          if (d) {
            this.queuedBytes -= d.data.length;
            this.take(d.data.length);
            return { value: d, done: false };
          }
          if (this.finished) return { value: undefined, done: true };
          await new Promise<void>((r) => { this.wakeReader = r; });
          this.wakeReader = undefined;
        }
      },
      return: async () => {
        this.cancel();
        return { value: undefined, done: true };
      },
    };
  }

  /** take counts consumed bytes and grants them back once a quarter window has been read. */
  private take(n: number): void {
    this.consumed += n;
    if (this.finished || this.consumed < Math.max(1, this.windowBytes / 4)) return;
    const bytes = this.consumed;
    this.consumed = 0;
    this.transport?.credit(bytes);
  }

  /** onData queues output from the agent; an agent past its window has the stream ended. */
  onData(d: StreamData): void {
    if (this.finished) return;
    this.resolveOpened({ ok: true });
    this.queue.push(d);
    this.queuedBytes += d.data.length;
    if (this.queuedBytes > 2 * this.windowBytes) {
      this.transport?.cancel();
      this.onEnd(endOf(this.id, 'BERTH_ERR_STREAM_FAILED', `the agent sent ${this.queuedBytes} bytes past a ${this.windowBytes}-byte window`));
    }
    this.wakeReader?.();
  }

  /** onCredit is the agent's acceptance (the first one) and its input credit. */
  onCredit(c: StreamCredit): void {
    if (this.finished) return;
    this.resolveOpened({ ok: true });
    this.inputCredit += c.bytes;
    this.creditSeen?.(c.bytes);
    this.wakeWriter?.();
  }

  /** onEnd finishes the stream; the first end wins. */
  onEnd(e: StreamEnd): void {
    if (this.finished) return;
    this.finished = e;
    this.resolveOpened(e.errorCode ? { ok: false, code: e.errorCode, message: e.errorMessage } : { ok: true });
    this.resolveEnd(e);
    this.wakeReader?.();
    this.wakeWriter?.();
  }

  send(input: StreamInput): Promise<boolean> {
    const next = this.inputChain.then(() => this.sendNow(input));
    this.inputChain = next.catch(() => undefined);
    return next;
  }

  private async sendNow(input: StreamInput): Promise<boolean> {
    const data = input.data ?? new Uint8Array(0);
    const base: ExecInput = { streamId: this.id, data: Buffer.alloc(0), eof: false, rows: input.rows ?? 0, cols: input.cols ?? 0, signal: input.signal ?? '' };
    let off = 0;
    // Resize and signal need no credit: only stdin bytes are windowed.
    if (data.length === 0) {
      if (this.finished) return false;
      this.transport?.input({ ...base, eof: input.eof ?? false });
      return true;
    }
    while (off < data.length) {
      if (this.finished) return false;
      if (this.inputCredit <= 0) {
        await new Promise<void>((r) => { this.wakeWriter = r; });
        this.wakeWriter = undefined;
        continue;
      }
      const n = Math.min(this.inputCredit, data.length - off);
      this.inputCredit -= n;
      const last = off + n >= data.length;
      this.transport?.input({ ...base, data: Buffer.from(data.subarray(off, off + n)), eof: last && (input.eof ?? false),
        ...(last ? {} : { rows: 0, cols: 0, signal: '' }) });
      off += n;
    }
    return true;
  }

  onInputCredit(cb: (bytes: number) => void): void {
    this.creditSeen = cb;
  }

  cancel(): void {
    if (this.finished) return;
    this.transport?.cancel();
    this.onEnd(endOf(this.id, STREAM_CANCELLED, 'the consumer cancelled the stream'));
  }
}

/** failedStream is a handle that is already over: opening it failed with code. */
export function failedStream(code: string, message: string): StreamHandle {
  const s = new ClientStream(randomUUID());
  s.onEnd(endOf(s.id, code, message));
  return s;
}

/** SessionStreams is one agent session's open streams, by stream_id. */
export class SessionStreams {
  private readonly open_ = new Map<string, ClientStream>();

  /** send writes one ControlMessage on the session; false when the session is closed. */
  constructor(private readonly send: (m: ControlMessage) => boolean) {}

  /** size is the number of open streams. */
  get size(): number {
    return this.open_.size;
  }

  /** open starts a stream on the session; a closed session gives an already failed handle. */
  open(what: StreamOpen, windowBytes = STREAM_WINDOW_BYTES): StreamHandle {
    const s = new ClientStream(randomUUID(), windowBytes);
    const id = s.id;
    s.attach({
      credit: (bytes) => this.send({ msg: { $case: 'streamCredit', value: { streamId: id, bytes } } }),
      input: (input) => this.send({ msg: { $case: 'execInput', value: input } }),
      cancel: () => this.send({ msg: { $case: 'streamCancel', value: { streamId: id } } }),
    });
    this.open_.set(id, s);
    void s.end.then(() => this.open_.delete(id));
    const sent = 'logs' in what
      ? this.send({ msg: { $case: 'logsRequest', value: { ...what.logs, streamId: id, windowBytes } } })
      : this.send({ msg: { $case: 'execStart', value: { ...what.exec, streamId: id, windowBytes } } });
    if (!sent) s.onEnd(endOf(id, 'BERTH_ERR_NODE_UNAVAILABLE', 'the agent session is closed'));
    return s;
  }

  /** data delivers an agent's StreamData; an unknown id (cancelled meanwhile) is dropped. */
  data(d: StreamData): void {
    this.open_.get(d.streamId)?.onData(d);
  }

  /** credit delivers an agent's StreamCredit (acceptance, input credit). */
  credit(c: StreamCredit): void {
    this.open_.get(c.streamId)?.onCredit(c);
  }

  /** ended delivers an agent's StreamEnd. */
  ended(e: StreamEnd): void {
    this.open_.get(e.streamId)?.onEnd(e);
  }

  /** failAll ends every stream with code, e.g. when the session closes. */
  failAll(code: string, message: string): void {
    for (const s of [...this.open_.values()]) s.onEnd(endOf(s.id, code, message));
  }
}
