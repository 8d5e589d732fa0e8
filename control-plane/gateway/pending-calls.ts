/**
 * Request/answer calls a session has in flight to its agent over the session stream: each call
 * gets a fresh request id and waits, for a bounded time, for the one answer with that id; a
 * session that ends fails everything still waiting. Exec and volume deletes use it.
 */
import { randomUUID } from 'node:crypto';
import type { ErrorCode } from '../errors.js';

/** CallFailure is why a call has no answer. */
export interface CallFailure {
  ok: false;
  code: ErrorCode;
  message: string;
}

interface Waiter<Out> {
  resolve(o: Out | CallFailure): void;
  timer: NodeJS.Timeout;
}

/** PendingCalls tracks one session's in-flight calls of one kind by request id. */
export class PendingCalls<Out> {
  private readonly waiting = new Map<string, Waiter<Out>>();

  /** timeoutCode is the failure code of a call the agent did not answer within its wait. */
  constructor(private readonly timeoutCode: ErrorCode) {}

  /**
   * start sends the request (send gets its id; false means the session is closed) and resolves
   * with the answer, or a failure after waitMs.
   */
  start(send: (requestId: string) => boolean, waitMs: number): Promise<Out | CallFailure> {
    const requestId = randomUUID();
    return new Promise<Out | CallFailure>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(requestId);
        resolve({ ok: false, code: this.timeoutCode, message: `no answer from the agent within ${waitMs} ms` });
      }, waitMs);
      this.waiting.set(requestId, { resolve, timer });
      if (!send(requestId)) this.finish(requestId, { ok: false, code: 'BERTH_ERR_NODE_UNAVAILABLE', message: 'the agent session is closed' });
    });
  }

  /** settle delivers an answer; an unknown id (timed out meanwhile) is ignored. */
  settle(requestId: string, outcome: Out | CallFailure): void {
    this.finish(requestId, outcome);
  }

  /** failAll ends every waiting call with code, e.g. when the session closes. */
  failAll(code: ErrorCode, message: string): void {
    for (const id of [...this.waiting.keys()]) this.finish(id, { ok: false, code, message });
  }

  private finish(id: string, outcome: Out | CallFailure): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    w.resolve(outcome);
  }
}
