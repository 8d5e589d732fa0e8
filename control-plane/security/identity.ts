/**
 * Who is calling and what they ask to do: the types authentication, authorization and audit
 * share. Authentication sets `req.identity`; the access table sets `req.access` before the handler.
 */

/** ROLES are the API roles, weakest first. */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
/** Role is one API role (DESIGN.md, "Security"). */
export type Role = (typeof ROLES)[number];

/** TOKEN_ROLES adds `agent` (join tokens: they buy a node certificate, never API access). */
export const TOKEN_ROLES = [...ROLES, 'agent'] as const;
/** TokenRole is what a token can be created for. */
export type TokenRole = (typeof TOKEN_ROLES)[number];

/** ALL_NAMESPACES marks an identity that is not limited to a list of namespaces. */
export const ALL_NAMESPACES = '*';

/** Identity is an authenticated caller of the API. */
export interface Identity {
  /** name is the token's name or the client certificate's common name. */
  name: string;
  role: Role;
  /** namespaces the identity may act in; [ALL_NAMESPACES] means every namespace. */
  namespaces: string[];
  /** via says how the caller proved who it is. */
  via: 'token' | 'certificate';
  /** tokenId is the public id of the bearer token used, when via is token. */
  tokenId?: string;
}

/** AccessRequest is what a request asks to do, in authorization's terms. */
export interface AccessRequest {
  verb: string;
  resource: string;
  /** namespace is absent for cluster-scoped resources and cross-namespace lists. */
  namespace?: string;
  name?: string;
}

/** isRole tells whether s names a role. */
export function isRole(s: string): s is Role {
  return (ROLES as readonly string[]).includes(s);
}

/** isTokenRole tells whether s names a role a token may carry. */
export function isTokenRole(s: string): s is TokenRole {
  return (TOKEN_ROLES as readonly string[]).includes(s);
}

/** describeIdentity is how refusals and audit lines name a caller: `token alice (operator)`. */
export function describeIdentity(id: Identity): string {
  return `${id.via === 'token' ? 'token' : 'certificate'} ${id.name} (${id.role})`;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** identity is the authenticated caller; absent on /healthz, /readyz and refused requests. */
    identity?: Identity;
    /** access is what the route asks for, set before authorization runs. */
    access?: AccessRequest;
  }
}
