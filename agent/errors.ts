/**
 * The agent's error catalogue. Every error the agent raises on purpose carries one of these
 * codes; task status reasons (one CamelCase word) are derived from them at the reconciler.
 *
 * | code                                 | reason         | when                                        |
 * |--------------------------------------|----------------|---------------------------------------------|
 * | BERTH_ERR_IMAGE_NOT_FOUND            | ImageNotFound  | the image path, tag or a blob does not exist |
 * | BERTH_ERR_IMAGE_INVALID              | ImageInvalid   | bad JSON, unsupported media type, bad layout |
 * | BERTH_ERR_IMAGE_DIGEST_MISMATCH      | ImageInvalid   | a blob's sha256 or size differs from its descriptor |
 * | BERTH_ERR_IMAGE_UNSAFE_ENTRY         | ImageInvalid   | a layer entry escapes the layer root          |
 * | BERTH_ERR_IMAGE_UNSUPPORTED_REFERENCE| ImageInvalid   | a reference scheme this agent cannot pull yet |
 * | BERTH_ERR_IMAGE_XATTR_UNAVAILABLE    | ImageInvalid   | no way to set trusted.overlay.opaque          |
 * | BERTH_ERR_IMAGE_PULL_FAILED          | ErrImagePull   | a registry could not be reached or kept failing (network, 5xx) |
 * | BERTH_ERR_IMAGE_UNAUTHORIZED         | ErrImagePull   | a registry refused our credentials (401/403)  |
 * | BERTH_ERR_IMAGE_TOO_LARGE            | ImageInvalid   | a manifest or index exceeds the size limit    |
 * | BERTH_ERR_IMAGE_NEVER_PULL           | ErrImageNeverPull | the image is absent and the pull policy is never |
 * | BERTH_ERR_IMAGE_LAYER_TOO_LARGE      | ImageInvalid   | a layer unpacks to more than maxLayerBytes    |
 * | BERTH_ERR_TASK_INVALID               | StartError     | a task that cannot be turned into a container |
 * | BERTH_ERR_START_FAILED               | StartError     | the runtime refused to run the container      |
 * | BERTH_ERR_VOLUME_SOURCE_NOT_FOUND    | HostPathNotFound | a bind volume's host path does not exist     |
 * | BERTH_ERR_VOLUME_FAILED              | VolumeFailed   | a named volume's directory cannot be made     |
 * | BERTH_ERR_VOLUME_IN_USE              | VolumeInUse    | delete of a volume a container mounts         |
 * | BERTH_ERR_VOLUME_NOT_FOUND           | VolumeNotFound | delete of a volume the node does not have     |
 */

/** AgentErrorCode enumerates every code in the catalogue above. */
export type AgentErrorCode =
  | 'BERTH_ERR_IMAGE_NOT_FOUND'
  | 'BERTH_ERR_IMAGE_INVALID'
  | 'BERTH_ERR_IMAGE_DIGEST_MISMATCH'
  | 'BERTH_ERR_IMAGE_UNSAFE_ENTRY'
  | 'BERTH_ERR_IMAGE_UNSUPPORTED_REFERENCE'
  | 'BERTH_ERR_IMAGE_XATTR_UNAVAILABLE'
  | 'BERTH_ERR_IMAGE_PULL_FAILED'
  | 'BERTH_ERR_IMAGE_UNAUTHORIZED'
  | 'BERTH_ERR_IMAGE_TOO_LARGE'
  | 'BERTH_ERR_IMAGE_NEVER_PULL'
  | 'BERTH_ERR_IMAGE_LAYER_TOO_LARGE'
  | 'BERTH_ERR_TASK_INVALID'
  | 'BERTH_ERR_START_FAILED'
  | 'BERTH_ERR_VOLUME_SOURCE_NOT_FOUND'
  | 'BERTH_ERR_VOLUME_FAILED'
  | 'BERTH_ERR_VOLUME_IN_USE'
  | 'BERTH_ERR_VOLUME_NOT_FOUND';

const REASONS: Record<AgentErrorCode, string> = {
  BERTH_ERR_IMAGE_NOT_FOUND: 'ImageNotFound',
  BERTH_ERR_IMAGE_INVALID: 'ImageInvalid',
  BERTH_ERR_IMAGE_DIGEST_MISMATCH: 'ImageInvalid',
  BERTH_ERR_IMAGE_UNSAFE_ENTRY: 'ImageInvalid',
  BERTH_ERR_IMAGE_UNSUPPORTED_REFERENCE: 'ImageInvalid',
  BERTH_ERR_IMAGE_XATTR_UNAVAILABLE: 'ImageInvalid',
  BERTH_ERR_IMAGE_PULL_FAILED: 'ErrImagePull',
  BERTH_ERR_IMAGE_UNAUTHORIZED: 'ErrImagePull',
  BERTH_ERR_IMAGE_TOO_LARGE: 'ImageInvalid',
  BERTH_ERR_IMAGE_NEVER_PULL: 'ErrImageNeverPull',
  BERTH_ERR_IMAGE_LAYER_TOO_LARGE: 'ImageInvalid',
  BERTH_ERR_TASK_INVALID: 'StartError',
  BERTH_ERR_START_FAILED: 'StartError',
  BERTH_ERR_VOLUME_SOURCE_NOT_FOUND: 'HostPathNotFound',
  BERTH_ERR_VOLUME_FAILED: 'VolumeFailed',
  BERTH_ERR_VOLUME_IN_USE: 'VolumeInUse',
  BERTH_ERR_VOLUME_NOT_FOUND: 'VolumeNotFound',
};

/** AgentError is an expected failure with a catalogue code; `cause` keeps the original error. */
export class AgentError extends Error {
  readonly code: AgentErrorCode;

  constructor(code: AgentErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AgentError';
    this.code = code;
  }

  /** reason is the task-status reason (one CamelCase word) this error maps to. */
  get reason(): string {
    return REASONS[this.code];
  }
}

/** reasonOf maps any thrown value to a task-status reason, defaulting to `fallback`. */
export function reasonOf(err: unknown, fallback: string): string {
  return err instanceof AgentError ? err.reason : fallback;
}

/** messageOf returns a thrown value's message, for status and logs. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
