/**
 * `berth get volumes [NAME] [--node N] [-A] [-o table|json|yaml]` lists the named volumes nodes
 * report (NODE NAMESPACE NAME SIZE IN-USE AGE), of the -n namespace unless -A; NAME keeps that
 * volume's rows. `berth delete volume NAME [--node N]` deletes one from a node (the node may be
 * left out when only one node has the volume); refused while a task on the node uses it.
 */
import { errorText, type ListBody } from './client.js';
import type { CommandContext } from './context.js';
import { nsPath } from './context.js';
import { EXIT_OK, EXIT_REQUEST_FAILED, usageError } from './errors.js';
import { formatAge, formatBytes, formatDocument, renderTable } from './format.js';
import { parseOutput } from './get.js';

/** VOLUME_WORDS are the resource words that mean named volumes. */
const VOLUME_WORDS: ReadonlySet<string> = new Set(['volumes', 'volume', 'vol']);

/** isVolumesResource tells whether a `get`/`delete` resource word means volumes. */
export function isVolumesResource(word: string): boolean {
  return VOLUME_WORDS.has(word.toLowerCase());
}

/** VolumeRow is one named volume on one node, as GET /v1/volumes answers it. */
export interface VolumeRow {
  node: string;
  namespace: string;
  name: string;
  sizeBytes: number;
  inUse: boolean;
  createdAt: string;
}

/** GetVolumesOptions are the `get` flags volumes read. */
export interface GetVolumesOptions {
  output: string;
  node?: string;
  allNamespaces?: boolean;
  service?: string;
  watch?: boolean;
}

/** volumesTable renders NODE NAMESPACE NAME SIZE IN-USE AGE. */
export function volumesTable(rows: readonly VolumeRow[], now: number): string {
  return renderTable(['NODE', 'NAMESPACE', 'NAME', 'SIZE', 'IN-USE', 'AGE'],
    rows.map((v) => [v.node, v.namespace, v.name, formatBytes(v.sizeBytes), v.inUse ? 'yes' : 'no', formatAge(v.createdAt, now)]));
}

/** getVolumesCommand lists the volumes of the namespace (or every one with -A), optionally of one node and one name. */
export async function getVolumesCommand(ctx: CommandContext, name: string | undefined, opts: GetVolumesOptions): Promise<number> {
  const output = parseOutput(opts.output);
  if (opts.service !== undefined) throw usageError('--service filters tasks only');
  if (opts.watch) throw usageError('-w is not supported for volumes');
  if (output === 'wide') throw usageError('-o wide is not supported for volumes (use table, json or yaml)');
  if (opts.allNamespaces && name !== undefined) throw usageError('-A lists objects; it cannot be combined with NAME');
  const base = opts.allNamespaces ? '/v1/volumes' : `${nsPath(ctx.namespace)}/volumes`;
  const path = opts.node !== undefined ? `${base}?${new URLSearchParams({ node: opts.node }).toString()}` : base;
  const fetched = await ctx.client.get<ListBody<VolumeRow>>(path);
  if (!fetched.ok) {
    ctx.io.stderr.write(`error: ${errorText(fetched.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  const rows = (fetched.body.items ?? []).filter((r) => name === undefined || r.name === name);
  if (output === 'json' || output === 'yaml') {
    ctx.io.stdout.write(formatDocument(rows, output));
    return EXIT_OK;
  }
  if (rows.length === 0) {
    const scope = opts.allNamespaces ? ' in any namespace' : ` in ${ctx.namespace} namespace`;
    ctx.io.stderr.write(`No volumes${name !== undefined ? ` named ${name}` : ''} found${scope}${opts.node !== undefined ? ` on node ${opts.node}` : ''}.\n`);
    return EXIT_OK;
  }
  ctx.io.stdout.write(volumesTable(rows, ctx.io.now()));
  return EXIT_OK;
}

/** deleteVolumeCommand deletes one named volume of the namespace from a node. */
export async function deleteVolumeCommand(ctx: CommandContext, name: string, opts: { node?: string; force?: boolean }): Promise<number> {
  if (opts.force) throw usageError('--force applies to "delete node" only');
  const query = opts.node !== undefined ? `?${new URLSearchParams({ node: opts.node }).toString()}` : '';
  const result = await ctx.client.delete(`${nsPath(ctx.namespace)}/volumes/${encodeURIComponent(name)}${query}`);
  if (!result.ok) {
    ctx.io.stderr.write(`error: ${errorText(result.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  const body = result.body as { node?: string } | undefined;
  ctx.io.stdout.write(`volume/${name} deleted${body?.node ? ` from node ${body.node}` : ''}\n`);
  return EXIT_OK;
}
