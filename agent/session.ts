/**
 * The agent's session with the control plane: one bidirectional gRPC stream, dialled out.
 * Register first, then heartbeat at the interval the gateway acks with; desired tasks flow down,
 * task status flows up (a full report after each registration, then changes). On any stream
 * error or end it reconnects with capped, jittered exponential backoff, rotating through servers.
 * Tasks and statuses cross here between the wire and the agent's domain (convert.ts).
 */
import type { ChannelCredentials, ClientDuplexStream } from '@grpc/grpc-js';
import {
  AgentGatewayClient, type AgentMessage, type ControlMessage, type ExecRequest, type ExecResult, type NodeImage, type NodeVolume, type Peer, type Register, type ServiceEndpoints, type VolumeDelete,
} from '../proto/gen/berth/v1/agent.js';
import { messageOf } from './errors.js';
import { AGENT_SESSION_CHANNEL_OPTIONS, GATEWAY_TLS_NAME } from '../common/grpc-limits.js';
import { silentLogger, type Logger } from '../common/log.js';
import type { DesiredTask, TaskStatusView } from './reconciler/index.js';
import type { ExecHandler } from './exec.js';
import { fromDesiredTasks, toProtoStatus } from './convert.js';
import { AgentStreams, type StreamHandlers } from './streams.js';

/** INITIAL_BACKOFF_MS is the first reconnect delay. */
export const INITIAL_BACKOFF_MS = 250;
/** MAX_BACKOFF_MS caps the reconnect delay. */
export const MAX_BACKOFF_MS = 5_000;
/** DEFAULT_HEARTBEAT_INTERVAL_MS is used when the ack does not say. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 5_000;
/** REGISTER_TIMEOUT_MS bounds the wait for RegisterAck before the attempt is abandoned. */
export const REGISTER_TIMEOUT_MS = 10_000;
const KEEPALIVE_TIME_MS = 10_000;
const KEEPALIVE_TIMEOUT_MS = 5_000;

/** TaskSink is the part of the reconciler the session drives. */
export interface TaskSink {
  setDesired(tasks: DesiredTask[]): void;
  statuses(): TaskStatusView[];
}

/** SessionOptions configures the session; `register` is called per attempt so it can refresh facts. */
export interface SessionOptions {
  servers: string[];
  register: () => Promise<Register> | Register;
  tasks: TaskSink;
  /** exec answers ExecRequests; without it they are refused with BERTH_ERR_EXEC_FAILED. */
  exec?: ExecHandler;
  /** streams serves logs and interactive exec streams (agent/streams.ts); a kind without a handler is refused. */
  streams?: StreamHandlers;
  /** deleteVolume answers VolumeDelete requests; without it they are refused with BERTH_ERR_VOLUME_FAILED. */
  deleteVolume?: (namespace: string, name: string) => Promise<{ ok: true } | { ok: false; code: string; message: string }>;
  log?: Logger;
  /** identity supplies the mTLS credentials of each connection and renews the node certificate. */
  identity: SessionIdentity;
  onConnectedChange?: (connected: boolean) => void;
  /** onSubnet receives the node's container subnet (and the cluster CIDR) from each RegisterAck that carries one. */
  onSubnet?: (subnet: string, clusterCidr: string) => void;
  /** onPeers receives the other nodes' subnets and addresses, the complete set each time. */
  onPeers?: (peers: Peer[]) => void;
  /** onEndpoints receives every service's ready replicas cluster-wide, the complete set each time. */
  onEndpoints?: (services: ServiceEndpoints[]) => void;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** RENEW_RETRY_MS is the wait before asking again after a refused or unanswered renewal. */
export const RENEW_RETRY_MS = 60_000;
/** REFUSALS_THAT_DROP_THE_CERTIFICATE end the node's identity: it must join again. */
const REFUSALS_THAT_DROP_THE_CERTIFICATE = new Set(['BERTH_ERR_CERTIFICATE_REVOKED', 'BERTH_ERR_CERTIFICATE_REQUIRED']);

/** SessionIdentity is the node's certificate as the session uses it (agent/pki.ts's NodeIdentity). */
export interface SessionIdentity {
  /** channel returns credentials for the next connection, joining first if there is no certificate. */
  channel(servers: string[]): Promise<ChannelCredentials>;
  renewDueInMs(): number;
  renewalRequest(): Promise<string>;
  renewed(certPem: string): void;
  /** forget drops a certificate the cluster refused for good. */
  forget(): void;
}

/** backoffDelayMs is attempt n's delay: initial·2ⁿ capped at max, times a jitter factor in [0.5, 1). */
export function backoffDelayMs(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base * (0.5 + random() / 2));
}

/** AgentSession keeps the agent connected; it never throws out of its loop. */
export class AgentSession {
  private readonly log: Logger;
  private closed = false;
  private registered = false;
  private call?: ClientDuplexStream<AgentMessage, ControlMessage>;
  private loop?: Promise<void>;
  private wake?: () => void;
  private readonly pending = new Map<string, TaskStatusView>();
  private flushQueued = false;

