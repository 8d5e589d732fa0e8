/**
 * The control plane's error catalogue. Every error that leaves the control plane (HTTP body,
 * gateway SessionError, process exit message) carries one of these codes.
 *
 * | code                                | HTTP | meaning                                             |
 * |-------------------------------------|------|-----------------------------------------------------|
 * | BERTH_ERR_VALIDATION                | 400  | a body or parameter breaks the schema; names field  |
 * | BERTH_ERR_INVALID_JSON              | 400  | the body is not parseable JSON                      |
 * | BERTH_ERR_INVALID_NAME              | 400  | a path parameter is not a valid name; names it      |
 * | BERTH_ERR_NOT_SUPPORTED             | 400  | valid syntax for a feature not built yet            |
 * | BERTH_ERR_POLICY_VIOLATION          | 400  | a template breaks its namespace's admission level;  |
 * |                                     |      | lists every violation, field names the first        |
 * | BERTH_ERR_UNSUPPORTED_MEDIA_TYPE    | 415  | the body is not application/json                    |
 * | BERTH_ERR_BODY_TOO_LARGE            | 413  | the body exceeds the API's body limit               |
 * | BERTH_ERR_NOT_FOUND                 | 404  | the object does not exist                           |
 * | BERTH_ERR_ROUTE_NOT_FOUND           | 404  | no such route                                       |
 * | BERTH_ERR_ALREADY_EXISTS            | 409  | create of an existing object                        |
 * | BERTH_ERR_CONFLICT                  | 409  | resourceVersion precondition failed                 |
 * | BERTH_ERR_NO_PREVIOUS_REVISION      | 409  | rollback: no earlier revision to go back to         |
 * | BERTH_ERR_NAMESPACE_NOT_EMPTY       | 409  | delete of a namespace that still has services       |
 * | BERTH_ERR_IN_USE                    | 409  | delete of a secret, config or volume still in use;  |
 * |                                     |      | names the users                                     |
 * | BERTH_ERR_TASK_NOT_RUNNING          | 409  | exec into a task whose container is not running     |
 * | BERTH_ERR_NODE_READY                | 409  | delete of a node whose agent is connected (no force)|
 * | BERTH_ERR_NODE_UNAVAILABLE          | 503  | the task's node has no agent session here           |
 * | BERTH_ERR_EXEC_TIMEOUT              | 504  | exec: the command or the agent's answer timed out   |
 * | BERTH_ERR_EXEC_FAILED               | 500  | exec: the agent could not set the command up        |
 * | BERTH_ERR_NO_PREVIOUS_CONTAINER     | 404  | logs --previous: the task's container never restarted |
 * | BERTH_ERR_STREAM_FAILED             | 502  | a logs/exec stream could not be served by the agent or relay |
 * | BERTH_ERR_SECRET_SEALING            | 500  | a secret cannot be sealed or opened (key missing)   |
 * | BERTH_ERR_INTERNAL                  | 500  | unexpected; logged with its cause                   |
 * | BERTH_ERR_UNAUTHENTICATED           | 401  | no credential, or one that is unknown/expired/revoked |
 * | BERTH_ERR_FORBIDDEN                 | 403  | the identity's role or namespaces do not allow it   |
 * | BERTH_ERR_TOO_MANY_AUTH_FAILURES    | 429  | too many failed authentications from this address   |
 * | BERTH_ERR_INVALID_TOKEN             | gRPC | join: the token is unknown, expired or not a join token |
 * | BERTH_ERR_IDENTITY_MISMATCH         | gRPC | Register's node name differs from the certificate's |
 * | BERTH_ERR_CERTIFICATE_REQUIRED      | gRPC | a session without a valid node certificate          |
 * | BERTH_ERR_CERTIFICATE_REVOKED       | gRPC | the node's certificates were revoked (node deleted) |
 * | BERTH_ERR_NODE_NAME_IN_USE          | gRPC | join: a connected node already has that name        |
 * | BERTH_ERR_CA_KEY                    | exit | the sealing key file is missing or does not open the CA |
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
  | 'BERTH_ERR_INVALID_NAME'
  | 'BERTH_ERR_NOT_SUPPORTED'
  | 'BERTH_ERR_POLICY_VIOLATION'
  | 'BERTH_ERR_UNSUPPORTED_MEDIA_TYPE'
  | 'BERTH_ERR_BODY_TOO_LARGE'
  | 'BERTH_ERR_NOT_FOUND'
  | 'BERTH_ERR_ROUTE_NOT_FOUND'
  | 'BERTH_ERR_ALREADY_EXISTS'
  | 'BERTH_ERR_CONFLICT'
  | 'BERTH_ERR_NO_PREVIOUS_REVISION'
  | 'BERTH_ERR_NAMESPACE_NOT_EMPTY'
  | 'BERTH_ERR_TASK_NOT_RUNNING'
  | 'BERTH_ERR_NODE_READY'
  | 'BERTH_ERR_NODE_UNAVAILABLE'
  | 'BERTH_ERR_EXEC_TIMEOUT'
  | 'BERTH_ERR_EXEC_FAILED'
  | 'BERTH_ERR_NO_PREVIOUS_CONTAINER'
  | 'BERTH_ERR_STREAM_FAILED'
  | 'BERTH_ERR_INTERNAL'
  | 'BERTH_ERR_IN_USE'
  | 'BERTH_ERR_SECRET_SEALING'
  | 'BERTH_ERR_UNAUTHENTICATED'
  | 'BERTH_ERR_FORBIDDEN'
  | 'BERTH_ERR_TOO_MANY_AUTH_FAILURES'
  | 'BERTH_ERR_INVALID_TOKEN'
  | 'BERTH_ERR_IDENTITY_MISMATCH'
  | 'BERTH_ERR_CERTIFICATE_REQUIRED'
  | 'BERTH_ERR_CERTIFICATE_REVOKED'
  | 'BERTH_ERR_NODE_NAME_IN_USE'
  | 'BERTH_ERR_CA_KEY'
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
  BERTH_ERR_INVALID_NAME: 400,
  BERTH_ERR_NOT_SUPPORTED: 400,
  BERTH_ERR_POLICY_VIOLATION: 400,
  BERTH_ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  BERTH_ERR_BODY_TOO_LARGE: 413,
  BERTH_ERR_NOT_FOUND: 404,
  BERTH_ERR_ROUTE_NOT_FOUND: 404,
  BERTH_ERR_ALREADY_EXISTS: 409,
  BERTH_ERR_CONFLICT: 409,
  BERTH_ERR_IN_USE: 409,
  BERTH_ERR_SECRET_SEALING: 500,
  BERTH_ERR_NO_PREVIOUS_REVISION: 409,
  BERTH_ERR_NAMESPACE_NOT_EMPTY: 409,
  BERTH_ERR_TASK_NOT_RUNNING: 409,
  BERTH_ERR_NODE_READY: 409,
  BERTH_ERR_NODE_UNAVAILABLE: 503,
  BERTH_ERR_EXEC_TIMEOUT: 504,
  BERTH_ERR_EXEC_FAILED: 500,
  BERTH_ERR_NO_PREVIOUS_CONTAINER: 404,
  BERTH_ERR_STREAM_FAILED: 502,
  BERTH_ERR_INTERNAL: 500,
  BERTH_ERR_UNAUTHENTICATED: 401,
  BERTH_ERR_FORBIDDEN: 403,
  BERTH_ERR_TOO_MANY_AUTH_FAILURES: 429,
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
