/**
 * The control plane's error catalogue. Every error that leaves the control plane (HTTP body,
 * gateway SessionError, process exit message) carries one of these codes.
 *
 * | code                                | HTTP | meaning                                             |
 * |-------------------------------------|------|-----------------------------------------------------|
 * | BERTH_ERR_VALIDATION                | 400  | a body or parameter breaks the schema; names field  |
 * | BERTH_ERR_INVALID_JSON              | 400  | the body is not parseable JSON                      |
 * | BERTH_ERR_NOT_SUPPORTED             | 400  | valid syntax for a feature not built yet            |
 * | BERTH_ERR_UNSUPPORTED_MEDIA_TYPE    | 415  | the body is not application/json                    |
 * | BERTH_ERR_BODY_TOO_LARGE            | 413  | the body exceeds the API's body limit               |
 * | BERTH_ERR_NOT_FOUND                 | 404  | the object does not exist                           |
 * | BERTH_ERR_ROUTE_NOT_FOUND           | 404  | no such route                                       |
 * | BERTH_ERR_ALREADY_EXISTS            | 409  | create of an existing object                        |
 * | BERTH_ERR_CONFLICT                  | 409  | resourceVersion precondition failed                 |
 * | BERTH_ERR_NO_PREVIOUS_REVISION      | 409  | rollback: no earlier revision to go back to         |
 * | BERTH_ERR_TASK_NOT_RUNNING          | 409  | exec into a task whose container is not running     |
 * | BERTH_ERR_NODE_READY                | 409  | delete of a node whose agent is connected (no force)|
 * | BERTH_ERR_NODE_UNAVAILABLE          | 503  | the task's node has no agent session here           |
 * | BERTH_ERR_EXEC_TIMEOUT              | 504  | exec: the command or the agent's answer timed out   |
 * | BERTH_ERR_EXEC_FAILED               | 500  | exec: the agent could not set the command up        |
 * | BERTH_ERR_INTERNAL                  | 500  | unexpected; logged with its cause                   |
 * | BERTH_ERR_REGISTER_REQUIRED         | gRPC | a session's first message was not Register          |
 * | BERTH_ERR_INVALID_NODE_NAME         | gRPC | Register carried a name that is not a DNS label     |
 * | BERTH_ERR_SESSION_REPLACED          | gRPC | a newer session for the same node took over         |
 * | BERTH_ERR_NODE_REMOVED              | gRPC | an admin removed the session's node                 |
 * | BERTH_ERR_ETCD_START                | exit | the embedded etcd did not become healthy            |
 * | BERTH_ERR_ETCD_LOCKED               | exit | a previous embedded etcd still holds the data dir   |
 */

/** ErrorCode is every code in the catalogue above. */
export type ErrorCode =
  | 'BERTH_ERR_VALIDATION'
  | 'BERTH_ERR_INVALID_JSON'
  | 'BERTH_ERR_NOT_SUPPORTED'
  | 'BERTH_ERR_UNSUPPORTED_MEDIA_TYPE'
  | 'BERTH_ERR_BODY_TOO_LARGE'
  | 'BERTH_ERR_NOT_FOUND'
  | 'BERTH_ERR_ROUTE_NOT_FOUND'
  | 'BERTH_ERR_ALREADY_EXISTS'
  | 'BERTH_ERR_CONFLICT'
  | 'BERTH_ERR_NO_PREVIOUS_REVISION'
  | 'BERTH_ERR_TASK_NOT_RUNNING'
  | 'BERTH_ERR_NODE_READY'
  | 'BERTH_ERR_NODE_UNAVAILABLE'
  | 'BERTH_ERR_EXEC_TIMEOUT'
  | 'BERTH_ERR_EXEC_FAILED'
  | 'BERTH_ERR_INTERNAL'
  | 'BERTH_ERR_REGISTER_REQUIRED'
  | 'BERTH_ERR_INVALID_NODE_NAME'
  | 'BERTH_ERR_SESSION_REPLACED'
  | 'BERTH_ERR_NODE_REMOVED'
  | 'BERTH_ERR_ETCD_START'
  | 'BERTH_ERR_ETCD_LOCKED';

/** HTTP_STATUS maps the codes the API can return to their HTTP status. */
export const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  BERTH_ERR_VALIDATION: 400,
  BERTH_ERR_INVALID_JSON: 400,
  BERTH_ERR_NOT_SUPPORTED: 400,
  BERTH_ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  BERTH_ERR_BODY_TOO_LARGE: 413,
  BERTH_ERR_NOT_FOUND: 404,
  BERTH_ERR_ROUTE_NOT_FOUND: 404,
  BERTH_ERR_ALREADY_EXISTS: 409,
  BERTH_ERR_CONFLICT: 409,
  BERTH_ERR_NO_PREVIOUS_REVISION: 409,
  BERTH_ERR_TASK_NOT_RUNNING: 409,
  BERTH_ERR_NODE_READY: 409,
  BERTH_ERR_NODE_UNAVAILABLE: 503,
  BERTH_ERR_EXEC_TIMEOUT: 504,
  BERTH_ERR_EXEC_FAILED: 500,
  BERTH_ERR_INTERNAL: 500,
};

/** BerthError is an unexpected or fatal failure carrying a catalogue code and the original cause. */
export class BerthError extends Error {
  constructor(readonly code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BerthError';
  }
}

/** FieldError is an expected admission failure: which field and why, as a value. */
export interface FieldError {
  code: ErrorCode;
  field?: string;
  message: string;
}
