/**
 * GET /v1/namespaces/:ns/tasks/:name/logs?follow=&tail=&since=&timestamps=&previous= — a task's
 * log as text/plain, streamed (chunked) from the agent of the task's node over a flow-controlled
 * stream (gateway/streams.ts), through another replica when that one holds the node's session.
 * stdout and stderr lines are merged in the order written, as kubectl does. Back-pressure runs
 * end to end: the body is pulled chunk by chunk as the HTTP socket drains, and each chunk taken
 * grants the agent credit, so a slow client stops the reading on the node. The client going
 * away cancels the stream. Without follow the body ends at the end of the log; with follow it
 * ends when the container exits. Services are followed by the CLI, one stream per task.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { FieldError } from '../errors.js';
import type { Task } from '../objects/types.js';
import { isTaskKey } from '../store/keys.js';
import type { Store } from '../store/store.js';
import type { StreamHandle, StreamOpen } from '../gateway/streams.js';
import { notFound, sendError } from './errors.js';

/** LogsGateway is the part of the agent gateway the route needs. */
export interface LogsGateway {
  openStream(node: string, open: StreamOpen, windowBytes?: number): StreamHandle;
}

/** LogsQuery is the route's parsed query. */
export interface LogsQuery {
  follow: boolean;
  /** tail is the number of last lines, -1 for all. */
  tail: number;
  /** sinceMs is a duration back from now (0: from the start). */
  sinceMs: number;
  timestamps: boolean;
  previous: boolean;
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** parseDurationMs reads `90s`, `5m`, `1h30m`, `2d` or plain seconds; undefined when it is none. */
export function parseDurationMs(s: string): number | undefined {
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const re = /(\d+)(ms|s|m|h|d)/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * DURATION_UNITS_MS[m[2]!]!;
    end = re.lastIndex;
  }
  return end === s.length && s.length > 0 ? total : undefined;
}

function flag(q: Record<string, string | undefined>, name: string): boolean | FieldError {
  const v = q[name];
  if (v === undefined || v === '0' || v === 'false') return false;
  if (v === '' || v === '1' || v === 'true') return true;
  return { code: 'BERTH_ERR_VALIDATION', field: `query.${name}`, message: `query.${name}: want true or false, got "${v}"` };
}

/** parseLogsQuery checks the query string; a bad value is a 400 naming the parameter. */
export function parseLogsQuery(q: Record<string, string | undefined>): LogsQuery | FieldError {
  const known = new Set(['follow', 'tail', 'since', 'timestamps', 'previous']);
  const unknown = Object.keys(q).find((k) => !known.has(k));
  if (unknown) return { code: 'BERTH_ERR_VALIDATION', field: `query.${unknown}`, message: `unknown query parameter "${unknown}" (known: ${[...known].join(', ')})` };
  const follow = flag(q, 'follow');
  const timestamps = flag(q, 'timestamps');
  const previous = flag(q, 'previous');
  for (const f of [follow, timestamps, previous]) if (typeof f === 'object') return f;
  let tail = -1;
  if (q.tail !== undefined && q.tail !== '-1') {
    if (!/^\d+$/.test(q.tail)) return { code: 'BERTH_ERR_VALIDATION', field: 'query.tail', message: `query.tail: want a number of lines (or -1 for all), got "${q.tail}"` };
    tail = Number(q.tail);
  }
  let sinceMs = 0;
  if (q.since !== undefined) {
    const d = parseDurationMs(q.since);
    if (d === undefined) return { code: 'BERTH_ERR_VALIDATION', field: 'query.since', message: `query.since: want a duration such as 30s, 5m or 1h, got "${q.since}"` };
    sinceMs = d;
  }
  return { follow: follow as boolean, tail, sinceMs, timestamps: timestamps as boolean, previous: previous as boolean };
}

/** ERROR_OF maps an agent's or relay's stream refusal onto the API catalogue. */
function errorOf(code: string, message: string): FieldError {
  switch (code) {
    case 'BERTH_ERR_TASK_NOT_RUNNING':
    case 'BERTH_ERR_NODE_UNAVAILABLE':
    case 'BERTH_ERR_NO_PREVIOUS_CONTAINER':
      return { code, message };
    default:
      return { code: 'BERTH_ERR_STREAM_FAILED', message: `${message} (${code})` };
  }
}

/** bodyOf turns a stream into a byte Readable that pulls one chunk per read (the back-pressure). */
export function bodyOf(h: StreamHandle): Readable {
  const it = h.chunks[Symbol.asyncIterator]();
  let reading = false;
  return new Readable({
    read() {
      if (reading) return;
      reading = true;
      it.next().then(async (r) => {
        reading = false;
        if (!r.done) {
          this.push(Buffer.from(r.value.data));
          return;
        }
        const e = await h.end;
        // A stream that broke (session lost, agent failure) must not look like a complete log.
        if (e.errorCode) this.destroy(new Error(`${e.errorCode}: ${e.errorMessage}`));
        else this.push(null);
      }, (err: unknown) => this.destroy(err as Error));
    },
    destroy(err, cb) {
      h.cancel();
      cb(err);
    },
  });
}

/** registerLogsRoutes adds the task logs route; without a gateway it answers BERTH_ERR_NODE_UNAVAILABLE. */
export function registerLogsRoutes(app: FastifyInstance, store: Store, gateway: LogsGateway | undefined): void {
  app.get<{ Params: { ns: string; name: string }; Querystring: Record<string, string | undefined> }>('/v1/namespaces/:ns/tasks/:name/logs', async (req, reply) => {
    const { ns, name } = req.params;
    const q = parseLogsQuery(req.query);
    if ('code' in q) return sendError(reply, q);
    const { items } = await store.list<Task>(`tasks/${ns}/`, isTaskKey);
    const task = items.find((t) => t.metadata.name === name);
    if (!task) return sendError(reply, notFound('task', `${ns}/${name}`));
    const node = task.spec.nodeName;
    const containerId = task.status.containerId;
    if (!node || !containerId) {
      return sendError(reply, { code: 'BERTH_ERR_TASK_NOT_RUNNING', message: `task ${ns}/${name} is ${task.status.phase} and has no container yet` });
    }
    if (!gateway) return sendError(reply, { code: 'BERTH_ERR_NODE_UNAVAILABLE', message: 'this control plane has no agent gateway' });
    const h = gateway.openStream(node, { logs: {
      namespace: ns, task: name, containerId, follow: q.follow, tailLines: q.tail,
      sinceUnixMs: q.sinceMs > 0 ? Date.now() - q.sinceMs : 0, timestamps: q.timestamps, previous: q.previous,
    } });
    // The client may leave before the agent answers: the stream must not outlive it.
    reply.raw.on('close', () => h.cancel());
    const opened = await h.opened;
    if (!opened.ok) return sendError(reply, errorOf(opened.code, `logs of task ${ns}/${name} on node ${node}: ${opened.message}`));
    return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(bodyOf(h));
  });
}
