/**
 * `berth get services|tasks|nodes|namespaces [NAME]`: a list query prints a table or an array
 * (`-o json|yaml`); a named get prints one row or the single object.
 */
import { errorText, type ListBody } from './client.js';
import type { CommandContext } from './context.js';
import { nsPath } from './context.js';
import { EXIT_OK, EXIT_REQUEST_FAILED, usageError } from './errors.js';
import {
  formatDocument, imagesTable, namespacesTable, nodeLoads, nodesTable, OUTPUT_FORMATS, servicesTable, tasksTable,
  type NodeImageRow, type OutputFormat, type TableOptions,
} from './format.js';
import type { Namespace, Node, Service, Task } from '../objects/types.js';
import { watchCommand } from './watch.js';

/** Resource is a kind `get` can list. */
export type Resource = 'services' | 'tasks' | 'nodes' | 'images' | 'namespaces';

const RESOURCE_ALIASES: Record<string, Resource> = {
  services: 'services', service: 'services', svc: 'services',
  tasks: 'tasks', task: 'tasks',
  nodes: 'nodes', node: 'nodes', no: 'nodes',
  images: 'images', image: 'images',
  namespaces: 'namespaces', namespace: 'namespaces', ns: 'namespaces',
};

/** resolveResource maps a resource word and its aliases (service, svc, task, node, no, namespace, ns) to a Resource. */
export function resolveResource(word: string): Resource {
  const resource = RESOURCE_ALIASES[word.toLowerCase()];
  if (!resource) throw usageError(`unknown resource type "${word}" (use services, tasks, nodes, images or namespaces)`);
  return resource;
}

/** parseOutput validates `-o`. */
export function parseOutput(raw: string): OutputFormat {
  if (!(OUTPUT_FORMATS as readonly string[]).includes(raw)) {
    throw usageError(`-o: unknown output format "${raw}" (use ${OUTPUT_FORMATS.join(', ')})`);
  }
  return raw as OutputFormat;
}

/** GetOptions are the flags of `get`. */
export interface GetOptions {
  output: string;
  watch?: boolean;
  service?: string;
  node?: string;
  allNamespaces?: boolean;
  /** timeout bounds a watch (-w), in seconds. */
  timeout?: string;
}

type AnyObject = Service | Task | Node | Namespace;

