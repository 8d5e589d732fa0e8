import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import { AgentGatewayService, type AgentMessage, type ControlMessage } from '../../proto/gen/berth/v1/agent.js';
import { AgentSession, backoffDelayMs, type SessionIdentity } from '../../agent/session.js';

// The session logic is what these tests drive; the gateway stub speaks plaintext, so the
// identity hands out insecure credentials and never needs renewing (mTLS has its own tests).
const plaintextIdentity: SessionIdentity = {
  channel: async () => credentials.createInsecure(),
  renewDueInMs: () => Number.POSITIVE_INFINITY,
  renewalRequest: async () => '',
  renewed: () => undefined,
  forget: () => undefined,
};
import type { DesiredTask, TaskStatusView } from '../../agent/reconciler/index.js';

type Call = ServerDuplexStream<AgentMessage, ControlMessage>;

/** startGateway runs a tiny gateway that acks registration and records what agents send. */
async function startGateway(port = 0) {
  const received: AgentMessage[] = [];
  const calls: Call[] = [];
  const server = new Server();
  server.addService(AgentGatewayService, {
    session(call: Call) {
      calls.push(call);
      call.on('data', (m: AgentMessage) => {
        received.push(m);
        if (m.msg?.$case === 'register') {
          call.write({ msg: { $case: 'registerAck', value: { nodeName: m.msg.value.nodeName, heartbeatIntervalMs: 50, leaseTtlMs: 1000, podSubnet: '', clusterCidr: '' } } });
        }
      });
      call.on('error', () => undefined);
    },
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { server, received, calls, port: bound, stop: () => server.forceShutdown() };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((res) => setTimeout(res, 10));
  assert.ok(cond(), `timed out waiting for ${what}`);
}

test('backoff doubles from 250 ms, caps at 5 s and stays within the jitter band', () => {
  assert.equal(backoffDelayMs(0, 250, 5000, () => 0.999999), 250);
  assert.equal(backoffDelayMs(0, 250, 5000, () => 0), 125);
  assert.equal(backoffDelayMs(3, 250, 5000, () => 0.999999), 2000);
  assert.equal(backoffDelayMs(10, 250, 5000, () => 0.999999), 5000);
});

test('the session registers, reports fully, relays desired tasks, heartbeats, and reconnects to another server', async () => {
  const gw1 = await startGateway();
  const gw2 = await startGateway();
  after(() => { gw1.stop(); gw2.stop(); });
  const desired: DesiredTask[][] = [];
  const known: TaskStatusView = { namespace: 'default', name: 'web-1', uid: 'u1', phase: 'running', pid: 42, restarts: 0 };
  const session = new AgentSession({
    servers: [`127.0.0.1:${gw1.port}`, `127.0.0.1:${gw2.port}`],
    tasks: { setDesired: (t) => desired.push(t), statuses: () => [known] },
    register: () => ({ nodeName: 'node-a', labels: { zone: 'a' }, capacity: { cpuCores: 2, memoryBytes: 1, pids: 10 }, addresses: [{ type: 'InternalIP', address: '10.0.0.2' }], metricsUrl: 'http://10.0.0.2:9480/metrics', agentVersion: '0.1.0', cgroupVersion: 'v1', images: [], volumes: [] }),
    identity: plaintextIdentity,
    initialBackoffMs: 20,
    maxBackoffMs: 100,
  });
  after(() => session.close());
  session.start();
  await until(() => session.isRegistered, 'registration with gateway 1');
  assert.equal(gw1.received[0]?.msg?.$case, 'register');
  await until(() => gw1.received.some((m) => m.msg?.$case === 'taskStatus'), 'full report');
  const full = gw1.received.find((m) => m.msg?.$case === 'taskStatus')!.msg!;
  assert.ok(full.$case === 'taskStatus' && full.value.full && full.value.tasks[0]?.pid === 42);

  gw1.calls[0]!.write({ msg: { $case: 'desiredTasks', value: { tasks: [{ namespace: 'default', service: 'web', name: 'web-1', uid: 'u1', desiredState: 'running', template: undefined, revision: 1 }], templates: {}, secrets: {}, configs: {} } } });
  await until(() => desired.length === 1, 'desired tasks delivered');
  session.report({ ...known, phase: 'succeeded', exitCode: 0 });
  await until(() => gw1.received.some((m) => m.msg?.$case === 'taskStatus' && !m.msg.value.full && m.msg.value.tasks[0]?.phase === 'succeeded'), 'status change');
  await until(() => gw1.received.filter((m) => m.msg?.$case === 'heartbeat').length >= 2, 'heartbeats');

  gw1.stop(); // losing the control plane: the agent must move to the other server
  await until(() => gw2.received.some((m) => m.msg?.$case === 'register') && session.isRegistered, 'registration with gateway 2');
});
