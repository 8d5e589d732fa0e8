/**
 * `berth logs TASK|service/NAME [-f] [--tail N] [--since DURATION] [--timestamps] [--previous]`:
 * prints a task's log as the container wrote it (stdout and stderr merged, in the order written,
 * as kubectl does). A service prints each of its tasks' logs with the task's name before each
 * line (`[web-3] ...`); with -f it watches the service's tasks and follows each running one,
 * picking up tasks created (scale up, replacement) or restarted while it runs, until interrupted.
 */
import type { Task } from '../objects/types.js';
import { errorText } from './client.js';
import type { CommandContext } from './context.js';
import { nsPath } from './context.js';
import { EXIT_OK, EXIT_REQUEST_FAILED, usageError } from './errors.js';
import { splitLines } from './watch.js';

/** LogsOptions are the logs verb's flags. */
export interface LogsOptions {
  follow?: boolean;
  tail?: string;
  since?: string;
  timestamps?: boolean;
  previous?: boolean;
}

/** LogsTarget is what the argument names: one task, or every task of a service. */
export type LogsTarget = { task: string } | { service: string };

/** parseLogsTarget reads `NAME`, `task/NAME` or `service/NAME` (also `svc/NAME`). */
export function parseLogsTarget(raw: string): LogsTarget {
  const slash = raw.indexOf('/');
  const kind = slash < 0 ? 'task' : raw.slice(0, slash);
  const name = slash < 0 ? raw : raw.slice(slash + 1);
  if (name === '') throw usageError(`logs: missing name in "${raw}" (berth logs TASK or berth logs service/NAME)`);
  if (kind === 'task' || kind === 'tasks') return { task: name };
  if (kind === 'service' || kind === 'services' || kind === 'svc') return { service: name };
  throw usageError(`logs: "${kind}" is not a task or a service (berth logs TASK or berth logs service/NAME)`);
}

/** logsQuery checks the flags and builds the API's query string. */
export function logsQuery(o: LogsOptions): URLSearchParams {
  const q = new URLSearchParams();
  if (o.follow) q.set('follow', 'true');
  if (o.tail !== undefined) {
    if (!/^(-1|\d+)$/.test(o.tail)) throw usageError(`--tail must be a number of lines (or -1 for all), got "${o.tail}"`);
    q.set('tail', o.tail);
  }
  if (o.since !== undefined) {
    if (!/^(\d+(ms|s|m|h|d))+$|^\d+$/.test(o.since)) throw usageError(`--since must be a duration such as 30s, 5m or 1h, got "${o.since}"`);
    q.set('since', o.since);
  }
  if (o.timestamps) q.set('timestamps', 'true');
  if (o.previous) q.set('previous', 'true');
  return q;
}

function writeBytes(stream: { write(text: string): unknown }, bytes: Buffer): void {
  if (bytes.length > 0) (stream.write as (chunk: Uint8Array | string) => unknown).call(stream, bytes);
}

/** Prefixer puts `[task] ` before each whole line of one task's output. */
class Prefixer {
  private rest = '';
  constructor(private readonly prefix: string, private readonly out: { write(text: string): unknown }) {}
  push(chunk: Buffer): void {
    this.rest = splitRaw(this.rest + chunk.toString('utf8'), (line) => this.out.write(`${this.prefix}${line}\n`));
  }
  flush(): void {
    if (this.rest !== '') this.out.write(`${this.prefix}${this.rest}\n`);
    this.rest = '';
  }
}

/** splitRaw is splitLines without trimming or dropping empty lines (log lines are kept as written). */
function splitRaw(buffered: string, onLine: (line: string) => void): string {
  let rest = buffered;
  for (let i = rest.indexOf('\n'); i >= 0; i = rest.indexOf('\n')) {
    onLine(rest.slice(0, i));
    rest = rest.slice(i + 1);
  }
  return rest;
}

