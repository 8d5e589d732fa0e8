/** Tokens, `can-i`, `whoami`, client certificates and /readyz. */
import type { FastifyInstance } from 'fastify';
import { checkDnsLabel } from '../objects/names.js';
import { authorize, RESOURCES, VERBS } from '../security/authorization.js';
import { describeIdentity, isRole, ROLES, TOKEN_ROLES, type Identity, type TokenRole } from '../security/identity.js';
import type { ClusterCa } from '../security/pki.js';
import { publicView, type Tokens } from '../security/tokens.js';
import { notFound, sendError } from './errors.js';

/** MAX_TOKEN_TTL_S bounds --ttl (ten years: "never" is expressed by leaving it out). */
export const MAX_TOKEN_TTL_S = 10 * 365 * 24 * 3600;
/** DEFAULT_CLIENT_CERT_TTL_S is a client certificate's lifetime unless asked otherwise (30 days). */
export const DEFAULT_CLIENT_CERT_TTL_S = 30 * 24 * 3600;
/** MAX_CLIENT_CERT_TTL_S bounds client certificates: they cannot be revoked, so they must expire. */
export const MAX_CLIENT_CERT_TTL_S = 365 * 24 * 3600;

/** SecurityDeps are the token registry and the CA the routes use. */
export interface SecurityDeps {
  tokens: Tokens;
  ca: ClusterCa;
}

const namespacesSchema = { type: 'array', items: { type: 'string' }, maxItems: 64 } as const;

const TOKEN_BODY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['role'],
  properties: {
    role: { enum: [...TOKEN_ROLES] },
    name: { type: 'string', minLength: 1, maxLength: 63 },
    namespaces: namespacesSchema,
    ttlSeconds: { type: 'integer', minimum: 1, maximum: MAX_TOKEN_TTL_S },
    description: { type: 'string', maxLength: 256 },
  },
} as const;

const CAN_I_BODY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['verb', 'resource'],
  properties: { verb: { enum: [...VERBS] }, resource: { enum: [...RESOURCES] }, namespace: { type: 'string' } },
} as const;

const CERT_BODY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['csr', 'name', 'role'],
  properties: {
    csr: { type: 'string', minLength: 1, maxLength: 16384 },
    // The name becomes a certificate subject: no characters that mean something in a DN.
    name: { type: 'string', minLength: 1, maxLength: 63, pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]*$' },
    role: { enum: [...ROLES] },
    namespaces: namespacesSchema,
    ttlSeconds: { type: 'integer', minimum: 60, maximum: MAX_CLIENT_CERT_TTL_S },
  },
} as const;

function badNamespace(namespaces: string[] | undefined): string | undefined {
  for (const [i, ns] of (namespaces ?? []).entries()) {
    const why = checkDnsLabel(ns);
    if (why) return `namespaces[${i}]: ${why}`;
  }
  return undefined;
}

function whoami(id: Identity): Record<string, unknown> {
  return { name: id.name, role: id.role, namespaces: id.namespaces, via: id.via, ...(id.tokenId ? { tokenId: id.tokenId } : {}) };
}

/** registerSecurityRoutes adds the routes; without deps only whoami, can-i and /readyz exist. */
export function registerSecurityRoutes(app: FastifyInstance, deps: SecurityDeps | undefined, ready: () => boolean = () => true): void {
  app.get('/readyz', async (_req, reply) => (ready() ? { status: 'ok' } : reply.code(503).send({ status: 'starting' })));

  app.get('/v1/auth/whoami', async (req) => whoami(req.identity!));

  app.post<{ Body: { verb: string; resource: string; namespace?: string } }>('/v1/auth/can-i', { schema: { body: CAN_I_BODY_SCHEMA } }, async (req) => {
    const { verb, resource, namespace } = req.body;
    return authorize(req.identity!, { verb, resource, ...(namespace !== undefined ? { namespace } : {}) });
  });

  if (!deps) return;

  type TokenBody = { role: TokenRole; name?: string; namespaces?: string[]; ttlSeconds?: number; description?: string };
  app.post<{ Body: TokenBody }>('/v1/tokens', { schema: { body: TOKEN_BODY_SCHEMA } }, async (req, reply) => {
    const b = req.body;
    const bad = badNamespace(b.namespaces);
    if (bad) return sendError(reply, { code: 'BERTH_ERR_VALIDATION', field: bad.split(':')[0], message: bad });
    if (b.role === 'agent' && b.namespaces?.length) {
      return sendError(reply, { code: 'BERTH_ERR_VALIDATION', field: 'namespaces', message: 'namespaces: a join token (role agent) has no namespaces' });
    }
    const { token, object } = await deps.tokens.create({
      role: b.role,
      ...(b.name !== undefined ? { displayName: b.name } : {}),
      ...(b.namespaces !== undefined ? { namespaces: b.namespaces } : {}),
      ...(b.ttlSeconds !== undefined ? { ttlMs: b.ttlSeconds * 1000 } : {}),
      ...(b.description !== undefined ? { description: b.description } : {}),
      createdBy: describeIdentity(req.identity!),
    }, deps.ca.sha256);
    return reply.code(201).send({ token, ...publicView(object) });
  });

  app.get('/v1/tokens', async () => ({ items: (await deps.tokens.list()).map(publicView) }));

  app.delete<{ Params: { id: string } }>('/v1/tokens/:id', async (req, reply) => {
    if (!(await deps.tokens.revoke(req.params.id))) return sendError(reply, notFound('token', req.params.id));
    return { id: req.params.id, revoked: true };
  });

  type CertBody = { csr: string; name: string; role: string; namespaces?: string[]; ttlSeconds?: number };
  app.post<{ Body: CertBody }>('/v1/certificates', { schema: { body: CERT_BODY_SCHEMA } }, async (req, reply) => {
    const b = req.body;
    const bad = badNamespace(b.namespaces);
    if (bad) return sendError(reply, { code: 'BERTH_ERR_VALIDATION', field: bad.split(':')[0], message: bad });
    if (!isRole(b.role)) return sendError(reply, { code: 'BERTH_ERR_VALIDATION', field: 'role', message: 'role: must be viewer, operator or admin' });
    const r = await deps.ca.signClient(b.csr, { name: b.name, role: b.role, namespaces: b.namespaces ?? [] }, (b.ttlSeconds ?? DEFAULT_CLIENT_CERT_TTL_S) * 1000);
    if (!r.ok) return sendError(reply, { code: 'BERTH_ERR_VALIDATION', field: 'csr', message: `csr: ${r.reason}` });
    return reply.code(201).send({ certificate: r.certificatePem, ca: deps.ca.certificatePem, expiresAt: r.notAfter.toISOString() });
  });
}
