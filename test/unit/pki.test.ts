import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../common/log.js';
import {
  certificateFacts, certificateSha256, createCsr, distinguishedName, generateKeyPair, issuedBy, NODE_ORGANIZATION, x509,
} from '../../common/x509.js';
import type { ClusterCa as ClusterCaObject } from '../../control-plane/objects/security-types.js';
import {
  CA_VALIDITY_MS, CLOCK_SKEW_MS, ClusterCa, DEFAULT_NODE_CERT_TTL_MS, SERVING_CERT_VALIDITY_MS, SERVING_DNS_NAME, type SignOutcome,
} from '../../control-plane/security/pki.js';
import { createSealingKey } from '../../control-plane/security/sealing-key.js';
import { CLUSTER_CA_KEY } from '../../control-plane/store/keys.js';
import { MemoryStore } from '../support/memory-store.js';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
/** X.509 times have whole seconds; the signer reads the clock a moment after the test does. */
const TIME_SLACK_MS = 5_000;

let ca: ClusterCa;
let foreign: ClusterCa;
before(async () => {
  [ca, foreign] = await Promise.all([ClusterCa.generate(), ClusterCa.generate('someone else CA')]);
});

/** csrFor makes a request with a fresh P-256 key (the agent's way) asking for subject. */
async function csrFor(subject: string | x509.Name): Promise<{ csr: string; publicKeyDer: Buffer }> {
  const key = await generateKeyPair();
  return { csr: await createCsr(key.keys, typeof subject === 'string' ? new x509.Name(subject) : subject), publicKeyDer: Buffer.from(await webcrypto.subtle.exportKey('spki', key.keys.publicKey)) };
}

/** csrWith makes a request whose key uses another algorithm (berth accepts only ECDSA P-256). */
async function csrWith(alg: RsaHashedKeyGenParams | EcKeyGenParams & { hash: string }): Promise<string> {
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=n1', keys, signingAlgorithm: alg });
  return csr.toString('pem');
}

