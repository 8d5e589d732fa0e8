import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeConnectError, unauthenticatedHint, type ConnectErrorContext } from '../../control-plane/cli/client.js';
import { FakeApi, runBerth } from '../support/fake-api.js';
import { makeTestPki, type TestPki } from '../support/test-pki.js';

const VERSION = { status: 200, body: { version: '0.1.0' } };
const UNAUTHENTICATED = { status: 401, body: { error: { code: 'BERTH_ERR_UNAUTHENTICATED', message: 'authentication required' } } };

/** writeConfigFile writes a config for the fake and returns its path. */
function writeConfigFile(pki: TestPki, name: string, fields: Record<string, string>): string {
  const path = join(pki.dir, name);
  writeFileSync(path, JSON.stringify({ apiVersion: 'berth/v1', kind: 'Config', ...fields }), { mode: 0o600 });
  return path;
}

describe('berth over TLS', () => {
  let pki: TestPki;
  const servers: FakeApi[] = [];
  /** serve starts a fake control plane that is torn down after the suite. */
  const serve = async (api: FakeApi): Promise<FakeApi> => {
    servers.push(api);
    await api.start();
    api.routes.set('GET /v1/version', VERSION);
    return api;
  };
  let api: FakeApi;
  before(async () => {
    pki = makeTestPki();
    api = await serve(new FakeApi({ key: pki.server.key, cert: pki.server.cert, ca: pki.ca.cert }));
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    pki.dispose();
  });
  beforeEach(() => {
    api.reset();
    api.routes.set('GET /v1/version', VERSION);
  });

  it('works with the cluster CA from the config, and sends the config\'s token', async () => {
    const config = writeConfigFile(pki, 'trusted.json', { server: api.url, certificateAuthorityFile: pki.ca.certPath, token: 'bt1_file' });
    const r = await runBerth(['--config', config, 'version']);
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, 'Client Version: 0.1.0\nServer Version: 0.1.0\n', '']);
    assert.equal(api.requests[0]!.auth, 'Bearer bt1_file');
  });

  it('a CA that did not sign the server\'s certificate gives a clear line and exit 1', async () => {
    const config = writeConfigFile(pki, 'wrong-ca.json', { server: api.url, certificateAuthority: pki.otherCa.cert });
    const r = await runBerth(['version'], { env: { BERTH_CONFIG: config } });
    assert.equal(r.code, 1);
    // this fake sends the CA along with its certificate (it verifies clients with it), hence IN_CHAIN
    assert.equal(r.stderr, `error: cannot reach the control plane at ${api.url}: the server's certificate is not signed by the configured CA (SELF_SIGNED_CERT_IN_CHAIN); check certificateAuthority in ${config}\n`);
    assert.equal(api.requests.length, 0, 'nothing reached the server');
  });

  it('a server that sends only its own certificate: UNABLE_TO_VERIFY_LEAF_SIGNATURE, same advice', async () => {
    const leafOnly = await serve(new FakeApi({ key: pki.server.key, cert: pki.server.cert }));
    const config = writeConfigFile(pki, 'leaf-only.json', { server: leafOnly.url, certificateAuthorityFile: pki.otherCa.certPath });
    const r = await runBerth(['--config', config, 'version']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `error: cannot reach the control plane at ${leafOnly.url}: the server's certificate is not signed by the configured CA (UNABLE_TO_VERIFY_LEAF_SIGNATURE); check certificateAuthorityFile in ${config}\n`);
  });

  it('without any CA configured, the system CAs apply and the advice is to use a config', async () => {
    const r = await runBerth(['--server', api.url, 'version']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `error: cannot reach the control plane at ${api.url}: the server's certificate is not signed by a CA this machine trusts (SELF_SIGNED_CERT_IN_CHAIN); no certificateAuthority is configured: use --config FILE or BERTH_CONFIG with the cluster's CA\n`);
  });

  it('a self-signed server certificate is named as such', async () => {
    const lonely = await serve(new FakeApi({ key: pki.selfSignedServer.key, cert: pki.selfSignedServer.cert }));
    const config = writeConfigFile(pki, 'self-signed.json', { server: lonely.url, certificateAuthorityFile: pki.ca.certPath });
    const r = await runBerth(['--config', config, 'version']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `error: cannot reach the control plane at ${lonely.url}: the server's certificate is self-signed and not the configured CA (DEPTH_ZERO_SELF_SIGNED_CERT); check certificateAuthorityFile in ${config}\n`);
  });

  it('a certificate for another name says which name it was asked for', async () => {
    const elsewhere = await serve(new FakeApi({ key: pki.wrongNameServer.key, cert: pki.wrongNameServer.cert }));
    const config = writeConfigFile(pki, 'wrong-name.json', { server: elsewhere.url, certificateAuthorityFile: pki.ca.certPath });
    const r = await runBerth(['--config', config, 'version']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^error: cannot reach the control plane at ${escape(elsewhere.url)}: the server's certificate is not valid for ${escape(new URL(elsewhere.url).host)}: .*127\\.0\\.0\\.1.* \\(ERR_TLS_CERT_ALTNAME_INVALID\\); connect with a name or address the certificate lists \\(server in ${escape(config)}\\)\\n$`));
  });

  it('presents the configured client certificate (its CN reaches the server)', async () => {
    const config = writeConfigFile(pki, 'client-cert.json', {
      server: api.url, certificateAuthorityFile: pki.ca.certPath, clientCertificateFile: pki.client.certPath, clientKeyFile: pki.client.keyPath,
    });
    const r = await runBerth(['--config', config, 'version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(api.requests[0]!.clientCN, 'alice');
    assert.equal(api.requests[0]!.auth, undefined, 'no token was configured');
  });

  it('a server that requires a client certificate and gets none: exit 1 and a hint about the client certificate', async () => {
    const strict = await serve(new FakeApi({ key: pki.server.key, cert: pki.server.cert, ca: pki.ca.cert, requireClientCert: true }));
    const config = writeConfigFile(pki, 'no-client-cert.json', { server: strict.url, certificateAuthorityFile: pki.ca.certPath });
    const r = await runBerth(['--config', config, 'version']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^error: cannot reach the control plane at ${escape(strict.url)}: .*client certificate.*\\n$`));
  });

  it('https:// to a plain HTTP server says the server does not speak TLS', async () => {
    const plain = await serve(new FakeApi());
    const url = plain.url.replace('http:', 'https:');
    const r = await runBerth(['--server', url, 'version']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `error: cannot reach the control plane at ${url}: the server does not speak TLS at this address (ERR_SSL_WRONG_VERSION_NUMBER); if it serves plain HTTP, use http://${new URL(url).host}\n`);
  });

  it('a 401 without any credential prints the server\'s message and how to pass one, exit 1', async () => {
    api.routes.set('GET /v1/nodes', UNAUTHENTICATED);
    const config = writeConfigFile(pki, 'no-credential.json', { server: api.url, certificateAuthorityFile: pki.ca.certPath });
    const r = await runBerth(['--config', config, 'get', 'nodes']);
    assert.deepEqual([r.code, r.stdout, r.stderr], [1, '', 'error: authentication required; no credential: pass --token, set BERTH_TOKEN or use --config\n']);
  });

  it('a 401 with a token says which token was refused', async () => {
    api.routes.set('GET /v1/nodes', UNAUTHENTICATED);
    const config = writeConfigFile(pki, 'refused-token.json', { server: api.url, certificateAuthorityFile: pki.ca.certPath });
    const r = await runBerth(['--config', config, 'get', 'nodes'], { env: { BERTH_TOKEN: 'bt1_old' } });
    assert.deepEqual([r.code, r.stderr], [1, 'error: authentication required; the token (BERTH_TOKEN) was not accepted (expired or revoked?)\n']);
  });

  it('a watch stream uses the same CA, client certificate and token', async () => {
    api.routes.set('GET /v1/namespaces/default/services?watch=1', {
      status: 200,
      ndjson: [{ type: 'ADDED', object: { kind: 'Service', metadata: { name: 'web', createdAt: '2025-01-01T00:00:00Z' }, spec: { replicas: 1, template: { image: 'busybox' } } } }],
    });
    const config = writeConfigFile(pki, 'watch.json', {
      server: api.url, certificateAuthorityFile: pki.ca.certPath, token: 'bt1_watch', clientCertificateFile: pki.client.certPath, clientKeyFile: pki.client.keyPath,
    });
    const r = await runBerth(['--config', config, 'get', 'services', '-w', '-o', 'json', '--timeout', '10']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).object.metadata.name, 'web');
    assert.deepEqual([api.requests[0]!.auth, api.requests[0]!.clientCN], ['Bearer bt1_watch', 'alice']);
  });

  it('a watch refused with 401 carries the same hint', async () => {
    api.routes.set('GET /v1/namespaces/default/events?watch=1', UNAUTHENTICATED);
    const config = writeConfigFile(pki, 'watch-401.json', { server: api.url, certificateAuthorityFile: pki.ca.certPath });
    const r = await runBerth(['--config', config, 'events', '-w', '--timeout', '10']);
    assert.deepEqual([r.code, r.stderr], [1, 'error: authentication required; no credential: pass --token, set BERTH_TOKEN or use --config\n']);
  });
});

describe('describeConnectError', () => {
  const withCa: ConnectErrorContext = { server: 'https://10.0.0.1:7480', tls: { ca: true, clientCertificate: false }, origin: { ca: 'certificateAuthority in /c', server: '--server' } };
  const withCert: ConnectErrorContext = { ...withCa, tls: { ca: true, clientCertificate: true }, origin: { ...withCa.origin, clientCertificate: 'clientCertificate in /c' } };
  const plain: ConnectErrorContext = { server: 'http://10.0.0.1:7480', tls: { ca: false, clientCertificate: false }, origin: {} };
  const coded = (code: string, message = code): Error => Object.assign(new Error(message), { code });
  const cases: [string, unknown, ConnectErrorContext, string][] = [
    ['a refused connection stays its bare code', coded('ECONNREFUSED'), plain, 'ECONNREFUSED'],
    ['an error wrapped in a cause is found', Object.assign(new Error('fetch failed'), { cause: coded('ENOTFOUND') }), plain, 'ENOTFOUND'],
    ['an expired server certificate', coded('CERT_HAS_EXPIRED'), withCa, 'the server\'s certificate has expired (CERT_HAS_EXPIRED); check this machine\'s clock, or renew the control plane\'s certificate'],
    ['a certificate not valid yet', coded('CERT_NOT_YET_VALID'), withCa, 'the server\'s certificate is not valid yet (CERT_NOT_YET_VALID); check this machine\'s clock'],
    ['an unknown issuer', coded('UNABLE_TO_GET_ISSUER_CERT_LOCALLY'), withCa, 'the server\'s certificate is not signed by the configured CA (UNABLE_TO_GET_ISSUER_CERT_LOCALLY); check certificateAuthority in /c'],
    ['a reset during the handshake, no client certificate', coded('ECONNRESET', 'Client network socket disconnected before secure TLS connection was established'), withCa,
      'the server closed the connection during or right after the TLS handshake (ECONNRESET); it may require a client certificate (clientCertificate and clientKey in the config)'],
    ['a reset during the handshake with a client certificate', coded('ECONNRESET'), withCert,
      'the server closed the connection during or right after the TLS handshake (ECONNRESET); it may have refused the client certificate: check clientCertificate in /c'],
    ['a closed plain-HTTP connection suggests https', coded('UND_ERR_SOCKET', 'other side closed'), plain, 'the server closed the connection (UND_ERR_SOCKET); if it serves HTTPS, use https://10.0.0.1:7480'],
    ['the server refusing the client certificate', coded('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'), withCert, 'the server refused the client certificate (ERR_SSL_TLSV1_ALERT_UNKNOWN_CA); check clientCertificate in /c'],
    ['the server requiring a client certificate', coded('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'), withCa, 'the server requires a client certificate or a token (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED); pass --token, set BERTH_TOKEN or use --config'],
  ];
  for (const [name, err, where, want] of cases) {
    it(name, () => assert.equal(describeConnectError(err, where), want));
  }
});

describe('unauthenticatedHint', () => {
  const none = { ca: false, clientCertificate: false };
  const cases: [string, Parameters<typeof unauthenticatedHint>[0], string][] = [
    ['no credential', { token: false, tls: none, origin: {} }, 'no credential: pass --token, set BERTH_TOKEN or use --config'],
    ['a token from the config', { token: true, tls: none, origin: { token: 'token in /c' } }, 'the token (token in /c) was not accepted (expired or revoked?)'],
    ['a client certificate', { token: false, tls: { ca: true, clientCertificate: true }, origin: { clientCertificate: 'clientCertificateFile in /c' } }, 'the client certificate (clientCertificateFile in /c) was not accepted'],
  ];
  for (const [name, sent, want] of cases) {
    it(name, () => assert.equal(unauthenticatedHint(sent), want));
  }
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
