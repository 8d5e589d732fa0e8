/**
 * Volume deletes a session has in flight to its agent (pending-calls.ts). A request landing on a
 * replica without the node's session is relayed to the one holding it (replica-relay-client.ts).
 */
import type { VolumeDelete, VolumeDeleteResult } from '../../proto/gen/berth/v1/agent.js';
import type { ErrorCode } from '../errors.js';
import { PendingCalls } from './pending-calls.js';

/** VOLUME_DELETE_WAIT_MS bounds the wait for the agent's answer (removing a large tree takes a while). */
export const VOLUME_DELETE_WAIT_MS = 60_000;

/** VolumeDeleteOutcome is a relayed delete: done, or why not (agent codes translated to the control plane's). */
export type VolumeDeleteOutcome = { ok: true } | { ok: false; code: ErrorCode; message: string };

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
  private readonly calls = new PendingCalls<VolumeDeleteOutcome>('BERTH_ERR_NODE_UNAVAILABLE');

  /** start sends the request through send and resolves with the answer or a timeout after waitMs. */
  start(send: (req: VolumeDelete) => boolean, volume: { namespace: string; name: string }, waitMs: number): Promise<VolumeDeleteOutcome> {
    return this.calls.start((requestId) => send({ requestId, ...volume }), waitMs);
  }

  /** settle delivers an agent's answer; an unknown id (timed out meanwhile) is ignored. */
  settle(r: VolumeDeleteResult): void {
    this.calls.settle(r.requestId, r.errorCode === '' ? { ok: true } : { ok: false, code: fromAgentCode(r.errorCode), message: r.errorMessage });
  }

  /** failAll ends every waiting call with code, e.g. when the session closes. */
  failAll(code: ErrorCode, message: string): void {
    this.calls.failAll(code, message);
  }
}
