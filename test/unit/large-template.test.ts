/**
 * Large but valid templates: admission bounds a template at MAX_TEMPLATE_BYTES with a message that
 * says why, and the agent push of a node's tasks stays within the gRPC limits it is sized for.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { AGENT_SESSION_CHANNEL_OPTIONS, GRPC_DEFAULT_MAX_RECEIVE_BYTES, GRPC_MAX_MESSAGE_BYTES } from '../../common/grpc-limits.js';
import { createLogger } from '../../common/log.js';
import { buildApi } from '../../control-plane/api/server.js';
import { toDesiredTasks } from '../../control-plane/gateway/convert.js';
import type { Task } from '../../control-plane/objects/types.js';
import { admitService, MAX_TEMPLATE_BYTES } from '../../control-plane/objects/validation.js';
import { Authenticator } from '../../control-plane/security/authentication.js';
import type { Store } from '../../control-plane/store/store.js';
import { AgentMessage, ControlMessage } from '../../proto/gen/berth/v1/agent.js';

const IMAGE = 'oci-archive:/images/busybox.tar';

/** envOf returns an env whose template ({image, env}) is exactly `bytes` of JSON. */
function envOf(bytes: number): Record<string, string> {
  const base = Buffer.byteLength(JSON.stringify({ image: IMAGE, env: { BIG: '' } }));
  return { BIG: 'x'.repeat(bytes - base) };
}

const body = (env: Record<string, string>) => ({ kind: 'Service' as const, metadata: { name: 'big' }, spec: { replicas: 100, template: { image: IMAGE, env } } });

test('admission takes a template of exactly MAX_TEMPLATE_BYTES and refuses one byte more, naming the field and the limit', () => {
  assert.equal(Buffer.byteLength(JSON.stringify({ image: IMAGE, env: envOf(MAX_TEMPLATE_BYTES) })), MAX_TEMPLATE_BYTES);
  const at = admitService(body(envOf(MAX_TEMPLATE_BYTES)), { namespace: 'default' });
  assert.ok(at.ok, JSON.stringify(at.ok ? '' : at.error));
  const over = admitService(body(envOf(MAX_TEMPLATE_BYTES + 1)), { namespace: 'default' });
  assert.ok(!over.ok, 'a template one byte over the limit must be refused');
  assert.equal(over.error.code, 'BERTH_ERR_VALIDATION');
  assert.equal(over.error.field, 'spec.template');
  assert.equal(over.error.message.startsWith(`spec.template: is ${MAX_TEMPLATE_BYTES + 1} bytes as JSON, over the limit of ${MAX_TEMPLATE_BYTES} (256 KiB)`), true, over.error.message);
});

test('20 KiB of env and 100 replicas is admitted', () => {
  const env: Record<string, string> = {};
  for (let i = 0; i < 200; i++) env[`VAR_${i}`] = 'v'.repeat(100);
  assert.ok(admitService(body(env), { namespace: 'default' }).ok);
});

// The API answers 400 before the store is touched (any store access throws).
const untouchable = new Proxy({}, { get: (_t, p) => { throw new Error(`store.${String(p)} touched during validation`); } }) as Store;
const admin = { kind: 'Token', metadata: { name: 'aaaaaaaaaaaa' }, spec: { displayName: 'test', role: 'admin', namespaces: ['*'], secretSha256: '', createdBy: 'test' }, status: {} };
const app = buildApi(untouchable, createLogger('error'), { auth: new Authenticator({ check: async () => ({ ok: true, token: admin }) } as never) });
after(() => app.close());

test('PUT of a service with a template over the limit is a 400 that says so', async () => {
  const res = await app.inject({
    method: 'PUT', url: '/v1/namespaces/default/services/big',
    headers: { authorization: 'Bearer bt1.aaaaaaaaaaaa.secret', 'content-type': 'application/json' },
    payload: JSON.stringify(body(envOf(300 * 1024))),
  });
  assert.equal(res.statusCode, 400, res.body);
  const err = res.json<{ error: { code: string; field: string; message: string } }>().error;
  assert.equal(err.code, 'BERTH_ERR_VALIDATION');
  assert.equal(err.field, 'spec.template');
  assert.match(err.message, /over the limit of 262144 \(256 KiB\)/);
});

