/**
 * Events and watch streaming. `GET /v1/events` lists events (oldest first). Any list route of
 * tasks, services, nodes or events with `?watch=1` instead streams newline-delimited JSON
 * `{"type":"ADDED"|"MODIFIED"|"DELETED","object":{...}}` over a chunked response: first the
 * current objects (ADDED), then every change from the list's etcd revision on, so nothing is
 * missed between the two. One etcd watch per stream, cancelled when the client goes away.
 * The watch is intercepted in an onRequest hook so the existing list routes (and their strict
 * query schemas) stay as they are.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../common/log.js';
import { isEventKey } from '../controllers/events.js';
import type { Event, Node, Service, Task, TaskTemplate } from '../objects/types.js';
import { isNodeKey, isServiceKey, isTaskKey } from '../store/keys.js';
import type { Store } from '../store/store.js';
import { TaskTemplates } from '../store/task-templates.js';
import type { PrefixWatch } from '../store/watch.js';

/** WatchEventType follows the Kubernetes watch vocabulary. */
export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** WATCH_HEARTBEAT_MS is how often an idle stream sends an empty line, so proxies and clients see it alive. */
export const WATCH_HEARTBEAT_MS = 15_000;

type Watched = Task | Service | Node | Event;

/** WatchTarget is what a watch URL selects: a key prefix, a key filter and an object filter. */
export interface WatchTarget {
  prefix: string;
  accept: (key: string) => boolean;
  keep: (obj: Watched) => boolean;
  /** withTemplates: the objects are tasks, stored without the template they refer to (task-templates.ts). */
  withTemplates?: boolean;
}

/** watchTarget maps a list URL (path and query) onto what to watch; undefined when it is not a watchable list (pure). */
export function watchTarget(path: string, query: URLSearchParams): WatchTarget | undefined {
  if (path === '/v1/nodes') return { prefix: 'nodes/', accept: isNodeKey, keep: () => true };
  const m = /^\/v1\/(?:namespaces\/([^/]+)\/)?(tasks|services|events)$/.exec(path);
  if (!m) return undefined;
  const ns = m[1] === undefined ? undefined : decodeURIComponent(m[1]);
  const kind = m[2]!;
  const base = ns === undefined ? `${kind}/` : `${kind}/${ns}/`;
  if (kind === 'services') return { prefix: base, accept: isServiceKey, keep: () => true };
  if (kind === 'events') return { prefix: base, accept: isEventKey, keep: () => true };
  const service = query.get('service') ?? undefined;
  const node = query.get('node') ?? undefined;
  return {
    prefix: ns !== undefined && service ? `${base}${service}/` : base,
    accept: isTaskKey,
    withTemplates: true,
    keep: (o) => (!service || (o as Task).spec.service === service) && (!node || (o as Task).spec.nodeName === node),
  };
}

function isWatch(query: URLSearchParams): boolean {
  const w = query.get('watch');
  return w === '1' || w === 'true';
}

async function stream(store: Store, log: Logger, req: FastifyRequest, reply: FastifyReply, target: WatchTarget): Promise<void> {
  const templates = target.withTemplates ? new TaskTemplates() : undefined;
  const complete = (o: Watched): Watched => (templates && o.kind === 'Task' ? templates.hydrate(o) ?? o : o);
  const listed = await store.list<Watched | TaskTemplate>(target.prefix, (k) => target.accept(k) || templates?.accept(k) === true);
  const { revision } = listed;
  const items: Watched[] = [];
  listed.items.forEach((o, i) => {
    if (o.kind === 'TaskTemplate') templates?.observe(listed.keys[i]!, o);
    else items.push(o);
  });
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' });
  const write = (type: WatchEventType, object: Watched): void => {
    if (target.keep(object)) res.write(`${JSON.stringify({ type, object })}\n`);
  };
  for (const o of items) write('ADDED', complete(o));
  let watcher: PrefixWatch | undefined;
  let closed = false;
  const heartbeat = setInterval(() => res.write('\n'), WATCH_HEARTBEAT_MS);
  const close = (): void => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    void watcher?.cancel();
    res.end();
  };
  req.raw.on('close', close);
  res.on('close', close);
  try {
    watcher = await store.watch(target.prefix, String(BigInt(revision) + 1n), {
      change: (c) => {
        if (templates?.accept(c.key)) {
          templates.observe(c.key, c.type === 'put' ? c.value : undefined);
          return;
        }
        if (!target.accept(c.key)) return;
        if (c.type === 'put') {
          if (c.value !== undefined) write(c.previous !== undefined ? 'MODIFIED' : 'ADDED', complete(c.value as Watched));
        } else if (c.previous !== undefined) {
          write('DELETED', complete(c.previous as Watched));
        }
      },
      ended: (err) => {
        log.warn('watch stream ended by etcd', { prefix: target.prefix, err });
        close();
      },
    }, { withPrevious: true });
  } catch (err) {
    log.warn('watch could not start', { prefix: target.prefix, err });
    close();
    return;
  }
  if (closed) void watcher.cancel();
}

/** registerWatchRoutes adds the event list routes and the `?watch=1` interception of list routes. */
export function registerWatchRoutes(app: FastifyInstance, store: Store, log: Logger): void {
  app.addHook('onRequest', async (req, reply) => {
    // Only a request that matched a list route (and so passed its authorization) may be watched.
    if (req.method !== 'GET' || req.routeOptions.url === undefined) return;
    const url = new URL(req.url, 'http://berth.invalid');
    if (!isWatch(url.searchParams)) return;
    const target = watchTarget(url.pathname, url.searchParams);
    if (!target) return;
    await stream(store, log, req, reply, target);
    return reply;
  });

  const listEvents = async (prefix: string): Promise<{ items: Event[] }> =>
    ({ items: (await store.list<Event>(prefix, isEventKey)).items });
  app.get('/v1/events', async () => listEvents('events/'));
  app.get<{ Params: { ns: string } }>('/v1/namespaces/:ns/events', async (req) => listEvents(`events/${req.params.ns}/`));
}
