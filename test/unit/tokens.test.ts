import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Token } from '../../control-plane/objects/security-types.js';
import { ALL_NAMESPACES } from '../../control-plane/security/identity.js';
import {
  DEFAULT_JOIN_TOKEN_TTL_MS, parseToken, publicView, Tokens, type NewToken, type ParsedToken,
} from '../../control-plane/security/tokens.js';
import type { Store } from '../../control-plane/store/store.js';
import { MemoryStore } from '../support/memory-store.js';

const ID = '0123456789ab';
const SECRET = 'A'.repeat(20) + '_-' + 'z9'.repeat(10) + 'q';
const CA = 'f'.repeat(64);

describe('parseToken', () => {
  const cases: { name: string; text: string; expect: ParsedToken | undefined }[] = [
    { name: 'an API token', text: `bt1.${ID}.${SECRET}`, expect: { kind: 'api', id: ID, secret: SECRET } },
    { name: 'an API token with surrounding white space', text: ` bt1.${ID}.${SECRET}\n`, expect: { kind: 'api', id: ID, secret: SECRET } },
    { name: 'a join token', text: `btjoin1.${CA}.${ID}.${SECRET}`, expect: { kind: 'join', caSha256: CA, id: ID, secret: SECRET } },
    { name: 'a wrong prefix', text: `bt2.${ID}.${SECRET}`, expect: undefined },
    { name: 'a join prefix on an API-shaped token', text: `btjoin1.${ID}.${SECRET}`, expect: undefined },
    { name: 'an API prefix on a join-shaped token', text: `bt1.${CA}.${ID}.${SECRET}`, expect: undefined },
    { name: 'a short secret', text: `bt1.${ID}.${SECRET.slice(1)}`, expect: undefined },
    { name: 'a long secret', text: `bt1.${ID}.${SECRET}x`, expect: undefined },
    { name: 'a secret with base64 padding characters', text: `bt1.${ID}.${SECRET.slice(2)}+/`, expect: undefined },
    { name: 'an id with a slash', text: `bt1.01234/6789ab.${SECRET}`, expect: undefined },
    { name: 'an id with upper-case hex', text: `bt1.0123456789AB.${SECRET}`, expect: undefined },
    { name: 'a short id', text: `bt1.0123456789a.${SECRET}`, expect: undefined },
    { name: 'a join token with a short CA digest', text: `btjoin1.${CA.slice(1)}.${ID}.${SECRET}`, expect: undefined },
    { name: 'a join token with an upper-case CA digest', text: `btjoin1.${CA.toUpperCase()}.${ID}.${SECRET}`, expect: undefined },
    { name: 'a missing secret', text: `bt1.${ID}`, expect: undefined },
    { name: 'an empty string', text: '', expect: undefined },
    { name: 'a bearer header instead of the token', text: `Bearer bt1.${ID}.${SECRET}`, expect: undefined },
  ];
  for (const c of cases) {
    it(`${c.expect ? 'parses' : 'refuses'} ${c.name}`, () => {
      assert.deepEqual(parseToken(c.text), c.expect, `parseToken(${JSON.stringify(c.text)})`);
    });
  }
});

/** setup is a token registry over an empty memory store with a clock the test moves. */
function setup(): { tokens: Tokens; store: MemoryStore; clock: { now: number } } {
  const store = new MemoryStore();
  const clock = { now: Date.parse('2025-03-01T12:00:00.000Z') };
  return { tokens: new Tokens(store.asStore(), undefined, () => clock.now), store, clock };
}

const api = (over: Partial<NewToken> = {}): NewToken => ({ role: 'operator', createdBy: 'token root (admin)', ...over });

/** withSecret replaces a token string's secret by another well-formed one. */
function withSecret(token: string, secret: string): string {
  const parts = token.split('.');
  parts[parts.length - 1] = secret;
  return parts.join('.');
}

