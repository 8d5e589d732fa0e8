/**
 * `berth exec [-i] [-t] TASK -- COMMAND [ARG...]`: runs a command in a task's container through
 * the control plane and the task's agent. Without -i/-t it is one request whose answer holds the
 * command's stdout and stderr, written as they came (bytes, not re-encoded); with either it is
 * interactive (exec-stream.ts). The command's exit code becomes berth's; a request that fails
 * exits 1.
 */
import { errorText } from './client.js';
import type { CommandContext } from './context.js';
import { nsPath } from './context.js';
import { EXIT_REQUEST_FAILED, usageError } from './errors.js';
import { execInteractive } from './exec-stream.js';

/** EXEC_RESPONSE_SLACK_MS is how long past the command's timeout the CLI waits for the server. */
export const EXEC_RESPONSE_SLACK_MS = 15_000;
/** CLI_DEFAULT_EXEC_TIMEOUT_SECONDS matches the API's default when --timeout is not given. */
export const CLI_DEFAULT_EXEC_TIMEOUT_SECONDS = 30;

/** ExecOptions are the exec verb's flags. */
export interface ExecOptions {
  timeout?: string;
  /** stdin (-i) streams our stdin to the command. */
  stdin?: boolean;
  /** tty (-t) runs the command on a pty in the container. */
  tty?: boolean;
}

interface ExecBody {
  exitCode: number;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

/** parseTimeoutSeconds accepts a positive integer number of seconds. */
export function parseTimeoutSeconds(raw: string): number {
  if (!/^[1-9]\d{0,3}$/.test(raw)) throw usageError(`--timeout must be whole seconds between 1 and 3600, got "${raw}"`);
  const n = Number(raw);
  if (n > 3600) throw usageError(`--timeout must be whole seconds between 1 and 3600, got "${raw}"`);
  return n;
}

function writeBytes(stream: { write(text: string): unknown }, bytes: Buffer): void {
  // process.stdout takes bytes as they are; an in-memory test stream sees them as a string.
  if (bytes.length > 0) (stream.write as (chunk: Uint8Array | string) => unknown).call(stream, bytes);
}

/** execCommand runs command in task and resolves to the command's exit code. */
export async function execCommand(ctx: CommandContext, task: string, command: string[], opts: ExecOptions): Promise<number> {
  const name = task.startsWith('task/') ? task.slice('task/'.length) : task;
  if (name === '') throw usageError('exec: missing task name');
  if (command.length === 0) throw usageError('exec: missing command (berth exec TASK -- COMMAND [ARG...])');
  if (opts.stdin || opts.tty) {
    // An interactive command lasts as long as its user: no deadline, ^C or exit ends it.
    if (opts.timeout !== undefined) throw usageError('exec: --timeout applies only without -i/-t');
    return execInteractive(ctx, name, command, { stdin: opts.stdin === true, tty: opts.tty === true });
  }
  const timeoutSeconds = opts.timeout === undefined ? undefined : parseTimeoutSeconds(opts.timeout);
  const waitMs = (timeoutSeconds ?? CLI_DEFAULT_EXEC_TIMEOUT_SECONDS) * 1000 + EXEC_RESPONSE_SLACK_MS;
  const result = await ctx.client.post<ExecBody>(`${nsPath(ctx.namespace)}/tasks/${encodeURIComponent(name)}/exec`,
    { command, ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}) }, waitMs);
  if (!result.ok) {
    ctx.io.stderr.write(`error: ${errorText(result.error)}\n`);
    return EXIT_REQUEST_FAILED;
  }
  const r = result.body;
  writeBytes(ctx.io.stdout, Buffer.from(r.stdout, 'base64'));
  writeBytes(ctx.io.stderr, Buffer.from(r.stderr, 'base64'));
  if (r.stdoutTruncated) ctx.io.stderr.write('berth: the command\'s stdout was cut at 4 MiB\n');
  if (r.stderrTruncated) ctx.io.stderr.write('berth: the command\'s stderr was cut at 4 MiB\n');
  return r.exitCode;
}
