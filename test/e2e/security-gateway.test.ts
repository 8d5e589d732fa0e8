/**
 * Attacks on the agent gateway of a real local cluster, over plain gRPC with the generated
 * client: sessions without a certificate, with a foreign one, with another node's, with an
 * expired or a revoked one, and joins with bad tokens or a connected node's name. Nothing may be
 * written for any of them, the real agents must not notice, and each refusal is audited. Also the
 * renewal of node certificates over a live session (the cluster runs with 30 s certificates).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { silentLogger } from '../../common/log.js';
import { certificateFacts, issuedBy, type CertificateFacts } from '../../common/x509.js';
import type { Node, Task } from '../../control-plane/objects/types.js';
import type { AuditRecord } from '../../control-plane/security/audit.js';
import { ClusterCa, CLOCK_SKEW_MS } from '../../control-plane/security/pki.js';
import { CLUSTER_CA_KEY } from '../../control-plane/store/keys.js';
import { Store } from '../../control-plane/store/store.js';
import { berth, berthJson, clusterStatus, localCluster, pidAlive, waitFor, type ClusterStatus } from '../support/cluster.js';
import {
  describeJoin, describeRegister, grpcName, joinOnce, registerOnce, type ClientPem, type RegisterOutcome,
} from '../support/gateway-calls.js';
import { SEED_ARCHIVE, ensureSeedImage } from '../support/images.js';
import { clientCsr, show, unmatchedExpectations, type AuditExpectation } from '../support/security-probes.js';

const CLUSTER = 'sec-gw';
const H1 = `${CLUSTER}-h1`;
const H2 = `${CLUSTER}-h2`;
/** NODE_CERT_TTL_S is the node certificate lifetime the control plane runs with here. */
const NODE_CERT_TTL_S = 30;
const RENEW_AT_FRACTION = 2 / 3;
/** Where deploy/local-cluster keeps a cluster's process logs (RUN_ROOT/NAME). */
const RUN_DIR = `/run/berth-local/${CLUSTER}`;

const agentLog = (host: 1 | 2): string => join(RUN_DIR, `agent-h${host}.log`);
const logSize = (path: string): number => (existsSync(path) ? statSync(path).size : 0);
const logSince = (path: string, offset: number): string => readFileSync(path).subarray(offset).toString('utf8');

/** issuedAt is when the CA signed a certificate (its notBefore is back-dated by CLOCK_SKEW_MS). */
const issuedAt = (f: CertificateFacts): number => f.notBefore.getTime() + CLOCK_SKEW_MS;

function readyCondition(n: Node | undefined): { status: string; lastTransitionTime: string } | undefined {
  return n?.status?.conditions?.find((c) => c.type === 'Ready');
}

function readyOf(n: Node | undefined): string {
  return readyCondition(n)?.status ?? 'absent';
}

