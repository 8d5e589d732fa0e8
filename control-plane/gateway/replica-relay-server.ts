/**
 * The holding side of the replica relay (proto/berth/v1/relay.proto): another replica asks this
 * one, which holds a node's agent session, to open a stream, run a one-shot exec or delete a
 * volume on it. Only
 * replica certificates are served; the calling replica already authenticated, authorized and
 * audited the user. A stream is bridged as is: the agent's data goes out as fast as the relay
 * call drains (gRPC flow control carries the back-pressure to the calling replica, whose reader
 * pulls at its consumer's pace), the agent's input credit goes out so the caller can send input,
 * and the call ending cancels the agent stream. Only local sessions are used: a relay never
 * relays again, so two replicas cannot bounce a request between them.
 */
import { once } from 'node:events';
import { status, type sendUnaryData, type ServerDuplexStream, type ServerUnaryCall } from '@grpc/grpc-js';
import type {
  ReplicaRelayServer, RelayExecRequest, RelayExecResponse, RelayIn, RelayOut, RelayVolumeDelete, RelayVolumeDeleteResponse,
} from '../../proto/gen/berth/v1/relay.js';
import type { Logger } from '../../common/log.js';
import { isReplicaPeer } from '../security/replica-certificate.js';
import type { ExecCall, ExecOutcome } from './exec-relay.js';
import type { VolumeDeleteOutcome } from './volume-relay.js';
import { STREAM_CANCELLED, type StreamHandle, type StreamOpen } from './streams.js';

/** LocalSessions is what the relay reaches on this replica: only the sessions it holds itself. */
export interface LocalSessions {
  openLocal(node: string, open: StreamOpen, windowBytes?: number): StreamHandle;
  execLocal(node: string, call: ExecCall, waitMs: number): Promise<ExecOutcome>;
  deleteVolumeLocal(node: string, volume: { namespace: string; name: string }, waitMs: number): Promise<VolumeDeleteOutcome>;
}

const NOT_A_REPLICA = 'BERTH_ERR_CERTIFICATE_REQUIRED: the relay serves control-plane replica certificates only';

/** openOf reads a RelayOpen into what the local session opens; undefined when it names nothing. */
function openOf(m: RelayIn): { node: string; open: StreamOpen; windowBytes: number } | undefined {
  if (m.msg?.$case !== 'open' || !m.msg.value.open) return undefined;
  const o = m.msg.value;
  const { streamId: _s, windowBytes: _w, ...rest } = o.open!.value;
  const open: StreamOpen = o.open!.$case === 'logs'
    ? { logs: rest as Extract<StreamOpen, { logs: unknown }>['logs'] }
    : { exec: rest as Extract<StreamOpen, { exec: unknown }>['exec'] };
  return { node: o.node, open, windowBytes: o.windowBytes };
}

/** pump writes the agent's output to the relay call as it drains, then the stream's end. */
async function pump(h: StreamHandle, call: ServerDuplexStream<RelayIn, RelayOut>): Promise<void> {
  for await (const d of h.chunks) {
    if (call.cancelled || call.destroyed) return;
    if (!call.write({ msg: { $case: 'data', value: d } })) {
      await Promise.race([once(call, 'drain'), once(call, 'close')]);
    }
  }
  const e = await h.end;
  if (e.errorCode === STREAM_CANCELLED || call.cancelled || call.destroyed) return;
  call.write({ msg: { $case: 'end', value: e } });
  call.end();
}

/** replicaRelayServer implements ReplicaRelay over this replica's own agent sessions. */
export function replicaRelayServer(local: LocalSessions, log: Logger): ReplicaRelayServer {
  return {
    stream: (call: ServerDuplexStream<RelayIn, RelayOut>) => {
      if (!isReplicaPeer(call.getAuthContext().sslPeerCertificate)) {
        call.emit('error', { code: status.PERMISSION_DENIED, details: NOT_A_REPLICA });
        return;
      }
      let h: StreamHandle | undefined;
      const stop = (): void => h?.cancel();
      call.on('cancelled', stop);
      call.on('error', stop);
      call.on('close', stop);
      call.on('data', (m: RelayIn) => {
        if (!h) {
          const o = openOf(m);
          if (!o) {
            call.emit('error', { code: status.INVALID_ARGUMENT, details: 'BERTH_ERR_VALIDATION: the first relay message must open a stream' });
            return;
          }
          const opened = local.openLocal(o.node, o.open, o.windowBytes > 0 ? o.windowBytes : undefined);
          h = opened;
          opened.onInputCredit((bytes) => {
            if (!call.cancelled && !call.destroyed) call.write({ msg: { $case: 'credit', value: { streamId: opened.id, bytes } } });
          });
          void pump(opened, call).catch((err: unknown) => {
            log.warn('relay stream failed', { node: o.node, error: (err as Error).message });
            opened.cancel();
            call.emit('error', { code: status.INTERNAL, details: `BERTH_ERR_STREAM_FAILED: ${(err as Error).message}` });
          });
          return;
        }
        if (m.msg?.$case !== 'input') return;
        // Input waits for the agent's credit; reading no more meanwhile lets gRPC hold the caller back.
        call.pause();
        void h.send(m.msg.value).finally(() => call.resume());
      });
    },
    exec: (call: ServerUnaryCall<RelayExecRequest, RelayExecResponse>, cb: sendUnaryData<RelayExecResponse>) => {
      if (!isReplicaPeer(call.getAuthContext().sslPeerCertificate)) {
        cb({ code: status.PERMISSION_DENIED, details: NOT_A_REPLICA });
        return;
      }
      const { node, request, waitMs } = call.request;
      if (!request) {
        cb({ code: status.INVALID_ARGUMENT, details: 'BERTH_ERR_VALIDATION: the relay exec request carries no ExecRequest' });
        return;
      }
      const { requestId: _id, ...rest } = request;
      local.execLocal(node, rest, waitMs).then(
        (o) => cb(null, o.ok ? { result: o.result, errorCode: '', errorMessage: '' } : { result: undefined, errorCode: o.code, errorMessage: o.message }),
        (err: unknown) => cb({ code: status.INTERNAL, details: `BERTH_ERR_INTERNAL: ${(err as Error).message}` }),
      );
    },
    deleteVolume: (call: ServerUnaryCall<RelayVolumeDelete, RelayVolumeDeleteResponse>, cb: sendUnaryData<RelayVolumeDeleteResponse>) => {
      if (!isReplicaPeer(call.getAuthContext().sslPeerCertificate)) {
        cb({ code: status.PERMISSION_DENIED, details: NOT_A_REPLICA });
        return;
      }
      const { node, namespace, name, waitMs } = call.request;
      local.deleteVolumeLocal(node, { namespace, name }, waitMs).then(
        (o) => cb(null, o.ok ? { errorCode: '', errorMessage: '' } : { errorCode: o.code, errorMessage: o.message }),
        (err: unknown) => cb({ code: status.INTERNAL, details: `BERTH_ERR_INTERNAL: ${(err as Error).message}` }),
      );
    },
  };
}