function task(i: number, env: Record<string, string>): Task {
  return {
    kind: 'Task',
    metadata: { name: `big-${String(i).padStart(5, '0')}`, namespace: 'default', uid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, generation: 1, labels: { app: 'big' }, createdAt: '2024-01-01T00:00:00.000Z' },
    spec: { service: 'big', nodeName: 'host-1', desiredState: 'running', revision: 1, template: { image: IMAGE, env } },
    status: { phase: 'assigned', restarts: 0 },
  };
}

/** pushBytes is the size on the wire of the DesiredTasks message the gateway sends a node running tasks. */
const pushBytes = (tasks: Task[]): number =>
  ControlMessage.encode({ msg: { $case: 'desiredTasks', value: toDesiredTasks(tasks) } }).finish().length;

test('tasks of one revision share one template on the wire: 200 tasks of the largest template cost one copy', () => {
  const env = envOf(MAX_TEMPLATE_BYTES);
  const shared = (n: number): Task[] => Array.from({ length: n }, (_, i) => {
    const t = task(i, env);
    return { ...t, spec: { ...t.spec, templateRef: 'svc-uid.1' } };
  });
  const one = pushBytes(shared(1));
  const many = pushBytes(shared(200));
  assert.ok(many < one + 200 * 512, `200 tasks: ${many} bytes, 1 task: ${one} bytes`);
  const desired = toDesiredTasks(shared(3));
  assert.deepEqual(Object.keys(desired.templates), ['svc-uid.1']);
  assert.ok(desired.tasks.every((a) => a.template === undefined && a.templateRef === 'svc-uid.1'));
});

test('a node running 100 tasks with 20 KiB of env each gets a DesiredTasks under gRPC\'s default 4 MiB', () => {
  const env: Record<string, string> = {};
  for (let i = 0; i < 200; i++) env[`VAR_${i}`] = 'v'.repeat(100);
  const bytes = pushBytes(Array.from({ length: 100 }, (_, i) => task(i, env)));
  assert.ok(bytes > 2_000_000 && bytes < GRPC_DEFAULT_MAX_RECEIVE_BYTES, `DesiredTasks of 100 × 20 KiB is ${bytes} bytes`);
});

test('a node running 200 tasks of the largest admitted template gets a DesiredTasks under GRPC_MAX_MESSAGE_BYTES', () => {
  const bytes = pushBytes(Array.from({ length: 200 }, (_, i) => task(i, envOf(MAX_TEMPLATE_BYTES))));
  assert.ok(bytes > GRPC_DEFAULT_MAX_RECEIVE_BYTES && bytes < GRPC_MAX_MESSAGE_BYTES, `DesiredTasks of 200 × ${MAX_TEMPLATE_BYTES} is ${bytes} bytes`);
  assert.equal(AGENT_SESSION_CHANNEL_OPTIONS['grpc.max_receive_message_length'], GRPC_MAX_MESSAGE_BYTES);
});

test('an ExecResult with both streams at the runtime\'s 4 MiB cap is over gRPC\'s default receive limit and under GRPC_MAX_MESSAGE_BYTES', () => {
  const full = Buffer.alloc(4 * 1024 * 1024);
  const bytes = AgentMessage.encode({ msg: { $case: 'execResult', value: {
    requestId: 'r', exitCode: 0, stdout: full, stderr: full, stdoutTruncated: true, stderrTruncated: true, timedOut: false, errorCode: '', errorMessage: '',
  } } }).finish().length;
  assert.ok(bytes > GRPC_DEFAULT_MAX_RECEIVE_BYTES && bytes < GRPC_MAX_MESSAGE_BYTES, `ExecResult is ${bytes} bytes`);
});
