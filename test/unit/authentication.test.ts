import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { PeerCertificate } from 'node:tls';
import type { Token } from '../../control-plane/objects/security-types.js';
import {
  AUTH_FAILURE_LIMIT, AUTH_FAILURE_WINDOW_MS, AUTH_LOCKOUT_MS, Authenticator, FailureLimiter, identityFromCertificate, type AuthOutcome,
} from '../../control-plane/security/authentication.js';
import { ALL_NAMESPACES, type Identity, type TokenRole } from '../../control-plane/security/identity.js';
import type { TokenCheck } from '../../control-plane/security/tokens.js';

const SOURCE = '10.0.0.7';
const START = Date.parse('2025-03-01T12:00:00.000Z');

/** clock is a time the test moves by hand. */
function clock(): { now: number; read: () => number } {
  const c = { now: START, read: () => c.now };
  return c;
}

describe('FailureLimiter', () => {
  it(`locks a source on its ${AUTH_FAILURE_LIMIT}th failure within the window, not before`, () => {
    const c = clock();
    const limiter = new FailureLimiter(c.read);
    for (let i = 1; i < AUTH_FAILURE_LIMIT; i++) {
      limiter.fail(SOURCE);
      c.now += 100;
      assert.equal(limiter.lockedFor(SOURCE), 0, `locked after ${i} failures, expected only after ${AUTH_FAILURE_LIMIT}`);
    }
    limiter.fail(SOURCE);
    assert.equal(limiter.lockedFor(SOURCE), AUTH_LOCKOUT_MS, `expected locked for ${AUTH_LOCKOUT_MS} ms after ${AUTH_FAILURE_LIMIT} failures`);
  });

  it('locks only the failing source', () => {
    const c = clock();
    const limiter = new FailureLimiter(c.read, 2);
    limiter.fail(SOURCE);
    limiter.fail(SOURCE);
    assert.ok(limiter.lockedFor(SOURCE) > 0);
    assert.equal(limiter.lockedFor('10.0.0.8'), 0, 'another source must stay unlocked');
  });

  it('counts down the lockout and unlocks after AUTH_LOCKOUT_MS', () => {
    const c = clock();
    const limiter = new FailureLimiter(c.read, 3);
    for (let i = 0; i < 3; i++) limiter.fail(SOURCE);
    c.now += AUTH_LOCKOUT_MS - 1;
    assert.equal(limiter.lockedFor(SOURCE), 1, '1 ms before the end the source must still be locked');
    c.now += 1;
    assert.equal(limiter.lockedFor(SOURCE), 0, 'at AUTH_LOCKOUT_MS the source must be unlocked');
  });

  it('starts a new count once the window has passed', () => {
    const c = clock();
    const limiter = new FailureLimiter(c.read, 3);
    limiter.fail(SOURCE);
    limiter.fail(SOURCE);
    c.now += AUTH_FAILURE_WINDOW_MS + 1;
    limiter.fail(SOURCE);
    limiter.fail(SOURCE);
    assert.equal(limiter.lockedFor(SOURCE), 0, '2 failures in the old window and 2 in the new must not lock at limit 3');
    limiter.fail(SOURCE);
    assert.equal(limiter.lockedFor(SOURCE), AUTH_LOCKOUT_MS, 'the third failure of the new window must lock');
  });

  it('gives an unlocked source a fresh count: one more failure after the lockout does not lock again', () => {
    const c = clock();
    const limiter = new FailureLimiter(c.read, 3);
    for (let i = 0; i < 3; i++) {
      limiter.fail(SOURCE);
      c.now += 10;
    }
    c.now += AUTH_LOCKOUT_MS - 10;
    assert.equal(limiter.lockedFor(SOURCE), 0, 'the lockout must be over');
    limiter.fail(SOURCE);
    assert.equal(limiter.lockedFor(SOURCE), 0, `one failure right after a lockout must not lock again, saw locked for ${limiter.lockedFor(SOURCE)} ms`);
  });
});

/** tokenOf builds the stored token a checker answers with. */
function tokenOf(role: TokenRole, namespaces: string[] = [ALL_NAMESPACES], id = '0123456789ab'): Token {
  return {
    kind: 'Token',
    metadata: { name: id, uid: id, generation: 1, labels: {}, createdAt: new Date(START).toISOString() },
    spec: { displayName: `${role}-bot`, role, namespaces, secretSha256: '', createdBy: 'test' },
    status: {},
  };
}