  constructor(private readonly opts: SessionOptions) {
    if (opts.servers.length === 0) throw new Error('at least one control-plane server is required');
    this.log = opts.log ?? silentLogger;
  }

  /** start begins connecting in the background. */
  start(): void {
    this.loop ??= this.run();
  }

  /** isRegistered tells whether the gateway has acknowledged this session. */
  get isRegistered(): boolean {
    return this.registered;
  }

  /** report queues one task's status change; changes are sent in batches while registered. */
  report(status: TaskStatusView): void {
    if (!this.registered) return; // the full report after the next registration carries it
    this.pending.set(`${status.namespace}/${status.name}/${status.uid}`, status);
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      const tasks = [...this.pending.values()].map(toProtoStatus);
      this.pending.clear();
      if (tasks.length > 0) this.send({ msg: { $case: 'taskStatus', value: { tasks, full: false } } });
    });
  }

  /** reportImages sends the node's image list; unregistered, the next Register carries it instead. */
  reportImages(images: NodeImage[]): void {
    this.send({ msg: { $case: 'nodeImages', value: { images } } });
  }

  /** reportVolumes sends the node's named volumes; unregistered, the next Register carries them instead. */
  reportVolumes(volumes: NodeVolume[]): void {
    this.send({ msg: { $case: 'nodeVolumes', value: { volumes } } });
  }

  /** runVolumeDelete answers one VolumeDelete on the stream it came from. */
  private async runVolumeDelete(req: VolumeDelete): Promise<void> {
    const call = this.call;
    const out = this.opts.deleteVolume
      ? await this.opts.deleteVolume(req.namespace, req.name).catch((err: unknown) => ({ ok: false as const, code: 'BERTH_ERR_VOLUME_FAILED', message: messageOf(err) }))
      : { ok: false as const, code: 'BERTH_ERR_VOLUME_FAILED', message: 'this agent keeps no named volumes' };
    const result = out.ok ? { requestId: req.requestId, errorCode: '', errorMessage: '' } : { requestId: req.requestId, errorCode: out.code, errorMessage: out.message };
    if (call === this.call) this.send({ msg: { $case: 'volumeDeleteResult', value: result } });
  }

  /** close ends the stream and the reconnect loop. */
  async close(): Promise<void> {
    this.closed = true;
    this.call?.cancel();
    this.wake?.();
    await this.loop;
  }

  private send(msg: AgentMessage): void {
    if (!this.call || !this.registered) return;
    try {
      this.call.write(msg);
    } catch (err) {
      this.log.warn('session write failed', { error: messageOf(err) });
    }
  }

  /** runExec answers one ExecRequest on the stream it came from (a new stream has new ids). */
  private async runExec(req: ExecRequest): Promise<void> {
    const call = this.call;
    const result: ExecResult = this.opts.exec
      ? await this.opts.exec(req)
      : { requestId: req.requestId, exitCode: -1, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), stdoutTruncated: false,
        stderrTruncated: false, timedOut: false, errorCode: 'BERTH_ERR_EXEC_FAILED', errorMessage: 'this agent does not serve exec' };
    if (call === this.call) this.send({ msg: { $case: 'execResult', value: result } });
  }

  private async run(): Promise<void> {
    let attempt = 0;
    for (let i = 0; !this.closed; i++) {
      const server = this.opts.servers[i % this.opts.servers.length]!;
      let wasRegistered = false;
      try {
        wasRegistered = await this.attempt(server);
      } catch (err) {
        this.log.error('session attempt failed', { server, error: messageOf(err) });
      }
      if (this.closed) break;
      if (wasRegistered) attempt = 0;
      const delay = backoffDelayMs(attempt++, this.opts.initialBackoffMs ?? INITIAL_BACKOFF_MS, this.opts.maxBackoffMs ?? MAX_BACKOFF_MS);
      this.log.debug('reconnecting', { delayMs: delay });
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        this.wake = () => { clearTimeout(t); resolve(); };
      });
      this.wake = undefined;
    }
  }

  /** attempt runs one stream to its end; it resolves true if the session got registered. */
  private async attempt(server: string): Promise<boolean> {
    const register = await this.opts.register();
    // Servers are tried in turn; a join (no certificate yet) may use any of them.
    const channel = await this.opts.identity.channel([server, ...this.opts.servers.filter((s) => s !== server)]);
    const client = new AgentGatewayClient(server, channel, {
      'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
      'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
      'grpc.keepalive_permit_without_calls': 1,
      // Every serving certificate names SERVING_DNS_NAME; checking it (rather than the dialled IP,
      // which TLS's server name may not carry) lets agents reach the gateway by any address.
      'grpc.ssl_target_name_override': GATEWAY_TLS_NAME,
      ...AGENT_SESSION_CHANNEL_OPTIONS,
    });
    const call = client.session();
    this.call = call;
    // Streams belong to this stream of the session: they end with it, and ids are never reused across.
    const streams = new AgentStreams(this.opts.streams ?? {}, (msg) => {
      if (call !== this.call || !this.registered) return false;
      try {
        call.write(msg);
        return true;
      } catch {
        return false;
      }
    }, this.log.child('streams'));
    let heartbeat: NodeJS.Timeout | undefined;
    let renewal: NodeJS.Timeout | undefined;
    const scheduleRenewal = (delayMs: number): void => {
      if (renewal) clearTimeout(renewal);
      renewal = setTimeout(() => void this.opts.identity.renewalRequest().then(
        (csr) => this.send({ msg: { $case: 'renewCertificate', value: { csr } } }),
        (err: unknown) => this.log.warn('cannot make a renewal request', { error: messageOf(err) }),
      ).finally(() => scheduleRenewal(RENEW_RETRY_MS)), Math.min(Math.max(delayMs, 0), 2 ** 31 - 1));
    };
    let wasRegistered = false;
    const registerTimer = setTimeout(() => {
      this.log.warn('no RegisterAck in time; retrying', { server, timeoutMs: REGISTER_TIMEOUT_MS });
      call.cancel();
    }, REGISTER_TIMEOUT_MS);
    try {
      await new Promise<void>((resolve) => {
        let done = false;
        const finish = (why: string, err?: unknown) => {
          if (done) return;
          done = true;
          if (!this.closed) this.log.warn('session ended', { server, why, ...(err ? { error: messageOf(err) } : {}) });
          resolve();
        };
        call.on('data', (msg: ControlMessage) => {
          const m = msg.msg;
          if (!m) return;
          switch (m.$case) {
            case 'registerAck': {
              clearTimeout(registerTimer);
              this.registered = wasRegistered = true;
              this.opts.onConnectedChange?.(true);
              const every = m.value.heartbeatIntervalMs > 0 ? m.value.heartbeatIntervalMs : DEFAULT_HEARTBEAT_INTERVAL_MS;
              this.log.info('registered', { server, node: m.value.nodeName, heartbeatMs: every, subnet: m.value.podSubnet });
              if (m.value.podSubnet) this.opts.onSubnet?.(m.value.podSubnet, m.value.clusterCidr);
              heartbeat = setInterval(() => this.send({ msg: { $case: 'heartbeat', value: { sentAtUnixMs: Date.now() } } }), every);
              this.send({ msg: { $case: 'taskStatus', value: { tasks: this.opts.tasks.statuses().map(toProtoStatus), full: true } } });
              scheduleRenewal(this.opts.identity.renewDueInMs());
              break;
            }
            case 'certificateIssued':
              if (m.value.error) {
                this.log.warn('the gateway refused to renew the node certificate', { error: m.value.error });
                break;
              }
              try {
                this.opts.identity.renewed(m.value.certificate);
                scheduleRenewal(this.opts.identity.renewDueInMs());
              } catch (err) {
                this.log.error('renewed certificate not stored', { error: messageOf(err) });
              }
              break;
            case 'desiredTasks':
              if (!this.registered) break;
              this.log.debug('desired tasks', { count: m.value.tasks.length });
              this.opts.tasks.setDesired(fromDesiredTasks(m.value));
              break;
            case 'peers':
              if (this.registered) this.opts.onPeers?.(m.value.peers);
              break;
            case 'endpoints':
              if (this.registered) this.opts.onEndpoints?.(m.value.services);
              break;
            case 'execRequest':
              if (this.registered) void this.runExec(m.value);
              break;
            case 'volumeDelete':
              if (this.registered) void this.runVolumeDelete(m.value);
              break;
            case 'logsRequest':
              if (this.registered) streams.open('logs', m.value);
              break;
            case 'execStart':
              if (this.registered) streams.open('exec', m.value);
              break;
            case 'execInput':
              streams.input(m.value);
              break;
            case 'streamCredit':
              streams.credit(m.value);
              break;
            case 'streamCancel':
              streams.cancel(m.value);
              break;
            case 'error':
              this.log.error('gateway refused the session', { code: m.value.code, message: m.value.message });
              if (REFUSALS_THAT_DROP_THE_CERTIFICATE.has(m.value.code)) {
                // Revoked (the node was deleted) or expired: the certificate is worthless and a
                // configured token joins anew. A deleted node also stops its tasks, as a node
                // removed from a Swarm does; an expired one keeps them running meanwhile.
                this.opts.identity.forget();
                if (m.value.code === 'BERTH_ERR_CERTIFICATE_REVOKED') this.opts.tasks.setDesired([]);
              }
              call.cancel();
              break;
          }
        });
        call.on('error', (err) => finish('error', err));
        call.on('end', () => finish('end'));
        call.on('close', () => finish('close'));
        call.write({ msg: { $case: 'register', value: register } });
      });
    } finally {
      clearTimeout(registerTimer);
      streams.closeAll('the session ended');
      if (heartbeat) clearInterval(heartbeat);
      if (renewal) clearTimeout(renewal);
      if (this.registered) this.opts.onConnectedChange?.(false);
      this.registered = false;
      this.pending.clear();
      this.call = undefined;
      call.cancel();
      client.close();
    }
    return wasRegistered;
  }
}
