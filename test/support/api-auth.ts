/**
 * Authentication for API tests that build the app with buildApi() and inject() requests: a
 * token table in memory instead of etcd, so a test whose store must stay untouched can still
 * send authenticated requests. The API's own authentication and authorization code runs as is.
 */
import type { Token } from '../../control-plane/objects/security-types.js';
import { Authenticator } from '../../control-plane/security/authentication.js';
import { ALL_NAMESPACES, type TokenRole } from '../../control-plane/security/identity.js';
import { parseToken, type TokenCheck } from '../../control-plane/security/tokens.js';

/** TEST_ADMIN_TOKEN is a well-formed admin token known to testAuthenticator(). */
export const TEST_ADMIN_TOKEN = `bt1.00000000ad01.${'a'.repeat(43)}`;

/** testToken makes a well-formed token string with the given 12-hex id. */
export function testToken(id: string): string {
  return `bt1.${id}.${'b'.repeat(43)}`;
}

/** testAuthenticator knows TEST_ADMIN_TOKEN plus the tokens given (token string → role and namespaces). */
export function testAuthenticator(extra: Record<string, { role: TokenRole; namespaces?: string[]; name?: string }> = {}): Authenticator {
  const table = new Map<string, { role: TokenRole; namespaces?: string[]; name?: string }>([[TEST_ADMIN_TOKEN, { role: 'admin', name: 'test-admin' }], ...Object.entries(extra)]);
  return new Authenticator({
    check: async (text: string): Promise<TokenCheck> => {
      const entry = table.get(text);
      const parsed = parseToken(text);
      if (!entry || !parsed) return { ok: false, reason: 'Unknown' };
      const token: Token = {
        kind: 'Token',
        metadata: { name: parsed.id, uid: parsed.id, generation: 1, labels: {}, createdAt: new Date(0).toISOString() },
        spec: { displayName: entry.name ?? parsed.id, role: entry.role, namespaces: entry.namespaces ?? [ALL_NAMESPACES], secretSha256: '', createdBy: 'test' },
        status: {},
      };
      return { ok: true, token };
    },
  });
}

/** ADMIN_HEADERS authenticate an inject() request as the test admin. */
export const ADMIN_HEADERS = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