/** checker answers every token check with answer and counts the calls. */
function checker(answer: TokenCheck): { calls: number; kinds: string[]; check: (text: string, kind: 'api' | 'join') => Promise<TokenCheck> } {
  const c = {
    calls: 0,
    kinds: [] as string[],
    check: async (_text: string, kind: 'api' | 'join'): Promise<TokenCheck> => {
      c.calls++;
      c.kinds.push(kind);
      return answer;
    },
  };
  return c;
}

const TOKEN = `bt1.0123456789ab.${'a'.repeat(43)}`;

describe('Authenticator', () => {
  const refusals: { name: string; answer: TokenCheck; authorization?: string; message: RegExp; checks: number }[] = [
    { name: 'no credential at all', answer: { ok: true, token: tokenOf('admin') }, message: /no credential/, checks: 0 },
    { name: 'a Basic header', answer: { ok: true, token: tokenOf('admin') }, authorization: 'Basic YWRtaW46YWRtaW4=', message: /must be "Bearer <token>"/, checks: 0 },
    { name: 'Bearer without a token', answer: { ok: true, token: tokenOf('admin') }, authorization: 'Bearer ', message: /must be "Bearer <token>"/, checks: 0 },
    { name: 'two tokens', answer: { ok: true, token: tokenOf('admin') }, authorization: `Bearer ${TOKEN} ${TOKEN}`, message: /must be "Bearer <token>"/, checks: 0 },
    { name: 'an unknown token', answer: { ok: false, reason: 'Unknown' }, authorization: `Bearer ${TOKEN}`, message: /unknown, revoked or malformed/, checks: 1 },
    { name: 'a wrong secret (said as unknown, not as wrong secret)', answer: { ok: false, reason: 'WrongSecret' }, authorization: `Bearer ${TOKEN}`, message: /unknown, revoked or malformed/, checks: 1 },
    { name: 'an expired token', answer: { ok: false, reason: 'Expired' }, authorization: `Bearer ${TOKEN}`, message: /expired/, checks: 1 },
    { name: 'a join token', answer: { ok: false, reason: 'WrongKind' }, authorization: `Bearer ${TOKEN}`, message: /join token/, checks: 1 },
    { name: 'an agent token the checker accepted', answer: { ok: true, token: tokenOf('agent', []) }, authorization: `Bearer ${TOKEN}`, message: /join token/, checks: 1 },
  ];
  for (const r of refusals) {
    it(`answers 401 with a message to ${r.name}`, async () => {
      const stub = checker(r.answer);
      const auth = new Authenticator(stub, new FailureLimiter(clock().read));
      const out = await auth.authenticate({ source: SOURCE, ...(r.authorization !== undefined ? { authorization: r.authorization } : {}) });
      assert.equal(out.ok, false, `expected a refusal, saw ${JSON.stringify(out)}`);
      assert.equal(out.ok ? 0 : out.status, 401);
      assert.match(out.ok ? '' : out.message, r.message);
      assert.equal(stub.calls, r.checks, `token checks: expected ${r.checks}, saw ${stub.calls}`);
    });
  }

  it('turns a valid API token into its identity, checking it as an API token', async () => {
    const stub = checker({ ok: true, token: tokenOf('operator', ['dev', 'prod'], 'aaaaaaaaaaaa') });
    const out = await new Authenticator(stub).authenticate({ source: SOURCE, authorization: `bearer   ${TOKEN}  ` });
    assert.deepEqual(out, { ok: true, identity: { name: 'operator-bot', role: 'operator', namespaces: ['dev', 'prod'], via: 'token', tokenId: 'aaaaaaaaaaaa' } });
    assert.deepEqual(stub.kinds, ['api']);
  });

  it('prefers the bearer token to the client certificate', async () => {
    const stub = checker({ ok: false, reason: 'Unknown' });
    const out = await new Authenticator(stub).authenticate({ source: SOURCE, authorization: `Bearer ${TOKEN}`, certificate: cert({ CN: 'alice', O: 'admin' }) });
    assert.equal(out.ok, false, 'a bad token must not fall back to the certificate');
  });

  it('authenticates a client certificate when no header is sent', async () => {
    const out = await new Authenticator(checker({ ok: false, reason: 'Unknown' })).authenticate({ source: SOURCE, certificate: cert({ CN: 'alice', O: 'viewer' }) });
    assert.deepEqual(out, { ok: true, identity: { name: 'alice', role: 'viewer', namespaces: [ALL_NAMESPACES], via: 'certificate' } });
  });

  it('refuses a locked source with 429 and retryAfterS without checking its credential', async () => {
    const c = clock();
    const stub = checker({ ok: false, reason: 'Unknown' });
    const auth = new Authenticator(stub, new FailureLimiter(c.read));
    for (let i = 0; i < AUTH_FAILURE_LIMIT; i++) {
      const out = await auth.authenticate({ source: SOURCE, authorization: `Bearer ${TOKEN}` });
      assert.equal(out.ok ? 200 : out.status, 401, `failure ${i + 1} must be 401`);
    }
    assert.equal(stub.calls, AUTH_FAILURE_LIMIT);
    c.now += 1500;
    const locked: AuthOutcome = await auth.authenticate({ source: SOURCE, authorization: `Bearer ${TOKEN}` });
    assert.equal(stub.calls, AUTH_FAILURE_LIMIT, 'a locked source must not reach the token check');
    assert.ok(!locked.ok, 'a locked source must be refused');
    assert.equal(locked.status, 429);
    assert.equal(locked.retryAfterS, Math.ceil((AUTH_LOCKOUT_MS - 1500) / 1000));
    assert.match(locked.message, new RegExp(`${SOURCE.replace(/\./g, '\\.')}.*retry in ${locked.retryAfterS} s`));
    // A valid credential from the locked source is refused too, and still not checked.
    const good = new Authenticator(checker({ ok: true, token: tokenOf('admin') }), auth.limiter);
    const out = await good.authenticate({ source: SOURCE, authorization: `Bearer ${TOKEN}` });
    assert.equal(out.ok ? 200 : out.status, 429);
    c.now += AUTH_LOCKOUT_MS;
    assert.equal((await good.authenticate({ source: SOURCE, authorization: `Bearer ${TOKEN}` })).ok, true, 'after the lockout a valid token must pass');
  });

  it('does not count a success as a failure', async () => {
    const c = clock();
    const auth = new Authenticator(checker({ ok: true, token: tokenOf('viewer') }), new FailureLimiter(c.read, 2));
    for (let i = 0; i < 5; i++) assert.equal((await auth.authenticate({ source: SOURCE, authorization: `Bearer ${TOKEN}` })).ok, true, `request ${i + 1}`);
    assert.equal(auth.limiter.lockedFor(SOURCE), 0);
  });
});

