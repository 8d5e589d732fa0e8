import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, experimental, Server } from '@grpc/grpc-js';
import { ReplicaRelayClient, ReplicaRelayService } from '../../proto/gen/berth/v1/relay.js';
import { GATEWAY_TLS_NAME } from '../../common/grpc-limits.js';
import { silentLogger } from '../../common/log.js';
import { NODE_ORGANIZATION } from '../../common/x509.js';
import { ClusterCa, REPLICA_ORGANIZATION } from '../../control-plane/security/pki.js';
import { isReplicaPeer, ReplicaCertificate } from '../../control-plane/security/replica-certificate.js';
import { ServingCertificate } from '../../control-plane/security/serving-certificate.js';
import { nodeCertificateOf } from '../../control-plane/gateway/node-identity.js';
import { replicaRelayServer } from '../../control-plane/gateway/replica-relay-server.js';
import { RelayClients } from '../../control-plane/gateway/replica-relay-client.js';
import { ClientStream, endOf, type StreamOpen } from '../../control-plane/gateway/streams.js';
import { clientCsr } from '../support/security-probes.js';
import { waitFor } from '../support/cluster.js';

const LOGS: StreamOpen = { logs: { namespace: 'default', task: 'web-1', containerId: 'c1', follow: false, tailLines: -1, sinceUnixMs: 0, timestamps: false, previous: false } };

