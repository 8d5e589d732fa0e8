/**
 * `berth auth can-i VERB RESOURCE` and `berth auth whoami`: what the server makes of the
 * credential in use. can-i answers through its exit status like kubectl's: 0 yes, 1 no;
 * a failed request is 1 too (with `error: ...` on stderr and nothing on stdout), bad usage 2.
 */
import { errorText } from './client.js';
import type { CommandContext } from './context.js';
import { EXIT_OK, EXIT_REQUEST_FAILED, usageError } from './errors.js';
import { formatDocument } from './format.js';

/** CanIOptions are the flags of `auth can-i`. */
export interface CanIOptions {
  allNamespaces?: boolean;
}

/** CanIBody is the body of POST /v1/auth/can-i; namespace is absent for a question about every namespace. */
export interface CanIBody {
  verb: string;
  resource: string;
  namespace?: string;
}

/** CanIAnswer is the server's verdict. */
export interface CanIAnswer {
  allowed: boolean;
  reason: string;
}

/** WhoAmI is the server's view of the caller. */
export interface WhoAmI {
  name: string;
  role: string;
  namespaces: string[];
  via: string;
}

/**
 * canICommand asks whether the caller may do VERB on RESOURCE in the namespace the same command
 * would use (-n, else the config's, else default), or in every namespace with -A. Prints `yes`
 * or `no` (the reason on stderr); exit 0 for yes, 1 for no.
 */
export async function canICommand(ctx: CommandContext, verb: string, resource: string, opts: CanIOptions): Promise<number> {
  if (verb.trim() === '' || resource.trim() === '') throw usageError('auth can-i: VERB and RESOURCE must not be empty');
  const body: CanIBody = { verb, resource };
  if (!opts.allNamespaces) body.namespace = ctx.namespace;
  const r = await ctx.client.post<CanIAnswer>('/v1/auth/can-i', body);
  if (!r.ok) {
    ctx.io.stderr.write(`error: ${errorText(r.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  if (typeof r.body?.allowed !== 'boolean') {
    ctx.io.stderr.write('error: the server answered without "allowed"\n');
    return EXIT_REQUEST_FAILED;
  }
  if (r.body.allowed) {
    ctx.io.stdout.write('yes\n');
    return EXIT_OK;
  }
  ctx.io.stdout.write('no\n');
  if (r.body.reason) ctx.io.stderr.write(`${r.body.reason}\n`);
  return EXIT_REQUEST_FAILED;
}

/** whoamiLine renders the caller in one line: `alice (operator) via token, namespaces: a,b` (pure). */
export function whoamiLine(who: WhoAmI): string {
  const ns = !who.namespaces || who.namespaces.length === 0 ? '<none>' : who.namespaces.includes('*') ? 'all' : who.namespaces.join(',');
  return `${who.name} (${who.role}) via ${who.via}, namespaces: ${ns}\n`;
}

/** whoamiCommand prints who the server takes the caller for, as a line or with -o json. */
export async function whoamiCommand(ctx: CommandContext, opts: { output?: string }): Promise<number> {
  const output = opts.output ?? 'text';
  if (output !== 'text' && output !== 'json') throw usageError(`unknown output format "${output}" (use text or json)`);
  const r = await ctx.client.get<WhoAmI>('/v1/auth/whoami');
  if (!r.ok) {
    ctx.io.stderr.write(`error: ${errorText(r.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  ctx.io.stdout.write(output === 'json' ? formatDocument(r.body, 'json') : whoamiLine(r.body));
  return EXIT_OK;
}