/** tamper flips one byte of a PEM document's DER at offset (negative: from the end). */
function tamper(pem: string, offset: number): string {
  const body = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const der = Buffer.from(body, 'base64');
  const i = offset < 0 ? der.length + offset : offset;
  der[i] = der[i]! ^ 0x01;
  const lines = der.toString('base64').match(/.{1,64}/g)!.join('\n');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${lines}\n-----END CERTIFICATE REQUEST-----\n`;
}

/** signed asserts a sign outcome is a certificate and parses it. */
function signed(r: SignOutcome): X509Certificate {
  assert.ok(r.ok, `expected a certificate, saw refusal: ${r.ok ? '' : r.reason}`);
  return new X509Certificate(r.certificatePem);
}

/** ekus is a certificate's extended key usages (Node names them keyUsage). */
const ekus = (c: X509Certificate): string[] => [...(c.keyUsage ?? [])].sort();
const sans = (c: X509Certificate): string[] => (c.subjectAltName ?? '').split(', ').filter(Boolean).sort();

function assertNear(seen: number, expected: number, what: string): void {
  assert.ok(Math.abs(seen - expected) <= TIME_SLACK_MS,
    `${what}: expected ${new Date(expected).toISOString()} ±${TIME_SLACK_MS} ms, saw ${new Date(seen).toISOString()}`);
}

describe('ClusterCa.generate', () => {
  it('makes a self-signed CA certificate valid for CA_VALIDITY_MS', () => {
    const c = new X509Certificate(ca.certificatePem);
    assert.equal(c.ca, true, 'basicConstraints CA must be true');
    assert.ok(issuedBy(ca.certificatePem, ca.certificatePem), 'the CA must verify as its own issuer');
    const facts = certificateFacts(ca.certificatePem);
    assert.equal(facts.commonName, 'berth cluster CA');
    assert.deepEqual(facts.organizations, ['berth']);
    assertNear(facts.notAfter.getTime(), Date.now() + CA_VALIDITY_MS, 'CA notAfter');
    assertNear(facts.notBefore.getTime(), Date.now() - CLOCK_SKEW_MS, 'CA notBefore');
  });

  it('makes a different CA each time', () => {
    assert.notEqual(ca.sha256, foreign.sha256);
    assert.equal(issuedBy(ca.certificatePem, foreign.certificatePem), false);
  });
});

describe('issueServing', () => {
  it('covers every IP and DNS name given as SANs, plus the serving name, for server auth', async () => {
    const issued = await ca.issueServing(['10.0.0.5', '192.168.1.1', 'cp1.example.com', SERVING_DNS_NAME, 'localhost']);
    const c = new X509Certificate(issued.certificatePem);
    assert.deepEqual(sans(c), [
      'DNS:berth-control-plane', 'DNS:cp1.example.com', 'DNS:localhost', 'IP Address:10.0.0.5', 'IP Address:192.168.1.1',
    ], `SANs seen: ${c.subjectAltName}`);
    assert.deepEqual(ekus(c), [SERVER_AUTH], `extended key usage: expected serverAuth only, saw ${ekus(c).join(', ')}`);
    assert.equal(c.ca, false);
    assert.ok(issuedBy(issued.certificatePem, ca.certificatePem), 'serving certificate must be issued by the CA');
    assert.ok(c.checkPrivateKey(createPrivateKey(issued.privateKeyPem!)), 'the private key returned must match the certificate');
    assert.equal(issued.notAfter.getTime(), Date.parse(c.validTo), 'notAfter returned must be the certificate\'s');
    assertNear(issued.notAfter.getTime(), Date.now() + SERVING_CERT_VALIDITY_MS, 'serving notAfter');
  });

  it('puts an IPv6 address in as an IP SAN, not a DNS name', async () => {
    const c = new X509Certificate((await ca.issueServing(['::1', 'fd00::5'])).certificatePem);
    const seen = sans(c);
    assert.equal(seen.filter((s) => s.startsWith('IP Address:')).length, 2, `expected two IP SANs, saw ${c.subjectAltName}`);
    assert.ok(c.checkIP('::1') !== undefined && c.checkIP('fd00::5') !== undefined, `::1 and fd00::5 must match, SANs ${c.subjectAltName}`);
    assert.equal(seen.filter((s) => s.startsWith('DNS:')).join(), `DNS:${SERVING_DNS_NAME}`);
  });
});

describe('signNode', () => {
  it('names the node and berth:nodes whatever subject the request asked for, client auth only', async () => {
    const { csr, publicKeyDer } = await csrFor(distinguishedName('other', ['admin'], ['prod']));
    const c = signed(await ca.signNode(csr, 'n1'));
    const facts = certificateFacts(c.raw);
    assert.deepEqual({ cn: facts.commonName, o: facts.organizations, ou: facts.units }, { cn: 'n1', o: [NODE_ORGANIZATION], ou: [] });
    assert.deepEqual(ekus(c), [CLIENT_AUTH], `extended key usage: expected clientAuth only, saw ${ekus(c).join(', ')}`);
    assert.equal(c.ca, false);
    assert.ok(Buffer.from(c.publicKey.export({ type: 'spki', format: 'der' })).equals(publicKeyDer), 'the certificate must carry the request\'s key');
    assert.ok(issuedBy(c.raw, ca.certificatePem), 'node certificate must verify against its CA');
    assert.equal(issuedBy(c.raw, foreign.certificatePem), false, 'node certificate must not verify against a foreign CA');
  });

  const ttls: { name: string; ttlMs?: number; expect: number }[] = [
    { name: 'the default ttl', expect: DEFAULT_NODE_CERT_TTL_MS },
    { name: 'a 2 h ttl', ttlMs: 2 * 3600_000, expect: 2 * 3600_000 },
  ];
  for (const t of ttls) {
    it(`expires at now + ${t.name} and starts CLOCK_SKEW_MS in the past`, async () => {
      const { csr } = await csrFor('CN=n1');
      const start = Date.now();
      const r = await ca.signNode(csr, 'n1', t.ttlMs);
      const c = signed(r);
      assertNear(Date.parse(c.validTo), start + t.expect, 'notAfter');
      assertNear(Date.parse(c.validFrom), start - CLOCK_SKEW_MS, 'notBefore');
      assert.ok(r.ok && Math.abs(r.notAfter.getTime() - Date.parse(c.validTo)) < 1000, 'the notAfter returned must be the certificate\'s');
    });
  }

  it('never outlives the CA', async () => {
    const { csr } = await csrFor('CN=n1');
    const c = signed(await ca.signNode(csr, 'n1', 2 * CA_VALIDITY_MS));
    assert.equal(Date.parse(c.validTo), certificateFacts(ca.certificatePem).notAfter.getTime());
  });
});

describe('certificate requests berth refuses, as values', () => {
  const cases: { name: string; csr: () => Promise<string>; reason: RegExp }[] = [
    { name: 'a flipped byte in the signature', csr: async () => tamper((await csrFor('CN=n1')).csr, -1), reason: /signature does not verify/ },
    { name: 'a subject altered after signing', csr: async () => tamper((await csrFor('CN=n1')).csr, 20), reason: /does not verify|not a PEM PKCS#10/ },
    { name: 'an RSA key', csr: () => csrWith({ name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) }), reason: /must be ECDSA P-256/ },
    { name: 'a P-384 key', csr: () => csrWith({ name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' }), reason: /must be ECDSA P-256/ },
    { name: 'garbage text', csr: async () => 'not a request', reason: /not a PEM PKCS#10 request/ },
    { name: 'a certificate instead of a request', csr: async () => ca.certificatePem, reason: /not a PEM PKCS#10 request/ },
  ];
  for (const c of cases) {
    for (const signer of ['signNode', 'signClient'] as const) {
      it(`${signer} refuses ${c.name} with a reason`, async () => {
        const csr = await c.csr();
        const r = signer === 'signNode'
          ? await ca.signNode(csr, 'n1')
          : await ca.signClient(csr, { name: 'alice', role: 'admin', namespaces: [] }, 3600_000);
        assert.equal(r.ok, false, `expected a refusal, saw a certificate for ${c.name}`);
        assert.match(r.ok ? '' : r.reason, c.reason);
      });
    }
  }
});

describe('signClient', () => {
  it('puts the name in CN, the role in O and one OU per namespace, client auth only', async () => {
    const { csr } = await csrFor('CN=whatever, O=admin');
    const c = signed(await ca.signClient(csr, { name: 'alice', role: 'operator', namespaces: ['dev', 'prod'] }, 3600_000));
    const facts = certificateFacts(c.raw);
    assert.deepEqual({ cn: facts.commonName, o: facts.organizations, ou: [...facts.units].sort() }, { cn: 'alice', o: ['operator'], ou: ['dev', 'prod'] });
    assert.deepEqual(ekus(c), [CLIENT_AUTH]);
    assert.ok(issuedBy(c.raw, ca.certificatePem));
    assertNear(Date.parse(c.validTo), Date.now() + 3600_000, 'client notAfter');
  });

  // The name comes from the API body unchecked; special characters must stay inside the CN and
  // never move or swallow the role (O) or the namespaces (OU).
  const names = ['eve, O=admin', 'a+OU=prod', 'x;y', '#lead', ' padded ', 'quote"d', '<angle>', 'back\\slash', 'trailing\\', 'ends with ,'];
  for (const name of names) {
    it(`keeps the name ${JSON.stringify(name)} as the whole common name, role and namespaces intact`, async () => {
      const { csr } = await csrFor('CN=x');
      const c = signed(await ca.signClient(csr, { name, role: 'viewer', namespaces: ['dev'] }, 3600_000));
      const facts = certificateFacts(c.raw);
      assert.deepEqual({ cn: facts.commonName, o: facts.organizations, ou: facts.units }, { cn: name, o: ['viewer'], ou: ['dev'] });
    });
  }
});

describe('certificateFacts', () => {
  it('sha256 is the SHA-256 of the DER, from PEM or DER, and agrees with certificateSha256 and ClusterCa.sha256', async () => {
    const pem = (await ca.issueServing([])).certificatePem;
    const der = new X509Certificate(pem).raw;
    const want = createHash('sha256').update(der).digest('hex');
    assert.equal(certificateFacts(pem).sha256, want, 'from PEM');
    assert.equal(certificateFacts(der).sha256, want, 'from DER');
    assert.equal(certificateSha256(pem), want, 'certificateSha256');
    assert.equal(ca.sha256, createHash('sha256').update(new X509Certificate(ca.certificatePem).raw).digest('hex'), 'ClusterCa.sha256');
  });

  it('throws on something that is not a certificate', () => {
    assert.throws(() => certificateFacts('not a certificate'));
  });
});

describe('issuedBy', () => {
  const cases: { name: string; leaf: () => string; issuer: () => string; expect: boolean }[] = [
    { name: 'own CA', leaf: () => ca.certificatePem, issuer: () => ca.certificatePem, expect: true },
    { name: 'foreign CA', leaf: () => ca.certificatePem, issuer: () => foreign.certificatePem, expect: false },
    { name: 'garbage leaf', leaf: () => 'junk', issuer: () => ca.certificatePem, expect: false },
    { name: 'garbage issuer', leaf: () => ca.certificatePem, issuer: () => 'junk', expect: false },
  ];
  for (const c of cases) {
    it(`is ${c.expect} for ${c.name}`, () => assert.equal(issuedBy(c.leaf(), c.issuer()), c.expect));
  }
});

describe('ClusterCa.loadOrCreate', () => {
  let dir = '';
  before(() => { dir = mkdtempSync(join(tmpdir(), 'berth-pki-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the CA and a 0600 sealing key file on first start, then loads the same CA with that file', async () => {
    const store = new MemoryStore();
    const keyFile = join(dir, 'first', 'sealing.key');
    const first = await ClusterCa.loadOrCreate(store.asStore(), keyFile, silentLogger);
    assert.equal(first.created, true, 'first call must report created');
    assert.ok(existsSync(keyFile), 'the sealing key file must appear');
    const mode = statSync(keyFile).mode & 0o777;
    assert.equal(mode, 0o600, `sealing key file mode: expected 0600, saw 0${mode.toString(8)}`);
    const stored = store.objects.get(CLUSTER_CA_KEY) as ClusterCaObject | undefined;
    assert.ok(stored, `expected an object at ${CLUSTER_CA_KEY}`);
    assert.equal(stored.spec.certificate, first.ca.certificatePem);
    assert.match(stored.spec.sealedKey, /^sealed:v1:/);
    assert.ok(!JSON.stringify(stored).includes('PRIVATE KEY'), 'the stored CA must not hold the private key in clear');

    const second = await ClusterCa.loadOrCreate(store.asStore(), keyFile, silentLogger);
    assert.equal(second.created, false, 'second call must report loaded, not created');
    assert.equal(second.ca.sha256, first.ca.sha256, 'second call must load the same CA');
    // The loaded key is the CA's key: what it signs verifies against the first CA certificate.
    const { csr } = await csrFor('CN=n2');
    const r = await second.ca.signNode(csr, 'n2');
    assert.ok(r.ok && issuedBy(r.certificatePem, first.ca.certificatePem), 'a certificate signed by the loaded CA must verify against the created one');
  });

  it('refuses to start without the sealing key file, telling to copy it', async () => {
    const store = new MemoryStore();
    const keyFile = join(dir, 'deleted.key');
    await ClusterCa.loadOrCreate(store.asStore(), keyFile, silentLogger);
    unlinkSync(keyFile);
    await assert.rejects(ClusterCa.loadOrCreate(store.asStore(), keyFile, silentLogger), (err: Error) => {
      assert.match(err.message, /copy it/, `expected advice to copy the file, saw: ${err.message}`);
      assert.ok(err.message.includes(keyFile), `expected the path ${keyFile}, saw: ${err.message}`);
      return true;
    });
    assert.equal(existsSync(keyFile), false, 'a replacement key file must not be made when the CA exists');
  });

  it('refuses another sealing key file, naming the key ids', async () => {
    const store = new MemoryStore();
    const created = await ClusterCa.loadOrCreate(store.asStore(), join(dir, 'right.key'), silentLogger);
    assert.ok(created.created);
    const wrongFile = join(dir, 'wrong.key');
    const wrong = createSealingKey(wrongFile);
    await assert.rejects(ClusterCa.loadOrCreate(store.asStore(), wrongFile, silentLogger), (err: Error) => {
      assert.ok(err.message.includes(wrong.id), `expected the held key id ${wrong.id}, saw: ${err.message}`);
      return true;
    });
  });

  it('uses the CA another replica created first (create lost the race)', async () => {
    const keyFile = join(dir, 'shared.key');
    const winnerStore = new MemoryStore();
    const winner = await ClusterCa.loadOrCreate(winnerStore.asStore(), keyFile, silentLogger);
    // The loser's first read sees no CA; by the time it creates, the winner's CA is there.
    const loser = new MemoryStore();
    const realCreate = loser.create.bind(loser);
    loser.create = async (key, obj) => {
      loser.objects.set(CLUSTER_CA_KEY, winnerStore.objects.get(CLUSTER_CA_KEY)!);
      return realCreate(key, obj);
    };
    const r = await ClusterCa.loadOrCreate(loser.asStore(), keyFile, silentLogger);
    assert.equal(r.created, false, 'the loser must not report created');
    assert.equal(r.ca.sha256, winner.ca.sha256, 'the loser must use the winner\'s CA');
  });
});
