/**
 * Secrets and configs on the command line: `berth get secrets|configs [NAME] [--reveal]`,
 * `berth delete secret|config NAME`, `berth create secret|config NAME --from-literal K=V
 * --from-file [K=]PATH`, and `berth secrets rotate-key`. A secret's values print only with
 * --reveal (an audited request); without it the keys and their sizes show.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { errorText, type ListBody } from './client.js';
import type { CommandContext } from './context.js';
import { nsPath } from './context.js';
import { EXIT_OK, EXIT_REQUEST_FAILED, usageError, CliError } from './errors.js';
import { formatAge, formatDocument, renderTable } from './format.js';
import { parseOutput } from './get.js';
import type { Config, SecretView } from '../objects/secret-types.js';

/** KeyedResource is the plural a word names. */
export type KeyedResource = 'secrets' | 'configs';

const WORDS: Record<string, KeyedResource> = { secrets: 'secrets', secret: 'secrets', configs: 'configs', config: 'configs' };

/** keyedResource maps secret(s)/config(s) to its resource, or undefined for any other word. */
export function keyedResource(word: string): KeyedResource | undefined {
  return WORDS[word.toLowerCase()];
}

/** KeyedGetOptions are the `get` flags secrets and configs read. */
export interface KeyedGetOptions {
  output: string;
  allNamespaces?: boolean;
  reveal?: boolean;
  watch?: boolean;
  service?: string;
  node?: string;
}

type Keyed = SecretView | Config;

const keysOf = (o: Keyed): string[] => Object.keys(o.kind === 'Secret' ? o.sizes : o.data).sort();