describe('Tokens', () => {
  it('creates an API token that check accepts, returning the stored object', async () => {
    const { tokens } = setup();
    const { token, object } = await tokens.create(api({ displayName: 'alice', namespaces: ['prod', 'dev', 'prod'] }), CA);
    assert.ok(parseToken(token)?.kind === 'api', `expected an API token, saw ${token}`);
    const r = await tokens.check(token, 'api');
    assert.ok(r.ok, `expected the token accepted, saw ${r.ok ? '' : r.reason}`);
    assert.equal(r.token.metadata.name, object.metadata.name);
    assert.deepEqual(
      { name: r.token.spec.displayName, role: r.token.spec.role, namespaces: r.token.spec.namespaces, expiresAt: r.token.spec.expiresAt },
      { name: 'alice', role: 'operator', namespaces: ['dev', 'prod'], expiresAt: undefined },
      'namespaces are de-duplicated and sorted; no ttl means no expiry',
    );
  });

  it('gives an unscoped API token every namespace and a default name', async () => {
    const { tokens } = setup();
    const { object } = await tokens.create(api({ role: 'viewer' }), CA);
    assert.deepEqual(object.spec.namespaces, [ALL_NAMESPACES]);
    assert.equal(object.spec.displayName, `viewer-${object.metadata.name}`);
  });

  it('makes agent (join) tokens that pin the CA, expire after 24 h by default and carry no namespaces', async () => {
    const { tokens, clock } = setup();
    const { token, object } = await tokens.create({ role: 'agent', namespaces: ['prod'], createdBy: 'x' }, CA);
    const parsed = parseToken(token);
    assert.ok(parsed?.kind === 'join', `expected a join token, saw ${token}`);
    assert.equal(parsed.caSha256, CA, 'the join token must pin the CA digest given');
    assert.deepEqual(object.spec.namespaces, []);
    assert.equal(DEFAULT_JOIN_TOKEN_TTL_MS, 24 * 3600_000);
    assert.equal(object.spec.expiresAt, new Date(clock.now + DEFAULT_JOIN_TOKEN_TTL_MS).toISOString());
    assert.ok((await tokens.check(token, 'join')).ok, 'the join token must be accepted as a join token');
  });

  it('sets expiresAt from ttlMs on the injected clock', async () => {
    const { tokens, clock } = setup();
    const { object } = await tokens.create(api({ ttlMs: 90_000 }), CA);
    assert.equal(object.spec.expiresAt, new Date(clock.now + 90_000).toISOString());
    assert.equal(object.metadata.createdAt, new Date(clock.now).toISOString());
  });

  type Refusal = { name: string; make: (t: Tokens, clock: { now: number }) => Promise<{ text: string; kind: 'api' | 'join' }>; reason: string };
  const refusals: Refusal[] = [
    {
      name: 'a wrong secret',
      make: async (t) => ({ text: withSecret((await t.create(api(), CA)).token, 'x'.repeat(43)), kind: 'api' }),
      reason: 'WrongSecret',
    },
    { name: 'an unknown id', make: async () => ({ text: `bt1.${ID}.${SECRET}`, kind: 'api' }), reason: 'Unknown' },
    { name: 'a malformed token', make: async () => ({ text: 'bt1.nope', kind: 'api' }), reason: 'Malformed' },
    {
      name: 'an API token past its expiry',
      make: async (t, clock) => {
        const { token } = await t.create(api({ ttlMs: 60_000 }), CA);
        clock.now += 60_000;
        return { text: token, kind: 'api' };
      },
      reason: 'Expired',
    },
    {
      name: 'a join token past its default 24 h',
      make: async (t, clock) => {
        const { token } = await t.create({ role: 'agent', createdBy: 'x' }, CA);
        clock.now += DEFAULT_JOIN_TOKEN_TTL_MS;
        return { text: token, kind: 'join' };
      },
      reason: 'Expired',
    },
    { name: 'an API token used to join', make: async (t) => ({ text: (await t.create(api({ role: 'admin' }), CA)).token, kind: 'join' }), reason: 'WrongKind' },
    { name: 'a join token used as an API token', make: async (t) => ({ text: (await t.create({ role: 'agent', createdBy: 'x' }, CA)).token, kind: 'api' }), reason: 'WrongKind' },
    {
      // The string's shape says "api", the stored role says "agent": the stored role decides.
      name: 'a join token\'s id and secret dressed as an API token',
      make: async (t) => {
        const p = parseToken((await t.create({ role: 'agent', createdBy: 'x' }, CA)).token)!;
        return { text: `bt1.${p.id}.${p.secret}`, kind: 'api' };
      },
      reason: 'WrongKind',
    },
  ];
  for (const c of refusals) {
    it(`refuses ${c.name} as ${c.reason}`, async () => {
      const { tokens, clock } = setup();
      const { text, kind } = await c.make(tokens, clock);
      const r = await tokens.check(text, kind);
      assert.deepEqual(r, { ok: false, reason: c.reason }, `check(${kind}) of ${c.name}: expected ${c.reason}, saw ${r.ok ? 'accepted' : r.reason}`);
    });
  }

  it('accepts a token one millisecond before it expires', async () => {
    const { tokens, clock } = setup();
    const { token } = await tokens.create(api({ ttlMs: 60_000 }), CA);
    clock.now += 59_999;
    const r = await tokens.check(token, 'api');
    assert.ok(r.ok, `expected accepted at expiry - 1 ms, saw ${r.ok ? '' : r.reason}`);
  });

  it('revokes a token: check then says Unknown and a second revoke finds nothing', async () => {
    const { tokens } = setup();
    const { token, object } = await tokens.create(api(), CA);
    assert.equal(await tokens.revoke(object.metadata.name), true, 'first revoke must find the token');
    assert.deepEqual(await tokens.check(token, 'api'), { ok: false, reason: 'Unknown' });
    assert.equal(await tokens.revoke(object.metadata.name), false, 'second revoke must find nothing');
  });

  it('refuses to revoke an id that is not 12 lower-case hex characters without touching the store', async () => {
    const store = new Proxy({}, { get: (_t, p) => { throw new Error(`store.${String(p)} touched`); } }) as Store;
    const tokens = new Tokens(store);
    for (const id of ['../nodes/n1', '0123456789AB', '', '0123456789abc']) {
      assert.equal(await tokens.revoke(id), false, `revoke(${JSON.stringify(id)})`);
    }
  });

  it('never stores the secret, only its hash', async () => {
    const { tokens, store } = setup();
    for (const t of [api(), { role: 'agent' as const, createdBy: 'x' }]) {
      const { token, object } = await tokens.create(t, CA);
      const secret = parseToken(token)!.secret;
      const stored = JSON.stringify(store.objects.get(`tokens/${object.metadata.name}`));
      assert.ok(stored.length > 2, 'the token must be stored under tokens/<id>');
      assert.ok(!stored.includes(secret), `the stored ${t.role} token contains its secret: ${stored}`);
      assert.match(object.spec.secretSha256, /^[0-9a-f]{64}$/);
    }
  });

  it('lists every token it created', async () => {
    const { tokens } = setup();
    const made = await Promise.all([tokens.create(api(), CA), tokens.create(api({ role: 'viewer' }), CA)]);
    const listed = (await tokens.list()).map((t) => t.metadata.name).sort();
    assert.deepEqual(listed, made.map((m) => m.object.metadata.name).sort());
  });

  it('createWithId stores under the id given and lets only the first caller have it', async () => {
    const { tokens } = setup();
    const first = await tokens.createWithId(ID, api({ role: 'admin', displayName: 'cluster-admin' }), CA);
    assert.ok(first, 'the first createWithId must make the token');
    assert.equal(first.object.metadata.name, ID);
    assert.equal(parseToken(first.token)?.id, ID);
    const second = await tokens.createWithId(ID, api({ role: 'admin' }), CA);
    assert.equal(second, undefined, 'a second createWithId with a taken id must answer undefined');
    assert.ok((await tokens.check(first.token, 'api')).ok, 'the first token must stay valid');
  });

  it('draws another id when the first one collides', async () => {
    const { tokens, store } = setup();
    let refused = 0;
    const realCreate = store.create.bind(store);
    store.create = async (key, obj) => (refused++ === 0 ? { ok: false, reason: 'AlreadyExists' } : realCreate(key, obj));
    const { token } = await tokens.create(api(), CA);
    assert.equal(refused, 2, 'expected one refused and one accepted create');
    assert.ok((await tokens.check(token, 'api')).ok);
  });
});

describe('publicView', () => {
  it('shows a token without its hash', async () => {
    const { tokens } = setup();
    const { object } = await tokens.create(api({ description: 'ci', ttlMs: 1000 }), CA);
    const view = publicView(object as Token);
    assert.equal(JSON.stringify(view).includes(object.spec.secretSha256), false, 'the public view contains the secret hash');
    assert.deepEqual(Object.keys(view).sort(), ['createdAt', 'createdBy', 'description', 'expiresAt', 'id', 'name', 'namespaces', 'role']);
  });
});
