/** The agent gateway: a grpc-js server for AgentGateway.Session, one Session per connected agent. */
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { Etcd3 } from 'etcd3';
import { AgentGatewayService, type AgentGatewayServer } from '../../proto/gen/berth/v1/agent.js';
import type { Logger } from '../../common/log.js';
import type { Informers } from '../store/informers.js';
import type { Store } from '../store/store.js';
import { Session } from './session.js';
import type { ExecCall, ExecOutcome } from './exec-relay.js';
import type { SubnetAllocator } from '../network/subnets.js';
import { EndpointsFeed } from '../network/endpoints.js';

/** GATEWAY_SHUTDOWN_GRACE_MS is how long open streams get to finish before a forced shutdown. */
export const GATEWAY_SHUTDOWN_GRACE_MS = 2_000;

/** GatewayOptions configures the gateway. */
export interface GatewayOptions {
  listen: string;
  leaseTtlSeconds: number;
  client: Etcd3;
  store: Store;
  inf: Informers;
  log: Logger;
  /** subnets allocates node subnets; absent: no container networking. */
  subnets?: SubnetAllocator;
}

/** Gateway is a listening gateway; address is host:port actually bound. */
export interface Gateway {
  address: string;
  /** exec relays a command to the agent of node through its session (see exec-relay.ts). */
  exec(node: string, call: ExecCall, waitMs: number): Promise<ExecOutcome>;
  /** forget ends a removed node's session on this replica and frees its subnet. */
  forget(node: string): Promise<void>;
  stop(): Promise<void>;
}

/** startGateway binds the gRPC server and serves agent sessions. */
export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const sessions = new Map<string, Session>();
  const open = new Set<Session>();
  const server = new Server();
  // One computation of the cluster's ready replicas per change, shared by every session.
  const endpoints = new EndpointsFeed(opts.inf);
  const impl: AgentGatewayServer = {
    session: (call) => {
      const s: Session = new Session(call, {
        client: opts.client,
        store: opts.store,
        inf: opts.inf,
        log: opts.log,
        leaseTtlSeconds: opts.leaseTtlSeconds,
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
  };
  server.addService(AgentGatewayService, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(opts.listen, ServerCredentials.createInsecure(), (err, p) =>
      (err ? reject(new Error(`agent gateway cannot listen on ${opts.listen}: ${err.message}`, { cause: err })) : resolve(p))));
  const host = opts.listen.slice(0, opts.listen.lastIndexOf(':'));
  const address = `${host}:${port}`;
  opts.log.info('agent gateway listening', { address });
  return {
    address,
    exec: async (node, call, waitMs) => {
      const s = sessions.get(node);
      if (!s) return { ok: false, code: 'BERTH_ERR_NODE_UNAVAILABLE', message: `node ${node} has no agent session on this control plane` };
      return s.exec(call, waitMs);
    },
    forget: async (node) => {
      sessions.get(node)?.fail('BERTH_ERR_NODE_REMOVED', `node ${node} was removed from the cluster`);
      await opts.subnets?.release(node);
    },
    stop: async () => {
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
