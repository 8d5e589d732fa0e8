/**
 * POST /v1/namespaces/:ns/tasks/:name/exec — run a command in a task's container through the
 * agent session of the task's node. Body `{ command: [...], timeoutSeconds? }`; answer
 * `{ exitCode, stdout, stderr, stdoutTruncated, stderrTruncated, encoding: "base64" }`, the two
 * streams base64-encoded because a command's output need not be UTF-8 (each capped at 4 MiB).
 */
import type { FastifyInstance } from 'fastify';
import type { Task } from '../objects/types.js';
import { isTaskKey } from '../store/keys.js';
import type { Store } from '../store/store.js';
import { EXEC_ANSWER_SLACK_MS, type ExecCall, type ExecOutcome } from '../gateway/exec-relay.js';
import { notFound, sendError } from './errors.js';

/** DEFAULT_EXEC_TIMEOUT_SECONDS applies when the body names no timeout. */
export const DEFAULT_EXEC_TIMEOUT_SECONDS = 30;
/** MAX_EXEC_TIMEOUT_SECONDS bounds how long one request may hold a command. */
export const MAX_EXEC_TIMEOUT_SECONDS = 3600;

/** ExecRelay is the part of the agent gateway the route needs. */
export interface ExecRelay {
  exec(node: string, call: ExecCall, waitMs: number): Promise<ExecOutcome>;
}

/** ExecResponse is the route's 200 body. */
export interface ExecResponse {
  exitCode: number;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  encoding: 'base64';
}

const EXEC_BODY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['command'],
  properties: {
    command: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
    timeoutSeconds: { type: 'integer', minimum: 1, maximum: MAX_EXEC_TIMEOUT_SECONDS },
  },
} as const;

type ExecBody = { command: string[]; timeoutSeconds?: number };

/** registerExecRoutes adds the exec route; without a relay it answers BERTH_ERR_NODE_UNAVAILABLE. */
export function registerExecRoutes(app: FastifyInstance, store: Store, relay: ExecRelay | undefined): void {
  app.post<{ Params: { ns: string; name: string }; Body: ExecBody }>('/v1/namespaces/:ns/tasks/:name/exec',
    { schema: { body: EXEC_BODY_SCHEMA } }, async (req, reply) => {
      const { ns, name } = req.params;
      const { items } = await store.list<Task>(`tasks/${ns}/`, isTaskKey);
      const task = items.find((t) => t.metadata.name === name);
      if (!task) return sendError(reply, notFound('task', `${ns}/${name}`));
      const node = task.spec.nodeName;
      const containerId = task.status.containerId;
      if (task.status.phase !== 'running' || !node || !containerId) {
        return sendError(reply, { code: 'BERTH_ERR_TASK_NOT_RUNNING', message: `task ${ns}/${name} is ${task.status.phase}, not running` });
      }
      if (!relay) return sendError(reply, { code: 'BERTH_ERR_NODE_UNAVAILABLE', message: 'this control plane has no agent gateway' });
      const timeoutMs = (req.body.timeoutSeconds ?? DEFAULT_EXEC_TIMEOUT_SECONDS) * 1000;
      const out = await relay.exec(node, { namespace: ns, task: name, containerId, command: req.body.command, timeoutMs }, timeoutMs + EXEC_ANSWER_SLACK_MS);
      if (!out.ok) return sendError(reply, { code: out.code, message: `exec in task ${ns}/${name} on node ${node}: ${out.message}` });
      const r = out.result;
      if (r.errorCode !== '') {
        const code = r.errorCode === 'BERTH_ERR_TASK_NOT_RUNNING' ? 'BERTH_ERR_TASK_NOT_RUNNING' : 'BERTH_ERR_EXEC_FAILED';
        return sendError(reply, { code, message: `exec in task ${ns}/${name} on node ${node}: ${r.errorMessage}` });
      }
      if (r.timedOut) {
        return sendError(reply, { code: 'BERTH_ERR_EXEC_TIMEOUT', message: `exec in task ${ns}/${name}: the command ran longer than ${timeoutMs / 1000} s and was killed` });
      }
      const body: ExecResponse = {
        exitCode: r.exitCode,
        stdout: Buffer.from(r.stdout).toString('base64'),
        stderr: Buffer.from(r.stderr).toString('base64'),
        stdoutTruncated: r.stdoutTruncated,
        stderrTruncated: r.stderrTruncated,
        encoding: 'base64',
      };
      return body;
    });
}
