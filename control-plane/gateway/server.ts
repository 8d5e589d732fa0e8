/** The agent gateway: a grpc-js server for AgentGateway.Session, one Session per connected agent. */
import { ProjectedData } from './projected-data.js';
import type { SecretSealer } from '../security/secret-sealer.js';
import { experimental, Server, type ServerCredentials } from '@grpc/grpc-js';
import { AgentGatewayService, type AgentGatewayServer } from '../../proto/gen/berth/v1/agent.js';
import type { Logger } from '../../common/log.js';
import type { Informers } from '../store/informers.js';
import type { Store } from '../store/store.js';
import { Session } from './session.js';
import type { ExecCall, ExecOutcome } from './exec-relay.js';
import type { VolumeDeleteOutcome } from './volume-relay.js';
import { failedStream, type StreamHandle, type StreamOpen } from './streams.js';
import { ReplicaRelayService } from '../../proto/gen/berth/v1/relay.js';
import { replicaRelayServer } from './replica-relay-server.js';
import { RelayClients } from './replica-relay-client.js';
import type { ReplicaCertificate } from '../security/replica-certificate.js';
import { nodeLeaseKey } from '../store/keys.js';
import type { SubnetAllocator } from '../network/subnets.js';
import { EndpointsFeed } from '../network/endpoints.js';
import { AGENT_SESSION_CHANNEL_OPTIONS } from '../../common/grpc-limits.js';
import type { ClusterCa } from '../security/pki.js';
import { randomUUID } from 'node:crypto';
import type { NodeRevocation } from '../objects/security-types.js';
import { nodeRevocationKey } from '../store/keys.js';
import type { Tokens } from '../security/tokens.js';
import { clusterInfoHandler, joinHandler } from './node-identity.js';
import type { ServingCertificate } from '../security/serving-certificate.js';

/** GATEWAY_SHUTDOWN_GRACE_MS is how long open streams get to finish before a forced shutdown. */
export const GATEWAY_SHUTDOWN_GRACE_MS = 2_000;

/** GatewayOptions configures the gateway. */
export interface GatewayOptions {
  listen: string;
  leaseTtlSeconds: number;
  store: Store;
  inf: Informers;
  log: Logger;
  /** subnets allocates node subnets; absent: no container networking. */
  subnets?: SubnetAllocator;
  /** ca verifies node certificates (mTLS) and signs joins and renewals. */
  ca: ClusterCa;
  tokens: Tokens;
  /** serving is the gateway's own certificate (updated in place when re-issued). */
  serving: ServingCertificate;
  /** nodeCertTtlMs is the lifetime of node certificates it signs. */
  nodeCertTtlMs: number;
  /** refused reports refused joins and sessions (audit). */
  refused(what: { source: string; node: string; verb: string; code: string; message: string; identity?: string }): void;
  /** replica is this replica's certificate for calling other replicas' relay; absent: no relaying out. */
  replica?: ReplicaCertificate;
  /** advertiseHost is the address other replicas dial this one's relay by when listen is a wildcard. */
  advertiseHost?: string;
  /** sealer opens the Secrets that agents' tasks project (absent: tasks using secrets wait for them). */
  sealer?: SecretSealer;
}

