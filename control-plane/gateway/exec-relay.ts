/**
 * Exec relay: the exec calls a session has in flight to its agent (pending-calls.ts). Only the replica holding the node's session sends the
 * request; another replica reaches it through that one (replica-relay-client.ts).
 */
import type { ExecRequest, ExecResult } from '../../proto/gen/berth/v1/agent.js';
import type { ErrorCode } from '../errors.js';
import { PendingCalls } from './pending-calls.js';

/** EXEC_ANSWER_SLACK_MS is how long past the command's timeout the relay waits for the agent's answer. */
export const EXEC_ANSWER_SLACK_MS = 5_000;

/** ExecOutcome is a relayed exec: the agent's result, or why there is none. */
export type ExecOutcome =
  | { ok: true; result: ExecResult }
  | { ok: false; code: ErrorCode; message: string };

/** ExecCall is what the API hands the gateway: the request without its id. */
export type ExecCall = Omit<ExecRequest, 'requestId'>;

/** ExecCalls tracks one session's in-flight exec requests by request id. */
export class ExecCalls {
  private readonly calls = new PendingCalls<ExecOutcome>('BERTH_ERR_EXEC_TIMEOUT');

  /** start sends the request through send and resolves with the answer or a timeout after waitMs. */
  start(send: (req: ExecRequest) => boolean, call: ExecCall, waitMs: number): Promise<ExecOutcome> {
    return this.calls.start((requestId) => send({ ...call, requestId }), waitMs);
  }

  /** settle delivers an agent's ExecResult; an unknown id (timed out meanwhile) is ignored. */
  settle(result: ExecResult): void {
    this.calls.settle(result.requestId, { ok: true, result });
  }

  /** failAll ends every waiting call with code, e.g. when the session closes. */
  failAll(code: ErrorCode, message: string): void {
    this.calls.failAll(code, message);
  }
}
