/**
 * Attacks on the API of a real, secure-by-default local cluster: no credential, the wrong CA,
 * foreign client certificates, garbage, revoked and expired tokens, roles and namespace scopes
 * overstepped, templates above their namespace's admission level, a path that smuggles a key
 * separator. Every refusal must also leave its line in the audit log.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Service, Task } from '../../control-plane/objects/types.js';
import type { AuditRecord } from '../../control-plane/security/audit.js';
import { ClusterCa } from '../../control-plane/security/pki.js';
import { berthJson, downCluster, pidAlive, upCluster, waitFor, type ClusterStatus } from '../support/cluster.js';
import { SEED_ARCHIVE, ensureSeedImage } from '../support/images.js';
import { adminCredentials, apiJson, type SecureTarget } from '../support/secure.js';
import { describeJoin, joinOnce } from '../support/gateway-calls.js';
import {
  berthAs, clientCsr, disposeProbeHome, rawGet, show, unmatchedExpectations, writeConfigFile, type AuditExpectation, type CliCredential,
} from '../support/security-probes.js';

const CLUSTER = 'sec-api';
const NODE = `${CLUSTER}-h1`;
const TEAM = 'team-a';
const RESTRICTED_NS = 'locked';
const RUN_WAIT_MS = 60_000;

type ErrorBody = { error: { code: string; message: string; field?: string } };

function service(name: string, namespace: string, template: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: 'Service',
    metadata: { name, namespace },
    spec: {
      replicas: 1,
      template: { image: `oci-archive:${SEED_ARCHIVE}`, command: ['sleep', '100000'], resources: { memory: '16Mi' }, ...template },
    },
  };
}

function namespaceDoc(name: string, policy: string): string {
  return JSON.stringify({ kind: 'Namespace', metadata: { name }, spec: { policy } });
}

describe('the API of a secure cluster refuses whoever cannot prove who they are or oversteps their role', () => {
  let cluster: ClusterStatus;
  let target: SecureTarget;
  let admin: CliCredential;
  let adminName = '';
  let sourceAddress = '';
  let scratch = '';
  let viewerToken = '';
  const audited: AuditExpectation[] = [];

  const expectAudit = (what: string, since: number, match: (r: AuditRecord) => boolean): void => {
    audited.push({ what, since, match });
  };

  const runningTask = (ns: string, svc: string): Promise<Task> => waitFor(() => {
    const tasks = berthJson<Task[]>(cluster.server, ['-n', ns, 'get', 'tasks', '--service', svc]);
    return tasks.find((t) => t.status.phase === 'running' && t.status.pid);
  }, RUN_WAIT_MS, () => `a running task of ${ns}/${svc}; tasks: ${JSON.stringify(berthJson<Task[]>(cluster.server, ['-n', ns, 'get', 'tasks', '--service', svc]).map((t) => [t.metadata.name, t.status.phase, t.status.reason]))}`);

  const createToken = (args: string[]): string => {
    const r = berthAs(admin, ['token', 'create', ...args]);
    assert.equal(r.code, 0, `admin token create ${args.join(' ')}: expected exit 0, saw ${show(r)}`);
    return r.stdout.trim();
  };

  before(() => {
    ensureSeedImage();
    cluster = upCluster(CLUSTER, 1);
    target = { apiUrl: cluster.server, adminConfig: cluster.config };
    admin = { token: adminCredentials(cluster.config).token, config: cluster.config };
    sourceAddress = new URL(cluster.server).hostname;
    scratch = mkdtempSync(join(tmpdir(), 'berth-sec-api-'));
    const applied = berthAs(admin, ['apply', '-f', '-'], JSON.stringify(service('web', 'default')));
    assert.equal(applied.code, 0, `admin applies web: ${show(applied)}`);
    viewerToken = createToken(['--role', 'viewer', '--name', 'vera']);
  });

  after(() => {
    try {
      downCluster(CLUSTER);
    } finally {
      if (scratch) rmSync(scratch, { recursive: true, force: true });
      disposeProbeHome();
    }
  });

  test('a request without a credential is refused 401 BERTH_ERR_UNAUTHENTICATED; /healthz and /readyz answer without one', async () => {
    adminName = (await apiJson<{ name: string }>(target, 'GET', '/v1/auth/whoami')).body.name;
    const since = Date.now();
    const r = await apiJson<ErrorBody>(target, 'GET', '/v1/nodes', { token: null });
    assert.equal(r.status, 401, `GET /v1/nodes without credential: expected 401, saw ${r.status} ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, 'BERTH_ERR_UNAUTHENTICATED', `error code: ${JSON.stringify(r.body)}`);
    expectAudit('401 for GET /v1/nodes without credential', since,
      (a) => a.code === 401 && a.identity === '' && a.source === sourceAddress && a.resource === '/v1/nodes' && /no credential/.test(a.message ?? ''));
    for (const path of ['/healthz', '/readyz']) {
      const h = await apiJson(target, 'GET', path, { token: null });
      assert.equal(h.status, 200, `${path} without credential: expected 200, saw ${h.status} ${JSON.stringify(h.body)}`);
    }
  });

  test('the CLI with no config and no token exits 1 saying what is missing', () => {
    // Not even the CA: the CLI cannot trust the server and says which setting is missing.
    const bare = berthAs({ none: true, server: cluster.server }, ['get', 'nodes']);
    assert.equal(bare.code, 1, `no config, no token: expected exit 1, saw ${show(bare)}`);
    assert.match(bare.stderr, /no certificateAuthority is configured/, `no config: expected a line naming the missing CA, saw ${show(bare)}`);
    // The machine trusts the cluster CA, but there is still no credential: the server refuses, the CLI says how to pass one.
    const since = Date.now();
    const trusted = berthAs({ none: true, server: cluster.server, env: { NODE_EXTRA_CA_CERTS: cluster.ca } }, ['get', 'nodes']);
    assert.equal(trusted.code, 1, `CA trusted, no token: expected exit 1, saw ${show(trusted)}`);
    assert.match(trusted.stderr, /no credential/, `CA trusted, no token: expected "no credential", saw ${show(trusted)}`);
    assert.match(trusted.stderr, /pass --token, set BERTH_TOKEN or use --config/, `the hint says how to pass a credential: ${show(trusted)}`);
    expectAudit('401 for the CLI without credential', since, (a) => a.code === 401 && a.identity === '' && a.source === sourceAddress);
  });

  test('the CLI with a config whose CA is another cluster\'s exits 1: the server certificate is not signed by the configured CA', async () => {
    const foreign = await ClusterCa.generate('someone else\'s CA');
    const config = writeConfigFile(scratch, 'foreign-ca.config', {
      server: cluster.server, certificateAuthority: foreign.certificatePem, token: adminCredentials(cluster.config).token,
    });
    const r = berthAs({ configFile: config }, ['get', 'nodes']);
    assert.equal(r.code, 1, `foreign CA config: expected exit 1, saw ${show(r)}`);
    assert.match(r.stderr, /not signed by the configured CA/, `foreign CA config: expected the CA mismatch named, saw ${show(r)}`);
    assert.equal(r.stdout, '', 'nothing is printed on stdout');
  });

  test('a client certificate from a foreign CA is refused 401; one the cluster CA signed via POST /v1/certificates authenticates with its role', async () => {
    const foreign = await ClusterCa.generate('someone else\'s CA');
    const mallory = await clientCsr('mallory', ['admin']);
    const forged = await foreign.signClient(mallory.csr, { name: 'mallory', role: 'admin', namespaces: [] }, 3600_000);
    assert.ok(forged.ok, 'the foreign CA signs');
    const since = Date.now();
    const refused = await apiJson<ErrorBody>(target, 'GET', '/v1/auth/whoami', { token: null, client: { cert: forged.certificatePem, key: mallory.keyPem } });
    assert.equal(refused.status, 401, `foreign client certificate: expected 401, saw ${refused.status} ${JSON.stringify(refused.body)}`);
    assert.equal(refused.body.error.code, 'BERTH_ERR_UNAUTHENTICATED');
    expectAudit('401 for a foreign client certificate', since, (a) => a.code === 401 && a.identity === '' && a.resource === '/v1/auth/whoami');

    const carol = await clientCsr('carol', []);
    const issued = await apiJson<{ certificate: string; ca: string; expiresAt: string }>(target, 'POST', '/v1/certificates',
      { body: { csr: carol.csr, name: 'carol', role: 'operator', namespaces: [TEAM] } });
    assert.equal(issued.status, 201, `POST /v1/certificates as admin: expected 201, saw ${issued.status} ${JSON.stringify(issued.body)}`);
    const who = await apiJson<{ name: string; role: string; namespaces: string[]; via: string }>(target, 'GET', '/v1/auth/whoami',
      { token: null, client: { cert: issued.body.certificate, key: carol.keyPem } });
    assert.equal(who.status, 200, `cluster-signed client certificate: expected 200, saw ${who.status} ${JSON.stringify(who.body)}`);
    assert.deepEqual(who.body, { name: 'carol', role: 'operator', namespaces: [TEAM], via: 'certificate' }, 'whoami reads name, role and namespaces off the certificate');

    // The same certificate through the CLI's config file, as a person would use it.
    const config = writeConfigFile(scratch, 'carol.config', {
      server: cluster.server, certificateAuthority: readFileSync(cluster.ca, 'utf8'), clientCertificate: issued.body.certificate, clientKey: carol.keyPem,
    });
    const cli = berthAs({ configFile: config }, ['auth', 'whoami', '-o', 'json']);
    assert.equal(cli.code, 0, `CLI with the client certificate: ${show(cli)}`);
    assert.equal((JSON.parse(cli.stdout) as { role: string }).role, 'operator', `CLI whoami: ${cli.stdout}`);
  });

  test('a garbage, a revoked and an expired bearer token are each refused 401', async () => {
    let since = Date.now();
    const garbage = await apiJson<ErrorBody>(target, 'GET', '/v1/auth/whoami', { token: 'bt1.not-a-token' });
    assert.equal(garbage.status, 401, `garbage token: expected 401, saw ${garbage.status} ${JSON.stringify(garbage.body)}`);
    assert.equal(garbage.body.error.code, 'BERTH_ERR_UNAUTHENTICATED');
    expectAudit('401 for a garbage token', since, (a) => a.code === 401 && a.identity === '' && /unknown, revoked or malformed/.test(a.message ?? ''));

    const doomed = createToken(['--role', 'viewer', '--name', 'doomed']);
    const alive = await apiJson(target, 'GET', '/v1/auth/whoami', { token: doomed });
    assert.equal(alive.status, 200, `the token works before it is revoked: saw ${alive.status}`);
    const revoke = berthAs(admin, ['token', 'revoke', doomed.split('.')[1]!]);
    assert.equal(revoke.code, 0, `token revoke: ${show(revoke)}`);
    since = Date.now();
    const revoked = await apiJson<ErrorBody>(target, 'GET', '/v1/auth/whoami', { token: doomed });
    assert.equal(revoked.status, 401, `revoked token: expected 401, saw ${revoked.status} ${JSON.stringify(revoked.body)}`);
    assert.equal(revoked.body.error.code, 'BERTH_ERR_UNAUTHENTICATED');
    expectAudit('401 for a revoked token', since, (a) => a.code === 401 && a.identity === '' && /unknown, revoked or malformed/.test(a.message ?? ''));

    // 1 s is the shortest lifetime the API and the CLI accept.
    const shortLived = createToken(['--role', 'viewer', '--name', 'mayfly', '--ttl', '1s']);
    const listed = berthJson<{ id: string; expiresAt?: string }[]>(cluster.server, ['token', 'list']);
    const expiresAt = Date.parse(listed.find((t) => t.id === shortLived.split('.')[1])?.expiresAt ?? '');
    assert.ok(Number.isFinite(expiresAt), `token list shows the token's expiresAt: ${JSON.stringify(listed)}`);
    await waitFor(() => (Date.now() > expiresAt ? true : undefined), 10_000, () => `the clock to pass ${new Date(expiresAt).toISOString()}`, 50);
    since = Date.now();
    const expired = await apiJson<ErrorBody>(target, 'GET', '/v1/auth/whoami', { token: shortLived });
    assert.equal(expired.status, 401, `expired token: expected 401, saw ${expired.status} ${JSON.stringify(expired.body)}`);
    assert.match(expired.body.error.message, /expired/, `the refusal says the token expired (so its secret was right): ${JSON.stringify(expired.body)}`);
    expectAudit('401 for an expired token', since, (a) => a.code === 401 && a.identity === '' && /expired/.test(a.message ?? ''));
  });

  test('a viewer reads services but applying one is refused 403 naming identity, verb and resource; can-i says no to the viewer and yes to the admin', async () => {
    const viewer: CliCredential = { token: viewerToken, config: cluster.config };
    const get = berthAs(viewer, ['get', 'services']);
    assert.equal(get.code, 0, `viewer get services: ${show(get)}`);
    assert.match(get.stdout, /\bweb\b/, `viewer sees web: ${show(get)}`);

    const since = Date.now();
    const apply = berthAs(viewer, ['apply', '-f', '-'], JSON.stringify(service('sneaky', 'default')));
    assert.equal(apply.code, 1, `viewer apply: expected exit 1, saw ${show(apply)}`);
    assert.match(apply.stderr, /token vera \(viewer\) may not update services in namespace default/, `viewer apply names who, verb and resource: ${show(apply)}`);
    const api = await apiJson<ErrorBody>(target, 'POST', '/v1/namespaces/default/services', { token: viewerToken, body: service('sneaky', 'default') });
    assert.equal(api.status, 403, `viewer POST service: expected 403, saw ${api.status} ${JSON.stringify(api.body)}`);
    assert.equal(api.body.error.code, 'BERTH_ERR_FORBIDDEN');
    assert.match(api.body.error.message, /token vera \(viewer\) may not create services in namespace default/, JSON.stringify(api.body));
    expectAudit('403 for the viewer\'s apply', since, (a) => a.code === 403 && a.identity === 'vera' && a.role === 'viewer' && a.verb === 'update' && a.resource === 'services');
    expectAudit('403 for the viewer\'s POST', since, (a) => a.code === 403 && a.identity === 'vera' && a.verb === 'create' && a.resource === 'services');
    const stored = await apiJson(target, 'GET', '/v1/namespaces/default/services/sneaky');
    assert.equal(stored.status, 404, 'nothing was stored');

    const no = berthAs(viewer, ['auth', 'can-i', 'create', 'services']);
    assert.deepEqual([no.code, no.stdout.trim()], [1, 'no'], `viewer can-i create services: ${show(no)}`);
    const yes = berthAs(admin, ['auth', 'can-i', 'create', 'services']);
    assert.deepEqual([yes.code, yes.stdout.trim()], [0, 'yes'], `admin can-i create services: ${show(yes)}`);
  });

  test('an operator token scoped to team-a works in team-a and is refused in default, for exec into default, cordon and token creation', async () => {
    const tina: CliCredential = { token: createToken(['--role', 'operator', '-n', TEAM, '--name', 'tina']), config: cluster.config };
    const own = berthAs(tina, ['-n', TEAM, 'apply', '-f', '-'], JSON.stringify(service('app', TEAM)));
    assert.equal(own.code, 0, `operator applies in ${TEAM}: ${show(own)}`);

    let since = Date.now();
    const other = berthAs(tina, ['-n', 'default', 'apply', '-f', '-'], JSON.stringify(service('app', 'default')));
    assert.equal(other.code, 1, `operator applies in default: expected exit 1, saw ${show(other)}`);
    // apply reads the service first, so the CLI is stopped at the get; the API's PUT below is the write itself.
    assert.match(other.stderr, /token tina \(operator\) may not (get|update) services in namespace default: it is limited to namespaces team-a/, show(other));
    const api = await apiJson<ErrorBody>(target, 'PUT', '/v1/namespaces/default/services/app', { token: (tina as { token: string }).token, body: service('app', 'default') });
    assert.equal(api.status, 403, `operator PUT in default: expected 403, saw ${api.status} ${JSON.stringify(api.body)}`);
    expectAudit('403 for the operator\'s apply in default', since, (a) => a.code === 403 && a.identity === 'tina' && a.verb === 'update' && a.namespace === 'default');

    const web = await runningTask('default', 'web');
    since = Date.now();
    const exec = berthAs(tina, ['-n', 'default', 'exec', web.metadata.name, '--', 'cat', '/etc/shadow']);
    assert.equal(exec.code, 1, `operator exec into default: expected exit 1, saw ${show(exec)}`);
    assert.match(exec.stderr, /token tina \(operator\) may not exec tasks in namespace default/, show(exec));
    expectAudit('403 for the operator\'s exec into default', since, (a) => a.code === 403 && a.identity === 'tina' && a.verb === 'exec' && a.resource === 'tasks' && a.namespace === 'default');

    since = Date.now();
    const cordon = berthAs(tina, ['cordon', NODE]);
    assert.equal(cordon.code, 1, `operator cordon: expected exit 1, saw ${show(cordon)}`);
    assert.match(cordon.stderr, /may not update nodes/, show(cordon));
    const node = berthJson<{ spec: { unschedulable: boolean } }[]>(cluster.server, ['get', 'nodes'])[0]!;
    assert.equal(node.spec.unschedulable, false, 'the node is still schedulable');
    expectAudit('403 for the operator\'s cordon', since, (a) => a.code === 403 && a.identity === 'tina' && a.verb === 'update' && a.resource === 'nodes');

    since = Date.now();
    const escalate = berthAs(tina, ['token', 'create', '--role', 'admin']);
    assert.equal(escalate.code, 1, `operator token create: expected exit 1, saw ${show(escalate)}`);
    assert.equal(escalate.stdout, '', 'no token printed');
    assert.match(escalate.stderr, /may not create tokens/, show(escalate));
    expectAudit('403 for the operator\'s token create', since, (a) => a.code === 403 && a.identity === 'tina' && a.verb === 'create' && a.resource === 'tokens');

    // In its own namespace the operator may exec; that exec is audited with its command line.
    const app = await runningTask(TEAM, 'app');
    since = Date.now();
    const allowed = berthAs(tina, ['-n', TEAM, 'exec', app.metadata.name, '--', 'echo', 'inside-team-a']);
    assert.equal(allowed.code, 0, `operator exec in ${TEAM}: ${show(allowed)}`);
    assert.equal(allowed.stdout.trim(), 'inside-team-a');
    expectAudit('the operator\'s exec with its command', since, (a) => a.code === 200 && a.identity === 'tina' && a.verb === 'exec'
      && a.namespace === TEAM && JSON.stringify(a.command) === JSON.stringify(['echo', 'inside-team-a']));
  });

  test('an admin token scoped to team-a cannot mint an unscoped token, cordon a node or change a namespace\'s policy', async () => {
    const scoped: CliCredential = { token: createToken(['--role', 'admin', '-n', TEAM, '--name', 'sub-admin']), config: cluster.config };
    const since = Date.now();
    const mint = berthAs(scoped, ['token', 'create', '--role', 'admin', '--name', 'escaped']);
    assert.equal(mint.code, 1, `scoped admin token create: expected exit 1, saw ${show(mint)}`);
    assert.equal(mint.stdout, '', 'no token printed');
    assert.match(mint.stderr, /token sub-admin \(admin\) may not create tokens/, show(mint));
    expectAudit('403 for the scoped admin\'s token create', since, (a) => a.code === 403 && a.identity === 'sub-admin' && a.verb === 'create' && a.resource === 'tokens');
    const cordon = berthAs(scoped, ['cordon', NODE]);
    assert.equal(cordon.code, 1, `scoped admin cordon: expected exit 1, saw ${show(cordon)}`);
    const policy = berthAs(scoped, ['apply', '-f', '-'], namespaceDoc('default', 'privileged'));
    assert.equal(policy.code, 1, `scoped admin raises default's level: expected exit 1, saw ${show(policy)}`);
    const ns = await apiJson<{ spec: { policy: string } }>(target, 'GET', '/v1/namespaces/default');
    assert.equal(ns.body.spec.policy, 'baseline', `default keeps its level: ${JSON.stringify(ns.body)}`);
    const own = berthAs(scoped, ['-n', TEAM, 'get', 'services']);
    assert.equal(own.code, 0, `inside ${TEAM} the scoped admin still reads: ${show(own)}`);
  });

  test('a join token and the node certificate it buys are no API credential', async () => {
    const join = createToken(['--role', 'agent', '--name', 'climber']);
    let since = Date.now();
    const asBearer = await apiJson<ErrorBody>(target, 'GET', '/v1/auth/whoami', { token: join });
    assert.equal(asBearer.status, 401, `join token as bearer: expected 401, saw ${asBearer.status} ${JSON.stringify(asBearer.body)}`);
    assert.match(asBearer.body.error.message, /join token/, JSON.stringify(asBearer.body));
    expectAudit('401 for a join token used as a bearer token', since, (a) => a.code === 401 && a.identity === '' && /join token/.test(a.message ?? ''));

    const req = await clientCsr('climber', ['admin']);
    const gateway = (cluster as ClusterStatus & { gateway: string }).gateway;
    const joined = await joinOnce(gateway, readFileSync(cluster.ca, 'utf8'), { token: join, nodeName: 'climber', csr: req.csr });
    assert.ok(joined.ok, `the join token buys a node certificate: ${describeJoin(joined)}`);
    if (!joined.ok) return;
    since = Date.now();
    const asClient = await apiJson<ErrorBody>(target, 'GET', '/v1/auth/whoami', { token: null, client: { cert: joined.certificate, key: req.keyPem } });
    assert.equal(asClient.status, 401, `node certificate at the API: expected 401, saw ${asClient.status} ${JSON.stringify(asClient.body)}`);
    assert.match(asClient.body.error.message, /node certificate is not an API credential/, JSON.stringify(asClient.body));
    expectAudit('401 for a node certificate at the API', since, (a) => a.code === 401 && a.identity === '' && /node certificate/.test(a.message ?? ''));
  });

  test('a watch URL with dot segments or a leading // does not escape the token\'s namespaces', async () => {
    const nosy = createToken(['--role', 'viewer', '-n', TEAM, '--name', 'nosy']);
    const caPem = readFileSync(cluster.ca, 'utf8');
    const direct = await rawGet(cluster.server, caPem, '/v1/namespaces/default/services?watch=1', nosy);
    assert.equal(direct.status, 403, `the plain watch of default is refused: ${direct.status} ${direct.firstChunk}`);
    const leaks: string[] = [];
    for (const path of [
      `/v1/namespaces/${TEAM}/../default/services?watch=1`,
      `/v1/namespaces/${TEAM}/%2e%2e/default/services?watch=1`,
      '//x/v1/namespaces/default/services?watch=1',
      '//x/v1/tasks?watch=1',
    ]) {
      const r = await rawGet(cluster.server, caPem, path, nosy);
      if (r.status < 400 || r.firstChunk.includes('"namespace":"default"')) leaks.push(`GET ${path} -> ${r.status} ${r.firstChunk.slice(0, 160)}`);
    }
    assert.deepEqual(leaks, [],
      `watch path scoping (routes-watch.ts, auth-hooks.ts): a viewer scoped to ${TEAM} streams another namespace's objects. `
      + 'The router matches no route for these paths, so the auth hook only authenticates (an unknown route skips authorization), '
      + 'then the ?watch=1 hook resolves the path with new URL(req.url, base), which removes "..", "%2e%2e" and a leading "//host", '
      + 'and streams the resolved list. Expected 403/404 for each; leaks:\n' + leaks.join('\n'));
  });

  test('baseline (default) refuses capAdd SYS_ADMIN and seccomp unconfined with 400 BERTH_ERR_POLICY_VIOLATION naming field, value and level', async () => {
    const cases = [
      { name: 'capadd', template: { security: { capAdd: ['SYS_ADMIN'] } }, field: 'spec.template.security.capAdd[0]', value: 'SYS_ADMIN' },
      { name: 'unconfined', template: { security: { seccomp: 'unconfined' } }, field: 'spec.template.security.seccomp', value: 'unconfined' },
    ];
    for (const c of cases) {
      const since = Date.now();
      const r = await apiJson<ErrorBody>(target, 'PUT', `/v1/namespaces/default/services/${c.name}`, { body: service(c.name, 'default', c.template) });
      assert.equal(r.status, 400, `${c.name} in baseline: expected 400, saw ${r.status} ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'BERTH_ERR_POLICY_VIOLATION', JSON.stringify(r.body));
      assert.equal(r.body.error.field, c.field, JSON.stringify(r.body));
      assert.match(r.body.error.message, new RegExp(`${c.field.replace(/[[\].]/g, '\\$&')}: ${c.value} is not allowed at policy level baseline`), JSON.stringify(r.body));
      const cli = berthAs(admin, ['apply', '-f', '-'], JSON.stringify(service(c.name, 'default', c.template)));
      assert.equal(cli.code, 1, `CLI apply of ${c.name}: expected exit 1, saw ${show(cli)}`);
      assert.match(cli.stderr, /policy level baseline/, show(cli));
      expectAudit(`400 policy refusal of ${c.name}`, since, (a) => a.code === 400 && a.identity === adminName && a.resource === 'services'
        && a.name === c.name && /POLICY|policy level baseline/.test(a.message ?? ''));
      assert.equal((await apiJson(target, 'GET', `/v1/namespaces/default/services/${c.name}`)).status, 404, `${c.name} was not stored`);
    }
  });

  test('a restricted namespace refuses uid 0 and a template without capDrop ALL, and runs a non-root one that drops ALL', async () => {
    const ns = berthAs(admin, ['apply', '-f', '-'], namespaceDoc(RESTRICTED_NS, 'restricted'));
    assert.equal(ns.code, 0, `admin applies namespace ${RESTRICTED_NS}: ${show(ns)}`);
    const refusals = [
      { why: 'uid 0', template: { user: '0:0', security: { capDrop: ['ALL'] } }, field: 'spec.template.user', value: '0:0' },
      { why: 'no capDrop ALL', template: { user: '1000:1000' }, field: 'spec.template.security.capDrop', value: '<unset>' },
    ];
    for (const c of refusals) {
      const r = await apiJson<ErrorBody>(target, 'PUT', `/v1/namespaces/${RESTRICTED_NS}/services/strict`, { body: service('strict', RESTRICTED_NS, c.template) });
      assert.equal(r.status, 400, `${c.why} in restricted: expected 400, saw ${r.status} ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'BERTH_ERR_POLICY_VIOLATION');
      assert.equal(r.body.error.field, c.field, JSON.stringify(r.body));
      assert.ok(r.body.error.message.includes(`${c.field}: ${c.value} is not allowed at policy level restricted`), `message names field, value and level: ${JSON.stringify(r.body)}`);
    }
    const ok = await apiJson(target, 'PUT', `/v1/namespaces/${RESTRICTED_NS}/services/strict`,
      { body: service('strict', RESTRICTED_NS, { user: '1000:1000', security: { capDrop: ['ALL'] } }) });
    assert.ok(ok.status === 200 || ok.status === 201, `compliant template: expected 200/201, saw ${ok.status} ${JSON.stringify(ok.body)}`);
    const task = await runningTask(RESTRICTED_NS, 'strict');
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${task.status.pid}/status`, 'utf8'))?.[1];
    assert.equal(uid, '1000', 'the container runs as uid 1000');
  });

  test('raising default to privileged lets SYS_ADMIN in; lowering it to restricted leaves the task running and describe lists the service', async () => {
    const privileged = berthAs(admin, ['apply', '-f', '-'], namespaceDoc('default', 'privileged'));
    assert.equal(privileged.code, 0, `default -> privileged: ${show(privileged)}`);
    try {
      const applied = berthAs(admin, ['apply', '-f', '-'], JSON.stringify(service('sysadmin', 'default', { security: { capAdd: ['SYS_ADMIN'] } })));
      assert.equal(applied.code, 0, `SYS_ADMIN in a privileged namespace: ${show(applied)}`);
      const task = await runningTask('default', 'sysadmin');
      const capEff = BigInt(`0x${/^CapEff:\s+([0-9a-f]+)/m.exec(readFileSync(`/proc/${task.status.pid}/status`, 'utf8'))![1]}`);
      assert.ok((capEff >> 21n) & 1n, `the container holds CAP_SYS_ADMIN (CapEff ${capEff.toString(16)})`);

      const restricted = berthAs(admin, ['apply', '-f', '-'], namespaceDoc('default', 'restricted'));
      assert.equal(restricted.code, 0, `default -> restricted: ${show(restricted)}`);
      assert.match(restricted.stderr, /sysadmin/, `apply warns about the service that now breaks the level: ${show(restricted)}`);
      const described = berthAs(admin, ['describe', 'namespace', 'default']);
      assert.equal(described.code, 0, show(described));
      assert.match(described.stdout, /Policy:\s+restricted/, described.stdout);
      assert.match(described.stdout, /sysadmin:\n\s+spec\.template\.security\.capAdd\[0\]: SYS_ADMIN is not allowed at policy level restricted/, described.stdout);
      const after = berthJson<Task[]>(cluster.server, ['get', 'tasks', '--service', 'sysadmin']);
      assert.deepEqual(after.map((t) => [t.metadata.name, t.status.phase, t.status.pid]), [[task.metadata.name, 'running', task.status.pid]],
        'the running task is left alone by the level change');
      assert.ok(pidAlive(task.status.pid!), `pid ${task.status.pid} still alive`);
    } finally {
      berthAs(admin, ['apply', '-f', '-'], namespaceDoc('default', 'baseline'));
    }
  });

  test('a service name smuggling %2F into a key path is refused 400', async () => {
    const r = await apiJson<ErrorBody>(target, 'PUT', '/v1/namespaces/default/services/db%2Frevisions%2F1/scale', { body: { replicas: 3 } });
    assert.equal(r.status, 400, `PUT .../db%2Frevisions%2F1/scale: expected 400, saw ${r.status} ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, 'BERTH_ERR_INVALID_NAME', JSON.stringify(r.body));
    const services = berthJson<Service[]>(cluster.server, ['get', 'services']);
    assert.ok(!services.some((s) => s.metadata.name.includes('/')), `no service with a slash: ${services.map((s) => s.metadata.name)}`);
  });

  test('the audit log has a line for each refusal and for the exec; a viewer may not read it', async () => {
    const r = berthAs(admin, ['audit', '-o', 'json']);
    assert.equal(r.code, 0, `admin audit: ${show(r)}`);
    const records = JSON.parse(r.stdout) as AuditRecord[];
    const missing = unmatchedExpectations(records, audited);
    const seen = records.filter((a) => a.code !== 200 || a.verb === 'exec')
      .map((a) => `${a.time} ${a.code} ${a.identity || '<none>'} ${a.verb} ${a.resource} ${a.namespace ?? ''}/${a.name ?? ''} ${a.message ?? ''}`);
    assert.deepEqual(missing.map((m) => m.what), [], `expected an audit line for each; seen:\n${seen.join('\n')}`);

    const viewer = berthAs({ token: viewerToken, config: cluster.config }, ['audit']);
    assert.equal(viewer.code, 1, `viewer audit: expected exit 1, saw ${show(viewer)}`);
    assert.match(viewer.stderr, /token vera \(viewer\) may not get audit/, show(viewer));
    const api = await apiJson<ErrorBody>(target, 'GET', '/v1/audit', { token: viewerToken });
    assert.equal(api.status, 403, `viewer GET /v1/audit: expected 403, saw ${api.status}`);
  });
});
