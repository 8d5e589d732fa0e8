/**
 * The cluster CA: made on the control plane's first start, kept in etcd with its private key
 * sealed by the sealing key file, so every replica that holds that file can sign. It issues the
 * serving certificates of the API and the gateway, node certificates (CN = node name, O =
 * berth:nodes, client auth only) from agents' requests, and client certificates for people.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Logger } from '../../common/log.js';
import { GATEWAY_TLS_NAME } from '../../common/grpc-limits.js';
import {
  certificateFacts, distinguishedName, ECDSA_P256, generateKeyPair, importKeyPair, NODE_ORGANIZATION, x509, type KeyPair,
} from '../../common/x509.js';
import type { ClusterCa as ClusterCaObject } from '../objects/security-types.js';
import { CLUSTER_CA_KEY } from '../store/keys.js';
import type { Store } from '../store/store.js';
import { createSealingKey, readSealingKey, seal, unseal, type SealingKey } from './sealing-key.js';

/** CA_VALIDITY_MS is the CA certificate's lifetime (ten years; rotation of the CA itself is manual). */
export const CA_VALIDITY_MS = 10 * 365 * 24 * 3600_000;
/** SERVING_CERT_VALIDITY_MS is the lifetime of API and gateway certificates; they are re-issued at two thirds. */
export const SERVING_CERT_VALIDITY_MS = 30 * 24 * 3600_000;
/** DEFAULT_NODE_CERT_TTL_MS is a node certificate's default lifetime; agents renew at two thirds. */
export const DEFAULT_NODE_CERT_TTL_MS = 24 * 3600_000;
/** CLOCK_SKEW_MS backdates notBefore so a host whose clock is slightly behind still accepts a new certificate. */
export const CLOCK_SKEW_MS = 5 * 60_000;
/** SERVING_DNS_NAME is in every serving certificate; agents check the gateway against it. */
export const SERVING_DNS_NAME = GATEWAY_TLS_NAME;

/**
 * REPLICA_ORGANIZATION is the subject O of replica certificates, which control-plane replicas
 * present to each other's relay. The gateway refuses them for agent sessions (not berth:nodes)
 * and the relay refuses every other certificate, so neither can stand in for the other.
 */
export const REPLICA_ORGANIZATION = 'berth:control-plane';

/** IssuedCertificate is a certificate (PEM) and, when the CA made the key, its private key. */
export interface IssuedCertificate {
  certificatePem: string;
  privateKeyPem?: string;
  notAfter: Date;
}

/** SignOutcome is a signed certificate, or why a request was refused (expected, so a value). */
export type SignOutcome = { ok: true; certificatePem: string; notAfter: Date } | { ok: false; reason: string };

/** ClientSubject is who a client certificate names: its CN, role (O) and namespaces (OU). */
export interface ClientSubject {
  name: string;
  role: string;
  namespaces: string[];
}

function serialNumber(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // a positive INTEGER
  return b.toString('hex');
}

/** ClusterCa signs with the cluster CA's key. */
export class ClusterCa {
  /** sha256 is the CA certificate's digest (hex), which join tokens pin. */
  readonly sha256: string;

  private constructor(readonly certificatePem: string, private readonly key: KeyPair, private readonly cert: x509.X509Certificate) {
    this.sha256 = certificateFacts(certificatePem).sha256;
  }

