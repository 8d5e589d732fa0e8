/**
 * `berth rollout status|history|undo SERVICE`. status follows the service's Progressing
 * condition and rollout counters (written by the service controller) by polling the API.
 */
import type { Revision, Service } from '../objects/types.js';
import { errorText } from './client.js';
import type { CommandContext } from './context.js';
import { nsPath } from './context.js';
import { EXIT_OK, EXIT_REQUEST_FAILED, usageError } from './errors.js';
import { formatAge, renderTable } from './format.js';

/** ROLLOUT_POLL_MS is how often `rollout status` reads the service. */
export const ROLLOUT_POLL_MS = 500;
/** DEFAULT_ROLLOUT_TIMEOUT_S bounds `rollout status` when --timeout is not given. */
export const DEFAULT_ROLLOUT_TIMEOUT_S = 600;
/** PROGRESS_BAR_WIDTH is the number of cells in the progress bar. */
export const PROGRESS_BAR_WIDTH = 10;

/** RolloutState is what one look at a service says about its rollout. */
export interface RolloutState {
  /** outcome: still going, finished, or failed/rolled back. */
  outcome: 'progressing' | 'complete' | 'failed';
  /** line is the progress line for people. */
  line: string;
}

/** progressBar draws `[#####.....]` for done out of total. */
export function progressBar(done: number, total: number, width = PROGRESS_BAR_WIDTH): string {
  const filled = total <= 0 ? width : Math.max(0, Math.min(width, Math.round((done / total) * width)));
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

/** rolloutState reads a service's status: complete only once the controller saw the latest spec. */
export function rolloutState(svc: Service): RolloutState {
  const st = svc.status;
  const want = svc.spec.replicas;
  const updated = st?.updatedReplicas ?? 0;
  const ready = st?.readyReplicas ?? 0;
  const bar = `${progressBar(updated, want)} ${updated}/${want} updated, ${ready} ready`;
  const cond = st?.conditions?.find((c) => c.type === 'Progressing');
  if (cond?.status === 'False') return { outcome: 'failed', line: `${bar}\nrollout failed (${cond.reason}): ${cond.message}` };
  if (!st || st.observedGeneration < svc.metadata.generation) return { outcome: 'progressing', line: `${bar} (waiting for generation ${svc.metadata.generation} to be observed)` };
  if (cond?.reason === 'RolloutComplete') return { outcome: 'complete', line: `${bar}\nservice/${svc.metadata.name} successfully rolled out (revision ${st.updateRevision ?? '?'})` };
  return { outcome: 'progressing', line: bar };
}

function serviceName(raw: string): string {
  const name = raw.startsWith('service/') ? raw.slice('service/'.length) : raw;
  if (name === '') throw usageError('rollout: missing service name');
  return name;
}

function parseTimeout(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_ROLLOUT_TIMEOUT_S;
  if (!/^\d+$/.test(raw)) throw usageError(`--timeout must be a whole number of seconds, got "${raw}"`);
  return Number(raw);
}

/** RolloutOptions are the flags of `rollout`. */
export interface RolloutOptions {
  timeout?: string;
  toRevision?: string;
}

/** rolloutCommand dispatches status, history and undo. */
export async function rolloutCommand(ctx: CommandContext, action: string, rawName: string, opts: RolloutOptions): Promise<number> {
  const name = serviceName(rawName);
  switch (action) {
    case 'status': return rolloutStatus(ctx, name, parseTimeout(opts.timeout));
    case 'history': return rolloutHistory(ctx, name);
    case 'undo': return rolloutUndo(ctx, name, opts.toRevision);
    default: throw usageError(`rollout: unknown action "${action}" (status | history | undo)`);
  }
}

async function rolloutStatus(ctx: CommandContext, name: string, timeoutS: number): Promise<number> {
  const path = `${nsPath(ctx.namespace)}/services/${encodeURIComponent(name)}`;
  const deadline = ctx.io.now() + timeoutS * 1000;
  let last = '';
  for (;;) {
    const r = await ctx.client.get<Service>(path);
    if (!r.ok) {
      ctx.io.stderr.write(`error: ${errorText(r.error)}\n`);
      return EXIT_REQUEST_FAILED;
    }
    const s = rolloutState(r.body);
    // The closing message repeats the last bar; print only what is new.
    if (s.line !== last) ctx.io.stdout.write(`${s.line.startsWith(`${last}\n`) ? s.line.slice(last.length + 1) : s.line}\n`);
    last = s.line;
    if (s.outcome === 'complete') return EXIT_OK;
    if (s.outcome === 'failed') return EXIT_REQUEST_FAILED;
    if (ctx.io.now() >= deadline) {
      ctx.io.stderr.write(`error: rollout of service/${name} not finished after ${timeoutS}s\n`);
      return EXIT_REQUEST_FAILED;
    }
    await new Promise((res) => setTimeout(res, ROLLOUT_POLL_MS));
  }
}

/** historyTable lists revisions: REVISION, IMAGE, CREATED, CHANGE-CAUSE; the service's current one is marked. */
export function historyTable(revs: readonly Revision[], svc: Service | undefined, now: number): string {
  const rows = revs.map((r) => [
    `${r.spec.revision}${svc?.status?.updateRevision === r.spec.revision ? ' *' : ''}`,
    r.spec.template.image,
    formatAge(r.metadata.createdAt, now),
    r.spec.changeCause ?? '',
  ]);
  return renderTable(['REVISION', 'IMAGE', 'CREATED', 'CHANGE-CAUSE'], rows);
}

async function rolloutHistory(ctx: CommandContext, name: string): Promise<number> {
  const base = `${nsPath(ctx.namespace)}/services/${encodeURIComponent(name)}`;
  const r = await ctx.client.get<{ items: Revision[] }>(`${base}/revisions`);
  if (!r.ok) {
    ctx.io.stderr.write(`error: ${errorText(r.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  const svc = await ctx.client.get<Service>(base);
  ctx.io.stdout.write(historyTable(r.body.items, svc.ok ? svc.body : undefined, ctx.io.now()));
  return EXIT_OK;
}

async function rolloutUndo(ctx: CommandContext, name: string, rawTo: string | undefined): Promise<number> {
  let body: { toRevision?: number } = {};
  if (rawTo !== undefined) {
    if (!/^[1-9]\d*$/.test(rawTo)) throw usageError(`--to-revision must be a positive integer, got "${rawTo}"`);
    body = { toRevision: Number(rawTo) };
  }
  const r = await ctx.client.post<{ toRevision: number; changed: boolean }>(`${nsPath(ctx.namespace)}/services/${encodeURIComponent(name)}/rollback`, body);
  if (!r.ok) {
    ctx.io.stderr.write(`error: ${errorText(r.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  ctx.io.stdout.write(r.body.changed
    ? `service/${name} rolled back to revision ${r.body.toRevision}\n`
    : `service/${name} already runs the template of revision ${r.body.toRevision}\n`);
  return EXIT_OK;
}
