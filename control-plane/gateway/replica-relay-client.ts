/**
 * The calling side of the replica relay: when the node's agent session is on another replica
 * (its lease names that replica's relay address), streams, one-shot exec and volume deletes go there over a
 * mutual-TLS gRPC call made with this replica's replica certificate. A relayed stream is the same
 * StreamHandle as a local one. Back-pressure: the call is paused once a window of output waits
 * unread here and resumed as the consumer takes it, so gRPC's flow control holds the holding
 * replica, whose paused reading holds the agent through its credit.
 */
import { randomUUID } from 'node:crypto';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { ReplicaRelayClient, type RelayOut } from '../../proto/gen/berth/v1/relay.js';
import { AGENT_SESSION_CHANNEL_OPTIONS, GATEWAY_TLS_NAME } from '../../common/grpc-limits.js';
import type { ErrorCode } from '../errors.js';
import type { ReplicaCertificate } from '../security/replica-certificate.js';
import type { ExecCall, ExecOutcome } from './exec-relay.js';
import type { VolumeDeleteOutcome } from './volume-relay.js';
import { ClientStream, endOf, STREAM_WINDOW_BYTES, type StreamHandle, type StreamOpen } from './streams.js';

/** RELAY_EXEC_SLACK_MS is how long past the holder's own wait a relayed exec may take. */
export const RELAY_EXEC_SLACK_MS = 5_000;

/** codeOf translates a failed relay call into the API catalogue (an unreachable holder is an unavailable node). */
function codeOf(err: ServiceError): ErrorCode {
  return err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED ? 'BERTH_ERR_NODE_UNAVAILABLE' : 'BERTH_ERR_STREAM_FAILED';
}

/** RelayClients keeps one gRPC client per holding replica and opens relayed streams and execs. */
export class RelayClients {
  private readonly clients = new Map<string, { creds: unknown; client: ReplicaRelayClient }>();

  constructor(private readonly cert: ReplicaCertificate) {}

  private client(address: string): ReplicaRelayClient {
    const cur = this.clients.get(address);
    if (cur && cur.creds === this.cert.credentials) return cur.client;
    cur?.client.close();
    const client = new ReplicaRelayClient(address, this.cert.credentials, {
      // Every serving certificate names GATEWAY_TLS_NAME, whatever address the replica is dialled by.
      'grpc.ssl_target_name_override': GATEWAY_TLS_NAME,
      ...AGENT_SESSION_CHANNEL_OPTIONS,
    });
    this.clients.set(address, { creds: this.cert.credentials, client });
    return client;
  }

  /** openStream opens a stream on node's agent through the replica at address. */
  openStream(address: string, node: string, open: StreamOpen, windowBytes = STREAM_WINDOW_BYTES): StreamHandle {
    const s = new ClientStream(randomUUID(), windowBytes);
    const call = this.client(address).stream();
    let outstanding = 0;
    let paused = false;
    s.attach({
      credit: (bytes) => {
        outstanding -= bytes;
        if (paused && outstanding < windowBytes) {
          paused = false;
          call.resume();
        }
      },
      input: (input) => { call.write({ msg: { $case: 'input', value: input } }); },
      cancel: () => call.cancel(),
    });
    call.on('data', (m: RelayOut) => {
      switch (m.msg?.$case) {
        case 'data':
          outstanding += m.msg.value.data.length;
          s.onData({ ...m.msg.value, streamId: s.id });
          if (!paused && outstanding >= windowBytes) {
            paused = true;
            call.pause();
          }
          break;
        case 'credit': s.onCredit({ ...m.msg.value, streamId: s.id }); break;
        case 'end': s.onEnd({ ...m.msg.value, streamId: s.id }); break;
      }
    });
    call.on('error', (err: ServiceError) => s.onEnd(endOf(s.id, codeOf(err), `relay through the control-plane replica at ${address}: ${err.details || err.message}`)));
    call.on('end', () => s.onEnd(endOf(s.id, 'BERTH_ERR_STREAM_FAILED', `the control-plane replica at ${address} ended the relay without an end`)));
    const base = { node, windowBytes };
    call.write({ msg: { $case: 'open', value: 'logs' in open
      ? { ...base, open: { $case: 'logs', value: { ...open.logs, streamId: '', windowBytes } } }
      : { ...base, open: { $case: 'exec', value: { ...open.exec, streamId: '', windowBytes } } } } });
    return s;
  }

  /** exec runs a one-shot exec on node's agent through the replica at address. */
  exec(address: string, node: string, call: ExecCall, waitMs: number): Promise<ExecOutcome> {
    return new Promise((resolve) => {
      this.client(address).exec({ node, request: { ...call, requestId: '' }, waitMs }, new Metadata(), { deadline: Date.now() + waitMs + RELAY_EXEC_SLACK_MS }, (err, res) => {
        if (err) return resolve({ ok: false, code: codeOf(err), message: `relay through the control-plane replica at ${address}: ${err.details || err.message}` });
        if (res.errorCode || !res.result) return resolve({ ok: false, code: (res.errorCode || 'BERTH_ERR_EXEC_FAILED') as ErrorCode, message: res.errorMessage });
        resolve({ ok: true, result: res.result });
      });
    });
  }

  /** deleteVolume deletes a named volume on node's agent through the replica at address. */
  deleteVolume(address: string, node: string, volume: { namespace: string; name: string }, waitMs: number): Promise<VolumeDeleteOutcome> {
    return new Promise((resolve) => {
      this.client(address).deleteVolume({ node, ...volume, waitMs }, new Metadata(), { deadline: Date.now() + waitMs + RELAY_EXEC_SLACK_MS }, (err, res) => {
        if (err) return resolve({ ok: false, code: codeOf(err), message: `relay through the control-plane replica at ${address}: ${err.details || err.message}` });
        resolve(res.errorCode === '' ? { ok: true } : { ok: false, code: res.errorCode as ErrorCode, message: res.errorMessage });
      });
    });
  }

  /** close closes every client. */
  close(): void {
    for (const { client } of this.clients.values()) client.close();
    this.clients.clear();
  }
}