/** streamTask prints one task's log; it resolves to an exit status (1 with the server's message on failure). */
async function streamTask(ctx: CommandContext, task: string, q: URLSearchParams, signal: AbortSignal, onChunk: (b: Buffer) => void): Promise<number> {
  const path = `${nsPath(ctx.namespace)}/tasks/${encodeURIComponent(task)}/logs?${q.toString()}`;
  const res = await ctx.client.stream(path, 'text/plain', signal);
  if (!res.ok) {
    ctx.io.stderr.write(`error: ${errorText(res.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  try {
    for await (const chunk of res.body) onChunk(chunk as Buffer);
  } catch (err) {
    if (signal.aborted) return EXIT_OK;
    ctx.io.stderr.write(`error: the log stream of task ${task} broke off: ${(err as Error).message}\n`);
    return EXIT_REQUEST_FAILED;
  }
  return EXIT_OK;
}

/** logsCommand prints the logs of a task or a service (see the file comment). */
export async function logsCommand(ctx: CommandContext, target: string, opts: LogsOptions): Promise<number> {
  const t = parseLogsTarget(target);
  const q = logsQuery(opts);
  const abort = new AbortController();
  const stop = (): void => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    if ('task' in t) return await streamTask(ctx, t.task, q, abort.signal, (b) => writeBytes(ctx.io.stdout, b));
    return opts.follow ? await followService(ctx, t.service, q, abort.signal) : await printService(ctx, t.service, q, abort.signal);
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
}

/** printService prints every task of a service that has a container, one after the other. */
async function printService(ctx: CommandContext, service: string, q: URLSearchParams, signal: AbortSignal): Promise<number> {
  const r = await ctx.client.get<{ items: Task[] }>(`${nsPath(ctx.namespace)}/tasks?service=${encodeURIComponent(service)}`);
  if (!r.ok) {
    ctx.io.stderr.write(`error: ${errorText(r.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  const tasks = r.body.items.filter((x) => x.spec.service === service && x.status.containerId).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  let code = EXIT_OK;
  for (const task of tasks) {
    const p = new Prefixer(`[${task.metadata.name}] `, ctx.io.stdout);
    const c = await streamTask(ctx, task.metadata.name, q, signal, (b) => p.push(b));
    p.flush();
    if (c !== EXIT_OK) code = c;
  }
  return code;
}

/**
 * followService follows every running task of the service and each one that starts later. A
 * run already going when the command starts gets --tail/--since; a run that starts later (a new
 * task, a replacement, an in-place restart) is shown from its first line, since all of it is new.
 * A run is known by its task and start time, so a crashed container waiting for its restart is
 * not shown twice.
 */
async function followService(ctx: CommandContext, service: string, q: URLSearchParams, signal: AbortSignal): Promise<number> {
  const seen = new Set<string>(); // "<task> <startedAt>" of every run followed
  const start = (task: Task, fresh: boolean): void => {
    const name = task.metadata.name;
    const run = `${name} ${task.status.startedAt ?? ''}`;
    if (task.status.phase !== 'running' || !task.status.containerId || !task.status.startedAt || seen.has(run)) return;
    seen.add(run);
    const query = new URLSearchParams(q);
    if (fresh) {
      query.delete('tail');
      query.delete('since');
    }
    const p = new Prefixer(`[${name}] `, ctx.io.stdout);
    void streamTask(ctx, name, query, signal, (b) => p.push(b)).finally(() => p.flush());
  };
  const path = `${nsPath(ctx.namespace)}/tasks?service=${encodeURIComponent(service)}`;
  const listed = await ctx.client.get<{ items: Task[] }>(path);
  if (!listed.ok) {
    ctx.io.stderr.write(`error: ${errorText(listed.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  for (const task of listed.body.items) if (task.spec.service === service) start(task, false);
  let res;
  try {
    res = await ctx.client.stream(`${path}&watch=1`, 'application/x-ndjson', signal);
  } catch (err) {
    if (signal.aborted) return EXIT_OK;
    throw err;
  }
  if (!res.ok) {
    ctx.io.stderr.write(`error: ${errorText(res.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  let buffered = '';
  try {
    for await (const chunk of res.body) {
      buffered = splitLines(buffered + (chunk as Buffer).toString('utf8'), (line) => {
        const e = JSON.parse(line) as { type: string; object: Task };
        if (e.type !== 'DELETED' && e.object.spec.service === service) start(e.object, true);
      });
    }
  } catch (err) {
    if (!signal.aborted) {
      ctx.io.stderr.write(`error: the task watch of service ${service} broke off: ${(err as Error).message}\n`);
      return EXIT_REQUEST_FAILED;
    }
  }
  return EXIT_OK;
}
