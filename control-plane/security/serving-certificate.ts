/**
 * The control plane's serving certificate (API and gateway share it), re-issued by the CA at two
 * thirds of its life and handed to listeners in place, so no connection is dropped to rotate it.
 * It is a grpc-js CertificateProvider for both the identity and the CA the gateway trusts.
 */
import type { experimental } from '@grpc/grpc-js';
import type { Logger } from '../../common/log.js';
import type { ClusterCa, IssuedCertificate } from './pki.js';

type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

/** MAX_TIMER_MS is setTimeout's ceiling; longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** RETRY_ISSUE_MS is the wait after a failed re-issue. */
const RETRY_ISSUE_MS = 60_000;

/** ServingCertificate holds the current key pair and tells listeners when it changes. */
export class ServingCertificate implements experimental.CertificateProvider {
  private current: IssuedCertificate;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly changeListeners = new Set<(c: { key: string; cert: string }) => void>();
  private timer: NodeJS.Timeout | undefined;

  private constructor(private readonly ca: ClusterCa, private readonly names: string[], first: IssuedCertificate, private readonly log: Logger) {
    this.current = first;
  }

  /** issue makes the first certificate for names and schedules its renewals. */
  static async issue(ca: ClusterCa, names: string[], log: Logger): Promise<ServingCertificate> {
    const s = new ServingCertificate(ca, names, await ca.issueServing(names), log);
    s.schedule();
    return s;
  }

  /** key is the current private key (PEM). */
  get key(): string {
    return this.current.privateKeyPem!;
  }

  /** cert is the current certificate followed by the CA's, so clients that pin the CA can build the chain. */
  get cert(): string {
    return `${this.current.certificatePem.trim()}\n${this.ca.certificatePem.trim()}\n`;
  }

  /** caPem is the CA clients must chain to. */
  get caPem(): string {
    return this.ca.certificatePem;
  }

  /** onChange calls fn with every new key pair (the API re-keys its TLS context). */
  onChange(fn: (c: { key: string; cert: string }) => void): void {
    this.changeListeners.add(fn);
  }

  /** stop cancels renewals. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    const issuedAt = Date.now();
    const renewAt = issuedAt + (this.current.notAfter.getTime() - issuedAt) * 2 / 3;
    const wait = (): void => {
      const left = renewAt - Date.now();
      if (left > 0) {
        this.timer = setTimeout(wait, Math.min(left, MAX_TIMER_MS));
        this.timer.unref();
        return;
      }
      void this.renew();
    };
    wait();
  }

  private async renew(): Promise<void> {
    try {
      this.current = await this.ca.issueServing(this.names);
      this.log.info('serving certificate re-issued', { notAfter: this.current.notAfter.toISOString() });
      for (const l of this.identityListeners) l({ certificate: Buffer.from(this.cert), privateKey: Buffer.from(this.key) });
      for (const l of this.changeListeners) l({ key: this.key, cert: this.cert });
      this.schedule();
    } catch (err) {
      this.log.error('cannot re-issue the serving certificate; retrying', { err });
      this.timer = setTimeout(() => void this.renew(), RETRY_ISSUE_MS);
      this.timer.unref();
    }
  }

  // grpc-js registers its own watcher only after adding these listeners: an update delivered
  // synchronously would reach nobody and the server would drop every connection. Deliver later.
  addCaCertificateListener(l: CaListener): void {
    this.caListeners.add(l);
    queueMicrotask(() => l({ caCertificate: Buffer.from(this.ca.certificatePem) }));
  }

  removeCaCertificateListener(l: CaListener): void {
    this.caListeners.delete(l);
  }

  addIdentityCertificateListener(l: IdentityListener): void {
    this.identityListeners.add(l);
    queueMicrotask(() => l({ certificate: Buffer.from(this.cert), privateKey: Buffer.from(this.key) }));
  }

  removeIdentityCertificateListener(l: IdentityListener): void {
    this.identityListeners.delete(l);
  }
}
