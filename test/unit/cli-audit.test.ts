import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AuditRecord } from '../../control-plane/security/audit.js';
import { FakeApi, runBerth } from '../support/fake-api.js';

const RECORDS: AuditRecord[] = [
  { time: '2025-01-01T00:01:00.000Z', requestId: 'r1', identity: 'alice', role: 'operator', via: 'token', source: '10.0.0.5', verb: 'create', resource: 'services', namespace: 'default', name: 'web', code: 201 },
  { time: '2025-01-01T00:02:00.000Z', requestId: 'r2', identity: 'alice', role: 'operator', via: 'token', source: '10.0.0.5', verb: 'exec', resource: 'tasks', namespace: 'default', name: 'web-1', code: 200, command: ['sh'] },
  { time: '2025-01-01T00:03:00.000Z', requestId: 'r3', identity: '', role: '', via: '', source: '203.0.113.9', verb: 'GET', resource: '/v1/nodes', code: 401, message: 'unknown or expired token' },
  { time: '2025-01-01T00:04:00.000Z', requestId: 'r4', identity: '', role: '', via: '', source: '10.1.0.7:40112', verb: 'register', resource: 'nodes', name: 'node-7', code: 'PERMISSION_DENIED' },
];

describe('berth audit against a fake control plane', () => {
  const api = new FakeApi();
  before(() => api.start());
  after(() => api.stop());
  beforeEach(() => api.reset());

  it('prints TIME USER ROLE SOURCE VERB RESOURCE NAMESPACE/NAME CODE, one row per record', async () => {
    api.routes.set('GET /v1/audit', { status: 200, body: { items: RECORDS } });
    const r = await runBerth(['--server', api.url, 'audit']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, [
      'TIME                       USER     ROLE       SOURCE           VERB       RESOURCE    NAMESPACE/NAME   CODE',
      '2025-01-01T00:01:00.000Z   alice    operator   10.0.0.5         create     services    default/web      201',
      '2025-01-01T00:02:00.000Z   alice    operator   10.0.0.5         exec       tasks       default/web-1    200',
      '2025-01-01T00:03:00.000Z   <none>   <none>     203.0.113.9      GET        /v1/nodes   <none>           401',
      '2025-01-01T00:04:00.000Z   <none>   <none>     10.1.0.7:40112   register   nodes       node-7           PERMISSION_DENIED',
      '',
    ].join('\n'));
  });

  it('passes --since, --user and --limit as the query; -o json prints the array', async () => {
    api.routes.set('GET /v1/audit?since=2h&user=alice&limit=2', { status: 200, body: { items: RECORDS.slice(0, 2) } });
    const r = await runBerth(['--server', api.url, 'audit', '--since', '2h', '--user', 'alice', '--limit', '2', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), RECORDS.slice(0, 2));
  });

  it('says so on stderr when nothing matches, and exits 0', async () => {
    api.routes.set('GET /v1/audit?user=nobody', { status: 200, body: { items: [] } });
    const r = await runBerth(['--server', api.url, 'audit', '--user', 'nobody']);
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, '', 'No audit records found.\n']);
  });

  it('exits 2 without asking the server for a bad --since, --limit or -o', async () => {
    for (const args of [['--since', 'yesterday'], ['--limit', '0'], ['--limit', 'many'], ['-o', 'yaml']]) {
      const r = await runBerth(['--server', api.url, 'audit', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^error: (--since|--limit|-o): /);
    }
    assert.deepEqual(api.requests.map((q) => q.url), []);
  });

  it('prints the server refusal and exits 1 (a non-admin asking)', async () => {
    api.routes.set('GET /v1/audit', { status: 403, body: { error: { code: 'BERTH_ERR_FORBIDDEN', message: 'token alice (operator) may not list audit' } } });
    const r = await runBerth(['--server', api.url, 'audit']);
    assert.deepEqual([r.code, r.stdout, r.stderr], [1, '', 'error: token alice (operator) may not list audit\n']);
  });
});
