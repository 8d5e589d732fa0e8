/**
 * X.509 on Node's webcrypto through @peculiar/x509 (no hand-written ASN.1): ECDSA P-256 keys,
 * certificate requests, and the facts both sides read off a certificate. The control plane signs
 * (control-plane/security/pki.ts); the agent makes its key and request here and never sends the key.
 */
// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the Reflect
// metadata polyfill loaded before it; importing it here keeps that requirement in one place.
import 'reflect-metadata';
import { createHash, createPrivateKey, webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** ECDSA_P256 is the one key and signature algorithm berth uses for every certificate. */
export const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** NODE_ORGANIZATION is the subject O of node certificates: they identify agents, never API users. */
export const NODE_ORGANIZATION = 'berth:nodes';

/** KeyPairPem is a private key (PKCS#8 PEM) with its public key held as a CryptoKey for signing. */
export interface KeyPair {
  privateKeyPem: string;
  keys: CryptoKeyPair;
}

/** generateKeyPair makes a new ECDSA P-256 key pair. */
export async function generateKeyPair(): Promise<KeyPair> {
  const keys = await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']) as CryptoKeyPair;
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const privateKeyPem = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
  return { privateKeyPem, keys };
}

/** importKeyPair loads a PKCS#8 (or SEC1) PEM private key as a signing key pair. */
export async function importKeyPair(privateKeyPem: string): Promise<KeyPair> {
  const key = createPrivateKey(privateKeyPem);
  const pkcs8 = key.export({ format: 'der', type: 'pkcs8' });
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, ECDSA_P256, true, ['sign']);
  const jwk = key.export({ format: 'jwk' });
  const publicKey = await webcrypto.subtle.importKey('jwk', { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, ECDSA_P256, true, ['verify']);
  return { privateKeyPem: key.export({ format: 'pem', type: 'pkcs8' }).toString(), keys: { privateKey, publicKey } };
}

/**
 * distinguishedName builds a subject from a common name, organizations and units as typed UTF-8
 * attributes, never as `CN=...` text and never through the string form of JSON names (which
 * reads a leading `#` as hex and unescapes backslashes): no value can turn into another attribute.
 */
export function distinguishedName(commonName: string, organizations: string[] = [], units: string[] = []): x509.Name {
  const utf8 = (value: string) => [{ utf8String: value }];
  return new x509.Name([{ CN: utf8(commonName) }, ...organizations.map((o) => ({ O: utf8(o) })), ...units.map((u) => ({ OU: utf8(u) }))]);
}

/** createCsr makes a PKCS#10 request (PEM) for subject, signed by keys (proof of possession). */
export async function createCsr(keys: CryptoKeyPair, subject: x509.Name): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: subject, keys, signingAlgorithm: ECDSA_P256 });
  return csr.toString('pem');
}

/** CertificateFacts is what berth reads off a certificate. */
export interface CertificateFacts {
  commonName: string;
  organizations: string[];
  units: string[];
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  /** sha256 is the hex SHA-256 of the DER encoding (what join tokens pin for the CA). */
  sha256: string;
}

/** subjectParts splits an X.509 name into its CN, O and OU values. */
function subjectParts(name: x509.Name): { commonName: string; organizations: string[]; units: string[] } {
  const out = { commonName: '', organizations: [] as string[], units: [] as string[] };
  for (const rdn of name.toJSON()) {
    for (const [type, values] of Object.entries(rdn)) {
      if (type === 'CN') out.commonName = values[0] ?? '';
      else if (type === 'O') out.organizations.push(...values);
      else if (type === 'OU') out.units.push(...values);
    }
  }
  return out;
}

/** certificateFacts parses a PEM (or DER) certificate; it throws on anything that is not one. */
export function certificateFacts(cert: string | Buffer): CertificateFacts {
  const c = new x509.X509Certificate(typeof cert === 'string' ? cert : new Uint8Array(cert));
  return {
    ...subjectParts(c.subjectName),
    serialNumber: c.serialNumber,
    notBefore: c.notBefore,
    notAfter: c.notAfter,
    sha256: createHash('sha256').update(Buffer.from(c.rawData)).digest('hex'),
  };
}

/** certificateSha256 is the hex SHA-256 of a PEM certificate's DER encoding. */
export function certificateSha256(pem: string): string {
  return createHash('sha256').update(new NodeX509(pem).raw).digest('hex');
}

/** issuedBy tells whether leaf's signature verifies with issuer's key and its issuer name matches. */
export function issuedBy(leafPem: string | Buffer, issuerPem: string): boolean {
  try {
    const leaf = new NodeX509(leafPem);
    const issuer = new NodeX509(issuerPem);
    return leaf.checkIssued(issuer) && leaf.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** PeerSubject is the part of a TLS peer certificate's subject berth reads. */
export interface PeerSubject {
  commonName: string | undefined;
  organizations: string[];
  units: string[];
}

/** peerSubject reads CN, O and OU off a verified peer certificate (node:tls gives one value or a list). */
export function peerSubject(cert: PeerCertificate): PeerSubject {
  const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
  return { commonName: list(cert.subject?.CN)[0], organizations: list(cert.subject?.O), units: list(cert.subject?.OU) };
}

export { x509 };
