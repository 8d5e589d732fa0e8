/**
 * Every route's authorization rule in one table, so a route without a rule is a start-up error
 * rather than an open door. Rules name the verb and resource; the namespace and name come from
 * the route's :ns and :name parameters.
 */
import type { FastifyRequest } from 'fastify';
import type { AccessRequest } from '../security/identity.js';

/** RouteRule is what a route asks: public (no credential), any authenticated caller, or a verb on a resource. */
export type RouteRule = 'public' | 'authenticated' | { verb: string; resource: string };

const rule = (verb: string, resource: string): RouteRule => ({ verb, resource });

/** ROUTE_RULES maps `METHOD /url/pattern` to its rule. */
export const ROUTE_RULES: Record<string, RouteRule> = {
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /v1/version': 'authenticated',
  'GET /v1/auth/whoami': 'authenticated',
  'POST /v1/auth/can-i': 'authenticated',

  'GET /v1/services': rule('list', 'services'),
  'GET /v1/namespaces/:ns/services': rule('list', 'services'),
  'GET /v1/namespaces/:ns/services/:name': rule('get', 'services'),
  'POST /v1/namespaces/:ns/services': rule('create', 'services'),
  'PUT /v1/namespaces/:ns/services/:name': rule('update', 'services'),
  'PUT /v1/namespaces/:ns/services/:name/scale': rule('update', 'services'),
  'DELETE /v1/namespaces/:ns/services/:name': rule('delete', 'services'),
  'GET /v1/namespaces/:ns/services/:name/revisions': rule('get', 'services'),
  'POST /v1/namespaces/:ns/services/:name/rollback': rule('update', 'services'),

  'GET /v1/tasks': rule('list', 'tasks'),
  'GET /v1/namespaces/:ns/tasks': rule('list', 'tasks'),
  'GET /v1/namespaces/:ns/tasks/:name': rule('get', 'tasks'),
  'POST /v1/namespaces/:ns/tasks/:name/exec': rule('exec', 'tasks'),
  'GET /v1/namespaces/:ns/tasks/:name/exec': rule('exec', 'tasks'),
  'GET /v1/namespaces/:ns/tasks/:name/logs': rule('logs', 'tasks'),

  'GET /v1/secrets': rule('list', 'secrets'),
  'GET /v1/namespaces/:ns/secrets': rule('list', 'secrets'),
  'GET /v1/namespaces/:ns/secrets/:name': rule('get', 'secrets'),
  'POST /v1/namespaces/:ns/secrets': rule('create', 'secrets'),
  'PUT /v1/namespaces/:ns/secrets/:name': rule('update', 'secrets'),
  'DELETE /v1/namespaces/:ns/secrets/:name': rule('delete', 'secrets'),
  'POST /v1/secrets/rotate-key': rule('update', 'encryption'),
  'GET /v1/configs': rule('list', 'configs'),
  'GET /v1/namespaces/:ns/configs': rule('list', 'configs'),
  'GET /v1/namespaces/:ns/configs/:name': rule('get', 'configs'),
  'POST /v1/namespaces/:ns/configs': rule('create', 'configs'),
  'PUT /v1/namespaces/:ns/configs/:name': rule('update', 'configs'),
  'DELETE /v1/namespaces/:ns/configs/:name': rule('delete', 'configs'),

  'GET /v1/volumes': rule('list', 'volumes'),
  'GET /v1/namespaces/:ns/volumes': rule('list', 'volumes'),
  'DELETE /v1/namespaces/:ns/volumes/:name': rule('delete', 'volumes'),

  'GET /v1/events': rule('list', 'events'),
  'GET /v1/namespaces/:ns/events': rule('list', 'events'),

  'GET /v1/nodes': rule('list', 'nodes'),
  'GET /v1/nodes/:name': rule('get', 'nodes'),
  'PUT /v1/nodes/:name': rule('update', 'nodes'),
  'PATCH /v1/nodes/:name': rule('update', 'nodes'),
  'POST /v1/nodes/:name/cordon': rule('update', 'nodes'),
  'POST /v1/nodes/:name/uncordon': rule('update', 'nodes'),
  'POST /v1/nodes/:name/drain': rule('update', 'nodes'),
  'DELETE /v1/nodes/:name': rule('delete', 'nodes'),

  'GET /v1/namespaces': rule('list', 'namespaces'),
  'GET /v1/namespaces/:ns': rule('get', 'namespaces'),
  'PUT /v1/namespaces/:ns': rule('update', 'namespaces'),
  'DELETE /v1/namespaces/:ns': rule('delete', 'namespaces'),

  'GET /v1/tokens': rule('list', 'tokens'),
  'POST /v1/tokens': rule('create', 'tokens'),
  'DELETE /v1/tokens/:id': rule('delete', 'tokens'),
  'POST /v1/certificates': rule('create', 'certificates'),
  'GET /v1/audit': rule('get', 'audit'),
};

/** ruleFor finds a route's rule; undefined for a route the table does not know. */
export function ruleFor(method: string, url: string | undefined): RouteRule | undefined {
  return url === undefined ? undefined : ROUTE_RULES[`${method === 'HEAD' ? 'GET' : method} ${url}`];
}

/** accessOf is what req asks under rule: the namespace from :ns (or :name for namespaces), the name from :name. */
export function accessOf(req: FastifyRequest, r: { verb: string; resource: string }): AccessRequest {
  const params = (req.params ?? {}) as Record<string, string | undefined>;
  const watching = r.verb === 'list' && /[?&]watch=(1|true)(&|$)/.test(req.url);
  // Reading a secret's values is its own verb, so a viewer may list secrets but never open one.
  const revealing = r.resource === 'secrets' && r.verb === 'get' && /[?&]reveal=(1|true)(&|$)/.test(req.url);
  const a: AccessRequest = { verb: watching ? 'watch' : revealing ? 'reveal' : r.verb, resource: r.resource };
  if (r.resource === 'namespaces') {
    const ns = params.name ?? params.ns;
    if (ns !== undefined) a.name = ns;
    return a;
  }
  if (params.ns !== undefined) a.namespace = params.ns;
  const name = params.name ?? params.id;
  if (name !== undefined) a.name = name;
  return a;
}
