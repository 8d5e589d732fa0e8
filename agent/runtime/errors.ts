/**
 * The runtime's error catalogue. Native failures are translated once, here, into a RuntimeError
 * that keeps the native error as `cause` and its errno, step and path as fields.
 *
 * | code                               | when                                                         |
 * |------------------------------------|--------------------------------------------------------------|
 * | BERTH_ERR_RUNTIME_INVALID_SPEC     | the ContainerSpec is malformed (bad id, empty args, ...)     |
 * | BERTH_ERR_RUNTIME_EXISTS           | run() for an id that already has a state dir                 |
 * | BERTH_ERR_RUNTIME_START            | the shim or the container init failed (errno, step, path)    |
 * | BERTH_ERR_RUNTIME_RUNNING          | remove() of a container that is still running                |
 * | BERTH_ERR_RUNTIME_NATIVE_MISSING   | the addon or the shim binary is not built                    |
 * | BERTH_ERR_RUNTIME_NOT_RUNNING      | exec() or kill() of a container that is no longer running    |
 * | BERTH_ERR_RUNTIME_EXEC             | exec() could not join the container or set up the command    |
 * | BERTH_ERR_RUNTIME_SHIM_UNREACHABLE | a running container's shim does not answer on shim.sock      |
 */

/** RuntimeErrorCode lists every code the runtime raises. */
export type RuntimeErrorCode =
  | 'BERTH_ERR_RUNTIME_INVALID_SPEC'
  | 'BERTH_ERR_RUNTIME_EXISTS'
  | 'BERTH_ERR_RUNTIME_START'
  | 'BERTH_ERR_RUNTIME_RUNNING'
  | 'BERTH_ERR_RUNTIME_NATIVE_MISSING'
  | 'BERTH_ERR_RUNTIME_NOT_RUNNING'
  | 'BERTH_ERR_RUNTIME_EXEC'
  | 'BERTH_ERR_RUNTIME_SHIM_UNREACHABLE';

/** NativeErrorFields are what the native core attaches to a failure. */
export interface NativeErrorFields {
  /** errnoCode is the symbolic errno, e.g. 'EINVAL'. */
  errnoCode?: string;
  errno?: number;
  step?: string;
  path?: string;
}

/** RuntimeError is the only error type the runtime throws for expected failure classes. */
export class RuntimeError extends Error {
  readonly code: RuntimeErrorCode;
  readonly errnoCode?: string;
  readonly errno?: number;
  readonly step?: string;
  readonly path?: string;

  constructor(code: RuntimeErrorCode, message: string, fields: NativeErrorFields = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'RuntimeError';
    this.code = code;
    this.errnoCode = fields.errnoCode;
    this.errno = fields.errno;
    this.step = fields.step;
    this.path = fields.path;
  }
}

/** fromNative wraps an error rejected by the addon, keeping it as cause. */
export function fromNative(id: string, err: unknown): RuntimeError {
  const e = err as { message?: string; code?: string; errno?: number; step?: string; path?: string };
  return new RuntimeError(
    'BERTH_ERR_RUNTIME_START',
    `container ${id}: ${e.message ?? String(err)}`,
    { errnoCode: e.code, errno: e.errno, step: e.step, path: e.path },
    err,
  );
}
