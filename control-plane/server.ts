/**
 * startControlPlane wires one control plane: etcd (embedded or external) → store → informers →
 * controllers → agent gateway → REST API. main.ts runs it as a process; tests run it in-process.
 */
import { SecretSealer } from './security/secret-sealer.js';
import { readSealingKey } from './security/sealing-key.js';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { buildApi } from './api/server.js';
import { startControllers, type Controllers } from './controllers/index.js';
import { DEFAULT_LEADER_LEASE_TTL_S, Election } from './election.js';
import { startEmbeddedEtcd, type EmbeddedEtcd } from './etcd/embedded.js';
import { startGateway, type Gateway } from './gateway/server.js';
import { createLogger, type Logger, type LogLevel } from '../common/log.js';
import { startInformers, type Informers } from './store/informers.js';
import { Store } from './store/store.js';
import { DEFAULT_CLUSTER_CIDR, SubnetAllocator } from './network/subnets.js';
import { auditLogPath, auditRefusal, AuditLog } from './security/audit.js';
import { Authenticator } from './security/authentication.js';
import { bootstrapAdmin } from './security/bootstrap.js';
import { ClusterCa, DEFAULT_NODE_CERT_TTL_MS } from './security/pki.js';
import { ServingCertificate } from './security/serving-certificate.js';
import { ReplicaCertificate } from './security/replica-certificate.js';
import { servingNames } from './security/serving-names.js';
import { Tokens } from './security/tokens.js';
import { BerthError } from './errors.js';

/** ControlPlaneOptions mirrors berth-control-plane's flags. */
export interface ControlPlaneOptions {
  /** listen is the API's ADDR:PORT (port 0 picks a free one). */
  listen: string;
  /** gatewayListen is the agent gateway's ADDR:PORT (port 0 picks a free one). */
  gatewayListen: string;
  /** etcd lists external endpoints; empty or absent starts the embedded etcd. */
  etcd?: string[];
  dataDir: string;
  etcdClientPort: number;
  etcdPeerPort: number;
  nodeLeaseTtlSeconds: number;
  /** leaderLeaseTtlSeconds is the election lease TTL (HA): takeover takes about this long. */
  leaderLeaseTtlSeconds?: number;
  /** nodeLostGraceSeconds is how long a node stays not Ready before its tasks are lost (default 15). */
  nodeLostGraceSeconds?: number;
  /** clusterCidr is where node subnets come from (default 10.244.0.0/16, a /24 per node). */
  clusterCidr?: string;
  /** advertiseAddresses are extra names and addresses clients dial the API and gateway by (serving certificate SANs). */
  advertiseAddresses?: string[];
  /** sealingKeyFile seals the CA key in etcd (default <dataDir>/sealing.key); every replica needs the same file. */
  sealingKeyFile?: string;
  /** adminConfig is where the first start writes the admin berth config (default <dataDir>/admin.config). */
  adminConfig?: string;
  /** nodeCertTtlMs is the lifetime of node certificates (default 24 h). */
  nodeCertTtlMs?: number;
  /** auditLog is the audit file (default <dataDir>/audit.log), rotated at auditMaxBytes keeping auditMaxFiles. */
  auditLog?: string;
  auditMaxBytes?: number;
  auditMaxFiles?: number;
  logLevel?: LogLevel;
  log?: Logger;
}

/** ControlPlane is a running control plane; stop() is idempotent. */
export interface ControlPlane {
  apiUrl: string;
  gatewayAddress: string;
  etcdEndpoints: string[];
  /** etcdPid is the embedded etcd's pid, when embedded. */
  etcdPid?: number;
  /** caCertificate is the cluster CA (PEM) every client must trust. */
  caCertificate: string;
  /** adminConfig is the admin config file's path (written on the cluster's first start). */
  adminConfig: string;
  /** isLeader tells whether this replica currently runs the controllers (HA election). */
  isLeader(): boolean;
  stop(): Promise<void>;
}

