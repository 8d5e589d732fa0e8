/**
 * Plain gRPC calls to a cluster's agent gateway, made the way an agent makes them (mTLS, the
 * serving name agents check) or the way an attacker would (no certificate, a foreign one,
 * somebody else's). Every call has a deadline and answers a value saying what the gateway did,
 * so a test asserts on outcomes instead of catching exceptions.
 */
import { credentials, Metadata, status, type ChannelCredentials, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { GATEWAY_TLS_NAME } from '../../common/grpc-limits.js';
import { AgentGatewayClient, type ControlMessage, type Register } from '../../proto/gen/berth/v1/agent.js';

/** GATEWAY_CALL_TIMEOUT_MS bounds every call these helpers make. */
export const GATEWAY_CALL_TIMEOUT_MS = 10_000;

/** ClientPem is a client certificate and its private key, as PEM text. */
export interface ClientPem {
  certPem: string;
  keyPem: string;
}

/** grpcName is the name of a gRPC status code (`PERMISSION_DENIED`), or the number when unknown. */
export function grpcName(code: number | undefined): string {
  return code === undefined ? 'none' : (status as unknown as Record<number, string>)[code] ?? String(code);
}

function channelCredentials(caPem: string, client?: ClientPem): ChannelCredentials {
  return client
    ? credentials.createSsl(Buffer.from(caPem), Buffer.from(client.keyPem), Buffer.from(client.certPem))
    : credentials.createSsl(Buffer.from(caPem));
}

/** gatewayClient dials address trusting only caPem, presenting client when given, checking the name agents check. */
export function gatewayClient(address: string, caPem: string, client?: ClientPem): AgentGatewayClient {
  return new AgentGatewayClient(address, channelCredentials(caPem, client), { 'grpc.ssl_target_name_override': GATEWAY_TLS_NAME });
}

/** registerMessage is a Register an agent could send for nodeName (nothing in it is privileged). */
export function registerMessage(nodeName: string): Register {
  return {
    nodeName, labels: { probe: 'security-test' }, capacity: { cpuCores: 1, memoryBytes: 1 << 30, pids: 1000 },
    addresses: [], metricsUrl: '', agentVersion: 'security-test', cgroupVersion: 'v2', images: [], volumes: [],
  };
}

/** RegisterOutcome is what the gateway did with a Register: acknowledged it, or ended the session with a status. */
export type RegisterOutcome =
  | { accepted: true; nodeName: string }
  | { accepted: false; grpcCode: number | undefined; details: string; sessionError?: { code: string; message: string } };

/** describeRegister renders an outcome for failure messages. */
export function describeRegister(o: RegisterOutcome): string {
  if (o.accepted) return `accepted (RegisterAck for ${o.nodeName})`;
  const se = o.sessionError ? `, SessionError ${o.sessionError.code}: ${o.sessionError.message}` : '';
  return `refused with ${grpcName(o.grpcCode)} "${o.details}"${se}`;
}

/**
 * registerOnce opens a Session, sends Register for nodeName and waits (at most timeoutMs) for
 * the RegisterAck or the end of the stream. An acknowledged session is cancelled at once.
 */
export function registerOnce(address: string, caPem: string, client: ClientPem | undefined, nodeName: string,
  timeoutMs = GATEWAY_CALL_TIMEOUT_MS): Promise<RegisterOutcome> {
  const gw = gatewayClient(address, caPem, client);
  const call = gw.session(new Metadata(), { deadline: Date.now() + timeoutMs });
  return new Promise<RegisterOutcome>((resolve) => {
    let sessionError: { code: string; message: string } | undefined;
    let settled = false;
    const settle = (o: RegisterOutcome): void => {
      if (settled) return;
      settled = true;
      call.cancel();
      gw.close();
      resolve(o);
    };
    call.on('data', (m: ControlMessage) => {
      if (m.msg?.$case === 'registerAck') settle({ accepted: true, nodeName: m.msg.value.nodeName });
      else if (m.msg?.$case === 'error') sessionError = { code: m.msg.value.code, message: m.msg.value.message };
    });
    // 'status' always comes last; 'error' carries the same status for a non-OK end.
    call.on('error', (err: ServiceError) => settle({ accepted: false, grpcCode: err.code, details: err.details, ...(sessionError ? { sessionError } : {}) }));
    call.on('status', (s: StatusObject) => settle({ accepted: false, grpcCode: s.code, details: s.details, ...(sessionError ? { sessionError } : {}) }));
    call.write({ msg: { $case: 'register', value: registerMessage(nodeName) } });
  });
}

/** JoinOutcome is a signed certificate, or the status the gateway refused the join with. */
export type JoinOutcome = { ok: true; certificate: string } | { ok: false; grpcCode: number; details: string };

/** describeJoin renders an outcome for failure messages. */
export function describeJoin(o: JoinOutcome): string {
  return o.ok ? 'a signed node certificate' : `refused with ${grpcName(o.grpcCode)} "${o.details}"`;
}

/** joinOnce sends one Join (token, node name, CSR) over a connection that trusts only caPem. */
export function joinOnce(address: string, caPem: string, req: { token: string; nodeName: string; csr: string },
  timeoutMs = GATEWAY_CALL_TIMEOUT_MS): Promise<JoinOutcome> {
  const gw = gatewayClient(address, caPem);
  return new Promise<JoinOutcome>((resolve) => {
    gw.join(req, new Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
      gw.close();
      resolve(err ? { ok: false, grpcCode: err.code, details: err.details } : { ok: true, certificate: res.certificate });
    });
  });
}
