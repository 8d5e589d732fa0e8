/**
 * Volume deletes a session has in flight to its agent: each VolumeDelete gets a fresh request id
 * and waits, for a bounded time, for the one VolumeDeleteResult with that id; a session that ends
 * fails everything still waiting. Only the replica holding the node's session can relay one; a
 * request landing on another replica answers BERTH_ERR_NODE_UNAVAILABLE.
 */
import { randomUUID } from 'node:crypto';
import type { VolumeDelete, VolumeDeleteResult } from '../../proto/gen/berth/v1/agent.js';
import type { ErrorCode } from '../errors.js';

/** VOLUME_DELETE_WAIT_MS bounds the wait for the agent's answer (removing a large tree takes a while). */
export const VOLUME_DELETE_WAIT_MS = 60_000;

/** VolumeDeleteOutcome is a relayed delete: done, or why not (agent codes translated to the control plane's). */
export type VolumeDeleteOutcome = { ok: true } | { ok: false; code: ErrorCode; message: string };

interface Waiter {
  resolve(o: VolumeDeleteOutcome): void;
  timer: NodeJS.Timeout;
}

/** fromAgentCode translates the agent's answer at the boundary: in use 409, unknown 404, anything else 500. */
export function fromAgentCode(code: string): ErrorCode {
  switch (code) {
    case 'BERTH_ERR_VOLUME_IN_USE': return 'BERTH_ERR_IN_USE';
    case 'BERTH_ERR_VOLUME_NOT_FOUND': return 'BERTH_ERR_NOT_FOUND';
    default: return 'BERTH_ERR_INTERNAL';
  }
}

/** VolumeDeleteCalls tracks one session's in-flight volume deletes by request id. */
export class VolumeDeleteCalls {
  private readonly waiting = new Map<string, Waiter>();

  /** start sends the request through send and resolves with the answer or a timeout after waitMs. */
  start(send: (req: VolumeDelete) => boolean, volume: { namespace: string; name: string }, waitMs: number): Promise<VolumeDeleteOutcome> {
    const requestId = randomUUID();
    return new Promise<VolumeDeleteOutcome>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(requestId);
        resolve({ ok: false, code: 'BERTH_ERR_NODE_UNAVAILABLE', message: `no answer from the agent within ${waitMs} ms` });
      }, waitMs);
      this.waiting.set(requestId, { resolve, timer });
      if (!send({ requestId, ...volume })) this.finish(requestId, { ok: false, code: 'BERTH_ERR_NODE_UNAVAILABLE', message: 'the agent session is closed' });
    });
  }

  /** settle delivers an agent's answer; an unknown id (timed out meanwhile) is ignored. */
  settle(r: VolumeDeleteResult): void {
    this.finish(r.requestId, r.errorCode === '' ? { ok: true } : { ok: false, code: fromAgentCode(r.errorCode), message: r.errorMessage });
  }

  /** failAll ends every waiting call with code, e.g. when the session closes. */
  failAll(code: ErrorCode, message: string): void {
    for (const id of [...this.waiting.keys()]) this.finish(id, { ok: false, code, message });
  }

  private finish(id: string, outcome: VolumeDeleteOutcome): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    w.resolve(outcome);
  }
}
