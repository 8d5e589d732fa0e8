/**
 * Role-based authorization: what viewer, operator and admin may do, and in which namespaces.
 * A pure function over an identity and an access request, so `berth auth can-i` and every route
 * ask the same question the same way.
 */
import { ALL_NAMESPACES, describeIdentity, type AccessRequest, type Identity } from './identity.js';

/** READ_VERBS never change anything. */
export const READ_VERBS = ['get', 'list', 'watch'] as const;
/** WRITE_VERBS change objects. */
export const WRITE_VERBS = ['create', 'update', 'delete'] as const;
/** VERBS are every verb the API authorizes; anything else is refused to every role. */
export const VERBS = [...READ_VERBS, ...WRITE_VERBS, 'exec', 'logs', 'reveal'] as const;
/** NAMESPACED_RESOURCES live inside a namespace; a token scoped to namespaces reaches only those. */
export const NAMESPACED_RESOURCES = ['services', 'tasks', 'events', 'secrets', 'configs', 'volumes'] as const;
/** CLUSTER_RESOURCES are cluster-wide. */
export const CLUSTER_RESOURCES = ['nodes', 'namespaces', 'tokens', 'audit', 'certificates', 'images', 'encryption'] as const;
/** RESOURCES is what `can-i` accepts. */
export const RESOURCES = [...NAMESPACED_RESOURCES, ...CLUSTER_RESOURCES] as const;

/** Decision is allowed or not, with the reason a person reads. */
export interface Decision {
  allowed: boolean;
  reason: string;
}

const isNamespaced = (resource: string): boolean => (NAMESPACED_RESOURCES as readonly string[]).includes(resource);
const isRead = (verb: string): boolean => (READ_VERBS as readonly string[]).includes(verb);

/**
 * What each role may do besides admin's everything: a viewer reads (never secret values,
 * never exec), may read logs in its namespaces; an operator also writes namespaced workload
 * objects, execs and reveals secrets in its namespaces. Nodes, namespaces' policies, tokens,
 * audit and certificates are admin's; everyone may read nodes and namespaces (where work runs).
 */
function roleAllows(role: Identity['role'], verb: string, resource: string): boolean {
  if (!(VERBS as readonly string[]).includes(verb) || !(RESOURCES as readonly string[]).includes(resource)) return false;
  if (role === 'admin') return true;
  if (isRead(verb)) return readableByAll(resource);
  if (verb === 'logs') return resource === 'tasks';
  if (role === 'viewer') return false;
  if (verb === 'exec') return resource === 'tasks';
  if (verb === 'reveal') return resource === 'secrets';
  return (WRITE_VERBS as readonly string[]).includes(verb) && isNamespaced(resource) && resource !== 'tasks' && resource !== 'events';
}

/** readableByAll: where work runs is no secret from anyone who may run work. */
function readableByAll(resource: string): boolean {
  return isNamespaced(resource) || resource === 'nodes' || resource === 'namespaces' || resource === 'images';
}

/** authorize decides whether id may do a; the reason names the identity, verb and resource. */
export function authorize(id: Identity, a: AccessRequest): Decision {
  const what = `${a.verb} ${a.resource}${a.namespace !== undefined ? ` in namespace ${a.namespace}` : isNamespaced(a.resource) ? ' across all namespaces' : ''}`;
  const who = describeIdentity(id);
  if (!roleAllows(id.role, a.verb, a.resource)) {
    return { allowed: false, reason: `${who} may not ${what}` };
  }
  if (id.namespaces.includes(ALL_NAMESPACES)) return { allowed: true, reason: `${who} may ${what}` };
  // A namespace-scoped identity, even an admin, acts inside its namespaces only: cluster-wide
  // objects (nodes, tokens, certificates, audit, namespaces' policies) it may at most read.
  // Otherwise a scoped admin could mint itself an unscoped token.
  if (!isNamespaced(a.resource) && !(isRead(a.verb) && readableByAll(a.resource))) {
    return { allowed: false, reason: `${who} may not ${what}: it is limited to namespaces ${id.namespaces.join(', ')}, and ${a.resource} are cluster-wide` };
  }
  const scoped = a.resource === 'namespaces' ? a.name ?? a.namespace : a.namespace;
  if (isNamespaced(a.resource) || (a.resource === 'namespaces' && scoped !== undefined)) {
    if (scoped === undefined) {
      return { allowed: false, reason: `${who} may not ${what}: it is limited to namespaces ${id.namespaces.join(', ')} (name one with -n)` };
    }
    if (!id.namespaces.includes(scoped)) {
      return { allowed: false, reason: `${who} may not ${what}: it is limited to namespaces ${id.namespaces.join(', ')}` };
    }
  }
  return { allowed: true, reason: `${who} may ${what}` };
}
