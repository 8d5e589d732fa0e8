/** The REST API (fastify): JSON only, every body schema-validated, unknown fields refused. */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from '../../common/log.js';
import type { Store } from '../store/store.js';
import { installErrorHandlers } from './errors.js';
import { registerExecRoutes, type ExecRelay } from './routes-exec.js';
import { registerVolumeRoutes, type VolumeRelay } from './routes-volumes.js';
import { registerExecStreamRoutes } from './routes-exec-stream.js';
import { registerLogsRoutes, type LogsGateway } from './routes-logs.js';
import { registerNodeRemoval, type NodeRemoval } from './node-removal.js';
import { registerNamespaceRoutes } from './routes-namespaces.js';
import { registerNodeRoutes } from './routes-nodes.js';
import { registerReadRoutes } from './routes-read.js';
import { registerRolloutRoutes } from './routes-rollout.js';
import { registerServiceRoutes } from './routes-services.js';
import { registerSecretRoutes } from './routes-secrets.js';
import type { SecretSealer } from '../security/secret-sealer.js';
import { registerWatchRoutes } from './routes-watch.js';
import { installAuth } from './auth-hooks.js';
import { registerAuditHooks } from './audit-hooks.js';
import { registerAuditRoutes } from './routes-audit.js';
import { registerSecurityRoutes, type SecurityDeps } from './routes-security.js';
import type { Authenticator } from '../security/authentication.js';
import type { AuditLog } from '../security/audit.js';

/** API_BODY_LIMIT_BYTES caps request bodies; a service spec is a few KiB. */
export const API_BODY_LIMIT_BYTES = 1024 * 1024;

/** ApiTls is the API's serving key and certificate and the CA client certificates must chain to. */
export interface ApiTls {
  key: string;
  cert: string;
  ca: string;
}

/** ApiOptions is what the API serves beyond the store: authentication is required, the rest optional. */
export interface ApiOptions {
  /** auth authenticates every request but /healthz and /readyz. */
  auth: Authenticator;
  /** tls makes the API HTTPS (the control plane always gives it; inject() tests may not). */
  tls?: ApiTls;
  /** security serves tokens, can-i and client certificates. */
  security?: SecurityDeps;
  /** audit records who did what (audit-hooks.ts). */
  audit?: AuditLog;
  /** relay serves exec through agent sessions. */
  relay?: ExecRelay;
  /** streams opens logs (and exec) streams to agents, wherever their session is. */
  streams?: LogsGateway;
  /** removal forgets deleted nodes (session, subnet, certificates). */
  removal?: NodeRemoval;
  /** volumes deletes named volumes through agent sessions. */
  volumes?: VolumeRelay;
  /** sealer seals and opens Secret values (absent: Secret writes and reveals answer 500). */
  sealer?: SecretSealer;
  /** ready answers /readyz: true once the store and caches serve. */
  ready?: () => boolean;
}

/** buildApi assembles the fastify app over store without listening (tests may inject()). */
export function buildApi(store: Store, log: Logger, opts: ApiOptions): FastifyInstance {
  const app = Fastify({
    logger: false,
    // Client certificates are asked for but not required: a caller may bring a bearer token
    // instead. Only a certificate the TLS layer verified against the CA counts (authentication.ts).
    ...(opts.tls ? { https: { key: opts.tls.key, cert: opts.tls.cert, ca: opts.tls.ca, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' as const } } : {}),
    bodyLimit: API_BODY_LIMIT_BYTES,
    // Reject unknown properties instead of silently dropping them; never coerce types.
    // allErrors is on because ajv checks `required` before
    // `additionalProperties`: a typo like "imagee" must be reported as the unknown field it is,
    // not as "image: required". The error handler picks the most telling error (pickSchemaError).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true, allowUnionTypes: true } },
  });
  // Only JSON bodies: without the default text/plain parser fastify answers 415 for anything else.
  app.removeContentTypeParser('text/plain');
  installErrorHandlers(app, log);
  app.addHook('onResponse', async (req, reply) => {
    if (req.method !== 'GET' || reply.statusCode >= 400) {
      log.info(`${req.method} ${req.url} ${reply.statusCode}`, { ms: Math.round(reply.elapsedTime) });
    }
  });
  // Authentication and authorization run before every other onRequest hook (the ?watch=1
  // interception included) and refuse a route registered without a rule in access.ts.
  installAuth(app, opts.auth);
  if (opts.audit) registerAuditHooks(app, opts.audit);
  // Node lifecycle: the watch hook must come before the list routes it intercepts (?watch=1).
  registerWatchRoutes(app, store, log);
  registerSecurityRoutes(app, opts.security, opts.ready);
  if (opts.audit) registerAuditRoutes(app, opts.audit);
  registerReadRoutes(app, store);
  registerNodeRoutes(app, store);
  registerNodeRemoval(app, store, opts.removal);
  registerNamespaceRoutes(app, store);
  registerServiceRoutes(app, store);
  registerSecretRoutes(app, store, opts.sealer);
  registerRolloutRoutes(app, store);
  registerExecRoutes(app, store, opts.relay);
  registerVolumeRoutes(app, store, opts.volumes);
  registerExecStreamRoutes(app, store, opts.streams, opts.audit);
  registerLogsRoutes(app, store, opts.streams);
  return app;
}
