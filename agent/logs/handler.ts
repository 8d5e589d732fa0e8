/**
 * The agent's logs stream handler: a LogsRequest names a task's container; the handler checks the
 * container is the task's (labels, as exec does), sends the selected lines of its log (tail,
 * since), and with follow keeps sending what the container writes until it exits or the stream
 * is cancelled. Output is the text of whole lines (P records joined), an RFC 3339 time before
 * each when asked; channel 1 carries stdout lines, 2 stderr lines. Sending waits on the stream's
 * credit, so a slow reader stops the file reading here.
 *
 * Wire error codes in StreamEnd: BERTH_ERR_TASK_NOT_RUNNING (no container of that task here),
 * BERTH_ERR_NO_PREVIOUS_CONTAINER (--previous, but the container never restarted on this node).
 */
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { LogsRequest } from '../../proto/gen/berth/v1/agent.js';
import { silentLogger, type Logger } from '../../common/log.js';
import type { ContainerState, Runtime } from '../runtime/runtime.js';
import { LABEL_NAMESPACE, LABEL_TASK } from '../reconciler/spec.js';
import type { StreamHandler, StreamSink } from '../streams.js';
import { CriJoiner, formatLine, parseCriRecord, selectLines, type LogLine } from './cri.js';
import { LogCursor } from './cursor.js';
import { previousLogPath } from './previous.js';
import { readFile } from 'node:fs/promises';

/** FOLLOW_POLL_MS is the fallback re-read interval when no file event arrives (fs.watch can miss some). */
export const FOLLOW_POLL_MS = 250;
/** MAX_BATCH_BYTES bounds the text gathered into one write. */
export const MAX_BATCH_BYTES = 32 * 1024;

/** LogsHandlerOptions configures the handler. */
export interface LogsHandlerOptions {
  runtime: Pick<Runtime, 'state' | 'wait'>;
  stateDir: string;
  log?: Logger;
  pollMs?: number;
}

const CHANNEL = { stdout: 1, stderr: 2 } as const;

/** writeLines sends lines, gathering runs of one channel into writes of at most MAX_BATCH_BYTES. */
async function writeLines(sink: StreamSink, lines: LogLine[], timestamps: boolean): Promise<boolean> {
  let channel = 0;
  let parts: string[] = [];
  let size = 0;
  const flush = async (): Promise<boolean> => {
    if (parts.length === 0) return true;
    const data = Buffer.from(parts.join(''));
    parts = [];
    size = 0;
    return sink.write(channel, data);
  };
  for (const l of lines) {
    const text = formatLine(l, timestamps);
    const ch = CHANNEL[l.stream];
    if ((ch !== channel || size + text.length > MAX_BATCH_BYTES) && !(await flush())) return false;
    channel = ch;
    parts.push(text);
    size += text.length;
  }
  return flush();
}

/** toLines parses records into whole lines through joiner (unparseable records are skipped). */
function toLines(records: string[], joiner: CriJoiner): LogLine[] {
  const out: LogLine[] = [];
  for (const raw of records) {
    const r = parseCriRecord(raw);
    const l = r && joiner.push(r);
    if (l) out.push(l);
  }
  return out;
}

/** createLogsHandler serves LogsRequests from the runtime's containers (see the file comment). */
export function createLogsHandler(o: LogsHandlerOptions): StreamHandler<LogsRequest> {
  const log = o.log ?? silentLogger;
  return async (req, sink) => {
    const who = `${req.namespace}/${req.task}`;
    const st = await o.runtime.state(req.containerId);
    if (!st || st.labels[LABEL_TASK] !== req.task || st.labels[LABEL_NAMESPACE] !== req.namespace) {
      return sink.end({ errorCode: 'BERTH_ERR_TASK_NOT_RUNNING', errorMessage: `task ${who} has no container ${req.containerId} on this node` });
    }
    const filter = { sinceMs: req.sinceUnixMs > 0 ? req.sinceUnixMs : 0, tail: req.tailLines };
    if (req.previous) return servePrevious(o.stateDir, req, sink, filter);
    const cursor = new LogCursor(st.logPath);
    try {
      const joiner = new CriJoiner();
      const first = selectLines(toLines(await cursor.start(), joiner), filter);
      sink.ready();
      if (!(await writeLines(sink, first, req.timestamps))) return;
      if (req.follow && st.status === 'running') await follow(o, st, cursor, joiner, req, sink, filter.sinceMs);
      if (!sink.signal.aborted) {
        await writeLines(sink, joiner.flush(), req.timestamps);
        sink.end();
      }
    } catch (err) {
      log.warn('log stream failed', { task: who, container: req.containerId, error: (err as Error).message });
      throw err;
    } finally {
      await cursor.close();
    }
  };
}

/** servePrevious sends the kept log of the container's previous run. */
async function servePrevious(stateDir: string, req: LogsRequest, sink: StreamSink, filter: { sinceMs: number; tail: number }): Promise<void> {
  let text: Buffer;
  try {
    text = await readFile(previousLogPath(stateDir, req.containerId));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return sink.end({ errorCode: 'BERTH_ERR_NO_PREVIOUS_CONTAINER', errorMessage: `task ${req.namespace}/${req.task} has no previous container on this node (it has not restarted)` });
  }
  const joiner = new CriJoiner();
  const lines = selectLines([...toLines(text.toString('utf8').split('\n').filter(Boolean), joiner), ...joiner.flush()], filter);
  sink.ready();
  if (await writeLines(sink, lines, req.timestamps)) sink.end();
}

/**
 * follow sends what the container writes until it exits (then the rest of its log) or the stream
 * ends. A file event wakes it at once; the poll is the fallback for events fs.watch misses.
 */
async function follow(o: LogsHandlerOptions, st: ContainerState, cursor: LogCursor, joiner: CriJoiner,
  req: LogsRequest, sink: StreamSink, sinceMs: number): Promise<void> {
  let wake: (() => void) | undefined;
  let dirty = false;
  const poke = (): void => {
    dirty = true;
    wake?.();
  };
  let exited = false;
  void o.runtime.wait?.(st.id).then(() => { exited = true; poke(); }, () => { exited = true; poke(); });
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(st.logPath), { persistent: false }, poke);
    watcher.on('error', () => undefined);
  } catch {
    // No inotify (or the directory went): the poll below still follows.
  }
  const poll = setInterval(poke, o.pollMs ?? FOLLOW_POLL_MS);
  sink.signal.addEventListener('abort', poke, { once: true });
  try {
    while (!sink.signal.aborted) {
      const wasExited = exited;
      dirty = false;
      const lines = toLines(await cursor.next(), joiner).filter((l) => l.timeMs >= sinceMs);
      if (!(await writeLines(sink, lines, req.timestamps))) return;
      // One more read after the exit is seen, so the last lines written before it are sent.
      if (wasExited) return;
      if (!o.runtime.wait && (await o.runtime.state(st.id))?.status !== 'running') exited = true;
      if (!dirty && !exited) await new Promise<void>((r) => { wake = r; });
      wake = undefined;
    }
  } finally {
    clearInterval(poll);
    watcher?.close();
    sink.signal.removeEventListener('abort', poke);
  }
}
