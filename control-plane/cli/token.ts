/**
 * `berth token create|list|revoke`: bearer tokens for people, scripts and joining agents.
 * `create` prints only the token on stdout so a script can capture it; the server shows it once.
 *
 * Scopes: `--namespace NS` (the global -n), repeated, limits the token to those namespaces, as in
 * DESIGN.md's `berth token create --role ROLE [--namespace NS]... [--ttl D]`. Only namespaces
 * given on the command line count: the config file's default namespace never narrows a token.
 * Without any, the server decides (every namespace for the role).
 */
import { DURATION_SYNTAX, parseDuration } from '../../common/duration.js';
import { isTokenRole, TOKEN_ROLES } from '../security/identity.js';
import { errorText, type ListBody } from './client.js';
import type { CommandContext } from './context.js';
import { EXIT_OK, EXIT_REQUEST_FAILED, usageError } from './errors.js';
import { formatAge, formatDocument, formatDuration, renderTable } from './format.js';

const MS_PER_SECOND = 1000;

/** TokenCreateOptions are the flags of `token create` (namespaces come from the global -n). */
export interface TokenCreateOptions {
  role: string;
  name?: string;
  ttl?: string;
  description?: string;
}

/** TokenCreateBody is the body of POST /v1/tokens. */
export interface TokenCreateBody {
  role: string;
  name?: string;
  namespaces?: string[];
  ttlSeconds?: number;
  description?: string;
}

/** TokenInfo is a token as the API lists it (never its secret). */
export interface TokenInfo {
  id: string;
  name: string;
  role: string;
  namespaces: string[];
  createdAt: string;
  expiresAt?: string;
  createdBy?: string;
  description?: string;
}

/** CreatedToken is the answer to POST /v1/tokens: the token itself, shown this once. */
export interface CreatedToken extends TokenInfo {
  token: string;
}

/** parseTtlSeconds reads --ttl (`30s`, `10m`, `24h`, `7d`, `1h30m`) as whole seconds, at least one. */
export function parseTtlSeconds(raw: string): number {
  const ms = parseDuration(raw);
  if (ms === undefined) throw usageError(`--ttl: expected ${DURATION_SYNTAX}, got "${raw}"`);
  if (ms < MS_PER_SECOND || ms % MS_PER_SECOND !== 0) throw usageError(`--ttl: must be whole seconds, at least 1s, got "${raw}"`);
  return ms / MS_PER_SECOND;
}

/** tokenCreateBody validates the flags and builds the request body, leaving out what was not given (pure). */
export function tokenCreateBody(opts: TokenCreateOptions, namespaces: readonly string[]): TokenCreateBody {
  if (!isTokenRole(opts.role)) throw usageError(`--role: must be one of ${TOKEN_ROLES.join(', ')}, got "${opts.role}"`);
  const body: TokenCreateBody = { role: opts.role };
  if (opts.name !== undefined) body.name = opts.name;
  const scopes = [...new Set(namespaces)];
  if (scopes.length > 0) body.namespaces = scopes;
  if (opts.ttl !== undefined) body.ttlSeconds = parseTtlSeconds(opts.ttl);
  if (opts.description !== undefined) body.description = opts.description;
  return body;
}

/** tokenCreateCommand creates a token and prints only the token on stdout; a summary goes to stderr. */
export async function tokenCreateCommand(ctx: CommandContext, opts: TokenCreateOptions): Promise<number> {
  const body = tokenCreateBody(opts, ctx.namespaceFlags);
  const r = await ctx.client.post<CreatedToken>('/v1/tokens', body);
  if (!r.ok) {
    ctx.io.stderr.write(`error: ${errorText(r.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  if (typeof r.body?.token !== 'string' || r.body.token === '') {
    ctx.io.stderr.write('error: the server answered without a token\n');
    return EXIT_REQUEST_FAILED;
  }
  ctx.io.stdout.write(`${r.body.token}\n`);
  const t = r.body;
  ctx.io.stderr.write(`token ${t.id} (${t.name}) created: role ${t.role}, namespaces ${namespacesCell(t.namespaces)}, expires ${t.expiresAt ?? 'never'}\n`);
  return EXIT_OK;
}

function namespacesCell(namespaces: string[] | undefined): string {
  return namespaces && namespaces.length > 0 ? namespaces.join(',') : '<none>';
}

/** expiresCell is the EXPIRES cell: time left, `expired`, or `never` (pure). */
export function expiresCell(expiresAt: string | undefined, now: number): string {
  if (!expiresAt) return 'never';
  const at = Date.parse(expiresAt);
  if (Number.isNaN(at)) return '<invalid>';
  return at <= now ? 'expired' : formatDuration(at - now);
}

/** tokensTable renders ID NAME ROLE NAMESPACES EXPIRES AGE (pure). */
export function tokensTable(tokens: readonly TokenInfo[], now: number): string {
  return renderTable(['ID', 'NAME', 'ROLE', 'NAMESPACES', 'EXPIRES', 'AGE'], tokens.map((t) => [
    t.id, t.name || '<none>', t.role, namespacesCell(t.namespaces), expiresCell(t.expiresAt, now), formatAge(t.createdAt, now),
  ]));
}

/** tokenListCommand lists tokens as a table, or their JSON array with -o json. */
export async function tokenListCommand(ctx: CommandContext, opts: { output?: string }): Promise<number> {
  const output = opts.output ?? 'table';
  if (output !== 'table' && output !== 'json') throw usageError(`unknown output format "${output}" (use table or json)`);
  const r = await ctx.client.get<ListBody<TokenInfo>>('/v1/tokens');
  if (!r.ok) {
    ctx.io.stderr.write(`error: ${errorText(r.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  const items = r.body?.items ?? [];
  if (output === 'json') {
    ctx.io.stdout.write(formatDocument(items, 'json'));
    return EXIT_OK;
  }
  if (items.length === 0) {
    ctx.io.stderr.write('No tokens found.\n');
    return EXIT_OK;
  }
  ctx.io.stdout.write(tokensTable(items, ctx.io.now()));
  return EXIT_OK;
}

/** tokenRevokeCommand revokes one token by its id; requests with it fail from then on. */
export async function tokenRevokeCommand(ctx: CommandContext, id: string): Promise<number> {
  if (id.trim() === '') throw usageError('token revoke: missing token ID');
  const r = await ctx.client.delete(`/v1/tokens/${encodeURIComponent(id)}`);
  if (!r.ok) {
    ctx.io.stderr.write(`error: ${errorText(r.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  ctx.io.stdout.write(`token/${id} revoked\n`);
  return EXIT_OK;
}