/** keyedTable renders NAMESPACE? NAME KEYS AGE rows (pure). */
export function keyedTable(items: readonly Keyed[], opts: { now: number; allNamespaces: boolean }): string {
  const headers = [...(opts.allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'KEYS', 'GENERATION', 'AGE'];
  const rows = items.map((o) => [...(opts.allNamespaces ? [o.metadata.namespace ?? ''] : []), o.metadata.name, keysOf(o).join(',') || '<none>',
    String(o.metadata.generation), formatAge(o.metadata.createdAt, opts.now)]);
  return renderTable(headers, rows);
}

/** getKeyedCommand lists or shows secrets or configs; --reveal (one secret, -o json|yaml) adds its values decoded. */
export async function getKeyedCommand(ctx: CommandContext, resource: KeyedResource, name: string | undefined, opts: KeyedGetOptions): Promise<number> {
  const output = parseOutput(opts.output);
  if (opts.watch) throw usageError(`get ${resource}: -w is not supported for ${resource}`);
  if (opts.service !== undefined || opts.node !== undefined) throw usageError(`get ${resource}: --service and --node apply to tasks, images and volumes`);
  if (opts.reveal && (resource !== 'secrets' || name === undefined)) throw usageError('--reveal shows one secret: berth get secret NAME --reveal');
  let items: Keyed[];
  if (name !== undefined) {
    const path = `${nsPath(ctx.namespace)}/${resource}/${encodeURIComponent(name)}${opts.reveal ? '?reveal=true' : ''}`;
    const r = await ctx.client.get<Keyed>(path);
    if (!r.ok) return fail(ctx, r.error);
    items = [r.body];
  } else {
    const r = await ctx.client.get<ListBody<Keyed>>(opts.allNamespaces ? `/v1/${resource}` : `${nsPath(ctx.namespace)}/${resource}`);
    if (!r.ok) return fail(ctx, r.error);
    items = r.body.items;
  }
  if (opts.reveal) {
    const s = items[0] as SecretView;
    if (output === 'json' || output === 'yaml') {
      ctx.io.stdout.write(formatDocument(s, output));
    } else {
      // Decoded, one key per line; binary values stay base64 so a terminal is not garbled.
      for (const [k, v] of Object.entries(s.data ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
        const bytes = Buffer.from(v, 'base64');
        const text = bytes.toString('utf8');
        const printable = Buffer.from(text, 'utf8').equals(bytes) && !/[\0-\x08\x0e-\x1f]/.test(text);
        ctx.io.stdout.write(`${k}: ${printable ? text : `base64:${v}`}\n`);
      }
    }
    return EXIT_OK;
  }
  if (output === 'json' || output === 'yaml') {
    ctx.io.stdout.write(formatDocument(name !== undefined ? items[0] : items, output));
    return EXIT_OK;
  }
  ctx.io.stdout.write(keyedTable(items, { now: Date.now(), allNamespaces: Boolean(opts.allNamespaces) && name === undefined }));
  return EXIT_OK;
}

/** deleteKeyedCommand deletes one secret or config (refused while a service uses it). */
export async function deleteKeyedCommand(ctx: CommandContext, resource: KeyedResource, name: string): Promise<number> {
  const r = await ctx.client.delete(`${nsPath(ctx.namespace)}/${resource}/${encodeURIComponent(name)}`);
  if (!r.ok) return fail(ctx, r.error);
  ctx.io.stdout.write(`${resource.slice(0, -1)}/${name} deleted\n`);
  return EXIT_OK;
}

/** CreateKeyedOptions are the value sources of `create secret|config`. */
export interface CreateKeyedOptions {
  fromLiteral: string[];
  fromFile: string[];
}

/** keyedValues reads --from-literal K=V and --from-file [K=]PATH into key → bytes; a key given twice is a usage error. */
export async function keyedValues(opts: CreateKeyedOptions): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const put = (k: string, v: Buffer, flag: string): void => {
    if (k === '') throw usageError(`${flag}: the key is empty`);
    if (out.has(k)) throw usageError(`${flag}: key "${k}" is given twice`);
    out.set(k, v);
  };
  for (const lit of opts.fromLiteral) {
    const eq = lit.indexOf('=');
    if (eq <= 0) throw usageError(`--from-literal: "${lit}" must be KEY=VALUE`);
    put(lit.slice(0, eq), Buffer.from(lit.slice(eq + 1)), '--from-literal');
  }
  for (const spec of opts.fromFile) {
    const eq = spec.indexOf('=');
    const [key, path] = eq > 0 ? [spec.slice(0, eq), spec.slice(eq + 1)] : [basename(spec), spec];
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      throw new CliError('BERTH_ERR_CLI_FILE', `--from-file: ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, { cause: err });
    }
    put(key, bytes, '--from-file');
  }
  if (out.size === 0) throw usageError('give the values with --from-literal KEY=VALUE or --from-file [KEY=]PATH');
  return out;
}

/** createKeyedCommand creates a secret (values sent base64) or a config (values as text); an existing one is refused. */
export async function createKeyedCommand(ctx: CommandContext, resource: KeyedResource, name: string, opts: CreateKeyedOptions): Promise<number> {
  const values = await keyedValues(opts);
  const data = Object.fromEntries([...values].map(([k, v]) => [k, resource === 'secrets' ? v.toString('base64') : v.toString('utf8')]));
  const body = { kind: resource === 'secrets' ? 'Secret' : 'Config', metadata: { name, namespace: ctx.namespace }, data };
  const r = await ctx.client.post(`${nsPath(ctx.namespace)}/${resource}`, body);
  if (!r.ok) return fail(ctx, r.error);
  ctx.io.stdout.write(`${resource.slice(0, -1)}/${name} created\n`);
  return EXIT_OK;
}

/** rotateKeyCommand makes a new secrets data key and re-seals every secret with it (admin). */
export async function rotateKeyCommand(ctx: CommandContext): Promise<number> {
  const r = await ctx.client.post<{ keyId: string; resealed: number; failed: string[] }>('/v1/secrets/rotate-key', {});
  if (!r.ok) return fail(ctx, r.error);
  ctx.io.stdout.write(`new data key ${r.body.keyId}: ${r.body.resealed} secret${r.body.resealed === 1 ? '' : 's'} re-sealed\n`);
  if (r.body.failed.length > 0) {
    ctx.io.stderr.write(`error: not re-sealed (run rotate-key again): ${r.body.failed.join(', ')}\n`);
    return EXIT_REQUEST_FAILED;
  }
  return EXIT_OK;
}

function fail(ctx: CommandContext, error: Parameters<typeof errorText>[0]): number {
  ctx.io.stderr.write(`error: ${errorText(error)}\n`);
  return EXIT_REQUEST_FAILED;
}
