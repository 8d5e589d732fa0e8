/**
 * GET /v1/audit?since=DURATION|RFC3339&user=NAME&limit=N — the audit log's newest records
 * (at most `limit`, default DEFAULT_AUDIT_QUERY_LIMIT), oldest first, as `{ items: AuditRecord[] }`.
 * Who may ask is the access table's business, not this route's.
 */
import type { FastifyInstance } from 'fastify';
import { DURATION_SYNTAX, parseSince } from '../../common/duration.js';
import type { AuditLog, AuditRecord } from '../security/audit.js';
import { sendError } from './errors.js';

/** DEFAULT_AUDIT_QUERY_LIMIT is how many records one query returns when it names no limit. */
export const DEFAULT_AUDIT_QUERY_LIMIT = 1000;
/** MAX_AUDIT_QUERY_LIMIT bounds one answer; narrow with since or user to see further back. */
export const MAX_AUDIT_QUERY_LIMIT = 10_000;

// Types are not coerced (server.ts): limit arrives as a string and is checked in the handler,
// where the refusal can say what is expected.
const AUDIT_QUERY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    since: { type: 'string', minLength: 1 },
    user: { type: 'string', minLength: 1 },
    limit: { type: 'string' },
  },
} as const;

type AuditQueryString = { since?: string; user?: string; limit?: string };

/** AuditRoutesOptions: now is the clock for relative `since` values, in ms since the epoch. */
export interface AuditRoutesOptions {
  now?: () => number;
}

/** registerAuditRoutes adds GET /v1/audit, answering from audit. */
export function registerAuditRoutes(app: FastifyInstance, audit: AuditLog, options: AuditRoutesOptions = {}): void {
  const now = options.now ?? Date.now;
  app.get<{ Querystring: AuditQueryString }>('/v1/audit', { schema: { querystring: AUDIT_QUERY_SCHEMA } }, async (req, reply) => {
    const q = req.query;
    let since: Date | undefined;
    if (q.since !== undefined) {
      since = parseSince(q.since, now());
      if (since === undefined) {
        return sendError(reply, {
          code: 'BERTH_ERR_VALIDATION',
          field: 'query.since',
          message: `query.since: "${q.since}" is neither ${DURATION_SYNTAX} nor an RFC 3339 time like 2025-01-01T00:00:00Z`,
        });
      }
    }
    const limit = q.limit === undefined ? DEFAULT_AUDIT_QUERY_LIMIT : Number(q.limit);
    if (!/^[1-9][0-9]*$/.test(q.limit ?? '1') || limit > MAX_AUDIT_QUERY_LIMIT) {
      return sendError(reply, {
        code: 'BERTH_ERR_VALIDATION',
        field: 'query.limit',
        message: `query.limit: expected an integer from 1 to ${MAX_AUDIT_QUERY_LIMIT}, got "${q.limit}"`,
      });
    }
    const items: AuditRecord[] = await audit.read({ since, user: q.user, limit });
    return { items };
  });
}
