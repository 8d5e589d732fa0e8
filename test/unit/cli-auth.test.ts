import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expiresCell, parseTtlSeconds, tokenCreateBody } from '../../control-plane/cli/token.js';
import { whoamiLine } from '../../control-plane/cli/auth.js';
import { CliError } from '../../control-plane/cli/errors.js';
import { FakeApi, NOW_MS, runBerth } from '../support/fake-api.js';

const CREATED = { token: 'bt1_tok1_s3cret', id: 'tok1', name: 'ci', role: 'operator', namespaces: ['team-a', 'team-b'], createdAt: '2025-01-01T00:10:00Z', expiresAt: '2025-01-02T00:10:00Z' };
const FORBIDDEN = { status: 403, body: { error: { code: 'BERTH_ERR_FORBIDDEN', message: 'token bob (viewer) may not create tokens' } } };

describe('berth token and auth verbs against a fake control plane', () => {
  const api = new FakeApi();
  let dir: string;
  before(async () => {
    await api.start();
    dir = mkdtempSync(join(tmpdir(), 'berth-auth-'));
  });
  after(async () => {
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => api.reset());
  const berth = (args: string[], env: Record<string, string> = {}): ReturnType<typeof runBerth> =>
    runBerth(['--server', api.url, '--token', 'bt1_admin', ...args], { env });

  describe('token create', () => {
    it('sends role, name, every --namespace, ttl in seconds and description; prints only the token', async () => {
      api.routes.set('POST /v1/tokens', { status: 201, body: CREATED });
      const r = await berth(['token', 'create', '--role', 'operator', '--name', 'ci', '--namespace', 'team-a', '--namespace', 'team-b', '--ttl', '24h', '--description', 'deploys from CI']);
      assert.deepEqual([r.code, r.stdout], [0, 'bt1_tok1_s3cret\n'], r.stderr);
      assert.deepEqual(api.requests[0]!.body, { role: 'operator', name: 'ci', namespaces: ['team-a', 'team-b'], ttlSeconds: 86400, description: 'deploys from CI' });
      assert.equal(api.requests[0]!.auth, 'Bearer bt1_admin');
      assert.equal(r.stderr, 'token tok1 (ci) created: role operator, namespaces team-a,team-b, expires 2025-01-02T00:10:00Z\n');
    });

    it('takes -n before the verb as a scope too, and drops repeats', async () => {
      api.routes.set('POST /v1/tokens', { status: 201, body: CREATED });
      const r = await berth(['-n', 'team-a', 'token', 'create', '--role', 'viewer', '-n', 'team-a']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(api.requests[0]!.body, { role: 'viewer', namespaces: ['team-a'] });
    });

    it('never scopes a token by the config file\'s default namespace', async () => {
      api.routes.set('POST /v1/tokens', { status: 201, body: { ...CREATED, role: 'agent', namespaces: ['*'] } });
      const config = join(dir, 'ns.json');
      writeFileSync(config, JSON.stringify({ apiVersion: 'berth/v1', kind: 'Config', server: api.url, token: 'bt1_admin', namespace: 'team-a' }));
      const r = await runBerth(['token', 'create', '--role', 'agent'], { env: { BERTH_CONFIG: config } });
      assert.deepEqual([r.code, r.stdout], [0, 'bt1_tok1_s3cret\n'], r.stderr);
      assert.deepEqual(api.requests[0]!.body, { role: 'agent' });
    });

    const usage: [string, string[], RegExp][] = [
      ['an unknown role', ['--role', 'root'], /--role: must be one of viewer, operator, admin, agent, got "root"/],
      ['no role', [], /required option '--role <role>' not specified/],
      ['a ttl without a unit', ['--role', 'viewer', '--ttl', '3600'], /--ttl: expected a duration like 90s, 10m, 2h, 7d or 1h30m, got "3600"/],
      ['a ttl under a second', ['--role', 'viewer', '--ttl', '500ms'], /--ttl: must be whole seconds, at least 1s, got "500ms"/],
    ];
    for (const [name, args, message] of usage) {
      it(`exits 2 and sends nothing on ${name}`, async () => {
        const r = await berth(['token', 'create', ...args]);
        assert.deepEqual([r.code, r.stdout], [2, '']);
        assert.match(r.stderr, message);
        assert.equal(api.requests.length, 0);
      });
    }

    it('prints the server\'s refusal and exits 1, with nothing on stdout', async () => {
      api.routes.set('POST /v1/tokens', FORBIDDEN);
      const r = await berth(['token', 'create', '--role', 'admin']);
      assert.deepEqual([r.code, r.stdout, r.stderr], [1, '', 'error: token bob (viewer) may not create tokens\n']);
    });

    it('exits 1 when the answer carries no token', async () => {
      api.routes.set('POST /v1/tokens', { status: 201, body: { id: 'x' } });
      const r = await berth(['token', 'create', '--role', 'viewer']);
      assert.deepEqual([r.code, r.stdout, r.stderr], [1, '', 'error: the server answered without a token\n']);
    });
  });

  describe('token list and revoke', () => {
    const items = [
      { id: 'tok1', name: 'ci', role: 'operator', namespaces: ['team-a', 'team-b'], createdAt: '2025-01-01T00:00:00Z', expiresAt: '2025-01-02T00:00:00Z', createdBy: 'admin' },
      { id: 'tok2', name: 'node-join', role: 'agent', namespaces: ['*'], createdAt: '2024-12-01T00:00:00Z' },
      { id: 'tok3', name: '', role: 'viewer', namespaces: ['default'], createdAt: '2024-12-01T00:00:00Z', expiresAt: '2024-12-02T00:00:00Z' },
    ];

    it('lists ID, NAME, ROLE, NAMESPACES, EXPIRES, AGE', async () => {
      api.routes.set('GET /v1/tokens', { status: 200, body: { items } });
      const r = await berth(['token', 'list']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, [
        'ID     NAME        ROLE       NAMESPACES      EXPIRES   AGE',
        'tok1   ci          operator   team-a,team-b   23h       10m',
        'tok2   node-join   agent      *               never     31d',
        'tok3   <none>      viewer     default         expired   31d',
        '',
      ].join('\n'));
    });

    it('-o json prints the items as an array; an empty list says so on stderr', async () => {
      api.routes.set('GET /v1/tokens', { status: 200, body: { items } });
      assert.deepEqual(JSON.parse((await berth(['token', 'list', '-o', 'json'])).stdout), items);
      api.routes.set('GET /v1/tokens', { status: 200, body: { items: [] } });
      assert.deepEqual(Object.values(await berth(['token', 'list'])), [0, '', 'No tokens found.\n']);
    });

    it('refuses an output format it does not have', async () => {
      const r = await berth(['token', 'list', '-o', 'yaml']);
      assert.deepEqual([r.code, r.stderr], [2, 'error: unknown output format "yaml" (use table or json)\n']);
    });

    it('revoke deletes by ID; an unknown ID is the server\'s 404, exit 1', async () => {
      api.routes.set('DELETE /v1/tokens/tok1', { status: 200, body: {} });
      assert.deepEqual(Object.values(await berth(['token', 'revoke', 'tok1'])), [0, 'token/tok1 revoked\n', '']);
      const missing = await berth(['token', 'revoke', 'nope']);
      assert.deepEqual([missing.code, missing.stderr], [1, 'error: /v1/tokens/nope not found\n']);
    });
  });

  describe('auth can-i', () => {
    it('yes: prints yes, exits 0, asks about the -n namespace', async () => {
      api.routes.set('POST /v1/auth/can-i', { status: 200, body: { allowed: true, reason: 'operator in prod' } });
      const r = await berth(['auth', 'can-i', 'create', 'services', '-n', 'prod']);
      assert.deepEqual([r.code, r.stdout, r.stderr], [0, 'yes\n', '']);
      assert.deepEqual(api.requests[0]!.body, { verb: 'create', resource: 'services', namespace: 'prod' });
    });

    it('no: prints no, the reason on stderr, exits 1', async () => {
      api.routes.set('POST /v1/auth/can-i', { status: 200, body: { allowed: false, reason: 'viewer may not exec' } });
      const r = await berth(['auth', 'can-i', 'exec', 'tasks']);
      assert.deepEqual([r.code, r.stdout, r.stderr], [1, 'no\n', 'viewer may not exec\n']);
      assert.deepEqual(api.requests[0]!.body, { verb: 'exec', resource: 'tasks', namespace: 'default' });
    });

    it('-A asks about every namespace (no namespace in the body)', async () => {
      api.routes.set('POST /v1/auth/can-i', { status: 200, body: { allowed: true, reason: '' } });
      const r = await berth(['auth', 'can-i', 'list', 'services', '-A']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(api.requests[0]!.body, { verb: 'list', resource: 'services' });
    });

    it('a failed request is exit 1 with the server\'s message and nothing on stdout; bad usage is exit 2', async () => {
      api.routes.set('POST /v1/auth/can-i', { status: 500, body: { error: { code: 'BERTH_ERR_INTERNAL', message: 'etcd unavailable' } } });
      assert.deepEqual(Object.values(await berth(['auth', 'can-i', 'get', 'nodes'])), [1, '', 'error: etcd unavailable\n']);
      const usage = await berth(['auth', 'can-i', 'get']);
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /missing required argument 'resource'/);
    });
  });

  describe('auth whoami', () => {
    it('prints a short line, or the JSON with -o json', async () => {
      const who = { name: 'alice', role: 'operator', namespaces: ['team-a', 'team-b'], via: 'token' };
      api.routes.set('GET /v1/auth/whoami', { status: 200, body: who });
      assert.deepEqual(Object.values(await berth(['auth', 'whoami'])), [0, 'alice (operator) via token, namespaces: team-a,team-b\n', '']);
      assert.deepEqual(JSON.parse((await berth(['auth', 'whoami', '-o', 'json'])).stdout), who);
    });
  });

  it('a repeated -n on other verbs: the last one wins, as before', async () => {
    api.routes.set('GET /v1/namespaces/b/tasks', { status: 200, body: { items: [] } });
    const r = await berth(['-n', 'a', 'get', 'tasks', '-n', 'b', '-o', 'json']);
    assert.deepEqual([r.code, r.stdout], [0, '[]\n']);
  });

  it('token create --help shows the --namespace form of the contract', async () => {
    const r = await runBerth(['token', 'create', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Usage: berth token create --role ROLE \[--namespace NS\]\.\.\. \[--ttl DURATION\]/);
  });
});

describe('token and auth helpers', () => {
  it('tokenCreateBody leaves out what was not given', () => {
    assert.deepEqual(tokenCreateBody({ role: 'viewer' }, []), { role: 'viewer' });
  });

  const ttl: [string, number | RegExp][] = [['30s', 30], ['10m', 600], ['24h', 86400], ['7d', 604800], ['1h30m', 5400], ['0s', /at least 1s/], ['1.5s', /whole seconds/], ['soon', /expected a duration/]];
  for (const [raw, want] of ttl) {
    it(`parseTtlSeconds("${raw}")`, () => {
      if (typeof want === 'number') assert.equal(parseTtlSeconds(raw), want);
      else assert.throws(() => parseTtlSeconds(raw), (err: unknown) => err instanceof CliError && err.exitCode === 2 && want.test(err.message));
    });
  }

  const expires: [string | undefined, string][] = [[undefined, 'never'], ['2025-01-01T00:00:00Z', 'expired'], ['2025-01-01T01:10:00Z', '60m'], ['2025-01-08T00:10:00Z', '7d']];
  for (const [at, want] of expires) {
    it(`expiresCell(${at}) is ${want}`, () => assert.equal(expiresCell(at, NOW_MS), want));
  }

  it('whoamiLine says "all" for every namespace', () => {
    assert.equal(whoamiLine({ name: 'root', role: 'admin', namespaces: ['*'], via: 'certificate' }), 'root (admin) via certificate, namespaces: all\n');
  });
});
