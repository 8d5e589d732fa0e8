/**
 * Authentication of API callers: a bearer token (`Authorization: Bearer bt1.…`) or a client
 * certificate signed by the cluster CA (CN = name, O = role, OU = namespaces). Node
 * certificates are for the gateway only. Failures are counted per source address; past the
 * limit the address is refused for a while without looking at its credential.
 */
import type { PeerCertificate } from 'node:tls';
import { NODE_ORGANIZATION, peerSubject } from '../../common/x509.js';
import { ALL_NAMESPACES, isRole, type Identity } from './identity.js';
import type { Tokens } from './tokens.js';

/** AUTH_FAILURE_LIMIT failures from one address within AUTH_FAILURE_WINDOW_MS lock it out for AUTH_LOCKOUT_MS. */
export const AUTH_FAILURE_LIMIT = 20;
/** AUTH_FAILURE_WINDOW_MS is the window failures are counted in. */
export const AUTH_FAILURE_WINDOW_MS = 60_000;
/** AUTH_LOCKOUT_MS is how long an address that passed the limit is refused. */
export const AUTH_LOCKOUT_MS = 60_000;
const MAX_TRACKED_ADDRESSES = 10_000;

/** AuthOutcome is an identity, or a refusal: the message is safe to show the caller. */
export type AuthOutcome =
  | { ok: true; identity: Identity }
  | { ok: false; status: 401 | 429; message: string; retryAfterS?: number };

/** FailureLimiter counts failed authentications per address (fixed window, bounded memory). */
export class FailureLimiter {
  private readonly windows = new Map<string, { start: number; count: number; lockedUntil: number }>();

  constructor(private readonly now: () => number = Date.now, private readonly limit = AUTH_FAILURE_LIMIT) {}

  /** lockedFor is how many ms source stays refused (0: not locked). */
  lockedFor(source: string): number {
    const w = this.windows.get(source);
    return w ? Math.max(0, w.lockedUntil - this.now()) : 0;
  }

  /** fail records one failure from source. */
  fail(source: string): void {
    const now = this.now();
    let w = this.windows.get(source);
    if (!w || now - w.start > AUTH_FAILURE_WINDOW_MS) {
      if (this.windows.size >= MAX_TRACKED_ADDRESSES) this.prune(now);
      w = { start: now, count: 0, lockedUntil: w?.lockedUntil ?? 0 };
      this.windows.set(source, w);
    }
    w.count++;
    if (w.count >= this.limit) w.lockedUntil = now + AUTH_LOCKOUT_MS;
  }

  private prune(now: number): void {
    for (const [k, w] of this.windows) {
      if (now - w.start > AUTH_FAILURE_WINDOW_MS && w.lockedUntil <= now) this.windows.delete(k);
    }
    // Still full (an address sweep): forget the oldest half rather than grow without bound.
    if (this.windows.size >= MAX_TRACKED_ADDRESSES) {
      for (const k of [...this.windows.keys()].slice(0, MAX_TRACKED_ADDRESSES / 2)) this.windows.delete(k);
    }
  }
}

/** identityFromCertificate maps a verified client certificate to an identity, or says why it is not one. */
export function identityFromCertificate(cert: PeerCertificate): Identity | string {
  const { commonName: name, organizations: orgs, units } = peerSubject(cert);
  if (orgs.includes(NODE_ORGANIZATION)) return 'a node certificate is not an API credential';
  const role = orgs.find(isRole);
  if (!name || !role) return 'the client certificate names no role (its O must be viewer, operator or admin)';
  return { name, role, namespaces: units.length > 0 ? units : [ALL_NAMESPACES], via: 'certificate' };
}

/** RequestCredentials is what a request brings: its Authorization header and its verified client certificate, if any. */
export interface RequestCredentials {
  source: string;
  authorization?: string;
  /** certificate is present only when the TLS layer verified it against the cluster CA. */
  certificate?: PeerCertificate;
}

/** Authenticator turns credentials into identities. */
export class Authenticator {
  constructor(private readonly tokens: Pick<Tokens, 'check'>, readonly limiter = new FailureLimiter()) {}

  /** authenticate checks the bearer token first (explicit beats ambient), then the client certificate. */
  async authenticate(c: RequestCredentials): Promise<AuthOutcome> {
    const locked = this.limiter.lockedFor(c.source);
    if (locked > 0) {
      const retryAfterS = Math.ceil(locked / 1000);
      return { ok: false, status: 429, message: `too many failed authentications from ${c.source}; retry in ${retryAfterS} s`, retryAfterS };
    }
    const outcome = await this.check(c);
    // Only a credential that was presented and failed counts: guessing is what the limit stops,
    // and a client that simply sent none (or many, behind one NAT address) is not guessing.
    if (!outcome.ok && (c.authorization !== undefined || c.certificate !== undefined)) this.limiter.fail(c.source);
    return outcome;
  }

  private async check(c: RequestCredentials): Promise<AuthOutcome> {
    if (c.authorization !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(c.authorization);
      if (!m) return { ok: false, status: 401, message: 'the Authorization header must be "Bearer <token>"' };
      const r = await this.tokens.check(m[1]!, 'api');
      if (!r.ok) {
        const why = r.reason === 'Expired' ? 'expired' : r.reason === 'WrongKind' ? 'a join token, which only agents use to join' : 'unknown, revoked or malformed';
        return { ok: false, status: 401, message: `the bearer token is ${why}` };
      }
      const t = r.token;
      if (t.spec.role === 'agent') return { ok: false, status: 401, message: 'the bearer token is a join token, which only agents use to join' };
      return { ok: true, identity: { name: t.spec.displayName, role: t.spec.role, namespaces: t.spec.namespaces, via: 'token', tokenId: t.metadata.name } };
    }
    if (c.certificate) {
      const id = identityFromCertificate(c.certificate);
      if (typeof id === 'string') return { ok: false, status: 401, message: id };
      return { ok: true, identity: id };
    }
    return { ok: false, status: 401, message: 'no credential: send a bearer token (Authorization: Bearer …) or a client certificate signed by the cluster CA' };
  }
}