/** Gateway is a listening gateway; address is host:port actually bound. */
export interface Gateway {
  address: string;
  /** exec relays a command to the agent of node through its session (see exec-relay.ts). */
  exec(node: string, call: ExecCall, waitMs: number): Promise<ExecOutcome>;
  /** openStream opens a logs or exec stream on node's agent session, here or through the replica holding it (see streams.ts). */
  openStream(node: string, open: StreamOpen, windowBytes?: number): StreamHandle;
  /** relayAddress is where other replicas reach this one's ReplicaRelay (host:port). */
  relayAddress: string;
  /** deleteVolume asks node's agent, through its session here or on the replica holding it, to delete a named volume (volume-relay.ts). */
  deleteVolume(node: string, volume: { namespace: string; name: string }, waitMs: number): Promise<VolumeDeleteOutcome>;
  /** forget ends a removed node's session on this replica and frees its subnet. */
  forget(node: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * gatewayCredentials asks every client for a certificate without requiring one at the TLS layer:
 * ClusterInfo and Join must serve agents that have none yet. Session refuses any call whose
 * certificate the TLS layer did not verify against the CA (grpc-js reports only verified peers).
 */
function gatewayCredentials(serving: ServingCertificate): ServerCredentials {
  return experimental.createCertificateProviderServerCredentials(serving, serving, false);
}

/** revokeNode refuses, from now on, every certificate issued to node until now (a rejoin gets a new one). */
async function revokeNode(store: Store, node: string): Promise<void> {
  const now = new Date().toISOString();
  const r = await store.mutate<NodeRevocation>(nodeRevocationKey(node), (cur) => ({ ...cur, spec: { ...cur.spec, revokedAt: now } }));
  if (r.ok || r.reason !== 'NotFound') return;
  await store.create(nodeRevocationKey(node), {
    kind: 'NodeRevocation', metadata: { name: node, uid: randomUUID(), generation: 1, labels: {}, createdAt: now },
    spec: { revokedAt: now, revokedBy: 'node removal' }, status: {},
  } satisfies NodeRevocation);
}

/** startGateway binds the gRPC server and serves agent sessions. */
export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const sessions = new Map<string, Session>();
  const open = new Set<Session>();
  const server = new Server(AGENT_SESSION_CHANNEL_OPTIONS);
  // One computation of the cluster's ready replicas per change, shared by every session.
  const endpoints = new EndpointsFeed(opts.inf);
  let relayAddress = '';
  const relays = opts.replica ? new RelayClients(opts.replica) : undefined;
  /** holder is the relay address of the other replica holding node's session, if any. */
  const holder = (node: string): string | undefined => {
    const relay = opts.inf.leases.get(nodeLeaseKey(node))?.relay;
    return relay && relay !== relayAddress && relays ? relay : undefined;
  };
  const execLocal = async (node: string, call: ExecCall, waitMs: number): Promise<ExecOutcome> => {
    const s = sessions.get(node);
    if (!s) return { ok: false, code: 'BERTH_ERR_NODE_UNAVAILABLE', message: `node ${node} has no agent session on this control plane` };
    return s.exec(call, waitMs);
  };
  const deleteVolumeLocal = async (node: string, volume: { namespace: string; name: string }, waitMs: number): Promise<VolumeDeleteOutcome> => {
    const s = sessions.get(node);
    if (!s) return { ok: false, code: 'BERTH_ERR_NODE_UNAVAILABLE', message: `node ${node} has no agent session on this control plane` };
    return s.deleteVolume(volume, waitMs);
  };
  const openLocal = (node: string, open: StreamOpen, windowBytes?: number): StreamHandle => {
    const s = sessions.get(node);
    if (!s) return failedStream('BERTH_ERR_NODE_UNAVAILABLE', `node ${node} has no agent session on this control plane`);
    return s.openStream(open, windowBytes);
  };
  const projected = new ProjectedData(opts.inf.secrets, opts.inf.configs, opts.sealer, opts.log.child('secrets'));
  const impl: AgentGatewayServer = {
    session: (call) => {
      const s: Session = new Session(call, {
        store: opts.store,
        inf: opts.inf,
        log: opts.log,
        leaseTtlSeconds: opts.leaseTtlSeconds,
        ca: opts.ca,
        nodeCertTtlMs: opts.nodeCertTtlMs,
        refused: (what) => opts.refused({ ...what, verb: 'register' }),
        relayAddress: () => relayAddress,
        projected,
        ...(opts.subnets ? { subnets: opts.subnets, endpoints } : {}),
        claim: (node, session) => {
          const old = sessions.get(node);
          sessions.set(node, session);
          if (old && old !== session) old.fail('BERTH_ERR_SESSION_REPLACED', `a newer session for node ${node} replaced this one`);
        },
        release: (node, session) => {
          if (sessions.get(node) === session) sessions.delete(node);
          open.delete(session);
        },
      });
      open.add(s);
      call.on('close', () => open.delete(s));
    },
    clusterInfo: clusterInfoHandler(opts.ca),
    join: joinHandler({ ca: opts.ca, tokens: opts.tokens, inf: opts.inf, nodeCertTtlMs: opts.nodeCertTtlMs,
      refused: (what) => opts.refused({ ...what, verb: 'join' }) }),
  };
  server.addService(AgentGatewayService, impl);
  server.addService(ReplicaRelayService, replicaRelayServer({ openLocal, execLocal, deleteVolumeLocal }, opts.log.child('relay')));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(opts.listen, gatewayCredentials(opts.serving), (err, p) =>
      (err ? reject(new Error(`agent gateway cannot listen on ${opts.listen}: ${err.message}`, { cause: err })) : resolve(p))));
  const host = opts.listen.slice(0, opts.listen.lastIndexOf(':'));
  const address = `${host}:${port}`;
  const wildcard = host === '0.0.0.0' || host === '[::]' || host === '::' || host === '';
  relayAddress = `${wildcard ? opts.advertiseHost ?? '127.0.0.1' : host}:${port}`;
  opts.log.info('agent gateway listening', { address });
  return {
    address,
    relayAddress,
    exec: async (node, call, waitMs) => {
      const far = sessions.has(node) ? undefined : holder(node);
      return far ? relays!.exec(far, node, call, waitMs) : execLocal(node, call, waitMs);
    },
    openStream: (node, open, windowBytes) => {
      const far = sessions.has(node) ? undefined : holder(node);
      return far ? relays!.openStream(far, node, open, windowBytes) : openLocal(node, open, windowBytes);
    },
    deleteVolume: async (node, volume, waitMs) => {
      const far = sessions.has(node) ? undefined : holder(node);
      return far ? relays!.deleteVolume(far, node, volume, waitMs) : deleteVolumeLocal(node, volume, waitMs);
    },
    forget: async (node) => {
      // Revoke first: the agent whose session ends below must not come back with the same certificate.
      await revokeNode(opts.store, node);
      sessions.get(node)?.fail('BERTH_ERR_NODE_REMOVED', `node ${node} was removed from the cluster`);
      await opts.subnets?.release(node);
    },
    stop: async () => {
      relays?.close();
      projected.stop();
      for (const s of [...open, ...sessions.values()]) s.close('control plane shutting down');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, GATEWAY_SHUTDOWN_GRACE_MS);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
