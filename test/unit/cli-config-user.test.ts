import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUserRequest } from '../../control-plane/cli/config-user.js';
import { loadConfig } from '../../control-plane/cli/config.js';
import { CliError } from '../../control-plane/cli/errors.js';
import { ClusterCa } from '../../control-plane/security/pki.js';
import { createCsr, distinguishedName, generateKeyPair, x509 } from '../../common/x509.js';
import { FakeApi, runBerth, type Recorded, type Reply } from '../support/fake-api.js';

const FORBIDDEN = { status: 403, body: { error: { code: 'BERTH_ERR_FORBIDDEN', message: 'token olga (operator) may not create certificates' } } };
const DAY_S = 24 * 3600;

interface CertBody { csr: string; name: string; role: string; namespaces?: string[]; ttlSeconds?: number }

describe('berth config create-user against a fake control plane that signs with a real CA', () => {
  let ca: ClusterCa;
  let api: FakeApi;
  let dir: string;
  let adminConfig: string;

  /** sign answers POST /v1/certificates as the control plane does: the CA signs the request's key for name, role and namespaces. */
  const sign = async (req: Recorded): Promise<Reply> => {
    const b = req.body as CertBody;
    const r = await ca.signClient(b.csr, { name: b.name, role: b.role, namespaces: b.namespaces ?? [] }, (b.ttlSeconds ?? 30 * DAY_S) * 1000);
    if (!r.ok) return { status: 400, body: { error: { code: 'BERTH_ERR_VALIDATION', message: `csr: ${r.reason}` } } };
    return { status: 201, body: { certificate: r.certificatePem, ca: ca.certificatePem, expiresAt: r.notAfter.toISOString() } };
  };

  before(async () => {
    ca = await ClusterCa.generate();
    const serving = await ca.issueServing(['127.0.0.1']);
    // client certificates are asked for but not required, so the admin's token gets through too
    api = new FakeApi({ key: serving.privateKeyPem!, cert: serving.certificatePem, ca: ca.certificatePem });
    await api.start();
    dir = mkdtempSync(join(tmpdir(), 'berth-create-user-'));
    adminConfig = join(dir, 'admin.json');
    writeFileSync(adminConfig, JSON.stringify({ apiVersion: 'berth/v1', kind: 'Config', server: api.url, certificateAuthority: ca.certificatePem, token: 'bt1_admin' }));
  });
  after(async () => {
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    api.reset();
    api.routes.set('POST /v1/certificates', sign);
  });
  const berth = (args: string[]): ReturnType<typeof runBerth> => runBerth(['--config', adminConfig, ...args]);
  const certBody = (i = 0): CertBody => api.requests[i]!.body as CertBody;

  it('sends a CSR for CN=NAME with role, every -n and the ttl in seconds, never the key', async () => {
    const out = join(dir, 'alice.yaml');
    const r = await berth(['-n', 'team-a', 'config', 'create-user', 'alice', '--role', 'operator', '-n', 'team-b', '-n', 'team-a', '--ttl', '7d', '--output', out]);
    assert.deepEqual([r.code, r.stdout], [0, ''], r.stderr);
    assert.equal(api.requests.length, 1);
    assert.equal(api.requests[0]!.auth, 'Bearer bt1_admin');
    const { csr, ...rest } = certBody();
    assert.deepEqual(rest, { name: 'alice', role: 'operator', namespaces: ['team-a', 'team-b'], ttlSeconds: 7 * DAY_S });
    assert.match(csr, /^-----BEGIN CERTIFICATE REQUEST-----\n/);
    const request = new x509.Pkcs10CertificateRequest(csr);
    assert.deepEqual(request.subjectName.getField('CN'), ['alice'], `subject ${request.subject}`);
    assert.equal(await request.verify(), true, 'the CSR proves possession of its key');
    assert.doesNotMatch(JSON.stringify(api.requests[0]!.body), /PRIVATE KEY/);
    const expiresAt = new X509Certificate(loadConfig(out).clientCertificate!).validTo;
    assert.equal(r.stderr, `wrote ${out}: certificate for alice (operator, namespaces team-a,team-b), expires ${new Date(expiresAt).toISOString()}\n`);
  });

  it('writes a 0600 config that loads: this server, the returned CA, a key that matches the certificate, no token', async () => {
    const out = join(dir, 'new', 'sub', 'bob.yaml');
    const r = await berth(['config', 'create-user', 'bob', '--role', 'viewer', '-n', 'team-a', '--output', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(statSync(out).mode & 0o777, 0o600, 'the file holds a private key');
    assert.equal(statSync(join(dir, 'new')).mode & 0o777, 0o700, 'a directory made for it is private too');
    const config = loadConfig(out);
    assert.deepEqual(Object.keys(config), ['apiVersion', 'kind', 'server', 'certificateAuthority', 'clientCertificate', 'clientKey', 'namespace']);
    assert.equal(config.server, api.url);
    assert.equal(config.certificateAuthority, ca.certificatePem);
    assert.equal(config.namespace, 'team-a', 'a scoped user starts in their first namespace');
    const cert = new X509Certificate(config.clientCertificate!);
    assert.equal(cert.checkPrivateKey(createPrivateKey(config.clientKey!)), true, 'clientKey belongs to clientCertificate');
    assert.equal(cert.publicKey.export({ format: 'pem', type: 'spki' }), createPublicKey(createPrivateKey(config.clientKey!)).export({ format: 'pem', type: 'spki' }),
      'the certificate\'s public key is the one derived from clientKey');
    assert.match(cert.subject, /CN=bob/);
    assert.match(cert.subject, /O=viewer/);
  });

  it('the written config authenticates with its certificate alone', async () => {
    const out = join(dir, 'carol.yaml');
    assert.equal((await berth(['config', 'create-user', 'carol', '--role', 'admin', '--output', out])).code, 0);
    api.routes.set('GET /v1/auth/whoami', { status: 200, body: { name: 'carol', role: 'admin', namespaces: ['*'], via: 'certificate' } });
    const r = await runBerth(['--config', out, 'auth', 'whoami']);
    assert.deepEqual([r.code, r.stdout], [0, 'carol (admin) via certificate, namespaces: all\n'], r.stderr);
    const seen = api.requests.at(-1)!;
    assert.deepEqual([seen.clientCN, seen.auth], ['carol', undefined], 'the client certificate, and no token, was presented');
  });

  it('without -n asks for no namespaces, says "all" and writes no default namespace', async () => {
    const out = join(dir, 'dora.yaml');
    const r = await berth(['config', 'create-user', 'dora', '--role', 'viewer', '--output', out]);
    assert.equal(r.code, 0, r.stderr);
    const { csr: _csr, ...rest } = certBody();
    assert.deepEqual(rest, { name: 'dora', role: 'viewer' });
    assert.match(r.stderr, /^wrote .*dora\.yaml: certificate for dora \(viewer, namespaces all\), expires \d{4}-\d\d-\d\dT/);
    assert.equal(loadConfig(out).namespace, undefined);
  });

  it('refuses to overwrite an existing file (exit 2, nothing sent); --force replaces it at 0600', async () => {
    const out = join(dir, 'erin.yaml');
    writeFileSync(out, 'keep me\n', { mode: 0o644 });
    chmodSync(out, 0o644);
    const refused = await berth(['config', 'create-user', 'erin', '--role', 'viewer', '--output', out]);
    assert.deepEqual([refused.code, refused.stdout, refused.stderr], [2, '', `error: --output ${out}: the file exists; pass --force to replace it\n`]);
    assert.equal(api.requests.length, 0, 'no certificate is issued for a file that cannot be written');
    assert.equal(readFileSync(out, 'utf8'), 'keep me\n');

    const forced = await berth(['config', 'create-user', 'erin', '--role', 'viewer', '--output', out, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(statSync(out).mode & 0o777, 0o600, 'the older file\'s looser mode does not survive');
    assert.match(loadConfig(out).clientCertificate!, /BEGIN CERTIFICATE/);
  });

  it('refuses a directory as --output even with --force', async () => {
    const out = join(dir, 'a-directory');
    mkdirSync(out);
    const r = await berth(['config', 'create-user', 'fred', '--role', 'viewer', '--output', out, '--force']);
    assert.deepEqual([r.code, r.stderr], [2, `error: --output ${out}: is a directory\n`]);
    assert.equal(api.requests.length, 0);
  });

  it('a 403 exits 1 with the server\'s message, nothing on stdout and no file', async () => {
    api.routes.set('POST /v1/certificates', FORBIDDEN);
    const out = join(dir, 'gina.yaml');
    const r = await berth(['config', 'create-user', 'gina', '--role', 'admin', '--output', out]);
    assert.deepEqual([r.code, r.stdout, r.stderr], [1, '', 'error: token olga (operator) may not create certificates\n']);
    assert.throws(() => statSync(out), /ENOENT/);
  });

  it('exits 1 and writes nothing when the certificate is not for the key it made', async () => {
    const stranger = await generateKeyPair();
    const strangerCsr = await createCsr(stranger.keys, distinguishedName('hank'));
    api.routes.set('POST /v1/certificates', (req) => sign({ ...req, body: { ...(req.body as CertBody), csr: strangerCsr } }));
    const out = join(dir, 'hank.yaml');
    const r = await berth(['config', 'create-user', 'hank', '--role', 'viewer', '--output', out]);
    assert.deepEqual([r.code, r.stdout, r.stderr], [1, '', 'error: the server\'s certificate is not for the key this request was made with\n']);
    assert.throws(() => statSync(out), /ENOENT/);
  });

  it('exits 1 when the certificate is not signed by the CA in the answer', async () => {
    const other = await ClusterCa.generate('another CA');
    api.routes.set('POST /v1/certificates', async (req) => {
      const reply = await sign(req);
      return { ...reply, body: { ...(reply.body as object), ca: other.certificatePem } };
    });
    const r = await berth(['config', 'create-user', 'ivan', '--role', 'viewer', '--output', join(dir, 'ivan.yaml')]);
    assert.deepEqual([r.code, r.stderr], [1, 'error: the server\'s certificate is not signed by the CA it answered with\n']);
  });

  const usage: [string, string[], RegExp][] = [
    ['the agent role', ['jo', '--role', 'agent', '--output', 'x'], /--role: must be one of viewer, operator, admin, got "agent"/],
    ['no role', ['jo', '--output', 'x'], /required option '--role <role>' not specified/],
    ['no --output', ['jo', '--role', 'viewer'], /required option '--output <file>' not specified/],
    ['no NAME', ['--role', 'viewer', '--output', 'x'], /missing required argument 'name'/],
    ['an empty NAME', ['', '--role', 'viewer', '--output', 'x'], /NAME must not be empty/],
    ['a ttl without a unit', ['jo', '--role', 'viewer', '--ttl', '3600', '--output', 'x'], /--ttl: expected a duration like 90s, 10m, 2h, 7d or 1h30m, got "3600"/],
  ];
  for (const [name, args, message] of usage) {
    it(`exits 2 and sends nothing on ${name}`, async () => {
      const r = await berth(['config', 'create-user', ...args]);
      assert.deepEqual([r.code, r.stdout], [2, '']);
      assert.match(r.stderr, message);
      assert.equal(api.requests.length, 0);
    });
  }

  it('--help shows the usage and how -n scopes the certificate', async () => {
    const r = await runBerth(['config', 'create-user', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Usage: berth config create-user NAME --role ROLE \[--namespace NS\]\.\.\. \[--ttl DURATION\] --output FILE \[--force\]/);
    assert.match(r.stdout, /--namespace NS \(the global -n\), repeated, limits the certificate/);
  });
});

describe('createUserRequest', () => {
  it('leaves out namespaces and ttl when not given', () => {
    assert.deepEqual(createUserRequest('ann', { role: 'viewer', output: 'f' }, []), { name: 'ann', role: 'viewer' });
  });

  it('throws a usage error (exit 2) for a role a person cannot have', () => {
    assert.throws(() => createUserRequest('ann', { role: 'agent', output: 'f' }, []), (err: unknown) => err instanceof CliError && err.exitCode === 2);
  });
});
