/**
 * The agent's side of `berth exec -i/-t`: an ExecStart from the session starts an interactive
 * command in the task's container (runtime.execStream) and the stream carries it: stdout on
 * channel 1 (with a tty, everything the terminal shows), stderr on channel 2, ExecInput in
 * (stdin bytes, eof, resize, signal), and a StreamEnd with the exit code.
 *
 * Flow control both ways. Output: the next chunk is read from the command only once the previous
 * one went out within the control plane's credit, so a slow terminal stops the command, never
 * grows memory here. Input: the control plane may send STDIN_WINDOW_BYTES of stdin ahead; each
 * byte's credit comes back once the command's helper has taken it, so a command that does not
 * read its stdin stops the sender.
 *
 * When the stream ends early (the client went away, the session was lost) the command is hung
 * up (SIGHUP, as a closed terminal would) and killed if it is still there HANGUP_GRACE_MS later.
 *
 * Wire error codes in StreamEnd: BERTH_ERR_TASK_NOT_RUNNING (no such running container for that
 * task here), BERTH_ERR_EXEC_FAILED (the command could not be set up: joining, identity, ...).
 */
import type { Readable } from 'node:stream';
import type { ExecInput, ExecStart } from '../proto/gen/berth/v1/agent.js';
import { silentLogger, type Logger } from '../common/log.js';
import { messageOf } from './errors.js';
import { LABEL_NAMESPACE, LABEL_TASK } from './reconciler/spec.js';
import type { ExecStream, Runtime } from './runtime/runtime.js';
import type { StreamHandler, StreamSink } from './streams.js';

/** STDIN_WINDOW_BYTES is how much stdin the control plane may send ahead of the command's reading. */
export const STDIN_WINDOW_BYTES = 64 * 1024;
/** HANGUP_GRACE_MS is how long a hung-up command may take to exit before it is killed. */
export const HANGUP_GRACE_MS = 5_000;

const STDOUT_CHANNEL = 1;
const STDERR_CHANNEL = 2;

/** pump sends a readable's chunks on channel, each only after the previous one had credit. */
async function pump(from: Readable | undefined, channel: number, sink: StreamSink): Promise<void> {
  if (!from) return;
  for await (const chunk of from) {
    if (!(await sink.write(channel, chunk as Buffer))) {
      from.destroy();
      return;
    }
  }
}

/** applyInput hands one ExecInput to the command; stdin credit returns as the helper takes bytes. */
function applyInput(s: ExecStream, input: ExecInput, sink: StreamSink, log: Logger): void {
  const n = input.data.length;
  if (n > 0) s.stdin.write(input.data, (err) => { if (!err) sink.grantInput(n); });
  if (input.rows > 0 && input.cols > 0) s.resize(input.rows, input.cols);
  if (input.signal !== '') {
    try {
      s.signal(input.signal);
    } catch (err) {
      log.warn('exec signal refused', { stream: sink.streamId, signal: input.signal, error: messageOf(err) });
    }
  }
  if (input.eof) s.stdin.end();
}

/** createExecStreamHandler serves ExecStart streams against runtime, checking the container is the task's. */
export function createExecStreamHandler(runtime: Pick<Runtime, 'state' | 'execStream'>, log: Logger = silentLogger): StreamHandler<ExecStart> {
  return async (req, sink) => {
    const who = `${req.namespace}/${req.task}`;
    if (!runtime.execStream) {
      sink.end({ errorCode: 'BERTH_ERR_EXEC_FAILED', errorMessage: 'this runtime cannot run interactive commands' });
      return;
    }
    let s: ExecStream;
    try {
      const st = await runtime.state(req.containerId);
      if (!st || st.status !== 'running' || st.labels[LABEL_TASK] !== req.task || st.labels[LABEL_NAMESPACE] !== req.namespace) {
        sink.end({ errorCode: 'BERTH_ERR_TASK_NOT_RUNNING', errorMessage: `task ${who} has no running container ${req.containerId} on this node` });
        return;
      }
      s = await runtime.execStream(req.containerId, {
        args: req.command, tty: req.tty, stdin: req.stdin,
        ...(req.rows > 0 && req.cols > 0 ? { rows: req.rows, cols: req.cols } : {}),
      });
    } catch (err) {
      sink.end(failure(err));
      return;
    }
    if (sink.signal.aborted) {
      s.kill();
      return;
    }
    sink.ready(req.stdin ? STDIN_WINDOW_BYTES : 0);
    log.info('exec stream', { task: who, container: req.containerId, command: req.command[0], tty: req.tty, stdin: req.stdin });
    sink.onInput((input) => applyInput(s, input, sink, log));
    let settled = false;
    const onAbort = (): void => {
      if (settled) return;
      s.hangUp();
      setTimeout(() => { if (!settled) s.kill(); }, HANGUP_GRACE_MS).unref();
    };
    sink.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const [exit] = await Promise.all([s.exit, pump(s.stdout, STDOUT_CHANNEL, sink), pump(s.stderr, STDERR_CHANNEL, sink)]);
      settled = true;
      log.info('exec stream ended', { task: who, container: req.containerId, exitCode: exit.exitCode });
      sink.end({ exitCode: exit.exitCode });
    } catch (err) {
      settled = true;
      s.kill();
      log.warn('exec stream failed', { task: who, container: req.containerId, error: messageOf(err) });
      sink.end(failure(err));
    } finally {
      sink.signal.removeEventListener('abort', onAbort);
    }
  };
}

/** failure maps a runtime error to the stream's wire error. */
function failure(err: unknown): { errorCode: string; errorMessage: string } {
  const code = (err as { code?: string }).code;
  if (code === 'BERTH_ERR_RUNTIME_NOT_RUNNING') return { errorCode: 'BERTH_ERR_TASK_NOT_RUNNING', errorMessage: messageOf(err) };
  return { errorCode: 'BERTH_ERR_EXEC_FAILED', errorMessage: messageOf(err) };
}
