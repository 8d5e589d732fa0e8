/**
 * One agent session: Register first, then heartbeats (each refreshes the node's lease) and task
 * status reports; the gateway pushes the node's full desired task set whenever it changes.
 * Ending the stream revokes nothing: the lease expires by itself and that marks the node not Ready.
 */
import type { ProjectedData } from './projected-data.js';
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { status, type ServerDuplexStream } from '@grpc/grpc-js';
import type { AgentMessage, ControlMessage, ExecRequest, NodeImages, Register, TaskStatusReport } from '../../proto/gen/berth/v1/agent.js';
import type { ErrorCode } from '../errors.js';
import type { Logger } from '../../common/log.js';
import { setCondition } from '../objects/conditions.js';
import { checkDnsLabel } from '../objects/names.js';
import type { Node, Task } from '../objects/types.js';
import { nodeKey, nodeLeaseKey, taskKey } from '../store/keys.js';
import type { SubnetAllocator } from '../network/subnets.js';
import { peersOf } from '../network/peers.js';
import type { EndpointsFeed, EndpointsSnapshot } from '../network/endpoints.js';
import { TASKS_BY_NAME, TASKS_BY_NODE, type Informers, type NodeLease } from '../store/informers.js';
import type { StoreLease } from '../store/leases.js';
import type { Store } from '../store/store.js';
import { fromProtoImages, fromProtoStatus, fromProtoVolumes, nodeStatusFrom, toDesiredTasks } from './convert.js';
import { VolumeDeleteCalls, type VolumeDeleteOutcome } from './volume-relay.js';
import type { NodeVolumes } from '../../proto/gen/berth/v1/agent.js';
import { ExecCalls, type ExecCall, type ExecOutcome } from './exec-relay.js';
import { SessionStreams, type StreamHandle, type StreamOpen } from './streams.js';
import { mergeReported } from './reported-status.js';
import { checkRevocation, nodeCertificateOf, peerOf, type NodeCertificate, type Refusal } from './node-identity.js';
import type { ClusterCa } from '../security/pki.js';
import type { CertificateRenewal } from '../../proto/gen/berth/v1/agent.js';

/** PUSH_DEBOUNCE_MS coalesces bursts of task changes into one DesiredTasks message. */
export const PUSH_DEBOUNCE_MS = 20;
const NODE_UPSERT_ATTEMPTS = 8;

/** SessionDeps is what a session needs from the gateway. */
export interface SessionDeps {
  store: Store;
  inf: Informers;
  log: Logger;
  leaseTtlSeconds: number;
  /** subnets allocates node subnets; absent: nodes get none and containers no address. */
  subnets?: SubnetAllocator;
  /** endpoints is the gateway's one feed of every service's ready replicas (DNS, routing mesh). */
  endpoints?: EndpointsFeed;
  /** ca signs certificate renewals for the session's node. */
  ca: ClusterCa;
  nodeCertTtlMs: number;
  /** refused reports a refused session (audit). */
  refused(what: { source: string; node: string; code: string; message: string; identity?: string }): void;
  /** projected adds the Secrets and Configs the node's tasks use to its desired set. */
  projected?: ProjectedData;
  /** claim registers this session as the node's current one, replacing (closing) an older one. */
  claim(node: string, s: Session): void;
  release(node: string, s: Session): void;
  /** relayAddress is this replica's ReplicaRelay address, recorded in the node lease so other replicas can reach the session. */
  relayAddress?: () => string;
}

