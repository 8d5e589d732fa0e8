/**
 * Exec relay: the calls a session has in flight to its agent. Each ExecRequest gets a fresh
 * request id and waits for the one ExecResult with that id, for a bounded time; a session that
 * ends fails everything still waiting. Only the replica holding the node's session sends the
 * request; another replica reaches it through that one (replica-relay-client.ts).
 */
import { randomUUID } from 'node:crypto';
import type { ExecRequest, ExecResult } from '../../proto/gen/berth/v1/agent.js';
import type { ErrorCode } from '../errors.js';

/** EXEC_ANSWER_SLACK_MS is how long past the command's timeout the relay waits for the agent's answer. */
export const EXEC_ANSWER_SLACK_MS = 5_000;

/** ExecOutcome is a relayed exec: the agent's result, or why there is none. */
export type ExecOutcome =
  | { ok: true; result: ExecResult }
  | { ok: false; code: ErrorCode; message: string };

/** ExecCall is what the API hands the gateway: the request without its id. */
export type ExecCall = Omit<ExecRequest, 'requestId'>;

interface Waiter {
  resolve(o: ExecOutcome): void;
  timer: NodeJS.Timeout;
}

/** ExecCalls tracks one session's in-flight exec requests by request id. */
export class ExecCalls {
  private readonly waiting = new Map<string, Waiter>();

  /** start sends the request through send and resolves with the answer or a timeout after waitMs. */
  start(send: (req: ExecRequest) => boolean, call: ExecCall, waitMs: number): Promise<ExecOutcome> {
    const requestId = randomUUID();
    return new Promise<ExecOutcome>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(requestId);
        resolve({ ok: false, code: 'BERTH_ERR_EXEC_TIMEOUT', message: `no answer from the agent within ${waitMs} ms` });
      }, waitMs);
      this.waiting.set(requestId, { resolve, timer });
      if (!send({ ...call, requestId })) this.finish(requestId, { ok: false, code: 'BERTH_ERR_NODE_UNAVAILABLE', message: 'the agent session is closed' });
    });
  }

  /** settle delivers an agent's ExecResult; an unknown id (timed out meanwhile) is ignored. */
  settle(result: ExecResult): void {
    this.finish(result.requestId, { ok: true, result });
  }

  /** failAll ends every waiting call with code, e.g. when the session closes. */
  failAll(code: ErrorCode, message: string): void {
    for (const id of [...this.waiting.keys()]) this.finish(id, { ok: false, code, message });
  }

  private finish(id: string, outcome: ExecOutcome): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    w.resolve(outcome);
  }
}
