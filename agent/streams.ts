/**
 * The agent's side of the session's stream multiplexer: logs and interactive exec (and any later
 * kind) ride the one session as streams named by a stream_id the control plane chose.
 *
 * API, for whoever serves a kind of stream:
 *
 *   const streams = new AgentStreams({ logs: serveLogs, exec: serveExec }, send, log);
 *   // the session calls streams.open('logs', req) / open('exec', req) for LogsRequest / ExecStart,
 *   // streams.credit(c), streams.cancel(c), streams.input(i) for StreamCredit / StreamCancel /
 *   // ExecInput, and streams.closeAll(why) when the session ends.
 *
 *   type StreamHandler<Req> = (req: Req, sink: StreamSink) => void | Promise<void>;
 *   interface StreamSink {
 *     streamId; signal: AbortSignal;               // aborted on StreamCancel, session loss or end()
 *     ready(inputWindowBytes = 0): void;           // accepted: tells the control plane the stream is open
 *                                                  //   and grants it that much input (stdin) credit
 *     write(channel, data): Promise<boolean>;      // resolves once every byte went out within the
 *                                                  //   granted window (awaiting it is the back-pressure);
 *                                                  //   false when the stream is closed (stop reading)
 *     grantInput(bytes): void;                     // more input credit, as the handler consumed input
 *     onInput(cb: (input: ExecInput) => void);     // ExecInput for this stream, in order
 *     end(outcome?: { exitCode?, errorCode?, errorMessage? }): void   // once; later calls are ignored
 *   }
 *
 * A handler refuses a stream by calling end({ errorCode, errorMessage }) before ready() or write():
 * the control plane then sees the refusal as the stream's opening outcome (an HTTP error, not a
 * 200 with an error inside). A handler that throws or rejects ends its stream with
 * BERTH_ERR_STREAM_FAILED. Credit: the agent never has more unacknowledged bytes of a stream in
 * flight than the control plane granted (window_bytes in the request, then StreamCredit), so a
 * slow reader anywhere downstream stops the source here instead of growing memory.
 */
import type { AgentMessage, ExecInput, ExecStart, LogsRequest, StreamCancel, StreamCredit } from '../proto/gen/berth/v1/agent.js';
import { silentLogger, type Logger } from '../common/log.js';
import { messageOf } from './errors.js';

/** DEFAULT_STREAM_WINDOW_BYTES is the window a request without window_bytes gets. */
export const DEFAULT_STREAM_WINDOW_BYTES = 256 * 1024;
/** MAX_STREAM_CHUNK_BYTES bounds one StreamData message, so one stream cannot hog the session. */
export const MAX_STREAM_CHUNK_BYTES = 32 * 1024;
/** MAX_OPEN_STREAMS bounds the streams one session may hold open at once. */
export const MAX_OPEN_STREAMS = 256;

/** STREAM_ERRORS are the wire codes the multiplexer itself puts in a StreamEnd. */
export const STREAM_ERRORS = {
  unsupported: 'BERTH_ERR_STREAM_UNSUPPORTED',
  failed: 'BERTH_ERR_STREAM_FAILED',
  tooMany: 'BERTH_ERR_STREAM_LIMIT',
  duplicate: 'BERTH_ERR_STREAM_DUPLICATE',
} as const;

/** StreamOutcome is how a stream ended: an exit code (exec), an error, or neither (a normal end). */
export interface StreamOutcome {
  exitCode?: number;
  errorCode?: string;
  errorMessage?: string;
}

/** StreamSink is one open stream as its handler sees it; see the file comment for the contract. */
export interface StreamSink {
  readonly streamId: string;
  /** signal is aborted when the stream ends for any reason: the handler stops its source. */
  readonly signal: AbortSignal;
  /** ready accepts the stream and grants the control plane inputWindowBytes of input credit. */
  ready(inputWindowBytes?: number): void;
  /** write sends data on channel (1 stdout / log text, 2 stderr) within credit; false once closed. */
  write(channel: number, data: Uint8Array): Promise<boolean>;
  /** grantInput lets the control plane send bytes more input bytes. */
  grantInput(bytes: number): void;
  /** onInput receives this stream's ExecInput messages in order. */
  onInput(cb: (input: ExecInput) => void): void;
  /** end closes the stream with outcome; idempotent. */
  end(outcome?: StreamOutcome): void;
}