/** Session serves one AgentGateway.Session stream. */
export class Session {
  readonly id = randomUUID();
  private nodeName: string | undefined;
  private lease: StoreLease | undefined;
  private closed = false;
  private chain: Promise<void> = Promise.resolve();
  private pushTimer: NodeJS.Timeout | undefined;
  private lastPushed = '';
  private lastPeers = '';
  private lastEndpoints = '';
  private unsubscribeNodes: (() => void) | undefined;
  private unsubscribeEndpoints: (() => void) | undefined;
  private unsubscribe: (() => void) | undefined;
  private unsubscribeProjected: (() => void) | undefined;
  private readonly execs = new ExecCalls();
  private readonly volumeDeletes = new VolumeDeleteCalls();
  private readonly streams = new SessionStreams((m) => {
    if (this.closed || this.nodeName === undefined || this.call.destroyed || !this.call.writable) return false;
    this.call.write(m);
    return true;
  });
  /** identity is the verified node certificate the session was opened with (or why there is none). */
  private readonly identity: NodeCertificate | Refusal;
  private expiryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly call: ServerDuplexStream<AgentMessage, ControlMessage>, private readonly deps: SessionDeps) {
    this.identity = nodeCertificateOf(peerOf(call));
    call.on('data', (m: AgentMessage) => {
      // Stream traffic only ever names streams this session opened after Register, so it skips
      // the queue: a follower's log lines must not wait behind status writes to etcd.
      if (this.onStreamMessage(m)) return;
      // Handle messages strictly in order: a status report must not overtake its Register.
      this.chain = this.chain.then(() => this.onMessage(m)).catch((err: Error) => {
        // Unexpected (etcd unreachable...): end the session so the agent reconnects and starts over.
        this.deps.log.error('session message failed', { node: this.nodeName, err });
        this.fail('BERTH_ERR_INTERNAL', `control plane error: ${err.message}`);
      });
    });
    call.on('end', () => this.close('stream ended'));
    call.on('error', (err) => this.close(`stream error: ${err.message}`));
    call.on('cancelled', () => this.close('cancelled'));
  }

  /** fail sends a SessionError and ends the stream. */
  fail(code: ErrorCode, message: string): void {
    if (!this.closed) {
      this.send({ msg: { $case: 'error', value: { code, message } } });
      this.call.end();
    }
    this.close(message);
  }

  /** exec relays one command to the agent and waits up to waitMs for its answer. */
  exec(call: ExecCall, waitMs: number): Promise<ExecOutcome> {
    return this.execs.start((req: ExecRequest) => {
      if (this.closed || this.call.destroyed || !this.call.writable) return false;
      this.call.write({ msg: { $case: 'execRequest', value: req } });
      return true;
    }, call, waitMs);
  }

  /** openStream opens a logs or exec stream to the agent (see streams.ts). */
  openStream(open: StreamOpen, windowBytes?: number): StreamHandle {
    return this.streams.open(open, windowBytes);
  }

  /** deleteVolume asks the agent to delete one named volume and waits up to waitMs for its answer. */
  deleteVolume(volume: { namespace: string; name: string }, waitMs: number): Promise<VolumeDeleteOutcome> {
    return this.volumeDeletes.start((req) => {
      if (this.closed || this.nodeName === undefined || this.call.destroyed || !this.call.writable) return false;
      this.call.write({ msg: { $case: 'volumeDelete', value: req } });
      return true;
    }, volume, waitMs);
  }

  /** refuse records and ends a session that must not go on; nothing has been written for it. */
  private refuse(r: Refusal, node: string): void {
    // The audit line names who tried: the certificate's node, when the peer proved one.
    const proved = 'nodeName' in this.identity ? this.identity.nodeName : undefined;
    this.deps.refused({ source: this.call.getPeer(), node, code: r.code, message: r.message, ...(proved ? { identity: proved } : {}) });
    this.deps.log.warn('agent session refused', { node, code: r.code, why: r.message, peer: this.call.getPeer() });
    this.send({ msg: { $case: 'error', value: { code: r.code, message: r.message } } });
    this.closed = true;
    this.call.emit('error', { code: r.grpc, details: `${r.code}: ${r.message}` });
  }

  /** armExpiry ends the session when its certificate expires without a renewal. */
  private armExpiry(notAfter: Date): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    const left = notAfter.getTime() - Date.now();
    this.expiryTimer = setTimeout(() => {
      if (notAfter.getTime() > Date.now()) return this.armExpiry(notAfter);
      this.fail('BERTH_ERR_CERTIFICATE_REQUIRED', `the node certificate expired at ${notAfter.toISOString()} and was not renewed`);
    }, Math.min(Math.max(left, 0), 2 ** 31 - 1));
    this.expiryTimer.unref();
  }

  /** close stops pushes and heartbeats; idempotent. */
  close(why: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.execs.failAll('BERTH_ERR_NODE_UNAVAILABLE', `the agent session ended: ${why}`);
    this.volumeDeletes.failAll('BERTH_ERR_NODE_UNAVAILABLE', `the agent session ended: ${why}`);
    this.streams.failAll('BERTH_ERR_NODE_UNAVAILABLE', `the agent session ended: ${why}`);
    if (this.pushTimer) clearTimeout(this.pushTimer);
    this.unsubscribe?.();
    this.unsubscribeProjected?.();
    this.unsubscribeNodes?.();
    this.unsubscribeEndpoints?.();
    this.lease?.release();
    if (this.nodeName) {
      this.deps.release(this.nodeName, this);
      this.deps.log.info('agent session closed', { node: this.nodeName, why });
    }
    try {
      this.call.end();
    } catch {
      // already ended
    }
  }

  private send(m: ControlMessage): void {
    if (!this.closed && !this.call.destroyed && this.call.writable) this.call.write(m);
  }

  /** onStreamMessage delivers stream data, ends and credit at once; false for any other message. */
  private onStreamMessage(m: AgentMessage): boolean {
    switch (m.msg?.$case) {
      case 'streamData': this.streams.data(m.msg.value); return true;
      case 'streamEnd': this.streams.ended(m.msg.value); return true;
      case 'streamCredit': this.streams.credit(m.msg.value); return true;
      default: return false;
    }
  }

  private async onMessage(m: AgentMessage): Promise<void> {
    if (this.closed || !m.msg) return;
    if (this.nodeName === undefined) {
      if (m.msg.$case !== 'register') return this.fail('BERTH_ERR_REGISTER_REQUIRED', 'the first message of a session must be register');
      return this.register(m.msg.value);
    }
    switch (m.msg.$case) {
      case 'register': return this.fail('BERTH_ERR_REGISTER_REQUIRED', 'register was already received on this session');
      case 'heartbeat': return this.heartbeat();
      case 'taskStatus': return this.reportStatus(m.msg.value);
      case 'execResult': return this.execs.settle(m.msg.value);
      case 'nodeImages': return this.reportImages(m.msg.value);
      case 'nodeVolumes': return this.reportVolumes(m.msg.value);
      case 'volumeDeleteResult': return this.volumeDeletes.settle(m.msg.value);
      case 'renewCertificate': return this.renewCertificate(m.msg.value);
    }
  }

  /** renewCertificate signs a fresh certificate for this session's node; the session goes on. */
  private async renewCertificate(m: CertificateRenewal): Promise<void> {
    const r = await this.deps.ca.signNode(m.csr, this.nodeName!, this.deps.nodeCertTtlMs);
    if (!r.ok) {
      this.send({ msg: { $case: 'certificateIssued', value: { certificate: '', error: r.reason } } });
      return;
    }
    this.armExpiry(r.notAfter);
    this.deps.log.info('node certificate renewed', { node: this.nodeName, notAfter: r.notAfter.toISOString() });
    this.send({ msg: { $case: 'certificateIssued', value: { certificate: r.certificatePem, error: '' } } });
  }

  private async register(r: Register): Promise<void> {
    // Identity before anything is written: only a node's own certificate may speak for it.
    const id = this.identity;
    if ('code' in id) return this.refuse(id, r.nodeName);
    if (r.nodeName !== id.nodeName) {
      return this.refuse({ code: 'BERTH_ERR_IDENTITY_MISMATCH', grpc: status.PERMISSION_DENIED,
        message: `the certificate is node ${id.nodeName}'s; it cannot register as ${r.nodeName}` }, r.nodeName);
    }
    const revoked = await checkRevocation(this.deps.store, id);
    if (revoked) return this.refuse(revoked, r.nodeName);
    const why = checkDnsLabel(r.nodeName);
    if (why) return this.fail('BERTH_ERR_INVALID_NODE_NAME', `node name ${why}`);
    this.armExpiry(id.notAfter);
    this.nodeName = r.nodeName;
    this.deps.claim(r.nodeName, this);
    // Lease first, node second: the lifecycle controller then never sees a Ready node without a lease.
    await this.grantLease();
    const subnet = await this.subnetOf(r.nodeName);
    await this.upsertNode(r, subnet);
    if (this.closed) return;
    const ttlMs = this.deps.leaseTtlSeconds * 1000;
    this.send({ msg: { $case: 'registerAck', value: { nodeName: r.nodeName, heartbeatIntervalMs: Math.floor(ttlMs / 3), leaseTtlMs: ttlMs, podSubnet: subnet ?? '', clusterCidr: this.deps.subnets?.clusterCidr ?? '' } } });
    this.deps.log.info('agent registered', { node: r.nodeName, session: this.id, agentVersion: r.agentVersion });
    this.unsubscribe = this.deps.inf.tasks.onChange((e) => {
      if (e.object?.spec.nodeName === this.nodeName || e.previous?.spec.nodeName === this.nodeName) this.schedulePush();
    });
    // A changed secret or config reaches the agents whose tasks use it (push sends only differences).
    this.unsubscribeProjected = this.deps.projected?.subscribe(() => this.schedulePush());
    this.push();
    if (this.deps.subnets) {
      // Routes to other nodes' subnets follow node changes (a new node, a changed address).
      this.unsubscribeNodes = this.deps.inf.nodes.onChange(() => this.pushPeers());
      this.pushPeers();
      // Every agent gets the cluster-wide set (DNS, routing mesh), computed once for all sessions.
      this.unsubscribeEndpoints = this.deps.endpoints?.subscribe((e) => this.pushEndpoints(e));
    }
  }

  /** pushEndpoints sends the services' ready replicas when they differ from what was last sent. */
  private pushEndpoints(e: EndpointsSnapshot): void {
    if (this.closed || e.encoded === this.lastEndpoints) return;
    this.lastEndpoints = e.encoded;
    this.send({ msg: { $case: 'endpoints', value: { services: e.services } } });
  }

  /** pushPeers sends the other nodes' subnets when they differ from what was last sent. */
  private pushPeers(): void {
    if (this.closed || this.nodeName === undefined) return;
    const peers = peersOf(this.deps.inf.nodes.list(), this.nodeName);
    const encoded = JSON.stringify(peers);
    if (encoded === this.lastPeers) return;
    this.lastPeers = encoded;
    this.send({ msg: { $case: 'peers', value: { peers } } });
  }

  private async grantLease(): Promise<void> {
    const lease = this.deps.store.lease(this.deps.leaseTtlSeconds, { keepAlive: false });
    const id = await lease.grant();
    this.lease?.release();
    this.lease = lease;
    const relay = this.deps.relayAddress?.();
    const value: NodeLease = { nodeName: this.nodeName!, sessionId: this.id, connectedAt: new Date().toISOString(), ...(relay ? { relay } : {}) };
    await this.deps.store.putLeased(nodeLeaseKey(this.nodeName!), value, id);
  }

  /** subnetOf is the node's subnet (allocated on first registration); a full cluster CIDR is logged, not fatal. */
  private async subnetOf(node: string): Promise<string | undefined> {
    if (!this.deps.subnets) return undefined;
    const r = await this.deps.subnets.subnetFor(node);
    if (r.ok) return r.subnet;
    this.deps.log.error('no subnet for node; its containers get no address', { node, reason: r.reason });
    return undefined;
  }

  private async upsertNode(r: Register, subnet: string | undefined): Promise<void> {
    const key = nodeKey(r.nodeName);
    const ready = { type: 'Ready', status: 'True' as const, reason: 'AgentConnected', message: 'the agent holds a live session and heartbeat lease' };
    for (let i = 0; i < NODE_UPSERT_ATTEMPTS; i++) {
      const cur = await this.deps.store.get<Node>(key);
      const now = new Date().toISOString();
      if (!cur) {
        // Agent labels apply on first registration only; afterwards admins own metadata.labels.
        const node: Node = {
          kind: 'Node',
          metadata: { name: r.nodeName, uid: randomUUID(), generation: 1, labels: { ...r.labels }, createdAt: now },
          spec: { unschedulable: false, taints: [] },
          status: { ...nodeStatusFrom(r, setCondition([], ready, now).conditions), ...(subnet ? { subnet } : {}) },
        };
        if ((await this.deps.store.create(key, node)).ok) return;
        continue;
      }
      const next = structuredClone(cur);
      const keep = subnet ?? cur.status?.subnet;
      next.status = { ...nodeStatusFrom(r, setCondition(cur.status?.conditions, ready, now).conditions), ...(keep ? { subnet: keep } : {}) };
      if ((await this.deps.store.update(key, next, cur.metadata.resourceVersion!)).ok) return;
    }
    throw new Error(`cannot record node ${r.nodeName}: too many conflicting writes`);
  }

  private async heartbeat(): Promise<void> {
    try {
      await this.lease!.keepaliveOnce();
    } catch (err) {
      // The lease expired (the node was marked not Ready); start a new one so it becomes Ready again.
      this.deps.log.warn('heartbeat lease lost; granting a new one', { node: this.nodeName, err });
      if (!this.closed) await this.grantLease();
    }
  }

  private schedulePush(): void {
    if (this.pushTimer || this.closed) return;
    this.pushTimer = setTimeout(() => {
      this.pushTimer = undefined;
      this.push();
    }, PUSH_DEBOUNCE_MS);
  }

  private push(): void {
    // A lost task was given up and replaced: the agent must not run it, even if it comes back
    // with it (a node that was away, or a store restored from a snapshot).
    const desired = toDesiredTasks(this.deps.inf.tasks.byIndex(TASKS_BY_NODE, this.nodeName!).filter((t) => t.status.phase !== 'lost'));
    this.deps.projected?.fill(desired);
    const encoded = JSON.stringify(desired);
    if (encoded === this.lastPushed) return;
    this.lastPushed = encoded;
    this.send({ msg: { $case: 'desiredTasks', value: desired } });
  }

  /** reportImages records the node's image list in its status (compare-and-swap, like every write). */
  private async reportImages(m: NodeImages): Promise<void> {
    const images = fromProtoImages(m.images);
    const r = await this.deps.store.mutate<Node>(nodeKey(this.nodeName!), (cur) =>
      (isDeepStrictEqual(cur.status?.images, images) ? undefined : { ...cur, status: { ...cur.status, images } }));
    if (!r.ok && r.reason !== 'NotFound') this.deps.log.warn('node images not recorded', { node: this.nodeName, reason: r.reason });
  }

  /** reportVolumes records the node's named volumes in its status, as reportImages does images. */
  private async reportVolumes(m: NodeVolumes): Promise<void> {
    const volumes = fromProtoVolumes(m.volumes);
    const r = await this.deps.store.mutate<Node>(nodeKey(this.nodeName!), (cur) =>
      (isDeepStrictEqual(cur.status?.volumes, volumes) ? undefined : { ...cur, status: { ...cur.status, volumes } }));
    if (!r.ok && r.reason !== 'NotFound') this.deps.log.warn('node volumes not recorded', { node: this.nodeName, reason: r.reason });
  }

  private async reportStatus(report: TaskStatusReport): Promise<void> {
    const node = this.nodeName!;
    const seen = new Set<string>();
    for (const s of report.tasks) {
      const task = this.deps.inf.tasks.byIndex(TASKS_BY_NAME, `${s.namespace}/${s.name}`).find((t) => t.metadata.uid === s.uid && t.spec.nodeName === node);
      if (!task) continue; // deleted meanwhile, or not ours: nothing to record
      seen.add(task.metadata.uid);
      const status = fromProtoStatus(s);
      if (!status) {
        this.deps.log.warn('ignoring status with unknown phase', { node, task: s.name, phase: s.phase });
        continue;
      }
      await this.writeStatus(task, (cur) => mergeReported(cur, status, new Date()));
    }
    if (!report.full) return;
    for (const task of this.deps.inf.tasks.byIndex(TASKS_BY_NODE, node)) {
      if (seen.has(task.metadata.uid) || task.status.phase !== 'running') continue;
      await this.writeStatus(task, (cur) => ({ ...cur, phase: 'lost', reason: 'AgentLostTask', message: `the agent on ${node} no longer knows this task` }));
    }
  }

  private async writeStatus(task: Task, next: (cur: Task['status']) => Task['status']): Promise<void> {
    const key = taskKey(task.metadata.namespace!, task.spec.service, task.metadata.name);
    const r = await this.deps.store.mutate<Task>(key, (cur) => {
      if (cur.metadata.uid !== task.metadata.uid) return undefined;
      // Lost is final: the task was given up and replaced; an agent that comes back late and
      // still runs it must not revive it (its desired set already tells it to stop).
      if (cur.status.phase === 'lost') return undefined;
      const status = next(cur.status);
      if (isDeepStrictEqual(status, cur.status)) return undefined;
      return { ...cur, status };
    }, task);
    if (!r.ok && r.reason !== 'NotFound') this.deps.log.warn('task status not recorded', { task: key, reason: r.reason });
  }
}
