/**
 * gRPC message size limits. grpc-js sends messages of any size but by default refuses to
 * receive one over GRPC_DEFAULT_MAX_RECEIVE_BYTES, and the refusal is not per message: the whole
 * call ends with RESOURCE_EXHAUSTED. For the agent session that means the agent reconnects, is
 * sent the same message and fails again, for ever. Two messages of the session can pass 4 MiB:
 * - DesiredTasks (down) carries every task of the node with its whole template: 100 tasks with
 *   20 KiB of env each are about 2 MiB, 200 tasks of the largest template the API admits
 *   (256 KiB) about 50 MiB;
 * - ExecResult (up) carries stdout and stderr of up to 4 MiB each (the runtime's cap).
 * Both ends of the session set AGENT_SESSION_CHANNEL_OPTIONS; the control plane's etcd client
 * sets ETCD_CLIENT_CHANNEL_OPTIONS (see their comments).
 */

/** GRPC_DEFAULT_MAX_RECEIVE_BYTES is grpc-js's default receive limit (4 MiB). */
export const GRPC_DEFAULT_MAX_RECEIVE_BYTES = 4 * 1024 * 1024;

/**
 * GRPC_MAX_MESSAGE_BYTES is the largest agent-session message either end accepts: room for an
 * ExecResult with both streams full and for a node's DesiredTasks with 200 tasks of the largest
 * admitted template.
 */
export const GRPC_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/**
 * AGENT_SESSION_CHANNEL_OPTIONS are the grpc-js options of both ends of AgentGateway.Session: the
 * gateway's `new Server(...)` and the agent's `new AgentGatewayClient(address, credentials, ...)`.
 */
export const AGENT_SESSION_CHANNEL_OPTIONS = {
  'grpc.max_receive_message_length': GRPC_MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': GRPC_MAX_MESSAGE_BYTES,
} as const;

/**
 * ETCD_CLIENT_MAX_RECEIVE_BYTES is the control plane's etcd client receive limit: 2^31 - 1, the
 * default of etcd's own Go client. What etcd sends is not bounded by any one write: a list
 * returns every object under a prefix, and a watch that catches up (after a reconnect, or started
 * while writes landed) gets the events of up to 1000 revisions in one response.
 */
export const ETCD_CLIENT_MAX_RECEIVE_BYTES = 2 ** 31 - 1;

/** ETCD_CLIENT_CHANNEL_OPTIONS go into `new Etcd3({ ..., grpcOptions: ETCD_CLIENT_CHANNEL_OPTIONS })`. */
export const ETCD_CLIENT_CHANNEL_OPTIONS = {
  'grpc.max_receive_message_length': ETCD_CLIENT_MAX_RECEIVE_BYTES,
} as const;

/**
 * GATEWAY_TLS_NAME is the DNS name in every control-plane serving certificate; agents verify the
 * gateway against it. Join refuses it as a node name, so no node certificate can carry it.
 */
export const GATEWAY_TLS_NAME = 'berth-control-plane';
