/**
 * Bearer and join tokens. A token is `bt1.<id>.<secret>` (API) or `btjoin1.<ca sha256>.<id>.<secret>`
 * (join: Swarm's idea, the agent pins the CA digest before it trusts the server it sends the
 * secret to). Only the SHA-256 of the secret is stored, under tokens/<id>; the secret is shown once.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Token } from '../objects/security-types.js';
import type { WatchCache } from '../store/cache.js';
import { tokenKey } from '../store/keys.js';
import type { Store } from '../store/store.js';
import { ALL_NAMESPACES, type TokenRole } from './identity.js';

/** TOKEN_SECRET_BYTES is the secret's entropy: 256 bits. */
export const TOKEN_SECRET_BYTES = 32;
const TOKEN_ID_BYTES = 6;
const API_PREFIX = 'bt1';
const JOIN_PREFIX = 'btjoin1';
/** DEFAULT_JOIN_TOKEN_TTL_MS is how long an agent join token lasts unless --ttl says otherwise. */
export const DEFAULT_JOIN_TOKEN_TTL_MS = 24 * 3600_000;

/** ParsedToken is a token string taken apart; nothing about it is checked yet. */
export type ParsedToken =
  | { kind: 'api'; id: string; secret: string }
  | { kind: 'join'; id: string; secret: string; caSha256: string };

/** parseToken splits a token string; undefined when it has neither form. */
export function parseToken(text: string): ParsedToken | undefined {
  const parts = text.trim().split('.');
  if (parts[0] === API_PREFIX && parts.length === 3 && /^[0-9a-f]{12}$/.test(parts[1]!) && /^[A-Za-z0-9_-]{43}$/.test(parts[2]!)) {
    return { kind: 'api', id: parts[1]!, secret: parts[2]! };
  }
  if (parts[0] === JOIN_PREFIX && parts.length === 4 && /^[0-9a-f]{64}$/.test(parts[1]!) && /^[0-9a-f]{12}$/.test(parts[2]!) && /^[A-Za-z0-9_-]{43}$/.test(parts[3]!)) {
    return { kind: 'join', caSha256: parts[1]!, id: parts[2]!, secret: parts[3]! };
  }
  return undefined;
}

function secretHash(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** NewToken is what a token is made from. */
export interface NewToken {
  role: TokenRole;
  displayName?: string;
  /** namespaces scopes an API token; absent or empty means all namespaces. */
  namespaces?: string[];
  ttlMs?: number;
  description?: string;
  createdBy: string;
}

/** TokenCheck is an authenticated token, or why it was refused (the reason is for logs and audit, never the caller). */
export type TokenCheck = { ok: true; token: Token } | { ok: false; reason: 'Malformed' | 'Unknown' | 'WrongSecret' | 'Expired' | 'WrongKind' };

/** Tokens creates, lists, revokes and checks tokens; reads go to the watch cache first. */
export class Tokens {
  constructor(private readonly store: Store, private readonly cache?: WatchCache<Token>, private readonly now: () => number = Date.now) {}

  /** create stores a new token and returns its one-time string; join tokens pin caSha256. */
  async create(t: NewToken, caSha256: string): Promise<{ token: string; object: Token }> {
    for (;;) {
      const made = await this.createWithId(randomBytes(TOKEN_ID_BYTES).toString('hex'), t, caSha256);
      if (made) return made; // else a 48-bit id collided: draw again
    }
  }

  /** createWithId stores a token under a chosen id; undefined when that id is taken (so only one caller wins). */
  async createWithId(id: string, t: NewToken, caSha256: string): Promise<{ token: string; object: Token } | undefined> {
    const secret = randomBytes(TOKEN_SECRET_BYTES).toString('base64url');
    const ttlMs = t.ttlMs ?? (t.role === 'agent' ? DEFAULT_JOIN_TOKEN_TTL_MS : undefined);
    const created = new Date(this.now());
    const object: Token = {
      kind: 'Token',
      metadata: { name: id, uid: randomUUID(), generation: 1, labels: {}, createdAt: created.toISOString() },
      spec: {
        displayName: t.displayName || `${t.role}-${id}`,
        role: t.role,
        namespaces: t.role === 'agent' ? [] : (t.namespaces?.length ? [...new Set(t.namespaces)].sort() : [ALL_NAMESPACES]),
        secretSha256: secretHash(secret),
        ...(ttlMs ? { expiresAt: new Date(created.getTime() + ttlMs).toISOString() } : {}),
        ...(t.description ? { description: t.description } : {}),
        createdBy: t.createdBy,
      },
      status: {},
    };
    const r = await this.store.create(tokenKey(id), object);
    if (!r.ok) return undefined;
    const token = t.role === 'agent' ? `${JOIN_PREFIX}.${caSha256}.${id}.${secret}` : `${API_PREFIX}.${id}.${secret}`;
    return { token, object: r.object };
  }

  /** list returns every token (hashes included; the API strips them). */
  async list(): Promise<Token[]> {
    return (await this.store.list<Token>('tokens/')).items;
  }

  /** revoke deletes a token; false when there is none with that id. */
  async revoke(id: string): Promise<boolean> {
    if (!/^[0-9a-f]{12}$/.test(id)) return false;
    return (await this.store.remove(tokenKey(id))).ok;
  }

  /** check authenticates a token string of the expected kind. */
  async check(text: string, kind: ParsedToken['kind']): Promise<TokenCheck> {
    const parsed = parseToken(text);
    if (!parsed) return { ok: false, reason: 'Malformed' };
    if (parsed.kind !== kind) return { ok: false, reason: 'WrongKind' };
    // The cache answers almost always; a miss may be a token created a moment ago on another replica.
    const token = this.cache?.get(tokenKey(parsed.id)) ?? await this.store.get<Token>(tokenKey(parsed.id));
    if (!token) return { ok: false, reason: 'Unknown' };
    const want = Buffer.from(token.spec.secretSha256, 'hex');
    const got = Buffer.from(secretHash(parsed.secret), 'hex');
    if (want.length !== got.length || !timingSafeEqual(want, got)) return { ok: false, reason: 'WrongSecret' };
    if ((kind === 'join') !== (token.spec.role === 'agent')) return { ok: false, reason: 'WrongKind' };
    if (token.spec.expiresAt && Date.parse(token.spec.expiresAt) <= this.now()) return { ok: false, reason: 'Expired' };
    return { ok: true, token };
  }
}

/** publicView is a token as the API shows it: never the hash. */
export function publicView(t: Token): Record<string, unknown> {
  return {
    id: t.metadata.name,
    name: t.spec.displayName,
    role: t.spec.role,
    namespaces: t.spec.namespaces,
    createdAt: t.metadata.createdAt,
    ...(t.spec.expiresAt ? { expiresAt: t.spec.expiresAt } : {}),
    createdBy: t.spec.createdBy,
    ...(t.spec.description ? { description: t.spec.description } : {}),
  };
}
