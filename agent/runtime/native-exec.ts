/**
 * Exec into a running container through `berth-shim --exec`: the request's wire format and the
 * translation of the addon's answer. The parser is `parse_exec_request` in native/src/lib/exec.cc.
 */
import { RuntimeError } from './errors.js';
import type { ExecRequest, ExecResult } from './runtime.js';

/** EXEC_DEADLINE_SLACK_MS is how long past the command's own timeout the addon waits for the helper. */
export const EXEC_DEADLINE_SLACK_MS = 5_000;

/** NativeExecResult is what the addon's execInContainer resolves with. */
export interface NativeExecResult {
  exitCode: number;
  signal: number;
  timedOut: boolean;
  stdout: Buffer;
  stderr: Buffer;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

function escape(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** validateExecRequest refuses what the helper would refuse, with the field named. */
export function validateExecRequest(id: string, req: ExecRequest): void {
  const bad = (why: string): never => {
    throw new RuntimeError('BERTH_ERR_RUNTIME_INVALID_SPEC', `exec in ${id}: ${why}`);
  };
  if (req.args.length === 0 || req.args[0] === '') bad('command must not be empty');
  for (const kv of req.env ?? []) if (kv.indexOf('=') <= 0) bad(`env "${kv}" must be KEY=value`);
  if (req.cwd !== undefined && req.cwd !== '' && !req.cwd.startsWith('/')) bad('cwd must be absolute');
  if (req.timeoutMs !== undefined && (!Number.isInteger(req.timeoutMs) || req.timeoutMs < 0)) bad('timeoutMs must be a non-negative integer');
}

/** encodeExecRequest renders a request as `key=value` lines (`arg`, `env` repeated). */
export function encodeExecRequest(req: ExecRequest): string {
  const lines = req.args.map((a) => `arg=${escape(a)}`);
  for (const kv of req.env ?? []) lines.push(`env=${escape(kv)}`);
  if (req.cwd) lines.push(`cwd=${escape(req.cwd)}`);
  if (req.timeoutMs) lines.push(`timeoutMs=${req.timeoutMs}`);
  return lines.join('\n') + '\n';
}

/** toExecResult drops the zero signal so `signal` is present only for a killed command. */
export function toExecResult(r: NativeExecResult): ExecResult {
  return {
    exitCode: r.exitCode,
    ...(r.signal ? { signal: r.signal } : {}),
    timedOut: r.timedOut,
    stdout: r.stdout,
    stderr: r.stderr,
    stdoutTruncated: r.stdoutTruncated,
    stderrTruncated: r.stderrTruncated,
  };
}

/** fromNativeExec wraps an addon rejection: a vanished init means the container is not running. */
export function fromNativeExec(id: string, err: unknown): RuntimeError {
  const e = err as { message?: string; code?: string; errno?: number; step?: string; path?: string };
  const fields = { errnoCode: e.code, errno: e.errno, step: e.step, path: e.path };
  if (e.code === 'ESRCH') return new RuntimeError('BERTH_ERR_RUNTIME_NOT_RUNNING', `container ${id} is not running`, fields, err);
  return new RuntimeError('BERTH_ERR_RUNTIME_EXEC', `exec in ${id}: ${e.message ?? String(err)}`, fields, err);
}