describe('the replica relay', () => {
  let ca: ClusterCa;
  let serving: ServingCertificate;
  let server: Server;
  let address = '';
  let replica: ReplicaCertificate;
  const opened: { node: string; open: StreamOpen; stream: ClientStream; inputs: Buffer[] }[] = [];

  before(async () => {
    ca = await ClusterCa.generate();
    serving = await ServingCertificate.issue(ca, ['127.0.0.1'], silentLogger);
    replica = await ReplicaCertificate.issue(ca, 'replica-test', silentLogger);
    server = new Server();
    // The holder's sessions are stand-ins: each open gives a stream the test drives as an agent would.
    server.addService(ReplicaRelayService, replicaRelayServer({
      openLocal: (node, open) => {
        const stream = new ClientStream(`local-${opened.length}`, 4096);
        const inputs: Buffer[] = [];
        stream.attach({ credit: () => undefined, input: (i) => inputs.push(Buffer.from(i.data)), cancel: () => undefined });
        opened.push({ node, open, stream, inputs });
        return stream;
      },
      execLocal: async (node) => (node === 'n1'
        ? { ok: true, result: { requestId: 'r', exitCode: 7, stdout: Buffer.from('out'), stderr: Buffer.alloc(0), stdoutTruncated: false, stderrTruncated: false, timedOut: false, errorCode: '', errorMessage: '' } }
        : { ok: false, code: 'BERTH_ERR_NODE_UNAVAILABLE', message: `node ${node} has no agent session on this control plane` }),
      deleteVolumeLocal: async (node, volume) => (node !== 'n1'
        ? { ok: false, code: 'BERTH_ERR_NODE_UNAVAILABLE', message: `node ${node} has no agent session on this control plane` }
        : volume.name === 'busy' ? { ok: false, code: 'BERTH_ERR_IN_USE', message: 'volume busy is used by task web-1' } : { ok: true }),
    }, silentLogger));
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0',
      experimental.createCertificateProviderServerCredentials(serving, serving, false), (err, p) => (err ? reject(err) : resolve(p))));
    address = `127.0.0.1:${port}`;
  });

  after(() => {
    server.forceShutdown();
    serving.stop();
    replica.stop();
  });

  it('bridges a stream: the holder\'s acceptance, data and end reach the caller', async () => {
    const relays = new RelayClients(replica);
    const h = relays.openStream(address, 'n1', LOGS);
    const local = await waitForOpened(opened, 1);
    assert.equal(local.node, 'n1');
    assert.equal('logs' in local.open && local.open.logs.task, 'web-1');
    local.stream.onCredit({ streamId: local.stream.id, bytes: 0 });
    assert.deepEqual(await h.opened, { ok: true });
    local.stream.onData({ streamId: local.stream.id, channel: 1, data: Buffer.from('hello\n') });
    local.stream.onEnd({ streamId: local.stream.id, hasExitCode: false, exitCode: 0, errorCode: '', errorMessage: '' });
    const got: string[] = [];
    for await (const d of h.chunks) got.push(Buffer.from(d.data).toString());
    assert.deepEqual(got, ['hello\n']);
    assert.equal((await h.end).errorCode, '');
    relays.close();
  });

  it('passes the holder\'s refusal through as the opening outcome', async () => {
    const relays = new RelayClients(replica);
    const h = relays.openStream(address, 'n2', LOGS);
    const local = await waitForOpened(opened, 2);
    local.stream.onEnd(endOf(local.stream.id, 'BERTH_ERR_TASK_NOT_RUNNING', 'no container'));
    assert.deepEqual(await h.opened, { ok: false, code: 'BERTH_ERR_TASK_NOT_RUNNING', message: 'no container' });
    relays.close();
  });

  it('carries input only within the credit the holder\'s agent granted, and the caller\'s cancel to the holder', async () => {
    const relays = new RelayClients(replica);
    const h = relays.openStream(address, 'n1', { exec: { namespace: 'default', task: 'web-1', containerId: 'c1', command: ['cat'], tty: false, stdin: true, rows: 0, cols: 0 } });
    const local = await waitForOpened(opened, opened.length + 1);
    local.stream.onCredit({ streamId: local.stream.id, bytes: 3 });
    assert.deepEqual(await h.opened, { ok: true });
    const sent = h.send({ data: Buffer.from('abcdef') });
    await waitFor(() => (local.inputs.length > 0 ? true : undefined), 5_000, () => 'the first 3 bytes at the holder', 10);
    assert.deepEqual(local.inputs.map(String), ['abc'], 'no more than the 3 bytes of credit');
    local.stream.onCredit({ streamId: local.stream.id, bytes: 10 });
    assert.equal(await sent, true);
    await waitFor(() => (local.inputs.length > 1 ? true : undefined), 5_000, () => 'the rest at the holder', 10);
    assert.deepEqual(local.inputs.map(String), ['abc', 'def']);
    h.cancel();
    await waitFor(() => (local.stream.isFinished ? true : undefined), 5_000, () => 'the holder\'s stream cancelled', 10);
    relays.close();
  });

  it('relays one-shot exec and its failures', async () => {
    const relays = new RelayClients(replica);
    const ok = await relays.exec(address, 'n1', { namespace: 'default', task: 'web-1', containerId: 'c1', command: ['true'], timeoutMs: 1000 }, 5000);
    assert.ok(ok.ok && ok.result.exitCode === 7 && Buffer.from(ok.result.stdout).toString() === 'out', JSON.stringify(ok));
    const no = await relays.exec(address, 'n9', { namespace: 'default', task: 'web-1', containerId: 'c1', command: ['true'], timeoutMs: 1000 }, 5000);
    assert.deepEqual(no.ok ? undefined : no.code, 'BERTH_ERR_NODE_UNAVAILABLE');
    relays.close();
  });

  it('relays a volume delete and keeps the holder\'s refusal', async () => {
    const relays = new RelayClients(replica);
    assert.deepEqual(await relays.deleteVolume(address, 'n1', { namespace: 'default', name: 'data' }, 5000), { ok: true });
    assert.deepEqual(await relays.deleteVolume(address, 'n1', { namespace: 'default', name: 'busy' }, 5000),
      { ok: false, code: 'BERTH_ERR_IN_USE', message: 'volume busy is used by task web-1' });
    const far = await relays.deleteVolume(address, 'n9', { namespace: 'default', name: 'data' }, 5000);
    assert.equal(far.ok ? undefined : far.code, 'BERTH_ERR_NODE_UNAVAILABLE');
    relays.close();
  });

  it('refuses a node certificate: node credentials cannot use the relay', async () => {
    const req = await clientCsr('n1', []);
    const signed = await ca.signNode(req.csr, 'n1');
    assert.ok(signed.ok);
    const client = new ReplicaRelayClient(address, credentials.createSsl(Buffer.from(ca.certificatePem), Buffer.from(req.keyPem), Buffer.from(signed.certificatePem)),
      { 'grpc.ssl_target_name_override': GATEWAY_TLS_NAME });
    const before = opened.length;
    const err = await new Promise<Error | null>((resolve) => client.exec({ node: 'n1', request: { requestId: '', namespace: 'default', task: 't', containerId: 'c', command: ['true'], timeoutMs: 1 }, waitMs: 1 }, (e) => resolve(e)));
    assert.match(String(err?.message), /PERMISSION_DENIED|replica certificates only/);
    const call = client.stream();
    const streamErr = await new Promise<Error>((resolve) => {
      call.on('error', resolve);
      call.write({ msg: { $case: 'open', value: { node: 'n1', windowBytes: 0, open: { $case: 'logs', value: { ...(LOGS as { logs: object }).logs, streamId: '', windowBytes: 0 } as never } } } });
    });
    assert.match(streamErr.message, /replica certificates only/);
    assert.equal(opened.length, before, 'nothing was opened for a node certificate');
    client.close();
  });

  it('tells replica certificates and node certificates apart both ways', () => {
    const peer = (o: string) => ({ raw: Buffer.from('x'), subject: { CN: 'x', O: o }, valid_from: new Date().toUTCString(), valid_to: new Date(Date.now() + 60_000).toUTCString() }) as never;
    assert.equal(isReplicaPeer(peer(REPLICA_ORGANIZATION)), true);
    assert.equal(isReplicaPeer(peer(NODE_ORGANIZATION)), false);
    assert.equal(isReplicaPeer(undefined), false);
    const asNode = nodeCertificateOf(peer(REPLICA_ORGANIZATION));
    assert.ok('code' in asNode && asNode.code === 'BERTH_ERR_CERTIFICATE_REQUIRED', 'a replica certificate cannot open an agent session');
  });
});

function waitForOpened<T>(list: T[], n: number): Promise<T> {
  return waitFor(() => list[n - 1], 5_000, () => `expected ${n} streams opened on the holder, saw ${list.length}`, 10);
}