/** getCommand lists or fetches objects and prints them in the requested format. */
export async function getCommand(ctx: CommandContext, word: string, name: string | undefined, opts: GetOptions): Promise<number> {
  const resource = resolveResource(word);
  const output = parseOutput(opts.output);
  if (resource === 'images') return getImages(ctx, name, opts, output);
  if (opts.watch) {
    // Node lifecycle: `get -w` streams the list's changes (NAME is not supported with -w).
    if (resource === 'namespaces') throw usageError('-w is not supported for namespaces');
    if (name !== undefined) throw usageError('-w watches a list; drop NAME');
    if (opts.allNamespaces && resource === 'nodes') throw usageError('nodes are not namespaced; drop -A');
    const timeoutMs = opts.timeout === undefined ? undefined : Number(opts.timeout) * 1000;
    return watchCommand(ctx, resource, listPath(ctx, resource, opts), { output, withNamespace: Boolean(opts.allNamespaces), timeoutMs });
  }
  if ((opts.service !== undefined || opts.node !== undefined) && resource !== 'tasks') {
    throw usageError('--service and --node filter tasks only');
  }
  if (opts.allNamespaces && (resource === 'nodes' || resource === 'namespaces')) throw usageError(`${resource} are not namespaced; drop -A`);
  if (opts.allNamespaces && name !== undefined) throw usageError('-A lists objects; it cannot be combined with NAME');

  const fetched = name === undefined
    ? await ctx.client.get<ListBody<AnyObject>>(listPath(ctx, resource, opts))
    : await ctx.client.get<AnyObject>(objectPath(ctx, resource, name));
  if (!fetched.ok) {
    ctx.io.stderr.write(`error: ${errorText(fetched.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  const objects = name === undefined ? (fetched.body as ListBody<AnyObject>).items ?? [] : [fetched.body as AnyObject];

  if (output === 'json' || output === 'yaml') {
    ctx.io.stdout.write(formatDocument(name === undefined ? objects : objects[0], output));
    return EXIT_OK;
  }
  if (objects.length === 0) {
    const scope = resource === 'nodes' || resource === 'namespaces' ? '' : opts.allNamespaces ? ' in any namespace' : ` in ${ctx.namespace} namespace`;
    ctx.io.stderr.write(`No ${resource} found${scope}.\n`);
    return EXIT_OK;
  }
  const table: TableOptions = { wide: output === 'wide', withNamespace: Boolean(opts.allNamespaces), now: ctx.io.now() };
  ctx.io.stdout.write(await renderTable(ctx, resource, objects, table));
  return EXIT_OK;
}

/**
 * getImages lists the images nodes report (status.images): of one node with --node N, else of
 * every node; NAME filters by reference or digest prefix.
 */
async function getImages(ctx: CommandContext, name: string | undefined, opts: GetOptions, output: OutputFormat): Promise<number> {
  if (opts.service !== undefined) throw usageError('--service filters tasks only');
  if (opts.allNamespaces) throw usageError('images are per node, not namespaced; drop -A');
  const fetched = opts.node !== undefined
    ? await ctx.client.get<Node>(`/v1/nodes/${encodeURIComponent(opts.node)}`)
    : await ctx.client.get<ListBody<Node>>('/v1/nodes');
  if (!fetched.ok) {
    ctx.io.stderr.write(`error: ${errorText(fetched.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  const nodes = opts.node !== undefined ? [fetched.body as Node] : (fetched.body as ListBody<Node>).items ?? [];
  const rows: NodeImageRow[] = nodes.flatMap((n) => (n.status?.images ?? []).map((img) => ({ node: n.metadata.name, ...img })))
    .filter((r) => name === undefined || r.digest.startsWith(name) || r.digest.slice(7).startsWith(name) || r.references.includes(name));
  if (output === 'json' || output === 'yaml') {
    ctx.io.stdout.write(formatDocument(rows, output));
    return EXIT_OK;
  }
  if (rows.length === 0) {
    ctx.io.stderr.write(`No images found${opts.node !== undefined ? ` on node ${opts.node}` : ''}.\n`);
    return EXIT_OK;
  }
  ctx.io.stdout.write(imagesTable(rows, { now: ctx.io.now() }));
  return EXIT_OK;
}

async function renderTable(ctx: CommandContext, resource: Resource, objects: AnyObject[], table: TableOptions): Promise<string> {
  switch (resource) {
    case 'services':
      return servicesTable(objects as Service[], table);
    case 'tasks':
      return tasksTable(objects as Task[], table);
    case 'namespaces':
      return namespacesTable(objects as Namespace[], table);
    case 'images':
      return ''; // handled by getImages
    case 'nodes': {
      // the TASKS/CPU/MEMORY columns need every task; without them the table still prints
      const tasks = await ctx.client.get<ListBody<Task>>('/v1/tasks');
      return nodesTable(objects as Node[], tasks.ok ? nodeLoads(tasks.body.items ?? []) : undefined, table);
    }
  }
}

function listPath(ctx: CommandContext, resource: Resource, opts: GetOptions): string {
  if (resource === 'nodes' || resource === 'namespaces') return `/v1/${resource}`;
  const base = opts.allNamespaces ? `/v1/${resource}` : `${nsPath(ctx.namespace)}/${resource}`;
  if (resource !== 'tasks') return base;
  const query = new URLSearchParams();
  if (opts.service !== undefined) query.set('service', opts.service);
  if (opts.node !== undefined) query.set('node', opts.node);
  const qs = query.toString();
  return qs ? `${base}?${qs}` : base;
}

function objectPath(ctx: CommandContext, resource: Resource, name: string): string {
  const encoded = encodeURIComponent(name);
  return resource === 'nodes' || resource === 'namespaces' ? `/v1/${resource}/${encoded}` : `${nsPath(ctx.namespace)}/${resource}/${encoded}`;
}
