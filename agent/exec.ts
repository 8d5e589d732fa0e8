/**
 * The agent's side of `berth exec`: an ExecRequest from the session runs in the task's container
 * through the runtime and always yields exactly one ExecResult. Wire error codes:
 * BERTH_ERR_TASK_NOT_RUNNING (no such running container for that task, or it belongs to another
 * task), BERTH_ERR_EXEC_FAILED (the command could not be set up: joining, identity, ...).
 */
import type { ExecRequest, ExecResult } from '../proto/gen/berth/v1/agent.js';
import type { Runtime } from './runtime/runtime.js';
import { messageOf } from './errors.js';
import { LABEL_NAMESPACE, LABEL_TASK } from './reconciler/spec.js';
import { silentLogger, type Logger } from '../common/log.js';

/** DEFAULT_EXEC_TIMEOUT_MS applies when a request carries no timeout. */
export const DEFAULT_EXEC_TIMEOUT_MS = 30_000;

/** ExecHandler answers one ExecRequest; it never rejects. */
export type ExecHandler = (req: ExecRequest) => Promise<ExecResult>;

function failed(req: ExecRequest, errorCode: string, errorMessage: string): ExecResult {
  return {
    requestId: req.requestId, exitCode: -1, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0),
    stdoutTruncated: false, stderrTruncated: false, timedOut: false, errorCode, errorMessage,
  };
}

/** createExecHandler runs exec requests against runtime, checking the container is the task's. */
export function createExecHandler(runtime: Runtime, log: Logger = silentLogger): ExecHandler {
  return async (req) => {
    const who = `${req.namespace}/${req.task}`;
    if (!runtime.exec) return failed(req, 'BERTH_ERR_EXEC_FAILED', 'this runtime cannot exec');
    try {
      const st = await runtime.state(req.containerId);
      if (!st || st.status !== 'running' || st.labels[LABEL_TASK] !== req.task || st.labels[LABEL_NAMESPACE] !== req.namespace) {
        return failed(req, 'BERTH_ERR_TASK_NOT_RUNNING', `task ${who} has no running container ${req.containerId} on this node`);
      }
      const r = await runtime.exec(req.containerId, { args: req.command, timeoutMs: req.timeoutMs > 0 ? req.timeoutMs : DEFAULT_EXEC_TIMEOUT_MS });
      log.info('exec', { task: who, container: req.containerId, command: req.command[0], exitCode: r.exitCode, timedOut: r.timedOut });
      return {
        requestId: req.requestId, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr,
        stdoutTruncated: r.stdoutTruncated, stderrTruncated: r.stderrTruncated, timedOut: r.timedOut, errorCode: '', errorMessage: '',
      };
    } catch (err) {
      const code = (err as { code?: string }).code === 'BERTH_ERR_RUNTIME_NOT_RUNNING' ? 'BERTH_ERR_TASK_NOT_RUNNING' : 'BERTH_ERR_EXEC_FAILED';
      log.warn('exec failed', { task: who, container: req.containerId, error: messageOf(err) });
      return failed(req, code, messageOf(err));
    }
  };
}
