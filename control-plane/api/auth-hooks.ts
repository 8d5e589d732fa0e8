/** The API's authentication and authorization hook, and the check that every route has a rule. */
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import type { Authenticator } from '../security/authentication.js';
import { authorize } from '../security/authorization.js';
import { accessOf, ruleFor } from './access.js';
import { sendError } from './errors.js';

/** installAuth must be called before any route is registered (its onRoute check sees them all). */
export function installAuth(app: FastifyInstance, auth: Authenticator): void {
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (method === 'HEAD' || method === 'OPTIONS') continue;
      if (ruleFor(method, route.url) === undefined) {
        throw new Error(`route ${method} ${route.url} has no authorization rule in control-plane/api/access.ts`);
      }
    }
  });
  app.addHook('onRequest', async (req, reply) => {
    const rule = ruleFor(req.method, req.routeOptions.url);
    if (rule === 'public') return;
    const socket = req.raw.socket as TLSSocket;
    const peer = socket.encrypted && socket.authorized ? socket.getPeerCertificate() : undefined;
    const outcome = await auth.authenticate({
      source: req.ip,
      ...(req.headers.authorization !== undefined ? { authorization: req.headers.authorization } : {}),
      ...(peer?.raw ? { certificate: peer } : {}),
    });
    if (!outcome.ok) {
      if (outcome.retryAfterS !== undefined) void reply.header('retry-after', String(outcome.retryAfterS));
      return sendError(reply, { code: outcome.status === 429 ? 'BERTH_ERR_TOO_MANY_AUTH_FAILURES' : 'BERTH_ERR_UNAUTHENTICATED', message: outcome.message });
    }
    req.identity = outcome.identity;
    // No route matched: answer 404 here, before any later hook (the ?watch=1 interception reads
    // the URL itself) can act on a path that authorization never saw.
    if (rule === undefined) return sendError(reply, { code: 'BERTH_ERR_ROUTE_NOT_FOUND', message: `no route for ${req.method} ${req.url}` });
    if (rule === 'authenticated') return;
    req.access = accessOf(req, rule);
    const decision = authorize(outcome.identity, req.access);
    if (!decision.allowed) return sendError(reply, { code: 'BERTH_ERR_FORBIDDEN', message: decision.reason });
  });
}
