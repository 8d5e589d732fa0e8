/** `berth events [-w]`: the cluster's recent events as a table, or a stream of them. */
import type { Event } from '../objects/types.js';
import { errorText, type ListBody } from './client.js';
import { nsPath, type CommandContext } from './context.js';
import { EXIT_OK, EXIT_REQUEST_FAILED } from './errors.js';
import { formatAge, formatDocument, renderTable } from './format.js';
import { streamWatch } from './watch.js';

/** EventsOptions are the flags of `events`. */
export interface EventsOptions {
  watch?: boolean;
  allNamespaces?: boolean;
  output?: string;
  timeout?: string;
}

const HEADERS = ['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE'];

/** eventCells is one row of the events table (pure). */
export function eventCells(e: Event, now: number): string[] {
  return [formatAge(e.lastTimestamp, now), e.type, e.reason, `${e.involvedObject.kind.toLowerCase()}/${e.involvedObject.name}`, e.message];
}

/** eventsTable renders events oldest first (ids sort by creation time). */
export function eventsTable(events: readonly Event[], now: number): string {
  const sorted = [...events].sort((a, b) => a.lastTimestamp.localeCompare(b.lastTimestamp) || a.metadata.name.localeCompare(b.metadata.name));
  return renderTable(HEADERS, sorted.map((e) => eventCells(e, now)));
}

/** eventsCommand lists events (or streams them with -w) in the namespace, or all with -A. */
export async function eventsCommand(ctx: CommandContext, opts: EventsOptions): Promise<number> {
  const path = opts.allNamespaces ? '/v1/events' : `${nsPath(ctx.namespace)}/events`;
  const json = opts.output === 'json';
  if (opts.watch) {
    const timeoutMs = opts.timeout === undefined ? undefined : Number(opts.timeout) * 1000;
    let first = true;
    return streamWatch<Event>(ctx, path, (e) => {
      if (e.type === 'DELETED') return; // expiry of an old event is not news
      if (json) {
        ctx.io.stdout.write(`${JSON.stringify(e.object)}\n`);
        return;
      }
      const table = renderTable(HEADERS, [eventCells(e.object, ctx.io.now())]).split('\n');
      ctx.io.stdout.write(`${first ? `${table[0]}\n` : ''}${table[1]}\n`);
      first = false;
    }, timeoutMs);
  }
  const r = await ctx.client.get<ListBody<Event>>(path);
  if (!r.ok) {
    ctx.io.stderr.write(`error: ${errorText(r.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  const items = r.body.items ?? [];
  if (json) {
    ctx.io.stdout.write(formatDocument(items, 'json'));
    return EXIT_OK;
  }
  if (items.length === 0) {
    ctx.io.stderr.write('No events found.\n');
    return EXIT_OK;
  }
  ctx.io.stdout.write(eventsTable(items, ctx.io.now()));
  return EXIT_OK;
}