  /**
   * loadOrCreate reads the CA from etcd and opens its key with the sealing key file; on the
   * cluster's very first start it makes both. created tells the caller to bootstrap the admin.
   */
  static async loadOrCreate(store: Store, sealingKeyFile: string, log: Logger): Promise<{ ca: ClusterCa; created: boolean }> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const stored = await store.get<ClusterCaObject>(CLUSTER_CA_KEY);
      if (stored) {
        if (!existsSync(sealingKeyFile)) {
          throw new Error(`the cluster CA exists in etcd but the sealing key file ${sealingKeyFile} is missing: copy it (mode 0600) from the control-plane host that first started the cluster`);
        }
        const keyPem = unseal([readSealingKey(sealingKeyFile)], stored.spec.sealedKey, CLUSTER_CA_KEY).toString();
        return { ca: new ClusterCa(stored.spec.certificate, await importKeyPair(keyPem), new x509.X509Certificate(stored.spec.certificate)), created: false };
      }
      const sealing: SealingKey = existsSync(sealingKeyFile) ? readSealingKey(sealingKeyFile) : createSealingKey(sealingKeyFile);
      const ca = await ClusterCa.generate();
      const now = new Date().toISOString();
      const obj: ClusterCaObject = {
        kind: 'ClusterCA',
        metadata: { name: 'cluster-ca', uid: randomUUID(), generation: 1, labels: {}, createdAt: now },
        spec: { certificate: ca.certificatePem, sealedKey: seal(sealing, ca.key.privateKeyPem, CLUSTER_CA_KEY) },
        status: {},
      };
      const r = await store.create(CLUSTER_CA_KEY, obj);
      if (r.ok) {
        log.info('created the cluster CA', { sha256: ca.sha256, sealingKeyFile });
        return { ca, created: true };
      }
      // Another replica made one first: use theirs (this needs their sealing key file).
    }
    throw new Error('cannot create or read the cluster CA');
  }

  /** generate makes a new self-signed CA (used by loadOrCreate and by tests that need a foreign CA). */
  static async generate(commonName = 'berth cluster CA'): Promise<ClusterCa> {
    const key = await generateKeyPair();
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serialNumber(),
      name: distinguishedName(commonName, ['berth']),
      notBefore: new Date(now - CLOCK_SKEW_MS),
      notAfter: new Date(now + CA_VALIDITY_MS),
      signingAlgorithm: ECDSA_P256,
      keys: key.keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(key.keys.publicKey),
      ],
    });
    return new ClusterCa(cert.toString('pem'), key, cert);
  }

  private async sign(subject: x509.Name, publicKey: x509.PublicKey | CryptoKey, validityMs: number, extensions: x509.Extension[]): Promise<x509.X509Certificate> {
    const now = Date.now();
    return x509.X509CertificateGenerator.create({
      serialNumber: serialNumber(),
      subject,
      issuer: this.cert.subjectName,
      notBefore: new Date(now - CLOCK_SKEW_MS),
      notAfter: new Date(Math.min(now + validityMs, this.cert.notAfter.getTime())),
      signingAlgorithm: ECDSA_P256,
      publicKey,
      signingKey: this.key.keys.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        await x509.AuthorityKeyIdentifierExtension.create(this.cert, false),
        ...extensions,
      ],
    });
  }

  /** issueServing makes a key and a server certificate for every name and address given (API, gateway). */
  async issueServing(names: string[], validityMs = SERVING_CERT_VALIDITY_MS): Promise<IssuedCertificate> {
    const key = await generateKeyPair();
    const sans = [...new Set([SERVING_DNS_NAME, ...names])].map((n) => (isIP(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n }));
    const cert = await this.sign(distinguishedName(SERVING_DNS_NAME, ['berth']), key.keys.publicKey, validityMs, [
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(sans),
    ]);
    return { certificatePem: cert.toString('pem'), privateKeyPem: key.privateKeyPem, notAfter: cert.notAfter };
  }

  /** issueReplica makes a key and a client certificate for replica `name` (O = REPLICA_ORGANIZATION). */
  async issueReplica(name: string, validityMs = SERVING_CERT_VALIDITY_MS): Promise<IssuedCertificate> {
    const key = await generateKeyPair();
    const cert = await this.sign(distinguishedName(name, [REPLICA_ORGANIZATION]), key.keys.publicKey, validityMs, [
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    ]);
    return { certificatePem: cert.toString('pem'), privateKeyPem: key.privateKeyPem, notAfter: cert.notAfter };
  }

  /** readCsr parses and checks a PKCS#10 request's self-signature (proof the caller holds the key). */
  private static async readCsr(csrPem: string): Promise<x509.Pkcs10CertificateRequest | string> {
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(csrPem);
    } catch {
      return 'the certificate request is not a PEM PKCS#10 request';
    }
    if (!(await csr.verify().catch(() => false))) return 'the certificate request signature does not verify';
    const alg = csr.publicKey.algorithm as EcKeyAlgorithm;
    if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') return 'the certificate request key must be ECDSA P-256';
    return csr;
  }

  /** signNode signs an agent's request as node `nodeName`, whatever subject the request asked for. */
  async signNode(csrPem: string, nodeName: string, validityMs = DEFAULT_NODE_CERT_TTL_MS): Promise<SignOutcome> {
    const csr = await ClusterCa.readCsr(csrPem);
    if (typeof csr === 'string') return { ok: false, reason: csr };
    const cert = await this.sign(distinguishedName(nodeName, [NODE_ORGANIZATION]), csr.publicKey, validityMs, [
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: nodeName }]),
    ]);
    return { ok: true, certificatePem: cert.toString('pem'), notAfter: cert.notAfter };
  }

  /** signClient signs a person's request as subject: CN name, O role, one OU per namespace. */
  async signClient(csrPem: string, subject: ClientSubject, validityMs: number): Promise<SignOutcome> {
    const csr = await ClusterCa.readCsr(csrPem);
    if (typeof csr === 'string') return { ok: false, reason: csr };
    const cert = await this.sign(distinguishedName(subject.name, [subject.role], subject.namespaces), csr.publicKey, validityMs, [
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    ]);
    return { ok: true, certificatePem: cert.toString('pem'), notAfter: cert.notAfter };
  }
}
