/** `berth audit [--since D] [--user U] [--limit N] [-o table|json]`: the control plane's audit log. */
import { DURATION_SYNTAX, parseSince } from '../../common/duration.js';
import type { AuditRecord } from '../security/audit.js';
import { errorText, type ListBody } from './client.js';
import type { CommandContext } from './context.js';
import { EXIT_OK, EXIT_REQUEST_FAILED, usageError } from './errors.js';
import { formatDocument, renderTable } from './format.js';

/** AuditOptions are the flags of `audit`. */
export interface AuditOptions {
  since?: string;
  user?: string;
  limit?: string;
  output: string;
}

const AUDIT_OUTPUTS = ['table', 'json'];
const HEADERS = ['TIME', 'USER', 'ROLE', 'SOURCE', 'VERB', 'RESOURCE', 'NAMESPACE/NAME', 'CODE'];
const NONE = '<none>';

/** auditCells is one row of the audit table (pure): absolute times, since an audit is read against other logs. */
export function auditCells(r: AuditRecord): string[] {
  const object = r.namespace !== undefined && r.name !== undefined ? `${r.namespace}/${r.name}` : r.name ?? r.namespace ?? NONE;
  return [r.time, r.identity || NONE, r.role || NONE, r.source || NONE, r.verb, r.resource, object, String(r.code)];
}

/** auditTable renders records in the order given (the server answers oldest first). */
export function auditTable(records: readonly AuditRecord[]): string {
  return renderTable(HEADERS, records.map(auditCells));
}

/** auditQueryPath checks the flags (bad ones are usage errors, exit 2) and builds the request path. */
export function auditQueryPath(opts: AuditOptions, nowMs: number): string {
  const query = new URLSearchParams();
  if (opts.since !== undefined) {
    if (parseSince(opts.since, nowMs) === undefined) {
      throw usageError(`--since: "${opts.since}" is neither ${DURATION_SYNTAX} nor an RFC 3339 time like 2025-01-01T00:00:00Z`);
    }
    query.set('since', opts.since);
  }
  if (opts.user !== undefined) query.set('user', opts.user);
  if (opts.limit !== undefined) {
    if (!/^[1-9][0-9]*$/.test(opts.limit)) throw usageError(`--limit: expected a positive integer, got "${opts.limit}"`);
    query.set('limit', opts.limit);
  }
  const qs = query.toString();
  return qs ? `/v1/audit?${qs}` : '/v1/audit';
}

/** auditCommand prints the matching audit records as a table, or as a JSON array with -o json. */
export async function auditCommand(ctx: CommandContext, opts: AuditOptions): Promise<number> {
  if (!AUDIT_OUTPUTS.includes(opts.output)) throw usageError(`-o: unknown output format "${opts.output}" (use ${AUDIT_OUTPUTS.join(', ')})`);
  const r = await ctx.client.get<ListBody<AuditRecord>>(auditQueryPath(opts, ctx.io.now()));
  if (!r.ok) {
    ctx.io.stderr.write(`error: ${errorText(r.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  const items = r.body.items ?? [];
  if (opts.output === 'json') {
    ctx.io.stdout.write(formatDocument(items, 'json'));
    return EXIT_OK;
  }
  if (items.length === 0) {
    ctx.io.stderr.write('No audit records found.\n');
    return EXIT_OK;
  }
  ctx.io.stdout.write(auditTable(items));
  return EXIT_OK;
}
