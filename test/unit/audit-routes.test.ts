import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { silentLogger } from '../../common/log.js';
import { installErrorHandlers } from '../../control-plane/api/errors.js';
import { registerAuditRoutes } from '../../control-plane/api/routes-audit.js';
import { AuditLog, type AuditRecord } from '../../control-plane/security/audit.js';

const NOW = Date.parse('2025-01-01T01:00:00.000Z');

describe('GET /v1/audit', () => {
  let dir = '';
  let audit: AuditLog;
  let app: FastifyInstance;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-audit-routes-'));
    let t = Date.parse('2025-01-01T00:00:00.000Z');
    audit = new AuditLog({ path: join(dir, 'audit.log'), clock: () => t });
    for (let i = 0; i < 60; i++) { // one record a minute, alice and bob in turn
      audit.write({ requestId: `r${i}`, identity: i % 2 === 0 ? 'alice' : 'bob', role: 'operator', via: 'token', source: '10.0.0.1', verb: 'create', resource: 'services', code: 201 });
      t += 60_000;
    }
    app = Fastify({ logger: false, ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } } });
    installErrorHandlers(app, silentLogger);
    registerAuditRoutes(app, audit, { now: () => NOW });
    await app.ready();
  });
  after(async () => {
    await app.close();
    await audit.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = async (url: string): Promise<{ status: number; body: { items?: AuditRecord[]; error?: { code: string; message: string } } }> => {
    const res = await app.inject({ method: 'GET', url });
    return { status: res.statusCode, body: res.json() };
  };
  const ids = (items: AuditRecord[] | undefined): string[] => (items ?? []).map((r) => r.requestId);

  it('answers every record oldest first without a query', async () => {
    const { status, body } = await get('/v1/audit');
    assert.equal(status, 200);
    assert.equal(body.items?.length, 60);
    assert.deepEqual(ids(body.items).slice(0, 2), ['r0', 'r1']);
  });

  it('since takes a duration back from the server clock or an RFC 3339 time', async () => {
    assert.deepEqual(ids((await get('/v1/audit?since=3m')).body.items), ['r57', 'r58', 'r59']);
    assert.deepEqual(ids((await get('/v1/audit?since=2025-01-01T00:58:00Z')).body.items), ['r58', 'r59']);
  });

  it('user and limit narrow the answer to the newest matches', async () => {
    assert.deepEqual(ids((await get('/v1/audit?user=bob&limit=2')).body.items), ['r57', 'r59']);
    assert.deepEqual(ids((await get('/v1/audit?since=10m&user=alice')).body.items), ['r50', 'r52', 'r54', 'r56', 'r58']);
  });

  it('refuses a bad since with 400 and a message saying what is accepted', async () => {
    const { status, body } = await get('/v1/audit?since=yesterday');
    assert.equal(status, 400);
    assert.equal(body.error?.code, 'BERTH_ERR_VALIDATION');
    assert.match(body.error?.message ?? '', /since: "yesterday" is neither a duration like 90s, 10m, 2h, 7d or 1h30m nor an RFC 3339 time/);
  });

  it('refuses a bad limit and unknown parameters with 400', async () => {
    for (const q of ['limit=0', 'limit=ten', 'limit=-1', 'limit=100001', 'verb=exec']) {
      const { status, body } = await get(`/v1/audit?${q}`);
      assert.equal(status, 400, `${q}: ${JSON.stringify(body)}`);
    }
  });
});
