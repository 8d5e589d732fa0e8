/**
 * `berth cordon|uncordon|drain NODE`. drain cordons the node and asks the controllers to move
 * its tasks away (replacements first, within each service's maxUnavailable), then waits,
 * bounded by --timeout, printing progress until no task is left alive on the node.
 */
import { TERMINAL_PHASES } from '../objects/conditions.js';
import type { Task } from '../objects/types.js';
import { errorText, type ListBody } from './client.js';
import type { CommandContext } from './context.js';
import { EXIT_OK, EXIT_REQUEST_FAILED, usageError } from './errors.js';

/** DRAIN_POLL_MS is how often drain looks at the node's tasks. */
export const DRAIN_POLL_MS = 1_000;
/** DEFAULT_DRAIN_TIMEOUT_S bounds how long drain waits for the node to empty. */
export const DEFAULT_DRAIN_TIMEOUT_S = 300;

/** NodeVerbOptions are the flags of cordon/uncordon/drain. */
export interface NodeVerbOptions {
  timeout?: string;
}

/** remainingOnNode lists the tasks still alive on a node: any phase that is not terminal (pure). */
export function remainingOnNode(tasks: readonly Task[], node: string): Task[] {
  return tasks.filter((t) => t.spec.nodeName === node && !TERMINAL_PHASES.has(t.status.phase));
}

/** drainProgress is one progress line (pure). */
export function drainProgress(node: string, left: readonly Task[]): string {
  if (left.length === 0) return `node/${node} drained: no tasks left`;
  const names = left.map((t) => `${t.metadata.name} (${t.status.phase}${t.spec.desiredState === 'stopped' ? ', stopping' : ''})`).sort();
  return `node/${node}: ${left.length} task(s) left: ${names.join(', ')}`;
}

/** nodeVerbCommand runs cordon, uncordon or drain on one node. */
export async function nodeVerbCommand(ctx: CommandContext, verb: 'cordon' | 'uncordon' | 'drain', node: string, opts: NodeVerbOptions): Promise<number> {
  const timeoutS = opts.timeout === undefined ? DEFAULT_DRAIN_TIMEOUT_S : Number(opts.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw usageError(`--timeout must be a positive number of seconds, got "${opts.timeout}"`);
  const r = await ctx.client.post(`/v1/nodes/${encodeURIComponent(node)}/${verb}`, {});
  if (!r.ok) {
    ctx.io.stderr.write(`error: ${errorText(r.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  const done = { cordon: 'cordoned', uncordon: 'uncordoned', drain: 'cordoned; draining' }[verb];
  ctx.io.stdout.write(`node/${node} ${done}\n`);
  if (verb !== 'drain') return EXIT_OK;
  const deadline = Date.now() + timeoutS * 1000;
  let last = '';
  for (;;) {
    const tasks = await ctx.client.get<ListBody<Task>>(`/v1/tasks?node=${encodeURIComponent(node)}`);
    if (!tasks.ok) {
      ctx.io.stderr.write(`error: ${errorText(tasks.error)}\n`);
      return EXIT_REQUEST_FAILED;
    }
    const left = remainingOnNode(tasks.body.items ?? [], node);
    const line = drainProgress(node, left);
    if (line !== last) ctx.io.stdout.write(`${line}\n`);
    last = line;
    if (left.length === 0) return EXIT_OK;
    if (Date.now() > deadline) {
      ctx.io.stderr.write(`error: drain of node/${node} did not finish within ${timeoutS}s; ${left.length} task(s) left (the node stays cordoned and draining)\n`);
      return EXIT_REQUEST_FAILED;
    }
    await new Promise((res) => setTimeout(res, DRAIN_POLL_MS));
  }
}