/** StreamHandler serves one stream of a kind; it resolves (or not) as it likes, the sink decides the end. */
export type StreamHandler<Req> = (req: Req, sink: StreamSink) => void | Promise<void>;

/** StreamHandlers are the kinds this agent serves; a missing kind is refused with BERTH_ERR_STREAM_UNSUPPORTED. */
export interface StreamHandlers {
  logs?: StreamHandler<LogsRequest>;
  exec?: StreamHandler<ExecStart>;
}

/** StreamKind names a kind of stream. */
export type StreamKind = keyof StreamHandlers;

/** OpenStream is one stream's state: the credit left and the writers waiting for more. */
class OpenStream implements StreamSink {
  readonly signal: AbortSignal;
  private readonly abort = new AbortController();
  private credit: number;
  private wake: (() => void) | undefined;
  private accepted = false;
  private inputCb: ((input: ExecInput) => void) | undefined;
  private readonly earlyInput: ExecInput[] = [];
  /** writing serialises writes so chunks go out in the order write() was called. */
  private writing: Promise<unknown> = Promise.resolve();

  constructor(readonly streamId: string, windowBytes: number, private readonly send: (m: AgentMessage) => boolean, private readonly onEnd: () => void) {
    this.credit = windowBytes > 0 ? windowBytes : DEFAULT_STREAM_WINDOW_BYTES;
    this.signal = this.abort.signal;
  }

  get closed(): boolean {
    return this.signal.aborted;
  }

  ready(inputWindowBytes = 0): void {
    if (this.accepted || this.closed) return;
    this.accepted = true;
    // A credit message, even of 0 bytes, is the acknowledgement the control plane waits for.
    this.send({ msg: { $case: 'streamCredit', value: { streamId: this.streamId, bytes: Math.max(0, Math.floor(inputWindowBytes)) } } });
  }

  write(channel: number, data: Uint8Array): Promise<boolean> {
    const next = this.writing.then(() => this.writeNow(channel, data));
    this.writing = next.catch(() => undefined);
    return next;
  }

  private async writeNow(channel: number, data: Uint8Array): Promise<boolean> {
    this.ready();
    let off = 0;
    while (off < data.length) {
      if (this.closed) return false;
      if (this.credit <= 0) {
        await new Promise<void>((resolve) => { this.wake = resolve; });
        this.wake = undefined;
        continue;
      }
      const n = Math.min(data.length - off, this.credit, MAX_STREAM_CHUNK_BYTES);
      const piece = data.subarray(off, off + n);
      this.credit -= n;
      off += n;
      if (!this.send({ msg: { $case: 'streamData', value: { streamId: this.streamId, channel, data: Buffer.from(piece) } } })) {
        this.close();
        return false;
      }
    }
    return !this.closed;
  }

  grantInput(bytes: number): void {
    if (this.closed || bytes <= 0) return;
    this.send({ msg: { $case: 'streamCredit', value: { streamId: this.streamId, bytes: Math.floor(bytes) } } });
  }

  onInput(cb: (input: ExecInput) => void): void {
    this.inputCb = cb;
    for (const i of this.earlyInput.splice(0)) cb(i);
  }

  /** addCredit takes a StreamCredit from the control plane and wakes a waiting writer. */
  addCredit(bytes: number): void {
    if (bytes <= 0) return;
    this.credit += bytes;
    this.wake?.();
  }

  /** deliver hands an ExecInput to the handler, holding it until the handler listens. */
  deliver(input: ExecInput): void {
    if (this.closed) return;
    if (this.inputCb) this.inputCb(input);
    else this.earlyInput.push(input);
  }

