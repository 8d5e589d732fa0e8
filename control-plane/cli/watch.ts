/**
 * Watch streams for the CLI: `berth get ... -w` and `berth events -w` read the API's
 * newline-delimited JSON watch (`?watch=1`) and print each change as it arrives. A stream ends
 * when the server closes it, or after --timeout seconds (bounded, for scripts and tests).
 */
import type { Node, Service, Task } from '../objects/types.js';
import { errorText } from './client.js';
import type { CommandContext } from './context.js';
import { EXIT_OK, EXIT_REQUEST_FAILED } from './errors.js';
import { formatDocument, nodesTable, servicesTable, tasksTable, type TableOptions } from './format.js';

/** WatchEvent is one line of a watch stream. */
export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: T;
}

/** splitLines feeds complete lines of buffered text to onLine and returns the unfinished rest (pure). */
export function splitLines(buffered: string, onLine: (line: string) => void): string {
  let rest = buffered;
  for (let i = rest.indexOf('\n'); i >= 0; i = rest.indexOf('\n')) {
    const line = rest.slice(0, i).trim();
    rest = rest.slice(i + 1);
    if (line !== '') onLine(line);
  }
  return rest;
}

/** streamWatch GETs path with ?watch=1 and calls onEvent per change until the stream ends or timeoutMs passes. */
export async function streamWatch<T>(ctx: CommandContext, path: string, onEvent: (e: WatchEvent<T>) => void, timeoutMs?: number): Promise<number> {
  const abort = new AbortController();
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => abort.abort(), timeoutMs);
  try {
    const res = await ctx.client.stream(`${path}${path.includes('?') ? '&' : '?'}watch=1`, 'application/x-ndjson', abort.signal);
    if (!res.ok) {
      ctx.io.stderr.write(`error: ${errorText(res.error)}\n`);
      return EXIT_REQUEST_FAILED;
    }
    let buffered = '';
    try {
      for await (const chunk of res.body) {
        buffered = splitLines(buffered + (chunk as Buffer).toString('utf8'), (line) => onEvent(JSON.parse(line) as WatchEvent<T>));
      }
    } catch (err) {
      if (!abort.signal.aborted) throw err;
    }
    return EXIT_OK;
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/** WatchPrintOptions say how `get -w` prints. */
export interface WatchPrintOptions {
  output: 'table' | 'wide' | 'json' | 'yaml';
  withNamespace: boolean;
  timeoutMs?: number;
}

/** watchRow renders one object as a table row with an EVENT column; header only when asked (pure). */
export function watchRow(resource: 'services' | 'tasks' | 'nodes', e: WatchEvent<Service | Task | Node>, opts: TableOptions, withHeader: boolean): string {
  const table = resource === 'services' ? servicesTable([e.object as Service], opts)
    : resource === 'tasks' ? tasksTable([e.object as Task], opts)
      : nodesTable([e.object as Node], undefined, opts);
  const [header, row] = table.trimEnd().split('\n');
  const line = `${e.type.padEnd(9)}${row ?? ''}\n`;
  return withHeader ? `${'EVENT'.padEnd(9)}${header}\n${line}` : line;
}

/** watchCommand streams changes of a list path and prints them (table rows, or one JSON document per line). */
export async function watchCommand(ctx: CommandContext, resource: 'services' | 'tasks' | 'nodes', path: string, opts: WatchPrintOptions): Promise<number> {
  let first = true;
  return streamWatch<Service | Task | Node>(ctx, path, (e) => {
    if (opts.output === 'json') ctx.io.stdout.write(`${JSON.stringify(e)}\n`);
    else if (opts.output === 'yaml') ctx.io.stdout.write(`---\n${formatDocument(e, 'yaml')}`);
    else ctx.io.stdout.write(watchRow(resource, e, { wide: opts.output === 'wide', withNamespace: opts.withNamespace, now: ctx.io.now() }, first));
    first = false;
  }, opts.timeoutMs);
}