/** cert builds the subject part of a PeerCertificate as node:tls reports it (repeated fields as arrays). */
function cert(subject: Record<string, string | string[]>): PeerCertificate {
  return { subject } as unknown as PeerCertificate;
}

describe('identityFromCertificate', () => {
  const cases: { name: string; subject: Record<string, string | string[]>; expect: Identity | RegExp }[] = [
    { name: 'a node certificate', subject: { CN: 'n1', O: 'berth:nodes' }, expect: /node certificate is not an API credential/ },
    { name: 'a node certificate that also names a role', subject: { CN: 'n1', O: ['berth:nodes', 'admin'] }, expect: /node certificate/ },
    { name: 'a certificate without O', subject: { CN: 'alice' }, expect: /names no role/ },
    { name: 'a certificate with an unknown role', subject: { CN: 'alice', O: 'root' }, expect: /names no role/ },
    { name: 'a certificate with an agent role (tokens only)', subject: { CN: 'alice', O: 'agent' }, expect: /names no role/ },
    { name: 'a certificate without CN', subject: { O: 'admin' }, expect: /names no role/ },
    { name: 'a role and no OU', subject: { CN: 'alice', O: 'admin' }, expect: { name: 'alice', role: 'admin', namespaces: [ALL_NAMESPACES], via: 'certificate' } },
    { name: 'a role and one OU', subject: { CN: 'bob', O: 'operator', OU: 'dev' }, expect: { name: 'bob', role: 'operator', namespaces: ['dev'], via: 'certificate' } },
    { name: 'a role and two OUs', subject: { CN: 'bob', O: ['berth', 'viewer'], OU: ['dev', 'qa'] }, expect: { name: 'bob', role: 'viewer', namespaces: ['dev', 'qa'], via: 'certificate' } },
  ];
  for (const c of cases) {
    it(`${c.expect instanceof RegExp ? 'refuses' : 'maps'} ${c.name}`, () => {
      const got = identityFromCertificate(cert(c.subject));
      if (c.expect instanceof RegExp) {
        assert.equal(typeof got, 'string', `expected a refusal, saw ${JSON.stringify(got)}`);
        assert.match(got as string, c.expect);
      } else {
        assert.deepEqual(got, c.expect);
      }
    });
  }
});