  end(outcome: StreamOutcome = {}): void {
    if (this.closed) return;
    // Data already queued goes first: the end must not overtake the last chunks.
    void this.writing.then(() => {
      if (this.closed) return;
      this.send({ msg: { $case: 'streamEnd', value: {
        streamId: this.streamId,
        hasExitCode: outcome.exitCode !== undefined,
        exitCode: outcome.exitCode ?? 0,
        errorCode: outcome.errorCode ?? '',
        errorMessage: outcome.errorMessage ?? '',
      } } });
      this.close();
    });
  }

  /** close ends the stream without telling the control plane (cancelled, or the session is gone). */
  close(): void {
    if (this.closed) return;
    this.abort.abort();
    this.wake?.();
    this.onEnd();
  }
}

/** AgentStreams is one session's registry of open streams by stream_id. */
export class AgentStreams {
  private readonly open_ = new Map<string, OpenStream>();
  private readonly log: Logger;

  /** send writes one message on the session; it returns false when the session is gone. */
  constructor(private readonly handlers: StreamHandlers, private readonly send: (m: AgentMessage) => boolean, log?: Logger) {
    this.log = log ?? silentLogger;
  }

  /** size is the number of open streams. */
  get size(): number {
    return this.open_.size;
  }

  /** open starts a stream of kind for req; refusals go back as a StreamEnd. */
  open(kind: 'logs', req: LogsRequest): void;
  open(kind: 'exec', req: ExecStart): void;
  open(kind: StreamKind, req: LogsRequest | ExecStart): void {
    const id = req.streamId;
    const refuse = (errorCode: string, errorMessage: string): void => {
      this.send({ msg: { $case: 'streamEnd', value: { streamId: id, hasExitCode: false, exitCode: 0, errorCode, errorMessage } } });
    };
    if (!id) return;
    if (this.open_.has(id)) return refuse(STREAM_ERRORS.duplicate, `stream ${id} is already open`);
    const handler = this.handlers[kind] as StreamHandler<LogsRequest | ExecStart> | undefined;
    if (!handler) return refuse(STREAM_ERRORS.unsupported, `this agent does not serve ${kind} streams`);
    if (this.open_.size >= MAX_OPEN_STREAMS) return refuse(STREAM_ERRORS.tooMany, `this agent already serves ${MAX_OPEN_STREAMS} streams on the session`);
    const s = new OpenStream(id, req.windowBytes, this.send, () => this.open_.delete(id));
    this.open_.set(id, s);
    this.log.debug('stream opened', { kind, stream: id, task: `${req.namespace}/${req.task}` });
    const fail = (err: unknown): void => {
      this.log.warn('stream handler failed', { kind, stream: id, error: messageOf(err) });
      s.end({ errorCode: STREAM_ERRORS.failed, errorMessage: messageOf(err) });
    };
    try {
      const r = handler(req, s);
      if (r && typeof (r as Promise<void>).then === 'function') (r as Promise<void>).catch(fail);
    } catch (err) {
      fail(err);
    }
  }

  /** credit adds the control plane's StreamCredit to its stream; unknown ids (ended meanwhile) are ignored. */
  credit(c: StreamCredit): void {
    this.open_.get(c.streamId)?.addCredit(c.bytes);
  }

  /** input hands an ExecInput to its stream's handler. */
  input(i: ExecInput): void {
    this.open_.get(i.streamId)?.deliver(i);
  }

  /** cancel ends a stream the control plane gave up on; nothing more is sent on it. */
  cancel(c: StreamCancel): void {
    this.open_.get(c.streamId)?.close();
  }

  /** closeAll ends every stream: the session is gone, so their handlers must stop. */
  closeAll(why: string): void {
    if (this.open_.size > 0) this.log.info('closing streams', { count: this.open_.size, why });
    for (const s of [...this.open_.values()]) s.close();
  }
}