/** splitHostPort parses "ADDR:PORT" and "[v6]:PORT". */
export function splitHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid address "${s}" (want ADDR:PORT)`);
  return { host: s.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port };
}

function connectable(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** hostOfPeer drops the port of a gRPC peer (`ipv4:10.0.0.1:5123`, `ipv6:[::1]:5123`), as HTTP audit lines carry the address only. */
function hostOfPeer(peer: string): string {
  const bare = peer.replace(/^ipv[46]:/, '');
  const i = bare.lastIndexOf(':');
  return (i > 0 ? bare.slice(0, i) : bare).replace(/^\[(.*)\]$/, '$1');
}

/** startControlPlane starts every component; on failure it stops what it started and rethrows. */
export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const log = opts.log ?? createLogger(opts.logLevel ?? 'info');
  const cleanups: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    while (cleanups.length > 0) {
      const c = cleanups.pop()!;
      await c().catch((err) => log.error('shutdown step failed', { err }));
    }
  };
  try {
    let etcd: EmbeddedEtcd | undefined;
    let endpoints = opts.etcd?.filter((e) => e !== '') ?? [];
    if (endpoints.length === 0) {
      etcd = await startEmbeddedEtcd({ dataDir: opts.dataDir, clientPort: opts.etcdClientPort, peerPort: opts.etcdPeerPort, log: log.child('etcd') });
      cleanups.push(() => etcd!.stop());
      endpoints = [etcd.endpoint];
    }
    const store = Store.connect(endpoints);
    cleanups.push(async () => store.close());
    const inf: Informers = await startInformers(store, log.child('cache'));
    cleanups.push(() => inf.stop());
    const security = log.child('security');
    let ca: ClusterCa;
    const sealingKeyFile = opts.sealingKeyFile ?? join(opts.dataDir, 'sealing.key');
    try {
      ({ ca } = await ClusterCa.loadOrCreate(store, sealingKeyFile, security));
    } catch (err) {
      throw new BerthError('BERTH_ERR_CA_KEY', (err as Error).message, { cause: err });
    }
    // The CA load made or checked the file; the same key seals the data keys of Secrets.
    const sealer = new SecretSealer(store, readSealingKey(sealingKeyFile), security);
    const tokens = new Tokens(store, inf.tokens);
    const audit = new AuditLog({ path: opts.auditLog ?? auditLogPath(opts.dataDir), maxBytes: opts.auditMaxBytes, maxFiles: opts.auditMaxFiles, log: log.child('audit') });
    cleanups.push(() => audit.close());
    const { host, port } = splitHostPort(opts.listen);
    const serving = await ServingCertificate.issue(ca, servingNames([host, splitHostPort(opts.gatewayListen).host], opts.advertiseAddresses ?? []), security);
    cleanups.push(async () => serving.stop());
    // The replica's own client certificate for the relay to replicas holding other nodes' sessions.
    const replica = await ReplicaCertificate.issue(ca, `replica-${randomUUID()}`, security);
    cleanups.push(async () => replica.stop());
    const gateway: Gateway = await startGateway({ replica, ...(opts.advertiseAddresses?.[0] ? { advertiseHost: opts.advertiseAddresses[0] } : {}), listen: opts.gatewayListen, leaseTtlSeconds: opts.nodeLeaseTtlSeconds, store, inf, log: log.child('gateway'),
      subnets: new SubnetAllocator(store, opts.clusterCidr ?? DEFAULT_CLUSTER_CIDR),
      ca, tokens, serving, nodeCertTtlMs: opts.nodeCertTtlMs ?? DEFAULT_NODE_CERT_TTL_MS, sealer,
      refused: (r) => auditRefusal(audit, { source: hostOfPeer(r.source), verb: r.verb, resource: 'nodes', name: r.node, code: r.code, message: r.message,
        ...(r.identity ? { identity: r.identity, via: 'node' as const } : {}) }) });
    cleanups.push(() => gateway.stop());
    const api = buildApi(store, log.child('api'), {
      auth: new Authenticator(tokens),
      tls: { key: serving.key, cert: serving.cert, ca: ca.certificatePem },
      security: { tokens, ca },
      audit,
      relay: gateway,
      volumes: gateway,
      streams: gateway,
      removal: gateway,
      sealer,
    });
    serving.onChange(({ key, cert }) => (api.server as unknown as import('node:tls').Server).setSecureContext({ key, cert, ca: ca.certificatePem }));
    await api.listen({ host, port });
    cleanups.push(() => api.close());
    const bound = api.server.address();
    const apiUrl = `https://${connectable(host)}:${typeof bound === 'object' && bound ? bound.port : port}`;
    const adminConfig = opts.adminConfig ?? join(opts.dataDir, 'admin.config');
    // The admin config is copied to other machines: name the server as they reach it when known.
    const advertised = opts.advertiseAddresses?.[0];
    const adminServer = advertised ? `https://${advertised.includes(':') ? `[${advertised}]` : advertised}:${new URL(apiUrl).port}` : apiUrl;
    await bootstrapAdmin({ tokens, ca, server: adminServer, path: adminConfig, log: security });
    // HA: every replica serves the API and agent sessions; only the elected leader runs the
    // controllers, writing through a store fenced by its leader key.
    let controllers: Controllers | undefined;
    const election = new Election({
      store, apiUrl, ttlSeconds: opts.leaderLeaseTtlSeconds ?? DEFAULT_LEADER_LEASE_TTL_S, log: log.child('election'),
      onElected: (guard) => { controllers = startControllers(inf, store.withGuard(guard), log.child('controllers'),
        { nodeLostGraceMs: opts.nodeLostGraceSeconds === undefined ? undefined : opts.nodeLostGraceSeconds * 1000 }); },
      onDeposed: async () => {
        const c = controllers;
        controllers = undefined;
        await c?.stop();
      },
    });
    election.start();
    cleanups.push(() => election.stop());
    log.info('control plane ready', { api: apiUrl, gateway: gateway.address, etcd: endpoints.join(','), dataDir: join(opts.dataDir) });
    let stopping: Promise<void> | undefined;
    return {
      apiUrl,
      gatewayAddress: gateway.address,
      etcdEndpoints: endpoints,
      etcdPid: etcd?.pid,
      caCertificate: ca.certificatePem,
      adminConfig,
      isLeader: () => election.isLeader(),
      stop: () => (stopping ??= stopAll().then(() => log.info('control plane stopped'))),
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