describe('the agent gateway admits only a node\'s own, valid certificate and renews it over the session', () => {
  let cluster: ClusterStatus;
  let caPem = '';
  let gateway = '';
  const audited: AuditExpectation[] = [];

  const nodes = (): Node[] => berthJson<Node[]>(cluster.server, ['get', 'nodes']);
  const nodeNames = (): string[] => nodes().map((n) => n.metadata.name).sort();
  const pkiDir = (host: 1 | 2): string => join(cluster.hosts[host - 1]!.stateDir, 'pki');
  const nodePki = (host: 1 | 2): ClientPem => ({
    certPem: readFileSync(join(pkiDir(host), 'node.crt'), 'utf8'), keyPem: readFileSync(join(pkiDir(host), 'node.key'), 'utf8'),
  });

  /** expectRefusal audits: a refused register/join on nodes, for name, with code (the berth code or the gRPC name). */
  const expectRefusal = (what: string, since: number, verb: 'register' | 'join', name: string, codes: string[]): void => {
    audited.push({ what, since, match: (a: AuditRecord) => a.verb === verb && a.resource === 'nodes' && a.name === name && codes.includes(String(a.code)) });
  };

  const assertRefused = (o: RegisterOutcome, grpc: status, berthCode: string, what: string): void => {
    assert.ok(!o.accepted, `${what}: expected refusal ${grpcName(grpc)}/${berthCode}, saw ${describeRegister(o)}`);
    if (o.accepted) return;
    assert.equal(grpcName(o.grpcCode), grpcName(grpc), `${what}: expected gRPC ${grpcName(grpc)}, saw ${describeRegister(o)}`);
    const said = `${o.sessionError?.code ?? ''} ${o.details}`;
    assert.ok(said.includes(berthCode), `${what}: expected ${berthCode} in the SessionError or status details, saw ${describeRegister(o)}`);
  };

  before(() => {
    ensureSeedImage();
    localCluster(['down', '--name', CLUSTER]);
    const up = localCluster(['up', '--hosts', '2', '--name', CLUSTER, '--control-plane-args', `--node-cert-ttl ${NODE_CERT_TTL_S}s`]);
    assert.equal(up.code, 0, `local-cluster up failed:\n${up.stdout}\n${up.stderr}`);
    cluster = clusterStatus(CLUSTER);
    caPem = readFileSync(cluster.ca, 'utf8');
    gateway = (cluster as ClusterStatus & { gateway: string }).gateway;
    assert.ok(gateway, 'local-cluster status names the gateway');
  });

  after(() => {
    const down = localCluster(['down', '--name', CLUSTER]);
    assert.equal(down.code, 0, `local-cluster down failed: ${down.stderr}`);
  });

  // Filled by the renewal test, judged again by the cadence test.
  let renewalLog = '';
  let renewalWatchMs = 0;
  let firstCert: CertificateFacts | undefined;
  let renewedCert: CertificateFacts | undefined;

  test('an agent renews its node certificate over its session: later notAfter, node Ready throughout, container untouched, session not ended', async () => {
    const pinned = `kind: Service
metadata: { name: pinned }
spec:
  replicas: 1
  template: { image: "oci-archive:${SEED_ARCHIVE}", command: ["sleep", "100000"], resources: { memory: 16Mi } }
  placement: { constraints: ["node.name == ${H1}"] }
`;
    const applied = berth(cluster.server, ['apply', '-f', '-'], pinned);
    assert.equal(applied.code, 0, show(applied));
    const task = await waitFor(() => berthJson<Task[]>(cluster.server, ['get', 'tasks', '--service', 'pinned'])
      .find((t) => t.status.phase === 'running' && t.status.pid), 60_000, () => berth(cluster.server, ['get', 'tasks', '-o', 'wide']).stdout);
    assert.equal(task.spec.nodeName, H1);

    const logOffset = logSize(agentLog(1));
    firstCert = certificateFacts(readFileSync(join(pkiDir(1), 'node.crt')));
    const start = Date.now();
    // Ready's lastTransitionTime changes with every flip, so an unchanged one proves H1 never
    // left Ready while the certificate was renewed; no sampling needed.
    const readyBefore = readyCondition(nodes().find((n) => n.metadata.name === H1));
    renewedCert = await waitFor(() => {
      const now = certificateFacts(readFileSync(join(pkiDir(1), 'node.crt')));
      return now.notAfter.getTime() > firstCert!.notAfter.getTime() ? now : undefined;
    }, 60_000, () => `${pkiDir(1)}/node.crt to get a later notAfter than ${firstCert!.notAfter.toISOString()}`, 500).catch(() => undefined);
    const readyAfter = readyCondition(nodes().find((n) => n.metadata.name === H1));
    const notReady = readyAfter?.status === 'True' && readyAfter.lastTransitionTime === readyBefore?.lastTransitionTime
      ? [] : [`Ready before ${JSON.stringify(readyBefore)}, after ${JSON.stringify(readyAfter)}`];
    renewalWatchMs = Date.now() - start;
    // The agent logs the renewal just after writing the file: wait for the line, not a fixed time.
    renewalLog = await waitFor(() => {
      const text = logSince(agentLog(1), logOffset);
      return /node certificate renewed/.test(text) ? text : undefined;
    }, 10_000, () => 'the agent to log the renewal', 200).catch(() => logSince(agentLog(1), logOffset));

    assert.ok(renewedCert, `within 60 s ${pkiDir(1)}/node.crt gets a later notAfter than ${firstCert.notAfter.toISOString()}`);
    assert.ok(renewedCert.serialNumber !== firstCert.serialNumber, 'the renewed certificate is a new one');
    assert.ok(issuedBy(readFileSync(join(pkiDir(1), 'node.crt')), caPem), 'the renewed certificate is signed by the cluster CA');
    assert.deepEqual(notReady, [], `${H1} stays Ready while its certificate is renewed`);
    const still = berthJson<Task[]>(cluster.server, ['get', 'tasks', '--service', 'pinned']);
    assert.deepEqual(still.map((t) => [t.metadata.name, t.status.phase, t.status.pid]), [[task.metadata.name, 'running', task.status.pid]],
      'the task and its container PID are unchanged');
    assert.ok(pidAlive(task.status.pid!), `container pid ${task.status.pid} alive`);
    assert.match(renewalLog, /node certificate renewed/, `the agent log says "node certificate renewed":\n${renewalLog.slice(0, 2000)}`);
    assert.doesNotMatch(renewalLog, /session ended/, `the session never ended during renewal:\n${renewalLog.split('\n').filter((l) => /session ended/.test(l)).slice(0, 5).join('\n')}`);
  });

  test('an agent renews at two thirds of its certificate\'s lifetime, not continuously', () => {
    assert.ok(firstCert && renewedCert, 'the renewal test observed a renewal');
    const renewals = renewalLog.split('\n').filter((l) => /node certificate renewed/.test(l)).length;
    const periodMs = NODE_CERT_TTL_S * 1000 * RENEW_AT_FRACTION;
    const allowed = Math.ceil(renewalWatchMs / periodMs) + 1;
    const gapMs = issuedAt(renewedCert) - issuedAt(firstCert);
    assert.ok(renewals <= allowed && gapMs >= 0.8 * periodMs,
      `renewal cadence (agent/pki.ts renewDueInMs): with ${NODE_CERT_TTL_S} s certificates an agent should renew about every ${periodMs / 1000} s `
      + `(at most ${allowed} renewals in ${Math.round(renewalWatchMs / 1000)} s, each certificate issued >= ${(0.8 * periodMs) / 1000} s after the one before); `
      + `saw ${renewals} renewals and certificates issued ${gapMs} ms apart. renewDueInMs measures two thirds of notAfter - notBefore, but notBefore is `
      + `back-dated by CLOCK_SKEW_MS (${CLOCK_SKEW_MS / 60_000} min), so any lifetime under ${(CLOCK_SKEW_MS / 2) / 1000} s is always due and the agent renews in a tight loop`);
  });

  test('a session without a client certificate is refused (UNAUTHENTICATED, BERTH_ERR_CERTIFICATE_REQUIRED) and writes no node', async () => {
    const since = Date.now();
    const o = await registerOnce(gateway, caPem, undefined, 'intruder');
    assertRefused(o, status.UNAUTHENTICATED, 'BERTH_ERR_CERTIFICATE_REQUIRED', 'Register without a client certificate');
    assert.ok(!nodeNames().includes('intruder'), `no node "intruder": ${nodeNames()}`);
    expectRefusal('register without a certificate', since, 'register', 'intruder', ['BERTH_ERR_CERTIFICATE_REQUIRED', 'UNAUTHENTICATED']);
  });

  test('a session with a node certificate from a foreign CA is refused and writes no node', async () => {
    const foreign = await ClusterCa.generate('someone else\'s CA');
    const req = await clientCsr('foreigner', ['berth:nodes']);
    const signed = await foreign.signNode(req.csr, 'foreigner');
    assert.ok(signed.ok, 'the foreign CA signs');
    const since = Date.now();
    const o = await registerOnce(gateway, caPem, { certPem: signed.certificatePem, keyPem: req.keyPem }, 'foreigner');
    assertRefused(o, status.UNAUTHENTICATED, 'BERTH_ERR_CERTIFICATE_REQUIRED', 'Register with a foreign CA\'s certificate');
    assert.ok(!nodeNames().includes('foreigner'), `no node "foreigner": ${nodeNames()}`);
    expectRefusal('register with a foreign certificate', since, 'register', 'foreigner', ['BERTH_ERR_CERTIFICATE_REQUIRED', 'UNAUTHENTICATED']);
  });

  test('node h1\'s certificate cannot register as h2 or as a new node; h2\'s own session is not displaced', async () => {
    const h2LogOffset = logSize(agentLog(2));
    const h1Cert = nodePki(1);
    for (const name of [H2, 'rogue']) {
      const since = Date.now();
      const o = await registerOnce(gateway, caPem, h1Cert, name);
      assertRefused(o, status.PERMISSION_DENIED, 'BERTH_ERR_IDENTITY_MISMATCH', `Register as ${name} with ${H1}'s certificate`);
      expectRefusal(`register as ${name} with ${H1}'s certificate`, since, 'register', name, ['BERTH_ERR_IDENTITY_MISMATCH', 'PERMISSION_DENIED']);
    }
    const all = nodes();
    assert.deepEqual(all.map((n) => n.metadata.name).sort(), [H1, H2], 'no "rogue" node');
    assert.equal(readyOf(all.find((n) => n.metadata.name === H2)), 'True', `${H2} stays Ready`);
    const h2Log = logSince(agentLog(2), h2LogOffset);
    assert.doesNotMatch(h2Log, /SESSION_REPLACED|session ended/, `${H2}'s agent keeps its session:\n${h2Log.split('\n').filter((l) => /SESSION_REPLACED|session ended/.test(l)).join('\n')}`);
  });

  test('joins with a garbage token, a token for another CA, or a connected node\'s name are refused and write nothing', async () => {
    const created = berth(cluster.server, ['token', 'create', '--role', 'agent', '--name', 'probe-join']);
    assert.equal(created.code, 0, show(created));
    const token = created.stdout.trim();
    const foreign = await ClusterCa.generate('someone else\'s CA');
    const [, digest, ...rest] = token.split('.');
    assert.equal(digest, certificateFacts(caPem).sha256, 'the join token pins the cluster CA');
    const otherCluster = ['btjoin1', foreign.sha256, ...rest].join('.');
    const before = nodeNames();

    const attempts: { what: string; token: string; node: string; grpc: status; code: string }[] = [
      { what: 'a garbage token', token: 'btjoin1.garbage', node: 'joiner-a', grpc: status.UNAUTHENTICATED, code: 'BERTH_ERR_INVALID_TOKEN' },
      { what: 'a token pinning another CA', token: otherCluster, node: 'joiner-b', grpc: status.UNAUTHENTICATED, code: 'BERTH_ERR_INVALID_TOKEN' },
      { what: 'a connected node\'s name', token, node: H2, grpc: status.ALREADY_EXISTS, code: 'BERTH_ERR_NODE_NAME_IN_USE' },
    ];
    for (const a of attempts) {
      const req = await clientCsr(a.node, ['berth:nodes']);
      const since = Date.now();
      const o = await joinOnce(gateway, caPem, { token: a.token, nodeName: a.node, csr: req.csr });
      assert.ok(!o.ok, `join with ${a.what}: expected ${grpcName(a.grpc)}, saw ${describeJoin(o)}`);
      if (o.ok) continue;
      assert.equal(grpcName(o.grpcCode), grpcName(a.grpc), `join with ${a.what}: ${describeJoin(o)}`);
      assert.ok(o.details.includes(a.code), `join with ${a.what}: expected ${a.code}, saw ${describeJoin(o)}`);
      expectRefusal(`join with ${a.what}`, since, 'join', a.node, [a.code, grpcName(a.grpc)]);
    }
    assert.deepEqual(nodeNames(), before, 'no node was written by the refused joins');
    // The token itself was good: it buys a certificate for a free name (and that writes no node either).
    const spare = await clientCsr('spare', ['berth:nodes']);
    const ok = await joinOnce(gateway, caPem, { token, nodeName: 'spare', csr: spare.csr });
    assert.ok(ok.ok && issuedBy(ok.certificate, caPem), `the same token joins a free name: ${describeJoin(ok)}`);
    assert.deepEqual(nodeNames(), before, 'a join alone writes no node');
  });

  test('an expired node certificate signed by the cluster CA is refused', async () => {
    // Open the cluster CA the way a control-plane replica does: the CA object in etcd, its key sealed by the data dir's sealing key.
    const client = new Etcd3({ hosts: cluster.etcd! });
    let ca: ClusterCa;
    try {
      const store = new Store(client);
      assert.ok(await store.get(CLUSTER_CA_KEY), 'the cluster CA is in etcd (so loadOrCreate only loads)');
      ({ ca } = await ClusterCa.loadOrCreate(store, join(dirname(cluster.config), 'sealing.key'), silentLogger));
    } finally {
      client.close();
    }
    assert.equal(ca.sha256, certificateFacts(caPem).sha256, 'the CA opened is the cluster\'s');
    const req = await clientCsr(H1, ['berth:nodes']);
    const signed = await ca.signNode(req.csr, H1, 1000);
    assert.ok(signed.ok && issuedBy(signed.certificatePem, caPem), 'the cluster CA signs a 1 s certificate');
    const notAfter = signed.notAfter.getTime();
    await waitFor(() => (Date.now() > notAfter + 1000 ? true : undefined), 10_000, () => `the clock to pass ${signed.notAfter.toISOString()}`, 100);

    const h1LogOffset = logSize(agentLog(1));
    const since = Date.now();
    const o = await registerOnce(gateway, caPem, { certPem: signed.certificatePem, keyPem: req.keyPem }, H1);
    assertRefused(o, status.UNAUTHENTICATED, 'BERTH_ERR_CERTIFICATE_REQUIRED', 'Register with an expired certificate');
    expectRefusal('register with an expired certificate', since, 'register', H1, ['BERTH_ERR_CERTIFICATE_REQUIRED', 'UNAUTHENTICATED']);
    assert.equal(readyOf(nodes().find((n) => n.metadata.name === H1)), 'True', `${H1} stays Ready`);
    assert.doesNotMatch(logSince(agentLog(1), h1LogOffset), /SESSION_REPLACED/, `${H1}'s own session is not displaced`);
  });

  test('deleting a node revokes its certificates: the old one is refused BERTH_ERR_CERTIFICATE_REVOKED and the agent rejoins with a new one', async () => {
    const old = nodePki(2);
    const oldFacts = certificateFacts(old.certPem);
    const h2LogOffset = logSize(agentLog(2));
    const deletedAt = Date.now();
    const del = berth(cluster.server, ['delete', 'node', H2, '--force']);
    assert.equal(del.code, 0, `delete node ${H2} --force: ${show(del)}`);

    const since = Date.now();
    const o = await registerOnce(gateway, caPem, old, H2);
    assertRefused(o, status.PERMISSION_DENIED, 'BERTH_ERR_CERTIFICATE_REVOKED', `Register with ${H2}'s certificate from before its deletion`);
    expectRefusal('register with a revoked certificate', since, 'register', H2, ['BERTH_ERR_CERTIFICATE_REVOKED', 'PERMISSION_DENIED']);

    // The real agent drops its certificate, stops its tasks and joins again with its (still valid) join token.
    const back = await waitFor(() => {
      if (readyOf(nodes().find((n) => n.metadata.name === H2)) !== 'True') return undefined;
      const now = certificateFacts(readFileSync(join(pkiDir(2), 'node.crt')));
      return now.serialNumber !== oldFacts.serialNumber && issuedAt(now) >= deletedAt - 1000 ? now : undefined;
    }, 60_000, () => `${H2} Ready again with a certificate issued after ${new Date(deletedAt).toISOString()}; nodes: ${JSON.stringify(nodes().map((n) => [n.metadata.name, readyOf(n)]))}`, 500);
    assert.ok(issuedBy(readFileSync(join(pkiDir(2), 'node.crt')), caPem), 'the new certificate is the cluster CA\'s');
    assert.notEqual(back.serialNumber, oldFacts.serialNumber);
    assert.match(logSince(agentLog(2), h2LogOffset), /joined the cluster/, `${H2}'s agent joined again`);
  });

  test('every refused register and join has its audit line (resource nodes)', () => {
    const r = berth(cluster.server, ['audit', '-o', 'json']);
    assert.equal(r.code, 0, show(r));
    const records = JSON.parse(r.stdout) as AuditRecord[];
    const missing = unmatchedExpectations(records, audited);
    const seen = records.filter((a) => a.resource === 'nodes').map((a) => `${a.time} ${a.verb} ${a.name ?? ''} ${a.code} ${a.identity || '<none>'} ${a.source}`);
    assert.deepEqual(missing.map((m) => m.what), [], `expected an audit line for each refusal; node records seen:\n${seen.join('\n')}`);
  });

  test('the audit line of an impersonation names the node whose certificate tried it', () => {
    const records = JSON.parse(berth(cluster.server, ['audit', '-o', 'json']).stdout) as AuditRecord[];
    const lines = records.filter((a) => a.verb === 'register' && a.name === 'rogue');
    assert.ok(lines.length > 0, 'the rogue register attempt is audited');
    assert.deepEqual(lines.map((a) => [a.identity, a.via]), lines.map(() => [H1, 'node']),
      `refusal audit (gateway session refuse): a Register refused with BERTH_ERR_IDENTITY_MISMATCH is `
      + `audited with identity "" although the peer proved it holds ${H1}'s certificate (AuditRefusal leaves identity '' only when the peer proved none); `
      + `only the free-text message mentions it, so \`berth audit --user ${H1}\` does not find the attempt. Lines: ${JSON.stringify(lines)}`);
  });
});
