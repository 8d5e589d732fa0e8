/**
 * Registry authentication: parsing `WWW-Authenticate` challenges and caching bearer tokens per
 * (registry, scope) until they expire. Credentials come from a hook so the agent config and,
 * later, a service's pull secret can both supply them.
 */

/** Credentials are a username and password for basic auth or a token request. */
export interface Credentials {
  username: string;
  password: string;
}

/**
 * CredentialsHook returns the credentials to use for a registry host, or undefined for
 * anonymous access. The context leaves room for a per-service pull secret.
 */
export type CredentialsHook = (host: string, context?: { pullSecret?: string }) => Credentials | undefined;

/** Challenge is one parsed `WWW-Authenticate` header. */
export interface Challenge {
  scheme: 'basic' | 'bearer' | 'other';
  params: Record<string, string>;
}

/** DEFAULT_TOKEN_TTL_S is the token lifetime the distribution spec says to assume when unsaid. */
export const DEFAULT_TOKEN_TTL_S = 60;
/** TOKEN_EXPIRY_MARGIN_MS drops a cached token this long before it expires, to absorb clock skew. */
export const TOKEN_EXPIRY_MARGIN_MS = 5_000;

/** parseChallenge parses `Bearer realm="…",service="…",scope="…"` (quoted or token values). */
export function parseChallenge(header: string): Challenge {
  const m = /^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(.*)$/s.exec(header);
  if (!m) return { scheme: 'other', params: {} };
  const name = m[1]!.toLowerCase();
  const scheme = name === 'basic' || name === 'bearer' ? name : 'other';
  const params: Record<string, string> = {};
  const re = /([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/gy;
  const rest = m[2]!;
  re.lastIndex = 0;
  let p: RegExpExecArray | null;
  while (re.lastIndex < rest.length && (p = re.exec(rest)) !== null) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  }
  return { scheme, params };
}

/** basicHeader encodes credentials for an Authorization header. */
export function basicHeader(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
}

/** TokenCache holds bearer tokens per (host, scope) until their expiry. */
export class TokenCache {
  private readonly tokens = new Map<string, { token: string; expiresAtMs: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** get returns a live token for (host, scope), or undefined. */
  get(host: string, scope: string): string | undefined {
    const key = `${host} ${scope}`;
    const t = this.tokens.get(key);
    if (!t) return undefined;
    if (this.now() >= t.expiresAtMs) {
      this.tokens.delete(key);
      return undefined;
    }
    return t.token;
  }

  /** set stores a token valid for expiresInS seconds (the default when the server said nothing). */
  set(host: string, scope: string, token: string, expiresInS?: number): void {
    const ttlS = typeof expiresInS === 'number' && expiresInS > 0 ? expiresInS : DEFAULT_TOKEN_TTL_S;
    const ttlMs = Math.max(0, ttlS * 1000 - Math.min(TOKEN_EXPIRY_MARGIN_MS, (ttlS * 1000) / 10));
    this.tokens.set(`${host} ${scope}`, { token, expiresAtMs: this.now() + ttlMs });
  }
}
